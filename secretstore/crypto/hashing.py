"""Hash functions: keccak256 (Ethereum) and sha256."""

from __future__ import annotations

import hashlib

from Crypto.Hash import keccak


def keccak256(data: bytes) -> bytes:
    return keccak.new(digest_bits=256, data=data).digest()


def sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()
