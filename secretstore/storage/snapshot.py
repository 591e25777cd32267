"""Copies of a key database directory made while its node runs, and opening a database for
reading (the audit log and the backup read it so).

LevelDB's table files never change once written; its write-ahead log and MANIFEST only grow;
CURRENT is replaced atomically. A copy therefore takes CURRENT first, then the MANIFEST it
names, then every other file. Writes during the copy are harmless: the copied log ends in a
whole record or in a torn one, which recovery drops (that write is after the snapshot's point
in time). A memtable flush or a compaction during the copy is not: it appends to the MANIFEST
and then deletes the log or tables it replaced, so the copy may lack a file the copied MANIFEST
needs (recovery refuses it) or, worse, the log of writes acknowledged before the copy began
(recovery does not notice: the flushed table is not in the copied MANIFEST). So a copy whose
source MANIFEST grew or whose CURRENT changed while it was made is thrown away, every copy is
opened as a key database (LevelDB's own recovery) before it is used, and a copy that fails
either way is made again, up to `attempts` times. The copy is the database as it was at some
moment during the copy.

`snapshot_database` keeps its copy in a new directory, verified by reading and decoding every
share in it. `open_database(path, snapshot=True)` opens a private copy next to the database and
removes it afterwards (a running node holds its LevelDB's lock, so the database itself cannot
be opened a second time); without `snapshot` it opens the database of a stopped node.

Every copy's directory has mode 0700 and every file in it mode 0600, like the database itself:
it holds this node's key shares.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from secretstore.errors import SecretStoreError, StorageError
from secretstore.storage.leveldb import LevelDbKeyStorage

#: Files of a LevelDB directory that a copy leaves out: the lock and the info logs.
_SKIPPED: Final = frozenset({"LOCK", "LOG", "LOG.old"})
DEFAULT_ATTEMPTS: Final = 5
_CHUNK: Final = 1 << 20


class SnapshotError(SecretStoreError):
    """A snapshot could not be made; names the directory and the cause."""


class DatabaseInUse(StorageError):
    """The database is locked by a running node."""


@dataclass(frozen=True, slots=True)
class SnapshotResult:
    destination: Path
    keys: int
    files: int
    size: int
    attempts: int
    seconds: float


def _copy_file(source: Path, target: Path) -> int:
    """Copy one file into a new file of mode 0600; returns its size. FileNotFoundError when
    the source went away (a compaction deleted it)."""
    with open(source, "rb") as reader:
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as writer:
            shutil.copyfileobj(reader, writer, _CHUNK)
            writer.flush()
            os.fsync(writer.fileno())
            return writer.tell()


class _ChangedDuringCopy(StorageError):
    """The MANIFEST grew (a flush or compaction) or CURRENT changed while files were copied."""


def _require_unchanged(source: Path, current: bytes, manifest: str, copied: int) -> None:
    """The copied MANIFEST still describes the database: a memtable flush or a compaction
    appends to it before it deletes the log or tables it replaces, so while it has not grown
    every file it names was there through the copy (a log already copied may have been
    superseded by one the copy also has). One that grew may leave the copy without the log
    of writes acknowledged before it began, which recovery would not notice."""
    try:
        same = (source / "CURRENT").read_bytes() == current and (
            os.stat(source / manifest).st_size == copied
        )
    except FileNotFoundError:
        same = False
    if not same:
        raise _ChangedDuringCopy(f"{source} was flushed or compacted during the copy")


def _copy_once(source: Path, target: Path) -> tuple[int, int]:
    """One copy attempt into the empty directory `target`: (files, bytes)."""
    current = (source / "CURRENT").read_bytes()
    manifest = current.decode("ascii", "replace").strip()
    if not manifest.startswith("MANIFEST-") or "/" in manifest:
        raise SnapshotError(f"{source}/CURRENT does not name a MANIFEST file")
    copied_manifest = _copy_file(source / manifest, target / manifest)
    size = copied_manifest
    files = 1
    for entry in sorted(os.listdir(source)):
        if entry in _SKIPPED or entry in ("CURRENT", manifest) or entry.startswith("."):
            continue
        if not (source / entry).is_file():
            continue
        size += _copy_file(source / entry, target / entry)
        files += 1
    _require_unchanged(source, current, manifest, copied_manifest)
    fd = os.open(target / "CURRENT", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as writer:
        writer.write(current)
        writer.flush()
        os.fsync(writer.fileno())
    return files + 1, size + len(current)


def _make_private(directory: Path) -> None:
    for entry in directory.iterdir():
        if entry.is_file():
            entry.chmod(0o600)


def verify_snapshot(path: Path) -> int:
    """Open a copied key database and decode every share in it; returns the number of keys.
    Raises StorageError for a copy that LevelDB cannot open or that holds a bad record."""
    if not (path / "CURRENT").is_file():
        raise StorageError(f"{path} is not a LevelDB directory (no CURRENT file)")
    with LevelDbKeyStorage(path, cache_size=0) as storage:
        count = 0
        for key_id in storage.ids():
            if storage.get(key_id) is None:
                raise StorageError(f"{path}: key 0x{key_id.hex()} vanished while being read")
            count += 1
        return count


def snapshot_database(
    source: Path, destination: Path, *, attempts: int = DEFAULT_ATTEMPTS
) -> SnapshotResult:
    """Copy the key database `source` (in use or not) to the new directory `destination`."""
    started = time.monotonic()
    source, destination = Path(source), Path(destination)
    if not (source / "CURRENT").is_file():
        raise SnapshotError(f"{source} is not a key database directory (no CURRENT file)")
    if destination.exists():
        raise SnapshotError(f"{destination} exists already; give a new directory")
    destination.parent.mkdir(parents=True, exist_ok=True)
    last: BaseException | None = None
    for attempt in range(1, attempts + 1):
        partial = destination.with_name(f".{destination.name}.partial")
        shutil.rmtree(partial, ignore_errors=True)
        os.mkdir(partial, 0o700)
        try:
            files, size = _copy_once(source, partial)
            keys = verify_snapshot(partial)
        except FileNotFoundError as exc:  # a compaction removed a file: copy again
            last = exc
        except StorageError as exc:  # the copy does not open (a file it needs went away)
            last = exc
        else:
            _make_private(partial)  # the files recovery wrote follow the process umask
            os.replace(partial, destination)
            return SnapshotResult(
                destination, keys, files, size, attempt, time.monotonic() - started
            )
        shutil.rmtree(partial, ignore_errors=True)
        time.sleep(0.05 * attempt)
    raise SnapshotError(
        f"no consistent copy of {source} after {attempts} attempts (last: {last}); "
        "is the node compacting heavily? try again, or stop the node and copy"
    )


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


@contextmanager
def _opened_copy(path: Path, attempts: int) -> Iterator[LevelDbKeyStorage]:
    last: BaseException | None = None
    for attempt in range(1, attempts + 1):
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
    raise StorageError(f"no consistent copy of {path} after {attempts} attempts: {last}")


@contextmanager
def open_database(
    path: Path, *, snapshot: bool = False, attempts: int = DEFAULT_ATTEMPTS
) -> Iterator[LevelDbKeyStorage]:
    """The key database at `path`, for reading (see the module docstring). DatabaseInUse
    when its node runs and `snapshot` is False; StorageError when there is no database or it
    cannot be read."""
    path = Path(path)
    if not (path / "CURRENT").is_file():
        raise StorageError(f"{path} holds no key database (no CURRENT file)")
    if snapshot:
        with _opened_copy(path, attempts) as storage:
            yield storage
        return
    if database_in_use(path):
        raise DatabaseInUse(
            f"the key database {path} is locked: its node is running. Stop the node, or pass "
            "--snapshot to read a private copy of the database made while it runs"
        )
    with LevelDbKeyStorage(path, cache_size=0) as storage:
        yield storage
