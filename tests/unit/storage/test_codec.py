"""The stored-record codec: round trip, the documented layout, and every corruption rejected
with CorruptRecord (and nothing else)."""

from __future__ import annotations

import dataclasses
import json
import struct
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from secretstore.crypto.curve import N, Point, Scalar
from secretstore.errors import CorruptRecord
from secretstore.storage.codec import SCHEMA_VERSION, decode_key_share, encode_key_share
from secretstore.storage.model import KeyShare, KeyShareVersion
from secretstore.types import Address, NodeId
from tests.unit.storage.strategies import key_shares, sample_node, sample_share, sample_version

RawVersion = tuple[bytes, Sequence[tuple[bytes, bytes]], bytes]
#: a schema-2 version: a RawVersion and its commitments (64-byte points) or None
RawVersion2 = tuple[bytes, Sequence[tuple[bytes, bytes]], bytes, Sequence[bytes] | None]


def _u32(value: int) -> bytes:
    return struct.pack(">I", value)


def build_record(
    *,
    author: bytes = bytes(20),
    threshold: int = 0,
    public: bytes = Point.base_mul(Scalar(3)).to_bytes(),
    common: bytes | None = None,
    encrypted: bytes | None = None,
    versions: Sequence[RawVersion | RawVersion2] = (),
    schema: int = 1,
    common_flag: int | None = None,
    version_count: int | None = None,
    node_count: int | None = None,
    commitments_flag: int | None = None,
    commitment_count: int | None = None,
) -> bytes:
    """The record layout written out independently of the codec, with a valid checksum.
    Schema 2 adds each version's commitments (a 4th item of the version, None for none)."""
    body = bytes([schema]) + author + _u32(threshold) + public
    for flag, point in ((common_flag, common), (None, encrypted)):
        body += bytes([flag if flag is not None else int(point is not None)])
        body += point or b""
    body += _u32(len(versions) if version_count is None else version_count)
    for version in versions:
        hash_, pairs, share = version[:3]
        body += hash_ + _u32(len(pairs) if node_count is None else node_count)
        body += b"".join(node + number for node, number in pairs)
        body += share
        if schema == 2:
            commitments = version[3] if len(version) == 4 else None
            present = commitments is not None
            body += bytes([commitments_flag if commitments_flag is not None else int(present)])
            if commitments is not None:
                count = len(commitments) if commitment_count is None else commitment_count
                body += _u32(count) + b"".join(commitments)
    return body + _u32(zlib.crc32(body))


def _raw_versions(share: KeyShare) -> list[RawVersion2]:
    return [
        (
            v.hash,
            [(n, s.to_bytes()) for n, s in v.id_numbers],
            v.secret_share.to_bytes(),
            None if v.commitments is None else [c.to_bytes() for c in v.commitments],
        )
        for v in share.versions
    ]


def _has_commitments(share: KeyShare) -> bool:
    return any(v.commitments is not None for v in share.versions)


def _raw(share: KeyShare) -> bytes:
    return build_record(
        author=share.author,
        threshold=share.threshold,
        public=share.public.to_bytes(),
        common=share.common_point.to_bytes() if share.common_point else None,
        encrypted=share.encrypted_point.to_bytes() if share.encrypted_point else None,
        versions=_raw_versions(share),
        schema=2 if _has_commitments(share) else 1,
    )


SHARE = sample_share(1, threshold=1, nodes=3).with_document_key(
    Point.base_mul(Scalar(5)), Point.base_mul(Scalar(6))
)
RECORD = encode_key_share(SHARE.with_version(sample_version(9, nodes=2)))
#: schema 2: a version with commitments, then one without
SHARE_V2 = sample_share(2, threshold=1, nodes=3, with_commitments=True).with_document_key(
    Point.base_mul(Scalar(5)), Point.base_mul(Scalar(6))
)
RECORD_V2 = encode_key_share(SHARE_V2.with_version(sample_version(9, nodes=2)))

# --- round trip and layout ---------------------------------------------------------------


@given(key_shares())
def test_round_trip(share: KeyShare) -> None:
    record = encode_key_share(share)
    assert record[0] == (SCHEMA_VERSION if _has_commitments(share) else 1)
    decoded = decode_key_share(record)
    assert decoded == share
    assert encode_key_share(decoded) == record


@given(key_shares())
def test_encoding_follows_the_documented_layout(share: KeyShare) -> None:
    assert encode_key_share(share) == _raw(share)


def test_accepts_bytearray_and_memoryview() -> None:
    assert decode_key_share(bytearray(RECORD)) == decode_key_share(memoryview(RECORD))


# --- every corruption is a CorruptRecord ---------------------------------------------------


