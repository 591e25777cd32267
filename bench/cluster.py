"""Figures of a real local cluster of `secretstore-node` processes on loopback.

Formation (5 and 16 nodes): from spawning the processes until every node's GET /health says
"ready", split (from the nodes' logs) into process start-up (spawn to "listening") and the mesh
part (the last node listening to the last "mesh complete"). HTTP round trips on a 5-node
cluster: GET /health (HTTP only), POST /shadow/… (server key generation: a DKG over all
nodes, synced writes), GET /server/… (retrieval: a session with the other nodes).

Run: .venv/bin/python bench/cluster.py [--rounds 3] [--requests 200]
"""

from __future__ import annotations

import argparse
import asyncio
import re
import socket
import statistics
import sys
import tempfile
import time
from calendar import timegm
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from secretstore.cli.cluster import render_config
from secretstore.config.model import NodeAddress
from secretstore.crypto.keys import KeyPair, sign_recoverable
from secretstore.crypto.rng import OsRng

HOST = "127.0.0.1"
_STAMP = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)\.(\d{3})Z ")


def free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    for sock in sockets:
        sock.bind((HOST, 0))
    ports = [sock.getsockname()[1] for sock in sockets]
    for sock in sockets:
        sock.close()
    return ports


def log_time(log: Path, marker: str) -> float | None:
    """The wall-clock time (epoch seconds) of the first log line containing `marker`."""
    for line in log.read_text(errors="replace").splitlines():
        if marker in line:
            match = _STAMP.match(line)
            if match:
                seconds = timegm(time.strptime(match.group(1), "%Y-%m-%dT%H:%M:%S"))
                return seconds + int(match.group(2)) / 1000
    return None


@dataclass
class Node:
    directory: Path
    http_port: int
    process: asyncio.subprocess.Process | None = None

    @property
    def log(self) -> Path:
        return self.directory / "node.log"

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.http_port}"


def write_cluster(root: Path, count: int) -> list[Node]:
    keys = [KeyPair.generate(OsRng()) for _ in range(count)]
    ports = free_ports(2 * count)
    addresses = [NodeAddress(k.node_id, HOST, ports[i]) for i, k in enumerate(keys)]
    nodes = []
    for i, key in enumerate(keys):
        node = Node(root / f"node{i + 1}", ports[count + i])
        node.directory.mkdir(parents=True)
        text = render_config(
            key, index=i + 1, nodes=addresses, mesh_port=ports[i], http_port=node.http_port
        )
        (node.directory / "node.toml").write_text(text)
        nodes.append(node)
    return nodes


async def start(nodes: list[Node]) -> None:
    for node in nodes:
        with node.log.open("ab") as log:
            node.process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "secretstore.cli.node",
                "--config",
                str(node.directory / "node.toml"),
                stdout=log,
                stderr=log,
            )


async def stop(nodes: list[Node]) -> None:
    for node in nodes:
        if node.process is not None and node.process.returncode is None:
            node.process.terminate()
    for node in nodes:
        if node.process is not None:
            await node.process.wait()


async def ready(session: aiohttp.ClientSession, node: Node) -> bool:
    try:
        async with session.get(f"{node.url}/health") as response:
            return bool((await response.json())["ready"])
    except (aiohttp.ClientError, ValueError, KeyError):
        return False


async def wait_ready(session: aiohttp.ClientSession, nodes: list[Node], limit: float) -> None:
    deadline = time.monotonic() + limit
    pending = list(nodes)
    while pending:
        answers = await asyncio.gather(*(ready(session, n) for n in pending))
        pending = [n for n, ok in zip(pending, answers, strict=True) if not ok]
        if pending and time.monotonic() > deadline:
            raise RuntimeError(f"{len(pending)} nodes not ready after {limit} s")
        await asyncio.sleep(0.01)


@dataclass
class Formation:
    total: float
    startup_mean: float
    startup_max: float
    mesh: float


async def formation(count: int) -> Formation:
    with tempfile.TemporaryDirectory() as tmp:
        nodes = write_cluster(Path(tmp), count)
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as session:
            spawned = time.time()
            started = time.perf_counter()
            await start(nodes)
            try:
                await wait_ready(session, nodes, 120)
                total = time.perf_counter() - started
            finally:
                await stop(nodes)
        listening = [log_time(n.log, "listening on") for n in nodes]
        complete = [log_time(n.log, "mesh complete") for n in nodes]
    if None in listening or None in complete:
        raise RuntimeError("a node's log lacks its listening or mesh-complete line")
    startups = [t - spawned for t in listening if t is not None]
    mesh = max(t for t in complete if t is not None) - max(t for t in listening if t is not None)
    return Formation(total, statistics.mean(startups), max(startups), max(mesh, 0.0))


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def describe(name: str, times: list[float]) -> str:
    return (
        f"  {name:<34} p50 {percentile(times, 0.5) * 1e3:7.2f} ms"
        f"  p90 {percentile(times, 0.9) * 1e3:7.2f} ms  ({len(times)} requests)"
    )


async def timed(session: aiohttp.ClientSession, method: str, url: str) -> float:
    started = time.perf_counter()
    async with session.request(method, url) as response:
        await response.read()
        if response.status != 200:
            raise RuntimeError(f"{method} {url}: {response.status}")
    return time.perf_counter() - started


async def round_trips(count: int, requests: int, keys: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        nodes = write_cluster(Path(tmp), count)
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
            await start(nodes)
            try:
                await wait_ready(session, nodes, 120)
                health = [await timed(session, "GET", f"{nodes[0].url}/health")]
                health += [
                    await timed(session, "GET", f"{nodes[0].url}/health") for _ in range(requests)
                ]
                requester = KeyPair.generate(OsRng())
                paths = []
                for _ in range(keys):
                    key_id = OsRng().random_bytes(32)
                    sig = sign_recoverable(requester.secret, key_id).hex()
                    paths.append(f"{key_id.hex()}/{sig}")
                threshold = (count - 1) // 2
                generate = [
                    await timed(session, "POST", f"{nodes[0].url}/shadow/{p}/{threshold}")
                    for p in paths
                ]
                retrieve = [
                    await timed(session, "GET", f"{nodes[1].url}/server/{p}") for p in paths
                ]
            finally:
                await stop(nodes)
    print(f"HTTP round trips, {count}-node cluster (keep-alive connection):")
    print(describe("GET /health", health[1:]))
    print(describe(f"POST /shadow (generate, t={threshold})", generate))
    print(describe("GET /server (retrieve)", retrieve))


async def main(rounds: int, requests: int, keys: int) -> None:
    print(f"cluster formation, real processes, median of {rounds} runs:")
    for count in (5, 16):
        runs = [await formation(count) for _ in range(rounds)]
        total = statistics.median(r.total for r in runs)
        startup_mean = statistics.median(r.startup_mean for r in runs)
        startup_max = statistics.median(r.startup_max for r in runs)
        mesh = statistics.median(r.mesh for r in runs)
        print(
            f"  {count:2d} nodes: all /health ready {total:5.2f} s"
            f"  | process start-up mean {startup_mean:5.2f} s, max {startup_max:5.2f} s"
            f"  | mesh (last listening -> last complete) {mesh * 1e3:6.0f} ms"
        )
    await round_trips(5, requests, keys)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=3, help="formation runs per size")
    parser.add_argument("--requests", type=int, default=200, help="GET /health requests")
    parser.add_argument("--keys", type=int, default=30, help="keys generated and retrieved")
    args = parser.parse_args()
    asyncio.run(main(args.rounds, args.requests, args.keys))
