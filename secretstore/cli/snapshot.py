"""`secretstore snapshot`: a verified copy of a node's key database, safe while the node runs."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Final

from secretstore.cli.common import EXIT_OK, UsageError, expand, parse_args, parser, run
from secretstore.config.loader import load_config
from secretstore.errors import ConfigError
from secretstore.observe.health import plural
from secretstore.storage.snapshot import snapshot_database

DESCRIPTION: Final = (
    "Copy a node's key database directory to a new directory, while the node runs or not, "
    "and verify the copy: it is opened as a key database and every key share in it is read."
)
EPILOG: Final = """\
The database is the node's [secretstore] path: give it with --db, or give the node's config
with --config. --out is the new directory (default: DB.snapshot-<UTC time> beside the
database); it is made private (0700), as the copy holds this node's key shares. To restore,
stop the node, move its database away and put the snapshot in its place.
"""


def _database(args: argparse.Namespace) -> Path:
    if args.db is not None:
        return expand(args.db)
    config = load_config(expand(args.config))
    return config.secretstore.path


def _snapshot(args: argparse.Namespace) -> int:
    try:
        source = _database(args)
    except ConfigError as exc:
        raise UsageError(str(exc)) from exc
    if args.out is not None:
        destination = expand(args.out)
    else:
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        destination = source.with_name(f"{source.name}.snapshot-{stamp}")
    result = snapshot_database(source, destination)
    print(
        f"{destination}: {plural(result.keys, 'key')}, {plural(result.files, 'file')}, "
        f"{result.size / 1e6:.1f} MB, verified, in {result.seconds:.1f} s"
        + (f" ({result.attempts} attempts)" if result.attempts > 1 else "")
    )
    return EXIT_OK


def main(argv: list[str]) -> int:
    p = parser("snapshot", DESCRIPTION, EPILOG)
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--db", help="the key database directory ([secretstore] path)")
    source.add_argument("--config", help="the node's TOML config (its [secretstore] path)")
    p.add_argument("--out", help="the snapshot directory to create")
    args = parse_args(p, argv)
    if isinstance(args, int):
        return args
    return run("snapshot", lambda: _snapshot(args))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
