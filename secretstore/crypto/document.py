"""Document keys: AES-128-CTR document encryption (IV appended), key generation, encrypt_secret."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from secretstore.crypto.curve import Point, Scalar
from secretstore.crypto.rng import Rng


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


def document_encryption_key(key: Point) -> bytes:
    """The AES key: the first 16 bytes of the 64-byte encoding of M."""
    raise NotImplementedError


def encrypt_document(key: Point, document: bytes, rng: Rng) -> bytes:
    """AES-128-CTR(key, iv, document) ‖ iv."""
    raise NotImplementedError


def decrypt_document(key: Point, encrypted: bytes) -> bytes:
    """Inverse of encrypt_document; raises DecryptionError for input shorter than 16 bytes."""
    raise NotImplementedError


def encrypt_secret(secret_point: Point, joint_public: Point, rng: Rng) -> EncryptedSecret:
    raise NotImplementedError


def generate_document_key(
    account_public: Point, server_key_public: Point, rng: Rng
) -> tuple[Point, GeneratedDocumentKey]:
    """A fresh document key M, and (C, E, ECIES(account, M)) as Parity's helper returns them."""
    raise NotImplementedError


def decrypt_document_key(account_secret: Scalar, encrypted_key: bytes) -> Point:
    """M from ECIES(account, M): 64 bytes that must be a point."""
    raise NotImplementedError


def decrypt_with_shadow_coefficients(
    decrypted_secret: Point, common_point: Point, shadow_coefficients: Sequence[Scalar]
) -> Point:
    """Client side of shadow retrieval: M = D + (Σ d_i)·C'."""
    raise NotImplementedError
