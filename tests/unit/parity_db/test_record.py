"""Parity's key record: a literal record decodes field by field, our writer's records round-
trip, and every malformed record is refused with ParityRecordError that names no secret.

The literal below is written by hand from Parity's serde definitions (key_storage.rs,
serialization.rs); no database written by Parity itself was available.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from secretstore.crypto.curve import N, Point, Scalar
from secretstore.crypto.hashing import keccak256
from secretstore.errors import ParityRecordError
from secretstore.parity_db.record import decode_key_id, decode_parity_record, same_record
from secretstore.storage.model import KeyShare, KeyShareVersion, version_hash
from secretstore.types import Address, NodeId
from tests.parity_format import parity_record, parity_record_object
from tests.unit.storage.strategies import node_ids, nonzero_scalars, points

G_HEX = (
    "79be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798"
    "483ada7726a3c4655da4fbfc0e1108a8fd17b448a68554199c47d08ffb10d4b8"
)
G2_HEX = (
    "c6047f9441ed7d6d3045406e95c07cd85c778e4b8cef3ca7abac09b95c709ee5"
    "1ae168fea63dc339a3c58419466ceaeef7f632653266d0e1236431a950cfe52a"
)
ONE_HEX = "00" * 31 + "01"
TWO_HEX = "00" * 31 + "02"
SHARE_HEX = "5e" * 32  # the secret share of the literal: never in an error message
#: Parity's rule (DocumentKeyShareVersion::data_hash): keccak256 over node ‖ number, in
#: ascending node id order (G's x starts 0x79, 2G's 0xc6).
LITERAL_HASH = keccak256(bytes.fromhex(G_HEX + ONE_HEX + G2_HEX + TWO_HEX))


def literal_object() -> dict[str, Any]:
    return {
        "author": "0x00112233445566778899aabbccddeeff00112233",
        "threshold": 1,
        "public": "0x" + G2_HEX,
        "common_point": "0x" + G_HEX,
        "encrypted_point": "0x" + G2_HEX,
        "versions": [
            {
                "hash": "0x" + LITERAL_HASH.hex(),
                "id_numbers": {"0x" + G_HEX: "0x" + ONE_HEX, "0x" + G2_HEX: "0x" + TWO_HEX},
                "secret_share": "0x" + SHARE_HEX,
            }
        ],
    }


def encode(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


def test_a_literal_record_decodes_field_by_field() -> None:
    share = decode_parity_record(encode(literal_object()))
    g, g2 = Point.base_mul(Scalar(1)), Point.base_mul(Scalar(2))
    assert share.author == bytes.fromhex("00112233445566778899aabbccddeeff00112233")
    assert share.threshold == 1
    assert share.public == g2
    assert (share.common_point, share.encrypted_point) == (g, g2)
    (version,) = share.versions
    assert version.hash == LITERAL_HASH
    assert version.id_numbers == (
        (NodeId(g.to_bytes()), Scalar(1)),
        (NodeId(g2.to_bytes()), Scalar(2)),
    )
    assert version.secret_share == Scalar(int(SHARE_HEX, 16))


def test_parity_hash_rule_is_ours() -> None:
    pairs = [(NodeId(bytes.fromhex(G2_HEX)), Scalar(2)), (NodeId(bytes.fromhex(G_HEX)), Scalar(1))]
    assert version_hash(pairs) == LITERAL_HASH


def test_our_writer_writes_the_literal_byte_for_byte() -> None:
    share = decode_parity_record(encode(literal_object()))
    assert parity_record(share) == encode(literal_object())


def test_absent_document_key_fields_read_as_null_and_hex_case_is_free() -> None:
    record = literal_object()
    del record["common_point"]
    record["encrypted_point"] = None
    record["public"] = record["public"].upper().replace("0X", "0x")
    share = decode_parity_record(encode(record))
    assert share.common_point is None and share.encrypted_point is None
    assert share.public == Point.base_mul(Scalar(2))


def test_id_numbers_in_any_order_give_the_same_record() -> None:
    record = literal_object()
    numbers = record["versions"][0]["id_numbers"]
    record["versions"][0]["id_numbers"] = dict(reversed(list(numbers.items())))
    assert same_record(
        decode_parity_record(encode(record)), decode_parity_record(encode(literal_object()))
    )


def _set(path: tuple[Any, ...], value: Any) -> Any:
    def mutate(record: dict[str, Any]) -> None:
        target: Any = record
        for step in path[:-1]:
            target = target[step]
        target[path[-1]] = value

    return mutate


def _delete(path: tuple[Any, ...]) -> Any:
    def mutate(record: dict[str, Any]) -> None:
        target: Any = record
        for step in path[:-1]:
            target = target[step]
        del target[path[-1]]

    return mutate


def _id_numbers(value: Any) -> Any:
    return _set(("versions", 0, "id_numbers"), value)


MUTATIONS = {
    "unknown field": (_set(("extra",), 1), "unknown fields"),
    "missing public": (_delete(("public",)), "lacks the fields ['public']"),
    "missing versions": (_delete(("versions",)), "lacks the fields ['versions']"),
    "threshold bool": (_set(("threshold",), True), "threshold is not an integer"),
    "threshold float": (_set(("threshold",), 1.0), "threshold is not an integer"),
    "threshold text": (_set(("threshold",), "1"), "threshold is not an integer"),
    "threshold negative": (_set(("threshold",), -1), "threshold is negative"),
    "threshold too high": (_set(("threshold",), 2), "needs more than 2 nodes"),
    "author without 0x": (_set(("author",), "00" * 20), "author is not a 0x-prefixed"),
    "author short": (_set(("author",), "0x" + "00" * 19), "author is not 20 bytes"),
    "author not hex": (_set(("author",), "0x" + "zz" * 20), "author is not 20 bytes"),
    "public 0X": (_set(("public",), "0X" + G_HEX), "public is not a 0x-prefixed"),
    "public off the curve": (_set(("public",), "0x" + "00" * 64), "not a point on secp256k1"),
    "public a number": (_set(("public",), 5), "public is not a 0x-prefixed"),
    "common point alone": (_set(("encrypted_point",), None), "set together"),
    "versions empty": (_set(("versions",), []), "versions is not a non-empty JSON array"),
    "versions an object": (_set(("versions",), {}), "versions is not a non-empty JSON array"),
    "version not an object": (_set(("versions", 0), []), "versions[0] is not a JSON object"),
    "version unknown field": (_set(("versions", 0, "time"), 1), "unknown fields ['time']"),
    "version missing share": (_delete(("versions", 0, "secret_share")), "lacks the fields"),
    "id numbers empty": (_id_numbers({}), "id_numbers is not a non-empty"),
    "id numbers a list": (_id_numbers([]), "id_numbers is not a non-empty"),
    "node id off the curve": (
        _id_numbers({"0x" + "00" * 64: "0x" + ONE_HEX}),
        "node 0 is not a point",
    ),
    "id number zero": (
        _id_numbers({"0x" + G_HEX: "0x" + "00" * 32, "0x" + G2_HEX: "0x" + TWO_HEX}),
        "is not a scalar in [1, n-1]",
    ),
    "same node twice": (
        _id_numbers({"0x" + G_HEX: "0x" + ONE_HEX, "0x" + G_HEX.upper(): "0x" + TWO_HEX}),
        "node ids of a key version must be distinct",
    ),
    "same id number twice": (
        _id_numbers({"0x" + G_HEX: "0x" + ONE_HEX, "0x" + G2_HEX: "0x" + ONE_HEX}),
        "id numbers of a key version must be distinct",
    ),
    "share zero": (_set(("versions", 0, "secret_share"), "0x" + "00" * 32), "secret_share is not"),
    "share the order": (
        _set(("versions", 0, "secret_share"), f"0x{N:064x}"),
        "secret_share is not a scalar",
    ),
    "share short": (_set(("versions", 0, "secret_share"), "0x" + SHARE_HEX[2:]), "not 32 bytes"),
    "hash of other ids": (
        _set(("versions", 0, "hash"), "0x" + keccak256(b"other").hex()),
        "the hash does not match its id numbers",
    ),
    "hash short": (_set(("versions", 0, "hash"), "0x" + "11" * 31), "hash is not 32 bytes"),
}


@pytest.mark.parametrize("name", sorted(MUTATIONS))
def test_a_malformed_record_is_refused_naming_the_problem_and_no_secret(name: str) -> None:
    mutate, expected = MUTATIONS[name]
    record = copy.deepcopy(literal_object())
    mutate(record)
    with pytest.raises(ParityRecordError) as caught:
        decode_parity_record(encode(record))
    message = str(caught.value)
    assert expected in message
    assert SHARE_HEX not in message.lower()
    assert ONE_HEX not in message and TWO_HEX not in message


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b"\xff\xfe", "not UTF-8"),
        (b'{"author":', "not JSON"),
        (b"[]", "the record is not a JSON object"),
        (b'{"threshold":NaN}', "NaN is not a JSON number"),
        (b'{"threshold":1,"threshold":1}', "'threshold' appears twice"),
        (b"[" * 100_000, "nested too deeply"),
    ],
)
def test_bytes_that_are_not_a_record_are_refused(raw: bytes, expected: str) -> None:
    with pytest.raises(ParityRecordError, match=expected):
        decode_parity_record(raw)


def test_a_record_key_must_be_a_key_id() -> None:
    assert decode_key_id(b"\x07" * 32) == b"\x07" * 32
    for key in (b"", b"version", b"\x07" * 31, b"\x07" * 33):
        with pytest.raises(ParityRecordError, match="not a key id"):
            decode_key_id(key)


# --- our writer's records round-trip; any byte changed is refused or decodes -------------------


@st.composite
def parity_shares(draw: st.DrawFn) -> KeyShare:
    """Shares as Parity stores them: hashes from their id numbers, shares nonzero."""
    versions = []
    for _ in range(draw(st.integers(1, 3))):
        count = draw(st.integers(1, 4))
        nodes = draw(st.lists(node_ids, min_size=count, max_size=count, unique=True))
        numbers = draw(st.lists(nonzero_scalars, min_size=count, max_size=count, unique=True))
        version = KeyShareVersion.create(
            dict(zip(nodes, numbers, strict=True)), draw(nonzero_scalars)
        )
        if all(v.hash != version.hash for v in versions):
            versions.append(version)
    threshold = draw(st.integers(0, min(len(v.id_numbers) for v in versions) - 1))
    document_key = draw(st.none() | st.tuples(points, points))
    common, encrypted = document_key if document_key else (None, None)
    return KeyShare(
        author=Address(draw(st.binary(min_size=20, max_size=20))),
        threshold=threshold,
        public=draw(points),
        common_point=common,
        encrypted_point=encrypted,
        versions=tuple(versions),
    )


@given(parity_shares())
def test_every_record_our_writer_makes_decodes_to_the_same_share(share: KeyShare) -> None:
    decoded = decode_parity_record(parity_record(share))
    assert same_record(decoded, share)
    assert decoded == share


@given(parity_shares(), st.data())
def test_a_changed_byte_is_refused_or_decodes_never_raises_otherwise(
    share: KeyShare, data: st.DataObject
) -> None:
    raw = bytearray(parity_record(share))
    index = data.draw(st.integers(0, len(raw) - 1))
    raw[index] = data.draw(st.integers(0, 255).filter(lambda b: b != raw[index]))
    try:
        decoded = decode_parity_record(bytes(raw))
    except ParityRecordError:
        return
    # Only a change that keeps the record valid decodes (e.g. a hex digit's case, the
    # author or a point changed to another valid one).
    assert isinstance(decoded, KeyShare)


def test_same_record_compares_every_parity_field() -> None:
    share = decode_parity_record(encode(literal_object()))
    assert same_record(share, share)
    other_public = literal_object()
    other_public["public"] = "0x" + G_HEX
    extra_version = literal_object()
    second = KeyShareVersion.create(
        {NodeId(bytes.fromhex(G_HEX)): Scalar(3), NodeId(bytes.fromhex(G2_HEX)): Scalar(4)},
        Scalar(9),
    )
    extra_version["versions"].append(
        parity_record_object(share.with_version(second))["versions"][1]
    )
    for changed in (other_public, extra_version):
        assert not same_record(share, decode_parity_record(encode(changed)))
    other_share = literal_object()
    other_share["versions"][0]["secret_share"] = "0x" + "5f" * 32
    assert not same_record(share, decode_parity_record(encode(other_share)))
