"""`secretstore admin`: the administrator's node set change, from the command line.

    secretstore admin hash [NODE_ID ...] [--node URL]
    secretstore admin change --node URL (--add ID | --remove ID | --new-set ID ...)
                             (--keystore DIR --account ADDR [--password-file F] | --secret-file F)
    secretstore admin status --node URL
    secretstore admin refresh --node URL [--key ID ...] [--valid-for SECONDS]
                              (--keystore DIR --account ADDR [--password-file F] | --secret-file F)

`hash` prints the servers set hash (keccak256 of the sorted 64-byte ids) of the ids given, or of
the running cluster a node sees (itself and every node it is connected to: the old set of a
change started there). `change` reads that old set from the node, builds the new set, signs
both hashes with the administrator key (raw, as Parity's `secretstore_signRawHash`), starts the
change on the node, shows how many keys are done while it runs, and prints the result. `status`
shows the change running on a node, if any. `refresh` (admin_refresh.py) signs a proactive
refresh of every key, or of the listed ones, runs it on the node and shows its progress.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Final

import aiohttp

from secretstore.cli.account import UsageError, obtain_password, read_secret_file
from secretstore.client.http_client import connection_problem
from secretstore.crypto.keys import KeyPair, servers_set_hash, sign_recoverable
from secretstore.encoding import parse_hex, to_hex
from secretstore.errors import InvalidEncoding, SecretStoreError
from secretstore.types import NodeId

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
#: The new set from the old one.
NewSet = Callable[[frozenset[NodeId]], frozenset[NodeId]]
#: How often `change` asks the node how far the change is.
POLL_INTERVAL: Final = 0.25
#: No HTTP timeout for the change itself (Parity has none: it answers when all is done).
HEALTH_TIMEOUT: Final = 5.0


@dataclass(frozen=True, slots=True)
class ClusterView:
    """What a node reports: its id, the nodes it is connected to, its running change."""

    node_id: NodeId
    connected: frozenset[NodeId]
    change: dict[str, Any] | None
    #: the refresh running on the node, if one is
    refresh: dict[str, Any] | None = None

    @property
    def nodes(self) -> frozenset[NodeId]:
        """The old set of a change started on this node."""
        return self.connected | {self.node_id}


def parse_node_id(text: str) -> NodeId:
    try:
        return NodeId(parse_hex(text.strip(), 64, what="node id"))
    except InvalidEncoding as exc:
        raise UsageError(str(exc)) from exc


def short(node: NodeId) -> str:
    return node.hex()[:8]


async def fetch_view(session: aiohttp.ClientSession, url: str) -> ClusterView:
    """GET /health of the node at `url`."""
    timeout = aiohttp.ClientTimeout(total=HEALTH_TIMEOUT)
    try:
        async with session.get(f"{url.rstrip('/')}/health", timeout=timeout) as response:
            body = await response.json(content_type=None)
    except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
        raise SecretStoreError(f"cannot read {url}/health: {connection_problem(exc)}") from exc
    try:
        node_id = NodeId(bytes.fromhex(body["node_id"][2:]))
        connected = frozenset(NodeId(bytes.fromhex(n[2:])) for n in body["connected"])
    except (KeyError, TypeError, ValueError) as exc:
        raise UsageError(f"{url}/health: unexpected answer {body!r}") from exc
    change = body.get("node_set_change")
    refresh = body.get("refresh")
    return ClusterView(
        node_id,
        connected,
        change if isinstance(change, dict) else None,
        refresh if isinstance(refresh, dict) else None,
    )


def sign_set(admin: KeyPair, nodes: Sequence[NodeId] | frozenset[NodeId]) -> bytes:
    return sign_recoverable(admin.secret, servers_set_hash(nodes))


def describe(change: dict[str, Any]) -> str:
    total = change.get("keys_total")
    done = change.get("keys_done", 0)
    keys = f"{done} of {total} keys" if total is not None else "planning"
    return f"{keys} ({change.get('phase', '?')}; master {str(change.get('master', '?'))[2:10]})"


class Progress:
    """Keys done of total, redrawn on one line on a terminal, a line per step elsewhere."""

    def __init__(self, stream: IO[str]) -> None:
        self.stream = stream
        self.tty = stream.isatty()
        self._last = ""

    def show(self, change: dict[str, Any] | None) -> None:
        if change is None:
            return
        total = change.get("keys_total")
        done = change.get("keys_done", 0) or 0
        if total:
            filled = int(30 * done / total)
            line = f"[{'#' * filled}{'.' * (30 - filled)}] {describe(change)}"
        else:
            line = describe(change)
        if line == self._last:
            return
        self._last = line
        if self.tty:
            self.stream.write("\r" + line.ljust(100))
        else:
            self.stream.write(line + "\n")
        self.stream.flush()

    def end(self) -> None:
        if self.tty and self._last:
            self.stream.write("\n")
            self.stream.flush()


async def call_showing_progress(
    session: aiohttp.ClientSession,
    url: str,
    call: Coroutine[Any, Any, tuple[int, bytes]],
    running: Callable[[ClusterView], dict[str, Any] | None],
    out: IO[str],
) -> tuple[int, bytes]:
    """Run `call` (an admin request the node answers when all is done: its status and body)
    while showing how far `running` of the node's /health says it is; a /health read that
    fails shows nothing that time (the request goes on on the node). aiohttp.ClientError if
    the call fails (the progress line ended first)."""
    progress = Progress(out)
    task = asyncio.ensure_future(call)
    try:
        while not task.done():
            with contextlib.suppress(UsageError, SecretStoreError):
                progress.show(running(await fetch_view(session, url)))
            await asyncio.wait([task], timeout=POLL_INTERVAL)
        answer = task.result()
    except aiohttp.ClientError:
        progress.end()
        raise
    finally:
        if not task.done():
            task.cancel()
    progress.end()
    return answer


async def start_change(
    session: aiohttp.ClientSession,
    url: str,
    old_set: frozenset[NodeId],
    new_set: frozenset[NodeId],
    admin: KeyPair,
) -> tuple[int, bytes]:
    """POST /admin/servers_set_change (waits for the whole change); status and body."""
    old, new = sign_set(admin, old_set).hex(), sign_set(admin, new_set).hex()
    body = json.dumps([to_hex(node) for node in sorted(new_set)])
    async with session.post(
        f"{url.rstrip('/')}/admin/servers_set_change/{old}/{new}",
        data=body,
        headers={"Content-Type": "application/json; charset=utf-8"},
        timeout=aiohttp.ClientTimeout(total=None),
    ) as response:
        return response.status, await response.read()


async def change_node_set(
    url: str,
    new_set_of: NewSet,
    admin: KeyPair,
    out: IO[str],
) -> int:
    """The whole `change` flow against the node at `url`; `new_set_of(old_set)` gives the new
    set. Prints progress and the result; the exit status."""
    async with aiohttp.ClientSession() as session:
        view = await fetch_view(session, url)
        if view.change is not None:
            print(f"a node set change runs already: {describe(view.change)}", file=out)
            return EXIT_FAILED
        old_set = view.nodes
        new_set = frozenset(new_set_of(old_set))
        print(
            f"old set: {len(old_set)} nodes ({', '.join(map(short, sorted(old_set)))})\n"
            f"new set: {len(new_set)} nodes ({', '.join(map(short, sorted(new_set)))})",
            file=out,
        )
        out.flush()
        call = start_change(session, url, old_set, new_set, admin)
        try:
            status, body = await call_showing_progress(
                session,
                url,
                call,
                lambda view: view.change,
                out,
            )
        except aiohttp.ClientError as exc:
            print(f"the node did not answer: {connection_problem(exc)}", file=out)
            return EXIT_FAILED
    if status == 200:
        print(f"done: the node set is now {len(new_set)} nodes", file=out)
        return EXIT_OK
    text = body.decode("utf-8", "replace")
    with contextlib.suppress(ValueError):
        text = json.loads(text).strip('"')
    print(f"refused or failed (HTTP {status}): {text}", file=out)
    return EXIT_FAILED


def load_admin(args: argparse.Namespace) -> KeyPair:
    """The administrator key: --secret-file, or a keystore account."""
    if args.secret_file is not None:
        if args.keystore is not None or args.account is not None:
            raise UsageError("give --secret-file or --keystore/--account, not both")
        return KeyPair.from_secret(read_secret_file(args.secret_file))
    if args.keystore is None or args.account is None:
        raise UsageError("the administrator key is needed: --keystore and --account")
    from secretstore.keystore import Keystore  # eth-account is slow to import

    try:
        address = parse_hex(args.account.strip(), 20, what="--account")
    except InvalidEncoding as exc:
        raise UsageError(str(exc)) from exc
    password = obtain_password(args.password_file, confirm=False)
    return Keystore(Path(args.keystore)).unlock(address, password)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="secretstore admin",
        description="Change the node set of a running cluster (Parity's servers set change).",
    )
    verbs = parser.add_subparsers(dest="verb", required=True)
    hashing = verbs.add_parser("hash", help="the servers set hash of node ids or of a cluster")
    hashing.add_argument("node_ids", nargs="*", help="64-byte node ids, hex")
    hashing.add_argument("--node", help="hash the set this node's /health reports instead")
    change = verbs.add_parser("change", help="sign and run a node set change, showing progress")
    change.add_argument("--node", required=True, help="the HTTP API URL of the master node")
    group = change.add_mutually_exclusive_group(required=True)
    group.add_argument("--add", action="append", metavar="ID", help="a node to add (repeatable)")
    group.add_argument("--remove", action="append", metavar="ID", help="a node to remove")
    group.add_argument("--new-set", nargs="+", metavar="ID", help="the whole new set")
    add_admin_key_options(change)
    status = verbs.add_parser("status", help="the node set change running on a node")
    status.add_argument("--node", required=True, help="a node's HTTP API URL")
    refresh = verbs.add_parser(
        "refresh", help="sign and run a proactive refresh of every key (or of --key ones)"
    )
    refresh.add_argument("--node", required=True, help="the HTTP API URL of the master node")
    refresh.add_argument("--key", action="append", metavar="ID", help="a key id (repeatable)")
    refresh.add_argument(
        "--valid-for",
        type=float,
        default=600.0,
        metavar="SECONDS",
        help="how long the signed grant stays valid (default 600, at most 86400)",
    )
    add_admin_key_options(refresh)
    return parser


def add_admin_key_options(parser: argparse.ArgumentParser) -> None:
    keys = parser.add_argument_group("administrator key (admin_public of every node)")
    keys.add_argument("--keystore", help="keystore directory of --account")
    keys.add_argument("--account", help="the administrator's keystore account (address)")
    keys.add_argument("--password-file", help="file whose first line is the password")
    keys.add_argument("--secret-file", help="file holding the administrator secret as hex")


def _new_set(args: argparse.Namespace) -> NewSet:
    if args.new_set:
        wanted = frozenset(parse_node_id(n) for n in args.new_set)
        return lambda old: wanted
    if args.add:
        added = frozenset(parse_node_id(n) for n in args.add)
        return lambda old: old | added
    removed = frozenset(parse_node_id(n) for n in args.remove)
    return lambda old: old - removed


async def _hash(args: argparse.Namespace) -> int:
    if args.node is not None:
        if args.node_ids:
            raise UsageError("give node ids or --node, not both")
        async with aiohttp.ClientSession() as session:
            nodes = (await fetch_view(session, args.node)).nodes
    elif args.node_ids:
        nodes = frozenset(parse_node_id(n) for n in args.node_ids)
    else:
        raise UsageError("give node ids, or --node URL")
    print(to_hex(servers_set_hash(nodes)))
    return EXIT_OK


async def _status(args: argparse.Namespace) -> int:
    async with aiohttp.ClientSession() as session:
        view = await fetch_view(session, args.node)
    if view.change is None:
        print(f"no node set change runs on {short(view.node_id)} ({len(view.nodes)} nodes)")
    else:
        print(describe(view.change))
    if view.refresh is not None:
        print(f"refresh: {describe(view.refresh)}")
    return EXIT_OK


def main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.verb == "hash":
            return asyncio.run(_hash(args))
        if args.verb == "status":
            return asyncio.run(_status(args))
        if args.verb == "refresh":
            from secretstore.cli.admin_refresh import run_refresh

            return run_refresh(args, load_admin(args), sys.stdout)
        new_set_of = _new_set(args)
        admin = load_admin(args)
        return asyncio.run(change_node_set(args.node, new_set_of, admin, sys.stdout))
    except UsageError as exc:
        print(f"secretstore admin: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except (SecretStoreError, OSError, aiohttp.ClientError) as exc:
        print(f"secretstore admin: {exc}", file=sys.stderr)
        return EXIT_FAILED
