"""Document encryption (one-shot and streamed), document keys and client shadow decryption."""

from __future__ import annotations

from itertools import pairwise
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from secretstore.crypto.curve import ZERO, G, N, Point, Scalar
from secretstore.crypto.document import (
    DocumentDecryptor,
    DocumentEncryptor,
    decrypt_document,
    decrypt_document_key,
    decrypt_with_shadow_coefficients,
    document_encryption_key,
    encrypt_document,
    encrypt_secret,
    generate_document_key,
)
from secretstore.crypto.ecies import DEFAULT_MAC, aes_128_ctr, ecies_decrypt, ecies_encrypt
from secretstore.crypto.rng import SeededRng, random_scalar
from secretstore.errors import DecryptionError, InvalidEncoding, InvalidPoint
from tests.unit.crypto import parity_vectors, vector_id

secrets = st.integers(min_value=1, max_value=N - 1).map(Scalar)
documents = st.binary(max_size=2000)
KEY = Point.base_mul(Scalar(0xD0C))


def h(text: str) -> bytes:
    return bytes.fromhex(text)


def chunked(data: bytes, cuts: list[int]) -> list[bytes]:
    """`data` split at the given offsets (clamped and sorted)."""
    points = sorted({min(c, len(data)) for c in cuts} | {0, len(data)})
    return [data[a:b] for a, b in pairwise(points)]


# --- known answers ----------------------------------------------------------------------------


@pytest.mark.parametrize("entry", parity_vectors("document_round_trip"), ids=vector_id)
def test_document_round_trip_vector(entry: dict[str, Any]) -> None:
    key = Point.from_bytes(h(entry["document_key"]))
    document = h(entry["document"])
    encrypted = encrypt_document(key, document, SeededRng(1))
    assert encrypted != document
    assert len(encrypted) == len(document) + 16
    assert decrypt_document(key, encrypted) == document
    body, iv = encrypted[:-16], encrypted[-16:]
    assert aes_128_ctr(h(entry["document_key"])[:16], iv, body) == document


@pytest.mark.parametrize("entry", parity_vectors("shadow_decrypt"), ids=vector_id)
def test_shadow_decrypt_vector(entry: dict[str, Any]) -> None:
    key = decrypt_with_shadow_coefficients(
        Point.from_bytes(h(entry["decrypted_secret"])),
        Point.from_bytes(h(entry["common_point"])),
        [Scalar.secret_from_bytes(h(s)) for s in entry["shadows"]],
    )
    assert decrypt_document(key, h(entry["encrypted_document"])) == h(entry["document"])


@pytest.mark.parametrize("entry", parity_vectors("rpc_shadow_decrypt"), ids=vector_id)
def test_rpc_shadow_decrypt_vector(entry: dict[str, Any]) -> None:
    account = Scalar.secret_from_bytes(h(entry["account_secret"]))
    shadows = [
        Scalar.secret_from_bytes(ecies_decrypt(account, h(c), DEFAULT_MAC))
        for c in entry["decrypt_shadows"]
    ]
    key = decrypt_with_shadow_coefficients(
        Point.from_bytes(h(entry["decrypted_secret"])),
        Point.from_bytes(h(entry["common_point"])),
        shadows,
    )
    assert decrypt_document(key, h(entry["encrypted_document"])) == h(entry["document"])


@pytest.mark.parametrize("entry", parity_vectors("rpc_decrypt"), ids=vector_id)
def test_rpc_decrypt_vector(entry: dict[str, Any]) -> None:
    account = Scalar.secret_from_bytes(h(entry["account_secret"]))
    key = decrypt_document_key(account, h(entry["encrypted_key"]))
    assert decrypt_document(key, h(entry["encrypted_document"])) == h(entry["document"])
    iv = h(entry["encrypted_document"])[-16:]
    decryptor = DocumentDecryptor(key, iv)
    body = h(entry["encrypted_document"])[:-16]
    assert decryptor.update(body[:1]) + decryptor.update(body[1:]) == h(entry["document"])


