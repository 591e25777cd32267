"""Mesh figures on loopback: formation time (5 and 16 nodes), frame round trip, throughput.

Run: .venv/bin/python bench/mesh.py [--rounds 5000]
Every scenario runs on the default asyncio loop and on uvloop (when installed), all in one process.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections.abc import Callable, Coroutine
from typing import Any

from secretstore.crypto.curve import Point
from secretstore.crypto.keys import KeyPair
from secretstore.crypto.rng import OsRng, random_scalar
from secretstore.mesh.port import NullHandler
from secretstore.mesh.transport import MeshTransport
from secretstore.types import NodeId


def make_key() -> KeyPair:
    secret = random_scalar(OsRng())
    return KeyPair(secret, Point.base_mul(secret))


async def start_nodes(count: int) -> list[MeshTransport]:
    meshes = [MeshTransport(make_key(), ("127.0.0.1", 0), {}) for _ in range(count)]
    for mesh in meshes:
        await mesh.start()
    return meshes


def full_mesh(meshes: list[MeshTransport]) -> bool:
    everyone = {m.self_id for m in meshes}
    return all(m.connected() == everyone - {m.self_id} for m in meshes)


async def formation(count: int) -> float:
    """Seconds from handing every node the node set until every pair is connected."""
    meshes = await start_nodes(count)
    addresses = {m.self_id: m.listen_address for m in meshes}
    started = time.perf_counter()
    for mesh in meshes:
        mesh.update_nodes(addresses)
    while not full_mesh(meshes):
        await asyncio.sleep(0.001)
    elapsed = time.perf_counter() - started
    for mesh in meshes:
        await mesh.stop()
    return elapsed


class Echo(NullHandler):
    def __init__(self, mesh: MeshTransport) -> None:
        self.mesh = mesh

    def on_message(self, node: NodeId, payload: bytes) -> None:
        self.mesh.send(node, payload)


class Collector(NullHandler):
    def __init__(self) -> None:
        self.waiter: asyncio.Future[bytes] | None = None
        self.count = 0
        self.target = 0
        self.done: asyncio.Future[None] | None = None

    def on_message(self, node: NodeId, payload: bytes) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(payload)
        self.count += 1
        if self.done is not None and self.count >= self.target and not self.done.done():
            self.done.set_result(None)


async def connected_pair() -> tuple[MeshTransport, MeshTransport, Collector]:
    a, b = await start_nodes(2)
    collector = Collector()
    a.set_handler(collector)
    b.set_handler(Echo(b))
    addresses = {m.self_id: m.listen_address for m in (a, b)}
    a.update_nodes(addresses)
    b.update_nodes(addresses)
    while not full_mesh([a, b]):
        await asyncio.sleep(0.001)
    return a, b, collector


async def round_trips(rounds: int, size: int) -> list[float]:
    """Round-trip times (seconds) of one data frame to an echoing peer, one at a time."""
    a, b, collector = await connected_pair()
    loop = asyncio.get_running_loop()
    payload = b"\x42" * size
    times: list[float] = []
    for _ in range(rounds + 100):
        collector.waiter = loop.create_future()
        started = time.perf_counter()
        a.send(b.self_id, payload)
        await collector.waiter
        times.append(time.perf_counter() - started)
    await a.stop()
    await b.stop()
    return times[100:]  # the first ones warm up


async def throughput(messages: int, size: int, window: int = 256) -> float:
    """Messages per second from a to b and echoed back, with up to `window` in flight."""
    a, b, collector = await connected_pair()
    loop = asyncio.get_running_loop()
    payload = b"\x17" * size
    started = time.perf_counter()
    sent = 0
    while collector.count < messages:
        while sent < messages and sent - collector.count < window:
            a.send(b.self_id, payload)
            sent += 1
        collector.target = min(messages, collector.count + 1)
        collector.done = loop.create_future()
        await collector.done
    elapsed = time.perf_counter() - started
    await a.stop()
    await b.stop()
    return messages / elapsed


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


async def scenario(rounds: int) -> None:
    for count in (5, 16):
        runs = [await formation(count) for _ in range(3)]
        print(f"  formation of {count:2d} nodes: median {statistics.median(runs) * 1e3:7.1f} ms")
    for size in (64, 4096):
        times = await round_trips(rounds, size)
        print(
            f"  round trip {size:5d} B: p50 {percentile(times, 0.5) * 1e6:6.0f} us"
            f"  p99 {percentile(times, 0.99) * 1e6:6.0f} us  ({rounds} rounds)"
        )
    for size in (64, 65536):
        rate = await throughput(20000 if size < 1024 else 2000, size, 256 if size < 1024 else 32)
        print(f"  echo throughput {size:5d} B: {rate:9.0f} msg/s  ({rate * size / 1e6:6.1f} MB/s)")


def run(main: Callable[[], Coroutine[Any, Any, None]], loop_name: str) -> None:
    print(f"event loop: {loop_name}")
    if loop_name == "uvloop":
        import uvloop

        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            runner.run(main())
    else:
        asyncio.run(main())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=5000)
    args = parser.parse_args()
    loops = ["asyncio"]
    try:
        import uvloop  # noqa: F401

        loops.append("uvloop")
    except ImportError:
        print("uvloop is not installed; asyncio only")
    for name in loops:
        run(lambda: scenario(args.rounds), name)


if __name__ == "__main__":
    main()
