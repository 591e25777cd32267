"""The key-share storage port: what the rest of the node needs from a key store."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol

from secretstore.errors import InvalidEncoding
from secretstore.storage.model import KeyShare
from secretstore.types import ServerKeyId


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

    def close(self) -> None:
        """Release the store (and its lock on disk); closing twice is fine."""
        ...
