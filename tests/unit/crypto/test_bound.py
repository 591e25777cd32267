"""Bound request signatures: known answers, and every change of the request breaks the binding.

The known answers were computed with eth-keys (RFC 6979 signing) and pycryptodome's keccak
from the formula in crypto/bound.py, not with this package's code; the test below recomputes
them the same way so a drift of either side is caught.
"""

from __future__ import annotations

import pytest
from Crypto.Hash import keccak
from eth_keys import keys as eth_keys
from hypothesis import given
from hypothesis import strategies as st

from secretstore.crypto.bound import (
    BOUND_REQUEST_DOMAIN,
    BoundOperation,
    bound_request_digest,
    bound_signer_matches,
    delete_payload,
    generation_payload,
    recover_bound_signer,
    sign_bound_request,
    signing_payload,
    store_payload,
)
from secretstore.crypto.curve import N, Point, Scalar
from secretstore.crypto.keys import KeyPair, sign_recoverable
from secretstore.errors import InvalidEncoding, InvalidSignature

SECRET = bytes.fromhex("4b2a7d6f1e0c9b8a7968574635241302f1e0d1c2b3a4958677685a4b3c2d1e0f")
ADDRESS = bytes.fromhex("67dd9b4577c46af5ef063cb92e0ef7f469e1ed78")
#: keccak256(b"bound request vector key id")
KEY_ID = bytes.fromhex("d128a8e73eff3ab38b92c60585d3dc73ddd5bfef327effb64eaff55d7de40db8")
#: keccak256(b"message")
MESSAGE_HASH = bytes.fromhex("c2baf6c66618acd49fb133cebc22f55bd907fe9f0d69a726d45b7539ba6bbe08")
COMMON = Point.base_mul(Scalar(3))
ENCRYPTED = Point.base_mul(Scalar(5))

#: (operation, payload, digest, signature by SECRET)
VECTORS = [
    (
        BoundOperation.STORE_DOCUMENT_KEY,
        COMMON.to_bytes() + ENCRYPTED.to_bytes(),
        "3133793dccef245415ed4db2f54fbbda363ef7db5e686c269ce0908544f1e6d8",
        "9c515419b7ffe177bf2d7c05d91ce8f3e94a89a94f5df5c81b5690d609d0ba8a"
        "7bd437038d3ace928726f06a94b9ce84e5d5a98804a776faebd3c8bc55face5d01",
    ),
    (
        BoundOperation.SIGN_SCHNORR,
        MESSAGE_HASH,
        "5a3570a26e566ba3312c3f71093e3c4c14f5b20b73165c2752eaa4a4ca3e4577",
        "aa363a0c87764ba4a95f3fd95d0e49ede578cd76b6bb243e476dbaf36f56b8a7"
        "4743688893513b073dd17176d335adb6771a2fbad3f2dd5103aa270586a1f42000",
    ),
    (
        BoundOperation.SIGN_ECDSA,
        MESSAGE_HASH,
        "5574ac4d103deb4743e322eb74371c8d6050c607bc78cc8e795fb7dd79819805",
        "ae56de61d0733ec59716cff31ca65b1453272e183ddcaa5bdc3ec0a40835f0a6"
        "193522578ce07dd57777fb09f588cb67412d045c43b12bb6effc0a51ced55fef00",
    ),
    (
        BoundOperation.GENERATE_SERVER_KEY,
        (1).to_bytes(32, "big"),
        "165f61a8c911b2f71543b87e32ab910e348906ef64e8301d51faa02f66de0b2a",
        "bb60f1b1daf49708ef7c0272b6f1c43862890d083d1a7f0d83374f4ec9583340"
        "6110e69b810373a7fd924ce5a4105e988005c32d2107c7b4b2ff6c5e23d6da4800",
    ),
    (
        BoundOperation.DELETE_KEY,
        Point.base_mul(Scalar(7)).to_bytes(),
        "e2098e94f9c2f3d9ded46525e8cc11aa5544fdab5b2219a288306a31dd37052d",
        "95f5725e3f97a541fe9bac638cdccc0268374e6587306eef2766f39b43045b49"
        "1042a5f49cde4fb531b97dbbd27be6dc556afb9bf1c6d7c8a9406fea7427d1c800",
    ),
]
REQUESTER = KeyPair.from_secret(Scalar.secret_from_bytes(SECRET))


def _keccak(data: bytes) -> bytes:
    digest = keccak.new(digest_bits=256)
    digest.update(data)
    return digest.digest()


def test_the_domain_tag_and_operation_bytes_are_fixed() -> None:
    assert BOUND_REQUEST_DOMAIN == b"secretstore:bound-request:v1"
    assert [int(op) for op in BoundOperation] == [1, 2, 3, 4, 5]
    assert REQUESTER.address == ADDRESS


