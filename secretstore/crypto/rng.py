"""The one source of randomness: OS entropy in production, a seeded stream in tests."""

from __future__ import annotations

import hashlib
import secrets
from typing import Protocol

from secretstore.crypto.curve import N, Scalar


class Rng(Protocol):
    """Where every random byte comes from; injected, never global."""

    def random_bytes(self, n: int) -> bytes: ...


class OsRng:
    """Randomness from the operating system (production)."""

    def random_bytes(self, n: int) -> bytes:
        return secrets.token_bytes(n)


class SeededRng:
    """A reproducible stream from a seed (tests and simulations only; never for real keys)."""

    def __init__(self, seed: bytes | int) -> None:
        if isinstance(seed, int):
            seed = seed.to_bytes(16, "big", signed=True)
        self._seed = hashlib.sha256(b"secretstore-seeded-rng" + seed).digest()
        self._counter = 0

    def random_bytes(self, n: int) -> bytes:
        out = bytearray()
        while len(out) < n:
            out += hashlib.sha256(self._seed + self._counter.to_bytes(8, "big")).digest()
            self._counter += 1
        return bytes(out[:n])


def random_scalar(rng: Rng) -> Scalar:
    """A uniformly random scalar in [1, n-1]."""
    while True:
        v = int.from_bytes(rng.random_bytes(32), "big")
        if 0 < v < N:
            return Scalar(v)


DEFAULT_RNG = OsRng()
