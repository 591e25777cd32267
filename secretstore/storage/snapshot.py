"""Opening a node's key database for reading: the database itself when the node is stopped,
or a private copy of it while the node runs (the audit log and the backup read it so).

A running node holds its LevelDB's lock, so the database cannot be opened a second time.
`open_database(path, snapshot=True)` copies the database directory first (CURRENT, then the
MANIFEST it names, then the other files: table files never change, the write-ahead log only
grows and a torn last record is dropped by LevelDB's recovery), into a new directory of mode
0700 next to the database (it holds the node's key shares), opens the copy and removes it
afterwards. A compaction during the copy can delete a file the copy needs; the copy then
does not open and is made again. The copy is the database as it was at some moment during
the copy: what was written after that is not in it.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Final

from secretstore.errors import StorageError
from secretstore.storage.leveldb import LevelDbKeyStorage

#: Files of a LevelDB directory a copy leaves out: the lock and the info logs.
_SKIPPED: Final = frozenset({"LOCK", "LOG", "LOG.old"})
COPY_ATTEMPTS: Final = 5


class DatabaseInUse(StorageError):
    """The database is locked by a running node."""


def database_in_use(path: Path) -> bool:
    """Whether another process holds the LevelDB lock of the database at `path`."""
    lock = path / "LOCK"
    if not lock.is_file():
        return False
    fd = os.open(lock, os.O_RDWR)
    try:
        fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return True
    else:
        fcntl.lockf(fd, fcntl.LOCK_UN)
        return False
    finally:
        os.close(fd)


def _require_database(path: Path) -> None:
    if not (path / "CURRENT").is_file():
        raise StorageError(f"{path} holds no key database (no CURRENT file)")


def _copy_file(source: Path, target: Path) -> None:
    with open(source, "rb") as reader:
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as writer:
            shutil.copyfileobj(reader, writer, 1 << 20)


def _copy_once(source: Path, target: Path) -> None:
    current = (source / "CURRENT").read_bytes()
    manifest = current.decode("ascii", "replace").strip()
    if not manifest.startswith("MANIFEST-") or "/" in manifest:
        raise StorageError(f"{source}/CURRENT does not name a MANIFEST file")
    _copy_file(source / manifest, target / manifest)
    for entry in sorted(os.listdir(source)):
        if entry in _SKIPPED or entry in ("CURRENT", manifest) or entry.startswith("."):
            continue
        if (source / entry).is_file():
            _copy_file(source / entry, target / entry)
    fd = os.open(target / "CURRENT", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as writer:
        writer.write(current)


@contextmanager
def _opened_copy(path: Path) -> Iterator[LevelDbKeyStorage]:
    last: BaseException | None = None
    for attempt in range(1, COPY_ATTEMPTS + 1):
        copy = Path(tempfile.mkdtemp(prefix=f".{path.name}.copy-", dir=path.parent))
        try:
            try:
                _copy_once(path, copy)
                storage = LevelDbKeyStorage(copy, cache_size=0)
            except (FileNotFoundError, StorageError) as exc:  # a compaction removed a file
                last = exc
            else:
                with storage:
                    yield storage
                return
        finally:
            shutil.rmtree(copy, ignore_errors=True)
        time.sleep(0.05 * attempt)
    raise StorageError(f"no consistent copy of {path} after {COPY_ATTEMPTS} attempts: {last}")


@contextmanager
def open_database(path: Path, *, snapshot: bool = False) -> Iterator[LevelDbKeyStorage]:
    """The key database at `path`, for reading (see the module docstring). DatabaseInUse
    when its node runs and `snapshot` is False; StorageError when there is no database or it
    cannot be read."""
    path = Path(path)
    _require_database(path)
    if snapshot:
        with _opened_copy(path) as storage:
            yield storage
        return
    if database_in_use(path):
        raise DatabaseInUse(
            f"the key database {path} is locked: its node is running. Stop the node, or pass "
            "--snapshot to read a private copy of the database made while it runs"
        )
    with LevelDbKeyStorage(path, cache_size=0) as storage:
        yield storage
