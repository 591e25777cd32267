"""`secretstore cluster`: write the keys and configs of a local N-node cluster, then run it.

Layout under DIR: `nodeI/node.toml` (the node's config, holding its secret key, mode 0600),
`nodeI/db/` (its key storage), `nodeI/node.log` (its log), `cluster.json` (the member nodes'
ids, ports and URLs; no secrets) and `admin/` (the administrator account that signs node set
changes: a keystore, its password file; every config names its public as `admin_public`).
Node I (1-based) listens on base_port + I - 1 for other nodes and on http_base_port + I - 1 for
HTTP, both on 127.0.0.1. Running the command again reuses the keys (and so the stored key
shares) and the members `secretstore cluster add` / `remove` left (cluster_change.py); a config
is rewritten, with the same key, only when the cluster's layout changed.
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

from secretstore.cli.common import parse_args
from secretstore.config.loader import load_config
from secretstore.config.model import NodeAddress
from secretstore.crypto.curve import Point
from secretstore.crypto.keys import KeyPair
from secretstore.crypto.rng import OsRng, Rng, random_scalar
from secretstore.encoding import parse_hex, to_hex
from secretstore.errors import ConfigError, CryptoError, InvalidEncoding
from secretstore.filemodes import make_private_dir, open_private
from secretstore.observe.health import plural
from secretstore.types import Address, NodeId

HOST: Final = "127.0.0.1"
CONFIG_NAME: Final = "node.toml"
LOG_NAME: Final = "node.log"
DB_NAME: Final = "db"
SUMMARY_NAME: Final = "cluster.json"
ADMIN_DIR: Final = "admin"
MAX_NODES: Final = 256
DEFAULT_NODES: Final = 3

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
class AdminAccount:
    """The administrator of a local cluster: a keystore account and its password file."""

    keystore: Path
    address: Address
    password_file: Path
    public: Point

    def unlock(self) -> KeyPair:
        from secretstore.keystore import Keystore  # eth-account is slow to import

        password = self.password_file.read_text(encoding="utf-8").splitlines()[0]
        return Keystore(self.keystore).unlock(self.address, password)


@dataclass(frozen=True, slots=True)
class PreparedCluster:
    nodes: tuple[ClusterNode, ...]
    #: what was done to each config: "new", "kept" or "rewritten (…)"
    actions: tuple[str, ...]
    admin: AdminAccount | None = None


def ensure_admin(directory: Path, rng: Rng) -> AdminAccount:
    """DIR/admin: the cluster's administrator account, created on first use (a keystore
    account with a random password in `password`, mode 0600; its address and public in
    `account` and `public`)."""
    from secretstore.keystore import Keystore

    folder = Path(directory) / ADMIN_DIR
    keystore, password_file = folder / "keys", folder / "password"
    account_file, public_file = folder / "account", folder / "public"
    if account_file.exists() and public_file.exists() and password_file.exists():
        try:
            address = Address(parse_hex(account_file.read_text().strip(), 20))
            public = Point.from_bytes(parse_hex(public_file.read_text().strip(), 64))
        except (InvalidEncoding, CryptoError) as exc:
            raise ConfigError(str(folder), f"unreadable administrator files: {exc}") from None
        return AdminAccount(keystore, address, password_file, public)
    password = rng.random_bytes(24).hex()
    write_private(password_file, password + "\n")
    secret = random_scalar(rng)
    # pbkdf2: a local cluster's account unlocks in a fraction of a second (scrypt takes ~1 s)
    address = Keystore(keystore, kdf="pbkdf2").import_secret(secret, password)
    public = KeyPair.from_secret(secret).public
    write_private(account_file, address.hex() + "\n")
    write_private(public_file, public.to_bytes().hex() + "\n")
    return AdminAccount(keystore, address, password_file, public)


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


def toml_value(value: TomlValue) -> str:
    """A value as TOML: a boolean, a number, or a string (a JSON string is a TOML one)."""
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
    node_lines = "".join(f"  {toml_value(str(node))},\n" for node in nodes)
    lines = [
        f"# Node {index} of a local {len(nodes)}-node cluster, written by `secretstore cluster`.",
        "# self_secret is this node's private key: keep this file private.",
        "[secretstore]",
        f"self_secret = {toml_value(key.secret.to_bytes().hex())}",
        f"nodes = [\n{node_lines}]",
        *(f"{name} = {toml_value(value)}" for name, value in options.items()),
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


def _layout_difference(
    node: ClusterNode, everyone: Sequence[NodeAddress], admin: Point | None
) -> str | None:
    """What makes an existing config differ from the cluster's layout, or None."""
    store = load_config(node.config_path).secretstore
    if set(store.nodes) != set(everyone):
        return "the node set changed"
    if store.port != node.mesh_port or store.http_port != node.http_port:
        return "the ports changed"
    if store.admin_public != admin or not store.disable_auto_migrate:
        return "the administrator changed"
    return None


