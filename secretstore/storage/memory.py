"""An in-memory KeyStorage for tests and simulations; it stores encoded records."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from types import TracebackType

from secretstore.errors import (
    ServerKeyAlreadyGenerated,
    ServerKeyNotFound,
    StorageError,
)
from secretstore.storage.cache import ShareCache
from secretstore.storage.codec import decode_tombstone, encode_key_share, encode_tombstone
from secretstore.storage.model import KeyShare, Tombstone
from secretstore.storage.port import require_key_id, require_meta_name, require_tombstone_for
from secretstore.types import ServerKeyId


class MemoryKeyStorage:
    """KeyStorage in a dict of encoded records (so every write and read runs the codec).

    Thread-safe (one lock); nothing survives the object. With `cache_size` > 0 the last
    shares read are kept decoded, as LevelDbKeyStorage does (off by default, so that every
    read of a test runs the codec).
    """

    def __init__(self, *, cache_size: int = 0) -> None:
        self._records: dict[bytes, bytes] | None = {}
        self._tombstones: dict[bytes, bytes] = {}
        self._meta: dict[bytes, bytes] = {}
        self._lock = threading.RLock()
        self._cache = ShareCache(cache_size)

    def _open_records(self) -> dict[bytes, bytes]:
        if self._records is None:
            raise StorageError("the key storage is closed")
        return self._records

    def insert(self, key_id: ServerKeyId, share: KeyShare) -> None:
        key = require_key_id(key_id)
        record = encode_key_share(share)
        with self._lock:
            records = self._open_records()
            self._cache.discard(key)
            if key in records:
                raise ServerKeyAlreadyGenerated(f"server key 0x{key.hex()} is stored already")
            records[key] = record

    def update(self, key_id: ServerKeyId, share: KeyShare) -> None:
        key = require_key_id(key_id)
        record = encode_key_share(share)
        with self._lock:
            records = self._open_records()
            self._cache.discard(key)
            if key not in records:
                raise ServerKeyNotFound(f"no server key 0x{key.hex()}")
            records[key] = record

    def get(self, key_id: ServerKeyId) -> KeyShare | None:
        key = require_key_id(key_id)
        with self._lock:
            records = self._open_records()
            return self._cache.read(key, key, lambda: records.get(key))

    def contains(self, key_id: ServerKeyId) -> bool:
        key = require_key_id(key_id)
        with self._lock:
            return key in self._open_records()

    def remove(self, key_id: ServerKeyId) -> bool:
        key = require_key_id(key_id)
        with self._lock:
            records = self._open_records()
            self._cache.discard(key)
            return records.pop(key, None) is not None

    def ids(self) -> Iterator[ServerKeyId]:
        with self._lock:
            snapshot = sorted(self._open_records())
        return self._walk(snapshot)

    def count(self) -> int:
        with self._lock:
            return len(self._open_records())

    def _walk(self, snapshot: list[bytes]) -> Iterator[ServerKeyId]:
        for key in snapshot:
            with self._lock:
                self._open_records()
            yield ServerKeyId(key)

    def bury(self, key_id: ServerKeyId, tombstone: Tombstone) -> bool:
        key = require_key_id(key_id)
        require_tombstone_for(key_id, tombstone)
        record = encode_tombstone(tombstone)
        with self._lock:
            records = self._open_records()
            self._cache.discard(key)
            self._tombstones[key] = record
            return records.pop(key, None) is not None

    def tombstone(self, key_id: ServerKeyId) -> Tombstone | None:
        key = require_key_id(key_id)
        with self._lock:
            self._open_records()
            record = self._tombstones.get(key)
        return None if record is None else decode_tombstone(record)

    def tombstones(self) -> Iterator[Tombstone]:
        with self._lock:
            self._open_records()
            snapshot = [self._tombstones[key] for key in sorted(self._tombstones)]
        return (decode_tombstone(record) for record in snapshot)

    def get_meta(self, name: str) -> bytes | None:
        key = require_meta_name(name)
        with self._lock:
            self._open_records()
            return self._meta.get(key)

    def put_meta(self, name: str, value: bytes | None) -> None:
        key = require_meta_name(name)
        with self._lock:
            self._open_records()
            if value is None:
                self._meta.pop(key, None)
            else:
                self._meta[key] = bytes(value)

    def close(self) -> None:
        with self._lock:
            self._cache.clear()
            self._records = None

    def __enter__(self) -> MemoryKeyStorage:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()
