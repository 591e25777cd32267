"""Online snapshots of a key database: copies taken while another process holds the database
and writes to it are whole (they open, every record decodes) and hold every write
acknowledged before the copy began; a copy spoiled by a compaction is made again."""

from __future__ import annotations

import os
import select
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from secretstore.errors import StorageError
from secretstore.storage import snapshot as snapshot_module
from secretstore.storage.leveldb import LevelDbKeyStorage
from secretstore.storage.snapshot import SnapshotError, snapshot_database, verify_snapshot
from tests.unit.storage.strategies import sample_key_id, sample_share

ROOT = Path(__file__).resolve().parents[3]

# A child that holds the database and inserts keys without end, acknowledging each one. It
# writes the records LevelDbKeyStorage writes, through plyvel with a tiny write buffer, so that
# memtable flushes and compactions (files appearing and vanishing) happen during the copies.
CHILD_WRITER = """
import sys
import plyvel
from secretstore.storage.codec import encode_key_share
from secretstore.storage.leveldb import DB_SCHEMA_VERSION, SCHEMA_KEY, share_record_key
from tests.unit.storage.strategies import sample_key_id, sample_share
db = plyvel.DB(sys.argv[1], create_if_missing=True, write_buffer_size=16 * 1024)
db.put(SCHEMA_KEY, str(DB_SCHEMA_VERSION).encode(), sync=True)
i = 0
while True:
    db.put(share_record_key(sample_key_id(i)), encode_key_share(sample_share(i)), sync=True)
    print(i, flush=True)
    i += 1
"""


@pytest.fixture
def writer(tmp_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD_WRITER, str(tmp_path / "db")],
        cwd=ROOT,
        stdout=subprocess.PIPE,
    )
    yield proc
    proc.kill()
    proc.wait(timeout=10)
    assert proc.stdout is not None
    proc.stdout.close()


class Acknowledged:
    """How many inserts the writer has acknowledged, as far as its output has been read
    (straight from the pipe: a buffered reader would hide lines from select)."""

    def __init__(self, proc: subprocess.Popen[bytes]) -> None:
        assert proc.stdout is not None
        self.proc = proc
        self.fd = proc.stdout.fileno()
        self.pending = b""
        self.count = 0

    def read(self, at_least: int = 0) -> int:
        """Read every acknowledgement available now (waiting for `at_least` in all)."""
        while True:
            wait = 30 if self.count < at_least else 0
            ready, _, _ = select.select([self.fd], [], [], wait)
            if not ready:
                assert self.count >= at_least, "the writer did not acknowledge in time"
                return self.count
            chunk = os.read(self.fd, 65536)
            assert chunk, f"the writer exited with {self.proc.wait()}"
            *lines, self.pending = (self.pending + chunk).split(b"\n")
            if lines:
                self.count = int(lines[-1]) + 1


def keys_in(path: Path) -> list[bytes]:
    with LevelDbKeyStorage(path) as storage:
        return list(storage.ids())


@pytest.mark.slow
def test_snapshots_taken_during_writes_are_whole_and_hold_every_acknowledged_write(
    tmp_path: Path, writer: subprocess.Popen[bytes]
) -> None:
    acks = Acknowledged(writer)
    acks.read(at_least=50)
    attempts = 0
    for round_ in range(8):
        before = acks.read()
        result = snapshot_database(tmp_path / "db", tmp_path / f"snapshot{round_}", attempts=20)
        attempts += result.attempts
        seen = acks.read()
        stored = set(keys_in(result.destination))
        assert result.keys == len(stored)
        assert {sample_key_id(i) for i in range(before)} <= stored  # acknowledged first: kept
        assert len(stored) <= seen + 1  # nothing invented (at most one write in flight)
        with LevelDbKeyStorage(result.destination) as copy:
            for i in range(0, before, 7):
                assert copy.get(sample_key_id(i)) == sample_share(i)
    assert writer.poll() is None  # the writer kept its database all along
    print(f"8 snapshots in {attempts} attempts; {acks.read()} inserts")


def test_a_copy_spoiled_by_a_compaction_is_made_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with LevelDbKeyStorage(tmp_path / "db") as storage:
        for i in range(20):
            storage.insert(sample_key_id(i), sample_share(i))
    real = snapshot_module._copy_once
    calls = []

    def flaky(source: Path, target: Path) -> tuple[int, int]:
        calls.append(target)
        if len(calls) == 1:
            raise FileNotFoundError(2, "No such file or directory", str(source / "000005.ldb"))
        if len(calls) == 2:
            real(source, target)
            (target / "CURRENT").unlink()  # a copy that does not open
            (target / "CURRENT").write_text("MANIFEST-999999\n")
            return 1, 1
        return real(source, target)

    monkeypatch.setattr(snapshot_module, "_copy_once", flaky)
    result = snapshot_database(tmp_path / "db", tmp_path / "snapshot")
    assert result.attempts == 3 and result.keys == 20
    assert not any(p.name.startswith(".snapshot") for p in tmp_path.iterdir())


def test_the_snapshot_is_private_and_reopens_to_the_same_shares(tmp_path: Path) -> None:
    with LevelDbKeyStorage(tmp_path / "db") as storage:
        for i in range(30):
            storage.insert(sample_key_id(i), sample_share(i))
    result = snapshot_database(tmp_path / "db", tmp_path / "safe" / "copy")
    assert (result.keys, result.attempts) == (30, 1)
    assert stat.S_IMODE(os.stat(result.destination).st_mode) == 0o700
    for entry in result.destination.iterdir():
        if entry.is_file():
            assert stat.S_IMODE(entry.stat().st_mode) & 0o077 == 0, entry.name
    with LevelDbKeyStorage(result.destination) as copy:
        assert [copy.get(sample_key_id(i)) for i in range(30)] == [
            sample_share(i) for i in range(30)
        ]


def test_refusals(tmp_path: Path) -> None:
    with pytest.raises(SnapshotError, match="not a key database"):
        snapshot_database(tmp_path / "nothing", tmp_path / "out")
    with LevelDbKeyStorage(tmp_path / "db"):
        pass
    (tmp_path / "taken").mkdir()
    with pytest.raises(SnapshotError, match="exists already"):
        snapshot_database(tmp_path / "db", tmp_path / "taken")
    with pytest.raises(StorageError, match="no CURRENT"):
        verify_snapshot(tmp_path / "taken")
    assert not (tmp_path / "taken" / "CURRENT").exists()  # verifying never creates a database
