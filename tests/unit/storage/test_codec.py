"""The stored-record codec: round trip, the documented layout, and every corruption rejected
with CorruptRecord (and nothing else)."""

from __future__ import annotations

import struct
import zlib
from collections.abc import Sequence

import pytest
from hypothesis import given
from hypothesis import strategies as st

from secretstore.crypto.curve import N, Point, Scalar
from secretstore.errors import CorruptRecord
from secretstore.storage.codec import SCHEMA_VERSION, decode_key_share, encode_key_share
from secretstore.storage.model import KeyShare
from tests.unit.storage.strategies import key_shares, sample_node, sample_share, sample_version

RawVersion = tuple[bytes, Sequence[tuple[bytes, bytes]], bytes]


def _u32(value: int) -> bytes:
    return struct.pack(">I", value)


def build_record(
    *,
    author: bytes = bytes(20),
    threshold: int = 0,
    public: bytes = Point.base_mul(Scalar(3)).to_bytes(),
    common: bytes | None = None,
    encrypted: bytes | None = None,
    versions: Sequence[RawVersion] = (),
    schema: int = 1,
    common_flag: int | None = None,
    version_count: int | None = None,
    node_count: int | None = None,
) -> bytes:
    """The record layout written out independently of the codec, with a valid checksum."""
    body = bytes([schema]) + author + _u32(threshold) + public
    for flag, point in ((common_flag, common), (None, encrypted)):
        body += bytes([flag if flag is not None else int(point is not None)])
        body += point or b""
    body += _u32(len(versions) if version_count is None else version_count)
    for hash_, pairs, share in versions:
        body += hash_ + _u32(len(pairs) if node_count is None else node_count)
        body += b"".join(node + number for node, number in pairs)
        body += share
    return body + _u32(zlib.crc32(body))


def _raw_versions(share: KeyShare) -> list[RawVersion]:
    return [
        (v.hash, [(n, s.to_bytes()) for n, s in v.id_numbers], v.secret_share.to_bytes())
        for v in share.versions
    ]


def _raw(share: KeyShare) -> bytes:
    return build_record(
        author=share.author,
        threshold=share.threshold,
        public=share.public.to_bytes(),
        common=share.common_point.to_bytes() if share.common_point else None,
        encrypted=share.encrypted_point.to_bytes() if share.encrypted_point else None,
        versions=_raw_versions(share),
    )


SHARE = sample_share(1, threshold=1, nodes=3).with_document_key(
    Point.base_mul(Scalar(5)), Point.base_mul(Scalar(6))
)
RECORD = encode_key_share(SHARE.with_version(sample_version(9, nodes=2)))

# --- round trip and layout ---------------------------------------------------------------


@given(key_shares())
def test_round_trip(share: KeyShare) -> None:
    record = encode_key_share(share)
    assert record[0] == SCHEMA_VERSION == 1
    decoded = decode_key_share(record)
    assert decoded == share
    assert encode_key_share(decoded) == record


@given(key_shares())
def test_encoding_follows_the_documented_layout(share: KeyShare) -> None:
    assert encode_key_share(share) == _raw(share)


def test_accepts_bytearray_and_memoryview() -> None:
    assert decode_key_share(bytearray(RECORD)) == decode_key_share(memoryview(RECORD))


# --- every corruption is a CorruptRecord ---------------------------------------------------


def test_every_truncation_is_corrupt() -> None:
    for end in range(len(RECORD)):
        with pytest.raises(CorruptRecord):
            decode_key_share(RECORD[:end])


@pytest.mark.parametrize("mask", [0x01, 0x80, 0xFF])
def test_every_byte_flip_is_corrupt(mask: int) -> None:
    for position in range(len(RECORD)):
        corrupted = bytearray(RECORD)
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


@pytest.mark.parametrize("schema", [0, 2, 0x7F, 0xFF])
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
