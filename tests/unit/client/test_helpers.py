"""The pure secretstore_* helpers against Parity's known answers, plus round-trip properties."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from secretstore.client import helpers
from secretstore.crypto.curve import Point, Scalar
from secretstore.crypto.document import decrypt_document, encrypt_document
from secretstore.crypto.ecies import ecies_encrypt
from secretstore.crypto.keys import KeyPair, recover_public, verify_signature
from secretstore.crypto.rng import SeededRng, random_scalar
from secretstore.errors import DecryptionError, InvalidEncoding, InvalidPoint, InvalidScalar
from secretstore.types import NodeId

from . import only, vectors

seeds = st.integers(min_value=0, max_value=2**64)


def account_of(secret_hex: str) -> KeyPair:
    return KeyPair.from_secret(Scalar.secret_from_bytes(bytes.fromhex(secret_hex)))


# --- Parity's vectors ---------------------------------------------------------------------


def test_sign_raw_hash_matches_parity_documentation_byte_for_byte() -> None:
    vector = only("sign_raw_hash")
    account = account_of(vector["secret"])
    signature = helpers.sign_raw_hash(account, bytes.fromhex(vector["hash"]))
    assert signature.hex() == vector["signature"]
    assert recover_public(signature, bytes.fromhex(vector["hash"])) == account.public


def test_sign_raw_hash_of_parity_rpc_test_verifies() -> None:
    # rpc_secretstore_sign_raw_hash: the signature of hash 0x…01 verifies with the account key.
    account = account_of(vectors("account_addresses")[1]["secret"])
    raw_hash = (1).to_bytes(32, "big")
    signature = helpers.sign_raw_hash(account, raw_hash)
    assert len(signature) == 65 and signature[64] in (0, 1)
    assert verify_signature(account.public, signature, raw_hash)


def test_servers_set_hash_matches_parity_documentation() -> None:
    vector = only("servers_set_hash")
    ids = [NodeId(bytes.fromhex(h)) for h in vector["node_ids"]]
    assert helpers.servers_set_hash(ids).hex() == vector["hash"]
    assert helpers.servers_set_hash(reversed(ids)).hex() == vector["hash"]
    assert helpers.servers_set_hash([*ids, ids[0]]).hex() == vector["hash"]


def test_protocol_known_answer_shadow_decryption_through_ecies_shadows() -> None:
    # PROTOCOL.md's vector gives the shadow already decrypted; wrap it for an account first.
    vector = only("shadow_decrypt")
    account = KeyPair.generate(SeededRng(1))
    shadows = [
        ecies_encrypt(account.public, bytes.fromhex(s), SeededRng(i))
        for i, s in enumerate(vector["shadows"])
    ]
    document = helpers.shadow_decrypt(
        account,
        Point.from_bytes(bytes.fromhex(vector["decrypted_secret"])),
        Point.from_bytes(bytes.fromhex(vector["common_point"])),
        shadows,
        bytes.fromhex(vector["encrypted_document"]),
    )
    assert document.hex() == vector["document"]


def test_parity_rpc_shadow_decrypt_vector() -> None:
    vector = only("rpc_shadow_decrypt")
    document = helpers.shadow_decrypt(
        account_of(vector["account_secret"]),
        Point.from_bytes(bytes.fromhex(vector["decrypted_secret"])),
        Point.from_bytes(bytes.fromhex(vector["common_point"])),
        [bytes.fromhex(s) for s in vector["decrypt_shadows"]],
        bytes.fromhex(vector["encrypted_document"]),
    )
    assert document == bytes.fromhex(vector["document"])


def test_parity_documented_decrypt_vector() -> None:
    vector = only("rpc_decrypt")
    document = helpers.decrypt(
        account_of(vector["account_secret"]),
        bytes.fromhex(vector["encrypted_key"]),
        bytes.fromhex(vector["encrypted_document"]),
    )
    assert document == bytes.fromhex(vector["document"])


@pytest.mark.parametrize("vector", vectors("rpc_encrypted_keys"), ids=["mocked-test", "docs"])
def test_parity_made_encrypted_keys_encrypt_and_decrypt(vector: dict[str, str]) -> None:
    # rpc_secretstore_encrypt_and_decrypt: encrypt 0xdeadbeef, then decrypt it back.
    account = account_of(vector["account_secret"])
    encrypted_key = bytes.fromhex(vector["encrypted_key"])
    encrypted = helpers.encrypt(account, encrypted_key, b"\xde\xad\xbe\xef", SeededRng(3))
    assert len(encrypted) == 4 + 16
    assert helpers.decrypt(account, encrypted_key, encrypted) == b"\xde\xad\xbe\xef"


def test_parity_document_round_trip_key() -> None:
    vector = only("document_round_trip")
    key = Point.from_bytes(bytes.fromhex(vector["document_key"]))
    account = KeyPair.generate(SeededRng(5))
    encrypted_key = ecies_encrypt(account.public, key.to_bytes(), SeededRng(6))
    document = bytes.fromhex(vector["document"])
    encrypted = helpers.encrypt(account, encrypted_key, document, SeededRng(7))
    assert encrypted[:-16] != document
    assert helpers.decrypt(account, encrypted_key, encrypted) == document
    assert decrypt_document(key, encrypted) == document  # the same key any client derives


# --- properties -----------------------------------------------------------------------------


@given(seed=seeds, data=st.binary(max_size=300))
def test_generate_document_key_encrypt_decrypt_round_trip(seed: int, data: bytes) -> None:
    rng = SeededRng(seed)
    account = KeyPair.generate(rng)
    server_secret = random_scalar(rng)
    generated = helpers.generate_document_key(account, Point.base_mul(server_secret), rng)
    key = helpers.unwrap_document_key(account, generated.encrypted_key)
    # What the key server will recover: M = E - x·C.
    assert generated.encrypted_point - generated.common_point * server_secret == key
    encrypted = helpers.encrypt(account, generated.encrypted_key, data, rng)
    assert helpers.decrypt(account, generated.encrypted_key, encrypted) == data


@given(seed=seeds, count=st.integers(min_value=1, max_value=5), data=st.binary(max_size=100))
def test_shadow_decrypt_recovers_any_split_key(seed: int, count: int, data: bytes) -> None:
    rng = SeededRng(seed)
    account = KeyPair.generate(rng)
    key = Point.base_mul(random_scalar(rng))
    common = Point.base_mul(random_scalar(rng))
    coefficients = [random_scalar(rng) for _ in range(count)]
    total = Scalar(sum(c.to_int() for c in coefficients))
    decrypted_secret = key - common * total
    shadows = [ecies_encrypt(account.public, c.to_bytes(), rng) for c in coefficients]
    encrypted = encrypt_document(key, data, rng)
    assert helpers.shadow_decrypt(account, decrypted_secret, common, shadows, encrypted) == data


@given(seed=seeds)
def test_another_account_cannot_open_the_key(seed: int) -> None:
    rng = SeededRng(seed)
    owner, other = KeyPair.generate(rng), KeyPair.generate(rng)
    encrypted_key = ecies_encrypt(owner.public, Point.base_mul(random_scalar(rng)).to_bytes(), rng)
    with pytest.raises(DecryptionError):
        helpers.decrypt(other, encrypted_key, bytes(20))


# --- malformed input raises the documented error and nothing else --------------------------


def test_short_encrypted_document_is_a_decryption_error() -> None:
    account = KeyPair.generate(SeededRng(8))
    key = Point.base_mul(random_scalar(SeededRng(9)))
    encrypted_key = ecies_encrypt(account.public, key.to_bytes(), SeededRng(10))
    with pytest.raises(DecryptionError):
        helpers.decrypt(account, encrypted_key, bytes(15))
    assert helpers.decrypt(account, encrypted_key, bytes(16)) == b""


def test_wrapped_plaintext_of_wrong_shape_is_rejected() -> None:
    account = KeyPair.generate(SeededRng(11))
    with pytest.raises(InvalidEncoding):
        helpers.unwrap_document_key(account, ecies_encrypt(account.public, bytes(63), SeededRng(1)))
    not_a_point = (5).to_bytes(32, "big") * 2
    with pytest.raises(InvalidPoint):
        helpers.unwrap_document_key(
            account, ecies_encrypt(account.public, not_a_point, SeededRng(2))
        )
    with pytest.raises(InvalidScalar):
        helpers.unwrap_shadow_coefficient(
            account, ecies_encrypt(account.public, bytes(32), SeededRng(3))
        )
    with pytest.raises(InvalidEncoding):
        helpers.unwrap_shadow_coefficient(
            account, ecies_encrypt(account.public, bytes(31), SeededRng(4))
        )


def test_no_shadows_and_tampered_shadows_are_decryption_errors() -> None:
    account = KeyPair.generate(SeededRng(12))
    point = Point.base_mul(random_scalar(SeededRng(13)))
    with pytest.raises(DecryptionError):
        helpers.shadow_decrypt(account, point, point, [], bytes(16))
    shadow = bytearray(ecies_encrypt(account.public, (7).to_bytes(32, "big"), SeededRng(14)))
    shadow[-1] ^= 1
    with pytest.raises(DecryptionError):
        helpers.shadow_decrypt(account, point, point, [bytes(shadow)], bytes(16))


def test_sign_raw_hash_and_servers_set_hash_check_lengths() -> None:
    account = KeyPair.generate(SeededRng(15))
    with pytest.raises(InvalidEncoding):
        helpers.sign_raw_hash(account, bytes(31))
    with pytest.raises(InvalidEncoding):
        helpers.servers_set_hash([NodeId(bytes(63))])
