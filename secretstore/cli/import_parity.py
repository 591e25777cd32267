"""`secretstore import-parity`: import a Parity Secret Store node's keys into our key storage.

Exit status: 0 when every record was imported or was present already; 1 when a record was
refused (nothing written unless --skip-refused); 2 when the import cannot run (bad arguments,
no Parity database, an unsupported database version, Parity still running, rocksdict missing,
an unusable target).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from secretstore.config.loader import load_config
from secretstore.crypto.curve import Point
from secretstore.encoding import parse_hex
from secretstore.errors import CryptoError, SecretStoreError
from secretstore.parity_db.checks import short
from secretstore.parity_db.importer import ImportReport, ImportRequest, PeerDatabase, run_import
from secretstore.types import NodeId

EXIT_OK = 0
EXIT_REFUSED = 1
EXIT_FAILED = 2

_EPILOG = """\
Run it once per node, with Parity stopped, on the node's own Parity data directory (Parity's
[secretstore] path, holding db/ and db_version) and the node's own id (the public key of its
self_secret, as `secretstore keygen` prints it, or --config with the node's TOML). Every
record is checked first; nothing is written while any record is refused (--skip-refused
writes the others). A record stored at the target already is left as it is: the same record
counts as present, a different one is refused. Running the import again is safe.

With --peer (another node's Parity directory, if the operator has it here) or --peer-publics
(the file another node's import wrote with --export-publics), every key's share is also
checked against the other nodes' shares: any t+1 of them must give the key's public.
See docs/MIGRATING.md.
"""


class UsageError(Exception):
    """A command-line argument that cannot be used."""


def _node_id(text: str, what: str) -> NodeId:
    try:
        raw = parse_hex(text.strip(), 64, what=what)
        Point.from_bytes(raw)
    except CryptoError as exc:
        raise UsageError(f"{exc} (a node id is a 64-byte public key in hex)") from None
    return NodeId(raw)


def _peer(text: str) -> PeerDatabase:
    node, sep, path = text.partition("=")
    if not sep or not path:
        raise UsageError(f"--peer {text!r}: expected NODE_ID=DIR")
    return PeerDatabase(_node_id(node, "--peer NODE_ID"), Path(path))


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="secretstore import-parity",
        description="Import one node's keys from a Parity Secret Store database into the "
        "node's LevelDB key storage.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--from", dest="source", required=True, type=Path, metavar="DIR",
        help="the node's Parity data directory (holding db/ and db_version)",
    )  # fmt: skip
    parser.add_argument(
        "--to", dest="target", type=Path, metavar="PATH",
        help="the LevelDB directory to import into (created if missing; default: the "
        "[secretstore] path of --config)",
    )  # fmt: skip
    identity = parser.add_mutually_exclusive_group(required=True)
    identity.add_argument("--node-id", metavar="HEX", help="this node's id (public key hex)")
    identity.add_argument(
        "--config", type=Path, metavar="FILE", help="this node's TOML config (its self_secret)"
    )
    parser.add_argument(
        "--peer", action="append", default=[], metavar="NODE_ID=DIR",
        help="another node's Parity data directory, for the cross-node check (repeatable)",
    )  # fmt: skip
    parser.add_argument(
        "--peer-publics", action="append", default=[], type=Path, metavar="FILE",
        help="another node's share-publics file, for the cross-node check (repeatable)",
    )  # fmt: skip
    parser.add_argument(
        "--export-publics", type=Path, metavar="FILE",
        help="write this node's share publics (no secrets) for the other nodes' checks",
    )  # fmt: skip
    parser.add_argument("--dry-run", action="store_true", help="check only; write nothing")
    parser.add_argument(
        "--skip-refused", action="store_true",
        help="import the records that pass even when others are refused",
    )  # fmt: skip
    return parser


def _request(args: argparse.Namespace) -> ImportRequest:
    target: Path | None = args.target
    if args.config is not None:
        config = load_config(args.config)
        key = config.secretstore.self_key
        if key is None:
            raise UsageError(f"{args.config} has no [secretstore] self_secret")
        node = key.node_id
        if target is None:
            target = config.secretstore.path
    else:
        node = _node_id(args.node_id, "--node-id")
    if target is None:
        raise UsageError("--to is required with --node-id")
    return ImportRequest(
        source=args.source,
        target=target,
        node=node,
        peer_databases=tuple(_peer(text) for text in args.peer),
        peer_publics=tuple(args.peer_publics),
        export_publics=args.export_publics,
        dry_run=args.dry_run,
        skip_refused=args.skip_refused,
    )


def render_report(report: ImportReport, request: ImportRequest) -> list[str]:
    """The lines the command prints (key ids, counts and reasons; never a share)."""
    lines = [
        f"Parity database {report.source} (database version {report.db_version}): "
        f"{report.records} records",
        f"node {short(request.node)} -> {report.target}",
        f"imported: {len(report.imported)}",
        f"already present and identical: {len(report.present)}",
        f"refused: {len(report.refused)}",
        *(f"  {refusal}" for refusal in report.refused),
    ]
    if report.peers:
        lines.append(
            f"checked across nodes ({report.peers} other nodes): {report.cross_checked} keys; "
            f"not checkable (fewer than t+1 shares of the newest version): "
            f"{report.cross_unchecked}"
        )
    lines += [f"warning: {warning}" for warning in report.warnings]
    if request.export_publics is not None:
        lines.append(f"share publics written to {request.export_publics}")
    if request.dry_run:
        lines.append(f"dry run: nothing written ({len(report.to_import)} records to import)")
    elif report.refused and not request.skip_refused:
        lines.append(
            f"nothing written: {len(report.refused)} records refused "
            "(--skip-refused imports the others)"
        )
    return lines


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        request = _request(args)
        report = run_import(request)
    except UsageError as exc:
        print(f"secretstore import-parity: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except SecretStoreError as exc:
        print(f"secretstore import-parity: {exc}", file=sys.stderr)
        return EXIT_FAILED
    for line in render_report(report, request):
        print(line)
    sys.stdout.flush()
    return EXIT_OK if report.ok else EXIT_REFUSED


if __name__ == "__main__":
    sys.exit(main())
