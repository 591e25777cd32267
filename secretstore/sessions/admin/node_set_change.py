"""The node set change (Parity's servers set change): move every key to a new set of nodes.

Request `ChangeNodeSet(new_set, old_signature, new_signature)` on the node the administrator
asked (the master); result None once every key is on the new set and every node is done. The
old set is every node the master is connected to, plus itself. One session runs on every
node of the old set; it is exclusive (sessions/core.py): no other session starts on a node
while it runs there, and it waits (at most `drain_timeout`) for running ones to end.

| phase (role)             | waits for                            | next                          |
|--------------------------|--------------------------------------|-------------------------------|
| DRAINING (both)          | the node's other sessions to end     | master: WAITING_FOR_NODES;    |
|                          | (timeout: HasActiveSessions)         | slave: Accepted + inventory   |
|                          |                                      | sent → RUNNING                |
| WAITING_FOR_NODES        | Accepted and every InventoryPage of  | plan: a key without t+1       |
| (master)                 | every node (a refusal ends it with   | holders → ENDED: InvalidReq.; |
|                          | the refusal's error)                 | else MOVING_KEYS              |
| MOVING_KEYS (master)     | KeyMoved from every new-set node of  | all keys moved → Completed    |
|                          | each key in flight (at most          | sent → WAITING_FOR_FINISH     |
|                          | `keys_in_flight`; KeyDeal per key to |                               |
|                          | its dealers)                         |                               |
| RUNNING (slave)          | KeyDeal (deal: KeySubshare to every  | Completed: a staying node     |
|                          | new-set node), KeySubshare (all t+1  | sends Finished → ENDED; a     |
|                          | in: check, persist, KeyMoved to the  | leaving one waits for the     |
|                          | master and every leaving slave),     | KeyMoved of its keys (at most |
|                          | Progress; a leaving slave: KeyMoved  | stall_timeout), erases the    |
|                          | from new-set nodes                   | confirmed ones, keeps the     |
|                          |                                      | rest, Finished → ENDED        |
| WAITING_FOR_FINISH       | Finished from every other node       | ENDED (None)                  |
| (master)                 | (a node lost now counts as finished) |                               |

This module: the request, the settings, the part master and slaves share (dealing, receiving,
erasing); moving.py: what the change shares with the refresh; change_master.py and
change_slave.py: each role; factories.py: how a change starts.

Audit: every node records each key it deals or receives (NODE_SET_CHANGE: the dealers and
the new set, the version redistributed, the administrator as requester) before its subshares
leave or its new share is written, and each share it erases (DELETE) before erasing it.

Failures end the whole change: a refusal (AccessDenied, ConsensusUnreachable,
NodeDisconnected, HasActiveSessions), a lost node (NodeDisconnected), a bad message
(ProtocolViolation naming the node; a bad subshare names its dealer), no progress for
`stall_timeout` (SessionTimeout). Keys moved before the failure keep their new version, the
others keep the old one, nothing is erased; running the same change again finishes it.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import Enum
from typing import Any

from secretstore.audit.model import Operation
from secretstore.crypto.curve import Point
from secretstore.crypto.keys import address_of
from secretstore.errors import HasActiveSessions, NodeDisconnected, ProtocolViolation
from secretstore.sessions.admin.authority import AdminAuthority, signer_of
from secretstore.sessions.admin.moving import KeyMovingSession
from secretstore.sessions.admin.plan import KeyReader
from secretstore.sessions.base import (
    Effect,
    Persist,
    Remove,
    Send,
    SessionContext,
    short,
)
from secretstore.storage.model import KeyShare
from secretstore.types import Hash256, NodeId, ServerKeyId, SessionId
from secretstore.wire.admin import NO_KEY, KeyDeal, KeyMoved, KeySubshare, NodeSetChangeInit

#: Parity keeps 64 keys in flight; so do we unless configured otherwise.
DEFAULT_KEYS_IN_FLIGHT = 64
#: How long a node waits for its running sessions to end before refusing the change.
DEFAULT_DRAIN_TIMEOUT = 5.0
#: How long the change may go without progress before it fails.
DEFAULT_STALL_TIMEOUT = 60.0
#: The master tells every node how far it is after every this many keys (or every 5 %).
PROGRESS_EVERY = 64


@dataclass(frozen=True, slots=True)
class ChangeNodeSet:
    """Request: move every key to `new_set` (Parity's servers set change).

    `old_signature` / `new_signature`: the administrator's recoverable signatures of the
    servers set hash of the old set (every node the master is connected to, plus itself) and
    of `new_set`. `migration_id`: set for a contract-driven migration; `admin_public`: the key
    the signatures must recover to (the migration master's node key), instead of the key
    this node's AdminAuthority names. Result: None.
    """

    new_set: frozenset[NodeId]
    old_signature: bytes
    new_signature: bytes
    migration_id: Hash256 | None = None
    admin_public: Point | None = None

    @property
    def key_id(self) -> ServerKeyId:
        return NO_KEY


@dataclass(frozen=True, slots=True)
class AdminSettings:
    """What the change needs of its node beyond the session context."""

    #: which key must have signed a change
    authority: AdminAuthority
    #: every key share of this node
    keys: KeyReader
    #: the other nodes this node is connected to now
    connected: Callable[[], frozenset[NodeId]]
    keys_in_flight: int = DEFAULT_KEYS_IN_FLIGHT
    drain_timeout: float = DEFAULT_DRAIN_TIMEOUT
    stall_timeout: float = DEFAULT_STALL_TIMEOUT


class ChangePhase(Enum):
    DRAINING = "waiting for other sessions to end"
    WAITING_FOR_NODES = "waiting for every node's acceptance and inventory"
    MOVING_KEYS = "moving keys"
    RUNNING = "taking part"
    WAITING_FOR_FINISH = "waiting for every node to finish"
    ENDED = "ended"


class NodeSetChange(KeyMovingSession):
    """One node's part in a node set change (see the module docstring); the roles are
    NodeSetChangeMaster and NodeSetChangeSlave."""

    EXCLUSIVE = True
    OPERATION = Operation.NODE_SET_CHANGE
    NAME = "node set change"

    def __init__(
        self,
        ctx: SessionContext,
        session_id: SessionId,
        master: NodeId,
        settings: AdminSettings,
        init: NodeSetChangeInit,
    ) -> None:
        super().__init__(ctx, session_id, master, settings)
        self.settings = settings
        self.init = init
        self.old_set = frozenset(init.old_set)
        self.new_set = frozenset(init.new_set)
        self.drained = False
        #: True once this node's part ended with the whole change done (a slave: the master's
        #: Completed came; the master: every node finished); False while it runs or if it failed
        self.completed = False
        #: a leaving node: key -> the new-set nodes that told it they wrote their new share
        self._confirmed: dict[ServerKeyId, set[NodeId]] = {}
        admin = signer_of(init.new_signature, init.new_set)
        if admin is not None:
            self.admin = address_of(admin)

    # --- roles ----------------------------------------------------------------------------
    @abstractmethod
    def _on_drained(self) -> list[Effect]:
        """This node has no other session left: start this role's part."""

    @abstractmethod
    def _moved_here(self, moved: KeyMoved) -> list[Effect]:
        """This node wrote its new version of a key (the Persist is already among the
        effects): tell the master."""

    @abstractmethod
    def _stalled(self) -> list[Effect]:
        """No progress for `stall_timeout`."""

    @property
    def phase(self) -> ChangePhase:
        if self.finished:
            return ChangePhase.ENDED
        if not self.drained:
            return ChangePhase.DRAINING
        return self._running_phase()

    @abstractmethod
    def _running_phase(self) -> ChangePhase:
        """This role's phase once the node has drained, while the change runs."""

    # --- state ----------------------------------------------------------------------------
    @property
    def participants(self) -> frozenset[NodeId]:
        return self.old_set

    def _new_version_nodes(
        self, key_id: ServerKeyId, version: Hash256, share: Callable[[], KeyShare | None]
    ) -> frozenset[NodeId]:
        return self.new_set

    @property
    def removed(self) -> frozenset[NodeId]:
        return self.old_set - self.new_set

    @property
    def migration_id(self) -> Hash256 | None:
        """The contract migration this change runs for (None: an administrator's change)."""
        return self.init.migration_id

    def status(self) -> dict[str, Any]:
        """What /health shows of the change on this node."""
        return {
            "master": "0x" + self.master.hex(),
            "role": "master" if self.is_master else "slave",
            "phase": self.phase.value,
            "old_set": len(self.old_set),
            "new_set": len(self.new_set),
            "keys_total": self.total,
            "keys_done": self.done,
            **({"migration_id": "0x" + self.migration_id.hex()} if self.migration_id else {}),
        }

    # --- events ---------------------------------------------------------------------------
    def on_drained(self) -> list[Effect]:
        if self.finished or self.drained:
            return []
        self.drained = True
        return self._guarded(self._on_drained)

    def on_node_disconnected(self, node: NodeId) -> list[Effect]:
        if self.finished:
            return []
        return self.fail(
            NodeDisconnected(
                f"node {short(node)} disconnected during the node set change "
                f"({self._progress_text()})"
            )
        )

    def on_timeout(self) -> list[Effect]:
        if self.finished:
            return []
        if not self.drained:
            return self.fail(
                HasActiveSessions(
                    f"node {short(self.ctx.self_id)}: other sessions still ran after "
                    f"{self.settings.drain_timeout:g} s"
                )
            )
        return self._stalled()

    # --- both: dealing, receiving, erasing ------------------------------------------------
    def _on_deal(self, request: KeyDeal) -> list[Effect]:
        subshares = self._keys.deal(self.master, request)
        effects = self._audit_key(request.key_id, request.version, self._moved_to(request.dealers))
        return effects + self._deal_out(subshares)

    def _on_subshare(self, sender: NodeId, message: KeySubshare) -> list[Effect]:
        new = self._keys.receive(sender, message)
        if new is None:
            return []
        key_id = message.key_id
        dealers = [number.node for number in message.dealer_numbers]
        effects = self._audit_key(key_id, message.version, self._moved_to(dealers))
        effects.append(Persist(self.session_id, key_id, new.record, new.create))
        # a leaving slave erases a key only once every new-set node but the master (which
        # has every KeyMoved) confirmed it to it
        leaving = [] if self.is_master else sorted(self.removed - {self.master})
        moved = self._keys.moved(key_id, new)
        return effects + self._moved_here(moved) + [Send(node, moved) for node in leaving]

    def _on_confirmed(self, sender: NodeId, moved: KeyMoved) -> None:
        """A new-set node wrote its new share of a key (to a node that leaves the set)."""
        if self.ctx.self_id in self.new_set or sender not in self.new_set:
            # either the master gave the two nodes different new sets, or the sender lies
            raise ProtocolViolation(
                f"{short(sender)}, {short(self.master)}",
                "KeyMoved from a node outside the new set, or to a node that stays, by the "
                f"new set the master {short(self.master)} gave this node",
            )
        self._confirmed.setdefault(moved.key_id, set()).add(sender)

    def _unconfirmed(self) -> frozenset[NodeId]:
        """The new-set nodes but the master that have not confirmed some key this node
        holds (a leaving slave's wait before it erases)."""
        needed = self.new_set - {self.master}
        missing: set[NodeId] = set()
        for key_id in self.settings.keys.ids():
            missing |= needed - self._confirmed.get(key_id, set())
        return frozenset(missing)

    def _erase_if_removed(self) -> list[Effect]:
        """A leaving node erases its keys: the master every key (it had every new-set node's
        KeyMoved of each); a slave each key every new-set node but the master told it it
        wrote its new share of (so the key is on the new set whatever the master says),
        keeping the others and naming the nodes that did not confirm them."""
        if self.ctx.self_id in self.new_set:
            return []
        needed = frozenset() if self.is_master else self.new_set - {self.master}
        ids: list[ServerKeyId] = []
        unconfirmed: set[NodeId] = set()
        kept = 0
        for key_id in self.settings.keys.ids():
            missing = needed - self._confirmed.get(key_id, set())
            if missing:
                unconfirmed |= missing
                kept += 1
            else:
                ids.append(key_id)
        effects: list[Effect] = []
        for key_id in ids:
            effects += self._record(Operation.DELETE, key_id, (self.ctx.self_id,))
            effects.append(Remove(self.session_id, key_id))
        text = f"this node left the node set: {len(ids)} keys erased"
        if kept:
            silent = ", ".join(short(node) for node in sorted(unconfirmed))
            text += (
                f"; {kept} kept, whose new shares {silent} did not confirm (the master "
                f"{short(self.master)} said the change was complete)"
            )
        effects.append(self._notice(text))
        return effects

    def _moved_to(self, dealers: Iterable[NodeId]) -> frozenset[NodeId]:
        """The nodes of a key's move, as the audit log names them: its dealers and the new
        set."""
        return frozenset(dealers) | self.new_set

    # --- helpers --------------------------------------------------------------------------
    def _missing_dealers(self) -> frozenset[NodeId]:
        """The dealers whose subshares of a key this node has begun to receive are still
        missing."""
        return self._keys.missing_dealers()

    def _summary(self) -> str:
        added = len(self.new_set - self.old_set)
        return (
            f"master {short(self.master)}; old set {len(self.old_set)} nodes, new set "
            f"{len(self.new_set)} nodes ({len(self.removed)} leaving, {added} not in the old set)"
        )

    def _progress_text(self) -> str:
        if self.total is None:
            return "no key had moved"
        return f"{self.done} of {self.total} keys on the new set"