@pytest.mark.parametrize("record", [RECORD, RECORD_V2], ids=["schema 1", "schema 2"])
def test_every_truncation_is_corrupt(record: bytes) -> None:
    for end in range(len(record)):
        with pytest.raises(CorruptRecord):
            decode_key_share(record[:end])


@pytest.mark.parametrize("record", [RECORD, RECORD_V2], ids=["schema 1", "schema 2"])
@pytest.mark.parametrize("mask", [0x01, 0x80, 0xFF])
def test_every_byte_flip_is_corrupt(mask: int, record: bytes) -> None:
    for position in range(len(record)):
        corrupted = bytearray(record)
        corrupted[position] ^= mask
        with pytest.raises(CorruptRecord):
            decode_key_share(bytes(corrupted))


@given(key_shares(), st.data())
def test_random_mutations_are_corrupt(share: KeyShare, data: st.DataObject) -> None:
    record = bytearray(encode_key_share(share))
    position = data.draw(st.integers(0, len(record) - 1))
    kind = data.draw(st.sampled_from(["xor", "insert", "delete"]))
    if kind == "xor":
        record[position] ^= data.draw(st.integers(1, 255))
    elif kind == "insert":
        record[position:position] = data.draw(st.binary(min_size=1, max_size=8))
    else:
        del record[position : position + data.draw(st.integers(1, 8))]
    with pytest.raises(CorruptRecord):
        decode_key_share(bytes(record))


@given(st.binary(max_size=600))
def test_arbitrary_bytes_never_raise_anything_but_corrupt(data: bytes) -> None:
    with pytest.raises(CorruptRecord):
        decode_key_share(data)


@given(st.binary(min_size=1, max_size=40))
def test_trailing_garbage_is_corrupt(garbage: bytes) -> None:
    with pytest.raises(CorruptRecord, match="trailing"):
        decode_key_share(RECORD + garbage)


@pytest.mark.parametrize("schema", [0, 3, 0x7F, 0xFF])
def test_unknown_schema_version_is_corrupt(schema: int) -> None:
    with pytest.raises(CorruptRecord, match=f"unknown schema version {schema}"):
        decode_key_share(bytes([schema]) + RECORD[1:])


def test_empty_record_and_non_bytes_are_corrupt() -> None:
    with pytest.raises(CorruptRecord, match="empty"):
        decode_key_share(b"")
    with pytest.raises(CorruptRecord, match="str"):
        decode_key_share("01")  # type: ignore[arg-type]


def test_truncation_names_the_field() -> None:
    with pytest.raises(CorruptRecord, match="truncated: public"):
        decode_key_share(RECORD[:40])


def test_checksum_mismatch_is_named() -> None:
    corrupted = RECORD[:-1] + bytes([RECORD[-1] ^ 1])
    with pytest.raises(CorruptRecord, match="checksum"):
        decode_key_share(corrupted)


# --- records with a valid checksum whose values are wrong ---------------------------------

NODE_A, NODE_B = sorted([sample_node(3, 0), sample_node(3, 1)])
ONE, TWO = Scalar(1).to_bytes(), Scalar(2).to_bytes()
GOOD_VERSION: RawVersion = (bytes(32), [(NODE_A, ONE), (NODE_B, TWO)], TWO)
NOT_A_POINT = bytes(64)
TOO_BIG = N.to_bytes(32, "big")


def test_the_hand_built_baseline_decodes() -> None:
    share = decode_key_share(build_record(threshold=1, versions=[GOOD_VERSION]))
    assert share.threshold == 1
    assert share.versions[0].nodes == (NODE_A, NODE_B)


