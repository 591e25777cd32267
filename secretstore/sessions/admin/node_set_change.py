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
| RUNNING (slave)          | KeyDeal (deal: KeySubshare to every  | Completed: erase every key if |
|                          | new-set node), KeySubshare (all t+1  | not in the new set, Finished  |
|                          | in: check, persist, KeyMoved),       | sent → ENDED                  |
|                          | Progress                             |                               |
| WAITING_FOR_FINISH       | Finished from every other node       | ENDED (None)                  |
| (master)                 | (a node lost now counts as finished) |                               |

Failures end the whole change: a refusal (AccessDenied, ConsensusUnreachable,
NodeDisconnected, HasActiveSessions), a lost node (NodeDisconnected), a bad message
(ProtocolViolation naming the node; a bad subshare names its dealer), no progress for
`stall_timeout` (SessionTimeout). Keys moved before the failure keep their new version, the
others keep the old one, nothing is erased; running the same change again finishes it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from secretstore.crypto.curve import ZERO, Point
from secretstore.errors import (
    AccessDenied,
    ConsensusUnreachable,
    HasActiveSessions,
    InvalidRequest,
    NodeDisconnected,
    ProtocolViolation,
    SecretStoreError,
    SessionTimeout,
)
from secretstore.sessions.admin.authority import AdminAuthority, check_admin_signatures
from secretstore.sessions.admin.plan import ChangePlan, Inventory, KeyPlan, KeyReader
from secretstore.sessions.admin.plan import inventory_pages as read_inventory
from secretstore.sessions.admin.share_change import KeyFault, KeyReceipt, deal
from secretstore.sessions.base import (
    Deadline,
    Effect,
    Notice,
    Persist,
    Remove,
    Send,
    Session,
    SessionContext,
    short,
)
from secretstore.sessions.core import MasterFactory, SlaveFactory
from secretstore.sessions.signing_common import locate_misfit, names, share_publics_fit
from secretstore.storage.model import KeyShare, version_hash
from secretstore.types import Hash256, NodeId, ServerKeyId, SessionId
from secretstore.wire.admin import (
    NO_KEY,
    InventoryPage,
    KeyChangeFault,
    KeyDeal,
    KeyMoved,
    KeySubshare,
    NodeNumber,
    NodeSetChangeAccepted,
    NodeSetChangeCompleted,
    NodeSetChangeFinished,
    NodeSetChangeInit,
    NodeSetChangeProgress,
)

#: Parity keeps 64 keys in flight; so do we unless configured otherwise.
DEFAULT_KEYS_IN_FLIGHT = 64
#: How long a node waits for its running sessions to end before refusing the change.
DEFAULT_DRAIN_TIMEOUT = 5.0
#: How long the change may go without progress before it fails.
DEFAULT_STALL_TIMEOUT = 60.0
#: The master tells every node how far it is after every this many keys (or every 5 %).
PROGRESS_EVERY = 64
#: The most keys a target collects subshares for at once (bounds a peer's flood).
MAX_OPEN_RECEIPTS = 4096


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


@dataclass(slots=True)
class _Move:
    """The master's state of one key in flight."""

    plan: KeyPlan
    moved: dict[NodeId, KeyMoved] = field(default_factory=dict)


