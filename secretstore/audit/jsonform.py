"""The JSON of audit facts, release receipts and log entries (pure).

Hex as everywhere in the API (0x, lower case), numbers as JSON numbers, absent values as
null. `receipts_json` is the `receipts` field of a shadow retrieval body and the value of the
X-Secretstore-Receipts header (compact); `entry_json` is one line of `secretstore audit
export`, with the raw record so that the export can be verified again.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from secretstore.audit.chain import VerifiedEntry
from secretstore.audit.model import MAX_PARTICIPANTS, AuditFacts, Operation
from secretstore.audit.receipts import ReleaseReceipts
from secretstore.encoding import parse_hex, to_hex
from secretstore.errors import InvalidEncoding
from secretstore.types import (
    Address,
    BlockRef,
    Hash256,
    MessageHash,
    NodeId,
    ServerKeyId,
    SessionId,
)

_FACT_KEYS = (
    "operation",
    "key_id",
    "session",
    "master",
    "requester",
    "version",
    "message_hash",
    "block",
    "participants",
)


def _hex_or_null(value: bytes | None) -> str | None:
    return None if value is None else to_hex(value)


def facts_json(facts: AuditFacts) -> dict[str, Any]:
    block = facts.block
    return {
        "operation": facts.operation.label,
        "key_id": to_hex(facts.key_id),
        "session": to_hex(facts.session_id),
        "master": to_hex(facts.master),
        "requester": _hex_or_null(facts.requester),
        "version": _hex_or_null(facts.key_version),
        "message_hash": _hex_or_null(facts.message_hash),
        "block": None if block is None else {"number": block.number, "hash": to_hex(block.hash)},
        "participants": [to_hex(node) for node in facts.participants],
    }


def receipts_json(receipts: ReleaseReceipts) -> dict[str, Any]:
    return {**facts_json(receipts.facts), "signatures": [to_hex(s) for s in receipts.signatures]}


def receipts_header(receipts: ReleaseReceipts) -> str:
    """The X-Secretstore-Receipts header value: the receipts' JSON, compact (ASCII)."""
    return json.dumps(receipts_json(receipts), separators=(",", ":"))


def entry_json(item: VerifiedEntry) -> dict[str, Any]:
    entry = item.entry
    moment = datetime.fromtimestamp(entry.time_ms / 1000, UTC)
    return {
        "index": entry.index,
        "time": moment.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "time_ms": entry.time_ms,
        **facts_json(entry.facts),
        "previous": to_hex(entry.previous),
        "hash": to_hex(item.hash),
        "receipt": to_hex(entry.receipt),
        "signature": to_hex(entry.signature),
    }


# --- parsing ---------------------------------------------------------------------------------


def _hex(value: object, length: int, what: str) -> bytes:
    if not isinstance(value, str):
        raise InvalidEncoding(f"{what}: expected a hex string")
    return parse_hex(value, length, what=what)


def _optional_hex(value: object, length: int, what: str) -> bytes | None:
    return None if value is None else _hex(value, length, what)


def _block(value: object) -> BlockRef | None:
    if value is None:
        return None
    if not isinstance(value, dict) or set(value) != {"number", "hash"}:
        raise InvalidEncoding("receipts.block: expected {number, hash} or null")
    number = value["number"]
    if isinstance(number, bool) or not isinstance(number, int) or not 0 <= number < 1 << 64:
        raise InvalidEncoding("receipts.block.number: expected an unsigned 64-bit integer")
    return BlockRef(number, Hash256(_hex(value["hash"], 32, "receipts.block.hash")))


def parse_receipts(value: object) -> ReleaseReceipts:
    """The receipts of a shadow retrieval body's `receipts` field or of the header's JSON;
    InvalidEncoding naming the bad part."""
    if not isinstance(value, dict):
        raise InvalidEncoding("receipts: expected a JSON object")
    missing = [key for key in (*_FACT_KEYS, "signatures") if key not in value]
    if missing:
        raise InvalidEncoding(f"receipts: missing {', '.join(missing)}")
    operation = value["operation"]
    if not isinstance(operation, str):
        raise InvalidEncoding("receipts.operation: expected a name")
    nodes, signatures = value["participants"], value["signatures"]
    for name, items in (("participants", nodes), ("signatures", signatures)):
        if not isinstance(items, list) or not 1 <= len(items) <= MAX_PARTICIPANTS:
            raise InvalidEncoding(f"receipts.{name}: expected a list of 1 to {MAX_PARTICIPANTS}")
    if len(nodes) != len(signatures):
        raise InvalidEncoding("receipts: one signature per participant")
    requester = _optional_hex(value["requester"], 20, "receipts.requester")
    version = _optional_hex(value["version"], 32, "receipts.version")
    message_hash = _optional_hex(value["message_hash"], 32, "receipts.message_hash")
    facts = AuditFacts(
        Operation.of_label(operation),
        ServerKeyId(_hex(value["key_id"], 32, "receipts.key_id")),
        SessionId(_hex(value["session"], 32, "receipts.session")),
        NodeId(_hex(value["master"], 64, "receipts.master")),
        None if requester is None else Address(requester),
        tuple(NodeId(_hex(n, 64, f"receipts.participants[{i}]")) for i, n in enumerate(nodes)),
        None if version is None else Hash256(version),
        None if message_hash is None else MessageHash(message_hash),
        _block(value["block"]),
    )
    return ReleaseReceipts(
        facts,
        tuple(_hex(s, 65, f"receipts.signatures[{i}]") for i, s in enumerate(signatures)),
    )
