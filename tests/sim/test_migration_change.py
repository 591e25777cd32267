"""Contract-driven migrations on a simulated network: the node set change as auto-migration
runs it, each node's administrator being `MigrationAdmin` over the contract's snapshot (through
the real `AutoMigration.admin_for`), and the nodes' cluster being the contract's current set,
as on a real node (a node the contract adds is not in it yet, a node it removes still is).

After each migration every key keeps its public and any t+1 new holders reconstruct it; the
session-end hook tells every node whether the whole change was done. Every change the contract
did not ask for is refused by the slaves (AccessDenied naming why) and changes nothing."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from secretstore.chain.key_server_set import KeyServerSetSnapshot, Migration
from secretstore.chain.migration import AutoMigration
from secretstore.chain.migration_session import MigrationAdmin
from secretstore.crypto.keys import KeyPair
from secretstore.crypto.rng import SeededRng
from secretstore.errors import AccessDenied, ProtocolViolation, SecretStoreError
from secretstore.sessions.admin.node_set_change import NodeSetChange
from secretstore.sessions.base import Fail, Finish, Session
from secretstore.types import Hash256, NodeId
from secretstore.wire.admin import NodeSetChangeInit
from tests.sim.admin_world import ADMIN, AdminWorld, make_world, sign_set

MIGRATION = Hash256(b"\x5e" * 32)
OTHER_ID = Hash256(b"\x5f" * 32)


@dataclass
class Contract:
    """What the key server set contract shows (each node may read it at another block)."""

    current: frozenset[NodeId]
    migration: Migration | None
    machine: AutoMigration = field(
        default_factory=lambda: AutoMigration(NodeId(b"\x01" * 64), SeededRng(b"m"))
    )

    @property
    def snapshot(self) -> KeyServerSetSnapshot:
        current = {node: ("127.0.0.1", 1) for node in self.current}
        new = dict(self.migration.nodes) if self.migration is not None else current
        return KeyServerSetSnapshot(current, new, self.migration)

    def admin_for(self, migration_id: Hash256 | None, nodes: frozenset[NodeId]) -> NodeId | None:
        return self.machine.admin_for(self.snapshot, migration_id, nodes)


def migration(nodes: frozenset[NodeId], master: NodeId, mid: Hash256 = MIGRATION) -> Migration:
    return Migration(mid, {node: ("127.0.0.1", 1) for node in nodes}, master, False)


@dataclass
class Ends:
    """What each node's session-end hook saw: (completed, migration id) per ended change."""

    seen: dict[NodeId, list[tuple[bool, Hash256 | None]]] = field(default_factory=dict)

    def hook(self, node: NodeId):  # type: ignore[no-untyped-def]
        def on_end(session: Session) -> None:
            assert isinstance(session, NodeSetChange)
            self.seen.setdefault(node, []).append((session.completed, session.migration_id))

        return on_end


def migrating_world(
    n: int,
    *,
    seed: int,
    schedule: int,
    holders: list[int],
    linked: list[int],
    current: list[int],
    views: dict[int, Contract] | None = None,
    contract: Contract | None = None,
) -> tuple[AdminWorld, Ends]:
    """`n` nodes, keys on `holders`; `linked` nodes are linked to one another (the migration
    set's links), the others to nobody; every node's cluster is the contract's `current`
    set; node i reads the contract as `views[i]` (default `contract`)."""
    probe = make_world(n, seed=seed, schedule=schedule, holders=holders, threshold=1, keys=0)
    ids = probe.ids
    chosen = contract or Contract(frozenset(ids[i] for i in current), None)
    by_node = {ids[i]: view for i, view in (views or {}).items()}
    world = make_world(
        n,
        seed=seed,
        schedule=schedule,
        holders=holders,
        threshold=1,
        configured={i: linked if i in linked else [i] for i in range(n)},
        authority=lambda node: MigrationAdmin(node, lambda: by_node.get(node, chosen)),
    )
    ends = Ends()
    for node_id in ids:
        core = world.net.nodes[node_id].core
        core.set_cluster_nodes(frozenset(ids[i] for i in current))
        core.on_exclusive_end(ends.hook(node_id))
    return world, ends


def node_key(world: AdminWorld, node: NodeId) -> KeyPair:
    return KeyPair.from_secret(world.net.nodes[node].key.secret)


