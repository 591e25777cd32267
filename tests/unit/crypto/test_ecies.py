"""Parity's ECIES: known answers, an independent reference, round trips and every tampering."""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

import pytest
from Crypto.Cipher import AES
from eth_keys.backends.native.jacobian import fast_multiply
from hypothesis import given
from hypothesis import strategies as st

from secretstore.crypto.curve import ZERO, G, N, Point, Scalar
from secretstore.crypto.ecies import (
    DEFAULT_MAC,
    OVERHEAD,
    _x_of_product_via_multiply,
    aes_128_ctr,
    ecdh_shared_x,
    ecies_decrypt,
    ecies_encrypt,
)
from secretstore.crypto.rng import SeededRng, random_scalar
from secretstore.errors import DecryptionError, InvalidEncoding, InvalidPoint, InvalidScalar
from tests.unit.crypto import parity_vectors, vector_id

secrets = st.integers(min_value=1, max_value=N - 1).map(Scalar)
SECRET = Scalar(0xC0FFEE)
PUBLIC = Point.base_mul(SECRET)


def h(text: str) -> bytes:
    return bytes.fromhex(text)


# --- a reference written from the spec, on pure-Python curve arithmetic -----------------------


def ref_x(secret: int, public64: bytes) -> bytes:
    point = (int.from_bytes(public64[:32], "big"), int.from_bytes(public64[32:], "big"))
    return fast_multiply(point, secret)[0].to_bytes(32, "big")


def ref_keys(z: bytes) -> tuple[bytes, bytes]:
    key = hashlib.sha256(b"\x00\x00\x00\x01" + z).digest()
    return key[:16], hashlib.sha256(key[16:]).digest()


def ref_encrypt(public64: bytes, plain: bytes, r: int, iv: bytes, auth: bytes) -> bytes:
    gx = G.to_bytes()
    ephemeral = fast_multiply((int.from_bytes(gx[:32], "big"), int.from_bytes(gx[32:], "big")), r)
    ekey, mkey = ref_keys(ref_x(r, public64))
    cipher = AES.new(ekey, AES.MODE_CTR, nonce=b"", initial_value=iv).encrypt(plain)
    mac = hmac.new(mkey, iv + cipher + auth, hashlib.sha256).digest()
    r64 = ephemeral[0].to_bytes(32, "big") + ephemeral[1].to_bytes(32, "big")
    return b"\x04" + r64 + iv + cipher + mac


def ref_decrypt(secret: int, data: bytes, auth: bytes) -> bytes:
    ekey, mkey = ref_keys(ref_x(secret, data[1:65]))
    iv, cipher, mac = data[65:81], data[81:-32], data[-32:]
    assert hmac.new(mkey, iv + cipher + auth, hashlib.sha256).digest() == mac
    return AES.new(ekey, AES.MODE_CTR, nonce=b"", initial_value=iv).decrypt(cipher)


# --- known answers ----------------------------------------------------------------------------


@pytest.mark.parametrize("entry", parity_vectors("ecdh"), ids=vector_id)
def test_ecdh_vector(entry: dict[str, Any]) -> None:
    secret = Scalar.secret_from_bytes(h(entry["secret"]))
    public = Point.from_bytes(h(entry["public"]))
    assert ecdh_shared_x(secret, public) == h(entry["shared_x"])
    assert _x_of_product_via_multiply(secret.to_bytes(), public) == h(entry["shared_x"])


@pytest.mark.parametrize("entry", parity_vectors("aes_128_ctr"), ids=vector_id)
def test_aes_128_ctr_vector(entry: dict[str, Any]) -> None:
    key, iv = h(entry["key"]), h(entry["iv"])
    assert aes_128_ctr(key, iv, h(entry["plain"])) == h(entry["cipher"])
    assert aes_128_ctr(key, iv, h(entry["cipher"])) == h(entry["plain"])


@pytest.mark.parametrize(
    ("key", "iv"),
    [(bytes(15), bytes(16)), (bytes(32), bytes(16)), (bytes(16), bytes(12)), (bytes(16), b"")],
)
def test_aes_128_ctr_needs_16_byte_key_and_iv(key: bytes, iv: bytes) -> None:
    with pytest.raises(InvalidEncoding):
        aes_128_ctr(key, iv, b"data")


