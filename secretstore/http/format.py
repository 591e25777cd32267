"""Response bodies exactly as Parity's key server wrote them (serde_json, compact). Pure."""

from __future__ import annotations

import json
from typing import Final

from secretstore.audit.jsonform import receipts_json
from secretstore.crypto.curve import Point
from secretstore.crypto.shadow_proofs import ShadowRetrievalProofs
from secretstore.encoding import to_hex
from secretstore.http.port import KeyDeletion, RefreshSummary, ShadowRetrieval

#: The Content-Type of every JSON body (success and error), as Parity sent it.
JSON_CONTENT_TYPE: Final = "application/json; charset=utf-8"
#: The body of a successful store / servers set change: nothing at all.
EMPTY_BODY: Final = b""


def json_string(text: str) -> bytes:
    """A JSON string literal as serde_json writes it (UTF-8, only the required escapes)."""
    return json.dumps(text, ensure_ascii=False).encode("utf-8")


def bytes_body(data: bytes) -> bytes:
    """`"0x…"`: Parity's SerializableBytes (encrypted document keys and signatures)."""
    return json_string(to_hex(data))


def public_body(point: Point) -> bytes:
    """`"0x<128 hex digits>"`: Parity's SerializablePublic (server key publics)."""
    return json_string(to_hex(point.to_bytes()))


#: The name of our extra field in the shadow retrieval body (after Parity's three).
PROOFS_FIELD: Final = "proofs"
#: Our field of the participants' receipts in the shadow retrieval body (after `proofs`).
RECEIPTS_FIELD: Final = "receipts"
#: The response header of the receipts of a release answered with a bare JSON string
#: (plain retrieval, Schnorr, ECDSA): sent when the request carries it (any value).
RECEIPTS_HEADER: Final = "X-Secretstore-Receipts"


def shadow_body(shadow: ShadowRetrieval) -> bytes:
    """Parity's SerializableEncryptedDocumentKeyShadow, fields in its order, no spaces; then,
    for a key with commitments, our `proofs` field (`proofs_json`), and our `receipts` field
    (audit/jsonform.py), which Parity's clients ignore."""
    value: dict[str, object] = {
        "decrypted_secret": to_hex(shadow.decrypted_secret.to_bytes()),
        "common_point": to_hex(shadow.common_point.to_bytes()),
        "decrypt_shadows": [to_hex(item) for item in shadow.decrypt_shadows],
    }
    if shadow.proofs is not None:
        value[PROOFS_FIELD] = proofs_json(shadow.proofs)
    if shadow.receipts is not None:
        value[RECEIPTS_FIELD] = receipts_json(shadow.receipts)
    return json.dumps(value, separators=(",", ":")).encode("utf-8")


def proofs_json(proofs: ShadowRetrievalProofs) -> dict[str, object]:
    """The `proofs` field: everything a requester needs to check each participant's part
    (secretstore.client.verify): hex as everywhere in the API, numbers as JSON numbers, a
    proof as the 64 bytes challenge ‖ response."""
    return {
        "threshold": proofs.threshold,
        "session": to_hex(proofs.session_id),
        "attempt": proofs.attempt,
        "commitments": [to_hex(point.to_bytes()) for point in proofs.commitments],
        "encrypted_point": to_hex(proofs.encrypted_point.to_bytes()),
        "access_key": to_hex(proofs.access_key.to_bytes()),
        "participants": [
            {
                "node": to_hex(p.node),
                "id_number": to_hex(p.id_number.to_bytes()),
                "shadow_point": to_hex(p.shadow_point.to_bytes()),
                "blinded_public": to_hex(p.blinded_public.to_bytes()),
                "proof": to_hex(p.proof.challenge.to_bytes() + p.proof.response.to_bytes()),
            }
            for p in proofs.participants
        ],
    }


def deletion_body(deletion: KeyDeletion) -> bytes:
    """The body of a key delete (ours): `{"key_id":"0x…","confirmed":["0x<node id>",…],
    "unconfirmed":[…]}`, node ids ascending."""
    value = {
        "key_id": to_hex(deletion.key_id),
        "confirmed": [to_hex(node) for node in deletion.confirmed],
        "unconfirmed": [to_hex(node) for node in deletion.unconfirmed],
    }
    return json.dumps(value, separators=(",", ":")).encode("utf-8")


def refresh_body(summary: RefreshSummary) -> bytes:
    """The body of a refresh (ours): `{"refreshed":N,"skipped":[{"key_id":"0x…","reason":
    "…"},…]}`."""
    value = {
        "refreshed": summary.refreshed,
        "skipped": [
            {"key_id": to_hex(key_id), "reason": reason} for key_id, reason in summary.skipped
        ],
    }
    return json.dumps(value, separators=(",", ":")).encode("utf-8")
