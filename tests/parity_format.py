"""Write Parity Secret Store data directories for tests, from KeyShares our own code made.

This is a reconstruction of Parity's on-disk format from its source (paritytech/secret-store
1.0: `src/key_storage.rs` for the record, `src/serialization.rs` for the hex, `src/lib.rs` and
`src/migration.rs` for the layout; Parity Ethereum's `secret-store/src/migration.rs` for the
version-3 layout), not a database written by Parity itself:

- `<dir>/db_version` holds "4"; `<dir>/db` is a RocksDB whose column family "col0"
  (kvdb-rocksdb's name for column 0) maps each 32-byte key id to the record's JSON;
- version 3: no version file, records in the "default" column family beside the key
  b"version" holding the byte 3;
- a record is serde_json's compact output of the struct in field order; H160/H256/H512 are
  `0x` + lower-case hex of every byte, and so are secrets; `id_numbers` is a BTreeMap, so its
  entries come in ascending node id order.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from rocksdict import (
    AccessType,
    BlockBasedOptions,
    DBCompressionType,
    Options,
    Rdict,
    WriteOptions,
)

from secretstore.storage.model import KeyShare
from secretstore.types import ServerKeyId


def _hex(data: bytes) -> str:
    return "0x" + data.hex()


def parity_record_object(share: KeyShare) -> dict[str, Any]:
    """The record as Parity's `SerializableDocumentKeyShareV3` serialises it (a dict in
    field order)."""
    return {
        "author": _hex(share.author),
        "threshold": share.threshold,
        "public": _hex(share.public.to_bytes()),
        "common_point": None if share.common_point is None else _hex(share.common_point.to_bytes()),
        "encrypted_point": (
            None if share.encrypted_point is None else _hex(share.encrypted_point.to_bytes())
        ),
        "versions": [
            {
                "hash": _hex(version.hash),
                "id_numbers": {
                    _hex(node): _hex(number.to_bytes())
                    for node, number in sorted(version.id_numbers, key=lambda pair: pair[0])
                },
                "secret_share": _hex(version.secret_share.to_bytes()),
            }
            for version in share.versions
        ],
    }


def parity_record(share: KeyShare) -> bytes:
    """The record's bytes, as `serde_json::to_vec` writes them."""
    return json.dumps(parity_record_object(share), separators=(",", ":")).encode()


def _kvdb_like_options() -> Options:
    """Options near kvdb-rocksdb's (Parity's RocksDB wrapper): Snappy-compressed blocks with
    a bloom filter; a reader needs none of them to read the files."""
    options = Options(raw_mode=True)
    options.set_compression_type(DBCompressionType.snappy())
    table = BlockBasedOptions()
    table.set_bloom_filter(10, True)
    options.set_block_based_table_factory(table)
    return options


def write_parity_dir(
    directory: Path, records: Mapping[bytes, bytes], *, version: int = 4, legacy_format: int = 3
) -> Path:
    """A Parity data directory at `directory` holding raw `records` (key → value bytes)."""
    directory.mkdir(parents=True, exist_ok=True)
    db_path = directory / "db"
    options = _kvdb_like_options()
    options.create_if_missing(True)
    options.create_missing_column_families(True)
    families = {"col0": _kvdb_like_options()} if version == 4 else {}
    db = Rdict(str(db_path), options, column_families=families)
    sync = WriteOptions()
    sync.sync = True
    try:
        column = db.get_column_family("col0") if version == 4 else db
        if version == 3:
            column.put(b"version", bytes([legacy_format]), sync)
        for key, value in records.items():
            column.put(key, value, sync)
    finally:
        db.close()
    (db_path / "rocksdict-config.json").unlink(missing_ok=True)  # not Parity's
    if version == 4:
        (directory / "db_version").write_text("4")
    return directory


def write_parity_node(
    directory: Path, shares: Mapping[ServerKeyId, KeyShare], *, version: int = 4
) -> Path:
    """One node's Parity data directory holding `shares`, in Parity's record format."""
    return write_parity_dir(
        directory, {key: parity_record(share) for key, share in shares.items()}, version=version
    )


def hold_open(directory: Path) -> Rdict:
    """Open a Parity data directory's RocksDB read-write (holding its lock), as Parity does
    while it runs."""
    return Rdict(
        str(directory / "db"),
        Options(raw_mode=True),
        column_families={"col0": Options(raw_mode=True)},
        access_type=AccessType.read_write(),
    )


def tree_state(directory: Path) -> dict[str, tuple[int, int, bytes]]:
    """Every file under `directory`: (size, mtime_ns, contents) by relative path."""
    return {
        str(path.relative_to(directory)): (
            path.stat().st_size,
            path.stat().st_mtime_ns,
            path.read_bytes(),
        )
        for path in sorted(directory.rglob("*"))
        if path.is_file()
    }
