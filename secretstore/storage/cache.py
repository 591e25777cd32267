"""A small LRU of decoded key shares for the storage adapters, dropped on every write.

Decoding and validating a stored record (points on the curve, distinct id numbers, …) costs
tens of microseconds, and every session reads its key's share. The adapters keep the most
recently read shares decoded; each `insert`, `update` and `remove` discards the key's entry
before it writes, and `close` empties the cache, so a read never returns what a write has
replaced. `KeyShare` is immutable, so one decoded object can serve every session. The cache
holds nothing that the adapter does not hold already (the records themselves, in memory).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from typing import Final

from secretstore.errors import CorruptRecord
from secretstore.storage.codec import decode_key_share
from secretstore.storage.model import KeyShare

#: How many decoded shares an adapter keeps by default.
DEFAULT_CAPACITY: Final = 1024


class ShareCache:
    """Decoded shares by record key, least recently used dropped first; capacity 0 disables
    it. Not thread-safe by itself: the adapters call it under their lock."""

    __slots__ = ("_capacity", "_entries")

    def __init__(self, capacity: int = DEFAULT_CAPACITY) -> None:
        if capacity < 0:
            raise ValueError(f"a cache capacity cannot be negative, got {capacity}")
        self._capacity = capacity
        self._entries: OrderedDict[bytes, KeyShare] = OrderedDict()

    @property
    def capacity(self) -> int:
        return self._capacity

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: bytes) -> KeyShare | None:
        """The cached share of `key` (now the most recently used), or None."""
        share = self._entries.get(key)
        if share is not None:
            self._entries.move_to_end(key)
        return share

    def put(self, key: bytes, share: KeyShare) -> None:
        """Remember the share just decoded from the record of `key`."""
        if self._capacity == 0:
            return
        self._entries[key] = share
        self._entries.move_to_end(key)
        while len(self._entries) > self._capacity:
            self._entries.popitem(last=False)

    def read(self, key: bytes, key_id: bytes, load: Callable[[], bytes | None]) -> KeyShare | None:
        """The share of `key`: cached, or its record from `load()` decoded (and then cached);
        None when there is no record. A record that does not decode raises CorruptRecord
        naming the server key."""
        share = self.get(key)
        if share is not None:
            return share
        record = load()
        if record is None:
            return None
        try:
            share = decode_key_share(record)
        except CorruptRecord as exc:
            raise CorruptRecord(f"record of server key 0x{key_id.hex()}: {exc}") from exc
        self.put(key, share)
        return share

    def discard(self, key: bytes) -> None:
        """Forget `key` (before its record is written or removed)."""
        self._entries.pop(key, None)

    def clear(self) -> None:
        self._entries.clear()

    def __repr__(self) -> str:
        return f"ShareCache({len(self._entries)}/{self._capacity})"