def prepare_cluster(
    directory: Path,
    count: int,
    base_port: int,
    http_base_port: int,
    rng: Rng,
    *,
    members: Sequence[int] | None = None,
) -> PreparedCluster:
    """Create or update DIR/nodeI/node.toml for I = 1..count (or I in `members`), the
    administrator account and DIR/cluster.json.

    Existing configs keep their keys; one is rewritten only when its node set, ports or
    administrator differ from the layout asked for. Raises ConfigError for bad options or an
    unreadable config."""
    indices = sorted(set(members)) if members is not None else list(range(1, count + 1))
    check_ports(max(indices, default=0), base_port, http_base_port)
    directory = Path(directory)
    admin = ensure_admin(directory, rng)
    admin_hex = admin.public.to_bytes().hex()
    nodes: list[ClusterNode] = []
    fresh: set[int] = set()
    for index in indices:
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
            difference = _layout_difference(node, everyone, admin.public)
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
            extra={**EXAMPLE_POLICY, "admin_public": admin_hex, "disable_auto_migrate": True},
        )
        write_private(node.config_path, text)
        actions.append(action)
    write_summary(directory, nodes)
    return PreparedCluster(tuple(nodes), tuple(actions), admin)


def recorded_members(directory: Path) -> list[int] | None:
    """The node indices DIR/cluster.json lists (the members after add/remove), or None."""
    path = Path(directory) / SUMMARY_NAME
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        names = [entry["name"] for entry in data["nodes"]]
        return sorted(int(name.removeprefix("node")) for name in names)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConfigError(str(path), f"unreadable cluster summary: {exc}") from None


def load_members(directory: Path) -> list[ClusterNode]:
    """The member nodes DIR/cluster.json lists, from their configs (keys and ports)."""
    directory = Path(directory)
    indices = recorded_members(directory)
    if indices is None:
        raise ConfigError(str(directory / SUMMARY_NAME), "no cluster here")
    nodes: list[ClusterNode] = []
    for index in indices:
        node_dir = directory / f"node{index}"
        store = load_config(node_dir / CONFIG_NAME).secretstore
        nodes.append(ClusterNode(index, node_dir, store.key_pair, store.port, store.http_port))
    return nodes


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
    parser.add_argument(
        "--nodes",
        type=int,
        help="number of nodes (default: the members of an existing DIR, else 3)",
    )
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


def _members(directory: Path, nodes: int | None) -> tuple[int, list[int] | None]:
    """The node count and members to lay out: what DIR records after add/remove (when
    --nodes is not given), else 1..--nodes; ConfigError when they disagree."""
    recorded = recorded_members(directory)
    if nodes is None:
        return (len(recorded), recorded) if recorded else (DEFAULT_NODES, None)
    if recorded is not None and recorded != list(range(1, len(recorded) + 1)):
        raise ConfigError(
            "--nodes",
            f"{directory} holds a cluster whose members changed with `secretstore cluster "
            f"add/remove` (nodes {', '.join(map(str, recorded))}): run without --nodes",
        )
    return nodes, None


def main(argv: list[str], rng: Rng | None = None) -> int:
    if argv and argv[0] in ("add", "remove"):
        from secretstore.cli.cluster_change import main as change_main

        return change_main(argv, rng)
    args = parse_args(_parser(), argv)
    if isinstance(args, int):
        return args
    try:
        count, members = _members(args.dir, args.nodes)
        prepared = prepare_cluster(
            args.dir, count, args.base_port, args.http_base_port, rng or OsRng(), members=members
        )
    except (ConfigError, OSError) as exc:
        print(f"secretstore cluster: {exc}", file=sys.stderr)
        return 2
    kept = sum(action == "kept" for action in prepared.actions)
    reused = plural(kept, "config")
    print(f"{plural(len(prepared.nodes), 'node')} in {args.dir} ({reused} reused)")
    for node, action in zip(prepared.nodes, prepared.actions, strict=True):
        if action.startswith("rewritten"):
            print(f"  {node.config_path}: {action}")
    print(table(prepared.nodes))
    sys.stdout.flush()
    if args.write_only:
        return 0
    from secretstore.cli.cluster_run import run_cluster

    return run_cluster(
        prepared.nodes,
        log_level=args.log_level,
        ready_timeout=args.ready_timeout,
        directory=Path(args.dir),
    )
