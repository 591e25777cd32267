"""Document keys: AES-128-CTR document encryption (IV appended), key generation, encrypt_secret."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from Crypto.Cipher import AES

from secretstore.crypto.curve import Point, Scalar, scalar_sum
from secretstore.crypto.ecies import DEFAULT_MAC, aes_128_ctr, ecies_decrypt, ecies_encrypt
from secretstore.crypto.rng import Rng, random_scalar
from secretstore.errors import DecryptionError, InvalidEncoding

#: Length of the initialisation vector appended to an encrypted document.
DOCUMENT_IV_LENGTH = 16
#: Length of the AES-128 key taken from the document key point.
DOCUMENT_KEY_LENGTH = 16


@dataclass(frozen=True, slots=True)
class EncryptedSecret:
    """A document key M encrypted to a server key Y: C = k·G, E = M + k·Y."""

    common_point: Point
    encrypted_point: Point


@dataclass(frozen=True, slots=True)
class GeneratedDocumentKey:
    """What secretstore_generateDocumentKey returns."""

    common_point: Point
    encrypted_point: Point
    encrypted_key: bytes  # ECIES(account public, DEFAULT_MAC, M as 64 bytes)


# --- symmetric encryption of documents ----------------------------------------------------


def document_encryption_key(key: Point) -> bytes:
    """The AES key: the first 16 bytes of the 64-byte encoding of M."""
    return key.to_bytes()[:DOCUMENT_KEY_LENGTH]


def encrypt_document(key: Point, document: bytes, rng: Rng) -> bytes:
    """AES-128-CTR(key, iv, document) ‖ iv."""
    iv = rng.random_bytes(DOCUMENT_IV_LENGTH)
    return aes_128_ctr(document_encryption_key(key), iv, document) + iv


def decrypt_document(key: Point, encrypted: bytes) -> bytes:
    """Inverse of encrypt_document; raises DecryptionError for input shorter than 16 bytes.

    CTR mode has no integrity check: a wrong key gives garbage of the same length, as Parity's.
    """
    if len(encrypted) < DOCUMENT_IV_LENGTH:
        raise DecryptionError("an encrypted document ends with a 16-byte iv")
    view = memoryview(encrypted)
    split = len(encrypted) - DOCUMENT_IV_LENGTH
    return aes_128_ctr(document_encryption_key(key), bytes(view[split:]), view[:split])


class DocumentEncryptor:
    """Encrypts a document in chunks into the same format as encrypt_document.

    Feed the chunks to `update` in order and write what it returns; then write `finish()`,
    the 16-byte iv that ends the encrypted document.
    """

    __slots__ = ("_cipher", "_iv")

    def __init__(self, key: Point, rng: Rng) -> None:
        self._iv = rng.random_bytes(DOCUMENT_IV_LENGTH)
        self._cipher = AES.new(
            document_encryption_key(key), AES.MODE_CTR, nonce=b"", initial_value=self._iv
        )

    def update(self, chunk: bytes) -> bytes:
        out: bytes = self._cipher.encrypt(chunk)
        return out

    def finish(self) -> bytes:
        """The trailer to append after the last encrypted chunk: the iv."""
        return self._iv


class DocumentDecryptor:
    """Decrypts the body of an encrypted document in chunks.

    The iv is the last 16 bytes of the encrypted document: read it first, then feed the body
    (everything before it) to `update` in order.
    """

    __slots__ = ("_cipher",)

    def __init__(self, key: Point, iv: bytes) -> None:
        if len(iv) != DOCUMENT_IV_LENGTH:
            raise InvalidEncoding(f"a document iv is {DOCUMENT_IV_LENGTH} bytes, got {len(iv)}")
        self._cipher = AES.new(
            document_encryption_key(key), AES.MODE_CTR, nonce=b"", initial_value=bytes(iv)
        )

    def update(self, chunk: bytes) -> bytes:
        out: bytes = self._cipher.decrypt(chunk)
        return out


# --- document keys and the server key -----------------------------------------------------


def encrypt_secret(secret_point: Point, joint_public: Point, rng: Rng) -> EncryptedSecret:
    """C = k·G and E = M + k·Y for a random k (Parity's `encrypt_secret`).

    Raises InvalidPoint if either point is the identity.
    """
    secret_point.require_not_identity("document key")
    joint_public.require_not_identity("server key public")
    while True:
        k = random_scalar(rng)
        encrypted_point = joint_public * k + secret_point
        if not encrypted_point.is_identity():  # only if M = -k·Y: draw another k
            return EncryptedSecret(Point.base_mul(k), encrypted_point)


def generate_document_key(
    account_public: Point, server_key_public: Point, rng: Rng
) -> tuple[Point, GeneratedDocumentKey]:
    """A fresh document key M, and (C, E, ECIES(account, M)) as Parity's helper returns them."""
    document_key = Point.base_mul(random_scalar(rng))
    encrypted = encrypt_secret(document_key, server_key_public, rng)
    encrypted_key = ecies_encrypt(account_public, document_key.to_bytes(), rng, DEFAULT_MAC)
    return document_key, GeneratedDocumentKey(
        encrypted.common_point, encrypted.encrypted_point, encrypted_key
    )


def decrypt_document_key(account_secret: Scalar, encrypted_key: bytes) -> Point:
    """M from ECIES(account, M): 64 bytes that must be a point.

    Raises DecryptionError if the ciphertext does not decrypt or its plaintext is not 64 bytes,
    InvalidPoint if those 64 bytes are not a point.
    """
    plain = ecies_decrypt(account_secret, encrypted_key, DEFAULT_MAC)
    if len(plain) != 64:
        raise DecryptionError(f"a document key is 64 bytes, got {len(plain)}")
    return Point.from_bytes(plain)


def decrypt_with_shadow_coefficients(
    decrypted_secret: Point, common_point: Point, shadow_coefficients: Sequence[Scalar]
) -> Point:
    """Client side of shadow retrieval: M = D + (Σ d_i)·C'.

    As Parity's helper, at least one coefficient is required and the sum must not be zero;
    both faults, and a result that is the identity, raise DecryptionError.
    """
    if not shadow_coefficients:
        raise DecryptionError("no decryption shadows")
    total = scalar_sum(shadow_coefficients)
    if total.is_zero():
        raise DecryptionError("the decryption shadows sum to zero")
    key = decrypted_secret + common_point * total
    if key.is_identity():
        raise DecryptionError("the shadows do not decrypt to a document key")
    return key
