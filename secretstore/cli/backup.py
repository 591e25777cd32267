"""`secretstore backup create|verify`: a node's shares encrypted to a backup key, with proofs.

`create` reads the node's database (--config with the node's TOML; --snapshot for a running
node) and writes every key record with its shares encrypted to `--backup-public` and proved
to match the key's public commitments, and the node's tombstones, signed with the node key
(secretstore/backup/archive.py). `verify` checks a file with no secret at all: the node's
signature and every share's proofs. `secretstore restore` rebuilds the database from it.

Exit status: 0 done / the file verifies; 1 the file does not verify (every problem named);
2 the command cannot run (bad arguments, no database, a database in use without --snapshot,
a key that cannot be backed up).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from secretstore.backup.archive import (
    Archive,
    ArchiveReport,
    BackupKey,
    backup_key,
    decode_archive,
    encode_archive,
    verify_archive,
)
from secretstore.config.loader import load_config
from secretstore.crypto.curve import Point
from secretstore.crypto.rng import OsRng
from secretstore.encoding import parse_hex, to_hex
from secretstore.errors import CryptoError, SecretStoreError
from secretstore.storage.snapshot import open_database
from secretstore.types import NodeId

EXIT_OK = 0
EXIT_BROKEN = 1
EXIT_FAILED = 2


class UsageError(Exception):
    """A command-line argument that cannot be used."""


class UnreadableBackup(Exception):
    """A file that is not a well-formed backup (changed, cut short, or another file)."""


def parse_backup_public(text: str) -> Point:
    """A public key as 64-byte hex (x‖y, as `secretstore keygen` prints it) or SEC1."""
    try:
        raw = parse_hex(text.strip(), what="--backup-public")
        point = Point.from_bytes(raw) if len(raw) == 64 else Point.from_sec1(raw)
    except (SecretStoreError, CryptoError) as exc:
        raise UsageError(f"--backup-public: not a public key ({exc})") from None
    if point.is_identity():
        raise UsageError("--backup-public: not a public key")
    return point


def read_archive(path: Path) -> Archive:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc}") from None
    try:
        return decode_archive(data)
    except SecretStoreError as exc:
        raise UnreadableBackup(f"{path} is not a well-formed backup: {exc}") from None


def report_lines(report: ArchiveReport) -> list[str]:
    lines = [
        f"backup of node {to_hex(report.node)}: {report.keys} keys, {report.versions} share "
        f"versions, {report.tombstones} tombstones"
    ]
    if report.ok:
        lines.append("verified: signed by the node; every share proves to match its commitments")
    else:
        lines += [f"PROBLEM {problem}" for problem in report.problems]
        lines.append(f"does NOT verify: {len(report.problems)} problems")
    return lines


def write_private(path: Path, data: bytes) -> None:
    """Write `data` to a new file of mode 0600 (through a temporary name, then renamed)."""
    temporary = path.with_name(f".{path.name}.partial")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(data)
        out.flush()
        os.fsync(out.fileno())
    os.replace(temporary, path)


def _create(args: argparse.Namespace) -> int:
    backup_public = parse_backup_public(args.backup_public)
    config = load_config(args.config).secretstore
    pair = config.key_pair
    if args.out.exists():
        raise UsageError(f"{args.out} exists: give a new file")
    rng = OsRng()
    started = time.monotonic()
    keys: list[BackupKey] = []
    with open_database(config.path, snapshot=args.snapshot) as storage:
        for key_id in sorted(storage.ids()):
            record = storage.get(key_id)
            if record is not None:
                keys.append(backup_key(pair.node_id, key_id, record, backup_public, rng))
        tombstones = list(storage.tombstones())
    data = encode_archive(
        pair.secret,
        pair.node_id,
        backup_public,
        created_ms=int(time.time() * 1000),
        keys=keys,
        tombstones=tombstones,
    )
    write_private(args.out, data)
    versions = sum(len(key.shares) for key in keys)
    print(
        f"wrote {args.out}: {len(keys)} keys, {versions} share versions, {len(tombstones)} "
        f"tombstones, {len(data)} bytes, in {time.monotonic() - started:.1f} s"
    )
    return EXIT_OK


def _verify(args: argparse.Namespace) -> int:
    try:
        archive = read_archive(args.file)
    except UnreadableBackup as exc:
        print(f"PROBLEM {exc}\ndoes NOT verify")
        return EXIT_BROKEN
    expected = None
    if args.node is not None:
        try:
            expected = NodeId(parse_hex(args.node.strip(), 64, what="--node"))
        except SecretStoreError as exc:
            raise UsageError(str(exc)) from None
    report = verify_archive(archive, OsRng(), expected_node=expected)
    for line in report_lines(report):
        print(line)
    return EXIT_OK if report.ok else EXIT_BROKEN


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="secretstore backup",
        description="A node's shares encrypted to a backup key, verifiable by anyone.",
        epilog="See docs/LIFECYCLE.md. `secretstore restore` rebuilds a node from a backup.",
    )
    verbs = parser.add_subparsers(dest="verb", required=True)
    create = verbs.add_parser("create", help="write a node's backup")
    create.add_argument(
        "--config", type=Path, required=True, help="the node's TOML config (database, node key)"
    )
    create.add_argument(
        "--backup-public", required=True, metavar="HEX",
        help="the backup public key (the `public:` line of `secretstore keygen`)",
    )  # fmt: skip
    create.add_argument("--out", type=Path, required=True, metavar="FILE", help="a new file")
    create.add_argument(
        "--snapshot", action="store_true",
        help="read a private copy of the database (for a node that is running)",
    )  # fmt: skip
    verify = verbs.add_parser("verify", help="check a backup file (no secret needed)")
    verify.add_argument("file", type=Path)
    verify.add_argument("--node", metavar="HEX", help="the node id the backup must be of")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(sys.argv[1:] if argv is None else argv)
    try:
        return _create(args) if args.verb == "create" else _verify(args)
    except (UsageError, SecretStoreError) as exc:
        print(f"secretstore backup {args.verb}: {exc}", file=sys.stderr)
        return EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
