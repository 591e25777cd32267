"""The receipts of a release, as the requester checks them: each participant's own signature
of these very facts. A master that forges, drops, swaps or re-labels one is named; the JSON
form round-trips and refuses malformed input."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace

import pytest
from hypothesis import given

from secretstore.audit.jsonform import parse_receipts, receipts_header, receipts_json
from secretstore.audit.model import AuditFacts, Operation, facts_of
from secretstore.audit.receipts import (
    NodeSigner,
    ReleaseReceipts,
    decode_receipts,
    encode_receipts,
    verify_release_receipts,
)
from secretstore.errors import CorruptRecord, InvalidEncoding, ReceiptVerificationError
from secretstore.types import Address, NodeId, ServerKeyId, SessionId
from tests.unit.audit.logs import NODES, REQUESTER, any_facts

KEY = ServerKeyId(b"\x07" * 32)
MESSAGE = b"\x42" * 32
GROUP = sorted(k.node_id for k in NODES[:3])
SIGNERS = {k.node_id: NodeSigner(k) for k in NODES}


def release(operation: Operation = Operation.SCHNORR, group: list[NodeId] = GROUP) -> AuditFacts:
    return facts_of(
        operation,
        KEY,
        session_id=SessionId(b"\x05" * 32),
        master=group[0],
        requester=REQUESTER,
        participants=tuple(group),
        key_version=b"\x09" * 32,
        message_hash=MESSAGE if operation in (Operation.SCHNORR, Operation.ECDSA) else None,
    )


def signed(facts: AuditFacts) -> ReleaseReceipts:
    return ReleaseReceipts(facts, tuple(SIGNERS[n].receipt(facts) for n in facts.participants))


def check(receipts: ReleaseReceipts, **overrides: object) -> ReleaseReceipts:
    options: dict[str, object] = {
        "operation": Operation.SCHNORR,
        "key_id": KEY,
        "requester": REQUESTER,
        "message_hash": MESSAGE,
        "nodes": SIGNERS,
    }
    options.update(overrides)
    return verify_release_receipts(receipts, **options)  # type: ignore[arg-type]


def test_honest_receipts_verify() -> None:
    receipts = signed(release())
    assert check(receipts) is receipts
    assert check(receipts, nodes=None, min_participants=3, participants=GROUP)


def test_a_forged_receipt_names_its_node() -> None:
    receipts = signed(release())
    forged = list(receipts.signatures)
    forged[1] = SIGNERS[GROUP[0]].receipt(receipts.facts)  # the master signs for node 1
    with pytest.raises(ReceiptVerificationError, match=GROUP[1].hex()):
        check(replace(receipts, signatures=tuple(forged)))


def test_a_dropped_participant_breaks_every_other_receipt() -> None:
    """The master removes node 2 from the list (and its receipt): the others signed a list
    with node 2 in it, so their receipts no longer verify."""
    receipts = signed(release())
    facts = receipts.facts
    fewer = replace(facts, participants=facts.participants[:2])
    with pytest.raises(ReceiptVerificationError, match=GROUP[0].hex()):
        check(ReleaseReceipts(fewer, receipts.signatures[:2]))
    # and when the requester knows who took part (the proofs), the drop itself is named
    with pytest.raises(ReceiptVerificationError, match=f"{GROUP[2].hex()}: took part"):
        check(ReleaseReceipts(fewer, receipts.signatures[:2]), participants=GROUP)


def test_receipts_of_a_made_up_node_or_too_few_are_refused() -> None:
    stranger = NODES[3].node_id
    receipts = signed(release(group=sorted([*GROUP[:2], stranger])))
    with pytest.raises(ReceiptVerificationError, match="not a node of the cluster"):
        check(receipts, nodes=GROUP)
    with pytest.raises(ReceiptVerificationError, match="3 participants have receipts, 4"):
        check(signed(release()), min_participants=4)


@pytest.mark.parametrize(
    ("override", "what"),
    [
        ({"operation": Operation.ECDSA}, "operation"),
        ({"key_id": b"\x08" * 32}, "key id"),
        ({"requester": Address(b"\x12" * 20)}, "requester"),
        ({"message_hash": b"\x43" * 32}, "message hash"),
    ],
)
def test_receipts_of_another_request_are_refused(override: dict[str, object], what: str) -> None:
    with pytest.raises(ReceiptVerificationError, match=f"another {what}"):
        check(signed(release()), **override)


def test_a_master_that_relabels_the_facts_breaks_the_receipts() -> None:
    receipts = signed(release())
    relabelled = replace(receipts.facts, requester=Address(b"\x12" * 20))
    with pytest.raises(ReceiptVerificationError, match="not its signature"):
        check(ReleaseReceipts(relabelled, receipts.signatures), requester=Address(b"\x12" * 20))


@given(any_facts())
def test_the_json_form_round_trips(facts: AuditFacts) -> None:
    receipts = ReleaseReceipts(
        facts, tuple(bytes([i % 256]) * 65 for i, _ in enumerate(facts.participants))
    )
    assert parse_receipts(receipts_json(receipts)) == receipts
    header = receipts_header(receipts)
    assert header.isascii() and " " not in header and "\n" not in header
    assert parse_receipts(json.loads(header)) == receipts


@given(any_facts())
def test_the_binary_form_round_trips(facts: AuditFacts) -> None:
    receipts = ReleaseReceipts(
        facts, tuple(bytes([i % 256]) * 65 for i, _ in enumerate(facts.participants))
    )
    assert decode_receipts(encode_receipts(receipts)) == receipts


@pytest.mark.parametrize(
    ("change", "match"),
    [
        (lambda raw: raw[:-1], "bytes of signatures for 3 participants"),
        (lambda raw: raw + bytes(65), "bytes of signatures for 3 participants"),
        (lambda raw: raw[:40], "truncated"),
        (lambda raw: b"\x63" + raw[1:], "unknown operation"),
        (lambda raw: b"", "truncated"),
    ],
)
def test_a_binary_form_that_does_not_decode_is_refused(
    change: Callable[[bytes], bytes], match: str
) -> None:
    with pytest.raises(CorruptRecord, match=match):
        decode_receipts(change(encode_receipts(signed(release()))))


def test_the_json_names_its_fields() -> None:
    value = receipts_json(signed(release()))
    assert list(value) == [
        "operation",
        "key_id",
        "session",
        "master",
        "requester",
        "version",
        "message_hash",
        "block",
        "participants",
        "signatures",
    ]
    assert value["operation"] == "schnorr" and value["block"] is None


@pytest.mark.parametrize(
    ("change", "match"),
    [
        (lambda v: v.pop("session"), "missing session"),
        (lambda v: v.update(operation="sign"), "unknown operation"),
        (lambda v: v.update(signatures=v["signatures"][:1]), "one signature per participant"),
        (lambda v: v.update(participants=[]), "participants"),
        (lambda v: v.update(key_id="0x12"), "key_id"),
        (lambda v: v.update(block={"number": -1, "hash": "0x" + "00" * 32}), "block.number"),
        (lambda v: v.update(participants=list(reversed(v["participants"]))), "ascending"),
    ],
)
def test_malformed_json_is_refused(change: object, match: str) -> None:
    value = receipts_json(signed(release()))
    change(value)  # type: ignore[operator]
    with pytest.raises(InvalidEncoding, match=match):
        parse_receipts(value)
    with pytest.raises(InvalidEncoding):
        parse_receipts([value])
