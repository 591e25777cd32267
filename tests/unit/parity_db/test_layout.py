"""Recognising a Parity data directory, reading its version, and the key storage refusing to
open one (files laid out by hand: only their names matter here)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from secretstore.errors import ParityImportError, StorageError
from secretstore.parity_db.layout import find_parity_data, locate_source, read_db_version
from secretstore.storage.leveldb import LevelDbKeyStorage


def rocksdb_files(directory: Path) -> Path:
    directory.mkdir(parents=True)
    for name in ("CURRENT", "IDENTITY", "MANIFEST-000005", "OPTIONS-000007", "000008.log"):
        (directory / name).write_text("x")
    return directory


def parity_dir(root: Path, version: str | None = "4") -> Path:
    rocksdb_files(root / "db")
    if version is not None:
        (root / "db_version").write_text(version)
    return root


def test_a_parity_data_directory_is_recognised_with_or_without_its_version_file(
    tmp_path: Path,
) -> None:
    with_file = parity_dir(tmp_path / "a")
    found = find_parity_data(with_file)
    assert found is not None and found.data_dir == with_file
    assert "db_version" in found.evidence
    legacy = parity_dir(tmp_path / "b", version=None)
    found = find_parity_data(legacy)
    assert found is not None and found.data_dir == legacy
    assert f"a RocksDB database in {legacy / 'db'}" in found.evidence


def test_the_rocksdb_directory_inside_is_recognised_as_its_parent(tmp_path: Path) -> None:
    root = parity_dir(tmp_path / "p")
    found = find_parity_data(root / "db")
    assert found is not None and found.data_dir == root
    bare = rocksdb_files(tmp_path / "bare")
    found = find_parity_data(bare)
    assert found is not None and "is a RocksDB database" in found.evidence


def test_our_own_databases_and_empty_directories_are_not_parity(tmp_path: Path) -> None:
    assert find_parity_data(tmp_path / "missing") is None
    (tmp_path / "empty").mkdir()
    assert find_parity_data(tmp_path / "empty") is None
    with LevelDbKeyStorage(tmp_path / "ours"):
        pass
    assert find_parity_data(tmp_path / "ours") is None


@pytest.mark.parametrize(("text", "version"), [("4", 4), ("4\n", 4), (None, 3)])
def test_the_database_version(tmp_path: Path, text: str | None, version: int) -> None:
    found = find_parity_data(parity_dir(tmp_path / "p", text))
    assert found is not None and read_db_version(found) == version


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("5", "version 5, newer than the versions this importer reads (3, 4)"),
        ("2", "version 2, not one of the versions"),
        ("four", "does not hold a database version"),
        ("", "does not hold a database version"),
    ],
)
def test_other_versions_are_refused(tmp_path: Path, text: str, expected: str) -> None:
    found = find_parity_data(parity_dir(tmp_path / "p", text))
    assert found is not None
    with pytest.raises(ParityImportError, match=re.escape(expected)):
        read_db_version(found)


def test_the_importer_source_must_be_the_data_directory(tmp_path: Path) -> None:
    root = parity_dir(tmp_path / "p")
    assert locate_source(root).data_dir == root
    with pytest.raises(ParityImportError, match=f"pass the directory that holds it as db/.*{root}"):
        locate_source(root / "db")
    with pytest.raises(ParityImportError, match="is not a directory"):
        locate_source(tmp_path / "nothing")
    (tmp_path / "other").mkdir()
    with pytest.raises(ParityImportError, match="is not a Parity Secret Store data directory"):
        locate_source(tmp_path / "other")


@pytest.mark.parametrize("inside", [False, True])
def test_the_key_storage_refuses_a_parity_directory_and_writes_nothing(
    tmp_path: Path, inside: bool
) -> None:
    root = parity_dir(tmp_path / "parity")
    before = sorted(p.name for p in root.rglob("*"))
    path = root / "db" if inside else root
    with pytest.raises(StorageError) as caught:
        LevelDbKeyStorage(path)
    message = str(caught.value)
    assert message.startswith(f"{path} holds a Parity Secret Store key database")
    assert f"secretstore import-parity --from {root} --to NEW_DIR" in message
    assert "docs/MIGRATING.md" in message
    assert sorted(p.name for p in root.rglob("*")) == before