@pytest.mark.parametrize(
    ("record", "message"),
    [
        (build_record(public=NOT_A_POINT, versions=[GOOD_VERSION]), "public"),
        (
            build_record(common=NOT_A_POINT, encrypted=NODE_A, versions=[GOOD_VERSION]),
            "common_point",
        ),
        (
            build_record(common=NODE_A, encrypted=NOT_A_POINT, versions=[GOOD_VERSION]),
            "encrypted_point",
        ),
        (build_record(common=NODE_A, versions=[GOOD_VERSION]), "together"),
        (build_record(common_flag=2, versions=[GOOD_VERSION]), "flag is 2"),
        (build_record(threshold=2, versions=[GOOD_VERSION]), "threshold 2"),
        (build_record(versions=[]), "version count is zero"),
        (build_record(versions=[GOOD_VERSION], version_count=1000), "version count"),
        (build_record(versions=[GOOD_VERSION], node_count=0), "node count of version 0 is zero"),
        (build_record(versions=[GOOD_VERSION], node_count=2**32 - 1), "node count of version 0"),
        (build_record(versions=[GOOD_VERSION, GOOD_VERSION]), "distinct"),
        (build_record(versions=[(bytes(32), [(NODE_B, ONE), (NODE_A, TWO)], TWO)]), "ascending"),
        (build_record(versions=[(bytes(32), [(NODE_A, ONE), (NODE_A, TWO)], TWO)]), "ascending"),
        (build_record(versions=[(bytes(32), [(NODE_A, ONE), (NODE_B, ONE)], TWO)]), "distinct"),
        (build_record(versions=[(bytes(32), [(NODE_A, bytes(32))], TWO)]), "nonzero"),
        (build_record(versions=[(bytes(32), [(NODE_A, TOO_BIG)], TWO)]), "id number 0"),
        (build_record(versions=[(bytes(32), [(NODE_A, ONE)], TOO_BIG)]), "secret share"),
        (build_record(versions=[(bytes(32), [(NOT_A_POINT, ONE)], TWO)]), "not a point"),
    ],
)
def test_invalid_values_are_corrupt_and_named(record: bytes, message: str) -> None:
    with pytest.raises(CorruptRecord, match=message):
        decode_key_share(record)


def test_a_zero_secret_share_is_a_valid_share() -> None:
    share = decode_key_share(build_record(versions=[(bytes(32), [(NODE_A, ONE)], bytes(32))]))
    assert share.versions[0].secret_share.is_zero()


# --- schema 1 records written before schema 2, and schema 2 -------------------------------

FIXTURES = json.loads((Path(__file__).parent / "data" / "key_records_v1.json").read_text())


def _fixture_share(entry: dict[str, Any]) -> KeyShare:
    def point(value: str | None) -> Point | None:
        return None if value is None else Point.from_bytes(bytes.fromhex(value))

    public = point(entry["public"])
    assert public is not None
    return KeyShare(
        author=Address(bytes.fromhex(entry["author"])),
        threshold=entry["threshold"],
        public=public,
        common_point=point(entry["common_point"]),
        encrypted_point=point(entry["encrypted_point"]),
        versions=tuple(
            KeyShareVersion(
                bytes.fromhex(v["hash"]),
                tuple(
                    (NodeId(bytes.fromhex(n)), Scalar.from_bytes(bytes.fromhex(x)))
                    for n, x in v["id_numbers"]
                ),
                Scalar.from_bytes(bytes.fromhex(v["secret_share"])),
            )
            for v in entry["versions"]
        ),
    )


@pytest.mark.parametrize("entry", FIXTURES["records"], ids=lambda e: e["name"])
def test_schema_1_records_of_the_previous_encoder_still_decode(entry: dict[str, Any]) -> None:
    record = bytes.fromhex(entry["record"])
    assert record[0] == 1
    share = decode_key_share(record)
    assert share == _fixture_share(entry)
    assert all(version.commitments is None for version in share.versions)
    # rewritten without commitments, the record stays schema 1, byte for byte
    assert encode_key_share(share) == record


def test_a_schema_1_record_rewritten_with_a_document_key_stays_schema_1() -> None:
    entry = FIXTURES["records"][0]
    share = decode_key_share(bytes.fromhex(entry["record"]))
    record = encode_key_share(
        share.with_document_key(Point.base_mul(Scalar(8)), Point.base_mul(Scalar(9)))
    )
    assert record[0] == 1
    assert decode_key_share(record).last_version().commitments is None


def test_a_version_with_commitments_makes_the_record_schema_2() -> None:
    old = decode_key_share(bytes.fromhex(FIXTURES["records"][0]["record"]))
    commitments = (old.public, Point.base_mul(Scalar(77)))
    new_version = dataclasses.replace(sample_version(21, nodes=3), commitments=commitments)
    record = encode_key_share(old.with_version(new_version))
    assert record[0] == SCHEMA_VERSION == 2
    decoded = decode_key_share(record)
    assert decoded.versions[0].commitments is None
    assert decoded.versions[1].commitments == commitments


def test_the_schema_2_sample_follows_the_hand_built_layout() -> None:
    assert RECORD_V2[0] == 2
    assert _raw(decode_key_share(RECORD_V2)) == RECORD_V2


GOOD_COMMITMENTS = [Point.base_mul(Scalar(3)).to_bytes(), Point.base_mul(Scalar(4)).to_bytes()]
GOOD_VERSION_2: RawVersion2 = (*GOOD_VERSION, GOOD_COMMITMENTS)


def test_the_hand_built_schema_2_baseline_decodes() -> None:
    share = decode_key_share(build_record(schema=2, threshold=1, versions=[GOOD_VERSION_2]))
    commitments = share.versions[0].commitments
    assert commitments is not None
    assert [c.to_bytes() for c in commitments] == GOOD_COMMITMENTS


