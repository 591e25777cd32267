"""The share-publics file: summaries round-trip, hold no secret, and a bad file is refused
naming the file and the field."""

from __future__ import annotations

import json

import pytest

from secretstore.crypto.rng import SeededRng
from secretstore.errors import ParityImportError
from secretstore.parity_db.checks import ShareSummary
from secretstore.parity_db.publics import decode_share_publics, encode_share_publics
from secretstore.types import Address, ServerKeyId
from tests.sim.dealer import deal_key
from tests.unit.storage.strategies import sample_node

KEY_A, KEY_B = ServerKeyId(b"\x0a" * 32), ServerKeyId(b"\x0b" * 32)


def example() -> tuple[list, dict]:  # type: ignore[type-arg]
    members = sorted(sample_node(5, i) for i in range(3))
    rng = SeededRng(b"publics")
    with_document = deal_key(rng, members, 1, author=Address(b"\x01" * 20))
    without = deal_key(rng, members, 2, with_document_key=False)
    return members, {KEY_A: with_document, KEY_B: without}


def test_summaries_round_trip_without_any_share() -> None:
    members, keys = example()
    node = members[1]
    summaries = {key_id: ShareSummary.of(node, key.shares[node]) for key_id, key in keys.items()}
    text = encode_share_publics(node, summaries.items())
    for key in keys.values():
        for share in key.shares.values():
            assert share.last_version().secret_share.to_bytes().hex() not in text
    decoded_node, decoded = decode_share_publics(text, "node1.json")
    assert decoded_node == node
    assert decoded == summaries


def bad(text_change: str, value: object) -> str:
    members, keys = example()
    node = members[0]
    text = encode_share_publics(node, [(KEY_A, ShareSummary.of(node, keys[KEY_A].shares[node]))])
    document = json.loads(text)
    entry = document["keys"]["0x" + KEY_A.hex()]
    if text_change == "format":
        document["format"] = value
    elif text_change == "node":
        document["node"] = value
    else:
        entry[text_change] = value
    return json.dumps(document)


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("format", "something else", "not a share-publics file"),
        ("node", "0x1234", "node is not 64 bytes"),
        ("threshold", -1, "threshold is not a non-negative integer"),
        ("public", "0x" + "00" * 64, "public is not a point on secp256k1"),
        ("versions", [], "versions is not a JSON object"),
        ("author", "ab" * 20, "author is not a 0x-prefixed hex string"),
    ],
)
def test_a_bad_file_is_refused_naming_file_and_field(
    field: str, value: object, expected: str
) -> None:
    with pytest.raises(ParityImportError, match=rf"^n1\.json: .*{expected}"):
        decode_share_publics(bad(field, value), "n1.json")
    with pytest.raises(ParityImportError, match=r"n1\.json: not JSON"):
        decode_share_publics("{", "n1.json")
