"""Verifiable decryption shares: DLEQ proofs that a node's shadow point came from its key share.

Public shares. A key version keeps the Feldman commitments ``C_0..C_t`` of its key polynomial
(``C_0 = Y``, the server key public). Node ``j``'s share public is
``Y_j = s_j·G = Σ_k C_k·x_j^k`` (``share_public``). In a job over the group ``S`` node ``i``'s
shadow ``ν_i = (-1)^t·λ_i·s_i`` (crypto/shadow.py) has the public ``ν_i·G = (-1)^t·λ_i·Y_i``
(``JobStatement.node_shadow_public``): anyone holding the commitments can compute it.

What each member of a job answers and proves (``answer_job``, ``verify_job_answer``), with
``a`` the access key and ``C`` the document key's common point:

- plain job: ``P_i = a·ν_i·C``, and a proof that ``log_G(ν_i·G) = log_{a·C}(P_i)``: the point
  was made with this node's own share;
- shadow job: for a fresh random blinding ``δ_i``, ``β_i = δ_i·ν_i``, ``P_i = a·β_i·C``, the
  published ``Q_i = β_i·G``, the decrypt shadow ``d_i = β_i - ν_i`` sealed for the
  requester (``seal``: the caller's ECIES encryption to the requester), and a proof that
  ``log_G(Q_i) = log_{a·C}(P_i)`` whose context binds the sealed ``d_i``. Whoever opens
  ``d_i`` checks ``d_i·G == Q_i - ν_i·G`` (``decrypt_shadow_matches``). Together the two
  checks make ``P_i`` and ``d_i`` exactly what ``ν_i`` gives for some blinding, so
  ``M = D + (Σ d_i)·C'`` holds (crypto/shadow.py).

Every proof's context (``JobStatement.context``) binds the key id, the session and attempt,
the prover's node id, the requester's public, ``C``, the encrypted point ``E``, ``a``, the
commitments, the group (node ids and id numbers) and the mode, and in a shadow job the
keccak256 of the sealed decrypt shadow. So a proof cannot be replayed in another session,
attempt, group or mode, nor passed off as another node's, and an honest node's proof pins the
``C``, ``E`` and commitments it used and the sealed ``d_i`` it sent: whoever relays an answer
(a master, a delegate) cannot swap, replace or alter a sealed decrypt shadow without breaking
that node's proof.

``verify_shadow_retrieval`` is the requester's whole check of a shadow retrieval answer
(``ShadowRetrievalProofs``), anchored at the server key public the requester knows. Its
errors are ShadowVerificationError naming the node at fault: a participant whose sealed
decrypt shadow does not open or does not match the blinding it proved (its proof binds what
it sealed, so no other node made that pair), or None, the answering key server, for a proof
that does not verify (every key server checks each participant's proof before it answers, so
it passed on a bad one or changed one) and for values common to every participant.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Final

from secretstore.crypto.curve import G, Point, Scalar, point_sum
from secretstore.crypto.dleq import DleqProof, prove_equal_logs, verify_equal_logs
from secretstore.crypto.document import decrypt_with_shadow_coefficients
from secretstore.crypto.hashing import keccak256
from secretstore.crypto.rng import Rng, random_scalar
from secretstore.crypto.shadow import (
    compute_node_shadow,
    decrypt_with_joint_shadow,
    make_common_shadow_point,
)
from secretstore.crypto.shamir import evaluate_point_polynomial, shadow_mul
from secretstore.errors import (
    CryptoError,
    InvalidRequest,
    InvalidScalar,
    ShadowVerificationError,
)
from secretstore.types import NodeId

_LABEL = b"secretstore-decryption-job-v1"
_MAX_ATTEMPT = (1 << 64) - 1


#: How many share publics and commitment digests one process remembers: they are public,
#: fixed per key version, and every decryption of a key needs them again.
PUBLICS_CACHE_SIZE: Final = 4096


def share_public(commitments: Sequence[Point], id_number: Scalar) -> Point:
    """``Y_j = Σ_k C_k·x_j^k``: the public of the share of the node with id number ``x_j``
    (remembered for the last PUBLICS_CACHE_SIZE (commitments, id number) pairs)."""
    return _share_public(tuple(commitments), id_number)


@functools.lru_cache(maxsize=PUBLICS_CACHE_SIZE)
def _share_public(commitments: tuple[Point, ...], id_number: Scalar) -> Point:
    return evaluate_point_polynomial(commitments, id_number)


def commitments_digest(commitments: Sequence[Point]) -> bytes:
    """keccak256 of the commitments in order (64 bytes each; remembered as share_public)."""
    return _commitments_digest(tuple(commitments))


@functools.lru_cache(maxsize=PUBLICS_CACHE_SIZE)
def _commitments_digest(commitments: tuple[Point, ...]) -> bytes:
    return keccak256(b"".join(point.to_bytes() for point in commitments))


@dataclass(frozen=True, slots=True)
class JobStatement:
    """What every proof of one decryption job is about and bound to (the same for each member).

    `group`: (node id, id number) of every member, t+1 of them (t = len(commitments) - 1).
    Construction raises InvalidRequest when the fields do not fit together.
    """

    key_id: bytes
    session_id: bytes
    attempt: int
    requester: Point
    common_point: Point
    encrypted_point: Point
    access_key: Scalar
    commitments: tuple[Point, ...]
    group: tuple[tuple[NodeId, Scalar], ...]
    shadow: bool
    #: a·C, made on first use (a master sends the job before it needs it)
    _base: Point | None = field(init=False, default=None, repr=False, compare=False)
    _context: tuple[bytes, bytes] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if len(self.key_id) != 32 or len(self.session_id) != 32:
            raise InvalidRequest("a key id and a session id are 32 bytes")
        if isinstance(self.attempt, bool) or not 0 <= self.attempt <= _MAX_ATTEMPT:
            raise InvalidRequest("an attempt is an unsigned 64-bit number")
        if self.access_key.is_zero():
            raise InvalidRequest("the access key is zero")
        points = (self.requester, self.common_point, self.encrypted_point, *self.commitments)
        if not self.commitments or any(point.is_identity() for point in points):
            raise InvalidRequest("commitments and job points must be points, not the identity")
        group = tuple(sorted(self.group, key=lambda member: member[0]))
        if len(group) != len(self.commitments):
            raise InvalidRequest(
                f"a job of threshold {len(self.commitments) - 1} has "
                f"{len(self.commitments)} members, not {len(group)}"
            )
        nodes = [node for node, _ in group]
        numbers = [number.to_int() for _, number in group]
        if len(set(nodes)) != len(nodes) or len(set(numbers)) != len(numbers):
            raise InvalidRequest("the members of a job have distinct node ids and id numbers")
        if any(len(node) != 64 for node in nodes) or 0 in numbers:
            raise InvalidRequest("a member is a 64-byte node id with a nonzero id number")
        object.__setattr__(self, "group", group)
        object.__setattr__(self, "_context", self._context_parts())

    @property
    def threshold(self) -> int:
        return len(self.commitments) - 1

    @property
    def nodes(self) -> tuple[NodeId, ...]:
        return tuple(node for node, _ in self.group)

    def id_number(self, node: NodeId) -> Scalar:
        for member, number in self.group:
            if member == node:
                return number
        raise InvalidRequest("not a member of the job")

    def _others(self, node: NodeId) -> list[Scalar]:
        return [number for member, number in self.group if member != node]

    def node_shadow_public(self, node: NodeId) -> Point:
        """``ν_i·G = (-1)^t·λ_i·Y_i`` of member `node` over the group."""
        coefficient = shadow_mul(Scalar(1), self.id_number(node), self._others(node))
        return share_public(self.commitments, self.id_number(node)) * coefficient

    def context(self, node: NodeId, sealed: bytes | None = None) -> bytes:
        """The proof context of member `node`, in a shadow job with its `sealed` decrypt
        shadow (InvalidRequest for one in a plain job, or none in a shadow job): label ‖ mode
        ‖ key id ‖ session id ‖ attempt ‖ node ‖ requester ‖ C ‖ E ‖ a ‖ digest of the
        commitments ‖ group [‖ keccak256 of the sealed decrypt shadow]."""
        self.id_number(node)
        if self.shadow != (sealed is not None):
            raise InvalidRequest(
                "a shadow job's proof binds a sealed decrypt shadow; a plain one's none"
            )
        before, after = self._context
        if sealed is None:
            return before + node + after
        return before + node + after + keccak256(sealed)

    def _context_parts(self) -> tuple[bytes, bytes]:
        """The context around the member's node id (the same for every member)."""
        before = bytearray(_LABEL)
        before.append(1 if self.shadow else 0)
        before += self.key_id + self.session_id + self.attempt.to_bytes(8, "big")
        after = bytearray()
        for point in (self.requester, self.common_point, self.encrypted_point):
            after += point.to_bytes()
        after += self.access_key.to_bytes()
        after += commitments_digest(self.commitments)
        after += len(self.group).to_bytes(4, "big")
        for member, number in self.group:
            after += member + number.to_bytes()
        return bytes(before), bytes(after)

    def proof_base(self) -> Point:
        """``a·C``: the second base of every proof of the job (computed once, when first
        asked for: a master makes the statement before it sends the job, and this point
        multiplication need not delay the job)."""
        base = self._base
        if base is None:
            base = self.common_point * self.access_key
            object.__setattr__(self, "_base", base)
        return base


