"""What the node set change and the refresh share: one node's part in moving many keys.

Both sessions move keys by the same redistribution (redistribute.py): the master sends
`KeyDeal` to each key's dealers, a dealer sends `KeySubshare` to every new holder, a new
holder writes its new version and reports `KeyMoved`. `KeyMovingSession` is that part of a
node's session, whatever its role: the messages and faults (a fault about one key ends the
session; a slave first tells the master, `KeyChangeFault`), a dealer's subshares sent out
(its own one taken in at once), the audit entry of each key (once per key on a node,
before its first subshare leaves or its new share is written), the stall deadline and the
notices. `KeyMovingMaster` adds what both masters do: send each key's deal to its dealers,
fail on a slave's failure or fault report, and name the nodes the keys in flight wait for.

The phases, the plan and the end of each session are its own (node_set_change.py,
refresh.py: their transition tables).
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Callable
from typing import ClassVar, Protocol

from secretstore.audit.model import Operation, facts_of
from secretstore.errors import ProtocolViolation, SecretStoreError
from secretstore.sessions.admin.plan import KeyPlan, KeyReader
from secretstore.sessions.admin.redistribute import KeyInFlight, Redistribution
from secretstore.sessions.admin.share_change import KeyFault
from secretstore.sessions.audit import record
from secretstore.sessions.base import (
    Deadline,
    Effect,
    Notice,
    Send,
    Session,
    SessionContext,
    short,
)
from secretstore.sessions.signing_common import names
from secretstore.storage.model import KeyShare
from secretstore.types import Address, Hash256, NodeId, ServerKeyId, SessionId
from secretstore.wire.admin import (
    NO_KEY,
    KeyChangeFault,
    KeyDeal,
    KeySubshare,
    NodeNumber,
)


class MovingSettings(Protocol):
    """What a session that moves keys needs of its node's settings."""

    #: every key share of this node
    @property
    def keys(self) -> KeyReader: ...

    #: how long the session may go without progress before it fails
    @property
    def stall_timeout(self) -> float: ...


class KeyMovingSession(Session):
    """One node's part in a session that moves keys (see the module docstring)."""

    #: what the audit log records of each key the session moves on this node
    OPERATION: ClassVar[Operation]
    #: how the session's notices name it
    NAME: ClassVar[str]

    def __init__(
        self, ctx: SessionContext, session_id: SessionId, master: NodeId, settings: MovingSettings
    ) -> None:
        super().__init__(ctx, session_id, master, NO_KEY)
        self.stall_timeout = settings.stall_timeout
        self.done = 0
        self.total: int | None = None
        #: the administrator who signed the session (None: none did): the audit log's requester
        self.admin: Address | None = None
        self._keys = Redistribution(
            ctx.self_id,
            session_id,
            master=master,
            keys=settings.keys,
            rng=ctx.rng,
            new_set_of=self._new_version_nodes,
        )
        #: keys this node has recorded in its audit log (once each, dealer or new holder)
        self._audited: set[ServerKeyId] = set()

    # --- roles ----------------------------------------------------------------------------
    @abstractmethod
    def _new_version_nodes(
        self, key_id: ServerKeyId, version: Hash256, share: Callable[[], KeyShare | None]
    ) -> frozenset[NodeId]:
        """The nodes the new version of `key_id` lists, when `version` is dealt (`share`
        reads this node's record of it): `Redistribution`'s `new_set_of`."""

    @abstractmethod
    def _dispatch(self, sender: NodeId, message: object) -> list[Effect]:
        """A message of the session."""

    @abstractmethod
    def _on_deal(self, request: KeyDeal) -> list[Effect]:
        """The master asks this node to deal a key."""

    @abstractmethod
    def _on_subshare(self, sender: NodeId, message: KeySubshare) -> list[Effect]:
        """A dealer's subshare of a key for this node (this node's own one included)."""

    # --- state ----------------------------------------------------------------------------
    @property
    def others(self) -> frozenset[NodeId]:
        return self.participants - {self.ctx.self_id}

    # --- events ---------------------------------------------------------------------------
    def on_message(self, sender: NodeId, message: object) -> list[Effect]:
        if self.finished:
            return []
        return self._guarded(lambda: self._dispatch(sender, message))

    def _guarded(self, step: Callable[[], list[Effect]]) -> list[Effect]:
        """`step`'s effects; a fault about one key, or any other error, ends the session."""
        try:
            return step()
        except KeyFault as fault:
            return self._fault(fault)
        except SecretStoreError as exc:
            return self.fail(exc)

    def _fault(self, fault: KeyFault) -> list[Effect]:
        """A node sent something wrong for one key: the session fails naming it (a slave
        tells the master first, which fails the whole session with the same culprits)."""
        effects: list[Effect] = []
        if not self.is_master:
            report = KeyChangeFault(self.session_id, fault.key_id, fault.culprits, fault.what)
            effects.append(Send(self.master, report))
        return effects + self.fail(fault.violation())

    # --- dealing and the audit log --------------------------------------------------------
    def _deal_out(self, subshares: list[tuple[NodeId, KeySubshare]]) -> list[Effect]:
        """Send this dealer's subshares, taking in its own one at once."""
        effects: list[Effect] = []
        for node, subshare in subshares:
            if node == self.ctx.self_id:
                effects += self._on_subshare(node, subshare)
            else:
                effects.append(Send(node, subshare))
        return effects

    def _audit_key(
        self, key_id: ServerKeyId, version: bytes, participants: frozenset[NodeId]
    ) -> list[Effect]:
        """The audit entry of moving `key_id` (once per key on this node)."""
        if key_id in self._audited:
            return []
        self._audited.add(key_id)
        return self._record(self.OPERATION, key_id, participants, version)

    def _record(
        self,
        operation: Operation,
        key_id: ServerKeyId,
        participants: frozenset[NodeId] | tuple[NodeId, ...],
        version: bytes | None = None,
    ) -> list[Effect]:
        """This node's audit entry of `operation` on `key_id` in this session, the
        administrator as the requester."""
        facts = facts_of(
            operation,
            key_id,
            session_id=self.session_id,
            master=self.master,
            requester=self.admin,
            participants=participants,
            key_version=version,
        )
        return record(self.ctx, facts)[0]

    # --- helpers --------------------------------------------------------------------------
    def _touch(self) -> Deadline:
        return Deadline(self.session_id, self.stall_timeout)

    def _notice(self, text: str) -> Notice:
        return Notice(f"{self.NAME} {self.session_id[:4].hex()}: {text}")


