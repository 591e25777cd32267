"""The audit log in a real LevelDB key database, and `secretstore audit` over it: appends
survive a reopen, the recorder continues the chain, a locked database is named (and read
from a private copy), and a changed, removed or reordered entry in the database is found."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import plyvel
import pytest

from secretstore.audit.chain import verify_log
from secretstore.audit.model import Operation
from secretstore.audit.receipts import NodeSigner
from secretstore.audit.recorder import AuditRecorder
from secretstore.audit.snapshot import DatabaseInUse, open_audit_log
from secretstore.audit.store import AUDIT_PREFIX, AuditFlusher, LevelDbAuditStore, entry_key
from secretstore.cli.audit import main as audit_main
from secretstore.errors import AuditLogError, StorageError
from secretstore.storage.leveldb import LevelDbKeyStorage
from tests.unit.audit.logs import NODE, NODES, REQUESTER, facts

OPERATIONS = list(Operation)


def write_log(path: Path, entries: int) -> bytes:
    """A key database at `path` with `entries` entries; returns the head hash."""
    with LevelDbKeyStorage(path) as storage:
        recorder = AuditRecorder(LevelDbAuditStore(storage), NodeSigner(NODE))
        for i in range(entries):
            recorder.record(facts(i, OPERATIONS[i % len(OPERATIONS)]))
        return recorder.head


def test_entries_survive_a_reopen_and_the_chain_goes_on(tmp_path: Path) -> None:
    path = tmp_path / "db"
    head = write_log(path, 5)
    with LevelDbKeyStorage(path) as storage:
        store = LevelDbAuditStore(storage)
        recorder = AuditRecorder(store, NodeSigner(NODE))
        assert recorder.entries == 5 and recorder.head == head
        recorder.record(facts(5))
        report = verify_log(store.records(), NODE.node_id)
        assert report.ok and len(report.entries) == 6
        assert list(storage.ids()) == []  # audit keys are not share records
    with pytest.raises(AuditLogError, match="another node"), LevelDbKeyStorage(path) as storage:
        AuditRecorder(LevelDbAuditStore(storage), NodeSigner(NODES[1]))


def test_an_append_to_a_closed_database_fails_with_an_audit_error(tmp_path: Path) -> None:
    storage = LevelDbKeyStorage(tmp_path / "db")
    recorder = AuditRecorder(LevelDbAuditStore(storage), NodeSigner(NODE))
    storage.close()
    with pytest.raises(AuditLogError, match="could not write audit entry 0"):
        recorder.record(facts(0))
    assert recorder.entries == 0


def test_no_database_and_a_database_in_use_are_named(tmp_path: Path) -> None:
    with pytest.raises(StorageError, match="no key database"), open_audit_log(tmp_path / "none"):
        pass
    path = tmp_path / "db"
    write_log(path, 3)
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(
                f"""
                import sys, plyvel
                db = plyvel.DB({str(path)!r})
                print("open", flush=True)
                sys.stdin.read()
                """
            ),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == b"open\n"
        with pytest.raises(DatabaseInUse, match="--snapshot"), open_audit_log(path):
            pass
        with open_audit_log(path, snapshot=True) as store:
            report = verify_log(store.records(), NODE.node_id)
        assert report.ok and len(report.entries) == 3
        assert sorted(p.name for p in tmp_path.iterdir()) == ["db"]  # the copy is gone
        assert audit_main(["verify", "--db", str(path)]) == 2
        assert audit_main(["verify", "--db", str(path), "--snapshot", "--quiet"]) == 0
    finally:
        assert holder.stdin is not None
        holder.stdin.close()
        holder.wait(10)


def _tamper(path: Path, how: str) -> None:
    db = plyvel.DB(str(path))
    try:
        if how == "change":
            record = bytearray(db.get(entry_key(3)))
            record[60] ^= 0x01
            db.put(entry_key(3), bytes(record), sync=True)
        elif how == "remove":
            db.delete(entry_key(3), sync=True)
        else:
            first, second = db.get(entry_key(3)), db.get(entry_key(5))
            db.put(entry_key(3), second, sync=True)
            db.put(entry_key(5), first, sync=True)
    finally:
        db.close()


@pytest.mark.parametrize("how", ["change", "remove", "reorder"])
def test_verify_finds_tampering_in_the_database(
    tmp_path: Path, how: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "db"
    write_log(path, 8)
    assert audit_main(["verify", "--db", str(path), "--node", NODE.node_id.hex()]) == 0
    assert "verified: the chain is whole" in capsys.readouterr().out
    _tamper(path, how)
    assert audit_main(["verify", "--db", str(path), "--quiet"]) == 1
    out = capsys.readouterr().out
    assert "does NOT verify" in out and "the first at entry 3" in out
    expected = {
        "change": "PROBLEM entry 3: its signature is not the node's",
        "remove": "PROBLEM entry 3: entry 3 is missing (removed)",
        "reorder": "PROBLEM entry 3: holds entry 5 (moved or reordered)",
    }[how]
    assert expected in out
    if how == "reorder":
        assert "PROBLEM entry 5: holds entry 3 (moved or reordered)" in out


def test_verify_prints_the_chosen_entries_and_export_verifies_elsewhere(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "db"
    write_log(path, 18)
    assert audit_main(["verify", "--db", str(path), "--operation", "schnorr"]) == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if "schnorr" in line]
    assert len(lines) == 2 and all(f"requester 0x{REQUESTER.hex()}" in line for line in lines)
    assert "message 0x" + "33" * 32 in lines[0]
    key = facts(4).key_id.hex()
    assert audit_main(["verify", "--db", str(path), "--key", key]) == 0
    assert f"key 0x{key}" in capsys.readouterr().out
    out = tmp_path / "log.jsonl"
    assert audit_main(["export", "--db", str(path), "--out", str(out)]) == 0
    assert "exported: 18 entries" in capsys.readouterr().err
    exported = out.read_text().splitlines()
    assert len(exported) == 18 and '"operation": "generation"' in exported[0]
    assert audit_main(["verify", "--from-export", str(out), "--quiet"]) == 0
    exported[7] = exported[7].replace('"record": "0x01', '"record": "0x02')
    out.write_text("\n".join(exported) + "\n")
    assert audit_main(["verify", "--from-export", str(out), "--quiet"]) == 1
    assert "the first at entry 7" in capsys.readouterr().out


def test_bad_arguments_are_refused_before_reading(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "db"
    write_log(path, 1)
    assert audit_main(["verify", "--db", str(path), "--operation", "sign"]) == 2
    assert "unknown operation" in capsys.readouterr().err
    assert audit_main(["verify", "--db", str(path), "--since", "yesterday"]) == 2
    assert audit_main(["export", "--db", str(path), "--requester", "0x12"]) == 2
    assert audit_main(["nothing"]) == 2
    assert AUDIT_PREFIX.startswith(b"\x02")


def test_unsynced_entries_survive_the_process_being_killed(tmp_path: Path) -> None:
    """`audit_sync = false`: an append has reached the operating system when it returns, so a
    node killed (SIGKILL, no flush, no close) right after keeps every entry."""
    path = tmp_path / "db"
    child = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(
                f"""
                import sys
                from secretstore.audit.receipts import NodeSigner
                from secretstore.audit.recorder import AuditRecorder
                from secretstore.audit.store import LevelDbAuditStore
                from secretstore.storage.leveldb import LevelDbKeyStorage
                from tests.unit.audit.logs import NODE, facts
                storage = LevelDbKeyStorage({str(path)!r})
                recorder = AuditRecorder(LevelDbAuditStore(storage, sync=False), NodeSigner(NODE))
                for i in range(20):
                    recorder.record(facts(i))
                print("appended", flush=True)
                sys.stdin.read()
                """
            ),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[3],
    )
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "appended"
        child.kill()
        child.wait(10)
    finally:
        if child.poll() is None:
            child.kill()
    with LevelDbKeyStorage(path) as storage:
        store = LevelDbAuditStore(storage)
        report = verify_log(store.records(), NODE.node_id)
        assert report.ok and len(report.entries) == 20


async def test_an_unsynced_log_is_flushed_every_interval_and_on_stop(tmp_path: Path) -> None:
    with LevelDbKeyStorage(tmp_path / "db") as storage:
        store = LevelDbAuditStore(storage, sync=False)
        flushes: list[int] = []
        real = store.flush

        def flush() -> None:
            real()
            flushes.append(1)

        store.flush = flush  # type: ignore[method-assign]
        recorder = AuditRecorder(store, NodeSigner(NODE))
        flusher = AuditFlusher(store, interval=0.01)
        flusher.start()
        recorder.record(facts(0))
        for _ in range(500):
            if len(flushes) >= 2:
                break
            await asyncio.sleep(0.01)
        assert len(flushes) >= 2
        before = len(flushes)
        await flusher.stop()
        assert len(flushes) == before + 1  # the last one, before the database closes
    with pytest.raises(StorageError):
        store.flush()  # closed: named, not a crash


class _SpyDb:
    """Records the write options of every put (LevelDB's own handle does not expose them)."""

    def __init__(self) -> None:
        self.puts: list[bool] = []

    def get(self, key: bytes) -> bytes | None:
        return None

    def put(self, key: bytes, value: bytes, *, sync: bool = False) -> None:
        self.puts.append(sync)


class _SpyStorage:
    def __init__(self) -> None:
        self.db = _SpyDb()

    def with_db(self, what: str, action: Callable[[Any], Any]) -> Any:
        return action(self.db)


@pytest.mark.parametrize("sync", [False, True])
def test_appends_follow_the_audit_sync_option(sync: bool) -> None:
    storage = _SpyStorage()
    store = LevelDbAuditStore(storage, sync=sync)  # type: ignore[arg-type]
    store.append(0, b"entry")
    store.append(1, b"entry")
    assert storage.db.puts == [sync, sync]