@dataclass(frozen=True, slots=True, repr=False)
class JobAnswer:
    """One member's answer: ``P_i``, ``Q_i``, ``d_i`` and its sealed form (shadow jobs
    only), the proof."""

    shadow_point: Point
    blinded_public: Point | None
    decrypt_shadow: Scalar | None
    proof: DleqProof
    sealed_shadow: bytes | None = None

    def __repr__(self) -> str:
        return f"JobAnswer(shadow_point={self.shadow_point!r})"


def answer_job(
    statement: JobStatement,
    node: NodeId,
    secret_share: Scalar,
    rng: Rng,
    seal: Callable[[Scalar], bytes] | None = None,
) -> JobAnswer:
    """Member `node`'s answer with its share ``s_i`` (a fresh blinding in a shadow job, whose
    ``d_i`` `seal` encrypts to the requester: InvalidRequest without it)."""
    node_shadow = compute_node_shadow(
        secret_share, statement.id_number(node), statement._others(node)
    )
    base = statement.proof_base()
    if not statement.shadow:
        shadow_point = base * node_shadow
        publics = (Point.base_mul(node_shadow), shadow_point)
        context = statement.context(node)
        proof = prove_equal_logs(node_shadow, G, base, rng, context=context, publics=publics)
        return JobAnswer(shadow_point, None, None, proof)
    if seal is None:
        raise InvalidRequest("a shadow job's answer seals its decrypt shadow for the requester")
    blinded = random_scalar(rng) * node_shadow
    if blinded.is_zero():
        raise InvalidScalar("the blinded shadow is zero")
    decrypt_shadow = blinded - node_shadow
    sealed = seal(decrypt_shadow)
    shadow_point, blinded_public = base * blinded, Point.base_mul(blinded)
    publics = (blinded_public, shadow_point)
    context = statement.context(node, sealed)
    proof = prove_equal_logs(blinded, G, base, rng, context=context, publics=publics)
    return JobAnswer(shadow_point, blinded_public, decrypt_shadow, proof, sealed)


