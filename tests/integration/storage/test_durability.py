"""LevelDB storage on disk: reopening, kill -9 after an acknowledged write, the process lock,
the schema record, and opening without reading the shares."""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import plyvel
import pytest

from secretstore.crypto.curve import Point, Scalar
from secretstore.errors import CorruptRecord, ServerKeyAlreadyGenerated, StorageError
from secretstore.storage.leveldb import (
    COUNT_KEY,
    DB_SCHEMA_VERSION,
    SCHEMA_KEY,
    SHARE_PREFIX,
    LevelDbKeyStorage,
    share_record_key,
)
from tests.unit.storage.strategies import sample_key_id, sample_share, sample_version

ROOT = Path(__file__).resolve().parents[3]

# A child that opens the database, acknowledges each insert on stdout, then waits to be killed.
CHILD_INSERTS = """
import sys, time
from pathlib import Path
from secretstore.storage.leveldb import LevelDbKeyStorage
from tests.unit.storage.strategies import sample_key_id, sample_share
storage = LevelDbKeyStorage(Path(sys.argv[1]))
for i in range(int(sys.argv[2])):
    storage.insert(sample_key_id(i), sample_share(i))
    print("ok", i, flush=True)
time.sleep(60)
"""


@pytest.fixture
def child(tmp_path: Path) -> Iterator[list[subprocess.Popen[bytes]]]:
    """Children started by a test; any still running at the end are killed."""
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for proc in started:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=10)
        if proc.stdout is not None:
            proc.stdout.close()


def _start_child(
    started: list[subprocess.Popen[bytes]], path: Path, inserts: int
) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD_INSERTS, str(path), str(inserts)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
    )
    started.append(proc)
    return proc


def _read_line(proc: subprocess.Popen[bytes], timeout: float = 30.0) -> str:
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    assert ready, "the child did not answer in time"
    line = proc.stdout.readline().decode()
    assert line, f"the child exited with {proc.wait()}"
    return line.strip()


def _kill_9(proc: subprocess.Popen[bytes]) -> None:
    os.kill(proc.pid, signal.SIGKILL)
    assert proc.wait(timeout=10) == -signal.SIGKILL


# --- reopening -----------------------------------------------------------------------------


def test_reopen_after_close_keeps_every_change(tmp_path: Path) -> None:
    path = tmp_path / "keys"
    with LevelDbKeyStorage(path) as storage:
        for i in range(5):
            storage.insert(sample_key_id(i), sample_share(i))
        updated = sample_share(1).with_version(sample_version(50))
        storage.update(sample_key_id(1), updated)
        storage.remove(sample_key_id(3))
    with LevelDbKeyStorage(path) as storage:
        assert list(storage.ids()) == sorted(sample_key_id(i) for i in (0, 1, 2, 4))
        assert storage.get(sample_key_id(0)) == sample_share(0)
        assert storage.get(sample_key_id(1)) == updated
        assert storage.get(sample_key_id(3)) is None


