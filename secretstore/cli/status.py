"""`secretstore status` (a table of a cluster's nodes and their health) and `secretstore
health` (one node's health, as a container health check runs it)."""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import json
import sys
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import aiohttp

from secretstore.cli.common import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_USAGE,
    UsageError,
    expand,
    parse_args,
    parser,
    run,
    verb_of,
)
from secretstore.client import safejson
from secretstore.client.http_client import connection_problem
from secretstore.config.values import get_bool, get_int, parse_interface, shifted_port
from secretstore.errors import ConfigError, InvalidEncoding
from secretstore.observe.status_page import duration

DEFAULT_CLUSTER: Final = Path(".cluster/cluster.json")
DEFAULT_NODE: Final = "http://127.0.0.1:8082"

STATUS_DESCRIPTION: Final = (
    "Show a table of a cluster's nodes: each node's id, readiness, connected peers, keys, "
    "uptime and version, and which peers a node misses. Exit status 0 when every node is "
    "ready, 1 otherwise."
)
STATUS_EPILOG: Final = """\
Nodes come from --node (repeatable), else from --cluster FILE (the cluster.json that
`secretstore cluster` and `secretstore configs` write), else from .cluster/cluster.json when
it exists, else http://127.0.0.1:8082.
"""
HEALTH_DESCRIPTION: Final = (
    "Ask one node for its health (GET /health): exit status 0 when it answers (and, with "
    "--ready, when it is connected to every other node), 1 otherwise. Reads the node's HTTP "
    "address from its config with --config; this is the Docker image's health check."
)


@dataclass(frozen=True, slots=True)
class NodeHealth:
    url: str
    health: dict[str, Any] | None
    problem: str | None

    @property
    def ready(self) -> bool:
        return self.health is not None and self.health.get("ready") is True


async def fetch_health(session: aiohttp.ClientSession, url: str, timeout: float) -> NodeHealth:
    try:
        async with session.get(
            f"{url.rstrip('/')}/health", timeout=aiohttp.ClientTimeout(total=timeout)
        ) as response:
            body = await response.read()
            status = response.status
    except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
        return NodeHealth(url, None, f"unreachable: {connection_problem(exc)}")
    if status != 200:
        return NodeHealth(url, None, f"answered HTTP {status} to GET /health")
    try:
        value = safejson.loads(body)
    except InvalidEncoding:
        value = None
    if not isinstance(value, dict):
        return NodeHealth(url, None, "GET /health did not answer a JSON object")
    return NodeHealth(url, value, None)


async def fetch_all(urls: Sequence[str], timeout: float) -> list[NodeHealth]:
    async with aiohttp.ClientSession() as session:
        return list(await asyncio.gather(*(fetch_health(session, u, timeout) for u in urls)))


# --- status --------------------------------------------------------------------------------


