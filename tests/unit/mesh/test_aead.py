"""The mesh AEAD: RFC 8439's vector, the same bytes as pycryptodome's, every forgery fails."""

from __future__ import annotations

import pytest
from Crypto.Cipher import ChaCha20_Poly1305
from hypothesis import given
from hypothesis import strategies as st

from secretstore.errors import DecryptionError, InvalidEncoding
from secretstore.mesh.aead import TAG_SIZE, open_sealed, seal

# RFC 8439, section 2.8.2.
RFC_KEY = bytes(range(0x80, 0xA0))
RFC_NONCE = bytes.fromhex("070000004041424344454647")
RFC_AAD = bytes.fromhex("50515253c0c1c2c3c4c5c6c7")
RFC_PLAINTEXT = (
    b"Ladies and Gentlemen of the class of '99: If I could offer you only one tip for "
    b"the future, sunscreen would be it."
)
RFC_CIPHERTEXT = bytes.fromhex(
    "d31a8d34648e60db7b86afbc53ef7ec2a4aded51296e08fea9e2b5a736ee62d6"
    "3dbea45e8ca9671282fafb69da92728b1a71de0a9e060b2905d6a5b67ecd3b36"
    "92ddbd7f2d778b8c9803aee328091b58fab324e4fad675945585808b4831d7bc"
    "3ff4def08e4b7a9de576d26586cec64b6116"
)
RFC_TAG = bytes.fromhex("1ae10b594f09e26a7e902ecbd0600691")

keys = st.binary(min_size=32, max_size=32)
nonces = st.binary(min_size=12, max_size=12)
texts = st.binary(max_size=300)


def test_rfc_8439_vector() -> None:
    sealed = seal(RFC_KEY, RFC_NONCE, RFC_AAD, RFC_PLAINTEXT)
    assert sealed == RFC_CIPHERTEXT + RFC_TAG
    assert open_sealed(RFC_KEY, RFC_NONCE, RFC_AAD, sealed) == RFC_PLAINTEXT


@given(key=keys, nonce=nonces, aad=texts, plaintext=texts)
def test_same_bytes_as_pycryptodome_both_ways(
    key: bytes, nonce: bytes, aad: bytes, plaintext: bytes
) -> None:
    reference = ChaCha20_Poly1305.new(key=key, nonce=nonce)
    reference.update(aad)
    ciphertext, tag = reference.encrypt_and_digest(plaintext)
    sealed = seal(key, nonce, aad, plaintext)
    assert sealed == ciphertext + tag
    assert len(sealed) == len(plaintext) + TAG_SIZE
    assert open_sealed(key, nonce, aad, sealed) == plaintext
    check = ChaCha20_Poly1305.new(key=key, nonce=nonce)
    check.update(aad)
    assert check.decrypt_and_verify(sealed[:-TAG_SIZE], sealed[-TAG_SIZE:]) == plaintext


@given(
    key=keys,
    nonce=nonces,
    aad=texts,
    plaintext=texts,
    part=st.sampled_from(["sealed", "aad", "nonce", "key"]),
    position=st.integers(min_value=0),
    mask=st.integers(min_value=1, max_value=255),
)
def test_any_changed_byte_fails(
    key: bytes, nonce: bytes, aad: bytes, plaintext: bytes, part: str, position: int, mask: int
) -> None:
    sealed = seal(key, nonce, aad, plaintext)
    values = {"sealed": sealed, "aad": aad, "nonce": nonce, "key": key}
    if not values[part]:
        values[part] = b"\x00"  # an empty aad becomes a one-byte one
    else:
        changed = bytearray(values[part])
        changed[position % len(changed)] ^= mask
        values[part] = bytes(changed)
    with pytest.raises(DecryptionError):
        open_sealed(values["key"], values["nonce"], values["aad"], values["sealed"])


def test_truncated_and_extended_messages_fail() -> None:
    sealed = seal(RFC_KEY, RFC_NONCE, RFC_AAD, RFC_PLAINTEXT)
    for bad in (sealed[:-1], sealed[1:], sealed + b"\x00", sealed[: TAG_SIZE - 1], b""):
        with pytest.raises(DecryptionError):
            open_sealed(RFC_KEY, RFC_NONCE, RFC_AAD, bad)


def test_empty_plaintext_is_just_a_tag() -> None:
    sealed = seal(RFC_KEY, RFC_NONCE, b"header", b"")
    assert len(sealed) == TAG_SIZE
    assert open_sealed(RFC_KEY, RFC_NONCE, b"header", sealed) == b""


@pytest.mark.parametrize(("key", "nonce"), [(bytes(31), bytes(12)), (bytes(32), bytes(8))])
def test_wrong_key_or_nonce_length_is_refused(key: bytes, nonce: bytes) -> None:
    with pytest.raises(InvalidEncoding):
        seal(key, nonce, b"", b"x")
    with pytest.raises(InvalidEncoding):
        open_sealed(key, nonce, b"", bytes(TAG_SIZE))
