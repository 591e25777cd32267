"""Pieces both threshold signing sessions (and the ECDSA presigning) use: the request and its
checks, the session bases (a guarded session, a signing half), the nonce generations of one
attempt, phases, and locating a share public that does not fit the server key."""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import ClassVar

from secretstore.audit.model import AuditFacts, Operation, facts_of
from secretstore.crypto.bound import BoundOperation
from secretstore.crypto.curve import ZERO, Point, Scalar, hash_to_point
from secretstore.crypto.shamir import interpolate_point_at_zero
from secretstore.errors import InvalidRequest, ProtocolViolation, SecretStoreError
from secretstore.sessions.base import Effect, Send, Session, SessionContext, short
from secretstore.sessions.dkg import DkgResult, DkgRun
from secretstore.sessions.presign import PresignedNonces
from secretstore.storage.model import KeyShare, KeyShareVersion
from secretstore.types import Address, BlockRef, MessageHash, NodeId, ServerKeyId, SessionId
from secretstore.wire.codec import AnyMessage
from secretstore.wire.signing import (
    EcdsaSigningRequest,
    NonceKind,
    SchnorrSigningRequest,
    SigningNonceMessage,
)

MESSAGE_HASH_LENGTH = 32
#: How much of a peer's fault text goes into an error (the rest is dropped).
MAX_REPORTED_TEXT = 200


@dataclass(frozen=True, slots=True)
class SigningRequest:
    """What a request to sign carries, whichever the scheme (SignSchnorr, SignEcdsa).

    `message_hash`: the 32 bytes to sign with server key `key_id`; `requester_signature`:
    65 bytes r‖s‖v over `key_id` (the requester is recovered from it); `version`: the key
    version hash to use, None for the master's newest; `bound_signature`: the requester's
    signature over this very signing (crypto/bound.py), or None for Parity's form; `block`:
    the chain block the access decisions are pinned to (None without a chain ACL).
    """

    key_id: ServerKeyId
    requester_signature: bytes
    message_hash: MessageHash
    version: bytes | None = None
    bound_signature: bytes | None = None
    block: BlockRef | None = None


#: The initialising message of a signing (a master's request to its candidates).
SigningInit = SchnorrSigningRequest | EcdsaSigningRequest


class SigningPhase(Enum):
    """What a signing session waits for (master and slave phases share the names)."""

    WAITING_FOR_ACCESS = "waiting for access answers"
    WAITING_FOR_ACCESS_CHECK = "waiting for the access check"
    WAITING_FOR_NONCE_REQUEST = "waiting for a group's nonce request"
    WAITING_FOR_NONCES = "waiting for the nonce generations"
    WAITING_FOR_INVERSED_NONCE_SHARES = "waiting for inversed nonce shares"
    WAITING_FOR_SIGNATURE_REQUEST = "waiting for the signature request"
    WAITING_FOR_SIGNATURE_SHARES = "waiting for signature shares"
    WAITING_FOR_END = "waiting for the end or another attempt"
    ENDED = "ended"


def check_message_hash(message_hash: bytes) -> MessageHash:
    """`message_hash` when it is 32 bytes; InvalidRequest otherwise."""
    if not isinstance(message_hash, bytes) or len(message_hash) != MESSAGE_HASH_LENGTH:
        raise InvalidRequest(f"a message hash is {MESSAGE_HASH_LENGTH} bytes")
    return MessageHash(message_hash)


def signing_facts(
    operation: Operation,
    key_id: ServerKeyId,
    *,
    session_id: SessionId,
    master: NodeId,
    requester: Address,
    group: tuple[NodeId, ...],
    version: KeyShareVersion,
    message_hash: MessageHash,
    block: BlockRef | None,
) -> AuditFacts:
    """What every member of a signing group records and signs: the message hash (public:
    the requester chose it), never the signature or a share of it."""
    return facts_of(
        operation,
        key_id,
        session_id=session_id,
        master=master,
        requester=requester,
        participants=group,
        key_version=version.hash,
        message_hash=message_hash,
        block=block,
    )


@dataclass(frozen=True, slots=True)
class NonceSpec:
    """One nonce generation of an attempt: its polynomial degree and whether it shares zero."""

    threshold: int
    zero_secret: bool = False


def derived_point(
    session_id: SessionId, key_id: ServerKeyId, attempt: int, kind: NonceKind
) -> Point:
    """The Pedersen point H of one nonce generation: the same on every node, with a discrete
    log nobody knows, and different for every session, attempt and kind."""
    tag = b"signing-nonce" + attempt.to_bytes(8, "big") + bytes([int(kind)])
    return hash_to_point(tag + session_id + key_id)


