"""`secretstore restore`: rebuild a node's key database from its verifiable backup.

The node is the one the config names (its node key must be the backup's node). Nothing is
written until the whole file verifies (the node's signature, every share's proofs) and every
share decrypts with the backup secret to the share behind its commitments; the database is
then written into a new directory next to the configured one and renamed into place, so a
failed restore leaves nothing. The configured database path must not hold a database.

Exit status: 0 restored; 1 the backup does not verify or decrypt (nothing written); 2 the
command cannot run (bad arguments, another node's backup, a database in the way).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from secretstore.backup.archive import BackupError, decrypt_archive, verify_archive
from secretstore.cli.account import UsageError as AccountUsageError
from secretstore.cli.account import read_secret_file
from secretstore.cli.backup import (
    EXIT_BROKEN,
    EXIT_FAILED,
    EXIT_OK,
    UnreadableBackup,
    UsageError,
    read_archive,
    report_lines,
)
from secretstore.config.loader import load_config
from secretstore.crypto.rng import OsRng
from secretstore.encoding import to_hex
from secretstore.errors import SecretStoreError
from secretstore.storage.leveldb import LevelDbKeyStorage


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="secretstore restore",
        description="Rebuild a node's key database from its backup (same node key).",
        epilog="See docs/LIFECYCLE.md.",
    )
    parser.add_argument("--config", type=Path, required=True, help="the node's TOML config")
    parser.add_argument("--backup", type=Path, required=True, metavar="FILE")
    parser.add_argument(
        "--backup-secret-file", required=True, metavar="FILE",
        help="file holding the backup secret as hex",
    )  # fmt: skip
    return parser


def _in_the_way(path: Path) -> bool:
    return path.exists() and (not path.is_dir() or any(path.iterdir()))


def _restore(args: argparse.Namespace) -> int:
    try:
        secret = read_secret_file(args.backup_secret_file)
    except AccountUsageError as exc:
        raise UsageError(str(exc)) from None
    config = load_config(args.config).secretstore
    node = config.key_pair.node_id
    target = Path(config.path)
    started = time.monotonic()
    try:
        archive = read_archive(args.backup)
    except UnreadableBackup as exc:
        print(f"PROBLEM {exc}\nnothing restored")
        return EXIT_BROKEN
    if archive.node != node:
        raise UsageError(
            f"the backup is of node {to_hex(archive.node)}, the config's node is {to_hex(node)}"
        )
    if _in_the_way(target):
        raise UsageError(f"{target} is not empty: move the old database away first")
    report = verify_archive(archive, OsRng(), expected_node=node)
    if not report.ok:
        for line in report_lines(report):
            print(line)
        print("nothing restored")
        return EXIT_BROKEN
    try:
        records = decrypt_archive(archive, secret)
    except BackupError as exc:
        print(f"PROBLEM {exc}\nnothing restored")
        return EXIT_BROKEN
    target.parent.mkdir(parents=True, exist_ok=True)
    building = Path(tempfile.mkdtemp(prefix=f".{target.name}.restore-", dir=target.parent))
    try:
        with LevelDbKeyStorage(building / "db", cache_size=0) as storage:
            for key_id, record in records:
                storage.insert(key_id, record)
            for tombstone in archive.tombstones:
                storage.bury(tombstone.key_id, tombstone)
        if target.exists():
            target.rmdir()
        os.replace(building / "db", target)
    finally:
        shutil.rmtree(building, ignore_errors=True)
    print(
        f"restored {target}: {len(records)} keys, {report.versions} share versions, "
        f"{len(archive.tombstones)} tombstones, in {time.monotonic() - started:.1f} s"
    )
    return EXIT_OK


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(sys.argv[1:] if argv is None else argv)
    try:
        return _restore(args)
    except (UsageError, SecretStoreError) as exc:
        print(f"secretstore restore: {exc}", file=sys.stderr)
        return EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
