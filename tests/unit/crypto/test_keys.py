"""Key pairs, addresses, recoverable signatures, requester recovery and the servers-set hash."""

from __future__ import annotations

from typing import Any

import pytest
from eth_keys.backends.native.main import NativeECCBackend
from eth_keys.main import KeyAPI
from hypothesis import given
from hypothesis import strategies as st

from secretstore.crypto.curve import ZERO, G, N, Point, Scalar
from secretstore.crypto.hashing import keccak256
from secretstore.crypto.keys import (
    KeyPair,
    address_of,
    recover_public,
    recover_requester,
    servers_set_hash,
    sign_recoverable,
    verify_signature,
)
from secretstore.crypto.rng import SeededRng
from secretstore.errors import CryptoError, InvalidEncoding, InvalidScalar, InvalidSignature
from secretstore.types import NodeId
from tests.unit.crypto import parity_vectors, vector_id

# A pure-Python secp256k1 (no libsecp256k1) to cross-check signatures and addresses.
NATIVE = KeyAPI(backend=NativeECCBackend)

secrets = st.integers(min_value=1, max_value=N - 1).map(Scalar)
hashes = st.binary(min_size=32, max_size=32)


def h(text: str) -> bytes:
    return bytes.fromhex(text)


# --- known answers ----------------------------------------------------------------------------


@pytest.mark.parametrize("entry", parity_vectors("keypairs"), ids=vector_id)
def test_keypair_vectors(entry: dict[str, Any]) -> None:
    pair = KeyPair.from_secret(Scalar.secret_from_bytes(h(entry["secret"])))
    assert pair.public.to_bytes() == h(entry["public"])
    assert pair.node_id == h(entry["public"])
    assert pair.address == h(entry["address"])
    assert address_of(pair.public) == h(entry["address"])


@pytest.mark.parametrize("entry", parity_vectors("account_addresses"), ids=vector_id)
def test_account_address_vectors(entry: dict[str, Any]) -> None:
    pair = KeyPair.from_secret(Scalar.secret_from_bytes(h(entry["secret"])))
    assert pair.address == h(entry["address"])


@pytest.mark.parametrize("entry", parity_vectors("sign_raw_hash"), ids=vector_id)
def test_sign_raw_hash_vectors(entry: dict[str, Any]) -> None:
    secret = Scalar.secret_from_bytes(h(entry["secret"]))
    signature = sign_recoverable(secret, h(entry["hash"]))
    assert signature == h(entry["signature"])
    public = KeyPair.from_secret(secret).public
    assert recover_public(signature, h(entry["hash"])) == public
    assert verify_signature(public, signature, h(entry["hash"]))


@pytest.mark.parametrize("entry", parity_vectors("requester_signatures"), ids=vector_id)
def test_requester_signature_vectors(entry: dict[str, Any]) -> None:
    signature = h(entry["signature"])
    requester = recover_requester(signature, h(entry["server_key_id"]))
    assert address_of(requester) == h(entry["address"])
    electrum = signature[:64] + bytes([signature[64] + 27])
    assert recover_requester(electrum, h(entry["server_key_id"])) == requester
    assert verify_signature(requester, signature, h(entry["server_key_id"]))


@pytest.mark.parametrize("entry", parity_vectors("servers_set_hash"), ids=vector_id)
def test_servers_set_hash_vectors(entry: dict[str, Any]) -> None:
    ids = [NodeId(h(x)) for x in entry["node_ids"]]
    assert servers_set_hash(ids) == h(entry["hash"])
    assert servers_set_hash(reversed(ids)) == h(entry["hash"])
    assert servers_set_hash([*ids, ids[0]]) == h(entry["hash"])
    assert servers_set_hash(Point.from_bytes(i) for i in ids) == h(entry["hash"])


@pytest.mark.parametrize("entry", parity_vectors("admin_new_set_signature"), ids=vector_id)
def test_admin_new_set_signature_vectors(entry: dict[str, Any]) -> None:
    set_hash = servers_set_hash(NodeId(h(x)) for x in entry["node_ids"])
    admin = Point.from_bytes(h(entry["admin_public"]))
    assert recover_public(h(entry["signature"]), set_hash) == admin
    assert verify_signature(admin, h(entry["signature"]), set_hash)


