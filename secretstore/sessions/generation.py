"""Server key generation: every configured node runs one ECDKG and stores its share of the key.

Request: `GenerateServerKey(key_id, author, threshold)` (`author`: a RequesterProof: the
author's signature, or a service contract's request naming the author's account). Result on
every node once it stored its share: the server key public (`Point`); the master's is its
caller's (a slave's serves a service contract's request: each node publishes it).

Every node recovers the author from the proof itself and records that one. Every DKG message
carries the sender's `generation_context` (key id, author, threshold, id numbers); a node
whose own context differs fails the session, so a master that tells nodes different authors
gets no key stored anywhere.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from secretstore.audit.model import Operation, facts_of
from secretstore.crypto.bound import BoundOperation, generation_payload
from secretstore.crypto.curve import Point, Scalar, hash_to_point
from secretstore.crypto.hashing import keccak256
from secretstore.crypto.shamir import random_id_numbers
from secretstore.errors import (
    ConsensusUnreachable,
    CryptoError,
    InvalidRequest,
    ProtocolViolation,
    SecretStoreError,
    ServerKeyAlreadyGenerated,
)
from secretstore.sessions.audit import record
from secretstore.sessions.base import (
    Effect,
    Persist,
    ReplyOnly,
    Send,
    Session,
    SessionContext,
    TimeoutReports,
    short,
    timed_out_waiting_for,
)
from secretstore.sessions.consensus import Requester
from secretstore.sessions.core import MasterFactory, SlaveFactory
from secretstore.sessions.dkg import DkgRun, Outgoing
from secretstore.sessions.requester import author_of, check_binding
from secretstore.storage.model import KeyShare
from secretstore.types import Address, Hash256, NodeId, ServerKeyId, SessionId
from secretstore.wire.codec import AnyMessage
from secretstore.wire.generation import (
    CommitGeneration,
    ConfirmGenerationInitialization,
    GenerationDkg,
    GenerationKeyReady,
    GenerationKeyStored,
    InitializeGeneration,
    NodeIdNumber,
    StartKeysDissemination,
)
from secretstore.wire.requester import RequesterProof

#: The domain tag of a generation context digest.
CONTEXT_DOMAIN = b"secretstore:generation-context:v1"


@dataclass(frozen=True, slots=True)
class GenerateServerKey:
    """Generate server key `key_id` owned by the author that `author` proves (its signature
    over the key id); any `threshold + 1` nodes can use it (0 ≤ threshold < number of
    configured nodes). `bound_signature`: the requester's optional signature over this
    generation with this threshold (crypto/bound.py; required where the node's policy
    requires bound requests). Result: the server key public (Point)."""

    key_id: ServerKeyId
    author: RequesterProof
    threshold: int
    bound_signature: bytes | None = None


class GenerationPhase(enum.Enum):
    WAITING_FOR_CONFIRMATIONS = "waiting for confirmations"
    WAITING_FOR_START = "waiting for start"
    WAITING_FOR_DKG = "waiting for the DKG"
    WAITING_FOR_COMMIT = "waiting for commit"
    WAITING_FOR_STORED = "waiting for stored confirmations"
    FINISHED = "finished"


def derived_point(session_id: SessionId, key_id: ServerKeyId) -> Point:
    """The Pedersen H of a generation session: nobody knows its discrete log."""
    return hash_to_point(session_id + key_id)


def generation_context(
    key_id: ServerKeyId, author: Address, threshold: int, id_numbers: dict[NodeId, Scalar]
) -> Hash256:
    """What a node generates for, as one digest: every node of one session must agree on it.

    keccak256(CONTEXT_DOMAIN ‖ key_id ‖ author ‖ threshold (8 bytes) ‖ (node id ‖ id number)
    for every node in ascending node id order)."""
    pairs = b"".join(node + number.to_bytes() for node, number in sorted(id_numbers.items()))
    return Hash256(
        keccak256(CONTEXT_DOMAIN + key_id + author + threshold.to_bytes(8, "big") + pairs)
    )


class GenerationSession(Session):
    """One node's part in generating a server key (every configured node takes part).

    | phase (role)                       | waits for                       | next               |
    |------------------------------------|---------------------------------|--------------------|
    | WAITING_FOR_CONFIRMATIONS (master) | ConfirmGenerationInitialization | all → send Start,  |
    |                                    | from every node (key_exists →   | deal: WAITING_FOR_ |
    |                                    | fail ServerKeyAlreadyGenerated) | DKG                |
    | WAITING_FOR_START (slave)          | StartKeysDissemination (master) | deal: WAITING_FOR_ |
    |                                    |                                 | DKG                |
    | WAITING_FOR_DKG                    | GenerationDkg rounds (kept if   | slave: DKG done →  |
    |                                    | early); master also every       | send KeyReady,     |
    |                                    | GenerationKeyReady              | WAITING_FOR_COMMIT |
    |                                    |                                 | master: own DKG +  |
    |                                    |                                 | all ready, same    |
    |                                    |                                 | public → Persist,  |
    |                                    |                                 | send Commit,       |
    |                                    |                                 | WAITING_FOR_STORED |
    | WAITING_FOR_COMMIT (slave)         | CommitGeneration (master); the  | Persist, send      |
    |                                    | loss of another slave is        | KeyStored: FINISHED|
    |                                    | ignored (the master decides)    |                    |
    | WAITING_FOR_STORED (master)        | GenerationKeyStored from every  | FINISHED (public)  |
    |                                    | node                            |                    |

    Nodes store only after the master saw every node finish the DKG with the same public (a
    two-phase commit), so a failed run leaves no share behind unless a node fails between
    commit and store. Any other message, a bad DKG message, a DKG message with another
    context (author, threshold, id numbers), a disconnect or a peer's error fails the
    session. No node finishes its DKG without a message from every other node, so no node
    stores unless every node generated for the same author.
    """

    WRITES_KEY = True

    def __init__(
        self,
        ctx: SessionContext,
        session_id: SessionId,
        master: NodeId,
        key_id: ServerKeyId,
        *,
        author: Address,
        threshold: int,
        id_numbers: dict[NodeId, Scalar],
    ) -> None:
        super().__init__(ctx, session_id, master, key_id)
        self.author = author
        self.threshold = threshold
        self.id_numbers = dict(sorted(id_numbers.items()))
        self.context = generation_context(key_id, author, threshold, self.id_numbers)
        self.dkg = DkgRun(
            ctx.self_id, ctx.rng, id_numbers, threshold, derived_point(session_id, key_id)
        )
        self.phase = (
            GenerationPhase.WAITING_FOR_CONFIRMATIONS
            if self.is_master
            else GenerationPhase.WAITING_FOR_START
        )
        self.public: Point | None = None
        self._share: KeyShare | None = None
        self._confirmed: set[NodeId] = {ctx.self_id}
        self._ready: dict[NodeId, Point] = {}
        self._stored: set[NodeId] = {ctx.self_id}
        self._timeouts = TimeoutReports()

    @property
    def participants(self) -> frozenset[NodeId]:
        return frozenset(self.id_numbers)

    def waiting_for(self) -> frozenset[NodeId]:
        """Whom this node waits for in its phase: the master's next step, the DKG round's
        missing senders, or the nodes whose confirmation, ready or stored message is due."""
        phase = self.phase
        if phase is GenerationPhase.WAITING_FOR_CONFIRMATIONS:
            return self.participants - self._confirmed
        if phase is GenerationPhase.WAITING_FOR_DKG:
            if self._share is None:
                return self.dkg.waiting_for()
            return self.participants - {self.ctx.self_id} - set(self._ready)
        if phase is GenerationPhase.WAITING_FOR_STORED:
            return self.participants - self._stored
        if phase is GenerationPhase.FINISHED:
            return frozenset()
        return frozenset({self.master})

    # --- events ---------------------------------------------------------------------------
    def on_peer_timeout(self, sender: NodeId, reason: str) -> list[Effect]:
        """A master keeps its slaves' timeout reports until every node it waits for has
        reported (a slave that waited for another names it), then fails with all of them."""
        if not self.is_master:
            return super().on_peer_timeout(sender, reason)
        self._timeouts.add(sender, reason)
        waiting = self.waiting_for()
        if self._timeouts.cover(waiting):
            return self.fail(timed_out_waiting_for(waiting, self._timeouts))
        return []

    def on_timeout(self) -> list[Effect]:
        return self.fail(timed_out_waiting_for(self.waiting_for(), self._timeouts))

    def on_node_disconnected(self, node: NodeId) -> list[Effect]:
        """A slave that finished its DKG needs nothing more from the other slaves, only the
        master's commit: it keeps waiting for it when another slave goes away (else a slave
        lost around the commit would make the others drop a key the master stored)."""
        if (
            not self.is_master
            and node != self.master
            and self.phase is GenerationPhase.WAITING_FOR_COMMIT
        ):
            return []
        return super().on_node_disconnected(node)

    def on_peer_refusal(self, sender: NodeId, error: SecretStoreError) -> list[Effect]:
        """Every node must agree: the master passes a node's refusal on to its client."""
        if self.is_master:
            return self.fail(error)
        return super().on_peer_refusal(sender, error)

    def on_message(self, sender: NodeId, message: object) -> list[Effect]:
        try:
            return self._dispatch(sender, message)
        except SecretStoreError as exc:
            return self.fail(exc)

    def _dispatch(self, sender: NodeId, message: object) -> list[Effect]:
        phase = self.phase
        if isinstance(message, ConfirmGenerationInitialization):
            if phase is not GenerationPhase.WAITING_FOR_CONFIRMATIONS or sender in self._confirmed:
                raise ProtocolViolation(short(sender), "sent an unexpected confirmation")
            return self._on_confirmation(sender, message.key_exists)
        if isinstance(message, StartKeysDissemination):
            self._require_from_master(sender, GenerationPhase.WAITING_FOR_START, "start")
            return self._begin_dissemination()
        if isinstance(message, GenerationDkg):
            if phase is GenerationPhase.WAITING_FOR_CONFIRMATIONS:
                raise ProtocolViolation(short(sender), "dealt before the dissemination started")
            if message.context != self.context:
                raise ProtocolViolation(
                    short(sender),
                    "generates for another author, threshold or node set than this node: "
                    f"the master {short(self.master)} sent them different requests, or the "
                    "node is faulty",
                )
            return self._after_dkg(self.dkg.on_message(sender, message.message))
        if isinstance(message, GenerationKeyReady):
            if phase is not GenerationPhase.WAITING_FOR_DKG or sender in self._ready:
                raise ProtocolViolation(short(sender), "sent an unexpected ready message")
            if not self.is_master:
                raise ProtocolViolation(short(sender), "sent a ready message to a slave")
            self._ready[sender] = message.public
            return self._try_commit()
        if isinstance(message, CommitGeneration):
            self._require_from_master(sender, GenerationPhase.WAITING_FOR_COMMIT, "commit")
            assert self._share is not None
            self.phase = GenerationPhase.FINISHED
            return [
                *self._record(self._share),
                Persist(self.session_id, self.key_id, self._share, create=True),
                Send(self.master, GenerationKeyStored(self.session_id)),
                *self.finish(self.public),
            ]
        if isinstance(message, GenerationKeyStored):
            if phase is not GenerationPhase.WAITING_FOR_STORED or sender in self._stored:
                raise ProtocolViolation(short(sender), "sent an unexpected stored message")
            self._stored.add(sender)
            if self._stored != self.participants:
                return []
            self.phase = GenerationPhase.FINISHED
            return self.finish(self.public)
        raise ProtocolViolation(short(sender), f"sent {type(message).__name__} out of turn")

    def _require_from_master(self, sender: NodeId, phase: GenerationPhase, what: str) -> None:
        if self.is_master or sender != self.master:
            raise ProtocolViolation(short(sender), f"sent a {what} only the master may send")
        if self.phase is not phase:
            raise ProtocolViolation(short(sender), f"sent a {what} out of turn")

    def _on_confirmation(self, sender: NodeId, key_exists: bool) -> list[Effect]:
        if key_exists:
            return self.fail(
                ServerKeyAlreadyGenerated(
                    f"node {short(sender)} holds server key 0x{self.key_id.hex()} already"
                )
            )
        self._confirmed.add(sender)
        if self._confirmed != self.participants:
            return []
        start = self.broadcast(StartKeysDissemination(self.session_id), self.participants)
        return start + self._begin_dissemination()

    # --- steps ----------------------------------------------------------------------------
    def _begin_dissemination(self) -> list[Effect]:
        self.phase = GenerationPhase.WAITING_FOR_DKG
        return self._after_dkg(self.dkg.start())

    def _after_dkg(self, out: list[Outgoing]) -> list[Effect]:
        effects: list[Effect] = [
            Send(node, GenerationDkg(self.session_id, self.context, AnyMessage(message)))
            for node, message in out
        ]
        result = self.dkg.result
        if result is None or self._share is not None:
            return effects
        if result.joint_public is None:
            raise InvalidRequest("the DKG of a server key produced no joint public")
        self.public = result.joint_public
        self._share = KeyShare.from_generation(
            self.author,
            self.threshold,
            self.public,
            self.id_numbers,
            result.secret_share,
            commitments=result.key_commitments(self.ctx.self_id),
        )
        if self.is_master:
            return effects + self._try_commit()
        self.phase = GenerationPhase.WAITING_FOR_COMMIT
        effects.append(Send(self.master, GenerationKeyReady(self.session_id, self.public)))
        return effects

    def _try_commit(self) -> list[Effect]:
        if self._share is None or len(self._ready) + 1 < len(self.id_numbers):
            return []
        for node, public in sorted(self._ready.items()):
            if public != self.public:
                raise ProtocolViolation(short(node), "ended the DKG with another public")
        effects = self._record(self._share)
        effects.append(Persist(self.session_id, self.key_id, self._share, create=True))
        effects += self.broadcast(CommitGeneration(self.session_id), self.participants)
        self.phase = GenerationPhase.WAITING_FOR_STORED
        if self._stored == self.participants:
            self.phase = GenerationPhase.FINISHED
            effects += self.finish(self.public)
        return effects

    def _record(self, share: KeyShare) -> list[Effect]:
        """The audit entry of this generation, before the share is stored."""
        facts = facts_of(
            Operation.GENERATION,
            self.key_id,
            session_id=self.session_id,
            master=self.master,
            requester=self.author,
            participants=self.participants,
            key_version=share.last_version().hash,
        )
        return record(self.ctx, facts)[0]