def test_creates_missing_parent_directories(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "keys"
    with LevelDbKeyStorage(path) as storage:
        storage.insert(sample_key_id(1), sample_share(1))
    assert (path / "CURRENT").is_file()


@pytest.mark.slow
def test_an_acknowledged_insert_survives_kill_9(
    tmp_path: Path, child: list[subprocess.Popen[bytes]]
) -> None:
    path = tmp_path / "keys"
    proc = _start_child(child, path, inserts=1)
    assert _read_line(proc) == "ok 0"
    _kill_9(proc)
    with LevelDbKeyStorage(path) as storage:
        assert storage.get(sample_key_id(0)) == sample_share(0)


@pytest.mark.slow
def test_every_acknowledged_insert_survives_kill_9_mid_stream(
    tmp_path: Path, child: list[subprocess.Popen[bytes]]
) -> None:
    path = tmp_path / "keys"
    proc = _start_child(child, path, inserts=100_000)
    acknowledged = [int(_read_line(proc).split()[1]) for _ in range(30)]
    _kill_9(proc)  # the child is still inserting
    assert acknowledged == list(range(30))
    with LevelDbKeyStorage(path) as storage:
        stored = set(storage.ids())
        for i in acknowledged:
            assert storage.get(sample_key_id(i)) == sample_share(i)
        for key_id in stored:  # whatever else landed is whole
            assert storage.get(key_id) is not None


def test_the_key_count_is_kept_with_every_write_and_survives_kill_9(
    tmp_path: Path, child: list[subprocess.Popen[bytes]]
) -> None:
    path = tmp_path / "keys"
    proc = _start_child(child, path, inserts=100_000)
    acknowledged = [int(_read_line(proc).split()[1]) for _ in range(20)]
    _kill_9(proc)  # mid-stream: the count must match whatever landed
    with LevelDbKeyStorage(path) as storage:
        stored = list(storage.ids())
        assert storage.count() == len(stored) >= len(acknowledged)
        extra = sample_key_id(10**6)
        storage.insert(extra, sample_share(1))
        with pytest.raises(ServerKeyAlreadyGenerated):  # a second insert changes nothing
            storage.insert(extra, sample_share(1))
        storage.update(extra, sample_share(2))
        assert storage.count() == len(stored) + 1
        assert storage.remove(stored[0]) and not storage.remove(stored[0])
        assert storage.count() == len(stored)
    with LevelDbKeyStorage(path) as storage:
        assert storage.count() == len(stored) == len(list(storage.ids()))


def test_a_database_without_a_count_record_is_counted_once_on_open(tmp_path: Path) -> None:
    path = tmp_path / "keys"
    with LevelDbKeyStorage(path) as storage:
        for i in range(7):
            storage.insert(sample_key_id(i), sample_share(i))
    for damaged in (None, b"not a number"):
        db = _raw_db(path)
        if damaged is None:
            db.delete(COUNT_KEY)
        else:
            db.put(COUNT_KEY, damaged)
        db.close()
        with LevelDbKeyStorage(path) as storage:
            assert storage.count() == 7
        db = _raw_db(path)
        assert db.get(COUNT_KEY) == b"7"
        db.close()


# --- one process at a time -----------------------------------------------------------------


@pytest.mark.slow
def test_opening_a_database_held_by_another_process_is_refused(
    tmp_path: Path, child: list[subprocess.Popen[bytes]]
) -> None:
    path = tmp_path / "keys"
    proc = _start_child(child, path, inserts=1)
    assert _read_line(proc) == "ok 0"
    with pytest.raises(StorageError, match="in use"):
        LevelDbKeyStorage(path)
    _kill_9(proc)
    with LevelDbKeyStorage(path) as storage:
        assert storage.contains(sample_key_id(0))


def test_opening_twice_in_one_process_is_refused(tmp_path: Path) -> None:
    with LevelDbKeyStorage(tmp_path / "keys"), pytest.raises(StorageError, match="in use"):
        LevelDbKeyStorage(tmp_path / "keys")


def test_a_path_that_is_a_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(StorageError, match="file"):
        LevelDbKeyStorage(tmp_path / "file")


# --- the schema record ---------------------------------------------------------------------


def _raw_db(path: Path) -> plyvel.DB:
    return plyvel.DB(str(path), create_if_missing=True)


def test_a_new_database_gets_the_schema_record(tmp_path: Path) -> None:
    LevelDbKeyStorage(tmp_path / "keys").close()
    db = _raw_db(tmp_path / "keys")
    try:
        assert db.get(SCHEMA_KEY) == str(DB_SCHEMA_VERSION).encode()
        assert list(db.iterator(include_value=False)) == [COUNT_KEY, SCHEMA_KEY]
        assert db.get(COUNT_KEY) == b"0"
    finally:
        db.close()


@pytest.mark.parametrize(
    ("schema", "message"),
    [
        (str(DB_SCHEMA_VERSION + 1).encode(), "newer"),
        (b"999", "newer"),
        (b"0", "invalid schema version"),
        (b"v1", "unreadable"),
        (b"", "unreadable"),
        (b"1" * 40, "unreadable"),
    ],
)
def test_an_unknown_schema_is_refused_and_left_unlocked(
    tmp_path: Path, schema: bytes, message: str
) -> None:
    db = _raw_db(tmp_path / "keys")
    db.put(SCHEMA_KEY, schema)
    db.close()
    with pytest.raises(StorageError, match=message):
        LevelDbKeyStorage(tmp_path / "keys")
    db = _raw_db(tmp_path / "keys")  # the refused open released the lock
    assert db.get(SCHEMA_KEY) == schema
    db.close()


def test_a_foreign_database_is_refused_and_not_modified(tmp_path: Path) -> None:
    db = _raw_db(tmp_path / "keys")
    db.put(b"some-other-key", b"value")
    db.close()
    with pytest.raises(StorageError, match="not a secretstore key database"):
        LevelDbKeyStorage(tmp_path / "keys")
    db = _raw_db(tmp_path / "keys")
    assert list(db.iterator()) == [(b"some-other-key", b"value")]
    db.close()


def test_share_records_live_under_their_prefix(tmp_path: Path) -> None:
    with LevelDbKeyStorage(tmp_path / "keys") as storage:
        storage.insert(sample_key_id(1), sample_share(1))
    db = _raw_db(tmp_path / "keys")
    try:
        keys = list(db.iterator(include_value=False))
    finally:
        db.close()
    assert keys == [COUNT_KEY, SCHEMA_KEY, SHARE_PREFIX + sample_key_id(1)]
    assert share_record_key(sample_key_id(1)) == keys[2]
    assert not SCHEMA_KEY.startswith(SHARE_PREFIX)


# --- opening reads no share ------------------------------------------------------------------


def test_open_does_not_read_shares_and_a_bad_record_is_reported_on_get(tmp_path: Path) -> None:
    path = tmp_path / "keys"
    with LevelDbKeyStorage(path) as storage:
        storage.insert(sample_key_id(1), sample_share(1))
    db = _raw_db(path)
    db.put(share_record_key(sample_key_id(2)), b"\x01garbage")
    db.close()
    with LevelDbKeyStorage(path) as storage:  # opening decodes nothing, so it succeeds
        assert storage.contains(sample_key_id(2))
        assert list(storage.ids()) == sorted([sample_key_id(1), sample_key_id(2)])
        assert storage.get(sample_key_id(1)) == sample_share(1)
        with pytest.raises(CorruptRecord, match=sample_key_id(2).hex()):
            storage.get(sample_key_id(2))


def test_a_share_key_of_the_wrong_length_is_reported_by_ids(tmp_path: Path) -> None:
    path = tmp_path / "keys"
    LevelDbKeyStorage(path).close()
    db = _raw_db(path)
    db.put(SHARE_PREFIX + b"short", b"x")
    db.close()
    with LevelDbKeyStorage(path) as storage, pytest.raises(CorruptRecord, match="wrong length"):
        list(storage.ids())


# --- records of the first schema in a real database ----------------------------------------


def test_schema_1_records_in_a_database_keep_working_and_stay_schema_1(tmp_path: Path) -> None:
    """A database filled by a secretstore that wrote schema 1 records (the committed bytes of
    its encoder): its shares read as versions without commitments; storing a document key
    rewrites them as schema 1 still; a share with commitments beside them is schema 2."""
    fixtures = json.loads((ROOT / "tests/unit/storage/data/key_records_v1.json").read_text())[
        "records"
    ]
    path = tmp_path / "keys"
    LevelDbKeyStorage(path).close()
    db = _raw_db(path)
    for i, entry in enumerate(fixtures):
        db.put(share_record_key(sample_key_id(100 + i)), bytes.fromhex(entry["record"]))
    db.close()
    with LevelDbKeyStorage(path) as storage:
        first = storage.get(sample_key_id(100))
        assert first is not None
        assert all(version.commitments is None for version in first.versions)
        storage.update(
            sample_key_id(100),
            first.with_document_key(Point.base_mul(Scalar(2)), Point.base_mul(Scalar(3))),
        )
        storage.insert(sample_key_id(1), sample_share(1, with_commitments=True))
    db = _raw_db(path)
    try:
        assert db.get(share_record_key(sample_key_id(100)))[0] == 1
        assert db.get(share_record_key(sample_key_id(101))) == bytes.fromhex(fixtures[1]["record"])
        assert db.get(share_record_key(sample_key_id(1)))[0] == 2
    finally:
        db.close()
    with LevelDbKeyStorage(path) as storage:
        reread = storage.get(sample_key_id(100))
        assert reread is not None and reread.has_document_key()
        assert storage.get(sample_key_id(1)) == sample_share(1, with_commitments=True)