class NodeSetChange(Session):
    """One node's part in a node set change (see the module docstring)."""

    EXCLUSIVE = True

    def __init__(
        self,
        ctx: SessionContext,
        session_id: SessionId,
        master: NodeId,
        settings: AdminSettings,
        init: NodeSetChangeInit,
    ) -> None:
        super().__init__(ctx, session_id, master, NO_KEY)
        self.settings = settings
        self.init = init
        self.old_set = frozenset(init.old_set)
        self.new_set = frozenset(init.new_set)
        self.drained = False
        self.ending = False
        # master
        self._accepted: set[NodeId] = set()
        self._pages: dict[NodeId, int] = {}
        self._inventoried: set[NodeId] = set()
        self._inventory = Inventory()
        self._plan: ChangePlan | None = None
        self._next = 0
        self._moving: dict[ServerKeyId, _Move] = {}
        self._finished_nodes: set[NodeId] = set()
        self._launching = False
        # both
        self.done = 0
        self.total: int | None = None
        self._dealt: dict[ServerKeyId, KeyDeal] = {}
        self._receipts: dict[ServerKeyId, KeyReceipt] = {}
        self._received: set[ServerKeyId] = set()

    # --- state ----------------------------------------------------------------------------
    @property
    def participants(self) -> frozenset[NodeId]:
        return self.old_set

    @property
    def others(self) -> frozenset[NodeId]:
        return self.old_set - {self.ctx.self_id}

    @property
    def removed(self) -> frozenset[NodeId]:
        return self.old_set - self.new_set

    @property
    def phase(self) -> ChangePhase:
        if self.finished:
            return ChangePhase.ENDED
        if not self.drained:
            return ChangePhase.DRAINING
        if not self.is_master:
            return ChangePhase.RUNNING
        if self.ending:
            return ChangePhase.WAITING_FOR_FINISH
        if self._plan is None:
            return ChangePhase.WAITING_FOR_NODES
        return ChangePhase.MOVING_KEYS

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
        }

    # --- events ---------------------------------------------------------------------------
    def start(self) -> list[Effect]:
        """The master's first effects: the init to every other node, the drain deadline."""
        effects: list[Effect] = [self._notice(self._summary())]
        effects += self.broadcast(self.init, self.others)
        return [*effects, Deadline(self.session_id, self.settings.drain_timeout)]

    def on_drained(self) -> list[Effect]:
        if self.finished or self.drained:
            return []
        return self._guarded(self._on_drained)

    def _on_drained(self) -> list[Effect]:
        self.drained = True
        pages = read_inventory(self.settings.keys)
        if not self.is_master:
            effects: list[Effect] = [Send(self.master, NodeSetChangeAccepted(self.session_id))]
            effects += [
                Send(self.master, InventoryPage(self.session_id, i, page, i == len(pages) - 1))
                for i, page in enumerate(pages)
            ]
            return [*effects, self._touch()]
        for page in pages:
            self._inventory.add(self.ctx.self_id, page)
        self._inventoried.add(self.ctx.self_id)
        return [self._touch(), *self._maybe_plan()]

    def on_message(self, sender: NodeId, message: object) -> list[Effect]:
        if self.finished:
            return []
        if self.is_master:
            return self._guarded(lambda: self._on_master_message(sender, message))
        return self._guarded(lambda: self._on_slave_message(sender, message))

    def _guarded(self, step: Callable[[], list[Effect]]) -> list[Effect]:
        try:
            return step()
        except KeyFault as fault:
            return self._fault(fault)
        except SecretStoreError as exc:
            return self.fail(exc)

    def on_node_disconnected(self, node: NodeId) -> list[Effect]:
        if self.finished:
            return []
        if self.is_master and self.ending:
            self._finished_nodes.add(node)
            effects: list[Effect] = [self._notice(f"node {short(node)} left before it finished")]
            return effects + self._maybe_finish()
        return self.fail(
            NodeDisconnected(
                f"node {short(node)} disconnected during the node set change "
                f"({self._progress_text()})"
            )
        )

    def on_peer_error(self, sender: NodeId, reason: str) -> list[Effect]:
        if self.finished:
            return []
        if not self.is_master:
            if sender != self.master:
                return []
            return [self._notice(f"the master ended the change: {reason[:200]}"), *self.finish()]
        return self.fail(ProtocolViolation(short(sender), f"failed: {reason[:300]}"))

    def on_peer_refusal(self, sender: NodeId, error: SecretStoreError) -> list[Effect]:
        if self.finished:
            return []
        if not self.is_master:
            return self.on_peer_error(sender, str(error))
        return self.fail(type(error)(f"node {short(sender)}: {error}"))

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
        if not self.is_master:
            return self.fail(SessionTimeout("the node set change made no progress in time"))
        return self.fail(SessionTimeout(f"no progress in time; {self._silent_text()}"))

    # --- master ---------------------------------------------------------------------------
    def _on_master_message(self, sender: NodeId, message: object) -> list[Effect]:
        if isinstance(message, KeyMoved):
            return [self._touch(), *self._on_moved(sender, message)]
        if isinstance(message, KeySubshare):
            return self._on_subshare(sender, message)
        if isinstance(message, NodeSetChangeAccepted):
            self._accepted.add(sender)
            return [self._touch()]
        if isinstance(message, InventoryPage):
            return [self._touch(), *self._on_page(sender, message)]
        if isinstance(message, KeyChangeFault):
            what = message.what[:300]
            culprits = names(message.culprits) or short(sender)
            return self.fail(
                ProtocolViolation(
                    culprits, f"{what} (key 0x{message.key_id.hex()}, seen by {short(sender)})"
                )
            )
        if isinstance(message, NodeSetChangeFinished) and self.ending:
            self._finished_nodes.add(sender)
            return self._maybe_finish()
        raise ProtocolViolation(short(sender), f"sent {type(message).__name__} out of turn")

    def _on_page(self, sender: NodeId, page: InventoryPage) -> list[Effect]:
        if sender not in self._accepted or self._plan is not None:
            raise ProtocolViolation(short(sender), "sent an inventory out of turn")
        expected = self._pages.get(sender, 0)
        if page.index < expected:
            return []  # the same page again
        if page.index > expected or sender in self._inventoried:
            raise ProtocolViolation(short(sender), f"sent inventory page {page.index} out of order")
        self._pages[sender] = expected + 1
        self._inventory.add(sender, page.entries)
        if page.last:
            self._inventoried.add(sender)
        return self._maybe_plan()

    def _maybe_plan(self) -> list[Effect]:
        if not self.drained or self._accepted != self.others or self._inventoried != self.old_set:
            return []
        plan = self._inventory.plan(self.new_set, self.ctx.rng)
        if plan.problems:
            return self.fail(InvalidRequest(plan.refusal()))
        self._plan = plan
        self.total = plan.total
        self.done = plan.in_place
        effects: list[Effect] = [
            self._notice(
                f"{len(plan.moves)} keys to move, {plan.in_place} already on the new set "
                f"(at most {self.settings.keys_in_flight} at once)"
            )
        ]
        effects += self._progress_messages()
        return effects + self._launch()

    def _launch(self) -> list[Effect]:
        plan = self._plan
        assert plan is not None
        effects: list[Effect] = []
        limit = max(1, self.settings.keys_in_flight)
        self._launching = True  # keys that complete at once do not launch again (recursion)
        try:
            effects += self._fill(plan, limit)
        finally:
            self._launching = False
        if not self._moving and self._next == len(plan.moves) and not self.ending:
            effects += self._complete()
        return effects

    def _fill(self, plan: ChangePlan, limit: int) -> list[Effect]:
        effects: list[Effect] = []
        while len(self._moving) < limit and self._next < len(plan.moves):
            key = plan.moves[self._next]
            self._next += 1
            self._moving[key.key_id] = _Move(key)
            request = KeyDeal(
                self.session_id,
                key.key_id,
                key.version,
                key.dealers,
                tuple(NodeNumber(node, number) for node, number in key.fresh),
            )
            for dealer in key.dealers:
                if dealer == self.ctx.self_id:
                    effects += self._on_deal(self.ctx.self_id, request)
                else:
                    effects.append(Send(dealer, request))
        return effects

    def _on_moved(self, sender: NodeId, moved: KeyMoved) -> list[Effect]:
        move = self._moving.get(moved.key_id)
        if move is None:
            if moved.key_id in self._received:
                return []  # an answer about a key that is done already
            raise ProtocolViolation(short(sender), "reported moving a key that is not moving")
        if sender not in self.new_set:
            raise ProtocolViolation(short(sender), "reported a key moved to a node not in the set")
        known = move.moved.setdefault(sender, moved)
        if known != moved:
            raise ProtocolViolation(short(sender), "reported a key moved twice, differently")
        if len(move.moved) < len(self.new_set):
            return []
        self._check_moved(move)
        del self._moving[moved.key_id]
        self._received.add(moved.key_id)
        self.done += 1
        effects: list[Effect] = []
        assert self.total is not None
        step = max(1, min(PROGRESS_EVERY, self.total // 20))
        if self.done % step == 0 or self.done == self.total:
            effects += self._progress_messages()
        tenth = max(1, self.total // 10)
        if self.done % tenth == 0 or self.done == self.total:
            effects.append(self._notice(f"{self.done} of {self.total} keys on the new set"))
        if self._launching:
            return effects
        return effects + self._launch()

    def _check_moved(self, move: _Move) -> None:
        """Every new holder reports the same new version, with the id numbers the plan gave,
        and the new share publics lie on one polynomial of degree t through the key."""
        plan = move.plan
        reports = move.moved
        hashes = {m.version for m in reports.values()}
        key = f"key 0x{plan.key_id.hex()}"
        if len(hashes) != 1:
            raise ProtocolViolation(names(sorted(reports)), f"reported different versions of {key}")
        for node, number in plan.fresh:
            if reports[node].number != number:
                raise ProtocolViolation(short(node), f"took another id number for {key}")
        pairs = [(node, m.number) for node, m in reports.items()]
        if len({m.number for m in reports.values()}) != len(pairs):
            raise ProtocolViolation(names(sorted(reports)), f"reported one id number twice ({key})")
        if version_hash(pairs) != next(iter(hashes)):
            raise ProtocolViolation(
                names(sorted(reports)), f"reported a version of {key} that their id numbers lack"
            )
        points = [(ZERO, plan.public)] + [(m.number, m.share_public) for m in reports.values()]
        if not share_publics_fit(plan.threshold, points):
            misfit = locate_misfit(
                plan.threshold,
                plan.public,
                {node: m.share_public for node, m in reports.items()},
                {node: m.number for node, m in reports.items()},
                sorted(reports),
            )
            blamed = short(misfit) if misfit is not None else names(sorted(reports))
            raise ProtocolViolation(blamed, f"holds a new share of {key} that does not fit the key")

    def _complete(self) -> list[Effect]:
        self.ending = True
        left = len(self.removed)
        effects: list[Effect] = [
            self._notice(
                f"every key is on the new set ({self.done} keys); "
                f"{left} {'node leaves' if left == 1 else 'nodes leave'} the set"
            )
        ]
        effects += self.broadcast(NodeSetChangeCompleted(self.session_id), self.others)
        effects += self._erase_if_removed()
        return effects + self._maybe_finish()

    def _maybe_finish(self) -> list[Effect]:
        if self.ending and self._finished_nodes >= self.others:
            return self.finish(None)
        return []

    def _progress_messages(self) -> list[Effect]:
        total = self.total or 0
        return self.broadcast(NodeSetChangeProgress(self.session_id, self.done, total), self.others)

    # --- slave ----------------------------------------------------------------------------
    def _on_slave_message(self, sender: NodeId, message: object) -> list[Effect]:
        if not self.drained:
            if sender == self.master and message == self.init:
                return []
            raise ProtocolViolation(short(sender), f"sent {type(message).__name__} too early")
        if isinstance(message, KeySubshare):
            return [self._touch(), *self._on_subshare(sender, message)]
        if sender != self.master:
            raise ProtocolViolation(short(sender), f"sent {type(message).__name__}")
        if isinstance(message, KeyDeal):
            return [self._touch(), *self._on_deal(sender, message)]
        if isinstance(message, NodeSetChangeProgress):
            self.done, self.total = message.done, message.total
            return [self._touch()]
        if isinstance(message, NodeSetChangeCompleted):
            effects = self._erase_if_removed()
            effects.append(Send(self.master, NodeSetChangeFinished(self.session_id)))
            return effects + self.finish()
        if message == self.init:
            return []
        raise ProtocolViolation(short(sender), f"sent {type(message).__name__}")

    # --- both: dealing, receiving, erasing ------------------------------------------------
    def _on_deal(self, sender: NodeId, request: KeyDeal) -> list[Effect]:
        known = self._dealt.get(request.key_id)
        if known is not None:
            if known == request:
                return []
            raise ProtocolViolation(short(sender), "asked to deal one key twice, differently")
        self._dealt[request.key_id] = request
        share = self.settings.keys.get(request.key_id)
        subshares = deal(
            self.ctx.self_id,
            self.session_id,
            request,
            master=self.master,
            share=share,
            new_set=self.new_set,
            rng=self.ctx.rng,
        )
        effects: list[Effect] = []
        for node, subshare in subshares:
            if node == self.ctx.self_id:
                effects += self._on_subshare(node, subshare)
            else:
                effects.append(Send(node, subshare))
        return effects

    def _on_subshare(self, sender: NodeId, message: KeySubshare) -> list[Effect]:
        key_id = message.key_id
        if key_id in self._received:
            return []  # late: this node has moved the key already
        if self.ctx.self_id not in self.new_set:
            raise KeyFault(key_id, [sender], "sent a subshare to a node outside the new set")
        receipt = self._receipts.get(key_id)
        if receipt is None:
            if len(self._receipts) >= MAX_OPEN_RECEIPTS:
                raise KeyFault(key_id, [sender], "sent subshares of too many keys at once")
            receipt = KeyReceipt.start(self.ctx.self_id, sender, message, self.new_set)
            self._receipts[key_id] = receipt
        if not receipt.add(sender, message):
            return []
        del self._receipts[key_id]
        self._received.add(key_id)
        new = receipt.complete(self.ctx.self_id, self.settings.keys.get(key_id))
        number = new.version.id_number(self.ctx.self_id)
        assert number is not None
        moved = KeyMoved(
            self.session_id, key_id, Hash256(new.version.hash), number, new.share_public
        )
        effects: list[Effect] = [Persist(self.session_id, key_id, new.record, new.create)]
        if self.is_master:
            return effects + self._on_moved(self.ctx.self_id, moved)
        return [*effects, Send(self.master, moved)]

    def _erase_if_removed(self) -> list[Effect]:
        if self.ctx.self_id in self.new_set:
            return []
        ids = list(self.settings.keys.ids())
        effects: list[Effect] = [Remove(self.session_id, key_id) for key_id in ids]
        effects.append(self._notice(f"this node left the node set: {len(ids)} keys erased"))
        return effects

    def _fault(self, fault: KeyFault) -> list[Effect]:
        if self.is_master:
            return self.fail(fault.violation())
        report = KeyChangeFault(self.session_id, fault.key_id, fault.culprits, fault.what)
        return [Send(self.master, report), *self.fail(fault.violation())]

    # --- helpers --------------------------------------------------------------------------
    def _touch(self) -> Deadline:
        return Deadline(self.session_id, self.settings.stall_timeout)

    def _notice(self, text: str) -> Notice:
        return Notice(f"node set change {self.session_id[:4].hex()}: {text}")

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

    def _silent_text(self) -> str:
        if self._plan is None:
            waiting = sorted((self.others - self._accepted) | (self.old_set - self._inventoried))
            return f"waiting for {names(waiting) or 'none'}"
        silent: set[NodeId] = set()
        for move in self._moving.values():
            silent |= self.new_set - set(move.moved)
        return f"{self._progress_text()}; no answer from {names(sorted(silent)) or 'none'}"


# --- factories -------------------------------------------------------------------------------


def _admin_key(
    authority: AdminAuthority,
    master: NodeId,
    migration_id: Hash256 | None,
    new_set: frozenset[NodeId],
    self_id: NodeId,
) -> Point:
    key = authority.admin_key(master, migration_id, new_set)
    if key is None:
        what = "this migration" if migration_id is not None else "a node set change"
        raise AccessDenied(
            f"node {short(self_id)} accepts no administrator for {what} (admin_public is not set)"
        )
    return key


def admin_tables(
    settings: AdminSettings,
) -> tuple[dict[type, MasterFactory], dict[type, SlaveFactory]]:
    """The master and slave factories of the node set change on one node."""

    def start(
        ctx: SessionContext,
        session_id: SessionId,
        request: ChangeNodeSet,
        share: KeyShare | None,
        connected: frozenset[NodeId],
    ) -> tuple[Session, list[Effect]]:
        self_id = ctx.self_id
        admin = request.admin_public
        if admin is None:
            admin = _admin_key(
                settings.authority, self_id, request.migration_id, request.new_set, self_id
            )
        new_set = frozenset(request.new_set)
        if not new_set:
            raise InvalidRequest(
                "the new node set is empty: a change must leave at least one node holding the keys"
            )
        old_set = frozenset(connected) | {self_id}
        outside = new_set - old_set
        if outside:
            raise InvalidRequest(
                f"nodes of the new set are not connected to this node: {names(sorted(outside))}"
            )
        missing = ctx.cluster_nodes - old_set
        if missing:
            raise NodeDisconnected(f"configured nodes are not connected: {names(sorted(missing))}")
        check_admin_signatures(
            admin, old_set, new_set, request.old_signature, request.new_signature
        )
        init = NodeSetChangeInit(
            session_id,
            request.migration_id,
            tuple(sorted(old_set)),
            tuple(sorted(new_set)),
            request.old_signature,
            request.new_signature,
        )
        session = NodeSetChange(ctx, session_id, self_id, settings, init)
        return session, session.start()

    def join(
        ctx: SessionContext, sender: NodeId, message: NodeSetChangeInit, share: KeyShare | None
    ) -> tuple[Session, list[Effect]]:
        self_id = ctx.self_id
        old_set = frozenset(message.old_set)
        new_set = frozenset(message.new_set)
        if len(old_set) != len(message.old_set) or len(new_set) != len(message.new_set):
            raise ProtocolViolation(short(sender), "sent a node set with a node twice")
        if not new_set or not new_set <= old_set or {self_id, sender} - old_set:
            raise ProtocolViolation(short(sender), "sent node sets that do not fit together")
        admin = _admin_key(settings.authority, sender, message.migration_id, new_set, self_id)
        check_admin_signatures(
            admin, old_set, new_set, message.old_signature, message.new_signature
        )
        connected = settings.connected() | {self_id}
        view = ctx.cluster_nodes & connected | {self_id}
        unreachable = (ctx.cluster_nodes - connected) | (old_set - connected)
        if unreachable:
            raise NodeDisconnected(
                f"node {short(self_id)} is not connected to {names(sorted(unreachable))}"
            )
        if view != old_set:
            raise ConsensusUnreachable(
                f"node {short(self_id)} sees another node set: {len(view)} nodes, "
                f"the change's old set has {len(old_set)}"
            )
        session = NodeSetChange(ctx, message.session_id, sender, settings, message)
        effects: list[Effect] = [
            session._notice(session._summary()),
            Deadline(message.session_id, settings.drain_timeout),
        ]
        return session, effects

    return {ChangeNodeSet: start}, {NodeSetChangeInit: join}