@pytest.mark.parametrize("entry", parity_vectors("rpc_encrypted_keys"), ids=vector_id)
def test_rpc_encrypted_key_round_trip(entry: dict[str, Any]) -> None:
    account = Scalar.secret_from_bytes(h(entry["account_secret"]))
    key = decrypt_document_key(account, h(entry["encrypted_key"]))
    encrypted = encrypt_document(key, b"\xde\xad\xbe\xef", SeededRng(2))
    assert decrypt_document(key, encrypted) == b"\xde\xad\xbe\xef"


# --- document encryption ----------------------------------------------------------------------


def test_document_key_is_the_top_of_x() -> None:
    assert document_encryption_key(G) == G.to_bytes()[:16]
    with pytest.raises(InvalidPoint):
        document_encryption_key(Point.identity())


@given(documents, st.integers(0, 2**32))
def test_document_round_trip(document: bytes, seed: int) -> None:
    encrypted = encrypt_document(KEY, document, SeededRng(seed))
    assert len(encrypted) == len(document) + 16
    assert encrypted[-16:] == SeededRng(seed).random_bytes(16)  # the iv, appended
    assert decrypt_document(KEY, encrypted) == document


def test_empty_document_and_short_input() -> None:
    encrypted = encrypt_document(KEY, b"", SeededRng(3))
    assert len(encrypted) == 16
    assert decrypt_document(KEY, encrypted) == b""
    for length in range(16):
        with pytest.raises(DecryptionError):
            decrypt_document(KEY, bytes(length))


def test_a_wrong_key_gives_other_bytes_of_the_same_length() -> None:
    encrypted = encrypt_document(KEY, b"secret text", SeededRng(4))
    other = decrypt_document(G, encrypted)
    assert len(other) == len(b"secret text")
    assert other != b"secret text"


@given(documents, st.lists(st.integers(0, 2000), max_size=6), st.integers(0, 2**32))
def test_streamed_encryption_equals_one_shot(document: bytes, cuts: list[int], seed: int) -> None:
    encryptor = DocumentEncryptor(KEY, SeededRng(seed))
    streamed = b"".join(encryptor.update(c) for c in chunked(document, cuts)) + encryptor.finish()
    assert streamed == encrypt_document(KEY, document, SeededRng(seed))


@given(documents, st.lists(st.integers(0, 2000), max_size=6), st.integers(0, 2**32))
def test_streamed_decryption_equals_one_shot(document: bytes, cuts: list[int], seed: int) -> None:
    encrypted = encrypt_document(KEY, document, SeededRng(seed))
    decryptor = DocumentDecryptor(KEY, encrypted[-16:])
    body = encrypted[:-16]
    assert b"".join(decryptor.update(c) for c in chunked(body, cuts)) == document


@pytest.mark.parametrize("length", [0, 15, 17, 32])
def test_decryptor_needs_a_16_byte_iv(length: int) -> None:
    with pytest.raises(InvalidEncoding):
        DocumentDecryptor(KEY, bytes(length))


# --- document keys ------------------------------------------------------------------------


@given(secrets, secrets, st.integers(0, 2**32))
def test_encrypt_secret_decrypts_with_the_server_key(m: Scalar, y: Scalar, seed: int) -> None:
    document_key, server_public = Point.base_mul(m), Point.base_mul(y)
    encrypted = encrypt_secret(document_key, server_public, SeededRng(seed))
    # E - y·C = M + k·Y - y·k·G = M
    assert encrypted.encrypted_point - encrypted.common_point * y == document_key
    k = random_scalar(SeededRng(seed))
    assert encrypted.common_point == Point.base_mul(k)
    assert encrypted.encrypted_point == document_key + server_public * k


def test_encrypt_secret_rejects_the_identity() -> None:
    with pytest.raises(InvalidPoint):
        encrypt_secret(Point.identity(), G, SeededRng(1))
    with pytest.raises(InvalidPoint):
        encrypt_secret(G, Point.identity(), SeededRng(1))


