"""Read the raw records of a Parity data directory's RocksDB (with rocksdict), changing nothing.

The source is never opened in place: RocksDB (and rocksdict) write files even into a database
opened read-only (an info log, a rocksdict config), so the importer first checks that no
process holds the database's lock (Parity still running), then copies `db/` into a private
temporary directory (mode 0700, beside the target when possible), opens the copy read-only
(its write-ahead log replayed in memory) and deletes it on close.

rocksdict is an optional dependency: `pip install 'secretstore[parity-import]'`.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import Any

from secretstore.errors import ParityImportError
from secretstore.parity_db.layout import (
    CURRENT_COLUMN,
    LEGACY_COLUMN,
    LEGACY_VERSION,
    LEGACY_VERSION_KEY,
    ParityData,
    read_db_version,
)

INSTALL_HINT = "pip install 'secretstore[parity-import]'"


def _rocksdict() -> Any:
    try:
        import rocksdict
    except ImportError:
        raise ParityImportError(
            f"reading a Parity database needs the rocksdict package: {INSTALL_HINT}"
        ) from None
    return rocksdict


def check_not_in_use(db_dir: Path) -> None:
    """ParityImportError if a process (Parity) holds the lock of the RocksDB at `db_dir`."""
    lock = db_dir / "LOCK"
    try:
        fd = os.open(lock, os.O_RDONLY)
    except FileNotFoundError:
        return
    except OSError as exc:
        raise ParityImportError(f"cannot open {lock}: {exc.strerror}") from None
    try:
        try:
            fcntl.lockf(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError:
            raise ParityImportError(
                f"the database {db_dir} is in use (a process holds {lock}): stop the Parity "
                "node first"
            ) from None
        fcntl.lockf(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


class ParityRecords:
    """The records (raw key → raw JSON value) of one Parity data directory.

    Use as a context manager; `items()` yields every record once in key order and `get`
    reads one. The database version (3 or 4) is read on entry; the legacy version key of a
    version-3 database is checked and never yielded.
    """

    def __init__(self, data: ParityData, scratch_parent: Path | None = None) -> None:
        self.data = data
        self.version = read_db_version(data)
        self._scratch_parent = scratch_parent
        self._scratch: Path | None = None
        self._db: Any = None
        self._column: Any = None

    # --- opening and closing --------------------------------------------------------------
    def __enter__(self) -> ParityRecords:
        try:
            self._open()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def _open(self) -> None:
        rocksdict = _rocksdict()
        source = self.data.db_dir
        check_not_in_use(source)
        parent = self._scratch_parent
        if parent is not None and not parent.is_dir():
            parent = None
        self._scratch = Path(tempfile.mkdtemp(prefix=".parity-import-", dir=parent))
        copy = self._scratch / "db"
        try:
            shutil.copytree(source, copy, ignore=shutil.ignore_patterns("LOCK"))
        except (OSError, shutil.Error) as exc:
            raise ParityImportError(f"cannot copy {source}: {exc}") from None
        options = rocksdict.Options(raw_mode=True)
        try:
            families = rocksdict.Rdict.list_cf(str(copy), options)
            self._db = rocksdict.Rdict(
                str(copy),
                options,
                column_families={name: rocksdict.Options(raw_mode=True) for name in families},
                access_type=rocksdict.AccessType.read_only(False),
            )
        except Exception as exc:  # rocksdict raises plain Exception
            raise ParityImportError(f"cannot open the RocksDB database {source}: {exc}") from None
        column = LEGACY_COLUMN if self.version == LEGACY_VERSION else CURRENT_COLUMN
        if column not in families:
            raise ParityImportError(
                f"the database {source} (version {self.version}) has no column family "
                f"{column!r} (it has {sorted(families)})"
            )
        self._column = self._db if column == LEGACY_COLUMN else self._db.get_column_family(column)
        if self.version == LEGACY_VERSION:
            self._check_legacy_format()

    def _check_legacy_format(self) -> None:
        marker = self._column.get(LEGACY_VERSION_KEY)
        if marker is None:
            if next(self.items(), None) is None:
                return
            raise ParityImportError(
                f"the database {self.data.db_dir} has no {self.data.version_file.name} file "
                "and no version record: its records are of a format older than version 3. "
                "Open it once with Parity Ethereum 2.x, which upgrades it, then import it"
            )
        format_ = marker[0] if marker else 0
        if format_ != LEGACY_VERSION:
            raise ParityImportError(
                f"the database {self.data.db_dir} holds records of format {format_}; this "
                f"importer reads formats {LEGACY_VERSION} and 4 (open it once with Parity "
                "Ethereum 2.x to upgrade an older one)"
            )

    def close(self) -> None:
        if self._db is not None:
            db, self._db, self._column = self._db, None, None
            # A read-only copy that is deleted next: a failure to close it changes nothing.
            with contextlib.suppress(Exception):
                db.close()
        if self._scratch is not None:
            scratch, self._scratch = self._scratch, None
            shutil.rmtree(scratch, ignore_errors=True)

    # --- reading --------------------------------------------------------------------------
    def _require_open(self) -> Any:
        if self._column is None:
            raise ParityImportError(f"the records of {self.data.data_dir} are not open")
        return self._column

    def items(self) -> Iterator[tuple[bytes, bytes]]:
        column = self._require_open()
        legacy = self.version == LEGACY_VERSION
        try:
            for key, value in column.items():
                if legacy and key == LEGACY_VERSION_KEY:
                    continue
                yield bytes(key), bytes(value)
        except ParityImportError:
            raise
        except Exception as exc:
            raise ParityImportError(f"cannot read {self.data.db_dir}: {exc}") from None

    def get(self, key: bytes) -> bytes | None:
        column = self._require_open()
        try:
            value = column.get(key)
        except Exception as exc:
            raise ParityImportError(f"cannot read {self.data.db_dir}: {exc}") from None
        return None if value is None else bytes(value)
