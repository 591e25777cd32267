"""Scalars, points (identity, negation, subtraction, bad encodings), the rng and hex parsing."""

from __future__ import annotations

import hashlib
import pickle
from functools import reduce
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from secretstore.crypto.curve import (
    ONE,
    ZERO,
    G,
    N,
    P,
    Point,
    Scalar,
    hash_to_point,
    point_sum,
    scalar_sum,
)
from secretstore.crypto.rng import OsRng, SeededRng, random_scalar
from secretstore.encoding import parse_hex, to_hex
from secretstore.errors import InvalidEncoding, InvalidPoint, InvalidScalar
from tests.unit.crypto import parity_vectors, vector_id

GX = 0x79BE667EF9DCBBAC55A06295CE870B07029BFCDB2DCE28D959F2815B16F81798
GY = 0x483ADA7726A3C4655DA4FBFC0E1108A8FD17B448A68554199C47D08FFB10D4B8

ints_mod_n = st.integers(min_value=0, max_value=N - 1)
nonzero = st.integers(min_value=1, max_value=N - 1)


def enc(x: int, y: int) -> bytes:
    return x.to_bytes(32, "big") + y.to_bytes(32, "big")


# --- Scalar ---------------------------------------------------------------------------------


@pytest.mark.parametrize("length", [0, 1, 31, 33, 64])
def test_scalar_from_bytes_rejects_wrong_length(length: int) -> None:
    with pytest.raises(InvalidEncoding):
        Scalar.from_bytes(b"\x01" * length)


def test_scalar_from_bytes_range() -> None:
    assert Scalar.from_bytes((N - 1).to_bytes(32, "big")).to_int() == N - 1
    assert Scalar.from_bytes(bytes(32)).is_zero()
    for too_big in (N, N + 1, 2**256 - 1):
        with pytest.raises(InvalidScalar):
            Scalar.from_bytes(too_big.to_bytes(32, "big"))


def test_secret_cannot_be_zero() -> None:
    with pytest.raises(InvalidScalar):
        Scalar.secret_from_bytes(bytes(32))
    assert Scalar.secret_from_bytes((1).to_bytes(32, "big")) == ONE


def test_from_hash_reduces_and_rejects_zero() -> None:
    assert Scalar.from_hash((N + 5).to_bytes(32, "big")).to_int() == 5
    with pytest.raises(InvalidScalar):
        Scalar.from_hash(N.to_bytes(32, "big"))
    with pytest.raises(InvalidScalar):
        Scalar.from_hash(bytes(32))
    with pytest.raises(InvalidEncoding):
        Scalar.from_hash(bytes(31))


def test_scalar_never_shows_its_value() -> None:
    secret = Scalar(0xDEADBEEF1234)
    for text in (repr(secret), str(secret), f"{secret}", repr([secret])):
        assert "deadbeef1234" not in text.lower()
        assert str(0xDEADBEEF1234) not in text
        assert "hidden" in text


@given(ints_mod_n, ints_mod_n)
def test_scalar_arithmetic_matches_integers_mod_n(a: int, b: int) -> None:
    x, y = Scalar(a), Scalar(b)
    assert (x + y).to_int() == (a + b) % N
    assert (x - y).to_int() == (a - b) % N
    assert (x * y).to_int() == (a * b) % N
    assert (-x).to_int() == (-a) % N
    assert (x**3).to_int() == pow(a, 3, N)
    assert Scalar.from_bytes(x.to_bytes()) == x
    assert (x == y) == (a == b)
    if b:
        assert (x / y) * y == x
        assert y.inverse() * y == ONE
        assert y**-1 == y.inverse()


def test_zero_has_no_inverse() -> None:
    with pytest.raises(InvalidScalar):
        ZERO.inverse()
    with pytest.raises(InvalidScalar):
        ONE / ZERO
    with pytest.raises(InvalidScalar):
        ZERO**-1
    with pytest.raises(InvalidScalar):
        ZERO.require_nonzero("thing")
    assert ONE.require_nonzero() is ONE
    assert ZERO**0 == ONE


