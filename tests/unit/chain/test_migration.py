"""Auto-migration's decisions, fed snapshots by hand (Parity's state machine, as data)."""

from __future__ import annotations

import itertools

import pytest

from secretstore.chain.key_server_set import KeyServerSetSnapshot, Migration
from secretstore.chain.migration import (
    NO_SESSION,
    RULES,
    AutoMigration,
    ConfirmMigration,
    Connect,
    DropSession,
    LeaveSet,
    MigrationState,
    Rule,
    RunChange,
    SessionPhase,
    SessionState,
    StartMigration,
    migration_state,
    rule_for,
    select_master,
)
from secretstore.crypto.rng import SeededRng
from secretstore.types import Hash256, NodeId

N = [NodeId(bytes([i + 1]) * 64) for i in range(5)]  # ascending ids
ID = Hash256(b"\x07" * 32)
OTHER = Hash256(b"\x08" * 32)


def nodes(*indices: int) -> dict[NodeId, tuple[str, int]]:
    return {N[i]: ("127.0.0.1", 12000 + i) for i in indices}


def snap(current: tuple[int, ...], new: tuple[int, ...], migration: Migration | None = None):
    return KeyServerSetSnapshot(nodes(*current), nodes(*new), migration)


def started(master: int = 0, members: tuple[int, ...] = (0, 1, 2, 3), confirmed: bool = False):
    return Migration(ID, nodes(*members), N[master], confirmed)


def machine(node: int = 0, retry: int = 30) -> AutoMigration:
    return AutoMigration(N[node], SeededRng(b"migration"), retry_interval=retry)


def running(mid: Hash256 = ID) -> SessionState:
    return SessionState(SessionPhase.RUNNING, mid)


def finished(mid: Hash256 = ID) -> SessionState:
    return SessionState(SessionPhase.FINISHED, mid)


def failed(mid: Hash256 = ID) -> SessionState:
    return SessionState(SessionPhase.FAILED, mid)


ALL = frozenset(N)


# --- the migration state ----------------------------------------------------------------------


def test_migration_states() -> None:
    assert migration_state(N[0], snap((0, 1, 2), (0, 1, 2))) is MigrationState.IDLE
    assert migration_state(N[0], snap((0, 1, 2), (0, 1, 2, 3))) is MigrationState.REQUIRED
    assert migration_state(N[0], snap((0, 1, 2), (0, 1))) is MigrationState.REQUIRED
    # a node only in the new set takes part (it links to the others before the migration)
    assert migration_state(N[4], snap((0, 1, 2), (0, 1, 2, 4))) is MigrationState.REQUIRED
    # a node in neither the current, the new nor the migration set takes no part
    assert migration_state(N[3], snap((0, 1, 2), (0, 1, 2, 4))) is MigrationState.IDLE
    assert migration_state(N[3], snap((0, 1, 2), (0, 1, 2, 3), started())) is MigrationState.STARTED
    assert migration_state(N[4], snap((0, 1, 2), (0, 1, 2, 3), started())) is MigrationState.IDLE


def test_master_selection_vectors() -> None:
    # Parity's: a node staying in the set, else the first new, else the first current
    assert select_master(snap((0, 1), (1, 3))) == N[1]
    assert select_master(snap((0, 1), (2, 3))) == N[2]
    assert select_master(snap((0, 1), ())) == N[0]
    assert select_master(snap((0, 1), (0, 1), started(master=3))) == N[3]
    assert select_master(snap((), ())) is None


# --- the rule table ---------------------------------------------------------------------------


def test_every_combination_has_a_rule() -> None:
    """Exhaustive: the listed combinations give their rule, every other one DROP_AND_RETRY."""
    migrating = snap((0, 1, 2), (0, 1, 2, 3), started())
    idle = snap((0, 1, 2), (0, 1, 2))
    for state, phase, same in itertools.product(MigrationState, SessionPhase, (True, False)):
        snapshot = migrating if state is MigrationState.STARTED else idle
        session = SessionState(phase, ID if same else OTHER)
        expected = RULES.get((state, phase, None)) or RULES.get((state, phase, same))
        assert rule_for(state, snapshot, session) is (expected or Rule.DROP_AND_RETRY)
    assert rule_for(MigrationState.STARTED, migrating, finished(OTHER)) is Rule.DROP_AND_RETRY
    assert rule_for(MigrationState.IDLE, idle, running()) is Rule.DROP_AND_RETRY


def test_idle_does_nothing_and_connects_to_the_current_set() -> None:
    step = machine().step(1, snap((0, 1, 2), (0, 1, 2)), NO_SESSION, ALL)
    assert step.state is MigrationState.IDLE
    assert step.decisions == ()
    assert step.connect is Connect.CURRENT
    assert step.connections == nodes(0, 1, 2)


