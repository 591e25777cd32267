"""The key-share storage port: what the rest of the node needs from a key store."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol

from secretstore.errors import InvalidEncoding
from secretstore.storage.model import KeyShare, Tombstone
from secretstore.types import ServerKeyId


def require_meta_name(name: object) -> bytes:
    """The key of a named value: 1..64 ASCII letters, digits, '_' or '-'; InvalidEncoding
    otherwise."""
    if (
        not isinstance(name, str)
        or not 0 < len(name) <= 64
        or not all(c.isascii() and (c.isalnum() or c in "_-") for c in name)
    ):
        raise InvalidEncoding(f"a meta name is 1..64 of [A-Za-z0-9_-], got {name!r}")
    return name.encode()


def require_tombstone_for(key_id: ServerKeyId, tombstone: Tombstone) -> None:
    """InvalidEncoding unless `tombstone` is a Tombstone of `key_id`."""
    if not isinstance(tombstone, Tombstone) or tombstone.key_id != key_id:
        raise InvalidEncoding(f"the tombstone is not one of key 0x{key_id.hex()}")


def require_key_id(key_id: object) -> ServerKeyId:
    """`key_id` if it is 32 bytes; InvalidEncoding otherwise (shared by the adapters)."""
    if not isinstance(key_id, bytes) or len(key_id) != 32:
        size = len(key_id) if isinstance(key_id, bytes) else type(key_id).__name__
        raise InvalidEncoding(f"a server key id is 32 bytes, got {size}")
    return ServerKeyId(key_id)


class KeyStorage(Protocol):
    """A durable map server key id → KeyShare.

    Synchronous: each call is a few microseconds to a synced disk write, so an async caller
    may run writes in an executor. Every method is thread-safe: implementations serialise
    calls with a lock, so `insert` is an atomic check-and-set. A write has reached stable
    storage (where the implementation has any) when it returns.

    Errors: a key id that is not 32 bytes raises InvalidEncoding; a stored record that does
    not decode raises CorruptRecord naming the key; any failure of the store itself, and any
    call after `close`, raises StorageError.
    """

    def insert(self, key_id: ServerKeyId, share: KeyShare) -> None:
        """Store a new share; ServerKeyAlreadyGenerated if `key_id` is present already."""
        ...

    def update(self, key_id: ServerKeyId, share: KeyShare) -> None:
        """Replace the share of an existing key; ServerKeyNotFound if there is none."""
        ...

    def get(self, key_id: ServerKeyId) -> KeyShare | None:
        """The share of `key_id`, or None."""
        ...

    def contains(self, key_id: ServerKeyId) -> bool:
        """Whether a share of `key_id` is stored (without decoding it)."""
        ...

    def remove(self, key_id: ServerKeyId) -> bool:
        """Delete the share of `key_id`; True if there was one (removing twice is fine)."""
        ...

    def ids(self) -> Iterator[ServerKeyId]:
        """Every stored key id once, in ascending byte order, read lazily from a snapshot
        taken when `ids` is called (later writes are not seen)."""
        ...

    def count(self) -> int:
        """How many key shares are stored (a scan of the key ids, in one pass)."""
        ...

    def bury(self, key_id: ServerKeyId, tombstone: Tombstone) -> bool:
        """In one atomic write: keep `tombstone` for `key_id` (replacing one kept before) and
        delete the share of `key_id`; True if there was a share. InvalidEncoding unless the
        tombstone names `key_id`."""
        ...

    def tombstone(self, key_id: ServerKeyId) -> Tombstone | None:
        """The tombstone kept for `key_id`, or None."""
        ...

    def tombstones(self) -> Iterator[Tombstone]:
        """Every tombstone once, in ascending key id order, from a snapshot taken when
        called."""
        ...

    def get_meta(self, name: str) -> bytes | None:
        """A small named value this node keeps beside its keys (e.g. a schedule's cursor)."""
        ...

    def put_meta(self, name: str, value: bytes | None) -> None:
        """Set (None: delete) a named value, synced."""
        ...

    def close(self) -> None:
        """Release the store (and its lock on disk); closing twice is fine."""
        ...