@given(st.lists(ints_mod_n, max_size=8))
def test_scalar_sum(values: list[int]) -> None:
    assert scalar_sum(Scalar(v) for v in values).to_int() == sum(values) % N


def test_scalar_equality_hash_and_pickle() -> None:
    assert Scalar(N + 3) == Scalar(3)
    assert hash(Scalar(3)) == hash(Scalar(N + 3))
    assert Scalar(3) != 3
    assert pickle.loads(pickle.dumps(Scalar(77))) == Scalar(77)


# --- Point: encodings -------------------------------------------------------------------------


def test_generator_encoding() -> None:
    assert G.to_bytes() == enc(GX, GY)
    assert (G.x, G.y) == (GX, GY)
    assert Point.generator() is G
    assert Point.from_bytes(enc(GX, GY)) == G
    assert Point.from_bytes(b"\x04" + enc(GX, GY)) == G
    assert Point.from_sec1(G.to_sec1()) == G
    assert Point.from_sec1(G.to_sec1(compressed=False)) == G
    assert G.to_sec1() == bytes([2 + (GY & 1)]) + GX.to_bytes(32, "big")


@pytest.mark.parametrize("length", [0, 1, 32, 33, 63, 66, 128])
def test_point_from_bytes_rejects_wrong_length(length: int) -> None:
    with pytest.raises(InvalidEncoding):
        Point.from_bytes(b"\x04" * length)


def test_point_from_bytes_65_needs_the_04_prefix() -> None:
    for prefix in (b"\x00", b"\x02", b"\x03", b"\x06", b"\x07"):
        with pytest.raises(InvalidEncoding):
            Point.from_bytes(prefix + enc(GX, GY))


@pytest.mark.parametrize(
    "raw",
    [
        enc(GX, GY + 1),  # off the curve
        enc(GX, (P - GY) ^ 1),
        enc(0, 0),
        enc(GX, P),  # coordinates not below p
        enc(P + 1, GY),
        enc(P, 0),
        b"\xff" * 64,
    ],
)
def test_point_not_on_curve_is_rejected(raw: bytes) -> None:
    with pytest.raises(InvalidPoint):
        Point.from_bytes(raw)


@pytest.mark.parametrize("data", [b"", b"\x02", b"\x05" + bytes(32), b"\x02" + b"\xff" * 32])
def test_sec1_garbage_is_rejected(data: bytes) -> None:
    with pytest.raises(InvalidPoint):
        Point.from_sec1(data)


# --- Point: the identity and the group law ---------------------------------------------------


def test_identity_has_no_encoding() -> None:
    o = Point.identity()
    assert o.is_identity()
    assert not G.is_identity()
    assert repr(o) == "Point(identity)"
    for use in (o.to_bytes, o.public_key, o.to_sec1, lambda: o.x, lambda: o.y):
        with pytest.raises(InvalidPoint):
            use()
    with pytest.raises(InvalidPoint):
        o.require_not_identity("key")
    assert G.require_not_identity() is G


def test_identity_laws() -> None:
    o = Point.identity()
    assert o + G == G
    assert G + o == G
    assert o + o == o
    assert -o == o
    assert o == G - G
    assert o == G + (-G)
    assert o - G == -G
    assert o * Scalar(5) == o
    assert o == G * ZERO
    assert Point.base_mul(ZERO) == o
    assert Point.base_mul(Scalar(N - 1)) == -G
    assert G * Scalar(N - 1) + G == o
    assert o == Point.identity()
    assert o != G
    assert hash(o) == hash(Point.identity())


def test_negation_flips_y() -> None:
    minus_g = -G
    assert minus_g.to_bytes() == enc(GX, P - GY)
    assert -minus_g == G
    assert Point.from_bytes(minus_g.to_bytes()) == minus_g
    assert minus_g.public_key().format(compressed=False)[1:] == minus_g.to_bytes()


