"""Response bodies exactly as Parity's key server wrote them (serde_json, compact). Pure."""

from __future__ import annotations

import json
from typing import Final

from secretstore.crypto.curve import Point
from secretstore.encoding import to_hex
from secretstore.http.port import ShadowRetrieval

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


def shadow_body(shadow: ShadowRetrieval) -> bytes:
    """Parity's SerializableEncryptedDocumentKeyShadow, fields in its order, no spaces."""
    value = {
        "decrypted_secret": to_hex(shadow.decrypted_secret.to_bytes()),
        "common_point": to_hex(shadow.common_point.to_bytes()),
        "decrypt_shadows": [to_hex(item) for item in shadow.decrypt_shadows],
    }
    return json.dumps(value, separators=(",", ":")).encode("utf-8")
