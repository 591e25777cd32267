"""Figures of auto-migration: blocks and seconds from a change of the key server set contract to
the completed migration, with Parity's block constants and with the test ones.

anvil mines a block a second (`--block-time 1`). Four in-process nodes (one event loop; real
TCP mesh, LevelDB and HTTP), the contract's current set being the first three, which hold
`--keys` server keys (t = 1). The owner adds the 4th node, then removes the 1st; for each,
the blocks from the owner's transaction to MigrationCompleted, with the block of
MigrationStarted in between, and the wall time. The nodes do everything else by themselves:
the new set waits `chain_migration_delay` blocks, the chosen master sends startMigration,
waits a block, runs the node set change, every node of the migration set confirms.

Profiles: "parity" = chain_confirmations 3, chain_migration_delay 5, chain_retry_interval 30,
chain_poll_interval 1 s (the defaults); "test" = 1, 2, 5, 0.2 s (what tests/e2e/test_chain.py
uses).

Run: .venv/bin/python bench/migration.py [--keys 20] [--runs 2] [--profile parity --profile test]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from web3 import Web3

from secretstore.chain.devchain import (
    ADD_KEY_SERVER,
    REMOVE_KEY_SERVER,
    Anvil,
    Deployment,
    DevChain,
    deploy_secret_store,
    free_port,
)
from secretstore.cli.cluster import render_config
from secretstore.config.loader import parse_config
from secretstore.config.model import NodeAddress
from secretstore.crypto.keys import KeyPair, sign_recoverable
from secretstore.crypto.rng import OsRng, SeededRng
from secretstore.node import Node
from secretstore.types import ServerKeyId

PROFILES: dict[str, dict[str, object]] = {
    "parity": {
        "chain_confirmations": 3,
        "chain_migration_delay": 5,
        "chain_retry_interval": 30,
        "chain_poll_interval": 1.0,
    },
    "test": {
        "chain_confirmations": 1,
        "chain_migration_delay": 2,
        "chain_retry_interval": 5,
        "chain_poll_interval": 0.2,
    },
}
STARTED = Web3.to_hex(Web3.keccak(text="MigrationStarted()"))
COMPLETED = Web3.to_hex(Web3.keccak(text="MigrationCompleted()"))


def make_nodes(
    root: Path,
    keys: list[KeyPair],
    ports: list[int],
    chain: Anvil,
    deployment: Deployment,
    *,
    profile: dict[str, object],
) -> list[Node]:
    """`ports`: the mesh ports, then the HTTP ports."""
    out = []
    for i, key in enumerate(keys):
        extra: dict[str, Any] = {
            "log_level": "error",
            "acl_contract": "none",
            "server_set_contract": "registry",
            "chain_rpc_url": chain.url,
            "registry_address": "0x" + deployment.registry.hex(),
            "keep_alive_interval": 1.0,
            **profile,
        }
        text = render_config(
            key,
            index=i + 1,
            nodes=[NodeAddress(key.node_id, "127.0.0.1", ports[i])],
            mesh_port=ports[i],
            http_port=ports[len(keys) + i],
            path=f"db{i}",
            extra=extra,
        )
        out.append(Node(parse_config(text, root), rng=OsRng()))
    return out


async def events(dev: DevChain, deployment: Deployment, topic: str, since: int) -> list[int]:
    logs = await asyncio.to_thread(
        dev.w3.eth.get_logs,
        {
            "address": Web3.to_checksum_address("0x" + deployment.server_set.hex()),
            "topics": [topic],  # type: ignore[list-item]
            "fromBlock": since,
        },
    )
    return [int(entry["blockNumber"]) for entry in logs]


async def measure(
    dev: DevChain, deployment: Deployment, nodes: list[Node], *args: Any, size: int
) -> tuple[int, int, float]:
    """Send the owner's set change; (blocks to MigrationStarted, blocks to MigrationCompleted,
    seconds to every node serving the new set)."""
    started = time.monotonic()
    receipt = await asyncio.to_thread(dev.transact, deployment.server_set, *args)
    changed = int(receipt["blockNumber"])
    while not (done := await events(dev, deployment, COMPLETED, changed)):
        await asyncio.sleep(0.1)
    while not all(n.health().cluster_size == size for n in nodes):
        await asyncio.sleep(0.05)
    seconds = time.monotonic() - started
    [start] = await events(dev, deployment, STARTED, changed)
    return start - changed, done[0] - changed, seconds


async def one_run(keys_count: int, profile: dict[str, object]) -> list[tuple[int, int, float]]:
    rng = OsRng()
    keys = sorted((KeyPair.generate(rng) for _ in range(4)), key=lambda k: k.node_id)
    with tempfile.TemporaryDirectory() as tmp, Anvil(block_time=None) as chain:
        root = Path(tmp)
        dev = DevChain(chain.url)
        ports = [free_port() for _ in range(2 * len(keys))]
        deployment = deploy_secret_store(
            dev, [(k.node_id, f"127.0.0.1:{ports[i]}") for i, k in enumerate(keys[:3])]
        )
        dev.fund(keys[3].address)  # it pays for its confirmation
        nodes = make_nodes(root, keys, ports, chain, deployment, profile=profile)
        dev.mine_every(1)
        for node in nodes:
            await node.start()
        try:
            while not all(n.health().ready for n in nodes[:3]):
                await asyncio.sleep(0.05)
            requester = KeyPair.generate(SeededRng(b"bench migration"))
            server = nodes[0].key_server
            assert server is not None
            for index in range(keys_count):
                key_id = ServerKeyId(index.to_bytes(32, "big"))
                await server.generate_server_key(
                    key_id, sign_recoverable(requester.secret, key_id), 1
                )
            add = await measure(
                dev,
                deployment,
                nodes,
                ADD_KEY_SERVER,
                keys[3].node_id,
                f"127.0.0.1:{ports[3]}",
                size=4,
            )
            remove = await measure(
                dev, deployment, nodes[1:], REMOVE_KEY_SERVER, keys[0].address, size=3
            )
            return [add, remove]
        finally:
            for node in nodes:
                await node.stop()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keys", type=int, default=20)
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--profile", action="append", choices=sorted(PROFILES))
    args = parser.parse_args()
    logging.basicConfig(level=getattr(logging, os.environ.get("BENCH_LOG", "ERROR")))
    profiles = args.profile or ["parity", "test"]
    print(f"auto-migration at --block-time 1, {args.keys} keys, 3 -> 4 -> 3 nodes")
    print(f"{'profile':8} {'change':8} {'to start':>9} {'to done':>8} {'seconds':>8}")
    for name in profiles:
        for _ in range(args.runs):
            add, remove = await one_run(args.keys, PROFILES[name])
            for label, (start, done, seconds) in (("3 -> 4", add), ("4 -> 3", remove)):
                print(f"{name:8} {label:8} {start:>9} {done:>8} {seconds:>8.1f}")


if __name__ == "__main__":
    asyncio.run(main())