def migrate(
    world: AdminWorld,
    master: NodeId,
    nodes: frozenset[NodeId],
    *,
    mid: Hash256 | None = MIGRATION,
    signer: NodeId | None = None,
) -> bytes:
    """What SessionNodeSetChange.start asks: the set signed twice by the node key of
    `signer` (default: the master), that key as the administrator."""
    key = node_key(world, signer if signer is not None else master)
    return world.change(
        master, nodes, admin=key, old_set=nodes, migration_id=mid, admin_public=key.public
    )


def outcome(world: AdminWorld, master: NodeId, sid: bytes) -> Finish | Fail:
    result = world.outcome(master, sid)  # type: ignore[arg-type]
    assert isinstance(result, Finish | Fail)
    return result


seeds = st.integers(0, 2**32)


@given(seed=seeds, schedule=seeds)
@settings(max_examples=8, deadline=None)
def test_a_migration_adds_a_node_the_current_set_does_not_list_yet(
    seed: int, schedule: int
) -> None:
    probe = make_world(4, seed=seed, schedule=schedule, holders=[0, 1, 2], threshold=1, keys=0)
    ids = probe.ids
    everyone = frozenset(ids)
    contract = Contract(frozenset(ids[:3]), migration(everyone, ids[0]))
    world, ends = migrating_world(
        4,
        seed=seed,
        schedule=schedule,
        holders=[0, 1, 2],
        linked=[0, 1, 2, 3],
        current=[0, 1, 2],
        contract=contract,
    )
    sid = migrate(world, ids[0], everyone)
    world.net.run()
    result = outcome(world, ids[0], sid)
    assert isinstance(result, Finish), result
    for key in world.keys:
        world.assert_on(key, everyone)
    world.serve_with(next(iter(world.keys)), ids[2:], ids[3])  # the new node serves
    assert ends.seen == {node: [(True, MIGRATION)] for node in ids}
    assert world.sessions_left() == 0


@given(seed=seeds, schedule=seeds)
@settings(max_examples=8, deadline=None)
def test_a_migration_removes_a_node_that_takes_no_part(seed: int, schedule: int) -> None:
    probe = make_world(4, seed=seed, schedule=schedule, holders=[0, 1, 2, 3], threshold=1)
    ids = probe.ids
    staying = frozenset(ids[:3])
    contract = Contract(frozenset(ids), migration(staying, ids[1]))
    world, ends = migrating_world(
        4,
        seed=seed,
        schedule=schedule,
        holders=[0, 1, 2, 3],
        linked=[0, 1, 2],
        current=[0, 1, 2, 3],
        contract=contract,
    )
    before = {key: world.shares(key)[ids[3]] for key in world.keys}
    sid = migrate(world, ids[1], staying)
    world.net.run()
    assert isinstance(outcome(world, ids[1], sid), Finish)
    for key in world.keys:
        world.assert_on(key, staying)
        # the removed node was not asked: its erasure is the completed migration's (LeaveSet)
        assert world.shares(key)[ids[3]] == before[key]
    assert ids[3] not in ends.seen
    assert all(ends.seen[node] == [(True, MIGRATION)] for node in staying)


def _refused(world: AdminWorld, ends: Ends, master: NodeId, sid: bytes) -> SecretStoreError:
    world.net.run()
    world.net.time_out_all()
    world.net.run()
    result = outcome(world, master, sid)
    assert isinstance(result, Fail), result
    assert world.sessions_left() == 0
    # no node reports the change as done: none would confirm it on chain
    assert not any(done for events in ends.seen.values() for done, _ in events)
    return result.error