def verify_job_answer(
    statement: JobStatement,
    node: NodeId,
    shadow_point: Point,
    blinded_public: Point | None,
    proof: DleqProof,
    *,
    sealed: bytes | None = None,
) -> bool:
    """Whether member `node`'s ``P_i`` (and ``Q_i`` and sealed ``d_i``) carry a valid proof
    for `statement`: plain, ``log_G(ν_i·G) = log_{a·C}(P_i)``; shadow,
    ``log_G(Q_i) = log_{a·C}(P_i)`` in a context that binds `sealed`. A ``Q_i`` or a sealed
    ``d_i`` in a plain job, or none in a shadow job, does not verify."""
    shadow = statement.shadow
    if shadow != (blinded_public is not None) or shadow != (sealed is not None):
        return False
    public = statement.node_shadow_public(node) if blinded_public is None else blinded_public
    base = statement.proof_base()
    context = statement.context(node, sealed)
    return verify_equal_logs(proof, G, public, base, shadow_point, context=context)


def decrypt_shadow_matches(
    statement: JobStatement, node: NodeId, blinded_public: Point, decrypt_shadow: Scalar
) -> bool:
    """``d_i·G == Q_i - ν_i·G``: the decrypt shadow fits the blinding the node proved."""
    expected = blinded_public - statement.node_shadow_public(node)
    return Point.base_mul(decrypt_shadow) == expected


# --- the requester's check of a whole shadow retrieval answer ------------------------------


@dataclass(frozen=True, slots=True)
class ParticipantProof:
    """What a shadow retrieval answer says about one participant: its node id and id
    number, ``P_i``, ``Q_i`` and the proof."""

    node: NodeId
    id_number: Scalar
    shadow_point: Point
    blinded_public: Point
    proof: DleqProof


@dataclass(frozen=True, slots=True)
class ShadowRetrievalProofs:
    """Everything a requester needs to check a shadow retrieval without trusting the master:
    the threshold, the session and attempt of the job, the key version's commitments, the
    encrypted point ``E``, the access key ``a`` and each participant (in the order of the
    decrypt shadows)."""

    threshold: int
    session_id: bytes
    attempt: int
    commitments: tuple[Point, ...]
    encrypted_point: Point
    access_key: Scalar
    participants: tuple[ParticipantProof, ...]