# --- factories -----------------------------------------------------------------------------


def _check_binding(
    ctx: SessionContext,
    requester: Requester | None,
    bound_signature: bytes | None,
    key_id: ServerKeyId,
    threshold: int,
) -> None:
    """The bound signature, if any, must be the author's over this key id and threshold, and a
    node that requires bound requests refuses a generation without one (sessions/requester):
    Parity's key-id signature does not cover the threshold. A service request (`requester`
    None) is bound by its own transaction and carries no bound signature."""
    if requester is None:
        if bound_signature is not None:
            raise InvalidRequest("a service contract's request carries no bound signature")
        return
    try:
        payload = generation_payload(threshold)
    except CryptoError as exc:
        raise InvalidRequest(str(exc)) from None
    check_binding(
        ctx,
        requester,
        bound_signature,
        operation=BoundOperation.GENERATE_SERVER_KEY,
        key_id=key_id,
        payload=payload,
    )


def start_generation(
    ctx: SessionContext,
    session_id: SessionId,
    request: GenerateServerKey,
    share: KeyShare | None,
    connected: frozenset[NodeId],
) -> tuple[Session, list[Effect]]:
    """Master: recover the author, check the request, pick every node's id number,
    initialise every node."""
    author, requester = author_of(request.author, request.key_id)
    nodes = sorted(ctx.cluster_nodes)
    threshold = request.threshold
    if isinstance(threshold, bool) or not isinstance(threshold, int):
        raise InvalidRequest("the threshold must be an integer")
    if not 0 <= threshold < len(nodes):
        raise InvalidRequest(
            f"threshold {threshold} is not in 0..{len(nodes) - 1} for {len(nodes)} key servers"
        )
    _check_binding(ctx, requester, request.bound_signature, request.key_id, threshold)
    if share is not None:
        raise ServerKeyAlreadyGenerated(f"server key 0x{request.key_id.hex()} exists already")
    missing = ctx.cluster_nodes - connected
    if missing:
        raise ConsensusUnreachable(
            f"key generation needs every key server; {len(missing)} of {len(nodes)} are "
            f"not connected: {', '.join(short(node) for node in sorted(missing))}"
        )
    id_numbers = dict(zip(nodes, random_id_numbers(len(nodes), ctx.rng), strict=True))
    session = GenerationSession(
        ctx,
        session_id,
        ctx.self_id,
        request.key_id,
        author=author,
        threshold=threshold,
        id_numbers=id_numbers,
    )
    if len(nodes) == 1:
        return session, session._begin_dissemination()
    init = InitializeGeneration(
        session_id,
        request.key_id,
        request.author,
        threshold,
        tuple(NodeIdNumber(node, number) for node, number in id_numbers.items()),
        request.bound_signature,
    )
    return session, session.broadcast(init, session.participants)


