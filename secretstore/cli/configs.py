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

from secretstore.cli.cluster import EXAMPLE_POLICY, TomlValue, toml_value, write_private
from secretstore.cli.common import EXIT_OK, UsageError, expand, parse_args, parser, run
from secretstore.config.loader import load_config, parse_config
from secretstore.config.model import NodeAddress
from secretstore.crypto.keys import KeyPair
from secretstore.crypto.rng import OsRng, Rng
from secretstore.encoding import to_hex
from secretstore.errors import ConfigError, SecretStoreError
from secretstore.listen import host_port
from secretstore.observe.health import plural

#: The block of cluster-wide policy switches that closes every config written (and every
#: example under config/): the options all nodes of a cluster must agree on.
POLICY_HEADER: Final = (
    "# --- Cluster policy: every node of a cluster must have the same values here. ---------------",
    "# (Cluster-wide policy switches go in this block, one line each.)",
)
#: Options every config gets from the command itself, beside those of `_options`.
WRITTEN: Final = frozenset(
    {
        "self_secret",
        "nodes",
        "port",
        "http_port",
        "acl_contract",
        "server_set_contract",
        "chain_rpc_url",
        "registry_address",
    }
)
#: Seconds --deploy-dev-contracts waits for the dev chain to answer (one just started).
CHAIN_WAIT: Final = 30.0
#: The cluster-wide policy switches (every node the same): they go in the policy block.
POLICY_OPTIONS: Final = frozenset({"require_shadow_retrieval", "require_bound_requests"})
CONFIG_NAME: Final = "node.toml"
SUMMARY_NAME: Final = "cluster.json"
MAX_NODES: Final = 256