@pytest.mark.parametrize(
    ("case", "reason"),
    [
        ("not the master", "is not the master of migration"),
        ("the master's signatures replayed", "is not the master of migration"),
        ("another migration id", "is not the key server set contract's migration"),
        ("another node set", "is not the key server set contract's migration"),
        ("no migration on chain", "is not the key server set contract's migration"),
        ("an administrator's change", "takes no administrator's node set change"),
    ],
)
def test_only_the_contracts_migration_by_its_master_is_accepted(case: str, reason: str) -> None:
    probe = make_world(4, seed=3, schedule=4, holders=[0, 1, 2], threshold=1, keys=0)
    ids = probe.ids
    everyone = frozenset(ids)
    on_chain = None if case == "no migration on chain" else migration(everyone, ids[0])
    contract = Contract(frozenset(ids[:3]), on_chain)
    world, ends = migrating_world(
        4,
        seed=3,
        schedule=4,
        holders=[0, 1, 2],
        linked=[0, 1, 2, 3],
        current=[0, 1, 2],
        contract=contract,
    )
    versions = {
        key: {n: len(s.versions) for n, s in world.shares(key).items()} for key in world.keys
    }
    master = ids[0]
    if case == "not the master":
        master = ids[1]
        sid = migrate(world, master, everyone)  # signed with its own key
    elif case == "the master's signatures replayed":
        master = ids[1]
        sid = migrate(world, master, everyone, signer=ids[0])
    elif case == "another migration id":
        sid = migrate(world, master, everyone, mid=OTHER_ID)
    elif case == "another node set":
        sid = migrate(world, master, frozenset(ids[:3]))
    elif case == "no migration on chain":
        sid = migrate(world, master, everyone)
    else:
        sid = world.change(master, everyone, admin=ADMIN, old_set=everyone)
        world.net.run()
        error = outcome(world, master, sid)
        assert isinstance(error, Fail) and isinstance(error.error, AccessDenied)
        assert reason in str(error.error)  # the master's own authority refuses it first
        return
    error = _refused(world, ends, master, sid)
    assert isinstance(error, AccessDenied), error
    assert reason in str(error)
    after = {key: {n: len(s.versions) for n, s in world.shares(key).items()} for key in world.keys}
    assert after == versions


def test_a_node_that_has_not_read_the_migration_yet_refuses_and_nobody_counts_it_done() -> None:
    """A slave a block behind the master: it refuses; the slaves that had accepted end with
    the change not done (the master's failure ends their part), so none confirms it."""
    probe = make_world(4, seed=5, schedule=6, holders=[0, 1, 2], threshold=1, keys=0)
    ids = probe.ids
    everyone = frozenset(ids)
    contract = Contract(frozenset(ids[:3]), migration(everyone, ids[0]))
    behind = Contract(frozenset(ids[:3]), None)
    world, ends = migrating_world(
        4,
        seed=5,
        schedule=6,
        holders=[0, 1, 2],
        linked=[0, 1, 2, 3],
        current=[0, 1, 2],
        contract=contract,
        views={2: behind},
    )
    sid = migrate(world, ids[0], everyone)
    error = _refused(world, ends, ids[0], sid)
    assert isinstance(error, AccessDenied)
    assert ends.seen[ids[0]] == [(False, MIGRATION)]
    # a re-run once the node has read the migration completes it
    world2, ends2 = migrating_world(
        4,
        seed=5,
        schedule=6,
        holders=[0, 1, 2],
        linked=[0, 1, 2, 3],
        current=[0, 1, 2],
        contract=contract,
    )
    again = migrate(world2, ids[0], everyone)
    world2.net.run()
    assert isinstance(outcome(world2, ids[0], again), Finish)
    assert all(events == [(True, MIGRATION)] for events in ends2.seen.values())


def test_a_migration_whose_old_set_is_not_its_new_set_is_refused() -> None:
    """Parity's migration signs one set twice; an init (here rewritten on its way, and signed
    by the master's key) that moves the keys from one set to another is refused by its slave."""
    probe = make_world(4, seed=7, schedule=8, holders=[0, 1, 2, 3], threshold=1, keys=0)
    ids = probe.ids
    staying = frozenset(ids[:3])
    contract = Contract(frozenset(ids), migration(staying, ids[0]))
    world, ends = migrating_world(
        4,
        seed=7,
        schedule=8,
        holders=[0, 1, 2, 3],
        linked=[0, 1, 2, 3],
        current=[0, 1, 2, 3],
        contract=contract,
    )
    key = node_key(world, ids[0])

    def tamper(sender: NodeId, to: NodeId, message: object) -> object:
        if isinstance(message, NodeSetChangeInit) and to == ids[1]:
            return replace(message, old_set=tuple(sorted(ids)), old_signature=sign_set(ids, key))
        return message

    world.net.tamper = tamper
    sid = migrate(world, ids[0], staying)
    error = _refused(world, ends, ids[0], sid)
    assert isinstance(error, ProtocolViolation), error
    assert "old and new sets differ" in str(error)