def join_generation(
    ctx: SessionContext, sender: NodeId, message: InitializeGeneration, share: KeyShare | None
) -> tuple[Session, list[Effect]]:
    """Slave: recover the author itself, check the master's proposal; confirm (or refuse:
    the key exists here)."""
    sid = message.session_id
    author, requester = author_of(message.author, message.key_id)
    _check_binding(ctx, requester, message.bound_signature, message.key_id, message.threshold)
    if share is not None:
        refusal = ReplyOnly(ctx, sid, sender, message.key_id)
        return refusal, [
            Send(sender, ConfirmGenerationInitialization(sid, True)),
            *refusal.finish(),
        ]
    id_numbers = {entry.node: entry.id_number for entry in message.id_numbers}
    if len(id_numbers) != len(message.id_numbers):
        raise ProtocolViolation(short(sender), "listed a node twice")
    if frozenset(id_numbers) != ctx.cluster_nodes:
        raise ProtocolViolation(
            short(sender), "proposed key servers that differ from this node's configuration"
        )
    session = GenerationSession(
        ctx,
        sid,
        sender,
        message.key_id,
        author=author,
        threshold=message.threshold,
        id_numbers=id_numbers,
    )
    return session, [Send(sender, ConfirmGenerationInitialization(sid, False))]


MASTERS: dict[type, MasterFactory] = {GenerateServerKey: start_generation}
SLAVES: dict[type, SlaveFactory] = {InitializeGeneration: join_generation}
