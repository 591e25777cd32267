"""Key version negotiation: which version of a key enough reachable nodes hold, and who.

Request: `NegotiateKeyVersion(key_id)`. Result: `NegotiatedVersion` (the newest version
held by at least t+1 reachable nodes, those nodes, and the key's author/threshold/public).

Embedding (decryption, signing): the master builds a `VersionNegotiation` with the nodes it
asks; each asked node answers with `describe_holding(its share)` (a `KeyVersionsHeld`, which
the embedding session carries in its own messages); the master feeds the answers to
`on_versions`, reports nodes that went away with `on_node_gone`, and once `done` calls
`result()`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from secretstore.errors import (
    ConsensusUnreachable,
    ProtocolViolation,
    SecretStoreError,
    ServerKeyNotFound,
    SessionTimeout,
)
from secretstore.sessions.base import Effect, ReplyOnly, Send, Session, SessionContext, short
from secretstore.sessions.core import MasterFactory, SlaveFactory
from secretstore.storage.model import KeyShare
from secretstore.types import Hash256, NodeId, ServerKeyId, SessionId
from secretstore.wire.negotiation import (
    CommonKeyData,
    KeyVersions,
    KeyVersionsHeld,
    RequestKeyVersions,
)


@dataclass(frozen=True, slots=True)
class NegotiateKeyVersion:
    """Find the version of `key_id` to use. Result: NegotiatedVersion."""

    key_id: ServerKeyId


@dataclass(frozen=True, slots=True)
class NegotiatedVersion:
    """The newest version held by at least `threshold + 1` reachable nodes (`holders`, all
    that reported it), with the key's common data."""

    version: Hash256
    holders: frozenset[NodeId]
    common: CommonKeyData

    @property
    def threshold(self) -> int:
        return self.common.threshold


def describe_holding(share: KeyShare | None) -> KeyVersionsHeld:
    """What this node reports about a key it holds (or not)."""
    if share is None:
        return KeyVersionsHeld(None, ())
    common = CommonKeyData(share.author, share.threshold, share.public)
    return KeyVersionsHeld(common, tuple(Hash256(v.hash) for v in share.versions))


class VersionNegotiation:
    """The master's side: collect what each asked node holds, then choose a version.

    The master's own holding counts as an answer. The key's common data is the master's own
    if it holds the key, else the first reported; a node reporting other common data, or
    versions without common data, or answering twice or unasked, is a ProtocolViolation.
    """

    def __init__(self, self_id: NodeId, share: KeyShare | None, asked: Iterable[NodeId]) -> None:
        self.self_id = self_id
        self.asked = frozenset(asked) - {self_id}
        self._waiting = set(self.asked)
        self._held: dict[NodeId, KeyVersionsHeld] = {}
        self._common: CommonKeyData | None = None
        self._accept(self_id, describe_holding(share))

    @property
    def waiting(self) -> frozenset[NodeId]:
        """Asked nodes that neither answered nor went away."""
        return frozenset(self._waiting)

    @property
    def done(self) -> bool:
        return not self._waiting

    def on_versions(self, sender: NodeId, held: KeyVersionsHeld) -> None:
        if sender not in self._waiting:
            raise ProtocolViolation(short(sender), "sent key versions it was not asked for")
        self._waiting.discard(sender)
        self._accept(sender, held)

    def on_node_gone(self, node: NodeId) -> None:
        """`node` will not answer (disconnected, failed, timed out); it holds nothing usable."""
        self._waiting.discard(node)

    def result(self, signers: Callable[[int], int] | None = None) -> NegotiatedVersion:
        """The newest version with t+1 answering holders (`signers(t)` holders when given,
        e.g. 2t+1 for ECDSA signing). ServerKeyNotFound if no node that answered holds the key;
        ConsensusUnreachable if no version has enough holders."""
        if self._common is None:
            raise ServerKeyNotFound("no key server holds this key")
        holders: dict[Hash256, set[NodeId]] = {}
        newness: dict[Hash256, int] = {}
        for node, held in self._held.items():
            for position, version in enumerate(held.versions):
                holders.setdefault(version, set()).add(node)
                newness[version] = max(newness.get(version, 0), position)
        threshold = self._common.threshold
        needed = threshold + 1 if signers is None else signers(threshold)
        usable = [v for v, nodes in holders.items() if len(nodes) >= needed]
        if not usable:
            raise ConsensusUnreachable(
                f"no version of the key is held by {needed} reachable key servers"
            )
        best = max(usable, key=lambda v: (newness[v], len(holders[v]), v))
        return NegotiatedVersion(best, frozenset(holders[best]), self._common)

    def _accept(self, node: NodeId, held: KeyVersionsHeld) -> None:
        if held.common is None:
            if held.versions:
                raise ProtocolViolation(short(node), "reported versions without key data")
            return
        if not held.versions:
            raise ProtocolViolation(short(node), "reported key data without versions")
        if len(set(held.versions)) != len(held.versions):
            raise ProtocolViolation(short(node), "reported a version twice")
        if self._common is None:
            self._common = held.common
        elif held.common != self._common:
            raise ProtocolViolation(short(node), "reported another author, threshold or public")
        self._held[node] = held


