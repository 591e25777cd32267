"""`secretstore cluster add|remove`: change the node set of a running local cluster.

    secretstore cluster add --dir DIR
    secretstore cluster remove --dir DIR --node I

Both need the cluster running (`secretstore cluster --dir DIR` in another terminal: its pid is
in DIR/cluster.pid). `add` writes a new node's key and config, lists it in every member's
`nodes`, tells the runner (SIGHUP: it starts the new node and has the others re-read their
config), waits until every node sees every other, then runs the node set change signed by the
cluster's administrator (DIR/admin), showing its progress: the new node gets its shares of
every key. `remove` runs the change without node I first; once it is done (node I has erased
its keys), it drops node I from the others' configs and the runner stops it.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
import time
from pathlib import Path
from typing import Final

import aiohttp

from secretstore.cli.account import UsageError
from secretstore.cli.admin import change_node_set, fetch_view
from secretstore.cli.cluster import (
    ClusterNode,
    ensure_admin,
    load_members,
    prepare_cluster,
    table,
)
from secretstore.cli.cluster_run import PID_NAME
from secretstore.crypto.rng import OsRng, Rng
from secretstore.errors import ConfigError, SecretStoreError

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
#: Seconds to wait for every node to see every other after the node set changed.
READY_TIMEOUT: Final = 60.0


def runner_pid(directory: Path) -> int:
    """The pid of the running `secretstore cluster` of DIR; UsageError when none runs."""
    path = directory / PID_NAME
    try:
        pid = int(path.read_text(encoding="utf-8").strip())
        os.kill(pid, 0)
    except (OSError, ValueError):
        raise UsageError(
            f"no cluster runs in {directory}: start it with `secretstore cluster --dir "
            f"{directory}` (in another terminal) first"
        ) from None
    return pid


def _ports(members: list[ClusterNode]) -> tuple[int, int]:
    """The base ports of the layout (node I uses base + I - 1)."""
    first = members[0]
    return first.mesh_port - (first.index - 1), first.http_port - (first.index - 1)


async def wait_ready(nodes: list[ClusterNode], timeout: float = READY_TIMEOUT) -> bool:
    """Until every node reports `size` nodes, all connected; False at timeout."""
    size = len(nodes)
    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            try:
                views = [await fetch_view(session, node.http_url) for node in nodes]
            except (UsageError, SecretStoreError):  # not answering (yet)
                views = []
            if views and all(len(v.nodes) == size for v in views):
                ids = {node.node_id for node in nodes}
                if all(v.nodes == ids for v in views):
                    return True
            await asyncio.sleep(0.2)
    return False


def add(directory: Path, rng: Rng) -> int:
    pid = runner_pid(directory)
    members = load_members(directory)
    index = 1 + max(
        [n.index for n in members]
        + [int(p.name[4:]) for p in directory.glob("node*") if p.name[4:].isdigit()]
    )
    base, http_base = _ports(members)
    prepared = prepare_cluster(
        directory, 0, base, http_base, rng, members=[*(n.index for n in members), index]
    )
    print(f"node{index} added to the configs of {len(prepared.nodes)} nodes")
    print(table(prepared.nodes))
    sys.stdout.flush()
    os.kill(pid, signal.SIGHUP)
    nodes = list(prepared.nodes)
    if not asyncio.run(wait_ready(nodes)):
        print(f"not every node sees the {len(nodes)} others after {READY_TIMEOUT:.0f} s")
        return EXIT_FAILED
    print("every node sees every other; moving the keys to the new node set")
    admin = (prepared.admin or ensure_admin(directory, rng)).unlock()
    master = nodes[0]
    return asyncio.run(change_node_set(master.http_url, lambda old: old, admin, sys.stdout))


def remove(directory: Path, index: int, rng: Rng) -> int:
    pid = runner_pid(directory)
    members = load_members(directory)
    leaving = next((n for n in members if n.index == index), None)
    if leaving is None:
        raise UsageError(f"node{index} is not a member ({', '.join(n.name for n in members)})")
    staying = [n for n in members if n is not leaving]
    if not staying:
        raise UsageError("the last node cannot leave: the keys would be lost")
    admin = ensure_admin(directory, rng).unlock()
    status = asyncio.run(
        change_node_set(staying[0].http_url, lambda old: old - {leaving.node_id}, admin, sys.stdout)
    )
    if status != EXIT_OK:
        print(f"node{index} stays a member (nothing was erased)")
        return status
    base, http_base = _ports(members)
    prepare_cluster(directory, 0, base, http_base, rng, members=[n.index for n in staying])
    os.kill(pid, signal.SIGHUP)
    print(f"node{index} left the cluster; its directory {leaving.directory} is kept")
    return EXIT_OK if asyncio.run(wait_ready(staying)) else EXIT_FAILED


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="secretstore cluster",
        description="Add a node to, or remove one from, a running local cluster.",
    )
    verbs = parser.add_subparsers(dest="verb", required=True)
    adding = verbs.add_parser("add", help="add a node and move every key onto the new set")
    adding.add_argument("--dir", type=Path, default=Path(".cluster"), help="default .cluster")
    removing = verbs.add_parser("remove", help="move every key off node I, then remove it")
    removing.add_argument("--dir", type=Path, default=Path(".cluster"), help="default .cluster")
    removing.add_argument("--node", type=int, required=True, metavar="I", help="node I leaves")
    return parser


def main(argv: list[str], rng: Rng | None = None) -> int:
    args = _parser().parse_args(argv)
    chosen = rng or OsRng()
    try:
        if args.verb == "add":
            return add(args.dir, chosen)
        return remove(args.dir, args.node, chosen)
    except UsageError as exc:
        print(f"secretstore cluster {args.verb}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except (ConfigError, SecretStoreError, OSError) as exc:
        print(f"secretstore cluster {args.verb}: {exc}", file=sys.stderr)
        return EXIT_FAILED
