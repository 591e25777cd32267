"""Node set change figures on a real local cluster of `secretstore-node` processes on loopback.

1. Redistribution: 3 nodes hold K server keys (t = 1, with document keys); two more nodes join
   (configured, connected, holding nothing) and the change 3 → 5 runs, for K = 100 and 1,000.
   The time is the admin request's (it answers when every key is on the new set and every node
   is done), with the keys-in-flight limit given (Parity's fixed 64 by default).
2. Delegation: before the change, the new nodes hold no share; a client asking one of them
   for a shadow retrieval or a Schnorr signature is served by a holder through delegation. The
   table gives the latency (one request at a time) next to the same request to a holder.

Production options (keep-alive 10 s, session timeout 30 s, synced LevelDB writes). The load
generator shares the machine (2 cores) with the five nodes.

Run: .venv/bin/python bench/node_set_change.py [--keys 100 1000] [--in-flight 64]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import aiohttp

from secretstore.client.http_client import KeyServerClient
from secretstore.crypto.hashing import keccak256
from secretstore.crypto.keys import KeyPair, servers_set_hash, sign_recoverable
from secretstore.crypto.rng import OsRng
from tests.e2e.cluster import LocalCluster, NodeProcess, wait_until

ADMIN = KeyPair.generate(OsRng())
ALICE = KeyPair.generate(OsRng())
MESSAGE = keccak256(b"bench")


def options(in_flight: int) -> dict[str, str | int | float]:
    return {
        "keep_alive_interval": 10.0,
        "session_timeout": 30.0,
        "admin_public": ADMIN.public.to_bytes().hex(),
        "disable_auto_migrate": True,
        "node_set_change_keys_in_flight": in_flight,
        "log_level": "warning",
    }


def configure(nodes: list[NodeProcess], in_flight: int) -> None:
    for node in nodes:
        node.write_config([n.address for n in nodes], options(in_flight))


def wait_ready(nodes: list[NodeProcess]) -> None:
    def ready() -> bool:
        for node in nodes:
            health = node.health()
            if not health or health["cluster_size"] != len(nodes) or not health["ready"]:
                return False
        return True

    wait_until(ready, 60, "the cluster to be ready")


async def make_keys(nodes: list[NodeProcess], count: int) -> list[bytes]:
    keys = [keccak256(b"bench node set change %d" % i) for i in range(count)]
    limit = asyncio.Semaphore(16)
    async with aiohttp.ClientSession() as session:

        async def one(index: int, key: bytes) -> None:
            async with limit:
                client = KeyServerClient(nodes[index % len(nodes)].url, session)
                await client.create_document_key(key, ALICE, 1)

        await asyncio.gather(*(one(i, k) for i, k in enumerate(keys)))
    return keys


async def timed_change(master: NodeProcess, nodes: list[NodeProcess]) -> float:
    ids = [n.node_id for n in nodes]
    signature = sign_recoverable(ADMIN.secret, servers_set_hash(ids)).hex()
    body = "[" + ",".join(f'"0x{n.hex()}"' for n in ids) + "]"
    url = f"{master.url}/admin/servers_set_change/{signature}/{signature}"
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None)) as session:
        started = time.perf_counter()
        async with session.post(url, data=body) as response:
            status, text = response.status, await response.text()
        took = time.perf_counter() - started
    if status != 200:
        raise RuntimeError(f"the change failed: {status} {text}")
    return took


async def latency(node: NodeProcess, keys: list[bytes], kind: str, count: int) -> list[float]:
    times: list[float] = []
    async with aiohttp.ClientSession() as session:
        client = KeyServerClient(node.url, session)
        for index in range(count):
            key = keys[index % len(keys)]
            started = time.perf_counter()
            if kind == "shadow":
                await client.retrieve_document_key_shadow(key, ALICE)
            else:
                await client.sign_schnorr(key, ALICE, MESSAGE)
            times.append(time.perf_counter() - started)
    return times


def ms(values: list[float]) -> str:
    ordered = sorted(values)
    p50 = statistics.median(ordered) * 1000
    p90 = ordered[int(0.9 * (len(ordered) - 1))] * 1000
    return f"p50 {p50:6.1f} ms  p90 {p90:6.1f} ms"


def run(count: int, in_flight: int, samples: int, root: Path, delegation: bool) -> None:
    cluster = LocalCluster(root / f"keys-{count}", 5, seed=count)
    old, new = cluster.nodes[:3], cluster.nodes
    try:
        configure(old, in_flight)
        for node in old:
            node.start()
        wait_ready(old)
        started = time.perf_counter()
        keys = asyncio.run(make_keys(old, count))
        made = time.perf_counter() - started
        configure(new, in_flight)
        for node in old:
            assert node.process is not None
            node.process.send_signal(1)  # SIGHUP: read the five-node set
        for node in new[3:]:
            node.start()
        wait_ready(new)
        newcomer, holder = new[3], old[0]
        if delegation:
            for kind in ("shadow", "schnorr"):
                via = asyncio.run(latency(newcomer, keys, kind, samples))
                direct = asyncio.run(latency(holder, keys, kind, samples))
                print(f"  {kind:7s} via a new node (delegated): {ms(via)}")
                print(f"  {kind:7s} via a holder             : {ms(direct)}")
        took = asyncio.run(timed_change(new[0], new))
        print(
            f"{count:6d} keys 3 -> 5: {took:6.2f} s ({count / took:6.0f} keys/s, "
            f"{in_flight} in flight; making the keys took {made:.1f} s)"
        )
        after = asyncio.run(latency(newcomer, keys, "shadow", samples))
        print(f"  shadow  via the new node after the change: {ms(after)}")
        after = asyncio.run(latency(holder, keys, "shadow", samples))
        print(f"  shadow  via an old node after the change : {ms(after)}")
    finally:
        cluster.kill_all()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keys", type=int, nargs="+", default=[100, 1000])
    parser.add_argument("--in-flight", type=int, default=64)
    parser.add_argument("--samples", type=int, default=50)
    args = parser.parse_args()
    print("node set change on real node processes (loopback, 2 cores shared with the load)")
    with tempfile.TemporaryDirectory(prefix="bench-nsc-") as root:
        for count in args.keys:
            delegation = count == min(args.keys)
            run(count, args.in_flight, args.samples, Path(root), delegation)


if __name__ == "__main__":
    main()