@pytest.mark.parametrize(
    ("record", "message"),
    [
        (build_record(schema=2, threshold=1, versions=[GOOD_VERSION_2], commitments_flag=2),
         "commitments of version 0 flag is 2"),
        (build_record(schema=2, threshold=1, versions=[GOOD_VERSION_2], commitment_count=0),
         "commitment count of version 0 is zero"),
        (build_record(schema=2, threshold=1, versions=[GOOD_VERSION_2], commitment_count=3),
         "commitment count of version 0"),
        (build_record(schema=2, threshold=1, versions=[GOOD_VERSION_2], commitment_count=1),
         "trailing|checksum|truncated"),
        (build_record(schema=2, threshold=1, versions=[(*GOOD_VERSION, GOOD_COMMITMENTS[:1])]),
         "needs 2 commitments"),
        (build_record(schema=2, threshold=0, versions=[GOOD_VERSION_2]), "needs 1 commitments"),
        (build_record(schema=2, threshold=1, versions=[(*GOOD_VERSION, GOOD_COMMITMENTS[::-1])]),
         "not the server key public"),
        (build_record(schema=2, threshold=1, versions=[(*GOOD_VERSION, [GOOD_COMMITMENTS[0],
                                                                        NOT_A_POINT])]),
         "commitment 1 of version 0"),
        # a schema 1 record read as schema 2 lacks the flags
        (bytes([2]) + build_record(threshold=1, versions=[GOOD_VERSION])[1:],
         "flag|truncated|checksum"),
        (build_record(schema=2, threshold=1, versions=[GOOD_VERSION])[:-4], "truncated"),
    ],
)  # fmt: skip
def test_invalid_schema_2_values_are_corrupt_and_named(record: bytes, message: str) -> None:
    with pytest.raises(CorruptRecord, match=message):
        decode_key_share(record)


@st.composite
def schema_2_records(draw: st.DrawFn) -> bytes:
    share = draw(key_shares())
    if not _has_commitments(share):
        rest = tuple(Point.base_mul(Scalar(k + 2)) for k in range(share.threshold))
        first = dataclasses.replace(share.versions[0], commitments=(share.public, *rest))
        share = dataclasses.replace(share, versions=(first, *share.versions[1:]))
    record = encode_key_share(share)
    assert record[0] == 2
    return record


@given(schema_2_records(), st.data())
def test_every_malformed_schema_2_record_raises_corrupt_record_only(
    record: bytes, data: st.DataObject
) -> None:
    mutated = bytearray(record)
    kind = data.draw(st.sampled_from(["xor", "insert", "delete", "truncate", "resum"]))
    position = data.draw(st.integers(0, len(mutated) - 1))
    if kind == "xor":
        mutated[position] ^= data.draw(st.integers(1, 255))
    elif kind == "insert":
        mutated[position:position] = data.draw(st.binary(min_size=1, max_size=70))
    elif kind == "delete":
        del mutated[position : position + data.draw(st.integers(1, 70))]
    elif kind == "truncate":
        del mutated[position:]
    else:
        # change a byte of the body and fix the checksum: only the value checks remain
        body = bytearray(mutated[:-4])
        spot = data.draw(st.integers(1, len(body) - 1))
        body[spot] ^= data.draw(st.integers(1, 255))
        mutated = body + struct.pack(">I", zlib.crc32(body))
    try:
        decoded = decode_key_share(bytes(mutated))
    except CorruptRecord:
        return
    # a re-checksummed change may still be a valid record (e.g. another author byte): then
    # it is a KeyShare whose invariants hold, and it round-trips
    assert kind == "resum"
    assert decode_key_share(encode_key_share(decoded)) == decoded


def test_tombstone_round_trip_and_corruption() -> None:
    from secretstore.errors import CorruptRecord as Corrupt
    from secretstore.storage.codec import decode_tombstone, encode_tombstone
    from secretstore.storage.model import Tombstone
    from secretstore.types import Address, ServerKeyId

    tombstone = Tombstone(
        ServerKeyId(b"\x01" * 32), Point.base_mul(Scalar(5)), Address(b"\x02" * 20), b"\x03" * 65
    )
    record = encode_tombstone(tombstone)
    assert decode_tombstone(record) == tombstone
    for bad in (record[:-1], record + b"\x00", b"\x02" + record[1:]):
        with pytest.raises(Corrupt):
            decode_tombstone(bad)
    for offset in range(0, len(record), 7):
        flipped = bytearray(record)
        flipped[offset] ^= 0x10
        with pytest.raises(Corrupt):
            decode_tombstone(bytes(flipped))
