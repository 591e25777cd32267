"""Signing messages: every one round-trips through the codec; bad fields are refused."""

from __future__ import annotations

import pytest

from secretstore.crypto.curve import ONE, G, Scalar
from secretstore.crypto.dleq import DleqProof
from secretstore.crypto.keys import KeyPair
from secretstore.crypto.rng import SeededRng
from secretstore.errors import MalformedMessage
from secretstore.types import MessageHash, NodeId, ServerKeyId, SessionId
from secretstore.wire import codec
from secretstore.wire.consensus import AccessRequest
from secretstore.wire.dkg import DkgKeys
from secretstore.wire.signing import (
    EcdsaInversedNonceShare,
    EcdsaSignatureRequest,
    EcdsaSignatureShare,
    EcdsaSigningRequest,
    NonceKind,
    SchnorrSignatureShare,
    SchnorrSigningRequest,
    SigningFault,
    SigningNodeLost,
    SigningNonceMessage,
    SigningNonceRequest,
    SigningSharePublic,
)

SID = SessionId(b"\x01" * 32)
KEY = ServerKeyId(b"\x02" * 32)
HASH = MessageHash(b"\x03" * 32)
NODES = tuple(sorted(KeyPair.generate(SeededRng(1)).node_id for _ in range(3)))
ACCESS = AccessRequest(b"\x04" * 65, b"\x05" * 32)
PROOF = DleqProof(Scalar(7), Scalar(9))

MESSAGES = [
    SigningSharePublic(SID, G),
    SigningNonceRequest(SID, 3, NODES),
    SigningNonceMessage(SID, 1, NonceKind.INVERSION_ZERO, DkgKeys(ONE, Scalar(2), (G, G))),
    SigningFault(SID, 2, NodeId(NODES[0]), "dealt keys that do not match"),
    SigningNodeLost(SID, 2, NodeId(NODES[1])),
    SchnorrSigningRequest(SID, KEY, ACCESS, HASH),
    SchnorrSignatureShare(SID, 1, Scalar(11)),
    EcdsaSigningRequest(SID, KEY, ACCESS, HASH),
    EcdsaInversedNonceShare(SID, 1, Scalar(12), PROOF),
    EcdsaSignatureRequest(SID, 1, Scalar(13)),
    EcdsaSignatureShare(SID, 1, Scalar(14), PROOF),
]


@pytest.mark.parametrize("message", MESSAGES, ids=lambda m: type(m).__name__)
def test_round_trip(message: object) -> None:
    data = codec.encode(message)
    assert codec.decode(data) == message
    code = codec.code_of(type(message))
    assert 0x0500 <= code <= 0x06FF
    assert (code >> 8) == (6 if type(message).__name__.startswith("Ecdsa") else 5)


def test_nonce_kinds_are_their_wire_bytes_and_an_unknown_one_is_refused() -> None:
    assert [int(kind) for kind in NonceKind] == [0, 1, 2, 3]
    data = bytearray(codec.encode(MESSAGES[2]))
    kind_at = 2 + 32 + 8
    assert data[kind_at] == NonceKind.INVERSION_ZERO
    data[kind_at] = NonceKind.SIGNATURE_ZERO
    decoded = codec.decode(bytes(data))
    assert isinstance(decoded, SigningNonceMessage)
    assert decoded.kind is NonceKind.SIGNATURE_ZERO
    data[kind_at] = 4
    with pytest.raises(MalformedMessage, match="NonceKind"):
        codec.decode(bytes(data))


def test_a_short_hash_or_truncated_message_is_refused() -> None:
    data = codec.encode(MESSAGES[5])
    with pytest.raises(MalformedMessage):
        codec.decode(data[:-1])
    with pytest.raises(MalformedMessage):
        codec.decode(data + b"\x00")
