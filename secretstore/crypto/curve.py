"""Scalars mod n and points on secp256k1, over coincurve, with zero and the identity explicit."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import Final

from coincurve import PublicKey

from secretstore.errors import InvalidEncoding, InvalidPoint, InvalidScalar

#: The order of the secp256k1 group.
N: Final = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
#: The prime of the secp256k1 field.
P: Final = 2**256 - 2**32 - 977


class Scalar:
    """An element of Z/nZ. Its value never appears in repr() or str()."""

    __slots__ = ("_v",)

    def __init__(self, value: int) -> None:
        self._v = value % N

    # --- construction -------------------------------------------------------------------
    @classmethod
    def from_bytes(cls, data: bytes) -> Scalar:
        """Exactly 32 big-endian bytes of a value below n (zero allowed)."""
        if len(data) != 32:
            raise InvalidEncoding(f"a scalar is 32 bytes, got {len(data)}")
        v = int.from_bytes(data, "big")
        if v >= N:
            raise InvalidScalar("scalar is not below the curve order")
        return cls(v)

    @classmethod
    def secret_from_bytes(cls, data: bytes) -> Scalar:
        """A secret: 32 bytes of a value in [1, n-1]."""
        s = cls.from_bytes(data)
        if s.is_zero():
            raise InvalidScalar("a secret cannot be zero")
        return s

    @classmethod
    def from_hash(cls, digest: bytes) -> Scalar:
        """Reduce a 32-byte hash mod n (Parity's `to_scalar`); a zero result is rejected."""
        if len(digest) != 32:
            raise InvalidEncoding(f"a hash is 32 bytes, got {len(digest)}")
        s = cls(int.from_bytes(digest, "big"))
        if s.is_zero():
            raise InvalidScalar("hash reduces to zero")
        return s

    # --- access -------------------------------------------------------------------------
    def to_bytes(self) -> bytes:
        return self._v.to_bytes(32, "big")

    def to_int(self) -> int:
        return self._v

    def is_zero(self) -> bool:
        return self._v == 0

    def require_nonzero(self, what: str = "scalar") -> Scalar:
        if self._v == 0:
            raise InvalidScalar(f"{what} is zero")
        return self

    # --- arithmetic ---------------------------------------------------------------------
    def __add__(self, other: Scalar) -> Scalar:
        return Scalar(self._v + other._v)

    def __sub__(self, other: Scalar) -> Scalar:
        return Scalar(self._v - other._v)

    def __mul__(self, other: Scalar) -> Scalar:
        if not isinstance(other, Scalar):
            return NotImplemented  # lets `scalar * point` reach Point.__rmul__
        return Scalar(self._v * other._v)

    def __neg__(self) -> Scalar:
        return Scalar(-self._v)

    def __pow__(self, exponent: int) -> Scalar:
        if self._v == 0 and exponent < 0:
            raise InvalidScalar("zero has no inverse")
        return Scalar(pow(self._v, exponent, N))

    def inverse(self) -> Scalar:
        if self._v == 0:
            raise InvalidScalar("zero has no inverse")
        return Scalar(pow(self._v, -1, N))

    def __truediv__(self, other: Scalar) -> Scalar:
        return self * other.inverse()

    # --- comparison and display (no value shown) ----------------------------------------
    def __eq__(self, other: object) -> bool:
        return isinstance(other, Scalar) and self._v == other._v

    def __hash__(self) -> int:
        return hash(("Scalar", self._v))

    def __repr__(self) -> str:
        return "Scalar(<hidden>)"

    __str__ = __repr__

    def __reduce__(self) -> tuple[type[Scalar], tuple[int]]:
        return (Scalar, (self._v,))


ZERO: Final = Scalar(0)
ONE: Final = Scalar(1)


def scalar_sum(values: Iterable[Scalar]) -> Scalar:
    total = 0
    for v in values:
        total += v.to_int()
    return Scalar(total)


class Point:
    """A point of secp256k1, or the identity (point at infinity).

    The 64-byte encoding `x‖y` is Parity's `Public`; the identity has no encoding.
    """

    __slots__ = ("_pk", "_raw")

    def __init__(self, raw: bytes | None, pk: PublicKey | None = None) -> None:
        # Internal: use the from_* constructors. raw is the validated 64-byte x‖y, or None.
        self._raw = raw
        self._pk = pk

    # --- construction -------------------------------------------------------------------
    @classmethod
    def from_bytes(cls, data: bytes) -> Point:
        """64 bytes `x‖y` (Parity's Public); also accepts 65 bytes with the 0x04 prefix."""
        if len(data) == 65 and data[0] == 4:
            data = data[1:]
        if len(data) != 64:
            raise InvalidEncoding(f"a public key is 64 bytes, got {len(data)}")
        try:
            pk = PublicKey(b"\x04" + data)
        except ValueError as exc:
            raise InvalidPoint("not a point on secp256k1") from exc
        return cls(bytes(data), pk)

    @classmethod
    def from_sec1(cls, data: bytes) -> Point:
        """A SEC1-encoded point: 33 bytes compressed or 65 bytes uncompressed."""
        try:
            pk = PublicKey(data)
        except ValueError as exc:
            raise InvalidPoint("not a SEC1 point on secp256k1") from exc
        return cls._from_pk(pk)

    @classmethod
    def _from_pk(cls, pk: PublicKey) -> Point:
        return cls(pk.format(compressed=False)[1:], pk)

    @classmethod
    def identity(cls) -> Point:
        return _IDENTITY

    @classmethod
    def generator(cls) -> Point:
        return G

    @classmethod
    def base_mul(cls, k: Scalar) -> Point:
        """k·G."""
        if k.is_zero():
            return _IDENTITY
        return cls._from_pk(PublicKey.from_valid_secret(k.to_bytes()))

    # --- access -------------------------------------------------------------------------
    def is_identity(self) -> bool:
        return self._raw is None

    def to_bytes(self) -> bytes:
        """64 bytes `x‖y`. The identity has no encoding and raises InvalidPoint."""
        if self._raw is None:
            raise InvalidPoint("the identity point has no encoding")
        return self._raw

    def to_sec1(self, compressed: bool = True) -> bytes:
        return self.public_key().format(compressed=compressed)

    def public_key(self) -> PublicKey:
        """The coincurve key of a non-identity point."""
        if self._raw is None:
            raise InvalidPoint("the identity point is not a public key")
        if self._pk is None:
            self._pk = PublicKey(b"\x04" + self._raw)
        return self._pk

    @property
    def x(self) -> int:
        return int.from_bytes(self.to_bytes()[:32], "big")

    @property
    def y(self) -> int:
        return int.from_bytes(self.to_bytes()[32:], "big")

    def require_not_identity(self, what: str = "point") -> Point:
        if self._raw is None:
            raise InvalidPoint(f"{what} is the identity")
        return self

    # --- group law ----------------------------------------------------------------------
    def __add__(self, other: Point) -> Point:
        if self._raw is None:
            return other
        if other._raw is None:
            return self
        if self._raw[:32] == other._raw[:32] and self._raw[32:] != other._raw[32:]:
            return _IDENTITY  # P + (-P)
        return Point._from_pk(PublicKey.combine_keys([self.public_key(), other.public_key()]))

    def __neg__(self) -> Point:
        if self._raw is None:
            return self
        y = P - int.from_bytes(self._raw[32:], "big")
        return Point(self._raw[:32] + y.to_bytes(32, "big"))

    def __sub__(self, other: Point) -> Point:
        return self + (-other)

    def __mul__(self, k: Scalar) -> Point:
        if self._raw is None or k.is_zero():
            return _IDENTITY
        if self._raw == _GENERATOR_RAW:
            return Point.base_mul(k)  # libsecp256k1's precomputed k·G is ~3x quicker
        return Point._from_pk(self.public_key().multiply(k.to_bytes()))

    __rmul__ = __mul__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Point) and self._raw == other._raw

    def __hash__(self) -> int:
        return hash(("Point", self._raw))

    def __repr__(self) -> str:
        if self._raw is None:
            return "Point(identity)"
        return f"Point(0x{self._raw.hex()})"