@pytest.mark.parametrize(("operation", "payload", "digest", "signature"), VECTORS)
def test_known_answers(
    operation: BoundOperation, payload: bytes, digest: str, signature: str
) -> None:
    assert bound_request_digest(operation, KEY_ID, payload).hex() == digest
    assert sign_bound_request(REQUESTER.secret, operation, KEY_ID, payload).hex() == signature
    assert recover_bound_signer(bytes.fromhex(signature), operation, KEY_ID, payload) == (
        REQUESTER.public
    )
    assert bound_signer_matches(bytes.fromhex(signature), ADDRESS, operation, KEY_ID, payload)


@pytest.mark.parametrize(("operation", "payload", "digest", "signature"), VECTORS)
def test_known_answers_recomputed_independently(
    operation: BoundOperation, payload: bytes, digest: str, signature: str
) -> None:
    expected = _keccak(BOUND_REQUEST_DOMAIN + bytes([operation]) + KEY_ID + payload)
    assert expected.hex() == digest
    assert eth_keys.PrivateKey(SECRET).sign_msg_hash(expected).to_bytes().hex() == signature


def test_payload_builders() -> None:
    assert store_payload(COMMON, ENCRYPTED) == VECTORS[0][1]
    assert delete_payload(Point.base_mul(Scalar(7))) == VECTORS[4][1]
    assert signing_payload(MESSAGE_HASH) == MESSAGE_HASH
    with pytest.raises(InvalidEncoding):
        signing_payload(MESSAGE_HASH[:31])
    assert generation_payload(1) == VECTORS[3][1]
    assert generation_payload(0) == bytes(32)
    for bad in (-1, 1 << 256, True, "1"):
        with pytest.raises(InvalidEncoding):
            generation_payload(bad)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("operation", "key_id", "payload"),
    [
        (BoundOperation.SIGN_SCHNORR, KEY_ID[:31], MESSAGE_HASH),
        (BoundOperation.SIGN_SCHNORR, KEY_ID, MESSAGE_HASH + b"\x00"),
        (BoundOperation.SIGN_ECDSA, KEY_ID, VECTORS[0][1]),
        (BoundOperation.STORE_DOCUMENT_KEY, KEY_ID, MESSAGE_HASH),
    ],
)
def test_wrong_lengths_are_invalid_encoding(
    operation: BoundOperation, key_id: bytes, payload: bytes
) -> None:
    with pytest.raises(InvalidEncoding):
        bound_request_digest(operation, key_id, payload)


def test_an_unknown_operation_is_refused() -> None:
    with pytest.raises(ValueError):
        bound_request_digest(9, KEY_ID, MESSAGE_HASH)  # type: ignore[arg-type]


def test_a_key_id_signature_is_not_a_bound_signature() -> None:
    # Parity's requester signature over the key id binds nothing else
    key_id_signature = sign_recoverable(REQUESTER.secret, KEY_ID)
    for operation, payload, _, _ in VECTORS:
        assert not bound_signer_matches(key_id_signature, ADDRESS, operation, KEY_ID, payload)


def test_malformed_signatures_raise() -> None:
    with pytest.raises(InvalidEncoding):
        bound_signer_matches(
            b"\x01" * 64, ADDRESS, BoundOperation.SIGN_SCHNORR, KEY_ID, MESSAGE_HASH
        )
    with pytest.raises(InvalidSignature):
        bound_signer_matches(bytes(65), ADDRESS, BoundOperation.SIGN_SCHNORR, KEY_ID, MESSAGE_HASH)
    with pytest.raises(InvalidSignature):
        bad_v = bytes.fromhex(VECTORS[1][3])[:64] + b"\x05"
        bound_signer_matches(bad_v, ADDRESS, BoundOperation.SIGN_SCHNORR, KEY_ID, MESSAGE_HASH)


secrets = st.integers(1, N - 1).map(lambda n: KeyPair.from_secret(Scalar(n)))
hashes = st.binary(min_size=32, max_size=32)
operations = st.sampled_from([BoundOperation.SIGN_SCHNORR, BoundOperation.SIGN_ECDSA])


@given(secrets, hashes, hashes, operations)
def test_a_bound_signature_recovers_its_signer(
    requester: KeyPair, key_id: bytes, message: bytes, operation: BoundOperation
) -> None:
    signature = sign_bound_request(requester.secret, operation, key_id, message)
    assert bound_signer_matches(signature, requester.address, operation, key_id, message)


@given(secrets, hashes, hashes, hashes, st.data())
def test_any_other_request_breaks_the_binding(
    requester: KeyPair, key_id: bytes, message: bytes, other: bytes, data: st.DataObject
) -> None:
    signature = sign_bound_request(requester.secret, BoundOperation.SIGN_ECDSA, key_id, message)
    changed = data.draw(st.sampled_from(["operation", "key id", "payload"]))
    operation, key, payload = BoundOperation.SIGN_ECDSA, key_id, message
    if changed == "operation":
        operation = BoundOperation.SIGN_SCHNORR
    elif changed == "key id":
        key = other if other != key_id else bytes(a ^ 1 for a in other)
    else:
        payload = other if other != message else bytes(a ^ 1 for a in other)
    try:
        matches = bound_signer_matches(signature, requester.address, operation, key, payload)
    except InvalidSignature:  # no key recovers: refused all the same
        matches = False
    assert not matches