class KeyMovingMaster(KeyMovingSession):
    """What both masters add: the deals, a slave's failure, the keys in flight."""

    #: the keys dealt whose new holders have not all reported yet
    _moving: dict[ServerKeyId, KeyInFlight]

    @abstractmethod
    def _new_holders(self, plan: KeyPlan) -> frozenset[NodeId]:
        """The nodes that get a share of the new version of `plan`'s key."""

    def on_peer_error(self, sender: NodeId, reason: str) -> list[Effect]:
        if self.finished:
            return []
        what = f"failed: {reason[:300]}{self.still_waiting(sender)}"
        return self.fail(ProtocolViolation(short(sender), what))

    def _reported_fault(self, sender: NodeId, message: KeyChangeFault) -> list[Effect]:
        """A slave's report of a node that sent it something wrong: fail in the culprits'
        names."""
        culprits = names(message.culprits) or short(sender)
        return self.fail(
            ProtocolViolation(
                culprits,
                f"{message.what[:300]} (key 0x{message.key_id.hex()}, seen by {short(sender)})",
            )
        )

    def _deal_key(self, plan: KeyPlan) -> list[Effect]:
        """Start `plan`'s key: its KeyDeal to each of its dealers (this node's own part dealt
        at once; no more once the session has ended)."""
        self._moving[plan.key_id] = KeyInFlight(plan)
        request = KeyDeal(
            self.session_id,
            plan.key_id,
            plan.version,
            plan.dealers,
            tuple(NodeNumber(node, number) for node, number in plan.fresh),
        )
        effects: list[Effect] = []
        for dealer in plan.dealers:
            if dealer == self.ctx.self_id:
                effects += self._on_deal(request)
                if self.finished:
                    return effects
            else:
                effects.append(Send(dealer, request))
        return effects

    def _waiting_for_keys(self) -> frozenset[NodeId]:
        """The new holders of each key in flight that have not reported it, the dealers of
        this node's own subshares still missing, and the dealers of a key of which this node
        is a new holder and has had no subshare yet."""
        waiting = set(self._keys.missing_dealers())
        for move in self._moving.values():
            holders = self._new_holders(move.plan)
            waiting |= holders - set(move.moved)
            mine = self.ctx.self_id in holders and self.ctx.self_id not in move.moved
            if mine and not self._keys.receiving(move.plan.key_id):  # none of its subshares
                waiting |= set(move.plan.dealers)
        return frozenset(waiting)
