"""`secretstore configs`: keys and a consistent set of configs for N nodes on any hosts.

Writes DIR/nodeI/node.toml for I = 1..N (a key each, mode 0600; every node lists all N) and
DIR/cluster.json (ids, addresses, URLs, no secrets). Nodes are given as hosts (`--hosts
a.example,b.example:12001`) or as a count on one host (`--nodes 3 --host 127.0.0.1`); nodes
sharing a host get consecutive ports. Run again with the same layout and it keeps every key
(so the stored shares stay valid) and rewrites the files; a different layout keeps the keys of
the nodes it still has. Every config written is loaded back before the command succeeds.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from secretstore.cli.cluster import TomlValue, toml_value, write_private
from secretstore.cli.common import EXIT_OK, UsageError, expand, parse_args, parser, run
from secretstore.config.loader import load_config, parse_config
from secretstore.config.model import NodeAddress
from secretstore.crypto.keys import KeyPair
from secretstore.crypto.rng import OsRng, Rng
from secretstore.encoding import to_hex
from secretstore.errors import ConfigError
from secretstore.listen import host_port
from secretstore.observe.health import plural

CONFIG_NAME: Final = "node.toml"
SUMMARY_NAME: Final = "cluster.json"
MAX_NODES: Final = 256

DESCRIPTION: Final = (
    "Generate the keys and a consistent set of configs for the N nodes of a cluster, on one "
    'host or many (no chain: acl_contract and server_set_contract are "none").'
)
EPILOG: Final = """\
examples:
  secretstore configs --out deploy --hosts ks1.example.org,ks2.example.org,ks3.example.org
  secretstore configs --out deploy/compose --nodes 3 --host 127.0.0.1 \\
      --db-path /var/lib/secretstore/db --owner 10001     # docker-compose.yml's layout
  secretstore configs --out deploy --nodes 3 --option session_timeout=60

