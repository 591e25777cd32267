"""Messages of session delegation (codes 0x0b00–0x0bff): a node that does not hold the key
version asks a holder to serve a client's request and relay the result."""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

from secretstore.crypto.curve import Point
from secretstore.crypto.shadow_proofs import PlainRetrievalProofs, ShadowRetrievalProofs
from secretstore.types import Hash256, MessageHash, NodeId, ServerKeyId, SessionId
from secretstore.wire.codec import message
from secretstore.wire.requester import ServiceOrigin


class DelegationKind(IntEnum):
    """Which client request is delegated."""

    DOCUMENT_KEY = 0
    DOCUMENT_KEY_SHADOW = 1
    SCHNORR = 2
    ECDSA = 3
    #: a service contract's (broadcast) shadow retrieval: every member publishes its own part
    DOCUMENT_KEY_PERSONAL = 4


@message(0x0B00)
@dataclass(frozen=True, slots=True)
class DelegatedRequest:
    """Origin -> a holder of `version`: serve this request as master and send the result.

    `requester_signature`: exactly as the client gave it (every node recovers the requester
    itself); `message_hash`: for signing only; `bound_signature`: the requester's signature
    over the whole signing request, when the client gave one; `holders`: the nodes that
    reported holding `version` (the delegate runs its session among them); `origin`: for
    DOCUMENT_KEY_PERSONAL only, the service contract's request (`requester_signature` empty),
    which the delegate reads from the contract itself before it serves it."""

    session_id: SessionId
    key_id: ServerKeyId
    kind: DelegationKind
    requester_signature: bytes
    message_hash: MessageHash | None
    version: Hash256
    holders: tuple[NodeId, ...]
    bound_signature: bytes | None = None
    origin: ServiceOrigin | None = None


@message(0x0B01)
@dataclass(frozen=True, slots=True)
class DelegatedDocumentKey:
    """Delegate -> origin: the document key of a plain retrieval, and the job it came from
    with every participant's proof (`proofs`, None for a key without commitments), which the
    origin checks before it relays the key. `receipts`: every participant's receipt of the
    release, encoded by audit/receipts.py `encode_receipts` (None from a delegate without an
    audit log), which the origin checks and hands the requester as if it had collected them
    itself; so in the two messages below."""

    session_id: SessionId
    document_key: Point
    proofs: PlainRetrievalProofs | None = None
    receipts: bytes | None = None


@message(0x0B02)
@dataclass(frozen=True, slots=True)
class DelegatedShadow:
    """Delegate -> origin: the result of a shadow retrieval (the shadows are encrypted to the
    requester by the nodes that computed them; `proofs` for the requester's check, None for a
    key without commitments)."""

    session_id: SessionId
    decrypted_secret: Point
    common_point: Point
    decrypt_shadows: tuple[bytes, ...]
    proofs: ShadowRetrievalProofs | None = None
    receipts: bytes | None = None


@message(0x0B03)
@dataclass(frozen=True, slots=True)
class DelegatedSignature:
    """Delegate -> origin: a Schnorr signature c‖s (64 bytes) or an ECDSA r‖s‖v (65)."""

    session_id: SessionId
    signature: bytes
    receipts: bytes | None = None


@message(0x0B04)
@dataclass(frozen=True, slots=True)
class DelegatedPersonal:
    """Delegate -> origin: the broadcast shadow retrieval it served has ended; its
    `participants` (ascending node ids, the delegate among them) each publish their own part on
    the contract. Nothing is relayed: the origin holds no share and publishes nothing."""

    session_id: SessionId
    participants: tuple[NodeId, ...]
