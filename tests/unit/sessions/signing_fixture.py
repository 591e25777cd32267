"""Hand-built signing sessions for unit tests: a dealt key, one session object per node, and a
pump that carries their effects (FIFO, no codec, no core) with hooks to hold or alter
messages, so each test can stop the protocol where it wants and feed what it wants."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from secretstore.crypto.keys import KeyPair, sign_recoverable
from secretstore.crypto.rng import SeededRng
from secretstore.sessions.base import CheckAccess, Fail, Finish, Send, Session, SessionContext
from secretstore.types import MessageHash, NodeId, ServerKeyId, SessionId
from tests.sim.dealer import DealtKey, deal_key

SID = SessionId(b"\x05" * 32)
KEY_ID = ServerKeyId(b"\x07" * 32)
MESSAGE = MessageHash(b"\x42" * 32)

Factory = Callable[..., tuple[Session, list[Any]]]
#: (sender, receiver, message) -> the message to deliver, or None to hold it back
Filter = Callable[[NodeId, NodeId, object], object | None]


@dataclass
class Cluster:
    """n nodes holding shares of one dealt key; node 0 is the master."""

    threshold: int
    ids: list[NodeId]
    key: DealtKey
    requester: KeyPair
    signature: bytes

    def ctx(self, index: int, seed: int = 0) -> SessionContext:
        return SessionContext(self.ids[index], SeededRng(seed * 100 + index), frozenset(self.ids))


def make_cluster(n: int, threshold: int, seed: int = 1) -> Cluster:
    rng = SeededRng(seed)
    ids = sorted(KeyPair.generate(rng).node_id for _ in range(n))
    key = deal_key(rng, ids, threshold, with_document_key=False)
    requester = KeyPair.generate(rng)
    return Cluster(threshold, ids, key, requester, sign_recoverable(requester.secret, KEY_ID))


@dataclass
class Pump:
    """Carries effects between the sessions of a cluster, in FIFO order."""

    cluster: Cluster
    join: Factory
    allow: Mapping[NodeId, bool] = field(default_factory=dict)
    sessions: dict[NodeId, Session] = field(default_factory=dict)
    outcomes: dict[NodeId, Finish | Fail] = field(default_factory=dict)
    queue: list[tuple[NodeId, Send]] = field(default_factory=list)
    held: list[tuple[NodeId, Send]] = field(default_factory=list)
    checks: list[NodeId] = field(default_factory=list)
    seen: list[tuple[NodeId, NodeId, object]] = field(default_factory=list)
    down: set[NodeId] = field(default_factory=set)
    filter: Filter | None = None

    @property
    def master_id(self) -> NodeId:
        return self.cluster.ids[0]

    @property
    def master(self) -> Any:
        return self.sessions[self.master_id]

    def begin(self, session: Session, effects: list[Any]) -> None:
        self.sessions[session.ctx.self_id] = session
        self.take(session.ctx.self_id, effects)

    def take(self, node: NodeId, effects: list[Any]) -> None:
        for effect in effects:
            if isinstance(effect, Send):
                self.queue.append((node, effect))
            elif isinstance(effect, CheckAccess):
                self.checks.append(node)
            elif isinstance(effect, Finish | Fail):
                self.outcomes[node] = effect
                if isinstance(effect, Fail):
                    self.tell_failure(node, str(effect.error))

    def tell_failure(self, node: NodeId, reason: str) -> None:
        """What the core does when a session fails: a master tells every participant, a
        slave its master."""
        session = self.sessions[node]
        notify = session.participants if session.is_master else {session.master}
        for other in sorted(notify):
            peer = self.sessions.get(other)
            if other != node and other not in self.down and peer and not peer.finished:
                self.take(other, peer.on_peer_error(node, reason))

    def step(self) -> bool:
        """Answer one access check or deliver one message; False when nothing is left."""
        if self.checks:
            node = self.checks.pop(0)
            session = self.sessions[node]
            self.take(node, session.on_access_checked(self.allow.get(node, True)))
            return True
        if not self.queue:
            return False
        sender, send = self.queue.pop(0)
        self.deliver(sender, send)
        return True

    def deliver(self, sender: NodeId, send: Send) -> None:
        if send.to in self.down or sender in self.down:
            return
        message = send.message
        if self.filter is not None:
            altered = self.filter(sender, send.to, message)
            if altered is None:
                self.held.append((sender, send))
                return
            message = altered
        self.seen.append((sender, send.to, message))
        session = self.sessions.get(send.to)
        if session is None:
            index = self.cluster.ids.index(send.to)
            share = self.cluster.key.shares.get(send.to)
            created, effects = self.join(self.cluster.ctx(index), sender, message, share)
            self.begin(created, effects)
            return
        if session.finished:
            return
        self.take(send.to, session.on_message(sender, message))

    def run(self, limit: int = 100_000) -> None:
        for _ in range(limit):
            if not self.step():
                return
        raise AssertionError("the pump did not come to rest")

    def feed(self, to: NodeId, sender: NodeId, message: object) -> list[Any]:
        """Hand one message to a session directly; its effects are queued and returned."""
        effects = self.sessions[to].on_message(sender, message)
        self.take(to, effects)
        return effects

    def disconnect(self, node: NodeId) -> None:
        self.down.add(node)
        self.queue = [(s, e) for s, e in self.queue if node not in (s, e.to)]
        for other, session in self.sessions.items():
            if other != node and not session.finished:
                self.take(other, session.on_node_disconnected(node))

    def result(self) -> object:
        outcome = self.outcomes.get(self.master_id)
        if outcome is None:
            raise AssertionError("the master has not ended")
        if isinstance(outcome, Fail):
            raise outcome.error
        return outcome.result

    def sent(self, kind: type, sender: NodeId | None = None) -> list[Any]:
        return [m for s, _, m in self.seen if isinstance(m, kind) and sender in (None, s)]