def test_doubling() -> None:
    assert Point.base_mul(Scalar(2)) == G + G
    assert G * Scalar(2) == G + G


@given(ints_mod_n, ints_mod_n)
def test_group_law(a: int, b: int) -> None:
    x, y = Scalar(a), Scalar(b)
    ag, bg = Point.base_mul(x), Point.base_mul(y)
    assert ag + bg == Point.base_mul(x + y)
    assert ag - bg == Point.base_mul(x - y)
    assert -ag == Point.base_mul(-x)
    assert ag * y == Point.base_mul(x * y)
    assert y * ag == ag * y  # Scalar * Point reaches Point.__rmul__
    assert bg + ag == ag + bg


@given(ints_mod_n)
def test_multiplying_the_generator_takes_the_base_path_with_the_same_result(a: int) -> None:
    k = Scalar(a)
    generic = Point._from_pk(G.public_key().multiply(k.to_bytes())) if a else Point.identity()
    assert G * k == generic == Point.base_mul(k)
    assert Point.from_bytes(G.to_bytes()) * k == generic  # any object holding G
    assert (G + G) * k == Point.base_mul(k + k)  # other points keep the generic path


@given(st.lists(ints_mod_n, max_size=6), st.booleans())
def test_point_sum_matches_pairwise_addition(values: list[int], cancel: bool) -> None:
    points = [Point.base_mul(Scalar(v)) for v in values]
    if cancel and points:
        points.append(-points[0])  # a sum (or partial sum) that hits the identity
    expected = reduce(lambda acc, p: acc + p, points, Point.identity())
    assert point_sum(points) == expected
    total = sum(values) - (values[0] if cancel and values else 0)
    assert expected == Point.base_mul(Scalar(total))


def test_point_sum_of_opposites_is_identity() -> None:
    assert point_sum([G, -G]).is_identity()
    assert point_sum([]).is_identity()
    assert point_sum([Point.identity(), G]) == G
    assert point_sum([G, -G, G]) == G


def test_point_repr_shows_the_public_encoding() -> None:
    assert repr(G) == f"Point(0x{enc(GX, GY).hex()})"


@pytest.mark.parametrize("entry", parity_vectors("common_point_negation"), ids=vector_id)
def test_shadow_common_point_is_the_negated_common_point(entry: dict[str, Any]) -> None:
    common = Point.from_bytes(bytes.fromhex(entry["common_point"]))
    shadow = Point.from_bytes(bytes.fromhex(entry["shadow_common_point"]))
    assert entry["threshold"] % 2 == 1
    assert -common == shadow
    assert (common + shadow).is_identity()
    assert common - shadow == common + common


# --- rng ------------------------------------------------------------------------------------


def test_seeded_rng_is_reproducible_and_seed_dependent() -> None:
    assert SeededRng(1).random_bytes(100) == SeededRng(1).random_bytes(100)
    assert SeededRng(b"a").random_bytes(32) != SeededRng(b"b").random_bytes(32)
    assert SeededRng(1).random_bytes(32) != SeededRng(2).random_bytes(32)
    rng = SeededRng(3)
    assert rng.random_bytes(32) != rng.random_bytes(32)


@pytest.mark.parametrize("n", [0, 1, 16, 31, 33, 100])
def test_rngs_give_the_requested_length(n: int) -> None:
    assert len(SeededRng(0).random_bytes(n)) == n
    assert len(OsRng().random_bytes(n)) == n


class ScriptedRng:
    """Returns the given 32-byte blocks in order."""

    def __init__(self, blocks: list[bytes]) -> None:
        self._blocks = list(blocks)

    def random_bytes(self, n: int) -> bytes:
        block = self._blocks.pop(0)
        assert len(block) == n
        return block