DESCRIPTION: Final = (
    "Generate the keys and a consistent set of configs for the N nodes of a cluster, on one "
    'host or many: without a chain (acl_contract and server_set_contract "none"), or with '
    "the ACL and key server set found through a registry contract (--chain-rpc)."
)
EPILOG: Final = """\
examples:
  secretstore configs --out deploy --hosts ks1.example.org,ks2.example.org,ks3.example.org
  secretstore configs --out deploy/compose --nodes 3 --host 127.0.0.1 \\
      --db-path /var/lib/secretstore/db --owner 10001     # docker-compose.yml's layout
  secretstore configs --out deploy --nodes 3 --option session_timeout=60
  secretstore configs --out deploy --hosts 10.0.0.1,10.0.0.2,10.0.0.3 \\
      --chain-rpc http://10.0.0.9:8545 --registry 0x5FbDB2315678afecb367f032d93F642f64180aa3
  secretstore configs --out deploy --nodes 3 \\
      --chain-rpc http://127.0.0.1:8545 --deploy-dev-contracts   # a dev chain (anvil)

Every node gets the same [secretstore] options (--option KEY=VALUE, a TOML value, repeatable,
e.g. session_timeout=60). The policy switches close each config, in its Cluster policy block:
require_shadow_retrieval = true (--option require_shadow_retrieval=false replaces it). Add
--option require_bound_requests=true when every client is ours (the secretstore CLI and
library sign bound requests; Parity's clients do not). Copy DIR/nodeI/node.toml to node I's
host; it holds the node's secret key (keep it private). DIR/cluster.json lists the nodes
(`secretstore status --cluster DIR/cluster.json`).

With --chain-rpc every node reads its ACL and its key server set through the registry at
--registry (docs/CHAIN.md). --deploy-dev-contracts instead deploys our Registry, an ACL and a
key server set holding these nodes on that chain, a dev chain whose first account (anvil's
well-known dev key) pays and owns them; it records them in DIR/deployment.json and reuses them
while the chain has them.
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


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


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
    extra: Extra,
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
        *extra.options,
        "",
        *POLICY_HEADER,
        *extra.policy,
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


def _check_chain_args(args: argparse.Namespace, hosts: Sequence[str]) -> None:
    if args.chain_rpc is None:
        if args.registry is not None or args.deploy_dev_contracts:
            raise UsageError("--registry and --deploy-dev-contracts need --chain-rpc")
        return
    if not args.chain_rpc.startswith(("http://", "https://")):
        raise UsageError(f"--chain-rpc: expected an http(s):// URL, got {args.chain_rpc!r}")
    if (args.registry is None) == (not args.deploy_dev_contracts):
        raise UsageError("--chain-rpc needs --registry ADDRESS or --deploy-dev-contracts")
    if args.deploy_dev_contracts:
        named = [host for host in hosts if not _is_ip(host)]
        if named:
            raise UsageError(
                f"--deploy-dev-contracts: the key server set lists IP addresses only, "
                f"not {named[0]!r}"
            )


def _chain_options(args: argparse.Namespace, registry: str | None) -> dict[str, TomlValue]:
    if args.chain_rpc is None:
        return {"acl_contract": "none", "server_set_contract": "none"}
    assert registry is not None
    return {
        "acl_contract": "registry",
        "server_set_contract": "registry",
        "chain_rpc_url": args.chain_rpc,
        "registry_address": registry,
    }


def _deploy(
    args: argparse.Namespace, directory: Path, servers: Sequence[tuple[bytes, str]]
) -> tuple[str, bool]:
    """Our contracts holding `servers` on the dev chain at --chain-rpc (recorded, reused):
    (the registry's address, reused)."""
    from secretstore.chain.devchain import (  # web3: only for this option
        ACLS,
        DEPLOYMENT_NAME,
        DevChain,
        DevChainError,
        recorded_deployment,
    )

    try:
        chain = DevChain(args.chain_rpc)
        chain.wait_until_up(CHAIN_WAIT)
        directory.mkdir(parents=True, exist_ok=True)
        deployment, reused = recorded_deployment(
            chain, directory / DEPLOYMENT_NAME, servers, ACLS["owned"]
        )
    except DevChainError as exc:
        raise ChainProblem(f"--deploy-dev-contracts on {args.chain_rpc}: {exc}") from exc
    except Exception as exc:  # web3's transport errors: the chain does not answer
        raise ChainProblem(
            f"--deploy-dev-contracts: the chain at {args.chain_rpc} does not answer: "
            f"{type(exc).__name__}"
        ) from exc
    return to_hex(deployment.registry), reused


class ChainProblem(SecretStoreError):
    """The dev chain could not take the deployment (exit status 1)."""


@dataclass(frozen=True, slots=True)
class Extra:
    """The lines --option adds: per-node options, and the cluster policy block's."""

    options: list[str]
    policy: list[str]


def _options(args: argparse.Namespace, hosts: Sequence[str]) -> tuple[dict[str, TomlValue], Extra]:
    local = all(_is_loopback(host) for host in hosts)
    interface = args.interface or ("local" if local else "all")
    options: dict[str, TomlValue] = {
        "interface": interface,
        "http_interface": args.http_interface or interface,
        "path": args.db_path,
    }
    given: dict[str, str] = {}
    for item in args.option or []:
        name, eq, value = item.partition("=")
        if not eq or not name.strip():
            raise UsageError(f"--option: expected KEY=VALUE (a TOML value), got {item!r}")
        name = name.strip()
        if name in options or name in WRITTEN:
            raise UsageError(
                f"--option {name}: `secretstore configs` writes it itself; use its own "
                "options (--port, --http-port, --interface, --db-path, ...)"
            )
        given[name] = value.strip()
    policy = {name: toml_value(value) for name, value in EXAMPLE_POLICY.items()}
    chosen = {**policy, **given}
    return options, Extra(
        [f"{name} = {value}" for name, value in chosen.items() if name not in POLICY_OPTIONS],
        [f"{name} = {value}" for name, value in chosen.items() if name in POLICY_OPTIONS],
    )


def write_configs(args: argparse.Namespace, rng: Rng) -> int:
    directory = expand(args.out)
    if args.hosts is not None:
        entries = parse_hosts(args.hosts, args.port)
    else:
        entries = [(args.host, None)] * args.nodes
    nodes = plan(directory, entries, args.port, args.http_port)
    _check_chain_args(args, [host for host, _ in entries])
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
    registry, deployed = args.registry, ""
    if args.deploy_dev_contracts:
        servers = [
            (key.node_id, host_port(node.host, node.mesh_port))
            for node, key in zip(nodes, keys, strict=True)
        ]
        registry, reused_contracts = _deploy(args, directory, servers)
        deployed = f"; contracts {'reused' if reused_contracts else 'deployed'}"
    options = {**_chain_options(args, registry), **options}
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
    print(
        f"{plural(len(nodes), 'node')} in {directory} ({reused} keys reused{deployed}); "
        f"node list: {path}"
    )
    if registry is not None:
        print(f"  chain {args.chain_rpc}, registry {registry}")
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
    chain = p.add_argument_group("a chain (docs/CHAIN.md)")
    chain.add_argument("--chain-rpc", metavar="URL", help="the chain's JSON-RPC endpoint")
    chain.add_argument("--registry", metavar="ADDRESS", help="the registry contract's address")
    chain.add_argument(
        "--deploy-dev-contracts",
        action="store_true",
        help="deploy our contracts for these nodes on the dev chain at --chain-rpc",
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