# --- key pairs --------------------------------------------------------------------------------


def test_keypair_rejects_zero_and_hides_its_secret() -> None:
    with pytest.raises(InvalidScalar):
        KeyPair.from_secret(ZERO)
    pair = KeyPair.from_secret(Scalar(0x1234567890ABCDEF))
    assert "1234567890abcdef" not in repr(pair).lower()
    assert str(0x1234567890ABCDEF) not in repr(pair)


def test_generate_draws_from_the_rng() -> None:
    a, b = KeyPair.generate(SeededRng(5)), KeyPair.generate(SeededRng(5))
    assert a == b
    assert KeyPair.generate(SeededRng(6)) != a
    assert a.public == Point.base_mul(a.secret)


@given(secrets)
def test_address_matches_an_independent_implementation(secret: Scalar) -> None:
    pair = KeyPair.from_secret(secret)
    native = NATIVE.PrivateKey(secret.to_bytes())
    assert pair.node_id == native.public_key.to_bytes()
    assert pair.address == native.public_key.to_canonical_address()
    assert pair.address == keccak256(pair.node_id)[12:]


# --- signatures -------------------------------------------------------------------------------


@given(secrets, hashes)
def test_sign_recover_round_trip(secret: Scalar, message_hash: bytes) -> None:
    public = Point.base_mul(secret)
    signature = sign_recoverable(secret, message_hash)
    assert len(signature) == 65
    assert signature[64] in (0, 1)
    assert int.from_bytes(signature[32:64], "big") <= N // 2  # low s
    assert recover_public(signature, message_hash) == public
    electrum = signature[:64] + bytes([signature[64] + 27])
    assert recover_public(electrum, message_hash) == public
    assert verify_signature(public, signature, message_hash)
    assert verify_signature(public, electrum, message_hash)
    assert sign_recoverable(secret, message_hash) == signature  # deterministic (RFC 6979)


@given(secrets, hashes)
def test_signature_matches_an_independent_implementation(secret: Scalar, msg: bytes) -> None:
    native = NATIVE.PrivateKey(secret.to_bytes()).sign_msg_hash(msg)
    assert sign_recoverable(secret, msg) == native.to_bytes()


def test_zero_hash_can_be_signed_and_recovered() -> None:
    secret = Scalar(12345)
    signature = sign_recoverable(secret, bytes(32))
    assert recover_public(signature, bytes(32)) == Point.base_mul(secret)


@given(secrets, secrets, hashes, hashes)
def test_verify_rejects_other_keys_and_messages(
    secret: Scalar, other: Scalar, message_hash: bytes, other_hash: bytes
) -> None:
    signature = sign_recoverable(secret, message_hash)
    # With a hash that is zero modulo n, ECDSA cannot tell Q from -Q (u1 = 0, and R = u2·Q
    # and -u2·Q share their x): that pair is the one exception, tested on its own below.
    mirrored = int.from_bytes(message_hash, "big") % N == 0 and other == -secret
    if other != secret and not mirrored:
        assert not verify_signature(Point.base_mul(other), signature, message_hash)
        assert recover_public(signature, message_hash) != Point.base_mul(other)
    if other_hash != message_hash:
        assert not verify_signature(Point.base_mul(secret), signature, other_hash)


def test_a_zero_hash_verifies_for_the_negated_key_as_ecdsa_does() -> None:
    secret = Scalar(12345)
    signature = sign_recoverable(secret, bytes(32))
    assert verify_signature(Point.base_mul(secret), signature, bytes(32))
    assert verify_signature(Point.base_mul(-secret), signature, bytes(32))


def test_verify_requires_low_s_but_recovery_does_not() -> None:
    secret, message_hash = Scalar(999), keccak256(b"message")
    signature = sign_recoverable(secret, message_hash)
    s = int.from_bytes(signature[32:64], "big")
    high = signature[:32] + (N - s).to_bytes(32, "big") + bytes([signature[64] ^ 1])
    public = Point.base_mul(secret)
    assert not verify_signature(public, high, message_hash)
    assert recover_public(high, message_hash) == public