def _hex(node: NodeId) -> str:
    return "0x" + bytes(node).hex()


def _server_fault(what: str) -> ShadowVerificationError:
    return ShadowVerificationError(None, what)


def verify_shadow_answer(
    *,
    key_id: bytes,
    requester: Point,
    server_key_public: Point,
    decrypted_secret: Point,
    common_point: Point,
    sealed_shadows: Sequence[bytes],
    proofs: ShadowRetrievalProofs,
) -> JobStatement:
    """The checks of a shadow retrieval answer anyone can make (the decrypt shadows are
    sealed for the requester): the commitments anchor at `server_key_public` (``C_0 == Y``)
    and number ``t+1``; t+1 participants with distinct node ids and id numbers, one per
    sealed decrypt shadow (`sealed_shadows`, in the participants' order); each participant's
    proof (for this key, requester, job and sealed decrypt shadow); and
    ``D == E ∓ a⁻¹·Σ P_i``. Returns the job's statement, else raises ShadowVerificationError:
    every fault found here lies with the answering key server (node None), which checked
    each participant's proof before it answered."""
    t = proofs.threshold
    statement = _proven_statement(
        key_id=key_id,
        requester=requester,
        server_key_public=server_key_public,
        threshold=t,
        session_id=proofs.session_id,
        attempt=proofs.attempt,
        commitments=proofs.commitments,
        common_point=common_point,
        encrypted_point=proofs.encrypted_point,
        access_key=proofs.access_key,
        participants=[
            (p.node, p.id_number, p.shadow_point, p.blinded_public, p.proof)
            for p in proofs.participants
        ],
        shares=len(sealed_shadows),
        sealed=sealed_shadows,
    )
    joint = point_sum(p.shadow_point for p in proofs.participants)
    try:
        expected = decrypt_with_joint_shadow(t, proofs.access_key, proofs.encrypted_point, joint)
    except CryptoError as exc:
        raise _server_fault(f"the job values do not combine: {exc}") from None
    if expected != decrypted_secret:
        raise _server_fault("decrypted_secret is not E ∓ a⁻¹·Σ P_i of the proven shadow points")
    return statement


def verify_shadow_retrieval(
    *,
    key_id: bytes,
    requester: Point,
    server_key_public: Point,
    decrypted_secret: Point,
    common_point: Point,
    sealed_shadows: Sequence[bytes],
    open_shadow: Callable[[bytes], Scalar],
    proofs: ShadowRetrievalProofs,
) -> Point:
    """The document key ``M = D + (Σ d_i)·C'`` once every check passed, else
    ShadowVerificationError naming the node at fault.

    `common_point` is the answer's ``C'``; `sealed_shadows` are the sealed ``d_i`` in the
    answer's order, which `open_shadow` opens (the requester's ECIES decryption: CryptoError
    when one does not open). Checks: those of `verify_shadow_answer`, then that each ``d_i``
    opens and ``d_i·G == Q_i - ν_i·G``, a failure there its participant's (its proof binds
    the sealed ``d_i``).
    """
    statement = verify_shadow_answer(
        key_id=key_id,
        requester=requester,
        server_key_public=server_key_public,
        decrypted_secret=decrypted_secret,
        common_point=common_point,
        sealed_shadows=sealed_shadows,
        proofs=proofs,
    )
    decrypt_shadows: list[Scalar] = []
    for p, sealed in zip(proofs.participants, sealed_shadows, strict=True):
        try:
            shadow = open_shadow(sealed)
        except CryptoError as exc:
            raise ShadowVerificationError(
                _hex(p.node), f"its decrypt shadow does not open: {exc}"
            ) from None
        decrypt_shadows.append(shadow)
        if not decrypt_shadow_matches(statement, p.node, p.blinded_public, shadow):
            raise ShadowVerificationError(
                _hex(p.node), "its decrypt shadow does not match the blinding it proved"
            )
    try:
        return decrypt_with_shadow_coefficients(decrypted_secret, common_point, decrypt_shadows)
    except CryptoError as exc:
        raise _server_fault(f"the answer does not combine to a document key: {exc}") from None


# --- a node's check of a plain retrieval another node served (delegation) ------------------


@dataclass(frozen=True, slots=True)
class PlainParticipant:
    """One participant of a plain retrieval's job: its node id and id number, ``P_i`` and
    the proof."""

    node: NodeId
    id_number: Scalar
    shadow_point: Point
    proof: DleqProof