class NonceRuns:
    """The nonce generations (DkgRuns) of one attempt on one node, by kind.

    `start` deals; `on_message` feeds a peer's DKG message (raising ProtocolViolation naming
    the peer at fault, or InvalidRequest for a kind this signing does not run). Outgoing DKG
    messages come back as Send effects, already wrapped in SigningNonceMessage.
    """

    def __init__(
        self,
        ctx: SessionContext,
        session_id: SessionId,
        key_id: ServerKeyId,
        *,
        attempt: int,
        nodes: Sequence[NodeId],
        id_numbers: Mapping[NodeId, Scalar],
        specs: Mapping[NonceKind, NonceSpec],
    ) -> None:
        self.session_id = session_id
        self.attempt = attempt
        self.nodes = tuple(nodes)
        group = {node: id_numbers[node] for node in self.nodes}
        self.runs = {
            kind: DkgRun(
                ctx.self_id,
                ctx.rng,
                group,
                spec.threshold,
                derived_point(session_id, key_id, attempt, kind),
                zero_secret=spec.zero_secret,
            )
            for kind, spec in sorted(specs.items())
        }
        #: set by the owner once it acted on the finished generations
        self.handled = False

    @property
    def done(self) -> bool:
        return all(run.done for run in self.runs.values())

    def waiting_for(self) -> frozenset[NodeId]:
        """The members whose message of an unfinished generation's current round has not
        come."""
        out: frozenset[NodeId] = frozenset()
        for run in self.runs.values():
            out |= run.waiting_for()
        return out

    def result(self, kind: NonceKind) -> DkgResult:
        result = self.runs[kind].result
        if result is None:
            raise InvalidRequest(f"the {kind.name} generation has not ended")
        return result

    def start(self) -> list[Send]:
        out: list[Send] = []
        for kind, run in self.runs.items():
            out += self._wrap(kind, run.start())
        return out

    def on_message(self, sender: NodeId, kind: NonceKind, inner: object) -> list[Send]:
        run = self.runs.get(kind)
        if run is None:
            raise ProtocolViolation(short(sender), f"sent a {kind.name} message, not run here")
        return self._wrap(kind, run.on_message(sender, inner))

    def _wrap(self, kind: NonceKind, out: Iterable[tuple[NodeId, object]]) -> list[Send]:
        return [
            Send(to, SigningNonceMessage(self.session_id, self.attempt, kind, AnyMessage(inner)))
            for to, inner in out
        ]


#: The nonce generations of one signing attempt: run in the session, or a presignature's.
Nonces = NonceRuns | PresignedNonces


def feed_nonce_message(
    nonces: Nonces, sender: NodeId, message: SigningNonceMessage
) -> list[Effect]:
    """Hand `sender`'s message of one nonce generation to it: the messages that follow
    (raising as NonceRuns.on_message does)."""
    return [*nonces.on_message(sender, message.kind, message.message)]


# --- session bases ----------------------------------------------------------------------


class GuardedSession(Session):
    """A signing or presigning session half whose steps end it when they raise: a
    SecretStoreError (a peer broke the protocol, or this node failed) becomes the session's
    failure, and nothing reaches a session that ended."""

    def on_message(self, sender: NodeId, message: object) -> list[Effect]:
        return self._guarded(lambda: self._dispatch(sender, message))

    @abstractmethod
    def _dispatch(self, sender: NodeId, message: object) -> list[Effect]:
        """A message of this session (one that raises ends the session with the error)."""

    def _guarded(self, step: Callable[[], list[Effect]]) -> list[Effect]:
        if self.finished:
            return []
        try:
            return step()
        except SecretStoreError as exc:
            return self.fail(exc)