def test_sign_rejects_bad_input() -> None:
    with pytest.raises(InvalidEncoding):
        sign_recoverable(Scalar(1), bytes(31))
    with pytest.raises(InvalidEncoding):
        sign_recoverable(Scalar(1), bytes(33))
    with pytest.raises(InvalidScalar):
        sign_recoverable(ZERO, bytes(32))


GOOD = sign_recoverable(Scalar(42), keccak256(b"x"))


def _with(r: int | None = None, s: int | None = None, v: int | None = None) -> bytes:
    rb = GOOD[:32] if r is None else r.to_bytes(32, "big")
    sb = GOOD[32:64] if s is None else s.to_bytes(32, "big")
    return rb + sb + bytes([GOOD[64] if v is None else v])


@pytest.mark.parametrize("length", [0, 64, 66, 130])
def test_recover_rejects_wrong_signature_length(length: int) -> None:
    with pytest.raises(InvalidEncoding):
        recover_public(b"\x01" * length, bytes(32))
    with pytest.raises(InvalidEncoding):
        verify_signature(G, b"\x01" * length, bytes(32))


@pytest.mark.parametrize("length", [0, 31, 33, 64])
def test_recover_rejects_wrong_hash_length(length: int) -> None:
    with pytest.raises(InvalidEncoding):
        recover_public(GOOD, bytes(length))
    with pytest.raises(InvalidEncoding):
        recover_requester(GOOD, bytes(length))
    with pytest.raises(InvalidEncoding):
        verify_signature(G, GOOD, bytes(length))


@pytest.mark.parametrize(
    "signature",
    [
        _with(v=2),
        _with(v=3),
        _with(v=26),
        _with(v=29),
        _with(v=255),
        _with(r=0),
        _with(s=0),
        _with(r=N),
        _with(s=N),
        _with(r=2**256 - 1),
    ],
    ids=["v2", "v3", "v26", "v29", "v255", "r0", "s0", "rN", "sN", "rmax"],
)
def test_malformed_signatures(signature: bytes) -> None:
    with pytest.raises(InvalidSignature):
        recover_public(signature, keccak256(b"x"))
    assert not verify_signature(Point.base_mul(Scalar(42)), signature, keccak256(b"x"))


@given(st.binary(min_size=65, max_size=65), hashes)
def test_recover_of_arbitrary_bytes_gives_a_point_or_invalid_signature(
    signature: bytes, message_hash: bytes
) -> None:
    try:
        public = recover_public(signature, message_hash)
    except InvalidSignature:
        return
    assert not public.is_identity()
    assert signature[64] in (0, 1, 27, 28)


@given(st.binary(max_size=70), st.binary(max_size=34))
def test_recover_raises_only_crypto_errors(signature: bytes, message_hash: bytes) -> None:
    try:
        recover_requester(signature, message_hash)
    except CryptoError as exc:
        assert isinstance(exc, InvalidEncoding | InvalidSignature)


def test_recover_requester_is_recovery_over_the_key_id_itself() -> None:
    secret, key_id = Scalar(7), keccak256(b"document")
    signature = sign_recoverable(secret, key_id)
    assert recover_requester(signature, key_id) == Point.base_mul(secret)
    # no Ethereum message prefix: a prefixed-hash signature recovers someone else
    prefixed = keccak256(b"\x19Ethereum Signed Message:\n32" + key_id)
    assert recover_requester(sign_recoverable(secret, prefixed), key_id) != Point.base_mul(secret)


# --- servers set hash ---------------------------------------------------------------------


@given(st.sets(st.binary(min_size=64, max_size=64), max_size=5), st.randoms())
def test_servers_set_hash_is_order_free_and_sorted(ids: set[bytes], order: Any) -> None:
    shuffled = list(ids)
    order.shuffle(shuffled)
    expected = keccak256(b"".join(sorted(ids)))
    assert servers_set_hash(NodeId(i) for i in shuffled) == expected
    assert servers_set_hash(NodeId(i) for i in shuffled + shuffled) == expected


def test_servers_set_hash_of_nothing_and_bad_ids() -> None:
    assert servers_set_hash([]) == keccak256(b"")
    with pytest.raises(InvalidEncoding):
        servers_set_hash([NodeId(bytes(63))])
    with pytest.raises(InvalidEncoding):
        servers_set_hash([NodeId(bytes(65))])
