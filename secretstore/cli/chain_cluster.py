"""`secretstore chain-cluster`: a local cluster on a local dev chain, in one command.

Starts anvil (npm's, `make devtools`; a block a second, its state kept in DIR/chain.json),
deploys our Registry, an ACL (OwnedPermissions, or OnceTransferablePermission with
`--acl once`) and an OwnedKeyServerSetWithMigration holding the N nodes, enters both in the
registry, funds every node's account, writes each node's config with
`acl_contract = "registry"` and `server_set_contract = "registry"`, prints the addresses, and
runs the nodes as `secretstore cluster` does. Run again, it reuses the keys, the chain and the
deployment (DIR/deployment.json). anvil's first account (its well-known dev key) owns the
contracts: grant access with it, e.g. `cast send <acl> "grant(address,bytes32)" ...`.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from secretstore.chain.devchain import (
    ACLS,
    DEPLOYMENT_NAME,
    DEV_ACCOUNT,
    Anvil,
    Deployment,
    DevChain,
    DevChainError,
    recorded_deployment,
)
from secretstore.cli.cluster import (
    SUMMARY_NAME,
    TomlValue,
    prepare_cluster,
    render_config,
    table,
    write_private,
)
from secretstore.crypto.rng import OsRng
from secretstore.encoding import to_hex
from secretstore.errors import ConfigError


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="secretstore chain-cluster",
        description="Run a local cluster whose ACL and key server set are contracts on a local "
        "dev chain (anvil), deployed by this command.",
        epilog="Ctrl-C stops the nodes and the chain; the chain's state is kept in "
        "DIR/chain.json, the deployed addresses in DIR/deployment.json.",
    )
    parser.add_argument("--nodes", type=int, default=3, help="number of nodes (default 3)")
    parser.add_argument("--dir", type=Path, default=Path(".chain-cluster"))
    parser.add_argument("--base-port", type=int, default=12000, help="first mesh port")
    parser.add_argument("--http-base-port", type=int, default=8082, help="first HTTP port")
    parser.add_argument("--chain-port", type=int, default=8545, help="anvil's port (8545)")
    parser.add_argument("--acl", choices=sorted(ACLS), default="owned", help="the ACL contract")
    parser.add_argument("--log-level", help="passed to every node")
    parser.add_argument("--ready-timeout", type=float, default=60.0)
    parser.add_argument(
        "--write-only",
        action="store_true",
        help="deploy, write the configs and stop the chain; start no node",
    )
    return parser


def chain_options(url: str, deployment: Deployment) -> dict[str, TomlValue]:
    """The [secretstore] options of a node of this cluster."""
    return {
        "acl_contract": "registry",
        "server_set_contract": "registry",
        "chain_rpc_url": url,
        "registry_address": to_hex(deployment.registry),
    }


def main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    directory: Path = args.dir
    try:
        prepared = prepare_cluster(
            directory, args.nodes, args.base_port, args.http_base_port, OsRng()
        )
    except (ConfigError, OSError) as exc:
        print(f"secretstore chain-cluster: {exc}", file=sys.stderr)
        return 2
    anvil = Anvil(
        port=args.chain_port,
        block_time=None,
        state=(directory / "chain.json").resolve(),
        log=directory / "anvil.log",
    )
    try:
        anvil.start()
        chain = DevChain(anvil.url)
        servers = [(node.node_id, f"127.0.0.1:{node.mesh_port}") for node in prepared.nodes]
        deployment, reused = recorded_deployment(
            chain, directory / DEPLOYMENT_NAME, servers, ACLS[args.acl]
        )
        chain.mine_every(1)
    except DevChainError as exc:
        anvil.stop()
        print(f"secretstore chain-cluster: {exc}", file=sys.stderr)
        return 1
    try:
        everyone = sorted((node.address for node in prepared.nodes), key=lambda a: a.node_id)
        options = chain_options(anvil.url, deployment)
        for node in prepared.nodes:
            text = render_config(
                node.key,
                index=node.index,
                nodes=everyone,
                mesh_port=node.mesh_port,
                http_port=node.http_port,
                extra=options,
            )
            write_private(node.config_path, text)
        summary = json.loads((directory / SUMMARY_NAME).read_text(encoding="utf-8"))
        summary["chain"] = {"rpc": anvil.url, "owner": DEV_ACCOUNT, **deployment.to_json()}
        (directory / SUMMARY_NAME).write_text(json.dumps(summary, indent=2) + "\n")
        print(f"dev chain {anvil.url} (anvil, a block a second; state in {directory}/chain.json)")
        print(f"contracts ({'reused' if reused else 'deployed'}; owner {DEV_ACCOUNT}):")
        print(f"  registry    {to_hex(deployment.registry)}")
        print(f"  ACL         {to_hex(deployment.acl)}  ({ACLS[args.acl]})")
        print(f"  server set  {to_hex(deployment.server_set)}  (OwnedKeyServerSetWithMigration)")
        print(f"{len(prepared.nodes)} nodes in {directory}")
        print(table(prepared.nodes))
        sys.stdout.flush()
        if args.write_only:
            return 0
        from secretstore.cli.cluster_run import run_cluster

        return run_cluster(
            prepared.nodes, log_level=args.log_level, ready_timeout=args.ready_timeout
        )
    finally:
        anvil.stop()
