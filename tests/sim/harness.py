"""A synchronous simulated network of NodeCores: deliver messages until quiet.

Every message goes through the wire codec, so the codec is exercised by every simulated run;
bytes that do not decode are dropped (and kept in `undecodable`), as the driver drops them.
Delivery order, drops and duplicates are chosen by a `Scheduler`, which hypothesis can drive.
Every message a node sends is kept in `sent` (sender, receiver, message), in order. With
`audit=True` every node signs receipts (its node key) and keeps the Records it asked for.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from secretstore.audit.receipts import NodeSigner
from secretstore.crypto.keys import KeyPair
from secretstore.crypto.rng import SeededRng
from secretstore.errors import MalformedMessage
from secretstore.sessions.base import (
    CheckAccess,
    Deadline,
    Fail,
    Finish,
    Persist,
    Record,
    Remove,
    Send,
    SessionContext,
    Wake,
)
from secretstore.sessions.core import (
    DEFAULT_MAX_SESSIONS_PER_PEER,
    Admitted,
    MasterFactory,
    NodeCore,
    Notice,
    SlaveFactory,
)
from secretstore.sessions.origin import CheckOrigin, OriginClaim, OriginOutcome
from secretstore.sessions.presign import PresignPool
from secretstore.storage.memory import MemoryKeyStorage
from secretstore.storage.model import Tombstone
from secretstore.types import Address, NodeId, ServerKeyId, SessionId
from secretstore.wire import codec

AccessPolicy = Callable[[NodeId, Address, ServerKeyId], bool]


def allow_all(node: NodeId, requester: Address, key_id: ServerKeyId) -> bool:
    return True


#: A node's reading of a claimed contract request: None when it is there, else why not.
OriginPolicy = Callable[[NodeId, OriginClaim], str | None]


def no_contracts(node: NodeId, claim: OriginClaim) -> str | None:
    return "this node serves no service contracts"


@dataclass
class SimNode:
    key: KeyPair
    core: NodeCore
    storage: MemoryKeyStorage
    results: dict[SessionId, Finish | Fail] = field(default_factory=dict)
    notices: list[str] = field(default_factory=list)
    outcomes: list[OriginOutcome] = field(default_factory=list)
    #: the audit entries this node asked for, in order
    records: list[Record] = field(default_factory=list)
    #: the latest Deadline each session asked for
    deadlines: dict[SessionId, float] = field(default_factory=dict)
    #: the latest Wake each session asked for, until it is fired (`SimNetwork.wake_all`)
    wakes: dict[SessionId, float] = field(default_factory=dict)

    @property
    def node_id(self) -> NodeId:
        return self.key.node_id


@dataclass
class Pending:
    sender: NodeId
    to: NodeId
    data: bytes


class Scheduler:
    """Which pending event goes next: FIFO by default; override `pick` to reorder.

    Whatever is picked, messages of one link (sender, receiver) keep their order, as on TCP.
    """

    def pick(self, pending: int) -> int:
        return 0

    def duplicate(self) -> bool:
        return False


class RandomScheduler(Scheduler):
    """Reorders (and, if asked, duplicates) deliveries from a seeded stream."""

    def __init__(self, seed: int, duplicate_rate: float = 0.0) -> None:
        self._rng = SeededRng(seed)
        self._dup = duplicate_rate

    def _unit(self) -> float:
        return int.from_bytes(self._rng.random_bytes(4), "big") / 2**32

    def pick(self, pending: int) -> int:
        return int(self._unit() * pending)

    def duplicate(self) -> bool:
        return self._unit() < self._dup


class SimNetwork:
    """N nodes with in-memory storage, connected by a perfect (or scheduled) network."""

    def __init__(
        self,
        n: int,
        masters: Mapping[type[Any], MasterFactory],
        slaves: Mapping[type[Any], SlaveFactory],
        seed: int = 1,
        access: AccessPolicy = allow_all,
        scheduler: Scheduler | None = None,
        max_sessions_per_peer: int = DEFAULT_MAX_SESSIONS_PER_PEER,
        keys: Sequence[KeyPair] = (),
        origins: OriginPolicy = no_contracts,
        audit: bool = False,
        presignatures: int = 0,
    ) -> None:
        """`keys`: the nodes' key pairs (n of them); by default n keys drawn from `seed`.
        `audit`: every node keeps an audit log (signs receipts, emits Records);
        `presignatures`: every node keeps an ECDSA presigning pool of this depth per key."""
        rng = SeededRng(seed)
        keys = list(keys) or [KeyPair.generate(rng) for _ in range(n)]
        assert len(keys) == n, f"{len(keys)} keys for {n} nodes"
        ids = frozenset(k.node_id for k in keys)
        self.nodes: dict[NodeId, SimNode] = {}
        for i, key in enumerate(keys):
            storage = MemoryKeyStorage()
            signer = NodeSigner(key) if audit else None
            pool = PresignPool(key.node_id, depth=presignatures) if presignatures else None
            ctx = SessionContext(
                key.node_id, SeededRng(seed * 1000 + i), ids, audit=signer, presigns=pool
            )
            core = NodeCore(
                ctx, storage, masters, slaves, max_sessions_per_peer=max_sessions_per_peer
            )
            self.nodes[key.node_id] = SimNode(key, core, storage)
        self.order: list[NodeId] = [k.node_id for k in keys]
        self.access = access
        self.scheduler = scheduler or Scheduler()
        self.pending: list[Pending] = []
        self.access_checks: list[tuple[NodeId, CheckAccess | CheckOrigin]] = []
        self.origins = origins
        self.origin_checks: list[tuple[NodeId, CheckOrigin]] = []
        self.down: set[NodeId] = set()
        self.cut_links: set[frozenset[NodeId]] = set()
        self.delivered = 0
        self.sent: list[tuple[NodeId, NodeId, object]] = []
        self.undecodable: list[Pending] = []

    # --- driving --------------------------------------------------------------------------
    def node(self, index: int) -> SimNode:
        return self.nodes[self.order[index]]

    def connected(self) -> frozenset[NodeId]:
        return frozenset(n for n in self.nodes if n not in self.down)

    def start(self, index: int, request: Any) -> SessionId:
        node = self.node(index)
        sid, effects = node.core.start(request, self.connected())
        self._apply(node, effects)
        return sid

    def run(self, max_steps: int = 100_000) -> int:
        """Deliver until nothing is pending; returns the number of deliveries."""
        steps = 0
        while (self.pending or self.access_checks) and steps < max_steps:
            steps += 1
            total = len(self.pending) + len(self.access_checks)
            i = self.scheduler.pick(total)
            if i < len(self.pending):
                # Links are FIFO (TCP): deliver the oldest message of the chosen link.
                link = (self.pending[i].sender, self.pending[i].to)
                i = next(j for j, p in enumerate(self.pending) if (p.sender, p.to) == link)
                item = self.pending[i]
                if not self.scheduler.duplicate():
                    del self.pending[i]
                self._deliver(item)
            else:
                node_id, check = self.access_checks.pop(i - len(self.pending))
                node = self.nodes[node_id]
                if isinstance(check, CheckOrigin):
                    problem = self.origins(node_id, check.claim)
                    self._apply(node, node.core.on_origin_checked(check.session_id, problem))
                    continue
                allowed = self.access(node_id, check.requester, check.key_id)
                self._apply(node, node.core.on_access_checked(check.session_id, allowed))
        return steps

    def disconnect(self, node_id: NodeId) -> None:
        """Take a node off the network: its pending messages vanish, the others are told."""
        self.down.add(node_id)
        self.pending = [p for p in self.pending if node_id not in (p.sender, p.to)]
        for other in self.nodes.values():
            if other.node_id != node_id:
                self._apply(other, other.core.on_node_disconnected(node_id))

    def cut(self, a: NodeId, b: NodeId) -> None:
        """Break the one link a–b (both stay on the network): its pending messages vanish,
        later ones are dropped, and each end is told that the other disconnected."""
        self.cut_links.add(frozenset((a, b)))
        self.pending = [p for p in self.pending if {p.sender, p.to} != {a, b}]
        self._apply(self.nodes[a], self.nodes[a].core.on_node_disconnected(b))
        self._apply(self.nodes[b], self.nodes[b].core.on_node_disconnected(a))

    def wake_all(self) -> None:
        """The time of every session's pending Wake has come."""
        for node in self.nodes.values():
            for sid in list(node.wakes):
                del node.wakes[sid]
                self._apply(node, node.core.on_wake(sid))

    def time_out_all(self) -> None:
        """Time out every open session at once (their errors are delivered by `run`)."""
        for node in self.nodes.values():
            for sid in list(node.core._sessions):
                self._apply(node, node.core.on_timeout(sid))

    def open_sessions(self) -> int:
        return sum(len(node.core) for node in self.nodes.values())

    def expire(self, rounds: int = 4) -> int:
        """Time out every open session as the driver's clocks do: every slave's first (its
        clock is the shorter), their errors delivered, then every master's; again until no
        session is left (at most `rounds` times). Returns the rounds it took."""
        for done in range(rounds):
            if not self.open_sessions():
                return done
            for masters in (False, True):
                for node in self.nodes.values():
                    for sid in list(node.core._sessions):
                        session = node.core.session(sid)
                        if session is not None and session.is_master == masters:
                            self._apply(node, node.core.on_timeout(sid))
                self.run()
        return rounds

    def result(self, index: int, sid: SessionId) -> Finish | Fail | None:
        return self.node(index).results.get(sid)

    def value(self, index: int, sid: SessionId) -> object:
        """The master's result, or raise its error."""
        outcome = self.result(index, sid)
        if outcome is None:
            raise AssertionError("the session has not ended")
        if isinstance(outcome, Fail):
            raise outcome.error
        return outcome.result

    def buried(self, node: SimNode, tombstone: Tombstone) -> None:
        """A node kept a tombstone; the real driver pushes it to its peers (a subclass may)."""

    # --- internals ------------------------------------------------------------------------
    def _deliver(self, item: Pending) -> None:
        if item.to in self.down:
            return
        self.delivered += 1
        node = self.nodes[item.to]
        try:
            message = codec.decode(item.data)
        except MalformedMessage:
            self.undecodable.append(item)
            return
        self._apply(node, node.core.on_message(item.sender, message))

    def _apply(self, node: SimNode, effects: Sequence[Any]) -> None:
        for effect in effects:
            if isinstance(effect, Send):
                assert effect.to != node.node_id, "a session sent a message to itself"
                self.sent.append((node.node_id, effect.to, effect.message))
                link = frozenset((node.node_id, effect.to))
                if effect.to not in self.down and link not in self.cut_links:
                    self.pending.append(
                        Pending(node.node_id, effect.to, codec.encode(effect.message))
                    )
            elif isinstance(effect, Persist):
                if effect.create:
                    node.storage.insert(effect.key_id, effect.share)
                else:
                    node.storage.update(effect.key_id, effect.share)
            elif isinstance(effect, Record):
                node.records.append(effect)
            elif isinstance(effect, Remove):
                if effect.tombstone is None:
                    node.storage.remove(effect.key_id)
                else:
                    node.storage.bury(effect.key_id, effect.tombstone)
                    self.buried(node, effect.tombstone)
            elif isinstance(effect, Deadline):
                node.deadlines[effect.session_id] = effect.seconds
            elif isinstance(effect, Wake):
                node.wakes[effect.session_id] = effect.seconds
            elif isinstance(effect, CheckAccess):
                self.access_checks.append((node.node_id, effect))
            elif isinstance(effect, CheckOrigin):
                self.origin_checks.append((node.node_id, effect))
                self.access_checks.append((node.node_id, effect))
            elif isinstance(effect, OriginOutcome):
                node.outcomes.append(effect)
            elif isinstance(effect, Finish | Fail):
                node.results[effect.session_id] = effect
            elif isinstance(effect, Admitted):
                pass
            elif isinstance(effect, Notice):
                node.notices.append(effect.text)
            else:
                raise AssertionError(f"unknown effect {effect!r}")
