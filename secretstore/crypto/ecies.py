"""Parity's ECIES: 0x04‖R‖iv‖AES-128-CTR‖HMAC-SHA256, concat-KDF over SHA-256."""

from __future__ import annotations

from secretstore.crypto.curve import Point, Scalar
from secretstore.crypto.rng import Rng

#: parity-crypto's DEFAULT_MAC, the `auth` data the key server and the JSON-RPC helpers use.
DEFAULT_MAC = b"\x00\x00"


def ecies_encrypt(public: Point, plain: bytes, rng: Rng, auth: bytes = DEFAULT_MAC) -> bytes:
    raise NotImplementedError


def ecies_decrypt(secret: Scalar, cipher: bytes, auth: bytes = DEFAULT_MAC) -> bytes:
    """Raises DecryptionError on bad version byte, short input or MAC mismatch."""
    raise NotImplementedError
