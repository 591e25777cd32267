"""The strict, versioned binary encoding of a stored KeyShare (pure).

Schema version 1 (integers are unsigned big-endian):

    u8   schema version (1)
    20   author
    u32  threshold
    64   public (x‖y)
    u8   common point flag (0 or 1), then 64 bytes common point if 1
    u8   encrypted point flag (0 or 1), then 64 bytes encrypted point if 1
    u32  version count (≥ 1), then per version, oldest first:
         32   version hash
         u32  node count (≥ 1), then per node in strictly ascending node id order:
              64  node id
              32  id number (nonzero, below n)
         32   secret share (below n)
    u32  CRC-32 of every byte before it

Schema version 2 is version 1 (with 2 as its first byte) where every version ends, after its
secret share, with the Feldman commitments of the version's key polynomial:

         u8   commitments flag (0 or 1), then if 1:
              u32  commitment count (= threshold + 1)
              64   per commitment C_0..C_t (C_0 = public; none the identity)

`encode_key_share` writes schema 1 when no version has commitments (the bytes of a record
written before schema 2 existed, so a key that was never given commitments stays readable by
an older secretstore) and schema 2 otherwise. A version 1 record decodes as versions without
commitments; rewriting it (a document key stored, a version added) keeps it schema 1 and
without commitments until a version with commitments is added.

Decoding rejects anything else with CorruptRecord saying what was wrong: an unknown schema
version, a truncated field, trailing bytes, a bad flag, a checksum mismatch, an invalid
point or scalar, or fields that break a KeyShare invariant (e.g. commitments whose number is
not threshold + 1 or whose first is not the public).
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass
from itertools import pairwise
from typing import Final

from secretstore.crypto.curve import Point, Scalar
from secretstore.errors import CorruptRecord, CryptoError, InvalidKeyShare
from secretstore.storage.model import KeyShare, KeyShareVersion, Tombstone
from secretstore.types import Address, NodeId, ServerKeyId

#: The schema version `encode_key_share` writes for a share with commitments.
SCHEMA_VERSION: Final = 2
#: The schema version it writes for a share without any (the original layout).
SCHEMA_VERSION_WITHOUT_COMMITMENTS: Final = 1
#: Every schema version `decode_key_share` reads.
SUPPORTED_SCHEMA_VERSIONS: Final = frozenset({1, 2})

_U32: Final = struct.Struct(">I")
_NODE_SIZE: Final = 64 + 32
_MIN_VERSION_SIZE: Final = 32 + 4 + _NODE_SIZE + 32
_POINT_SIZE: Final = 64
_CHECKSUM_SIZE: Final = 4


def encode_key_share(share: KeyShare) -> bytes:
    """The record of `share`: schema 2 if a version has commitments, else schema 1."""
    with_commitments = any(version.commitments is not None for version in share.versions)
    schema = SCHEMA_VERSION if with_commitments else SCHEMA_VERSION_WITHOUT_COMMITMENTS
    out = bytearray([schema])
    out += share.author
    out += _U32.pack(share.threshold)
    out += share.public.to_bytes()
    for point in (share.common_point, share.encrypted_point):
        if point is None:
            out.append(0)
        else:
            out.append(1)
            out += point.to_bytes()
    out += _U32.pack(len(share.versions))
    for version in share.versions:
        out += version.hash
        out += _U32.pack(len(version.id_numbers))
        for node, number in version.id_numbers:
            out += node
            out += number.to_bytes()
        out += version.secret_share.to_bytes()
        if with_commitments:
            if version.commitments is None:
                out.append(0)
            else:
                out.append(1)
                out += _U32.pack(len(version.commitments))
                out += b"".join(point.to_bytes() for point in version.commitments)
    out += _U32.pack(zlib.crc32(out))
    return bytes(out)


# --- decoding: first the layout (lengths, flags, checksum), then the values ----------------


@dataclass(frozen=True, slots=True)
class _RawVersion:
    hash: bytes
    id_numbers: tuple[tuple[bytes, bytes], ...]
    secret_share: bytes
    commitments: tuple[bytes, ...] | None


@dataclass(frozen=True, slots=True)
class _RawShare:
    author: bytes
    threshold: int
    public: bytes
    common_point: bytes | None
    encrypted_point: bytes | None
    versions: tuple[_RawVersion, ...]


class _Reader:
    """Reads length-checked fields from a record, naming the field when bytes run out."""

    __slots__ = ("_data", "_pos")

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._pos = 0

    @property
    def remaining(self) -> int:
        return len(self._data) - self._pos

    @property
    def position(self) -> int:
        return self._pos

    def take(self, size: int, what: str) -> bytes:
        if self.remaining < size:
            raise CorruptRecord(
                f"truncated: {what} needs {size} bytes at offset {self._pos}, {self.remaining} left"
            )
        chunk = self._data[self._pos : self._pos + size]
        self._pos += size
        return chunk

    def u8(self, what: str) -> int:
        return self.take(1, what)[0]

    def u32(self, what: str) -> int:
        value: int = _U32.unpack(self.take(4, what))[0]
        return value

    def count(self, what: str, min_item_size: int) -> int:
        """A u32 item count of at least 1 whose items can fit in the bytes left."""
        value = self.u32(what)
        if value == 0:
            raise CorruptRecord(f"{what} is zero")
        if value * min_item_size > self.remaining - _CHECKSUM_SIZE:
            raise CorruptRecord(
                f"truncated: {what} {value} does not fit in the {self.remaining} bytes left"
            )
        return value

    def flag(self, what: str) -> bool:
        flag = self.u8(f"{what} flag")
        if flag > 1:
            raise CorruptRecord(f"{what} flag is {flag}, not 0 or 1")
        return flag == 1

    def optional(self, size: int, what: str) -> bytes | None:
        return self.take(size, what) if self.flag(what) else None


def _read_layout(data: bytes) -> _RawShare:
    reader = _Reader(data)
    schema = reader.u8("schema version")
    author = reader.take(20, "author")
    threshold = reader.u32("threshold")
    public = reader.take(64, "public")
    common_point = reader.optional(64, "common_point")
    encrypted_point = reader.optional(64, "encrypted_point")
    versions: list[_RawVersion] = []
    for v in range(reader.count("version count", _MIN_VERSION_SIZE)):
        hash_ = reader.take(32, f"hash of version {v}")
        nodes = reader.count(f"node count of version {v}", _NODE_SIZE)
        pairs = tuple(
            (
                reader.take(64, f"node id {i} of version {v}"),
                reader.take(32, f"id number {i} of version {v}"),
            )
            for i in range(nodes)
        )
        secret_share = reader.take(32, f"secret share of version {v}")
        commitments = None
        if schema >= 2 and reader.flag(f"commitments of version {v}"):
            count = reader.count(f"commitment count of version {v}", _POINT_SIZE)
            commitments = tuple(
                reader.take(_POINT_SIZE, f"commitment {k} of version {v}") for k in range(count)
            )
        versions.append(_RawVersion(hash_, pairs, secret_share, commitments))
    body_end = reader.position
    checksum = reader.u32("checksum")
    if reader.remaining:
        raise CorruptRecord(f"{reader.remaining} trailing bytes after the checksum")
    if zlib.crc32(data[:body_end]) != checksum:
        raise CorruptRecord("checksum mismatch")
    return _RawShare(author, threshold, public, common_point, encrypted_point, tuple(versions))


def _point(raw: bytes, what: str) -> Point:
    try:
        return Point.from_bytes(raw)
    except CryptoError as exc:
        raise CorruptRecord(f"{what}: {exc}") from exc


def _scalar(raw: bytes, what: str) -> Scalar:
    try:
        return Scalar.from_bytes(raw)
    except CryptoError as exc:
        raise CorruptRecord(f"{what}: {exc}") from exc


def _build_version(raw: _RawVersion, v: int) -> KeyShareVersion:
    nodes = [node for node, _ in raw.id_numbers]
    if any(a >= b for a, b in pairwise(nodes)):
        raise CorruptRecord(f"node ids of version {v} are not in strictly ascending order")
    # Node ids are checked to be curve points by KeyShareVersion itself.
    pairs = tuple(
        (NodeId(node), _scalar(number, f"id number {i} of version {v}"))
        for i, (node, number) in enumerate(raw.id_numbers)
    )
    secret_share = _scalar(raw.secret_share, f"secret share of version {v}")
    commitments = None
    if raw.commitments is not None:
        commitments = tuple(
            _point(point, f"commitment {k} of version {v}")
            for k, point in enumerate(raw.commitments)
        )
    try:
        return KeyShareVersion(raw.hash, pairs, secret_share, commitments)
    except InvalidKeyShare as exc:
        raise CorruptRecord(f"version {v}: {exc}") from exc


def decode_key_share(data: bytes | bytearray | memoryview) -> KeyShare:
    """The KeyShare in a record; CorruptRecord (and nothing else) if it is not a valid one."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise CorruptRecord(f"a record is bytes, got {type(data).__name__}")
    data = bytes(data)
    if not data:
        raise CorruptRecord("empty record")
    schema = data[0]
    if schema not in SUPPORTED_SCHEMA_VERSIONS:
        raise CorruptRecord(
            f"unknown schema version {schema} (supported: {sorted(SUPPORTED_SCHEMA_VERSIONS)})"
        )
    raw = _read_layout(data)
    common_point = None if raw.common_point is None else _point(raw.common_point, "common_point")
    encrypted_point = (
        None if raw.encrypted_point is None else _point(raw.encrypted_point, "encrypted_point")
    )
    versions = tuple(_build_version(version, v) for v, version in enumerate(raw.versions))
    try:
        return KeyShare(
            author=Address(raw.author),
            threshold=raw.threshold,
            public=_point(raw.public, "public"),
            common_point=common_point,
            encrypted_point=encrypted_point,
            versions=versions,
        )
    except InvalidKeyShare as exc:
        raise CorruptRecord(f"inconsistent key share: {exc}") from exc