@dataclass(frozen=True, slots=True)
class PlainRetrievalProofs:
    """What the master of a plain retrieval shows the node it served (a delegate's origin):
    the threshold, the session and attempt of the job, the key version's commitments, the
    document key's common and encrypted points ``C`` and ``E``, the access key ``a`` and each
    participant. Each participant's proof binds ``C``, ``E`` and the commitments it used."""

    threshold: int
    session_id: bytes
    attempt: int
    commitments: tuple[Point, ...]
    common_point: Point
    encrypted_point: Point
    access_key: Scalar
    participants: tuple[PlainParticipant, ...]


def verify_plain_retrieval(
    *, key_id: bytes, requester: Point, server_key_public: Point, proofs: PlainRetrievalProofs
) -> Point:
    """The document key ``M = E ∓ a⁻¹·Σ P_i`` of a plain retrieval once the commitments
    anchor at `server_key_public`, t+1 distinct participants and each one's proof for this
    key, requester and job check out; else ShadowVerificationError (None: the node that
    served, which checked every participant's proof)."""
    t = proofs.threshold
    _proven_statement(
        key_id=key_id,
        requester=requester,
        server_key_public=server_key_public,
        threshold=t,
        session_id=proofs.session_id,
        attempt=proofs.attempt,
        commitments=proofs.commitments,
        common_point=proofs.common_point,
        encrypted_point=proofs.encrypted_point,
        access_key=proofs.access_key,
        participants=[
            (p.node, p.id_number, p.shadow_point, None, p.proof) for p in proofs.participants
        ],
        shares=len(proofs.participants),
    )
    joint = point_sum(p.shadow_point for p in proofs.participants)
    try:
        return decrypt_with_joint_shadow(t, proofs.access_key, proofs.encrypted_point, joint)
    except CryptoError as exc:
        raise _server_fault(f"the job values do not combine: {exc}") from None


def _proven_statement(
    *,
    key_id: bytes,
    requester: Point,
    server_key_public: Point,
    threshold: int,
    session_id: bytes,
    attempt: int,
    commitments: tuple[Point, ...],
    common_point: Point,
    encrypted_point: Point,
    access_key: Scalar,
    participants: Sequence[tuple[NodeId, Scalar, Point, Point | None, DleqProof]],
    shares: int,
    sealed: Sequence[bytes] | None = None,
) -> JobStatement:
    """The statement of a job whose every participant's proof verifies, anchored at the
    server key (`common_point`: the answer's C' of a shadow job, C of a plain one; `shares`:
    how many contributions the answer carries, one per participant; `sealed`: a shadow
    job's sealed decrypt shadows, in the participants' order)."""
    t = threshold
    if isinstance(t, bool) or t < 0 or len(commitments) != t + 1:
        raise _server_fault(f"{len(commitments)} commitments for threshold {t}")
    if commitments[0] != server_key_public:
        raise _server_fault("the commitments are not those of this server key (C_0 != Y)")
    if len(participants) != t + 1 or shares != t + 1:
        what = "decrypt shadows" if participants and participants[0][3] is not None else "shares"
        raise _server_fault(
            f"{len(participants)} participants and {shares} {what} for threshold {t}: "
            f"{t + 1} of each are needed"
        )
    shadow = participants[0][3] is not None
    try:
        statement = JobStatement(
            key_id=key_id,
            session_id=session_id,
            attempt=attempt,
            requester=requester,
            common_point=make_common_shadow_point(t, common_point) if shadow else common_point,
            encrypted_point=encrypted_point,
            access_key=access_key,
            commitments=commitments,
            group=tuple((node, number) for node, number, _, _, _ in participants),
            shadow=shadow,
        )
    except (InvalidRequest, CryptoError) as exc:
        raise _server_fault(f"the participants or job values are not usable: {exc}") from None
    seals: Sequence[bytes | None] = (
        sealed if shadow and sealed is not None else [None] * len(participants)
    )
    failed = [
        node
        for (node, _, point, blinded, proof), seal in zip(participants, seals, strict=True)
        if (blinded is not None) != shadow
        or not verify_job_answer(statement, node, point, blinded, proof, sealed=seal)
    ]
    if failed and len(failed) == len(participants) and len(participants) > 1:
        raise _server_fault(
            "no participant's proof verifies: the values common to all of them (commitments, "
            "id numbers, common or encrypted point, access key, session) are not the ones "
            "the nodes used"
        )
    if failed:  # the answering key server checked every proof, so it changed or let this in
        raise _server_fault(
            f"the shadow point of node {_hex(failed[0])} does not carry a valid proof for this "
            "job (its sealed decrypt shadow, or a value it is bound to, was changed)"
        )
    return statement
