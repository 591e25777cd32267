"""Figures of the chain ACL: what a permissioning contract adds to a document key retrieval.

Two 3-node clusters (t = 1) of in-process nodes (one event loop; real TCP mesh, LevelDB and
HTTP) on one anvil: one with `acl_contract = "none"`, one with the OwnedPermissions contract
(found through the registry; the requester granted). Each serves the same sequential
retrievals (GET /<key>/<signature>); the difference of the medians is the ACL's cost per
retrieval (the master pins its latest block, and each of the t + 1 nodes of the consensus
calls checkPermissions at that block). Also: one raw pinned checkPermissions eth_call.

Run: .venv/bin/python bench/chain.py [--requests 200]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

import aiohttp

from secretstore.chain import abi
from secretstore.chain.client import ChainClient
from secretstore.chain.devchain import GRANT, Anvil, DevChain, deploy_secret_store, free_port
from secretstore.cli.cluster import render_config
from secretstore.config.loader import parse_config
from secretstore.config.model import NodeAddress
from secretstore.crypto.keys import KeyPair, sign_recoverable
from secretstore.crypto.rng import OsRng, SeededRng
from secretstore.node import Node


def configs(root: Path, keys: list[KeyPair], extra: dict[str, object]) -> list[Node]:
    ports = [free_port() for _ in range(2 * len(keys))]
    nodes = [NodeAddress(k.node_id, "127.0.0.1", ports[i]) for i, k in enumerate(keys)]
    out = []
    for i, key in enumerate(keys):
        text = render_config(
            key,
            index=i + 1,
            nodes=nodes,
            mesh_port=ports[i],
            http_port=ports[len(keys) + i],
            path=f"db{i}",
            extra={"log_level": "warn", **extra},  # type: ignore[dict-item]
        )
        out.append(Node(parse_config(text, root), rng=OsRng()))
    return out


async def timed_retrievals(url: str, key_id: bytes, signature: str, count: int) -> list[float]:
    samples = []
    async with aiohttp.ClientSession() as session:
        for _ in range(count):
            started = time.perf_counter()
            async with session.get(f"{url}/{key_id.hex()}/{signature}") as response:
                await response.read()
                assert response.status == 200, response.status
            samples.append(time.perf_counter() - started)
    return samples


async def cluster_figures(nodes: list[Node], key_id: bytes, requester: KeyPair, count: int):  # type: ignore[no-untyped-def]
    for node in nodes:
        await node.start()
    try:
        while not all(node.health().ready for node in nodes):
            await asyncio.sleep(0.02)
        signature = sign_recoverable(requester.secret, key_id).hex()
        address = nodes[0].http_address
        assert address is not None
        url = f"http://{address[0]}:{address[1]}"
        async with (
            aiohttp.ClientSession() as session,
            session.post(f"{url}/{key_id.hex()}/{signature}/1") as response,
        ):
            assert response.status == 200, await response.text()
        await timed_retrievals(url, key_id, signature, 10)  # warm up
        return await timed_retrievals(url, key_id, signature, count)
    finally:
        for node in nodes:
            await node.stop()


def quantiles(samples: list[float]) -> tuple[float, float]:
    cuts = statistics.quantiles(samples, n=10)
    return statistics.median(samples) * 1000, cuts[8] * 1000


async def main(count: int) -> None:
    requester = KeyPair.generate(SeededRng(b"bench requester"))
    key_id = bytes(range(32))
    keys = [KeyPair.generate(OsRng()) for _ in range(6)]
    with tempfile.TemporaryDirectory() as tmp, Anvil(block_time=None) as anvil:
        root = Path(tmp)
        dev = DevChain(anvil.url)
        deployment = deploy_secret_store(dev, [])
        dev.transact(deployment.acl, GRANT, requester.address, key_id)
        dev.mine_every(1)
        chain = {
            "acl_contract": "registry",
            "chain_rpc_url": anvil.url,
            "registry_address": "0x" + deployment.registry.hex(),
            "chain_confirmations": 0,
        }
        (root / "a").mkdir()
        (root / "b").mkdir()
        plain = await cluster_figures(configs(root / "a", keys[:3], {}), key_id, requester, count)
        acl = await cluster_figures(configs(root / "b", keys[3:], chain), key_id, requester, count)

        client = ChainClient(anvil.url, keys[0])
        await client.start()
        calls = []
        for _ in range(count):
            block = client.require_trusted()
            started = time.perf_counter()
            await client.call(
                deployment.acl, abi.CHECK_PERMISSIONS, requester.address, key_id, block=block
            )
            calls.append(time.perf_counter() - started)
        await client.stop()

    rows = [
        ("retrieval, acl_contract = none", *quantiles(plain)),
        ("retrieval, ACL contract (registry)", *quantiles(acl)),
        ("one pinned checkPermissions eth_call", *quantiles(calls)),
    ]
    print(f"{count} sequential requests each, 3 in-process nodes, t = 1, anvil on loopback")
    print(f"  {'':40} {'p50 ms':>8} {'p90 ms':>8}")
    for name, p50, p90 in rows:
        print(f"  {name:40} {p50:8.2f} {p90:8.2f}")
    print(f"  {'added by the ACL per retrieval (p50)':40} {rows[1][1] - rows[0][1]:8.2f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=200)
    asyncio.run(main(parser.parse_args().requests))
