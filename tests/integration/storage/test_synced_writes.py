"""Every durable write of the LevelDB key storage is synced: recorded on a real LevelDB.

A write without `sync=True` survives kill -9 (the page cache outlives the process) but not a
power loss or a kernel crash, so no process-killing test can tell; these tests watch the
write options themselves. plyvel.DB is wrapped (the database underneath is the real one) and
every put, delete and batch the storage makes must ask for a synced write.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import plyvel
import pytest

from secretstore.storage import leveldb
from secretstore.storage.leveldb import LevelDbKeyStorage
from tests.unit.storage.strategies import sample_key_id, sample_share

_REAL_DB = plyvel.DB


class RecordingDb:
    """A real plyvel.DB that records the options of every write."""

    writes: list[tuple[str, dict[str, Any]]]

    def __init__(self, path: str, **options: Any) -> None:
        self._db = _REAL_DB(path, **options)
        self.writes = []
        RecordingDb.last = self

    last: RecordingDb

    def put(self, key: bytes, value: bytes, **options: Any) -> None:
        self.writes.append(("put", options))
        self._db.put(key, value, **options)

    def delete(self, key: bytes, **options: Any) -> None:
        self.writes.append(("delete", options))
        self._db.delete(key, **options)

    def write_batch(self, **options: Any) -> Any:
        self.writes.append(("write_batch", options))
        return self._db.write_batch(**options)

    def __getattr__(self, name: str) -> Any:
        if name == "_db":
            raise AttributeError(name)
        return getattr(self._db, name)


@pytest.fixture
def recording(monkeypatch: pytest.MonkeyPatch) -> Iterator[type[RecordingDb]]:
    monkeypatch.setattr(leveldb.plyvel, "DB", RecordingDb)
    yield RecordingDb
    del RecordingDb.last


def test_every_write_of_the_key_storage_is_synced(
    tmp_path: Path, recording: type[RecordingDb]
) -> None:
    storage = LevelDbKeyStorage(tmp_path / "db")
    db = recording.last
    assert db.writes, "creating a database writes its schema record"
    key_id = sample_key_id(1)
    storage.insert(key_id, sample_share(1))
    storage.update(key_id, sample_share(2))
    assert storage.remove(key_id)
    storage.close()
    kinds = [kind for kind, _ in db.writes]
    # the schema and count records, the update; the insert and the removal are batches
    # with the count record
    assert kinds.count("put") == 3 and kinds.count("write_batch") == 2, kinds
    unsynced = [(kind, options) for kind, options in db.writes if options.get("sync") is not True]
    assert unsynced == [], unsynced


def test_a_reopened_database_writes_nothing_unsynced(
    tmp_path: Path, recording: type[RecordingDb]
) -> None:
    LevelDbKeyStorage(tmp_path / "db").close()
    storage = LevelDbKeyStorage(tmp_path / "db")
    storage.insert(sample_key_id(2), sample_share(3))
    storage.close()
    assert all(options.get("sync") is True for _, options in recording.last.writes)
