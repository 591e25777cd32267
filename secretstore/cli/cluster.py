"""`secretstore cluster`: write the keys and configs of a local N-node cluster, then run it.

Layout under DIR: `nodeI/node.toml` (the node's config, holding its secret key, mode 0600),
`nodeI/db/` (its key storage), `nodeI/node.log` (its log) and `cluster.json` (node ids, ports
and URLs; no secrets). Node I (1-based) listens on base_port + I - 1 for other nodes and on
http_base_port + I - 1 for HTTP, both on 127.0.0.1. Running the command again reuses the keys
(and so the stored key shares); a config is rewritten, with the same key, only when the cluster's
layout changed.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from secretstore.config.loader import load_config
from secretstore.config.model import NodeAddress
from secretstore.crypto.keys import KeyPair
from secretstore.crypto.rng import OsRng, Rng
from secretstore.encoding import to_hex
from secretstore.errors import ConfigError
from secretstore.filemodes import make_private_dir, open_private
from secretstore.types import NodeId

HOST: Final = "127.0.0.1"
CONFIG_NAME: Final = "node.toml"
LOG_NAME: Final = "node.log"
DB_NAME: Final = "db"
SUMMARY_NAME: Final = "cluster.json"
MAX_NODES: Final = 256

TomlValue = str | int | float | bool
#: The policy a written cluster config turns on: no node may compute a document key itself
#: (plain retrieval refused; shadow retrieval only).
EXAMPLE_POLICY: Final[Mapping[str, TomlValue]] = {"require_shadow_retrieval": True}


@dataclass(frozen=True, slots=True)
class ClusterNode:
    """One node of a local cluster: where its files are, its key, its ports."""

    index: int
    directory: Path
    key: KeyPair
    mesh_port: int
    http_port: int

    @property
    def name(self) -> str:
        return f"node{self.index}"

    @property
    def node_id(self) -> NodeId:
        return self.key.node_id

    @property
    def config_path(self) -> Path:
        return self.directory / CONFIG_NAME

    @property
    def log_path(self) -> Path:
        return self.directory / LOG_NAME

    @property
    def http_url(self) -> str:
        return f"http://{HOST}:{self.http_port}"

    @property
    def address(self) -> NodeAddress:
        return NodeAddress(self.node_id, HOST, self.mesh_port)

    def __repr__(self) -> str:
        return f"ClusterNode({self.name}, {self.node_id.hex()[:8]}, {self.mesh_port})"


@dataclass(frozen=True, slots=True)
class PreparedCluster:
    nodes: tuple[ClusterNode, ...]
    #: what was done to each config: "new", "kept" or "rewritten (…)"
    actions: tuple[str, ...]


def check_ports(count: int, base_port: int, http_base_port: int) -> None:
    """ConfigError when the two port ranges do not fit in 1..65535 or overlap."""
    if not 1 <= count <= MAX_NODES:
        raise ConfigError("--nodes", f"expected 1..{MAX_NODES}, got {count}")
    for option, base in (("--base-port", base_port), ("--http-base-port", http_base_port)):
        if base < 1 or base + count - 1 > 65535:
            raise ConfigError(option, f"ports {base}..{base + count - 1} do not fit in 1..65535")
    if base_port < http_base_port + count and http_base_port < base_port + count:
        raise ConfigError(
            "--http-base-port",
            f"HTTP ports {http_base_port}..{http_base_port + count - 1} overlap the mesh ports "
            f"{base_port}..{base_port + count - 1}",
        )


def _toml(value: TomlValue) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    return json.dumps(value)  # a JSON string is a valid TOML basic string


def render_config(
    key: KeyPair,
    *,
    index: int,
    nodes: Sequence[NodeAddress],
    mesh_port: int,
    http_port: int,
    path: str = DB_NAME,
    extra: Mapping[str, TomlValue] | None = None,
) -> str:
    """The TOML config (Parity's format) of one node of a local cluster without a chain.

    `extra` adds or overrides [secretstore] options (e.g. keep_alive_interval)."""
    options: dict[str, TomlValue] = {
        "acl_contract": "none",
        "server_set_contract": "none",
        "interface": "local",
        "port": mesh_port,
        "http_interface": "local",
        "http_port": http_port,
        "path": path,
    }
    options.update(extra or {})
    node_lines = "".join(f"  {_toml(str(node))},\n" for node in nodes)
    lines = [
        f"# Node {index} of a local {len(nodes)}-node cluster, written by `secretstore cluster`.",
        "# self_secret is this node's private key: keep this file private.",
        "[secretstore]",
        f"self_secret = {_toml(key.secret.to_bytes().hex())}",
        f"nodes = [\n{node_lines}]",
        *(f"{name} = {_toml(value)}" for name, value in options.items()),
    ]
    return "\n".join(lines) + "\n"


def write_private(path: Path, text: str) -> None:
    """Write `text` atomically to a file only its owner can read."""
    make_private_dir(path.parent)
    temporary = path.with_name(f".{path.name}.tmp")
    descriptor = open_private(temporary, os.O_WRONLY | os.O_TRUNC)
    with os.fdopen(descriptor, "w", encoding="utf-8") as file:
        file.write(text)
        file.flush()
        os.fsync(file.fileno())
    os.replace(temporary, path)


def _existing_key(config_path: Path) -> KeyPair | None:
    """The key of an existing node config, or None when there is no config."""
    if not config_path.exists():
        return None
    config = load_config(config_path)  # ConfigError names the file or the key
    store = config.secretstore
    if store.self_key is None:
        raise ConfigError(f"{config_path}: secretstore.self_secret", "missing")
    if store.self_account is not None:
        raise ConfigError(
            f"{config_path}: secretstore.self_secret",
            "names a keystore account; `secretstore cluster` only manages configs with a raw "
            "secret (edit this one by hand, or move it away)",
        )
    return store.self_key


def _layout_difference(node: ClusterNode, everyone: Sequence[NodeAddress]) -> str | None:
    """What makes an existing config differ from the cluster's layout, or None."""
    store = load_config(node.config_path).secretstore
    if set(store.nodes) != set(everyone):
        return "the node set changed"
    if store.port != node.mesh_port or store.http_port != node.http_port:
        return "the ports changed"
    return None


def prepare_cluster(
    directory: Path, count: int, base_port: int, http_base_port: int, rng: Rng
) -> PreparedCluster:
    """Create or update DIR/nodeI/node.toml for I = 1..count and DIR/cluster.json.

    Existing configs keep their keys; one is rewritten only when its node set or ports differ
    from the layout asked for. Raises ConfigError for bad options or an unreadable config."""
    check_ports(count, base_port, http_base_port)
    directory = Path(directory)
    nodes: list[ClusterNode] = []
    fresh: set[int] = set()
    for index in range(1, count + 1):
        node_dir = directory / f"node{index}"
        key = _existing_key(node_dir / CONFIG_NAME)
        if key is None:
            key = KeyPair.generate(rng)
            fresh.add(index)
        offset = index - 1
        nodes.append(ClusterNode(index, node_dir, key, base_port + offset, http_base_port + offset))
    _refuse_duplicate_keys(nodes)
    everyone = sorted((node.address for node in nodes), key=lambda a: a.node_id)
    actions: list[str] = []
    for node in nodes:
        if node.index in fresh:
            action = "new"
        else:
            difference = _layout_difference(node, everyone)
            if difference is None:
                actions.append("kept")
                continue
            action = f"rewritten ({difference})"
        text = render_config(
            node.key,
            index=node.index,
            nodes=everyone,
            mesh_port=node.mesh_port,
            http_port=node.http_port,
            extra=EXAMPLE_POLICY,
        )
        write_private(node.config_path, text)
        actions.append(action)
    write_summary(directory, nodes)
    return PreparedCluster(tuple(nodes), tuple(actions))


def _refuse_duplicate_keys(nodes: Sequence[ClusterNode]) -> None:
    seen: dict[NodeId, ClusterNode] = {}
    for node in nodes:
        other = seen.setdefault(node.node_id, node)
        if other is not node:
            raise ConfigError(
                str(node.config_path), f"has the same key as {other.config_path}; remove one"
            )


def summary(nodes: Sequence[ClusterNode]) -> dict[str, object]:
    """What cluster.json holds: each node's id, ports, URL and files (no secrets)."""
    return {
        "nodes": [
            {
                "name": node.name,
                "node_id": to_hex(node.node_id),
                "mesh": f"{HOST}:{node.mesh_port}",
                "http": node.http_url,
                "config": str(node.config_path),
                "log": str(node.log_path),
            }
            for node in nodes
        ]
    }


def write_summary(directory: Path, nodes: Sequence[ClusterNode]) -> None:
    path = directory / SUMMARY_NAME
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(json.dumps(summary(nodes), indent=2) + "\n", encoding="utf-8")
    os.replace(temporary, path)


def table(nodes: Sequence[ClusterNode]) -> str:
    """The short table printed at start: name, node id, mesh port, HTTP URL."""
    rows = [("node", "node id", "mesh port", "HTTP API")]
    rows += [
        (node.name, node.node_id.hex()[:16] + "…", str(node.mesh_port), node.http_url)
        for node in nodes
    ]
    widths = [max(len(row[column]) for row in rows) for column in range(4)]
    return "\n".join(
        ("  " + "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True))).rstrip()
        for row in rows
    )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="secretstore cluster",
        description="Write the configs of a local N-node cluster (no chain) and run it.",
        epilog="Ctrl-C (or SIGTERM) stops every node gracefully. Full node ids are in "
        "DIR/cluster.json; each node's log is DIR/nodeI/node.log.",
    )
    parser.add_argument("--nodes", type=int, default=3, help="number of nodes (default 3)")
    parser.add_argument("--dir", type=Path, default=Path(".cluster"), help="default .cluster")
    parser.add_argument("--base-port", type=int, default=12000, help="first mesh port")
    parser.add_argument("--http-base-port", type=int, default=8082, help="first HTTP port")
    parser.add_argument(
        "--write-only", action="store_true", help="write keys and configs, start nothing"
    )
    parser.add_argument("--log-level", help="passed to every node (error, warn, info, debug)")
    parser.add_argument(
        "--ready-timeout",
        type=float,
        default=60.0,
        help="seconds to wait for every node to connect to all others (default 60)",
    )
    return parser


def main(argv: list[str], rng: Rng | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        prepared = prepare_cluster(
            args.dir, args.nodes, args.base_port, args.http_base_port, rng or OsRng()
        )
    except (ConfigError, OSError) as exc:
        print(f"secretstore cluster: {exc}", file=sys.stderr)
        return 2
    kept = sum(action == "kept" for action in prepared.actions)
    print(f"{len(prepared.nodes)} nodes in {args.dir} ({kept} configs reused)")
    for node, action in zip(prepared.nodes, prepared.actions, strict=True):
        if action.startswith("rewritten"):
            print(f"  {node.config_path}: {action}")
    print(table(prepared.nodes))
    sys.stdout.flush()
    if args.write_only:
        return 0
    from secretstore.cli.cluster_run import run_cluster

    return run_cluster(prepared.nodes, log_level=args.log_level, ready_timeout=args.ready_timeout)
