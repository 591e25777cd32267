"""The shadow retrieval answer on the requester's side, and its check: every node's
contribution, no trust in the node that answered.

A key server of ours adds a `proofs` field to the shadow retrieval body for a key whose record
has commitments (docs/HTTP.md). `verify_document_key_shadow` opens each decrypt shadow with
the requester's key and checks, with crypto/shadow_proofs.py: the commitments anchor at the
server key public the requester knows (``C_0 == Y``), t+1 distinct participants, each
participant's DLEQ proof for this key, requester, job and sealed decrypt shadow, each
``d_i·G == Q_i - ν_i·G``, and ``D == E ∓ a⁻¹·Σ P_i``; then it returns the document key
M. Anything else raises ShadowVerificationError naming the node at fault.

Without an anchor (`server_key_public=None`) the checks run against the commitments the
answer names: that catches a participant that lies (its decrypt shadow included, which the
answering node cannot check, being encrypted to the requester), but not an answering node
that makes up the whole answer, commitments and all. Pass the server key public to be
protected from that too.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from secretstore.audit.receipts import ReleaseReceipts
from secretstore.client.helpers import key_from_shadow, unwrap_shadow_coefficient
from secretstore.crypto.curve import Point, Scalar
from secretstore.crypto.dleq import DleqProof
from secretstore.crypto.keys import KeyPair
from secretstore.crypto.shadow_proofs import (
    ParticipantProof,
    ShadowRetrievalProofs,
    verify_shadow_retrieval,
)
from secretstore.encoding import parse_hex
from secretstore.errors import CryptoError, InvalidEncoding, ShadowVerificationError
from secretstore.types import NodeId

#: The name of the field in the shadow retrieval body.
PROOFS_FIELD = "proofs"
_PROOFS_KEYS = (
    "threshold",
    "session",
    "attempt",
    "commitments",
    "encrypted_point",
    "access_key",
    "participants",
)
_PARTICIPANT_KEYS = ("node", "id_number", "shadow_point", "blinded_public", "proof")


@dataclass(frozen=True, slots=True)
class DocumentKeyShadow:
    """The shadow retrieval answer: D, C' and the ECIES-encrypted coefficients d_i, and our
    key servers' `proofs` of every contribution and `receipts` of every participant when the
    answer has them (the receipts as sent: client/receipts.py checks them)."""

    decrypted_secret: Point
    common_point: Point
    decrypt_shadows: tuple[bytes, ...]
    proofs: ShadowRetrievalProofs | None = None
    receipts: ReleaseReceipts | None = None

    def document_key(
        self,
        key_id: bytes,
        requester: KeyPair,
        *,
        server_key_public: Point | None = None,
        require_proofs: bool = False,
    ) -> Point:
        """M: checked with `verify_document_key_shadow` when the answer has proofs (anchored
        at `server_key_public` when given), computed as Parity's clients do otherwise.
        ShadowVerificationError when a contribution does not verify, or when
        `require_proofs` and the answer has none."""
        if self.proofs is None:
            if require_proofs:
                raise ShadowVerificationError(
                    None,
                    "the answer carries no proofs (a key stored without commitments, or a key "
                    "server that does not send them)",
                )
            return key_from_shadow(
                requester, self.decrypted_secret, self.common_point, self.decrypt_shadows
            )
        return verify_document_key_shadow(key_id, self, requester, server_key_public)


def verify_document_key_shadow(
    key_id: bytes,
    response: DocumentKeyShadow,
    requester: KeyPair,
    server_key_public: Point | None,
) -> Point:
    """The document key of a shadow retrieval answer whose every contribution verifies (see
    the module docstring); ShadowVerificationError naming the node otherwise (also for an
    answer without proofs)."""
    proofs = response.proofs
    if proofs is None:
        raise ShadowVerificationError(None, "the answer carries no proofs")
    participants = proofs.participants
    if len(participants) != len(response.decrypt_shadows):
        raise ShadowVerificationError(
            None,
            f"{len(response.decrypt_shadows)} decrypt shadows for {len(participants)} participants",
        )
    anchor = server_key_public if server_key_public is not None else proofs.commitments[0]
    return verify_shadow_retrieval(
        key_id=key_id,
        requester=requester.public,
        server_key_public=anchor,
        decrypted_secret=response.decrypted_secret,
        common_point=response.common_point,
        sealed_shadows=response.decrypt_shadows,
        open_shadow=lambda sealed: unwrap_shadow_coefficient(requester, sealed),
        proofs=proofs,
    )


# --- the JSON field --------------------------------------------------------------------------


def _object(value: object, keys: tuple[str, ...], what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise InvalidEncoding(f"{what}: expected a JSON object")
    missing = [key for key in keys if key not in value]
    if missing:
        raise InvalidEncoding(f"{what}: missing {', '.join(missing)}")
    return value


def _number(value: object, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 1 << 64:
        raise InvalidEncoding(f"{what}: expected an unsigned 64-bit integer")
    return value


def _hex(value: object, length: int, what: str) -> bytes:
    if not isinstance(value, str):
        raise InvalidEncoding(f"{what}: expected a hex string")
    return parse_hex(value, length, what=what)


def _point(value: object, what: str) -> Point:
    try:
        return Point.from_bytes(_hex(value, 64, what))
    except CryptoError as exc:
        raise InvalidEncoding(f"{what}: {exc}") from None


def _scalar(value: object, what: str) -> Scalar:
    try:
        return Scalar.from_bytes(_hex(value, 32, what))
    except CryptoError as exc:
        raise InvalidEncoding(f"{what}: {exc}") from None


def _participant(value: object, index: int) -> ParticipantProof:
    what = f"proofs.participants[{index}]"
    entry = _object(value, _PARTICIPANT_KEYS, what)
    proof = _hex(entry["proof"], 64, f"{what}.proof")
    try:
        dleq = DleqProof(Scalar.from_bytes(proof[:32]), Scalar.from_bytes(proof[32:]))
    except CryptoError as exc:
        raise InvalidEncoding(f"{what}.proof: {exc}") from None
    return ParticipantProof(
        node=NodeId(_point(entry["node"], f"{what}.node").to_bytes()),
        id_number=_scalar(entry["id_number"], f"{what}.id_number"),
        shadow_point=_point(entry["shadow_point"], f"{what}.shadow_point"),
        blinded_public=_point(entry["blinded_public"], f"{what}.blinded_public"),
        proof=dleq,
    )


def parse_proofs(value: object) -> ShadowRetrievalProofs:
    """The `proofs` field of a shadow retrieval body; InvalidEncoding naming the bad part."""
    field = _object(value, _PROOFS_KEYS, "proofs")
    commitments = field["commitments"]
    participants = field["participants"]
    if not isinstance(commitments, list) or not commitments or len(commitments) > 1024:
        raise InvalidEncoding("proofs.commitments: expected a list of 1 to 1024 points")
    if not isinstance(participants, list) or not participants or len(participants) > 1024:
        raise InvalidEncoding("proofs.participants: expected a list of 1 to 1024 entries")
    return ShadowRetrievalProofs(
        threshold=_number(field["threshold"], "proofs.threshold"),
        session_id=_hex(field["session"], 32, "proofs.session"),
        attempt=_number(field["attempt"], "proofs.attempt"),
        commitments=tuple(
            _point(item, f"proofs.commitments[{k}]") for k, item in enumerate(commitments)
        ),
        encrypted_point=_point(field["encrypted_point"], "proofs.encrypted_point"),
        access_key=_scalar(field["access_key"], "proofs.access_key"),
        participants=tuple(_participant(item, i) for i, item in enumerate(participants)),
    )
