"""Bound request signatures: a requester's signature over one whole request, not only a key id.

Parity's requester signature covers the server key id alone, so any node that sees it can
reuse it for another request on the same key. A *bound* signature is the requester's
recoverable signature (r‖s‖v, no prefix) over

    keccak256(BOUND_REQUEST_DOMAIN ‖ operation ‖ key_id ‖ payload)

- `BOUND_REQUEST_DOMAIN`: the 28 ASCII bytes ``secretstore:bound-request:v1``, so the digest
  is never the hash of anything else this project signs;
- `operation`: one byte (`BoundOperation`), so a signature for one operation is no use for
  another;
- `key_id`: the 32-byte server key id;
- `payload`: fixed per operation: ``common_point ‖ encrypted_point`` (64 + 64 bytes) for a
  document key store, the 32-byte message hash for Schnorr and ECDSA signing, the threshold
  as a 32-byte big-endian integer for a server key generation (Parity's key-id signature
  does not cover the threshold, so without a binding a master could generate with another),
  the 64-byte server key public for a delete (so a delete signature never applies to a later
  key generated under the same id).

Every length is fixed by the operation, so the concatenation is unambiguous. Construction
and verification live here only; the sessions call `bound_signer_matches`.
"""

from __future__ import annotations

import enum
from typing import Final

from secretstore.crypto.curve import Point, Scalar
from secretstore.crypto.hashing import keccak256
from secretstore.crypto.keys import address_of, recover_public, sign_recoverable
from secretstore.errors import InvalidEncoding
from secretstore.types import Address

#: The domain tag that opens every bound digest.
BOUND_REQUEST_DOMAIN: Final = b"secretstore:bound-request:v1"
#: Length of a server key id and of a message hash.
KEY_ID_LENGTH: Final = 32
MESSAGE_HASH_LENGTH: Final = 32
#: Length of a point in a payload (x‖y).
POINT_LENGTH: Final = 64
#: Length of a threshold in a payload (a big-endian unsigned integer).
THRESHOLD_LENGTH: Final = 32


class BoundOperation(enum.IntEnum):
    """The request a bound signature is for (its byte in the digest)."""

    STORE_DOCUMENT_KEY = 1
    SIGN_SCHNORR = 2
    SIGN_ECDSA = 3
    GENERATE_SERVER_KEY = 4
    DELETE_KEY = 5


#: The payload length of each operation.
PAYLOAD_LENGTHS: Final = {
    BoundOperation.STORE_DOCUMENT_KEY: 2 * POINT_LENGTH,
    BoundOperation.SIGN_SCHNORR: MESSAGE_HASH_LENGTH,
    BoundOperation.SIGN_ECDSA: MESSAGE_HASH_LENGTH,
    BoundOperation.GENERATE_SERVER_KEY: THRESHOLD_LENGTH,
    BoundOperation.DELETE_KEY: POINT_LENGTH,
}


def store_payload(common_point: Point, encrypted_point: Point) -> bytes:
    """The payload of a document key store: ``common_point ‖ encrypted_point``."""
    return common_point.to_bytes() + encrypted_point.to_bytes()


def signing_payload(message_hash: bytes) -> bytes:
    """The payload of a Schnorr or ECDSA signing: the 32-byte message hash."""
    if len(message_hash) != MESSAGE_HASH_LENGTH:
        raise InvalidEncoding(
            f"a message hash is {MESSAGE_HASH_LENGTH} bytes, got {len(message_hash)}"
        )
    return bytes(message_hash)


def generation_payload(threshold: int) -> bytes:
    """The payload of a server key generation: the threshold, 32 bytes big-endian."""
    if (
        isinstance(threshold, bool)
        or not isinstance(threshold, int)
        or not 0 <= threshold < 1 << (8 * THRESHOLD_LENGTH)
    ):
        raise InvalidEncoding(f"a threshold is a non-negative integer, got {threshold!r}")
    return threshold.to_bytes(THRESHOLD_LENGTH, "big")


def delete_payload(public: Point) -> bytes:
    """The payload of a key delete: the 64-byte server key public."""
    return public.to_bytes()


def bound_request_digest(operation: BoundOperation, key_id: bytes, payload: bytes) -> bytes:
    """The 32-byte digest a bound signature signs. InvalidEncoding for a wrong length."""
    operation = BoundOperation(operation)
    if len(key_id) != KEY_ID_LENGTH:
        raise InvalidEncoding(f"a server key id is {KEY_ID_LENGTH} bytes, got {len(key_id)}")
    expected = PAYLOAD_LENGTHS[operation]
    if len(payload) != expected:
        raise InvalidEncoding(
            f"the payload of {operation.name.lower()} is {expected} bytes, got {len(payload)}"
        )
    return keccak256(BOUND_REQUEST_DOMAIN + bytes((operation,)) + bytes(key_id) + bytes(payload))


def sign_bound_request(
    secret: Scalar, operation: BoundOperation, key_id: bytes, payload: bytes
) -> bytes:
    """The requester's bound signature: 65 bytes r‖s‖v (v ∈ {0,1}, low s, RFC 6979)."""
    return sign_recoverable(secret, bound_request_digest(operation, key_id, payload))


def recover_bound_signer(
    signature: bytes, operation: BoundOperation, key_id: bytes, payload: bytes
) -> Point:
    """The public key that made `signature` over this request. A signature over another
    request recovers another key (or none). Raises InvalidEncoding / InvalidSignature."""
    return recover_public(signature, bound_request_digest(operation, key_id, payload))


def bound_signer_matches(
    signature: bytes,
    requester: Address,
    operation: BoundOperation,
    key_id: bytes,
    payload: bytes,
) -> bool:
    """Whether `signature` is `requester`'s signature over exactly this request. Raises
    InvalidEncoding / InvalidSignature for a malformed signature or wrong lengths."""
    return address_of(recover_bound_signer(signature, operation, key_id, payload)) == requester