def cluster_urls(path: Path) -> list[str]:
    """The HTTP URLs of the nodes listed in a cluster.json."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise UsageError(f"cannot read {path}: {exc}") from exc
    nodes = doc.get("nodes") if isinstance(doc, dict) else None
    if not isinstance(nodes, list) or not all(
        isinstance(n, dict) and isinstance(n.get("http"), str) for n in nodes
    ):
        raise UsageError(f'{path}: expected {{"nodes": [{{"http": URL, ...}}, ...]}}')
    return [str(n["http"]) for n in nodes]


def _short(node_id: object) -> str:
    text = str(node_id)
    return text[2:10] if text.startswith("0x") else text[:8]


def table(rows: Sequence[NodeHealth]) -> str:
    """The status table and, below it, what each node that is not ready misses."""
    header = ("NODE", "NODE ID", "STATE", "PEERS", "KEYS", "UPTIME", "VERSION")
    lines: list[tuple[str, ...]] = [header]
    notes: list[str] = []
    for row in rows:
        health = row.health
        if health is None:
            lines.append((row.url, "-", row.problem or "unreachable", "", "", "", ""))
            continue
        size = int(health.get("cluster_size") or 1)
        connected = len(health.get("connected") or [])
        keys = health.get("keys")
        uptime = health.get("uptime_seconds")
        lines.append(
            (
                row.url,
                _short(health.get("node_id", "?")),
                "ready" if row.ready else "not ready",
                f"{connected}/{size - 1}",
                "-" if keys is None else str(keys),
                duration(float(uptime)) if isinstance(uptime, int | float) else "-",
                str(health.get("version", "-")),
            )
        )
        if not row.ready and health.get("reason"):
            notes.append(f"{_short(health.get('node_id', '?'))}: {health['reason']}")
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    text = [
        "  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip()
        for line in lines
    ]
    return "\n".join(text + notes)


def _status(args: argparse.Namespace) -> int:
    if args.node:
        urls = list(args.node)
    elif args.cluster is not None:
        urls = cluster_urls(expand(args.cluster))
    elif DEFAULT_CLUSTER.exists():
        urls = cluster_urls(DEFAULT_CLUSTER)
    else:
        urls = [DEFAULT_NODE]
    rows = asyncio.run(fetch_all(urls, args.timeout))
    if args.json:
        print(
            json.dumps(
                [{"url": r.url, "health": r.health, "problem": r.problem} for r in rows],
                indent=2,
            )
        )
    else:
        print(table(rows))
    return EXIT_OK if all(row.ready for row in rows) else EXIT_FAILED


# --- health --------------------------------------------------------------------------------


def http_url_of_config(path: Path) -> str | None:
    """The URL of a node's HTTP API from its config (None when `disable_http`), read without
    unlocking its key: [secretstore] http_interface, http_port, disable_http; [misc]
    ports_shift and unsafe_expose. A node listening on every interface is asked on
    127.0.0.1."""
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(str(path), f"cannot read config file: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(str(path), f"TOML syntax error: {exc}") from None
    store = doc.get("secretstore", {})
    misc = doc.get("misc", {})
    if not isinstance(store, dict) or not isinstance(misc, dict):
        raise ConfigError(str(path), "[secretstore] and [misc] must be tables")
    if get_bool(store, "secretstore.disable_http", False):
        return None
    unsafe_expose = get_bool(misc, "misc.unsafe_expose", False)
    host = parse_interface(store, "http_interface", unsafe_expose)
    shift = get_int(misc, "misc.ports_shift", 0, 0, 65535)
    port = shifted_port(get_int(store, "secretstore.http_port", 8082, 0, 65535), shift, "http_port")
    address = ipaddress.ip_address(host)
    if address.is_unspecified:  # listening everywhere: ask on loopback
        host = "::1" if address.version == 6 else "127.0.0.1"
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def _health(args: argparse.Namespace) -> int:
    if args.config is not None:
        try:
            url = http_url_of_config(expand(args.config))
        except ConfigError as exc:
            raise UsageError(str(exc)) from exc
        if url is None:
            print("the HTTP API is disabled (disable_http = true): nothing to ask")
            return EXIT_OK
    else:
        url = args.node
    [row] = asyncio.run(fetch_all([url], args.timeout))
    if row.health is None:
        print(f"{url}: {row.problem}", file=sys.stderr)
        return EXIT_FAILED
    state = "ready" if row.ready else f"not ready: {row.health.get('reason')}"
    print(f"{url}: node {_short(row.health.get('node_id', '?'))} {state}")
    return EXIT_OK if row.ready or not args.ready else EXIT_FAILED


def _parser(verb: str) -> argparse.ArgumentParser:
    if verb == "status":
        p = parser(verb, STATUS_DESCRIPTION, STATUS_EPILOG)
        p.add_argument("--node", action="append", help="a node's HTTP API URL (repeatable)")
        p.add_argument("--cluster", help="a cluster.json listing the nodes")
        p.add_argument("--json", action="store_true", help="print every node's /health as JSON")
    else:
        p = parser(verb, HEALTH_DESCRIPTION)
        source = p.add_mutually_exclusive_group()
        source.add_argument("--config", help="the node's TOML config (its HTTP address)")
        source.add_argument(
            "--node", default=DEFAULT_NODE, help=f"the URL (default {DEFAULT_NODE})"
        )
        p.add_argument("--ready", action="store_true", help="fail unless the mesh is complete")
    p.add_argument(
        "--timeout", type=float, default=5.0, help="seconds to wait for each node (default 5)"
    )
    return p


def main(argv: list[str]) -> int:
    """argv[0] is `status` or `health`."""
    verb = verb_of(argv, ("status", "health"))
    if verb is None:
        return EXIT_USAGE
    args = parse_args(_parser(verb), argv[1:])
    if isinstance(args, int):
        return args
    return run(verb, lambda: _status(args) if verb == "status" else _health(args))