def point_sum(points: Iterable[Point]) -> Point:
    """The sum of the points (the identity for none), combined in one coincurve call."""
    keys: list[PublicKey] = []
    for p in points:
        if not p.is_identity():
            keys.append(p.public_key())
    if not keys:
        return _IDENTITY
    if len(keys) == 1:
        return Point._from_pk(keys[0])
    try:
        return Point._from_pk(PublicKey.combine_keys(keys))
    except ValueError:
        # The sum is the identity, or a partial sum hit it: fall back to pairwise addition.
        total = _IDENTITY
        for k in keys:
            total = total + Point._from_pk(k)
        return total


_IDENTITY: Final = Point(None)
G: Final = Point.base_mul(ONE)
_GENERATOR_RAW: Final = G.to_bytes()


def hash_to_point(data: bytes) -> Point:
    """A point nobody knows the discrete log of: try-and-increment over SHA-256, even y.

    The first digest x (of `tag ‖ data ‖ counter`, counter from 0) below p for which
    x³ + 7 is a square gives the point (x, the even root); libsecp256k1 decompresses it (the
    SEC1 form 0x02 ‖ x), which is far quicker than a modular square root in Python.
    """
    counter = 0
    while True:
        digest = hashlib.sha256(
            b"secretstore-hash-to-point" + data + counter.to_bytes(4, "big")
        ).digest()
        if int.from_bytes(digest, "big") < P:
            try:
                return Point.from_sec1(b"\x02" + digest)
            except InvalidPoint:
                pass  # x³ + 7 is not a square: next counter
        counter += 1