def test_random_scalar_skips_zero_and_values_not_below_n() -> None:
    rng = ScriptedRng([bytes(32), N.to_bytes(32, "big"), b"\xff" * 32, (7).to_bytes(32, "big")])
    assert random_scalar(rng) == Scalar(7)


@given(st.integers(min_value=0, max_value=2**32))
def test_random_scalar_is_a_valid_secret(seed: int) -> None:
    s = random_scalar(SeededRng(seed))
    assert 0 < s.to_int() < N


# --- hex ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [("0x00ff", b"\x00\xff"), ("00FF", b"\x00\xff"), ("0XaB", b"\xab"), ("", b""), ("0x", b"")],
)
def test_parse_hex_accepts(text: str, expected: bytes) -> None:
    assert parse_hex(text) == expected


@pytest.mark.parametrize(
    "text", ["0x0", "abc", "0xzz", "0x 00", " 00", "00\n", "0x0x00", "g0", "١٢", "0x+1", "--"]
)
def test_parse_hex_rejects_non_hex(text: str) -> None:
    with pytest.raises(InvalidEncoding):
        parse_hex(text)


def test_parse_hex_checks_length_and_names_the_value() -> None:
    assert parse_hex("0x" + "11" * 32, 32) == b"\x11" * 32
    with pytest.raises(InvalidEncoding, match="server key id"):
        parse_hex("0x" + "11" * 31, 32, what="server key id")
    with pytest.raises(InvalidEncoding):
        parse_hex("11" * 33, 32)


@given(st.binary(max_size=80))
def test_hex_round_trip(data: bytes) -> None:
    text = to_hex(data)
    assert text == "0x" + data.hex()
    assert parse_hex(text) == data
    assert parse_hex(text[2:].upper(), len(data)) == data


# --- hash_to_point ---------------------------------------------------------------------------


def _hash_to_point_by_arithmetic(data: bytes) -> Point:
    """The definition with field arithmetic: the first x = SHA-256(tag ‖ data ‖ counter) below
    p with x³ + 7 a square, and the even square root (p ≡ 3 mod 4)."""
    counter = 0
    while True:
        tagged = b"secretstore-hash-to-point" + data + counter.to_bytes(4, "big")
        x = int.from_bytes(hashlib.sha256(tagged).digest(), "big")
        if x < P:
            rhs = (pow(x, 3, P) + 7) % P
            y = pow(rhs, (P + 1) // 4, P)
            if y * y % P == rhs:
                y = P - y if y & 1 else y
                return Point.from_bytes(x.to_bytes(32, "big") + y.to_bytes(32, "big"))
        counter += 1


# Derived points as the arithmetic implementation computed them.
HASHED_POINTS = {
    b"dleq test base": "6585077f388558774c89bd5fc455a84a15a85050131a7ca46823c7a4d8523ad6"
    "253f1c5059a6352114814a93b30a0d8e4a024555a1cb6ead23402147cdec64e2",
    b"test derived point": "868486d1afaa3392425256cb7cfce59aa9e54cbfc476d5c9173c325b7099cc01"
    "f0f5b7b36f86341a1e4e290c3a9f046c18b16fc6a3bb40320bc6f5b6c9f17ca0",
    b"": "09d180a56c7e2cf0d6c801234519394976721567c3d0e3d508efd335785262c6"
    "8d1404f1ee7ca41cf4c295b8b9f61930a832dd00eddde80f8e1fc95925c294e2",
}


@pytest.mark.parametrize(("data", "expected"), HASHED_POINTS.items())
def test_hash_to_point_known_answers(data: bytes, expected: str) -> None:
    assert hash_to_point(data).to_bytes().hex() == expected


@given(data=st.binary(max_size=80))
def test_hash_to_point_matches_its_arithmetic_definition(data: bytes) -> None:
    point = hash_to_point(data)
    assert point == _hash_to_point_by_arithmetic(data)
    assert not point.is_identity()
    assert point.to_bytes()[63] % 2 == 0  # the even root
