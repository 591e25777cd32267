"""Where a node's audit log lives: its own LevelDB key database (or memory, for tests).

An `AuditStore` is an append-only sequence of records by position. The LevelDB adapter keeps
entry i under b"\\x02audit/" + u64 i (big-endian, so LevelDB's order is the log's order) in
the node's key database. With `sync` (the `audit_sync` option) every append is written with
sync=True: it has reached the disk when it returns. Without it (the default) an append is in
LevelDB's log file when it returns — it survives the node's crash or kill -9, not a power loss
or kernel crash in the moments before the operating system writes it out — which keeps a
release one fsync cheaper; `flush` makes every append so far durable, and `AuditFlusher`
calls it every second (and when the node stops), so a power loss loses at most the entries
of the last second. Any failure raises AuditLogError naming the database and the position.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import struct
import threading
from collections.abc import Iterator
from typing import Any, Final, Protocol

import plyvel

from secretstore.errors import AuditLogError, CorruptRecord, StorageError
from secretstore.storage.leveldb import LevelDbKeyStorage

log = logging.getLogger(__name__)

#: The prefix of every audit entry's key in the key database.
AUDIT_PREFIX: Final = b"\x02audit/"
_U64: Final = struct.Struct(">Q")


def entry_key(position: int) -> bytes:
    return AUDIT_PREFIX + _U64.pack(position)


def position_of(key: bytes) -> int:
    """The position a LevelDB key names; CorruptRecord for a key of another shape."""
    raw = key[len(AUDIT_PREFIX) :] if key.startswith(AUDIT_PREFIX) else b""
    if len(raw) != _U64.size:
        raise CorruptRecord(f"an audit entry has a key of the wrong shape: {key!r}")
    position: int = _U64.unpack(raw)[0]
    return position


class AuditStore(Protocol):
    """An append-only log of records by position."""

    def append(self, position: int, record: bytes) -> None:
        """Write `record` at `position` durably; AuditLogError if it cannot be written (or
        the position is taken)."""
        ...

    def last(self) -> tuple[int, bytes] | None:
        """The record at the highest position, or None for an empty log."""
        ...

    def records(self) -> Iterator[tuple[int, bytes]]:
        """Every (position, record) in position order, from a snapshot taken now."""
        ...


class LevelDbAuditStore:
    """The audit log inside a node's LevelDB key database (shares its handle and lock).
    `sync`: every append is synced; False (the default): appends are synced by `flush`."""

    def __init__(self, storage: LevelDbKeyStorage, *, sync: bool = False) -> None:
        self._storage = storage
        self.sync = sync

    def flush(self) -> None:
        """Make every append so far durable (one synced, empty write; LevelDB syncs its log
        and, with it, every write before). StorageError when the database is closed or the
        write fails. Safe from another thread: it does not hold the storage's lock while
        the disk syncs, so reads go on meanwhile."""
        db = self._storage.with_db("flush the audit log", lambda db: db)
        try:
            db.write_batch(sync=True).write()
        except (plyvel.Error, RuntimeError) as exc:
            raise StorageError(f"flushing the audit log: {exc}") from exc

    def append(self, position: int, record: bytes) -> None:
        key = entry_key(position)

        def put(db: Any) -> None:
            if db.get(key) is not None:
                raise AuditLogError(f"audit entry {position} exists already")
            db.put(key, record, sync=self.sync)

        try:
            self._storage.with_db(f"append audit entry {position}", put)
        except AuditLogError:
            raise
        except StorageError as exc:
            raise AuditLogError(str(exc)) from exc

    def last(self) -> tuple[int, bytes] | None:
        def read(db: Any) -> tuple[int, bytes] | None:
            with db.iterator(prefix=AUDIT_PREFIX, reverse=True) as items:
                item = next(items, None)
            if item is None:
                return None
            return position_of(item[0]), item[1]

        return self._storage.with_db("read the last audit entry", read)

    def records(self) -> Iterator[tuple[int, bytes]]:
        snapshot = self._storage.with_db("read the audit log", lambda db: db.snapshot())
        return self._walk(snapshot)

    def _walk(self, snapshot: Any) -> Iterator[tuple[int, bytes]]:
        try:
            with snapshot.iterator(prefix=AUDIT_PREFIX) as items:
                for key, value in items:
                    yield position_of(key), value
        except plyvel.Error as exc:
            raise StorageError(f"reading the audit log: {exc}") from exc
        finally:
            snapshot.close()


class MemoryAuditStore:
    """An audit log in a dict. `fail`: the text of the AuditLogError every append raises from
    now on (a disk that fills up, for tests), or None."""

    def __init__(self) -> None:
        self._records: dict[int, bytes] = {}
        self._lock = threading.Lock()
        self.fail: str | None = None

    def append(self, position: int, record: bytes) -> None:
        with self._lock:
            if self.fail is not None:
                raise AuditLogError(self.fail)
            if position in self._records:
                raise AuditLogError(f"audit entry {position} exists already")
            self._records[position] = record

    def last(self) -> tuple[int, bytes] | None:
        with self._lock:
            if not self._records:
                return None
            position = max(self._records)
            return position, self._records[position]

    def records(self) -> Iterator[tuple[int, bytes]]:
        with self._lock:
            items = sorted(self._records.items())
        return iter(items)

    # tests that play an attacker with the stored bytes
    def replace(self, position: int, record: bytes) -> None:
        with self._lock:
            self._records[position] = record

    def remove(self, position: int) -> None:
        with self._lock:
            del self._records[position]


#: Seconds between two flushes of an audit log that is not synced on every append.
AUDIT_FLUSH_INTERVAL: Final = 1.0


class AuditFlusher:
    """Flushes an unsynced audit log every `interval` seconds, in a worker thread, and once
    more on `stop`. A failed flush is logged; the next one tries again."""

    def __init__(self, store: LevelDbAuditStore, interval: float = AUDIT_FLUSH_INTERVAL) -> None:
        self._store = store
        self._interval = interval
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            await self._flush()

    async def _flush(self) -> None:
        try:
            await asyncio.to_thread(self._store.flush)
        except StorageError as exc:
            log.error("the audit log could not be flushed to the disk: %s", exc)

    async def stop(self) -> None:
        """Stop flushing, after a last flush (before the database closes)."""
        task, self._task = self._task, None
        if task is None:
            return
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await self._flush()
