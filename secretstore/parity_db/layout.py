"""Where a Parity Secret Store keeps its keys on disk, and how to recognise it.

Parity's `[secretstore] path` (its data directory, `$BASE/secretstore` by default) holds:

    db/          a RocksDB database (CURRENT, IDENTITY, MANIFEST-*, OPTIONS-*, *.sst, *.log)
    db_version   the database version in ASCII decimal: "4" (Secret Store 1.0 and Parity
                 Ethereum from 2.6.7 on; records in column family "col0")

With no `db_version` file the database is older (Parity reads it as version 3): records in
RocksDB's "default" column family beside a `b"version"` key whose first byte is the record
format (3; Parity Ethereum before 2.6.7). Formats 0-2 (before key versions existed) are not
read here: Parity Ethereum upgraded them to 3 when it opened them.

`find_parity_data` recognises such a directory, or the RocksDB directory inside it, so that
the node refuses to start on one instead of creating a LevelDB beside Parity's files.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Final

from secretstore.errors import ParityImportError

DB_DIR: Final = "db"
VERSION_FILE: Final = "db_version"
#: The database version Parity Secret Store 1.0 writes, and its column family.
CURRENT_VERSION: Final = 4
CURRENT_COLUMN: Final = "col0"
#: The version Parity assumes without a version file, its column family and version key.
LEGACY_VERSION: Final = 3
LEGACY_COLUMN: Final = "default"
LEGACY_VERSION_KEY: Final = b"version"
SUPPORTED_VERSIONS: Final = (LEGACY_VERSION, CURRENT_VERSION)


def _is_rocksdb(directory: Path) -> bool:
    """RocksDB writes IDENTITY and OPTIONS-* files; LevelDB writes neither."""
    try:
        if (directory / "IDENTITY").is_file():
            return True
        return any(directory.glob("OPTIONS-*"))
    except OSError:
        return False


@dataclass(frozen=True, slots=True)
class ParityData:
    """A Parity Secret Store data directory found on disk (nothing read from it yet)."""

    #: the data directory (Parity's `[secretstore] path`)
    data_dir: Path
    #: what was seen, for messages
    evidence: str

    @property
    def db_dir(self) -> Path:
        return self.data_dir / DB_DIR

    @property
    def version_file(self) -> Path:
        return self.data_dir / VERSION_FILE


def find_parity_data(path: Path) -> ParityData | None:
    """The Parity data directory at `path` (or whose RocksDB directory `path` is), or None."""
    path = Path(path)
    if (path / VERSION_FILE).is_file():
        return ParityData(path, f"a Parity key database version file {path / VERSION_FILE}")
    if (path / DB_DIR / "CURRENT").is_file() and _is_rocksdb(path / DB_DIR):
        return ParityData(path, f"a RocksDB database in {path / DB_DIR}")
    if _is_rocksdb(path):
        parent = path.parent
        if path.name == DB_DIR and (parent / VERSION_FILE).is_file():
            return ParityData(parent, f"{path} is the RocksDB database of {parent}")
        return ParityData(path, f"{path} is a RocksDB database")
    return None


def refusal_message(path: Path, found: ParityData) -> str:
    """Why the node does not open `path` as its key database, and what to do instead."""
    return (
        f"{path} holds a Parity Secret Store key database ({found.evidence}); this node keeps "
        "its keys in LevelDB and does not read or change Parity's database. Stop Parity, "
        f"import its keys with `secretstore import-parity --from {found.data_dir} --to "
        "NEW_DIR --node-id NODE_ID` (or --config NODE_TOML), then set [secretstore] path to "
        "NEW_DIR (docs/MIGRATING.md)"
    )


def read_db_version(data: ParityData) -> int:
    """The database version of a Parity data directory: its version file, else 3."""
    try:
        text = data.version_file.read_text(encoding="ascii")
    except FileNotFoundError:
        return LEGACY_VERSION
    except (OSError, UnicodeDecodeError) as exc:
        raise ParityImportError(f"cannot read {data.version_file}: {exc}") from None
    stripped = text.strip()
    if not (stripped.isascii() and stripped.isdigit()) or len(stripped) > 3:
        raise ParityImportError(
            f"{data.version_file} does not hold a database version (expected a number)"
        )
    version = int(stripped)
    if version not in SUPPORTED_VERSIONS:
        newer = "newer than" if version > CURRENT_VERSION else "not one of"
        raise ParityImportError(
            f"{data.version_file} says database version {version}, {newer} the versions this "
            f"importer reads ({', '.join(map(str, SUPPORTED_VERSIONS))})"
        )
    return version


def locate_source(path: Path) -> ParityData:
    """The Parity data directory the importer was pointed at; ParityImportError if `path`
    is not one (with a hint when it is the `db` directory inside one)."""
    path = Path(path)
    if not path.is_dir():
        raise ParityImportError(f"{path} is not a directory")
    if (path / DB_DIR / "CURRENT").is_file():
        return ParityData(path, f"a RocksDB database in {path / DB_DIR}")
    if (path / "CURRENT").is_file() and _is_rocksdb(path):
        raise ParityImportError(
            f"{path} is a RocksDB directory, not a Parity data directory: pass the directory "
            f"that holds it as {DB_DIR}/ (Parity's [secretstore] path, here probably "
            f"{path.parent})"
        )
    raise ParityImportError(
        f"{path} is not a Parity Secret Store data directory (no RocksDB database in "
        f"{path / DB_DIR})"
    )
