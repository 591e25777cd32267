"""What an audit entry records, and its strict binary encoding (pure).

`AuditFacts` are the public facts of one operation a node took part in: what (operation),
on which key, in which session, for whom (requester), with whom (master, participants),
which key version, the message hash of a signing, the chain block the session's access was
decided at. Nothing secret: no share, shadow, document key, signature share or signature.

Facts encoding (integers unsigned big-endian):

    u8   operation code (Operation)
    32   key id
    32   session id
    64   master node id
    u8   flag, then 20 bytes requester address if 1
    u8   flag, then 32 bytes key version hash if 1
    u8   flag, then 32 bytes message hash if 1
    u8   flag, then u64 block number ‖ 32 bytes block hash if 1
    u32  participant count (1 ..= 65535), then 64 bytes per node id, strictly ascending

Entry record (what the log stores at position `index`):

    u8   format version (1)
    u64  index (0 for the first entry)
    32   previous: keccak256 of the whole record of entry index-1 (32 zero bytes for entry 0)
    u64  time, milliseconds since the Unix epoch (never less than the previous entry's)
    ...  the facts, as above
    65   receipt: the node's signature over the facts (`receipt_digest`)
    65   signature: the node's signature over everything before it (`entry_digest`)

An entry's hash is keccak256 of its whole record; the node id is the key its signatures
recover to (it is not stored). Decoding refuses anything else with CorruptRecord.
"""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass
from itertools import pairwise
from typing import Final

from secretstore.crypto.hashing import keccak256
from secretstore.errors import CorruptRecord, InvalidEncoding
from secretstore.types import (
    Address,
    BlockRef,
    Hash256,
    MessageHash,
    NodeId,
    ServerKeyId,
    SessionId,
)

#: The entry format this code writes and reads.
ENTRY_FORMAT: Final = 1
#: What a receipt's signature covers: keccak256(RECEIPT_DOMAIN ‖ node id ‖ facts).
RECEIPT_DOMAIN: Final = b"secretstore audit receipt v1"
#: What an entry's signature covers: keccak256(ENTRY_DOMAIN ‖ the record before it).
ENTRY_DOMAIN: Final = b"secretstore audit entry v1"
#: The `previous` of entry 0.
GENESIS: Final = bytes(32)
SIGNATURE_LENGTH: Final = 65
MAX_PARTICIPANTS: Final = 0xFFFF

_U32: Final = struct.Struct(">I")
_U64: Final = struct.Struct(">Q")


class Operation(enum.IntEnum):
    """What a node took part in. The name (lower case) is the operation's name in JSON and
    on the command line."""

    GENERATION = 1  # server key generation
    STORE = 2  # document key store
    RETRIEVAL = 3  # plain document key retrieval
    SHADOW_RETRIEVAL = 4  # document key shadow retrieval
    SCHNORR = 5  # Schnorr signing
    ECDSA = 6  # ECDSA signing
    NODE_SET_CHANGE = 7  # a key moved to a new node set (share add / redistribution)
    REFRESH = 8  # a key's shares refreshed in place
    DELETE = 9  # a key's share deleted from this node

    @property
    def label(self) -> str:
        return self.name.lower()

    @classmethod
    def of_label(cls, label: str) -> Operation:
        try:
            return cls[label.strip().upper()]
        except KeyError:
            names = ", ".join(op.label for op in cls)
            raise InvalidEncoding(f"unknown operation {label!r} (one of: {names})") from None


#: Operations that release something to a requester (they get receipts in the answer).
RELEASES: Final = frozenset(
    {Operation.RETRIEVAL, Operation.SHADOW_RETRIEVAL, Operation.SCHNORR, Operation.ECDSA}
)


def _check(value: bytes | None, length: int, what: str) -> None:
    if value is not None and (not isinstance(value, bytes) or len(value) != length):
        raise InvalidEncoding(f"{what} must be {length} bytes")