def test_aes_ctr_counter_is_the_whole_iv_and_wraps() -> None:
    key = bytes(range(16))
    iv = b"\xff" * 15 + b"\xfe"  # the counter wraps from ff..ff to 00..00 on the third block
    ecb = AES.new(key, AES.MODE_ECB)
    start = int.from_bytes(iv, "big")
    stream = b"".join(ecb.encrypt(((start + i) % 2**128).to_bytes(16, "big")) for i in range(4))
    assert aes_128_ctr(key, iv, bytes(64)) == stream


@pytest.mark.parametrize("entry", parity_vectors("rpc_encrypted_keys"), ids=vector_id)
def test_parity_made_ciphertexts_decrypt(entry: dict[str, Any]) -> None:
    secret = Scalar.secret_from_bytes(h(entry["account_secret"]))
    plain = ecies_decrypt(secret, h(entry["encrypted_key"]))
    assert len(plain) == 64
    Point.from_bytes(plain)  # a document key is a point
    assert ref_decrypt(secret.to_int(), h(entry["encrypted_key"]), DEFAULT_MAC) == plain
    with pytest.raises(DecryptionError):
        ecies_decrypt(secret, h(entry["encrypted_key"]), auth=b"")
    with pytest.raises(DecryptionError):
        ecies_decrypt(secret + Scalar(1), h(entry["encrypted_key"]))


# --- agreement with the reference -------------------------------------------------------------


class _Recorder:
    """An Rng that records what it hands out."""

    def __init__(self, seed: int) -> None:
        self._inner = SeededRng(seed)
        self.drawn: list[bytes] = []

    def random_bytes(self, n: int) -> bytes:
        out = self._inner.random_bytes(n)
        self.drawn.append(out)
        return out


@given(st.binary(max_size=200), st.binary(max_size=8), st.integers(min_value=0, max_value=2**31))
def test_encrypt_matches_the_reference_byte_for_byte(plain: bytes, auth: bytes, seed: int) -> None:
    rng = _Recorder(seed)
    cipher = ecies_encrypt(PUBLIC, plain, rng, auth)
    scalar_draws = [d for d in rng.drawn if len(d) == 32]
    r = int.from_bytes(scalar_draws[-1], "big")
    iv = rng.drawn[-1]
    assert cipher == ref_encrypt(PUBLIC.to_bytes(), plain, r, iv, auth)
    assert ref_decrypt(SECRET.to_int(), cipher, auth) == plain


@given(st.binary(max_size=200), st.binary(max_size=8), st.binary(min_size=16, max_size=16))
def test_decrypt_accepts_what_the_reference_makes(plain: bytes, auth: bytes, iv: bytes) -> None:
    cipher = ref_encrypt(PUBLIC.to_bytes(), plain, 0x1234567, iv, auth)
    assert ecies_decrypt(SECRET, cipher, auth) == plain


# --- properties -------------------------------------------------------------------------------


@given(secrets, st.binary(max_size=300), st.binary(max_size=16), st.integers(0, 2**32))
def test_round_trip(secret: Scalar, plain: bytes, auth: bytes, seed: int) -> None:
    cipher = ecies_encrypt(Point.base_mul(secret), plain, SeededRng(seed), auth)
    assert len(cipher) == OVERHEAD + len(plain) == 113 + len(plain)
    assert cipher[0] == 4
    assert ecies_decrypt(secret, cipher, auth) == plain


def test_default_auth_is_two_zero_bytes() -> None:
    assert DEFAULT_MAC == b"\x00\x00"
    cipher = ecies_encrypt(PUBLIC, b"data", SeededRng(1))
    assert ecies_decrypt(SECRET, cipher, b"\x00\x00") == b"data"
    for other in (b"", b"\x00", b"\x00\x00\x00", b"\x00\x01"):
        with pytest.raises(DecryptionError):
            ecies_decrypt(SECRET, cipher, other)


def test_empty_plaintext() -> None:
    cipher = ecies_encrypt(PUBLIC, b"", SeededRng(2))
    assert len(cipher) == 113
    assert ecies_decrypt(SECRET, cipher) == b""


def test_encryption_is_randomised_by_the_rng_only() -> None:
    assert ecies_encrypt(PUBLIC, b"m", SeededRng(3)) == ecies_encrypt(PUBLIC, b"m", SeededRng(3))
    assert ecies_encrypt(PUBLIC, b"m", SeededRng(3)) != ecies_encrypt(PUBLIC, b"m", SeededRng(4))


