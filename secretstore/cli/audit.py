"""`secretstore audit verify|export`: check a node's audit log and show or export its entries.

`verify` checks the whole chain and every signature (secretstore/audit/chain.py) and prints
the entries the filters choose; `export` writes them as JSON lines, each with its raw record,
so that `verify --from-export` can check an export elsewhere. Both read a stopped node's
database (--db, or --config with the node's TOML); a running node holds the database's lock:
--snapshot reads a private copy instead. The filters choose what is shown; the check always
covers the whole log.

Exit status: 0 the log verifies; 1 it does not (every problem is named with its position);
2 the command cannot run (bad arguments, no database, a database in use without --snapshot).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

from secretstore.audit.chain import EntryFilter, LogReport, VerifiedEntry, chosen, verify_log
from secretstore.audit.jsonform import entry_json
from secretstore.audit.model import Operation, encode_entry
from secretstore.audit.snapshot import open_audit_log
from secretstore.cli.common import parse_args
from secretstore.config.loader import load_config
from secretstore.encoding import parse_hex, to_hex
from secretstore.errors import SecretStoreError
from secretstore.types import Address, NodeId, ServerKeyId

EXIT_OK = 0
EXIT_BROKEN = 1
EXIT_FAILED = 2

_EPILOG = """\
Times (--since, --until) are ISO 8601 (2024-05-01, 2024-05-01T12:00:00Z) or Unix seconds.
The check covers the whole log whatever the filters choose. What a chain cannot show by
itself: entries cut off its end (compare the head printed here with one noted earlier) and
a log rewritten whole with the node key (compare with the other participants' logs).
See docs/AUDIT.md.
"""


class UsageError(Exception):
    """A command-line argument that cannot be used."""


def _time_ms(text: str, what: str) -> int:
    raw = text.strip()
    if raw.isdigit():
        return int(raw) * 1000
    try:
        moment = datetime.fromisoformat(raw)
    except ValueError:
        raise UsageError(f"{what} {text!r}: expected ISO 8601 or Unix seconds") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)


def _hex(text: str, length: int, what: str) -> bytes:
    try:
        return parse_hex(text.strip(), length, what=what)
    except SecretStoreError as exc:
        raise UsageError(str(exc)) from None


def _top_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="secretstore audit",
        description="Check a node's audit log of key releases (verify), or export its entries "
        "as JSON lines (export).",
        epilog="`secretstore audit verify --help` and `... export --help` show their options.",
    )
    parser.add_argument("verb", choices=("verify", "export"))
    return parser


def _parser(verb: str) -> argparse.ArgumentParser:
    description = {
        "verify": "Check a node's audit log (chain, signatures) and print its entries.",
        "export": "Write a node's audit log entries as JSON lines (and check the log).",
    }[verb]
    parser = argparse.ArgumentParser(
        prog=f"secretstore audit {verb}",
        description=description,
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--db", type=Path, metavar="PATH", help="the node's key database")
    source.add_argument(
        "--config", type=Path, metavar="FILE", help="the node's TOML config (its path and key)"
    )
    if verb == "verify":
        source.add_argument(
            "--from-export", type=Path, metavar="FILE", help="a file `audit export` wrote"
        )
    parser.add_argument("--node", metavar="HEX", help="the node id the log must be signed by")
    parser.add_argument(
        "--snapshot", action="store_true",
        help="read a private copy of the database (for a node that is running)",
    )  # fmt: skip
    parser.add_argument("--key", metavar="HEX", help="only entries of this server key id")
    parser.add_argument("--requester", metavar="ADDRESS", help="only entries of this requester")
    parser.add_argument(
        "--operation", metavar="NAME",
        help=f"only this operation ({', '.join(op.label for op in Operation)})",
    )  # fmt: skip
    parser.add_argument("--since", metavar="TIME", help="only entries at or after TIME")
    parser.add_argument("--until", metavar="TIME", help="only entries at or before TIME")
    if verb == "verify":
        parser.add_argument("--quiet", action="store_true", help="print the summary only")
    else:
        parser.add_argument("--out", type=Path, metavar="FILE", help="write here, not stdout")
    return parser


def _filter(args: argparse.Namespace) -> EntryFilter:
    try:
        operation = None if args.operation is None else Operation.of_label(args.operation)
    except SecretStoreError as exc:
        raise UsageError(str(exc)) from None
    return EntryFilter(
        key_id=None if args.key is None else ServerKeyId(_hex(args.key, 32, "--key")),
        requester=None
        if args.requester is None
        else Address(_hex(args.requester, 20, "--requester")),
        operation=operation,
        since_ms=None if args.since is None else _time_ms(args.since, "--since"),
        until_ms=None if args.until is None else _time_ms(args.until, "--until"),
    )


def _source(args: argparse.Namespace) -> tuple[Path, NodeId | None]:
    node = None if args.node is None else NodeId(_hex(args.node, 64, "--node"))
    if args.db is not None:
        return Path(args.db), node
    config = load_config(args.config)
    key = config.secretstore.self_key
    if node is None and key is not None:
        node = key.node_id
    return config.secretstore.path, node


def _export_records(path: Path) -> Iterator[tuple[int, bytes]]:
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                value = json.loads(line)
                yield int(value["index"]), parse_hex(value["record"], what="record")
            except (ValueError, KeyError, TypeError, SecretStoreError) as exc:
                raise UsageError(
                    f"{path} line {number}: not an audit export line ({exc})"
                ) from None


def _read(args: argparse.Namespace) -> LogReport:
    if getattr(args, "from_export", None) is not None:
        node = None if args.node is None else NodeId(_hex(args.node, 64, "--node"))
        return verify_log(_export_records(args.from_export), node)
    path, node = _source(args)
    with open_audit_log(path, snapshot=args.snapshot) as store:
        return verify_log(store.records(), node)


def _short(data: bytes) -> str:
    return "0x" + data[:4].hex()


def entry_line(item: VerifiedEntry) -> str:
    """One entry of `verify`'s listing."""
    data = entry_json(item)
    facts = item.entry.facts
    participants = ",".join(_short(node) for node in facts.participants)
    parts = [
        f"{data['index']:>6}",
        data["time"],
        f"{facts.operation.label:<16}",
        f"key {data['key_id']}",
        f"requester {data['requester'] or '-'}",
        f"session {_short(facts.session_id)}",
        f"master {_short(facts.master)}",
        f"participants {participants}",
    ]
    if facts.message_hash is not None:
        parts.append(f"message {data['message_hash']}")
    if facts.block is not None:
        parts.append(f"block {facts.block.number}")
    return "  ".join(parts)


def summary(report: LogReport) -> list[str]:
    node = "an unknown node" if report.node is None else f"node {to_hex(report.node)}"
    head = report.head
    lines = [f"audit log of {node}: {len(report.entries)} entries"]
    if head is not None:
        lines.append(f"head: entry {head.position} {to_hex(head.hash)}")
    if report.ok:
        lines.append("verified: the chain is whole and every entry is signed by the node")
    else:
        lines += [f"PROBLEM {problem}" for problem in report.problems]
        first = report.problems[0].position
        lines.append(
            f"does NOT verify: {len(report.problems)} problems, the first at entry {first}"
        )
    return lines


def _verify(args: argparse.Namespace) -> int:
    report = _read(args)
    if not args.quiet:
        for item in chosen(report, _filter(args)):
            print(entry_line(item))
    for line in summary(report):
        print(line)
    return EXIT_OK if report.ok else EXIT_BROKEN


def _write_export(report: LogReport, choice: EntryFilter, out: IO[str]) -> int:
    count = 0
    node = None if report.node is None else to_hex(report.node)
    for item in chosen(report, choice):
        raw = to_hex(encode_entry(item.entry))
        out.write(json.dumps({**entry_json(item), "node": node, "record": raw}) + "\n")
        count += 1
    return count


def _export(args: argparse.Namespace) -> int:
    report = _read(args)
    choice = _filter(args)
    if args.out is None:
        count = _write_export(report, choice, sys.stdout)
    else:
        with args.out.open("w", encoding="utf-8") as out:
            count = _write_export(report, choice, out)
    lines = summary(report)
    lines.insert(1, f"exported: {count} entries")
    for line in lines:
        print(line, file=sys.stderr)
    return EXIT_OK if report.ok else EXIT_BROKEN


def main(argv: list[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    if not args_list or args_list[0] not in ("verify", "export"):
        parsed = parse_args(_top_parser(), args_list[:1])  # 0 after --help, else 2
        return parsed if isinstance(parsed, int) else EXIT_FAILED
    verb = args_list[0]
    args = _parser(verb).parse_args(args_list[1:])
    try:
        _filter(args)  # refuse bad filters before reading anything
        return _verify(args) if verb == "verify" else _export(args)
    except UsageError as exc:
        print(f"secretstore audit {verb}: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except SecretStoreError as exc:
        print(f"secretstore audit {verb}: {exc}", file=sys.stderr)
        return EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