# --- tombstones ------------------------------------------------------------------------------

#: The layout version of a tombstone record.
TOMBSTONE_VERSION: Final = 1
_TOMBSTONE_SIZE: Final = 1 + 32 + 64 + 20 + 65 + _CHECKSUM_SIZE


def encode_tombstone(tombstone: Tombstone) -> bytes:
    """u8 version (1) ‖ key id 32 ‖ public 64 ‖ author 20 ‖ signature 65 ‖ u32 CRC-32."""
    body = (
        bytes([TOMBSTONE_VERSION])
        + tombstone.key_id
        + tombstone.public.to_bytes()
        + tombstone.author
        + tombstone.signature
    )
    return body + _U32.pack(zlib.crc32(body))


def decode_tombstone(data: bytes | bytearray | memoryview) -> Tombstone:
    """The Tombstone in a record; CorruptRecord (and nothing else) if it is not a valid one."""
    data = bytes(data)
    if len(data) != _TOMBSTONE_SIZE:
        raise CorruptRecord(f"a tombstone record is {_TOMBSTONE_SIZE} bytes, got {len(data)}")
    if data[0] != TOMBSTONE_VERSION:
        raise CorruptRecord(f"unknown tombstone version {data[0]}")
    body, checksum = data[:-_CHECKSUM_SIZE], data[-_CHECKSUM_SIZE:]
    if _U32.pack(zlib.crc32(body)) != checksum:
        raise CorruptRecord("tombstone checksum mismatch")
    try:
        return Tombstone(
            ServerKeyId(body[1:33]),
            _point(body[33:97], "tombstone public"),
            Address(body[97:117]),
            body[117:182],
        )
    except InvalidKeyShare as exc:
        raise CorruptRecord(f"invalid tombstone: {exc}") from exc