def test_the_chosen_master_starts_a_migration_with_a_fresh_id() -> None:
    snapshot = snap((0, 1, 2), (0, 1, 2, 3))
    master = machine(0)
    [decision] = master.step(10, snapshot, NO_SESSION, ALL).decisions
    assert isinstance(decision, StartMigration)
    assert decision.migration_id != bytes(32)
    # the others do not; and while required, every node links the current and new sets,
    # the node that is only in the new set too
    for other in (1, 3):
        step = machine(other).step(10, snapshot, NO_SESSION, ALL)
        assert step.decisions == ()
        assert step.connect is Connect.CURRENT_AND_NEW
        assert step.connections == nodes(0, 1, 2, 3)
    assert machine(4).step(10, snapshot, NO_SESSION, ALL).connections == {}


def test_start_migration_is_not_resent_within_the_retry_interval() -> None:
    snapshot = snap((0, 1, 2), (0, 1, 2, 3))
    master = machine(0, retry=30)
    first = master.step(10, snapshot, NO_SESSION, ALL).decisions
    assert len(first) == 1
    for block in (10, 11, 39):
        assert master.step(block, snapshot, NO_SESSION, ALL).decisions == ()
    [again] = master.step(40, snapshot, NO_SESSION, ALL).decisions
    assert isinstance(again, StartMigration)
    assert again.migration_id != first[0].migration_id  # type: ignore[union-attr]


def test_the_migration_master_runs_the_change_once_linked_to_every_migration_node() -> None:
    snapshot = snap((0, 1, 2), (0, 1, 2, 3), started(master=0))
    master = machine(0)
    assert master.step(5, snapshot, NO_SESSION, frozenset(N[1:3])).decisions == ()
    assert master.step(6, snapshot, NO_SESSION, frozenset(N[1:3])).decisions == ()
    step = master.step(6, snapshot, NO_SESSION, frozenset(N[1:4]))
    assert step.decisions == (RunChange(ID, frozenset(N[:4])),)
    assert step.connect is Connect.MIGRATION
    assert step.connections == nodes(0, 1, 2, 3)
    # a node that is not the migration's master waits
    assert machine(1).step(5, snapshot, NO_SESSION, ALL).decisions == ()


def test_the_master_waits_a_block_after_it_first_saw_the_migration() -> None:
    """So that every node has read the migration when it is asked to join the change."""
    snapshot = snap((0, 1, 2), (0, 1, 2, 3), started(master=0))
    master = machine(0)
    assert master.step(5, snapshot, NO_SESSION, ALL).decisions == ()
    assert master.step(5, snapshot, NO_SESSION, ALL).decisions == ()
    assert master.step(6, snapshot, NO_SESSION, ALL).decisions == (RunChange(ID, frozenset(N[:4])),)
    # a later migration (another id) waits its own block
    later = snap((0, 1, 2, 3), (0, 1, 2), Migration(OTHER, nodes(0, 1, 2), N[0], False))
    assert master.step(9, later, NO_SESSION, ALL).decisions == ()
    assert master.step(10, later, NO_SESSION, ALL).decisions == (
        RunChange(OTHER, frozenset(N[:3])),
    )
    patient = AutoMigration(N[0], SeededRng(b"m"), settle=3)
    assert patient.step(5, snapshot, NO_SESSION, ALL).decisions == ()
    assert patient.step(7, snapshot, NO_SESSION, ALL).decisions == ()
    assert patient.step(8, snapshot, NO_SESSION, ALL).decisions != ()


def test_nothing_changes_while_the_change_runs() -> None:
    snapshot = snap((0, 1, 2), (0, 1, 2, 3), started())
    step = machine(0).step(6, snapshot, running(), ALL)
    assert step.decisions == ()
    assert step.connect is Connect.KEEP
    assert step.connections is None


def test_a_finished_change_is_confirmed_by_every_migration_node() -> None:
    snapshot = snap((0, 1, 2), (0, 1, 2, 3), started())
    for node in range(4):
        auto = machine(node)
        step = auto.step(7, snapshot, finished(), ALL)
        assert step.decisions == (ConfirmMigration(ID), DropSession()), node
        # afterwards: no second change; the confirmation is resent only after the interval
        assert auto.step(8, snapshot, NO_SESSION, ALL).decisions == ()
        assert auto.step(37, snapshot, NO_SESSION, ALL).decisions == (ConfirmMigration(ID),)
        confirmed = snap((0, 1, 2), (0, 1, 2, 3), started(confirmed=True))
        assert auto.step(80, confirmed, NO_SESSION, ALL).decisions == ()


def test_a_removed_node_does_not_confirm() -> None:
    snapshot = snap((0, 1, 2, 3), (0, 1, 2), started(members=(0, 1, 2)))
    auto = machine(3)
    step = auto.step(7, snapshot, finished(), ALL)
    assert step.decisions == (DropSession(),)
    assert step.connections == {}  # not in the migration set: isolated