class KeyVersionSession(Session):
    """The master's session asking every connected node for its versions of a key.

    | phase                  | waits for                           | next                    |
    |------------------------|-------------------------------------|-------------------------|
    | WAITING_FOR_VERSIONS   | KeyVersions from every asked node   | choose → FINISHED       |
    |                        | (a disconnect or a peer's error     | (NegotiatedVersion, or  |
    |                        | counts as "holds nothing")          | the error of `result`)  |

    A slave's part is a single KeyVersions reply. On timeout the master decides with the
    answers it has (SessionTimeout if it found nothing while nodes were still silent).
    Subclasses turn the outcome into their own result (`conclude`).
    """

    def __init__(
        self,
        ctx: SessionContext,
        session_id: SessionId,
        key_id: ServerKeyId,
        negotiation: VersionNegotiation,
    ) -> None:
        super().__init__(ctx, session_id, ctx.self_id, key_id)
        self.negotiation = negotiation

    @property
    def participants(self) -> frozenset[NodeId]:
        return self.negotiation.asked | {self.ctx.self_id}

    def conclude(self, outcome: NegotiatedVersion) -> list[Effect]:
        """The session's result from the negotiated version (here: the version itself)."""
        return self.finish(outcome)

    def on_message(self, sender: NodeId, message: object) -> list[Effect]:
        if not isinstance(message, KeyVersions):
            return self.fail(
                ProtocolViolation(short(sender), f"sent {type(message).__name__} out of turn")
            )
        try:
            self.negotiation.on_versions(sender, message.held)
        except SecretStoreError as exc:
            return self.fail(exc)
        return self.try_decide()

    def on_node_disconnected(self, node: NodeId) -> list[Effect]:
        self.negotiation.on_node_gone(node)
        return self.try_decide()

    def on_peer_error(self, sender: NodeId, reason: str) -> list[Effect]:
        self.negotiation.on_node_gone(sender)
        return self.try_decide()

    def on_timeout(self) -> list[Effect]:
        silent = self.negotiation.waiting
        for node in silent:
            self.negotiation.on_node_gone(node)
        try:
            outcome = self.negotiation.result()
        except SecretStoreError as exc:
            if silent:
                return self.fail(SessionTimeout(f"{len(silent)} key servers did not answer"))
            return self.fail(exc)
        return self.conclude(outcome)

    def try_decide(self) -> list[Effect]:
        if not self.negotiation.done or self.finished:
            return []
        try:
            outcome = self.negotiation.result()
        except SecretStoreError as exc:
            return self.fail(exc)
        return self.conclude(outcome)


# --- factories -----------------------------------------------------------------------------


def start_negotiation(
    ctx: SessionContext,
    session_id: SessionId,
    request: NegotiateKeyVersion,
    share: KeyShare | None,
    connected: frozenset[NodeId],
) -> tuple[Session, list[Effect]]:
    """Master: ask every other connected node which versions of the key it holds."""
    negotiation = VersionNegotiation(ctx.self_id, share, connected)
    return open_session(KeyVersionSession(ctx, session_id, request.key_id, negotiation))


def open_session(session: KeyVersionSession) -> tuple[Session, list[Effect]]:
    """Start a (subclass of) KeyVersionSession: ask every node its negotiation asks."""
    request = RequestKeyVersions(session.session_id, session.key_id)
    effects = session.broadcast(request, session.negotiation.asked)
    return session, effects + session.try_decide()


def answer_negotiation(
    ctx: SessionContext, sender: NodeId, message: RequestKeyVersions, share: KeyShare | None
) -> tuple[Session, list[Effect]]:
    """Slave: report this node's versions of the key."""
    reply = ReplyOnly(ctx, message.session_id, sender, message.key_id)
    answer = KeyVersions(message.session_id, describe_holding(share))
    return reply, [Send(sender, answer), *reply.finish()]


MASTERS: dict[type, MasterFactory] = {NegotiateKeyVersion: start_negotiation}
SLAVES: dict[type, SlaveFactory] = {RequestKeyVersions: answer_negotiation}
