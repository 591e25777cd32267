"""Audit entries: the encoding round-trips, refuses every malformed record, holds no secret;
receipts are the node's signature of exactly these facts."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from secretstore.audit.model import (
    AuditEntry,
    AuditFacts,
    Operation,
    decode_entry,
    encode_entry,
    encode_facts,
    receipt_digest,
)
from secretstore.audit.receipts import NodeSigner, receipt_holds, signer_of
from secretstore.crypto.hashing import keccak256
from secretstore.errors import CorruptRecord, InvalidEncoding
from tests.unit.audit.logs import NODE, NODES, any_facts, facts, node_log


@given(any_facts(), st.integers(0, 2**64 - 1), st.integers(0, 2**64 - 1))
def test_an_entry_round_trips(value: AuditFacts, index: int, time_ms: int) -> None:
    entry = AuditEntry(index, keccak256(b"p"), time_ms, value, b"\x01" * 65, b"\x02" * 65)
    assert decode_entry(encode_entry(entry)) == entry


def test_the_facts_encoding_is_the_documented_layout() -> None:
    value = facts(7, Operation.SCHNORR)
    raw = encode_facts(value)
    assert raw[0] == Operation.SCHNORR
    assert raw[1:33] == (7).to_bytes(32, "big")
    assert raw[33:65] == bytes([7]) * 32
    assert raw[65:129] == NODE.node_id
    assert raw[129] == 1 and raw[130:150] == value.requester
    assert raw[150] == 1 and raw[151:183] == b"\x22" * 32
    assert raw[183] == 1 and raw[184:216] == b"\x33" * 32
    assert raw[216] == 0  # no block
    assert raw[217:221] == (2).to_bytes(4, "big")
    assert raw[221:] == b"".join(value.participants)


def test_every_truncation_and_every_trailing_byte_is_refused() -> None:
    store, _ = node_log(1)
    record = dict(store.records())[0]
    for cut in range(len(record)):
        with pytest.raises(CorruptRecord):
            decode_entry(record[:cut])
    with pytest.raises(CorruptRecord, match="trailing"):
        decode_entry(record + b"\x00")


@pytest.mark.parametrize(
    ("offset", "value", "match"),
    [
        (0, 2, "unknown format"),
        (49, 0, "unknown operation"),  # after format, index, previous and time
        (49, 10, "unknown operation"),
        (178, 2, "flag"),  # the requester flag
    ],
)
def test_bad_fields_are_named(offset: int, value: int, match: str) -> None:
    store, _ = node_log(1)
    record = bytearray(dict(store.records())[0])
    record[offset] = value
    with pytest.raises(CorruptRecord, match=match):
        decode_entry(bytes(record))


def test_facts_refuse_unsorted_or_duplicate_participants_and_bad_lengths() -> None:
    good = facts()
    with pytest.raises(InvalidEncoding, match="ascending"):
        AuditFacts(
            good.operation,
            good.key_id,
            good.session_id,
            good.master,
            good.requester,
            tuple(reversed(good.participants)),
        )
    with pytest.raises(InvalidEncoding, match="ascending"):
        AuditFacts(
            good.operation,
            good.key_id,
            good.session_id,
            good.master,
            good.requester,
            (good.participants[0], good.participants[0]),
        )
    with pytest.raises(InvalidEncoding, match="participants"):
        AuditFacts(good.operation, good.key_id, good.session_id, good.master, None, ())
    with pytest.raises(InvalidEncoding, match="key id"):
        AuditFacts(
            good.operation, good.key_id[:31], good.session_id, good.master, None, (NODE.node_id,)
        )  # type: ignore[arg-type]


@given(any_facts())
def test_a_receipt_holds_for_its_node_and_facts_only(value: AuditFacts) -> None:
    receipt = NodeSigner(NODE).receipt(value)
    assert receipt_holds(NODE.node_id, value, receipt)
    assert signer_of(receipt, receipt_digest(NODE.node_id, value)) == NODE.node_id
    assert not receipt_holds(NODES[1].node_id, value, receipt)  # claimed for another node
    other = facts(1) if value != facts(1) else facts(2)
    assert not receipt_holds(NODE.node_id, other, receipt)  # of other facts
    assert not receipt_holds(NODE.node_id, value, None)
    assert not receipt_holds(NODE.node_id, value, receipt[:64])
    assert not receipt_holds(NODE.node_id, value, b"\x00" * 65)


def test_a_receipt_commits_to_every_fact() -> None:
    value = facts(3, Operation.ECDSA)
    receipt = NodeSigner(NODE).receipt(value)
    raw = encode_facts(value)
    for position in range(len(raw)):
        changed = bytearray(raw)
        changed[position] ^= 0x01
        digest = keccak256(b"secretstore audit receipt v1" + NODE.node_id + bytes(changed))
        assert signer_of(receipt, digest) != NODE.node_id