@dataclass(frozen=True, slots=True)
class AuditFacts:
    """The public facts of one operation (see the module docstring); `participants` are the
    nodes that took part with their shares (ascending), the master among them when it did."""

    operation: Operation
    key_id: ServerKeyId
    session_id: SessionId
    master: NodeId
    requester: Address | None
    participants: tuple[NodeId, ...]
    key_version: Hash256 | None = None
    message_hash: MessageHash | None = None
    block: BlockRef | None = None

    def __post_init__(self) -> None:
        _check(self.key_id, 32, "a key id")
        _check(self.session_id, 32, "a session id")
        _check(self.master, 64, "a master node id")
        _check(self.requester, 20, "a requester address")
        _check(self.key_version, 32, "a key version hash")
        _check(self.message_hash, 32, "a message hash")
        if not 1 <= len(self.participants) <= MAX_PARTICIPANTS:
            raise InvalidEncoding(f"an entry has 1 to {MAX_PARTICIPANTS} participants")
        for node in self.participants:
            _check(node, 64, "a participant node id")
        if any(a >= b for a, b in pairwise(self.participants)):
            raise InvalidEncoding("participants must be distinct and in ascending order")
        block = self.block
        if block is not None and (not 0 <= block.number < 1 << 64 or len(block.hash) != 32):
            raise InvalidEncoding("a chain block is a u64 number and a 32-byte hash")


def facts_of(
    operation: Operation,
    key_id: ServerKeyId,
    *,
    session_id: SessionId,
    master: NodeId,
    requester: Address | None,
    participants: frozenset[NodeId] | tuple[NodeId, ...],
    key_version: bytes | None = None,
    message_hash: bytes | None = None,
    block: BlockRef | None = None,
) -> AuditFacts:
    """AuditFacts with the participants sorted."""
    return AuditFacts(
        operation,
        key_id,
        session_id,
        master,
        requester,
        tuple(sorted(participants)),
        None if key_version is None else Hash256(key_version),
        None if message_hash is None else MessageHash(message_hash),
        block,
    )


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One entry of a node's log (see the module docstring)."""

    index: int
    previous: bytes
    time_ms: int
    facts: AuditFacts
    receipt: bytes
    signature: bytes

    def __post_init__(self) -> None:
        if not 0 <= self.index < 1 << 64 or not 0 <= self.time_ms < 1 << 64:
            raise InvalidEncoding("an entry's index and time are u64")
        _check(self.previous, 32, "an entry's previous hash")
        _check(self.receipt, SIGNATURE_LENGTH, "a receipt")
        _check(self.signature, SIGNATURE_LENGTH, "an entry signature")


# --- encoding --------------------------------------------------------------------------------


def _optional(out: bytearray, value: bytes | None) -> None:
    if value is None:
        out.append(0)
    else:
        out.append(1)
        out += value


def encode_facts(facts: AuditFacts) -> bytes:
    out = bytearray([int(facts.operation)])
    out += facts.key_id + facts.session_id + facts.master
    _optional(out, facts.requester)
    _optional(out, facts.key_version)
    _optional(out, facts.message_hash)
    block = facts.block
    _optional(out, None if block is None else _U64.pack(block.number) + block.hash)
    out += _U32.pack(len(facts.participants))
    for node in facts.participants:
        out += node
    return bytes(out)


def receipt_digest(node: NodeId, facts: AuditFacts) -> bytes:
    """What `node`'s receipt of `facts` signs."""
    return keccak256(RECEIPT_DOMAIN + node + encode_facts(facts))


def entry_body(
    index: int, previous: bytes, time_ms: int, facts: AuditFacts, receipt: bytes
) -> bytes:
    """The record of an entry without its signature."""
    out = bytearray([ENTRY_FORMAT])
    out += _U64.pack(index) + previous + _U64.pack(time_ms)
    out += encode_facts(facts)
    out += receipt
    return bytes(out)