Every node gets the same [secretstore] options (--option KEY=VALUE, a TOML value, repeatable,
e.g. a cluster-wide policy switch). Copy DIR/nodeI/node.toml to node I's host; it holds the
node's secret key (keep it private). DIR/cluster.json lists the nodes (`secretstore status
--cluster DIR/cluster.json`).
"""


@dataclass(frozen=True, slots=True)
class PlannedNode:
    """One node of the layout: where it runs and listens, and its files."""

    index: int
    host: str
    mesh_port: int
    http_port: int
    directory: Path

    @property
    def name(self) -> str:
        return f"node{self.index}"

    @property
    def config_path(self) -> Path:
        return self.directory / CONFIG_NAME


def parse_hosts(text: str, port: int) -> list[tuple[str, int | None]]:
    """`a,b:12001,[::1]:5` → [(a, None), (b, 12001), (::1, 5)]; None means the default."""
    entries: list[tuple[str, int | None]] = []
    for raw in (part.strip() for part in text.split(",")):
        if not raw:
            raise UsageError(f"--hosts: an empty entry in {text!r}")
        host, explicit = raw, None
        if raw.startswith("["):
            close = raw.find("]")
            if close < 0:
                raise UsageError(f"--hosts: {raw}: missing ]")
            host, rest = raw[1:close], raw[close + 1 :]
            if rest:
                explicit = _port(rest.removeprefix(":"), raw)
        elif raw.count(":") == 1:
            host, number = raw.split(":")
            explicit = _port(number, raw)
        entries.append((host, explicit))
    return entries


def _port(text: str, entry: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 65535:
        raise UsageError(f"--hosts: {entry}: the port must be 1..65535")
    return int(text)


def plan(
    directory: Path, hosts: Sequence[tuple[str, int | None]], port: int, http_port: int
) -> list[PlannedNode]:
    """Ports per node: an explicit one, else `port` (and `http_port`) plus the number of nodes
    on the same host before it."""
    if not 1 <= len(hosts) <= MAX_NODES:
        raise UsageError(f"a cluster has 1..{MAX_NODES} nodes, got {len(hosts)}")
    seen: dict[str, int] = {}
    nodes: list[PlannedNode] = []
    used: set[tuple[str, int]] = set()
    for index, (host, explicit) in enumerate(hosts, start=1):
        offset = seen.get(host, 0)
        seen[host] = offset + 1
        mesh = explicit if explicit is not None else port + offset
        web = http_port + offset
        for number in (mesh, web):
            if not 1 <= number <= 65535:
                raise UsageError(f"node {index} on {host}: port {number} is not in 1..65535")
            if (host, number) in used:
                raise UsageError(f"node {index}: {host_port(host, number)} is used twice")
            used.add((host, number))
        nodes.append(PlannedNode(index, host, mesh, web, directory / f"node{index}"))
    return nodes


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def render(
    node: PlannedNode,
    key: KeyPair,
    everyone: Sequence[NodeAddress],
    options: Mapping[str, TomlValue],
    extra_lines: Sequence[str],
) -> str:
    """One node's config in Parity's format."""
    node_lines = "".join(f"  {toml_value(str(address))},\n" for address in everyone)
    lines = [
        f"# Node {node.index} of a {len(everyone)}-node cluster, written by `secretstore configs`.",
        "# self_secret is this node's private key: keep this file private (mode 0600).",
        "[secretstore]",
        f"self_secret = {toml_value(key.secret.to_bytes().hex())}",
        f"nodes = [\n{node_lines}]",
        *(f"{name} = {toml_value(value)}" for name, value in options.items()),
        *extra_lines,
    ]
    return "\n".join(lines) + "\n"


def _existing_key(path: Path) -> KeyPair | None:
    if not path.exists():
        return None
    store = load_config(path).secretstore
    if store.self_key is None or store.self_account is not None:
        raise ConfigError(
            f"{path}: secretstore.self_secret",
            "not a raw secret; `secretstore configs` only manages configs it wrote",
        )
    return store.self_key


def _owner(text: str | None) -> tuple[int, int] | None:
    if text is None:
        return None
    user, _, group = text.partition(":")
    if not user.isdigit() or (group and not group.isdigit()):
        raise UsageError(f"--owner: expected UID or UID:GID (numbers), got {text!r}")
    return int(user), int(group or user)


def _options(
    args: argparse.Namespace, hosts: Sequence[str]
) -> tuple[dict[str, TomlValue], list[str]]:
    local = all(_is_loopback(host) for host in hosts)
    interface = args.interface or ("local" if local else "all")
    options: dict[str, TomlValue] = {
        "acl_contract": "none",
        "server_set_contract": "none",
        "interface": interface,
        "http_interface": args.http_interface or interface,
        "path": args.db_path,
    }
    extra: list[str] = []
    for item in args.option or []:
        name, eq, value = item.partition("=")
        if not eq or not name.strip():
            raise UsageError(f"--option: expected KEY=VALUE (a TOML value), got {item!r}")
        extra.append(f"{name.strip()} = {value.strip()}")
    return options, extra


def write_configs(args: argparse.Namespace, rng: Rng) -> int:
    directory = expand(args.out)
    if args.hosts is not None:
        entries = parse_hosts(args.hosts, args.port)
    else:
        entries = [(args.host, None)] * args.nodes
    nodes = plan(directory, entries, args.port, args.http_port)
    options, extra = _options(args, [host for host, _ in entries])
    owner = _owner(args.owner)
    keys: list[KeyPair] = []
    reused = 0
    for node in nodes:
        key = _existing_key(node.config_path)
        reused += key is not None
        keys.append(key if key is not None else KeyPair.generate(rng))
    if len({key.node_id for key in keys}) != len(keys):
        raise UsageError(f"two configs in {directory} hold the same key; remove one")
    everyone = sorted(
        (
            NodeAddress(key.node_id, node.host, node.mesh_port)
            for node, key in zip(nodes, keys, strict=True)
        ),
        key=lambda address: address.node_id,
    )
    for node, key in zip(nodes, keys, strict=True):
        text = render(
            node,
            key,
            everyone,
            {**options, "port": node.mesh_port, "http_port": node.http_port},
            extra,
        )
        parse_config(text, node.directory.resolve(), source=node.config_path)  # valid first
        write_private(node.config_path, text)
        if owner is not None:
            _chown(node, owner)
    summary = {
        "nodes": [
            {
                "name": node.name,
                "node_id": to_hex(key.node_id),
                "mesh": host_port(node.host, node.mesh_port),
                "http": f"http://{host_port(node.host, node.http_port)}",
                "config": str(node.config_path),
            }
            for node, key in zip(nodes, keys, strict=True)
        ]
    }
    path = directory / SUMMARY_NAME
    path.write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    print(f"{plural(len(nodes), 'node')} in {directory} ({reused} keys reused); node list: {path}")
    for node, key in zip(nodes, keys, strict=True):
        print(
            f"  {node.name}  {key.node_id.hex()[:16]}…  mesh {host_port(node.host, node.mesh_port)}"
            f"  http {host_port(node.host, node.http_port)}"
        )
    return EXIT_OK


def _chown(node: PlannedNode, owner: tuple[int, int]) -> None:
    try:
        for path in (node.directory, node.config_path):
            os.chown(path, *owner)
    except PermissionError as exc:
        raise UsageError(
            f"--owner: cannot change the owner of {exc.filename} (run as root)"
        ) from exc


def _parser() -> argparse.ArgumentParser:
    p = parser("configs", DESCRIPTION, EPILOG)
    p.add_argument("--out", required=True, help="directory for nodeI/node.toml and cluster.json")
    layout = p.add_mutually_exclusive_group(required=True)
    layout.add_argument("--hosts", help="comma-separated host[:port] of each node, in order")
    layout.add_argument("--nodes", type=int, help="number of nodes, all on --host")
    p.add_argument("--host", default="127.0.0.1", help="the host of --nodes (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=12000, help="node-to-node port (default 12000)")
    p.add_argument("--http-port", type=int, default=8082, help="HTTP API port (default 8082)")
    p.add_argument(
        "--interface",
        help='where nodes listen for nodes: "local", "all" or an IP (default: "local" when '
        'every host is a loopback address, else "all")',
    )
    p.add_argument("--http-interface", help="where the HTTP API listens (default: --interface)")
    p.add_argument(
        "--db-path",
        default="db",
        help="each node's key database (default db, beside its config)",
    )
    p.add_argument("--owner", help="UID[:GID] to own each node's directory and config")
    p.add_argument(
        "--option", action="append", help="KEY=VALUE for every node's [secretstore] (repeatable)"
    )
    return p


def main(argv: list[str], rng: Rng | None = None) -> int:
    args = parse_args(_parser(), argv)
    if isinstance(args, int):
        return args

    def action() -> int:
        try:
            return write_configs(args, rng if rng is not None else OsRng())
        except ConfigError as exc:
            raise UsageError(str(exc)) from exc

    return run("configs", action)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