class SigningHalf(GuardedSession):
    """What both halves of a signing (SigningMaster, SigningSlave) share: the nonce
    generations of the running attempt, the phase they give, and the hand-over to the
    subclass once they ended (`_on_nonces_done`, once per attempt).

    What tells one scheme from the other on both halves (SchnorrSigning, EcdsaSigning):
    `OPERATION`, `BOUND_OPERATION`, `_signers_needed` and `_nonce_specs`."""

    #: what the audit log calls this signing
    OPERATION: ClassVar[Operation]
    #: what a requester's bound signature of this signing names (crypto/bound.py)
    BOUND_OPERATION: ClassVar[BoundOperation]

    threshold: int
    #: the nonce generations of the running attempt, None while no group runs
    nonces: Nonces | None
    #: the id number of every holder of the key version
    id_numbers: dict[NodeId, Scalar]

    @classmethod
    @abstractmethod
    def _signers_needed(cls, share: KeyShare, key_id: ServerKeyId, holders: int) -> int:
        """The group size of each attempt for a key of `holders` holders (raising
        ConsensusUnreachable when the key has too few)."""

    @abstractmethod
    def _nonce_specs(self) -> dict[NonceKind, NonceSpec]:
        """The nonce generations of one attempt."""

    @abstractmethod
    def _on_nonces_done(self, nonces: Nonces) -> list[Effect]:
        """This node's generations of the running attempt ended."""

    @abstractmethod
    def _phase_before_nonces(self) -> SigningPhase:
        """The phase while no generations run."""

    @abstractmethod
    def _job_phase(self) -> SigningPhase:
        """The phase once the generations of the running attempt ended."""

    @property
    def phase(self) -> SigningPhase:
        if self.finished:
            return SigningPhase.ENDED
        if self.nonces is None:
            return self._phase_before_nonces()
        if not self.nonces.done:
            return SigningPhase.WAITING_FOR_NONCES
        return self._job_phase()

    def _nonce_runs(self, attempt: int, nodes: tuple[NodeId, ...]) -> NonceRuns:
        """The nonce generations of `attempt` among `nodes` (not started yet)."""
        return NonceRuns(
            self.ctx,
            self.session_id,
            self.key_id,
            attempt=attempt,
            nodes=nodes,
            id_numbers=self.id_numbers,
            specs=self._nonce_specs(),
        )

    def _progress(self) -> list[Effect]:
        nonces = self.nonces
        if nonces is None or nonces.handled or not nonces.done:
            return []
        nonces.handled = True
        return self._on_nonces_done(nonces)


def culprit_of(error: SecretStoreError, nodes: Iterable[NodeId], fallback: NodeId) -> NodeId:
    """The node a ProtocolViolation names (by its short id), among `nodes`; else `fallback`."""
    if isinstance(error, ProtocolViolation):
        for node in nodes:
            if short(node) == error.node:
                return node
    return fallback


def what_of(error: SecretStoreError) -> str:
    """The description of an error without the node prefix of a ProtocolViolation."""
    text = error.what if isinstance(error, ProtocolViolation) else str(error)
    return text[:MAX_REPORTED_TEXT]


def names(nodes: Iterable[NodeId]) -> str:
    """Short ids of `nodes`, comma-separated (for errors)."""
    return ", ".join(short(node) for node in nodes)


# --- share publics that do not fit the key ----------------------------------------------


def share_publics_fit(threshold: int, points: Sequence[tuple[Scalar, Point]]) -> bool:
    """Whether the points (x, P) lie on one polynomial of degree `threshold` (in the
    exponent). The first t+1 points fix it; each further point is checked by interpolating
    at its x (shifting the id numbers so that x becomes zero)."""
    basis = points[: threshold + 1]
    for x, point in points[threshold + 1 :]:
        shifted = [bx - x for bx, _ in basis]
        if interpolate_point_at_zero([p for _, p in basis], shifted) != point:
            return False
    return True


def locate_misfit(
    threshold: int,
    key_public: Point,
    share_publics: Mapping[NodeId, Point],
    id_numbers: Mapping[NodeId, Scalar],
    suspects: Iterable[NodeId],
) -> NodeId | None:
    """The one suspect whose share public alone keeps the share publics reported in a session
    (with the key public at x = 0) off a polynomial of degree t; None when that cannot be
    told: too few reports to over-determine the polynomial without the suspect, more than one
    misfit, or none at all."""
    reported = {node: p for node, p in share_publics.items() if node in id_numbers}
    everything = [(ZERO, key_public)] + [(id_numbers[n], p) for n, p in sorted(reported.items())]
    if share_publics_fit(threshold, everything):
        return None
    found: list[NodeId] = []
    for suspect in suspects:
        rest = [(ZERO, key_public)] + [
            (id_numbers[n], p) for n, p in sorted(reported.items()) if n != suspect
        ]
        if len(rest) >= threshold + 2 and share_publics_fit(threshold, rest):
            found.append(suspect)
    return found[0] if len(found) == 1 else None


def misfit_error(
    *,
    threshold: int,
    key_public: Point,
    share_publics: Mapping[NodeId, Point],
    id_numbers: Mapping[NodeId, Scalar],
    group: Sequence[NodeId],
    self_id: NodeId,
) -> ProtocolViolation:
    """The error for a group whose checked shares do not combine to a valid signature: some
    member's share (and share public) does not fit the server key. Names that member when
    the reported share publics tell it, else every other member of the group."""
    suspects = [node for node in group if node != self_id]
    misfit = locate_misfit(threshold, key_public, share_publics, id_numbers, suspects)
    if misfit is not None:
        return ProtocolViolation(short(misfit), "holds a key share that does not fit the key")
    return ProtocolViolation(
        names(suspects) or short(self_id),
        "one of these nodes holds a key share that does not fit the key",
    )