def entry_digest(body: bytes) -> bytes:
    """What an entry's signature signs."""
    return keccak256(ENTRY_DOMAIN + body)


def encode_entry(entry: AuditEntry) -> bytes:
    body = entry_body(entry.index, entry.previous, entry.time_ms, entry.facts, entry.receipt)
    return body + entry.signature


def entry_hash(record: bytes) -> bytes:
    """The hash the next entry's `previous` holds."""
    return keccak256(record)


# --- decoding --------------------------------------------------------------------------------


class _Reader:
    __slots__ = ("data", "pos")

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def take(self, n: int, what: str) -> bytes:
        end = self.pos + n
        if end > len(self.data):
            raise CorruptRecord(f"audit entry truncated in {what}")
        chunk = self.data[self.pos : end]
        self.pos = end
        return chunk

    def flag(self, what: str) -> bool:
        value = self.take(1, what)[0]
        if value > 1:
            raise CorruptRecord(f"audit entry has a bad {what} flag {value}")
        return value == 1

    def optional(self, n: int, what: str) -> bytes | None:
        return self.take(n, what) if self.flag(what) else None


def _decode_facts(reader: _Reader) -> AuditFacts:
    code = reader.take(1, "operation")[0]
    try:
        operation = Operation(code)
    except ValueError:
        raise CorruptRecord(f"audit entry has an unknown operation {code}") from None
    key_id = reader.take(32, "key id")
    session_id = reader.take(32, "session id")
    master = reader.take(64, "master")
    requester = reader.optional(20, "requester")
    version = reader.optional(32, "key version")
    message_hash = reader.optional(32, "message hash")
    raw_block = reader.optional(40, "block")
    count = _U32.unpack(reader.take(4, "participant count"))[0]
    if not 1 <= count <= MAX_PARTICIPANTS:
        raise CorruptRecord(f"audit entry has {count} participants")
    participants = tuple(NodeId(reader.take(64, "participants")) for _ in range(count))
    block = None
    if raw_block is not None:
        block = BlockRef(_U64.unpack(raw_block[:8])[0], Hash256(raw_block[8:]))
    try:
        return AuditFacts(
            operation,
            ServerKeyId(key_id),
            SessionId(session_id),
            NodeId(master),
            None if requester is None else Address(requester),
            participants,
            None if version is None else Hash256(version),
            None if message_hash is None else MessageHash(message_hash),
            block,
        )
    except InvalidEncoding as exc:
        raise CorruptRecord(f"audit entry: {exc}") from None


def decode_facts_at(data: bytes, start: int = 0) -> tuple[AuditFacts, int]:
    """The facts `encode_facts` wrote at `start` of `data`, and where they end; CorruptRecord
    saying what is wrong otherwise."""
    reader = _Reader(data)
    reader.pos = start
    return _decode_facts(reader), reader.pos


def decode_entry(record: bytes) -> AuditEntry:
    """The entry a record holds; CorruptRecord saying what is wrong otherwise."""
    reader = _Reader(record)
    version = reader.take(1, "format version")[0]
    if version != ENTRY_FORMAT:
        raise CorruptRecord(f"audit entry of unknown format {version}")
    index = _U64.unpack(reader.take(8, "index"))[0]
    previous = reader.take(32, "previous hash")
    time_ms = _U64.unpack(reader.take(8, "time"))[0]
    facts = _decode_facts(reader)
    receipt = reader.take(SIGNATURE_LENGTH, "receipt")
    signature = reader.take(SIGNATURE_LENGTH, "signature")
    if reader.pos != len(record):
        raise CorruptRecord(f"audit entry has {len(record) - reader.pos} trailing bytes")
    return AuditEntry(index, previous, time_ms, facts, receipt, signature)


def body_of(record: bytes) -> bytes:
    """The signed part of a record (everything but its signature)."""
    return record[:-SIGNATURE_LENGTH]
