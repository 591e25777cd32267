"""The LevelDB KeyStorage (plyvel): one synced record per key, a schema record, lazy reads.

Layout (DB schema version 1):
    b"\\x00meta/schema"          → the DB schema version in ASCII decimal (b"1")
    b"\\x00meta/" + name         → a small named value (`put_meta`; e.g. the refresh cursor)
    b"\\x00count/shares"         → how many share records there are, in ASCII decimal
    b"\\x01share/" + key id (32) → the codec record of that key's KeyShare
    b"\\x02audit/" + u64 index   → an audit log entry (secretstore/audit/store.py)
    b"\\x03service/cursor/" + contract address (20) → the last block whose service requests
                                  were handled (chain/services/cursor.py)
    b"\\x04tomb/" + key id (32)  → the tombstone of a key its author deleted (codec)

Tombstones, named values, service cursors and audit entries came later under the same schema
version: an older secretstore never reads them (it lists only share records), so the schema
record stays 1.

A directory holding a Parity Secret Store database (parity_db/layout.py) is refused with a
message pointing to `secretstore import-parity`, never opened or written into.

Opening reads the schema record, the count record and at most one other key, never the
shares, so it takes the same time for an empty database as for one holding millions of keys.
The count record is written in the same batch as every share record that adds or removes a
key; a database without one (written before it existed) is counted once, when it is opened,
and the count written. A tool that writes share records beside this class writes the count
too (`COUNT_KEY`), or deletes it to have it counted again.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Generator, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import Any, Final, TypeVar

import plyvel

from secretstore.errors import (
    CorruptRecord,
    InvalidEncoding,
    ServerKeyAlreadyGenerated,
    ServerKeyNotFound,
    StorageError,
)
from secretstore.filemodes import make_private_dir
from secretstore.parity_db.layout import find_parity_data, refusal_message
from secretstore.storage.cache import DEFAULT_CAPACITY, ShareCache
from secretstore.storage.codec import decode_tombstone, encode_key_share, encode_tombstone
from secretstore.storage.model import KeyShare, Tombstone
from secretstore.storage.port import require_key_id, require_meta_name, require_tombstone_for
from secretstore.types import ServerKeyId

#: The layout version this code writes and the newest it opens.
DB_SCHEMA_VERSION: Final = 1
#: The key of the schema record.
SCHEMA_KEY: Final = b"\x00meta/schema"
#: The prefix of every share record's key (metadata keys start with 0x00, so never collide).
SHARE_PREFIX: Final = b"\x01share/"
#: The prefix of every tombstone record's key.
TOMBSTONE_PREFIX: Final = b"\x04tomb/"
#: The prefix of the named values (the schema record's name, "schema", is not one of them).
META_PREFIX: Final = b"\x00meta/"
#: The key of the count of share records.
COUNT_KEY: Final = b"\x00count/shares"

T = TypeVar("T")


def share_record_key(key_id: ServerKeyId) -> bytes:
    """The LevelDB key under which the share of `key_id` is stored."""
    return SHARE_PREFIX + require_key_id(key_id)


def _message(exc: BaseException) -> str:
    if exc.args and isinstance(exc.args[0], bytes):
        return exc.args[0].decode("utf-8", "replace")
    return str(exc)


def _open_db(path: Path) -> Any:
    found = find_parity_data(path)
    if found is not None:
        raise StorageError(refusal_message(path, found))
    try:
        make_private_dir(path)
    except OSError as exc:
        raise StorageError(f"cannot create the key database directory {path}: {exc}") from exc
    try:
        return plyvel.DB(str(path), create_if_missing=True)
    except plyvel.Error as exc:
        text = _message(exc)
        if "lock" in text.lower() and isinstance(exc, plyvel.IOError):
            raise StorageError(
                f"the key database {path} is in use (locked by another process, or opened "
                f"twice by this one): {text}"
            ) from exc
        raise StorageError(f"cannot open the key database {path}: {text}") from exc


def _read_count(db: Any) -> int:
    """The count record, or every share record counted (and the count written) when there
    is none or it does not read."""
    raw = db.get(COUNT_KEY)
    if raw is not None and raw.isascii() and raw.isdigit() and len(raw) <= 19:
        return int(raw)
    with db.iterator(prefix=SHARE_PREFIX, include_value=False) as keys:
        count = sum(1 for _ in keys)
    db.put(COUNT_KEY, str(count).encode(), sync=True)
    return count


def _check_schema(db: Any, path: Path) -> None:
    """Accept a database of a known schema; give a new (empty) one the schema record."""
    raw = db.get(SCHEMA_KEY)
    if raw is None:
        with db.iterator(include_value=False) as keys:
            if next(keys, None) is not None:
                raise StorageError(
                    f"{path} holds a LevelDB database that is not a secretstore key database "
                    "(it has no schema record)"
                )
        db.put(SCHEMA_KEY, str(DB_SCHEMA_VERSION).encode(), sync=True)
        return
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 9:
        raise StorageError(f"the key database {path} has an unreadable schema record {raw!r}")
    version = int(raw)
    if version > DB_SCHEMA_VERSION:
        raise StorageError(
            f"the key database {path} has schema version {version}, newer than version "
            f"{DB_SCHEMA_VERSION} which this secretstore reads; use a newer secretstore"
        )
    if version < 1:
        raise StorageError(f"the key database {path} has an invalid schema version {version}")


class LevelDbKeyStorage:
    """KeyStorage in a LevelDB directory, created if missing.

    Every write is synced to disk before it returns. Thread-safe: one lock serialises the
    calls (LevelDB itself stays fast), so `insert` is an atomic check-and-set. Only one
    process (and one object) may have a directory open: LevelDB's LOCK file enforces it.
    The last `cache_size` shares read are kept decoded (storage/cache.py); every write
    drops its key's entry first.
    """

    def __init__(self, path: Path, *, cache_size: int = DEFAULT_CAPACITY) -> None:
        self._path = Path(path)
        self._lock = threading.RLock()
        self._cache = ShareCache(cache_size)
        db = _open_db(self._path)
        try:
            _check_schema(db, self._path)
            #: how many share records there are (kept with every write that changes it)
            self._count = _read_count(db)
        except plyvel.Error as exc:
            db.close()
            raise StorageError(
                f"cannot read the key database {self._path}: {_message(exc)}"
            ) from exc
        except BaseException:
            db.close()
            raise
        self._db: Any = db

    @property
    def path(self) -> Path:
        return self._path

    # --- helpers --------------------------------------------------------------------------
    def _require_open(self) -> Any:
        if self._db is None:
            raise StorageError(f"the key storage {self._path} is closed")
        return self._db

    @contextmanager
    def _plyvel_errors(self, action: str) -> Generator[None, None, None]:
        try:
            yield
        except plyvel.Error as exc:
            raise StorageError(
                f"{action} in the key database {self._path}: {_message(exc)}"
            ) from exc

    def with_db(self, action: str, use: Callable[[Any], T]) -> T:
        """`use(db)` on the open plyvel database, under this storage's lock, a plyvel error
        raised as StorageError naming `action`: for the database's other records (the audit
        log, the service cursors: their keys start with prefixes of their own, never 0x00 or
        0x01)."""
        with self._lock, self._plyvel_errors(action):
            return use(self._require_open())

    # --- the KeyStorage port --------------------------------------------------------------
    def insert(self, key_id: ServerKeyId, share: KeyShare) -> None:
        key = share_record_key(key_id)
        record = encode_key_share(share)
        with self._lock, self._plyvel_errors("insert"):
            db = self._require_open()
            self._cache.discard(key)
            if db.get(key) is not None:
                raise ServerKeyAlreadyGenerated(f"server key 0x{key_id.hex()} is stored already")
            with db.write_batch(sync=True) as batch:
                batch.put(key, record)
                batch.put(COUNT_KEY, str(self._count + 1).encode())
            self._count += 1

    def update(self, key_id: ServerKeyId, share: KeyShare) -> None:
        key = share_record_key(key_id)
        record = encode_key_share(share)
        with self._lock, self._plyvel_errors("update"):
            db = self._require_open()
            self._cache.discard(key)
            if db.get(key) is None:
                raise ServerKeyNotFound(f"no server key 0x{key_id.hex()}")
            db.put(key, record, sync=True)

    def get(self, key_id: ServerKeyId) -> KeyShare | None:
        key = share_record_key(key_id)
        with self._lock, self._plyvel_errors("get"):
            db = self._require_open()
            return self._cache.read(key, key_id, lambda: db.get(key))

    def contains(self, key_id: ServerKeyId) -> bool:
        key = share_record_key(key_id)
        with self._lock, self._plyvel_errors("contains"):
            return self._require_open().get(key) is not None

    def remove(self, key_id: ServerKeyId) -> bool:
        key = share_record_key(key_id)
        with self._lock, self._plyvel_errors("remove"):
            db = self._require_open()
            self._cache.discard(key)
            if db.get(key) is None:
                return False
            with db.write_batch(sync=True) as batch:
                batch.delete(key)
                batch.put(COUNT_KEY, str(self._count - 1).encode())
            self._count -= 1
            return True

    def ids(self) -> Iterator[ServerKeyId]:
        with self._lock, self._plyvel_errors("list keys"):
            keys = self._require_open().iterator(prefix=SHARE_PREFIX, include_value=False)
        return self._walk(keys)

    def count(self) -> int:
        with self._lock:
            self._require_open()
            return self._count

    def _walk(self, keys: Any) -> Generator[ServerKeyId, None, None]:
        try:
            while True:
                with self._lock, self._plyvel_errors("list keys"):
                    self._require_open()
                    key: bytes | None = next(keys, None)
                if key is None:
                    return
                key_id = key[len(SHARE_PREFIX) :]
                if len(key_id) != 32:
                    raise CorruptRecord(f"a share record has a key of the wrong length: {key!r}")
                yield ServerKeyId(key_id)
        finally:
            with self._lock:
                keys.close()

    def bury(self, key_id: ServerKeyId, tombstone: Tombstone) -> bool:
        key = share_record_key(key_id)
        require_tombstone_for(key_id, tombstone)
        record = encode_tombstone(tombstone)
        with self._lock, self._plyvel_errors("bury"):
            db = self._require_open()
            self._cache.discard(key)
            had = db.get(key) is not None
            with db.write_batch(sync=True) as batch:
                batch.put(TOMBSTONE_PREFIX + key_id, record)
                batch.delete(key)
                if had:
                    batch.put(COUNT_KEY, str(self._count - 1).encode())
            if had:
                self._count -= 1
            return had

    def tombstone(self, key_id: ServerKeyId) -> Tombstone | None:
        key = TOMBSTONE_PREFIX + require_key_id(key_id)
        with self._lock, self._plyvel_errors("read a tombstone"):
            record = self._require_open().get(key)
        return None if record is None else decode_tombstone(record)

    def tombstones(self) -> Iterator[Tombstone]:
        with (
            self._lock,
            self._plyvel_errors("list tombstones"),
            self._require_open().iterator(prefix=TOMBSTONE_PREFIX) as records,
        ):
            snapshot = [value for _, value in records]
        return (decode_tombstone(record) for record in snapshot)

    def get_meta(self, name: str) -> bytes | None:
        key = META_PREFIX + require_meta_name(name)
        if key == SCHEMA_KEY:
            raise InvalidEncoding("the schema record is not a named value")
        with self._lock, self._plyvel_errors("read a named value"):
            value: bytes | None = self._require_open().get(key)
            return value

    def put_meta(self, name: str, value: bytes | None) -> None:
        key = META_PREFIX + require_meta_name(name)
        if key == SCHEMA_KEY:
            raise InvalidEncoding("the schema record is not a named value")
        with self._lock, self._plyvel_errors("write a named value"):
            db = self._require_open()
            if value is None:
                db.delete(key, sync=True)
            else:
                db.put(key, bytes(value), sync=True)

    def close(self) -> None:
        with self._lock:
            self._cache.clear()
            if self._db is not None:
                db, self._db = self._db, None
                with self._plyvel_errors("close"):
                    db.close()

    def __enter__(self) -> LevelDbKeyStorage:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()
