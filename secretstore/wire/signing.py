"""Messages of the threshold signing sessions: Schnorr (0x0500–0x05ff) and ECDSA (0x0600–0x06ff).

0x0500–0x050f are the steps both signing sessions share (share publics, nonce generations,
blame and loss reports); the session id tells which session a message belongs to. Each
session has its own initialising message, so a receiving node knows which kind to create.
Every message of a signing attempt carries its `attempt` number (the consensus group it
belongs to): answers for an abandoned group are recognised and ignored.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

from secretstore.crypto.curve import Point, Scalar
from secretstore.crypto.dleq import DleqProof
from secretstore.types import Hash256, MessageHash, NodeId, ServerKeyId, SessionId
from secretstore.wire.codec import AnyMessage, message
from secretstore.wire.consensus import AccessRequest


class NonceKind(IntEnum):
    """Which nonce generation of an attempt a DKG message belongs to."""

    #: the signature nonce k (threshold t); its joint public is R = k·G
    SIGNATURE_NONCE = 0
    #: ECDSA only: the inversion blinding e (threshold t)
    INVERSION_NONCE = 1
    #: ECDSA only: a sharing of zero (threshold 2t) that re-randomises k·e
    INVERSION_ZERO = 2
    #: ECDSA only: a sharing of zero (threshold 2t) that re-randomises the signature shares
    SIGNATURE_ZERO = 3


# --- shared by both signing sessions ------------------------------------------------------


@message(0x0500)
@dataclass(frozen=True, slots=True)
class SigningSharePublic:
    """Candidate -> master, right after it allowed access: ``Y_i = s_i·G`` of its share of
    the key version. Sent before any nonce exists, so a signer cannot fit it to a bad
    signature share afterwards; the master checks every signature share against it."""

    session_id: SessionId
    share_public: Point


@message(0x0501)
@dataclass(frozen=True, slots=True)
class SigningNonceRequest:
    """Master -> each other member of a selected group: generate the nonces of `attempt`
    among `nodes` (ascending node ids, the master and the receiver among them)."""

    session_id: SessionId
    attempt: int
    nodes: tuple[NodeId, ...]


@message(0x0502)
@dataclass(frozen=True, slots=True)
class SigningNonceMessage:
    """Group member -> group member: one DKG message (DkgKeys, DkgShareProof, DkgAgreement)
    of the `kind` nonce generation of `attempt`."""

    session_id: SessionId
    attempt: int
    kind: NonceKind
    message: AnyMessage


@message(0x0503)
@dataclass(frozen=True, slots=True)
class SigningFault:
    """Group member -> master: `culprit` broke the nonce generation of `attempt` (`what`
    says how). The master fails the session naming the culprit."""

    session_id: SessionId
    attempt: int
    culprit: NodeId
    what: str


@message(0x0504)
@dataclass(frozen=True, slots=True)
class SigningNodeLost:
    """Group member -> master: the link between this member and `node`, another member of
    `attempt`, is broken (the member lost its connection, or was grouped with a node it lost
    earlier). A member can only know its own links, so the master loses neither node: it
    selects a group that holds not both. `node` = the master means the sender lost the
    master, and so the sender is lost."""

    session_id: SessionId
    attempt: int
    node: NodeId


# --- Schnorr ----------------------------------------------------------------------------


@message(0x0510)
@dataclass(frozen=True, slots=True)
class SchnorrSigningRequest:
    """Master -> every candidate: may this requester have `message_hash` signed with this
    key? (initialising message; answered with ConsensusResponse, then SigningSharePublic)."""

    session_id: SessionId
    key_id: ServerKeyId
    access: AccessRequest
    message_hash: MessageHash


@message(0x0511)
@dataclass(frozen=True, slots=True)
class SchnorrSignatureShare:
    """Group member -> master, once its nonce generation ended:
    ``σ_i = λ_i·k_i - c·λ_i·s_i`` with ``c = keccak256(m ‖ R.x)``; `receipt`: the member's
    signed receipt of the signing (secretstore/audit/receipts.py), None from a node without
    an audit log."""

    session_id: SessionId
    attempt: int
    share: Scalar
    receipt: bytes | None = None


# --- ECDSA ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PresignUse:
    """The presignature a signing uses (a field, not a message): the id of the presigning
    session that made it, and ``w = (k·e)⁻¹`` the master computed there."""

    presign_id: SessionId
    inversed_nonce_coeff: Scalar


@message(0x0600)
@dataclass(frozen=True, slots=True)
class EcdsaSigningRequest:
    """Master -> every candidate: may this requester have `message_hash` signed with this
    key? (initialising message; answered with ConsensusResponse, then SigningSharePublic).

    With `presigned` (to the members of a presignature's group only): a member that allows
    and still holds that presignature answers with its EcdsaSignatureShare for attempt 1
    at once (its "allowed"), erasing the presignature first; one that allows without it
    answers as without `presigned`; one that refuses, with ConsensusResponse(False)."""

    session_id: SessionId
    key_id: ServerKeyId
    access: AccessRequest
    message_hash: MessageHash
    presigned: PresignUse | None = None


@message(0x0601)
@dataclass(frozen=True, slots=True)
class EcdsaInversedNonceShare:
    """Group member -> master, once its four nonce generations ended:
    ``u_i = k_i·e_i + z_i`` and a proof that ``u_i·G - Z_i = e_i·K_i`` with ``E_i = e_i·G``
    (``K_i``, ``E_i``, ``Z_i``: the member's share publics of the three generations)."""

    session_id: SessionId
    attempt: int
    share: Scalar
    proof: DleqProof


@message(0x0602)
@dataclass(frozen=True, slots=True)
class EcdsaSignatureRequest:
    """Master -> each other member: ``w = (k·e)⁻¹``, interpolated from every ``u_i``."""

    session_id: SessionId
    attempt: int
    inversed_nonce_coeff: Scalar


@message(0x0603)
@dataclass(frozen=True, slots=True)
class EcdsaSignatureShare:
    """Group member -> master: ``σ'_i = w·e_i·(h + s_i·r) + z'_i`` (``z'_i`` its share of the
    attempt's SIGNATURE_ZERO sharing) and a proof that ``σ'_i·G - Z'_i = e_i·w·(h·G + r·Y_i)``
    with ``E_i = e_i·G`` (``Z'_i``: the member's share public of that sharing); `receipt`:
    the member's signed receipt of the signing, None from a node without an audit log."""

    session_id: SessionId
    attempt: int
    share: Scalar
    proof: DleqProof
    receipt: bytes | None = None


# --- ECDSA presigning (sessions/signing_presign.py) ---------------------------------------


@message(0x0610)
@dataclass(frozen=True, slots=True)
class PresignRequest:
    """Master -> each other member of `nodes` (2t+1 holders of key `version`, ascending):
    generate the nonces of a presignature with me (initialising message; answered with
    SigningSharePublic, then the generations start with SigningNonceRequest, attempt 1)."""

    session_id: SessionId
    key_id: ServerKeyId
    version: Hash256
    nodes: tuple[NodeId, ...]


@message(0x0611)
@dataclass(frozen=True, slots=True)
class PresignKept:
    """Master -> each other member: every inversed nonce share is in and proven; keep your
    part of the presignature (until one signing uses it)."""

    session_id: SessionId