@given(st.binary(max_size=64), st.data())
def test_any_bit_flip_is_detected(plain: bytes, data: st.DataObject) -> None:
    cipher = ecies_encrypt(PUBLIC, plain, SeededRng(len(plain)))
    bit = data.draw(st.integers(min_value=0, max_value=len(cipher) * 8 - 1))
    tampered = bytearray(cipher)
    tampered[bit // 8] ^= 1 << (bit % 8)
    with pytest.raises(DecryptionError):
        ecies_decrypt(SECRET, bytes(tampered))


@pytest.mark.parametrize("version", [2, 3])
def test_versions_two_and_three_are_accepted_as_parity_does(version: int) -> None:
    cipher = ecies_encrypt(PUBLIC, b"old", SeededRng(5))
    assert ecies_decrypt(SECRET, bytes([version]) + cipher[1:]) == b"old"


@pytest.mark.parametrize("version", [0, 1, 5, 6, 0x14, 0xFF])
def test_other_versions_are_rejected(version: int) -> None:
    cipher = ecies_encrypt(PUBLIC, b"new", SeededRng(6))
    with pytest.raises(DecryptionError):
        ecies_decrypt(SECRET, bytes([version]) + cipher[1:])


@pytest.mark.parametrize("length", [0, 1, 65, 81, 112])
def test_short_input_is_rejected(length: int) -> None:
    cipher = ecies_encrypt(PUBLIC, b"", SeededRng(7))
    with pytest.raises(DecryptionError):
        ecies_decrypt(SECRET, cipher[:length])


@pytest.mark.parametrize(
    "r64",
    [bytes(64), b"\xff" * 64, G.to_bytes()[:32] + bytes(32), G.to_bytes()[:63] + b"\x00"],
)
def test_ephemeral_key_not_on_the_curve_is_a_decryption_error(r64: bytes) -> None:
    cipher = ecies_encrypt(PUBLIC, b"payload", SeededRng(8))
    with pytest.raises(DecryptionError):
        ecies_decrypt(SECRET, cipher[:1] + r64 + cipher[65:])


def test_wrong_recipient_cannot_decrypt() -> None:
    cipher = ecies_encrypt(PUBLIC, b"for someone else", SeededRng(9))
    with pytest.raises(DecryptionError):
        ecies_decrypt(Scalar(12345), cipher)


@given(st.binary(max_size=250))
def test_arbitrary_bytes_raise_only_decryption_error(data: bytes) -> None:
    with pytest.raises(DecryptionError):
        ecies_decrypt(SECRET, data)


def test_bad_keys() -> None:
    cipher = ecies_encrypt(PUBLIC, b"x", SeededRng(10))
    with pytest.raises(InvalidScalar):
        ecies_decrypt(ZERO, cipher)
    with pytest.raises(InvalidPoint):
        ecies_encrypt(Point.identity(), b"x", SeededRng(10))


# --- ECDH -------------------------------------------------------------------------------------


@given(secrets, secrets)
def test_ecdh_is_symmetric_and_is_the_x_coordinate(a: Scalar, b: Scalar) -> None:
    shared = ecdh_shared_x(a, Point.base_mul(b))
    assert shared == ecdh_shared_x(b, Point.base_mul(a))
    assert shared == Point.base_mul(a * b).to_bytes()[:32]
    assert shared == _x_of_product_via_multiply(a.to_bytes(), Point.base_mul(b))


def test_ecdh_rejects_zero_and_identity() -> None:
    with pytest.raises(InvalidScalar):
        ecdh_shared_x(ZERO, G)
    with pytest.raises(InvalidPoint):
        ecdh_shared_x(Scalar(1), Point.identity())


def test_the_constant_time_ecdh_is_in_use_and_agrees_with_the_portable_one() -> None:
    """libsecp256k1's constant-time ECDH is built (a failure would fall back silently to the
    variable-time multiplication) and gives the same x as the portable path."""
    from secretstore.crypto import ecies

    built = ecies._make_constant_time_ecdh()
    assert built is not None
    assert ecies._shared_x is not ecies._x_of_product_via_multiply
    for seed in range(8):
        secret = random_scalar(SeededRng(f"ecdh-{seed}".encode()))
        public = Point.base_mul(random_scalar(SeededRng(f"ecdh-public-{seed}".encode())))
        expected = ecies._x_of_product_via_multiply(secret.to_bytes(), public)
        assert built(secret.to_bytes(), public) == expected
        assert ecies.ecdh_shared_x(secret, public) == expected
