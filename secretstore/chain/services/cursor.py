"""Where a node's service listener stopped: the last block whose request logs it handled.

One record per service contract, in the node's own LevelDB key database under
b"\\x03service/cursor/" + the contract's 20-byte address: the block's number (8 bytes,
big-endian) and hash (32), written with sync=True. A restarted node reads a contract's logs
from the block after it (so requests mined while it was down are answered), and a contract it
has no record of from the confirmed block on (and its pending requests are read once).
"""

from __future__ import annotations

from typing import Any, Final, Protocol

from secretstore.errors import CorruptRecord
from secretstore.storage.leveldb import LevelDbKeyStorage
from secretstore.types import Address, BlockRef, Hash256

#: The prefix of every cursor record's key in the key database.
CURSOR_PREFIX: Final = b"\x03service/cursor/"


def cursor_key(contract: Address) -> bytes:
    if len(contract) != 20:
        raise ValueError("a contract address is 20 bytes")
    return CURSOR_PREFIX + contract


def encode_cursor(block: BlockRef) -> bytes:
    return block.number.to_bytes(8, "big") + block.hash


def decode_cursor(contract: Address, raw: bytes) -> BlockRef:
    if len(raw) != 40:
        raise CorruptRecord(
            f"the service cursor of contract 0x{contract.hex()} is {len(raw)} bytes, not 40"
        )
    return BlockRef(int.from_bytes(raw[:8], "big"), Hash256(raw[8:]))


class CursorStore(Protocol):
    """The listener's cursors, one per contract."""

    def get(self, contract: Address) -> BlockRef | None: ...

    def put(self, contract: Address, block: BlockRef) -> None:
        """Durably (StorageError when it cannot be written)."""
        ...


class LevelDbCursors:
    """Cursors in the node's key database (sharing its handle and lock)."""

    def __init__(self, storage: LevelDbKeyStorage) -> None:
        self._storage = storage

    def get(self, contract: Address) -> BlockRef | None:
        key = cursor_key(contract)
        raw: bytes | None = self._storage.with_db("read a service cursor", lambda db: db.get(key))
        return None if raw is None else decode_cursor(contract, raw)

    def put(self, contract: Address, block: BlockRef) -> None:
        key, value = cursor_key(contract), encode_cursor(block)

        def write(db: Any) -> None:
            db.put(key, value, sync=True)

        self._storage.with_db("write a service cursor", write)


class MemoryCursors:
    """Cursors in memory (tests)."""

    def __init__(self) -> None:
        self.records: dict[Address, BlockRef] = {}

    def get(self, contract: Address) -> BlockRef | None:
        return self.records.get(contract)

    def put(self, contract: Address, block: BlockRef) -> None:
        self.records[contract] = block
