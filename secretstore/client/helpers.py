"""The six `secretstore_*` helpers as pure functions over an unlocked account key pair."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from secretstore.crypto.curve import Point, Scalar
from secretstore.crypto.document import (
    DOCUMENT_IV_LENGTH,
    GeneratedDocumentKey,
    decrypt_document,
    decrypt_with_shadow_coefficients,
    encrypt_document,
)
from secretstore.crypto.document import generate_document_key as _generate_document_key
from secretstore.crypto.ecies import ecies_decrypt
from secretstore.crypto.keys import KeyPair, sign_recoverable
from secretstore.crypto.keys import servers_set_hash as _servers_set_hash
from secretstore.crypto.rng import Rng
from secretstore.errors import DecryptionError, InvalidEncoding
from secretstore.types import NodeId

# --- steps shared by the helpers, the JSON-RPC layer and the HTTP client ------------------


def unwrap_document_key(account: KeyPair, encrypted_key: bytes) -> Point:
    """The document key M from ECIES(account public, M).

    Raises DecryptionError when the ECIES envelope does not open with this account's key,
    InvalidEncoding when the plaintext is not 64 bytes, InvalidPoint when it is not a point.
    """
    plain = ecies_decrypt(account.secret, encrypted_key)
    if len(plain) != 64:
        raise InvalidEncoding(f"document key: expected 64 bytes, got {len(plain)}")
    return Point.from_bytes(plain)


def unwrap_shadow_coefficient(account: KeyPair, decrypt_shadow: bytes) -> Scalar:
    """One shadow coefficient d_i from ECIES(account public, d_i).

    Raises DecryptionError when the envelope does not open, InvalidEncoding / InvalidScalar
    when the plaintext is not a 32-byte non-zero scalar below the curve order.
    """
    plain = ecies_decrypt(account.secret, decrypt_shadow)
    return Scalar.secret_from_bytes(plain)


def key_from_shadow(
    account: KeyPair,
    decrypted_secret: Point,
    common_point: Point,
    decrypt_shadows: Sequence[bytes],
) -> Point:
    """M = D + (Σ d_i)·C', after opening every shadow with the account key.

    Raises DecryptionError for no shadows, a shadow that does not open, or shadows that do not
    combine to a key; InvalidEncoding / InvalidScalar for a shadow that is not a scalar.
    """
    coefficients = [unwrap_shadow_coefficient(account, shadow) for shadow in decrypt_shadows]
    return decrypt_with_shadow_coefficients(decrypted_secret, common_point, coefficients)


def require_encrypted_document(encrypted_data: bytes) -> bytes:
    """An encrypted document holds at least its 16-byte IV; raises DecryptionError otherwise."""
    if len(encrypted_data) < DOCUMENT_IV_LENGTH:
        raise DecryptionError(
            f"encrypted document: {len(encrypted_data)} bytes is shorter than its "
            f"{DOCUMENT_IV_LENGTH}-byte IV"
        )
    return encrypted_data


# --- the helpers ----------------------------------------------------------------------------


def sign_raw_hash(account: KeyPair, raw_hash: bytes) -> bytes:
    """secretstore_signRawHash: 65-byte r‖s‖v over a 32-byte hash, no prefix, no hashing."""
    if len(raw_hash) != 32:
        raise InvalidEncoding(f"hash: expected 32 bytes, got {len(raw_hash)}")
    return sign_recoverable(account.secret, raw_hash)


def generate_document_key(
    account: KeyPair, server_key_public: Point, rng: Rng
) -> GeneratedDocumentKey:
    """secretstore_generateDocumentKey: fresh M as (C, E) to the server key + ECIES(account, M)."""
    _, generated = _generate_document_key(account.public, server_key_public, rng)
    return generated


def encrypt(account: KeyPair, encrypted_key: bytes, data: bytes, rng: Rng) -> bytes:
    """secretstore_encrypt: open `encrypted_key` with the account key; encrypt `data` with M."""
    key = unwrap_document_key(account, encrypted_key)
    return encrypt_document(key, data, rng)


def decrypt(account: KeyPair, encrypted_key: bytes, encrypted_data: bytes) -> bytes:
    """secretstore_decrypt: open `encrypted_key` with the account key, then decrypt with M."""
    key = unwrap_document_key(account, encrypted_key)
    return decrypt_document(key, require_encrypted_document(encrypted_data))


def shadow_decrypt(
    account: KeyPair,
    decrypted_secret: Point,
    common_point: Point,
    decrypt_shadows: Sequence[bytes],
    encrypted_data: bytes,
) -> bytes:
    """secretstore_shadowDecrypt: M = D + (Σ d_i)·C' with each d_i opened by the account key."""
    key = key_from_shadow(account, decrypted_secret, common_point, decrypt_shadows)
    return decrypt_document(key, require_encrypted_document(encrypted_data))


def servers_set_hash(node_ids: Iterable[NodeId | Point]) -> bytes:
    """secretstore_serversSetHash: keccak256 over the sorted set of 64-byte node ids."""
    unique: dict[bytes, NodeId] = {}
    for node in node_ids:
        raw = node.to_bytes() if isinstance(node, Point) else bytes(node)
        if len(raw) != 64:
            raise InvalidEncoding(f"node id: expected 64 bytes, got {len(raw)}")
        unique[raw] = NodeId(raw)
    return _servers_set_hash(unique.values())