def test_encrypt_secret_never_returns_the_identity() -> None:
    # With M = -k·Y for the first k the rng gives, E would be the identity: k is drawn again.
    y = Point.base_mul(Scalar(3))
    first_k = random_scalar(SeededRng(9))
    encrypted = encrypt_secret(-(y * first_k), y, SeededRng(9))
    assert not encrypted.encrypted_point.is_identity()
    assert encrypted.common_point != Point.base_mul(first_k)
    assert encrypted.encrypted_point - encrypted.common_point * Scalar(3) == -(y * first_k)


@given(secrets, secrets, st.integers(0, 2**32))
def test_generate_document_key(account: Scalar, server: Scalar, seed: int) -> None:
    m, generated = generate_document_key(
        Point.base_mul(account), Point.base_mul(server), SeededRng(seed)
    )
    assert decrypt_document_key(account, generated.encrypted_key) == m
    assert len(generated.encrypted_key) == 113 + 64
    assert generated.encrypted_point - generated.common_point * server == m
    with pytest.raises(DecryptionError):
        ecies_decrypt(account, generated.encrypted_key, auth=b"")  # it uses DEFAULT_MAC


def test_generate_document_key_depends_only_on_the_rng() -> None:
    args = (Point.base_mul(Scalar(5)), Point.base_mul(Scalar(6)))
    assert generate_document_key(*args, SeededRng(1)) == generate_document_key(*args, SeededRng(1))
    assert generate_document_key(*args, SeededRng(1)) != generate_document_key(*args, SeededRng(2))


@pytest.mark.parametrize("plain", [b"", bytes(32), b"\x04" + G.to_bytes(), G.to_bytes() + b"\x00"])
def test_decrypt_document_key_needs_64_bytes(plain: bytes) -> None:
    account = Scalar(77)
    encrypted = ecies_encrypt(Point.base_mul(account), plain, SeededRng(1))
    with pytest.raises(DecryptionError):
        decrypt_document_key(account, encrypted)


def test_decrypt_document_key_needs_a_point() -> None:
    account = Scalar(77)
    not_a_point = G.to_bytes()[:32] + bytes(32)
    with pytest.raises(InvalidPoint):
        decrypt_document_key(
            account, ecies_encrypt(Point.base_mul(account), not_a_point, SeededRng(1))
        )
    with pytest.raises(DecryptionError):
        decrypt_document_key(account, b"\x04" + bytes(200))


# --- shadow decryption (client side) ------------------------------------------------------


@given(secrets, secrets, st.lists(secrets, min_size=1, max_size=5))
def test_shadow_coefficients_recover_the_key(m: Scalar, c: Scalar, shadows: list[Scalar]) -> None:
    document_key, common = Point.base_mul(m), Point.base_mul(c)
    total = sum((s.to_int() for s in shadows), 0) % N
    if total == 0 or (m.to_int() - c.to_int() * total) % N == 0:
        return  # D would be the identity (no encoding): not a possible server answer
    decrypted = document_key - common * Scalar(total)
    assert decrypt_with_shadow_coefficients(decrypted, common, shadows) == document_key


def test_shadow_decryption_faults() -> None:
    d, c = Point.base_mul(Scalar(10)), Point.base_mul(Scalar(2))
    with pytest.raises(DecryptionError):
        decrypt_with_shadow_coefficients(d, c, [])
    with pytest.raises(DecryptionError):
        decrypt_with_shadow_coefficients(d, c, [Scalar(1), Scalar(N - 1)])  # sums to zero
    with pytest.raises(DecryptionError):
        decrypt_with_shadow_coefficients(d, c, [ZERO])
    with pytest.raises(DecryptionError):
        decrypt_with_shadow_coefficients(d, c, [Scalar(N - 5)])  # D + (-5)·C = identity
    assert decrypt_with_shadow_coefficients(d, c, [Scalar(1), Scalar(2)]) == Point.base_mul(
        Scalar(16)
    )
