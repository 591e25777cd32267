"""The requester proof field and the bound signature fields: strict lengths, strict kinds."""

from __future__ import annotations

import pytest

from secretstore.crypto.curve import Point, Scalar
from secretstore.errors import MalformedMessage
from secretstore.types import ServerKeyId, SessionId
from secretstore.wire import codec
from secretstore.wire.consensus import AccessRequest
from secretstore.wire.encryption import InitializeEncryption
from secretstore.wire.requester import ProofKind, RequesterProof

SID = SessionId(b"\x01" * 32)
KEY = ServerKeyId(b"\x02" * 32)
SIGNATURE = b"\x03" * 64 + b"\x01"
POINT = Point.base_mul(Scalar(3))


def store(proof: RequesterProof, bound: bytes | None = None) -> InitializeEncryption:
    return InitializeEncryption(SID, KEY, proof, POINT, POINT, bound)


def test_a_signature_proof_is_a_tagged_field_of_kind_then_payload() -> None:
    proof = RequesterProof.signature(SIGNATURE)
    assert proof == RequesterProof(ProofKind.REQUESTER_SIGNATURE, SIGNATURE)
    encoded = codec.encode(store(proof))
    # code, session id, key id, then the proof: kind byte, u32 length, the signature
    assert encoded[66:72] == b"\x00" + (65).to_bytes(4, "big") + SIGNATURE[:1]
    assert codec.decode(encoded) == store(proof)


@pytest.mark.parametrize("length", [0, 20, 64, 66])
def test_a_signature_proof_of_another_length_is_refused(length: int) -> None:
    with pytest.raises(ValueError, match="65 bytes"):
        RequesterProof.signature(b"\x01" * length)


def test_an_unknown_proof_kind_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown"):
        RequesterProof(7, SIGNATURE)  # type: ignore[arg-type]
    encoded = bytearray(codec.encode(store(RequesterProof.signature(SIGNATURE))))
    encoded[66] = 7
    with pytest.raises(MalformedMessage, match="ProofKind"):
        codec.decode(bytes(encoded))


def test_a_bare_address_where_the_proof_belongs_does_not_decode() -> None:
    # a master speaking the old form (the requester as a 20-byte address) is refused whole
    old_form = (
        codec.encode(store(RequesterProof.signature(SIGNATURE)))[:66]
        + b"\xaa" * 20
        + POINT.to_bytes() * 2
    )
    with pytest.raises(MalformedMessage):
        codec.decode(old_form)


@pytest.mark.parametrize("length", [0, 64, 66])
def test_bound_signatures_must_be_65_bytes(length: int) -> None:
    with pytest.raises(ValueError, match="bound"):
        store(RequesterProof.signature(SIGNATURE), b"\x01" * length)
    with pytest.raises(ValueError, match="bound"):
        AccessRequest(SIGNATURE, b"\x00" * 32, b"\x01" * length)
    message = store(RequesterProof.signature(SIGNATURE), SIGNATURE)
    assert codec.decode(codec.encode(message)) == message
    assert AccessRequest(SIGNATURE, b"\x00" * 32).bound_signature is None