def test_a_node_the_completed_migration_left_out_erases_its_keys() -> None:
    removing = started(members=(0, 1, 2))
    auto = machine(3)
    assert auto.step(7, snap((0, 1, 2, 3), (0, 1, 2), removing), NO_SESSION, ALL).decisions == ()
    # a read without the migration (a failed call) while the current set still has it: nothing
    assert auto.step(8, snap((0, 1, 2, 3), (0, 1, 2)), NO_SESSION, ALL).decisions == ()
    done = snap((0, 1, 2), (0, 1, 2))
    step = auto.step(9, done, NO_SESSION, ALL)
    assert step.decisions == (LeaveSet(ID, N[0]),)
    assert step.connections == {}
    assert auto.step(10, done, NO_SESSION, ALL).decisions == ()  # once


def test_only_a_completed_migration_makes_a_node_leave() -> None:
    removing = started(members=(0, 1, 2))
    # the nodes that stay never leave
    for node in range(3):
        auto = machine(node)
        auto.step(7, snap((0, 1, 2, 3), (0, 1, 2), removing), running(), ALL)
        step = auto.step(9, snap((0, 1, 2), (0, 1, 2)), NO_SESSION, ALL)
        assert not any(isinstance(d, LeaveSet) for d in step.decisions)
    # a node that never saw the migration (down meanwhile, or never in the set) keeps its keys
    assert machine(3).step(9, snap((0, 1, 2), (0, 1, 2)), NO_SESSION, ALL).decisions == ()
    assert machine(4).step(9, snap((0, 1, 2), (0, 1, 2)), NO_SESSION, ALL).decisions == ()
    # an unreadable contract (no set at all) is not a completion
    auto = machine(3)
    auto.step(7, snap((0, 1, 2, 3), (0, 1, 2), removing), NO_SESSION, ALL)
    assert auto.step(8, KeyServerSetSnapshot(), NO_SESSION, ALL).decisions == ()
    # nor is a current set other than the migration's
    assert auto.step(9, snap((0, 1), (0, 1)), NO_SESSION, ALL).decisions == ()
    # a later migration that takes the node back in cancels its leaving
    back = Migration(OTHER, nodes(0, 1, 2, 3), N[0], False)
    auto.step(10, snap((0, 1, 2, 3), (0, 1, 2, 3), back), NO_SESSION, ALL)
    assert auto.step(11, snap((0, 1, 2), (0, 1, 2)), NO_SESSION, ALL).decisions == ()


def test_a_failed_change_is_dropped_and_run_again_after_a_pause() -> None:
    snapshot = snap((0, 1, 2), (0, 1, 2, 3), started(master=0))
    master = machine(0, retry=10)
    assert master.step(20, snapshot, failed(), ALL).decisions == (DropSession(),)
    assert master.step(21, snapshot, NO_SESSION, ALL).decisions == ()
    assert master.step(29, snapshot, NO_SESSION, ALL).decisions == ()
    assert master.step(30, snapshot, NO_SESSION, ALL).decisions == (
        RunChange(ID, frozenset(N[:4])),
    )


@pytest.mark.parametrize(
    ("snapshot", "session"),
    [
        (snap((0, 1), (0, 1)), running()),  # a session nobody wants
        (snap((0, 1), (0, 1)), finished()),
        (snap((0, 1), (0, 1)), failed()),
        (snap((0, 1), (0, 1, 2)), running()),
        (snap((0, 1), (0, 1, 2), started(members=(0, 1, 2))), running(OTHER)),  # another id
        (snap((0, 1), (0, 1, 2), started(members=(0, 1, 2))), finished(OTHER)),
    ],
)
def test_stale_sessions_are_dropped_and_the_state_evaluated_again(
    snapshot: KeyServerSetSnapshot, session: SessionState
) -> None:
    step = machine(0).step(3, snapshot, session, ALL)
    assert step.decisions[0] == DropSession()
    again = machine(0).step(3, snapshot, NO_SESSION, ALL)  # the same seed: the same fresh id
    assert step.decisions[1:] == again.decisions
    assert step.connect is again.connect is not Connect.KEEP


def test_the_admin_of_an_auto_migration_session_is_the_contracts_master() -> None:
    snapshot = snap((0, 1, 2), (0, 1, 2, 3), started(master=2))
    auto = machine(1)
    assert auto.admin_for(snapshot, ID, frozenset(N[:4])) == N[2]
    assert auto.admin_for(snapshot, OTHER, frozenset(N[:4])) is None
    assert auto.admin_for(snapshot, ID, frozenset(N[:3])) is None
    assert auto.admin_for(snapshot, None, frozenset(N[:4])) is None
    assert auto.admin_for(snap((0, 1), (0, 1)), ID, frozenset(N[:2])) is None
