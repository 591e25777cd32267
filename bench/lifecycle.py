"""Key lifecycle figures on a real local cluster of five `secretstore-node` processes.

1. Proactive refresh: K server keys (t = 2, with document keys) on five nodes, refreshed by
   the admin call (`POST /admin/refresh/...`, every key, in batches of `refresh_batch_size`).
   The time is the call's: it answers when every key has its new version on every holder and
   every node has erased the old one (synced LevelDB writes).
2. Threshold delete: `DELETE /{key_id}/{signature}` of keys one at a time through the client
   (the key's public retrieved beforehand, so the figure is the delete alone); p50 and p90.

Production options (keep-alive 10 s, session timeout 30 s). The load generator shares the
machine (2 cores) with the five nodes.

Run: .venv/bin/python bench/lifecycle.py [--keys 1000] [--deletes 50] [--threshold 2]
"""

from __future__ import annotations

import argparse
import asyncio
import io
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import aiohttp

from secretstore.cli.admin_refresh import refresh_keys
from secretstore.client.http_client import KeyServerClient
from secretstore.crypto.hashing import keccak256
from secretstore.crypto.keys import KeyPair
from secretstore.crypto.rng import OsRng
from tests.e2e.cluster import LocalCluster, NodeProcess

ADMIN = KeyPair.generate(OsRng())
ALICE = KeyPair.generate(OsRng())


def options(batch: int) -> dict[str, str | int | float | bool]:
    return {
        "keep_alive_interval": 10.0,
        "session_timeout": 30.0,
        "admin_public": ADMIN.public.to_bytes().hex(),
        "disable_auto_migrate": True,
        "refresh_batch_size": batch,
        "log_level": "warning",
    }


async def make_keys(nodes: list[NodeProcess], count: int, threshold: int, tag: str) -> list[bytes]:
    keys = [keccak256(f"bench lifecycle {tag} {i}".encode()) for i in range(count)]
    limit = asyncio.Semaphore(16)
    async with aiohttp.ClientSession() as session:

        async def one(index: int, key: bytes) -> None:
            async with limit:
                client = KeyServerClient(nodes[index % len(nodes)].url, session)
                await client.create_document_key(key, ALICE, threshold)

        await asyncio.gather(*(one(i, k) for i, k in enumerate(keys)))
    return keys


async def timed_refresh(node: NodeProcess) -> float:
    out = io.StringIO()
    started = time.perf_counter()
    status = await refresh_keys(node.url, None, 3600.0, ADMIN, out)
    took = time.perf_counter() - started
    if status != 0:
        raise RuntimeError(f"the refresh failed: {out.getvalue()}")
    return took


async def delete_latency(node: NodeProcess, keys: list[bytes]) -> list[float]:
    times: list[float] = []
    async with aiohttp.ClientSession() as session:
        client = KeyServerClient(node.url, session)
        for key in keys:
            public = await client.retrieve_server_key(key, ALICE)
            started = time.perf_counter()
            deleted = await client.delete_key(key, ALICE, server_key_public=public)
            times.append(time.perf_counter() - started)
            if deleted.unconfirmed:
                raise RuntimeError(f"a delete left unconfirmed nodes: {deleted}")
    return times


def ms(values: list[float]) -> str:
    ordered = sorted(values)
    p50 = statistics.median(ordered) * 1000
    p90 = ordered[int(0.9 * (len(ordered) - 1))] * 1000
    return f"p50 {p50:6.1f} ms  p90 {p90:6.1f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keys", type=int, default=1000)
    parser.add_argument("--deletes", type=int, default=50)
    parser.add_argument("--threshold", type=int, default=2)
    parser.add_argument("--batch", type=int, default=256)
    args = parser.parse_args()
    print("key lifecycle on five real node processes (loopback, 2 cores shared with the load)")
    with tempfile.TemporaryDirectory(prefix="bench-lifecycle-") as root:
        cluster = LocalCluster(Path(root), 5, seed=args.keys, extra=options(args.batch))
        try:
            cluster.start()
            cluster.wait_ready(60)
            nodes = cluster.nodes
            started = time.perf_counter()
            keys = asyncio.run(make_keys(nodes, args.keys, args.threshold, "refresh"))
            made = time.perf_counter() - started
            took = asyncio.run(timed_refresh(nodes[0]))
            print(
                f"refresh: {args.keys} keys, 5 nodes, t = {args.threshold}: {took:6.2f} s "
                f"({args.keys / took:5.0f} keys/s, batches of {args.batch}; "
                f"making the keys took {made:.1f} s)"
            )
            doomed = keys[: args.deletes]
            times = asyncio.run(delete_latency(nodes[1], doomed))
            print(f"delete: {len(times)} keys one at a time, 5 nodes: {ms(times)}")
        finally:
            cluster.kill_all()


if __name__ == "__main__":
    main()
