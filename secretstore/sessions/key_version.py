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
)
from secretstore.sessions.base import (
    Effect,
    ReplyOnly,
    Send,
    Session,
    SessionContext,
    short,
    timed_out_waiting_for,
)
from secretstore.sessions.consensus import MAX_LOSS_TEXT
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
    that reported it), with the key's common data; `proven_by`: the holders that keep its
    commitments (an answer served with that version must carry proofs)."""

    version: Hash256
    holders: frozenset[NodeId]
    common: CommonKeyData
    proven_by: frozenset[NodeId] = frozenset()

    @property
    def threshold(self) -> int:
        return self.common.threshold


def describe_holding(share: KeyShare | None) -> KeyVersionsHeld:
    """What this node reports about a key it holds (or not)."""
    if share is None:
        return KeyVersionsHeld(None, ())
    common = CommonKeyData(share.author, share.threshold, share.public)
    versions = tuple(Hash256(v.hash) for v in share.versions)
    proven = tuple(Hash256(v.hash) for v in share.versions if v.commitments is not None)
    return KeyVersionsHeld(common, versions, proven)


class VersionNegotiation:
    """The master's side: collect what each asked node holds, then choose a version.

    The master's own holding counts as an answer. The key's common data is the master's own
    if it holds the key (a node reporting other data is then a ProtocolViolation at once);
    a master without the key decides once every answer is in: the data most holders report,
    naming the nodes that reported other data in a ProtocolViolation (every reporter, when
    no data has more reporters than any other). A node reporting versions without common
    data, data without versions, a version twice, commitments of a version it does not
    list, or answering twice or unasked, is a ProtocolViolation too.
    """

    def __init__(self, self_id: NodeId, share: KeyShare | None, asked: Iterable[NodeId]) -> None:
        self.self_id = self_id
        self.asked = frozenset(asked) - {self_id}
        self._waiting = set(self.asked)
        self._held: dict[NodeId, KeyVersionsHeld] = {}
        #: why each asked node that went away will not answer, in order (for the error text)
        self._losses: list[str] = []
        #: the master's own key data, which every answer must match (None without a share)
        self._own: CommonKeyData | None = None if share is None else describe_holding(share).common
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

    def on_node_gone(self, node: NodeId, why: str = "disconnected") -> None:
        """`node` will not answer (disconnected, failed, timed out); it holds nothing usable.
        `why` goes into the error if too few holders are left."""
        if node in self._waiting:
            self._waiting.discard(node)
            self._losses.append(f"node {short(node)} {why[:MAX_LOSS_TEXT]}")

    def result(
        self, signers: Callable[[int], int] | None = None, rule: str = "t+1"
    ) -> NegotiatedVersion:
        """The newest version with t+1 answering holders (`signers(t)` holders when given,
        e.g. 2t+1 for ECDSA signing, which `rule` names in the error). ServerKeyNotFound if no
        node that answered holds the key; ConsensusUnreachable, saying how many holders are
        needed, how many the best version has and which nodes were lost, if no version has
        enough; ProtocolViolation naming the nodes whose key data differs from most holders'."""
        common = self._own if self._own is not None else self._agreed_common()
        if common is None:
            raise ServerKeyNotFound("no key server holds this key")
        holders: dict[Hash256, set[NodeId]] = {}
        newness: dict[Hash256, int] = {}
        for node, held in self._held.items():
            for position, version in enumerate(held.versions):
                holders.setdefault(version, set()).add(node)
                newness[version] = max(newness.get(version, 0), position)
        needed = common.threshold + 1 if signers is None else signers(common.threshold)
        usable = [v for v, nodes in holders.items() if len(nodes) >= needed]
        if not usable:
            most = max((len(nodes) for nodes in holders.values()), default=0)
            lost = f"; {'; '.join(self._losses)}" if self._losses else ""
            raise ConsensusUnreachable(
                f"no version of the key is held by {needed} reachable key servers ({rule}: "
                f"{needed} needed, at most {most} reachable{lost})"
            )
        best = max(usable, key=lambda v: (newness[v], len(holders[v]), v))
        proven_by = frozenset(node for node in holders[best] if best in self._held[node].proven)
        return NegotiatedVersion(best, frozenset(holders[best]), common, proven_by)

    def _agreed_common(self) -> CommonKeyData | None:
        """For a master without the key: the key data every holder reported, or (if they
        differ) ProtocolViolation naming those outside the largest group."""
        groups: dict[CommonKeyData, list[NodeId]] = {}
        for node, held in sorted(self._held.items()):
            if held.common is not None:
                groups.setdefault(held.common, []).append(node)
        if len(groups) <= 1:
            return next(iter(groups), None)
        sizes = sorted((len(nodes) for nodes in groups.values()), reverse=True)
        largest = max(groups, key=lambda data: len(groups[data]))
        if sizes[0] == sizes[1]:
            odd = sorted(node for nodes in groups.values() for node in nodes)
            what = "reported different authors, thresholds or publics (no majority)"
        else:
            odd = sorted(
                node for data, nodes in groups.items() if data != largest for node in nodes
            )
            what = "reported another author, threshold or public than most holders"
        raise ProtocolViolation(", ".join(short(node) for node in odd), what)

    def _accept(self, node: NodeId, held: KeyVersionsHeld) -> None:
        if held.common is None:
            if held.versions:
                raise ProtocolViolation(short(node), "reported versions without key data")
            return
        if not held.versions:
            raise ProtocolViolation(short(node), "reported key data without versions")
        if len(set(held.versions)) != len(held.versions):
            raise ProtocolViolation(short(node), "reported a version twice")
        if not set(held.proven) <= set(held.versions) or len(set(held.proven)) != len(held.proven):
            raise ProtocolViolation(short(node), "reported commitments of versions it lacks")
        if self._own is not None and held.common != self._own:
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
    answers it has (SessionTimeout naming the silent nodes if it found nothing while they were
    still silent).
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
        self.negotiation.on_node_gone(sender, f"failed: {reason}")
        return self.try_decide()

    def waiting_for(self) -> frozenset[NodeId]:
        return self.negotiation.waiting

    def on_timeout(self) -> list[Effect]:
        silent = self.negotiation.waiting
        for node in silent:
            self.negotiation.on_node_gone(node, "did not answer before the session timed out")
        try:
            outcome = self.negotiation.result()
        except SecretStoreError as exc:
            if silent:
                return self.fail(timed_out_waiting_for(silent))
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
