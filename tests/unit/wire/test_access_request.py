"""The access request's pinned block on the wire: optional, at the end, strictly decoded."""

from __future__ import annotations

from dataclasses import replace

import pytest

from secretstore.errors import MalformedMessage
from secretstore.types import BlockRef, Hash256, ServerKeyId, SessionId
from secretstore.wire import codec
from secretstore.wire.consensus import AccessRequest
from secretstore.wire.decryption import DecryptionRequest

SIGNATURE = b"\x01" * 65
VERSION = b"\x02" * 32
BLOCK = BlockRef(123456, Hash256(b"\xab" * 32))


def request(block: BlockRef | None) -> DecryptionRequest:
    return DecryptionRequest(
        SessionId(b"\x03" * 32),
        ServerKeyId(b"\x04" * 32),
        AccessRequest(SIGNATURE, VERSION, block=block),
    )


@pytest.mark.parametrize("block", [None, BLOCK, BlockRef(0, Hash256(bytes(32)))])
def test_round_trip(block: BlockRef | None) -> None:
    message = request(block)
    assert codec.decode(codec.encode(message)) == message


def access_part(block: BlockRef | None) -> bytes:
    """The request's encoding up to the end of its access request (the job's flag after it,
    absent here, taken off)."""
    data = codec.encode(request(block))
    assert data[-1] == 0  # no job
    return data[:-1]


def test_the_block_is_the_field_before_the_origin_number_then_hash() -> None:
    without, with_block = access_part(None), access_part(BLOCK)
    assert without[-2:] == b"\x00\x00"  # the optional flags: no block, no origin
    assert with_block[: len(without) - 2] == without[:-2]
    block = b"\x01" + (123456).to_bytes(8, "big") + b"\xab" * 32
    assert with_block[len(without) - 2 :] == block + b"\x00"


def test_a_truncated_or_padded_block_is_malformed() -> None:
    data = access_part(BLOCK)
    for bad in (data[:-2], data + b"\x00", data[:-42] + b"\x02" + data[-41:]):
        with pytest.raises(MalformedMessage):
            codec.decode(bad + b"\x00")


def test_the_default_is_no_block() -> None:
    assert AccessRequest(SIGNATURE, VERSION).block is None
    assert replace(AccessRequest(SIGNATURE, VERSION), block=BLOCK).block == BLOCK
