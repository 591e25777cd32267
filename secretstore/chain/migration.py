"""Auto-migration: what a node does when the key server set contract changes (pure).

Evaluated on every block (and whenever a link comes or goes) from the contract's snapshot,
the state of this node's node set change session and the connected nodes; it returns
decisions, which the caller carries out: send `startMigration`, run the node set change
with the migration id, send `confirmMigration`, forget a session. Parity's state machine
(connection_trigger_with_migration.rs), as data:

The migration state, for this node:
- IDLE: the members do not change (an address change only reconnects), or this node takes
  no part: it is in neither the current set nor the migration set (nor, before a migration
  starts, the new set);
- REQUIRED: the new set's members differ from the current set's, no migration on chain yet;
- STARTED: a migration is on chain.

| migration | session              | decision                                                      |
|-----------|----------------------|---------------------------------------------------------------|
| IDLE      | none                 | nothing                                                       |
| REQUIRED  | none                 | the chosen master: StartMigration(a fresh random id)          |
| STARTED   | none                 | the migration's master, once linked to every migration node  |
|           |                      | and a block after it first saw the migration: RunChange(id,   |
|           |                      | the migration set); a node whose change of this id finished: |
|           |                      | ConfirmMigration(id) if not confirmed on chain                |
| STARTED   | running, same id     | nothing                                                       |
| STARTED   | finished, same id    | in the migration set: ConfirmMigration(id) + DropSession;     |
|           |                      | otherwise DropSession                                         |
| STARTED   | failed, same id      | DropSession (the master runs it again after a pause)          |
| any other combination (a session not wanted, or of another id)  | DropSession, then again |

The chosen master (REQUIRED): the first node (ascending id) of current ∩ new, else of new,
else of current; STARTED: the migration's master. A transaction for the same migration id is
not sent again within `retry_interval` blocks (Parity: 30); a failed change is run again only
`retry_interval` blocks after it failed (Parity 1.0: at once; later versions: after 60 s).

A node of the current set that the migration leaves out is *leaving*; once the contract shows
that migration completed (no migration, the current set = its migration set, this node not
in it) it gets LeaveSet(id, master): every node of the new set confirmed holding the keys, so the
leaving node erases its own (Parity's nodes kept them; its admin session erased them only
for a node that took part).

The master waits one block (`settle`) after it first saw a migration before it runs the
change, so that every node has read the migration when the change asks it to join (a node
that has not refuses it, and the change is run again only after a pause).

Connections: while a session runs they are left as they are; IDLE: the current set; STARTED:
the migration set; REQUIRED: the current and the new set together, a node only in the new set
too, so that every link the change needs exists when the migration starts (Parity connected to
the migration set, empty until the migration starts, so every node dropped its links
meanwhile).
A node not in the set it should connect to holds no connections (isolated).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Final

from secretstore.chain.key_server_set import (
    KeyServerSetSnapshot,
    Migration,
    NodeSet,
    migration_required,
)
from secretstore.crypto.rng import Rng
from secretstore.types import Hash256, NodeId

DEFAULT_RETRY_INTERVAL: Final = 30
#: Blocks the master waits after it first saw a migration before it runs the change.
DEFAULT_SETTLE: Final = 1


class MigrationState(Enum):
    IDLE = "idle"
    REQUIRED = "required"
    STARTED = "started"


class SessionPhase(Enum):
    """The node set change session on this node, as auto-migration sees it."""

    NONE = "none"
    RUNNING = "running"
    FINISHED = "finished"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class SessionState:
    phase: SessionPhase
    #: the migration id the session runs with (None: started by the administrator)
    migration_id: Hash256 | None = None


NO_SESSION: Final = SessionState(SessionPhase.NONE)


# --- decisions -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StartMigration:
    """Send `startMigration(migration_id)` to the set contract."""

    migration_id: Hash256


@dataclass(frozen=True, slots=True)
class RunChange:
    """Start the node set change session as its master, with `migration_id`, moving the keys
    to `nodes` (old set = new set = the migration set, both signed with this node's key)."""

    migration_id: Hash256
    nodes: frozenset[NodeId]


@dataclass(frozen=True, slots=True)
class ConfirmMigration:
    """Send `confirmMigration(migration_id)` to the set contract."""

    migration_id: Hash256


@dataclass(frozen=True, slots=True)
class DropSession:
    """Forget this node's node set change session (finished, failed or not wanted)."""


@dataclass(frozen=True, slots=True)
class LeaveSet:
    """The migration `migration_id` of `master`, which left this node out, has completed
    (every node of its set confirmed holding the keys): erase this node's keys."""

    migration_id: Hash256
    master: NodeId


Decision = StartMigration | RunChange | ConfirmMigration | DropSession | LeaveSet


class Connect(Enum):
    KEEP = "keep"
    CURRENT = "current"
    CURRENT_AND_NEW = "current and new"
    MIGRATION = "migration"


@dataclass(frozen=True, slots=True)
class Step:
    """One evaluation: the state seen, what to do, and whom to connect to."""

    state: MigrationState
    decisions: tuple[Decision, ...]
    connect: Connect
    #: the nodes to connect to (None with Connect.KEEP); empty when this node is not among them
    connections: NodeSet | None


# --- the rules -------------------------------------------------------------------------------


def migration_state(self_id: NodeId, snapshot: KeyServerSetSnapshot) -> MigrationState:
    migration = snapshot.migration
    if migration is not None:
        if self_id in snapshot.current or self_id in migration.nodes:
            return MigrationState.STARTED
        return MigrationState.IDLE
    if not migration_required(snapshot.current, snapshot.new):
        return MigrationState.IDLE
    if self_id in snapshot.current or self_id in snapshot.new:
        return MigrationState.REQUIRED
    return MigrationState.IDLE


def select_master(snapshot: KeyServerSetSnapshot) -> NodeId | None:
    if snapshot.migration is not None:
        return snapshot.migration.master
    staying = sorted(node for node in snapshot.current if node in snapshot.new)
    for candidates in (staying, sorted(snapshot.new), sorted(snapshot.current)):
        if candidates:
            return candidates[0]
    return None


class Rule(Enum):
    """What a (migration state, session phase, same id) combination asks for."""

    NOTHING = "nothing"
    START_MIGRATION = "start the migration (master)"
    RUN_CHANGE = "run the change (master, all linked)"
    CONFIRM = "confirm (migration node), drop"
    DROP = "drop"
    DROP_AND_RETRY = "drop, then evaluate again"


#: (migration state, session phase, session id = migration id) -> rule; `None` for the id
#: matches any. Combinations not listed are DROP_AND_RETRY.
RULES: Final[Mapping[tuple[MigrationState, SessionPhase, bool | None], Rule]] = {
    (MigrationState.IDLE, SessionPhase.NONE, None): Rule.NOTHING,
    (MigrationState.REQUIRED, SessionPhase.NONE, None): Rule.START_MIGRATION,
    (MigrationState.STARTED, SessionPhase.NONE, None): Rule.RUN_CHANGE,
    (MigrationState.STARTED, SessionPhase.RUNNING, True): Rule.NOTHING,
    (MigrationState.STARTED, SessionPhase.FINISHED, True): Rule.CONFIRM,
    (MigrationState.STARTED, SessionPhase.FAILED, True): Rule.DROP,
}


def rule_for(state: MigrationState, snapshot: KeyServerSetSnapshot, session: SessionState) -> Rule:
    migration = snapshot.migration
    same = migration is not None and session.migration_id == migration.id
    found = RULES.get((state, session.phase, None))
    if found is None:
        found = RULES.get((state, session.phase, same))
    return found if found is not None else Rule.DROP_AND_RETRY


def connections_for(
    self_id: NodeId, state: MigrationState, snapshot: KeyServerSetSnapshot, session: SessionState
) -> tuple[Connect, NodeSet | None]:
    if session.phase is SessionPhase.RUNNING:
        return Connect.KEEP, None
    if state is MigrationState.STARTED and snapshot.migration is not None:
        connect, nodes = Connect.MIGRATION, dict(snapshot.migration.nodes)
    elif state is MigrationState.REQUIRED:
        connect, nodes = Connect.CURRENT_AND_NEW, {**snapshot.new, **snapshot.current}
    else:
        connect, nodes = Connect.CURRENT, dict(snapshot.current)
    return connect, (nodes if self_id in nodes else {})


# --- the stateful part: transaction and failure guards ----------------------------------------


@dataclass(slots=True)
class _Sent:
    migration_id: Hash256
    block: int


class AutoMigration:
    """Auto-migration for one node: feed it a block's view, carry out what it returns."""

    def __init__(
        self,
        self_id: NodeId,
        rng: Rng,
        *,
        retry_interval: int = DEFAULT_RETRY_INTERVAL,
        settle: int = DEFAULT_SETTLE,
    ) -> None:
        self.self_id = self_id
        self.retry_interval = retry_interval
        self.settle = settle
        self._rng = rng
        self._start_sent: _Sent | None = None
        self._confirm_sent: _Sent | None = None
        self._failed: _Sent | None = None
        #: the migration on chain and the block this node first saw it at
        self._seen: _Sent | None = None
        #: the migration whose change finished on this node (it is not run again)
        self._done: Hash256 | None = None
        #: the migration that leaves this node out, until it completes
        self._leaving: Migration | None = None

    def step(
        self,
        block: int,
        snapshot: KeyServerSetSnapshot,
        session: SessionState,
        connected: frozenset[NodeId],
    ) -> Step:
        """The decisions for block number `block`. `session`: this node's node set change
        session; `connected`: the nodes linked to this one now."""
        decisions: list[Decision] = []
        migration = snapshot.migration
        if migration is not None and (
            self._seen is None or self._seen.migration_id != migration.id
        ):
            self._seen = _Sent(migration.id, block)
        state = migration_state(self.self_id, snapshot)
        rule = rule_for(state, snapshot, session)
        if rule is Rule.DROP_AND_RETRY:
            decisions.append(DropSession())
            session = NO_SESSION
            rule = rule_for(state, snapshot, session)
        decisions += self._decide(rule, block, snapshot, session, connected)
        if any(isinstance(d, DropSession) for d in decisions):
            session = NO_SESSION
        decisions += self._left(snapshot)
        connect, connections = connections_for(self.self_id, state, snapshot, session)
        return Step(state, tuple(decisions), connect, connections)

    def admin_for(
        self, snapshot: KeyServerSetSnapshot, migration_id: Hash256 | None, nodes: frozenset[NodeId]
    ) -> NodeId | None:
        """Who may run a node set change session with `migration_id` to `nodes`: the running
        migration's master, when the id and the set are the contract's; else nobody (a slave
        then refuses the session: AccessDenied)."""
        migration = snapshot.migration
        if migration is None or migration_id != migration.id:
            return None
        if nodes != frozenset(migration.nodes):
            return None
        return migration.master

    def _decide(
        self,
        rule: Rule,
        block: int,
        snapshot: KeyServerSetSnapshot,
        session: SessionState,
        connected: frozenset[NodeId],
    ) -> list[Decision]:
        migration = snapshot.migration
        if rule is Rule.START_MIGRATION:
            if select_master(snapshot) != self.self_id:
                return []
            if self._start_sent is not None and self._recent(self._start_sent, block):
                return []
            fresh = Hash256(self._rng.random_bytes(32))
            self._start_sent = _Sent(fresh, block)
            return [StartMigration(fresh)]
        if rule is Rule.RUN_CHANGE:
            assert migration is not None
            if self._done == migration.id:  # done here: only the confirmation is left
                return self._confirm(migration.id, migration, block)
            if migration.master != self.self_id:
                return []
            others = set(migration.nodes) - {self.self_id}
            if not others <= connected:
                return []
            seen = self._seen
            if seen is not None and block < seen.block + self.settle:
                return []  # every node reads the migration first
            failed = self._failed
            if failed and failed.migration_id == migration.id and self._recent(failed, block):
                return []  # a pause after a failure
            return [RunChange(migration.id, frozenset(migration.nodes))]
        if rule is Rule.CONFIRM:
            assert migration is not None
            self._done = migration.id
            return [*self._confirm(migration.id, migration, block), DropSession()]
        if rule is Rule.DROP:
            if session.phase is SessionPhase.FAILED and session.migration_id is not None:
                self._failed = _Sent(session.migration_id, block)
            return [DropSession()]
        return []

    def _left(self, snapshot: KeyServerSetSnapshot) -> list[Decision]:
        """LeaveSet once the migration that leaves this node out has completed: the current
        set is that migration's set, without this node."""
        decisions: list[Decision] = []
        leaving = self._leaving
        current = snapshot.current
        if (
            leaving is not None
            and self.self_id not in current
            and current.keys() == leaving.nodes.keys()
        ):
            decisions.append(LeaveSet(leaving.id, leaving.master))
            self._leaving = None
        migration = snapshot.migration
        if migration is not None:
            if self.self_id in migration.nodes:
                self._leaving = None
            elif self.self_id in current:
                self._leaving = migration
        return decisions

    def _confirm(self, migration_id: Hash256, migration: Migration, block: int) -> list[Decision]:
        """ConfirmMigration, unless this node needs not (not a migration node, confirmed
        already) or sent it less than `retry_interval` blocks ago."""
        if self.self_id not in migration.nodes or migration.confirmed:
            return []
        sent = self._confirm_sent
        if sent is not None and sent.migration_id == migration_id and self._recent(sent, block):
            return []
        self._confirm_sent = _Sent(migration_id, block)
        return [ConfirmMigration(migration_id)]

    def _recent(self, sent: _Sent, block: int) -> bool:
        """True while a retry for `sent` would come too soon."""
        return sent.block <= block < sent.block + self.retry_interval
