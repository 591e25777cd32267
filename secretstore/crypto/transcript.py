"""A Fiat–Shamir transcript over keccak256: what a non-interactive proof hashes, in order.

Every value is absorbed with its label and length, so two different sequences of absorbed
values never give the same state; a challenge is derived from the state and absorbed in turn,
so later challenges depend on earlier ones. Points are absorbed in their 33-byte compressed
form (the identity as 33 zero bytes).
"""

from __future__ import annotations

from typing import Final

from secretstore.crypto.curve import N, Point, Scalar
from secretstore.crypto.hashing import keccak256

_PREFIX: Final = b"secretstore-transcript-v1"
_IDENTITY: Final = bytes(33)


def _framed(data: bytes) -> bytes:
    return len(data).to_bytes(4, "big") + data


def point_bytes(point: Point) -> bytes:
    """The 33-byte compressed encoding, or 33 zero bytes for the identity."""
    return _IDENTITY if point.is_identity() else point.to_sec1()


class Transcript:
    """The running hash of a proof's public values."""

    __slots__ = ("_state",)

    def __init__(self, domain: bytes) -> None:
        self._state = keccak256(_PREFIX + _framed(domain))

    def absorb(self, label: bytes, data: bytes) -> None:
        self._state = keccak256(self._state + _framed(label) + _framed(data))

    def absorb_point(self, label: bytes, point: Point) -> None:
        self.absorb(label, point_bytes(point))

    def absorb_points(self, label: bytes, points: list[Point] | tuple[Point, ...]) -> None:
        self.absorb(label, b"".join(point_bytes(point) for point in points))

    def absorb_scalar(self, label: bytes, value: Scalar | int) -> None:
        number = value.to_int() if isinstance(value, Scalar) else value % N
        self.absorb(label, number.to_bytes(32, "big"))

    def challenge(self, label: bytes) -> int:
        """A challenge in [1, n-1] (as an int), absorbed into the state."""
        counter = 0
        while True:
            digest = keccak256(self._state + _framed(label) + counter.to_bytes(4, "big"))
            value = int.from_bytes(digest, "big")
            if 0 < value < N:
                self.absorb(label, digest)
                return value
            counter += 1
