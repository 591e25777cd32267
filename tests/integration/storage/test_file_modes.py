"""The key database on disk is private to the node: real LevelDB files after writes, a
compaction and a reopen; an existing database that others may read is reported and opens."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from secretstore.filemodes import exposure_warning, restrict_umask
from secretstore.storage.leveldb import LevelDbKeyStorage
from tests.unit.storage.strategies import sample_key_id, sample_share


@pytest.fixture
def node_umask() -> Iterator[None]:
    """The umask the node process runs with (set as its entry point sets it), restored after."""
    previous = restrict_umask()
    try:
        yield
    finally:
        os.umask(previous)


@pytest.fixture
def loose_umask() -> Iterator[None]:
    previous = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(previous)


def modes(root: Path) -> dict[str, int]:
    entries = [root, *root.rglob("*")]
    return {str(e.relative_to(root.parent)): stat.S_IMODE(e.lstat().st_mode) for e in entries}


def fill(path: Path, start: int, count: int) -> None:
    with LevelDbKeyStorage(path) as storage:
        for i in range(start, start + count):
            storage.insert(sample_key_id(i), sample_share(i))
        for i in range(start, start + count, 3):
            storage.update(sample_key_id(i), sample_share(i + 1))
        for i in range(start, start + count, 7):
            storage.remove(sample_key_id(i))
        storage._require_open().compact_range()


def test_a_new_database_has_only_private_files(tmp_path: Path, node_umask: None) -> None:
    path = tmp_path / "node" / "db"
    fill(path, 0, 200)
    fill(path, 200, 200)  # reopened: a new log, a new manifest, another compaction
    names = {p.name for p in path.iterdir()}
    assert {"CURRENT", "LOCK", "LOG"} <= names
    assert any(n.startswith("MANIFEST-") for n in names)
    assert any(n.endswith(".ldb") for n in names), names  # the compaction wrote tables
    found = modes(path)
    assert found.pop("db") == 0o700
    assert found and set(found.values()) == {0o600}, found
    assert exposure_warning(path, "the key database") is None
    with LevelDbKeyStorage(path) as storage:
        assert storage.get(sample_key_id(1)) == sample_share(1)


def test_the_directory_is_0700_even_under_a_loose_umask(tmp_path: Path, loose_umask: None) -> None:
    # A library user that did not restrict its umask: LevelDB's files are then 0644, but in a
    # directory no one else can enter.
    path = tmp_path / "db"
    fill(path, 0, 10)
    assert stat.S_IMODE(path.stat().st_mode) == 0o700


def test_an_existing_world_readable_database_is_reported_and_still_opens(
    tmp_path: Path, loose_umask: None
) -> None:
    path = tmp_path / "db"
    fill(path, 0, 50)
    path.chmod(0o755)
    for entry in path.iterdir():
        entry.chmod(0o644)
    warning = exposure_warning(path, "the key database")
    assert warning is not None
    assert f"{path} (mode 0755)" in warning and "chmod -R go-rwx" in warning
    with LevelDbKeyStorage(path) as storage:
        assert storage.get(sample_key_id(1)) == sample_share(1)
    assert stat.S_IMODE(path.stat().st_mode) == 0o755  # the operator's to change, not ours
