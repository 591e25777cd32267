"""Flat at a million keys: a real 3-node cluster whose LevelDB key stores hold 1,000 keys, then
the same with 1,000,000, compared in one run.

For each size, every node's database is filled before its process starts (batched unsynced
writes of distinct share records through plyvel: bench/storage.py `fill`; one node's database
is filled and copied to the others, so the filler keys are the same on every node, as after
generations). Then, against the real `secretstore-node` processes (tests/e2e/cluster.py):

- start-up: the three processes started together until every one reports a complete mesh on
  /health ("ready"), and one node restarted alone (the others running) until it first answers
  /health (key store open, HTTP up) and until it is ready again (its peers redial it with
  their backoff, so this part depends on how long it was away);
- `--documents` document keys generated and stored through the HTTP API, then GET /health,
  shadow and plain retrieval, one request at a time (bench/api.py's load generator, in its
  own process, keep-alive), p50 and p99, and each retrieval's p50 as a multiple of /health;
- each node's resident memory (VmRSS, and its peak VmHWM) after the retrievals;
- in-process `LevelDbKeyStorage.get` of random filler keys (a fresh storage object, so every
  read misses the share cache and decodes a record from LevelDB).

A retrieval reads its key's share through the node's share cache (the last 1,024 shares read),
so the HTTP rows show what the node does with the hot keys; the `get` row shows a cache miss.

Run: .venv/bin/python bench/million.py [--keys 1000000] [--small 1000] [--requests 1000]
(`--dir` puts the databases on a given disk; they take about 0.3 GB per million keys per node.)
"""

from __future__ import annotations

import argparse
import asyncio
import random
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.api import NODE_OPTIONS, LoadSpec, percentile, prepare_documents, run_load
from bench.storage import fill, key_id, sample_share
from secretstore.cli.cluster import DB_NAME
from secretstore.crypto.keys import KeyPair
from secretstore.crypto.rng import OsRng
from secretstore.storage.leveldb import LevelDbKeyStorage
from tests.e2e.cluster import LocalCluster, NodeProcess, wait_until


@dataclass
class Figures:
    keys: int
    fill_s: float
    db_mb: float
    cluster_ready_s: float
    restart_ready_s: float
    restart_http_s: float
    health: tuple[float, float]
    shadow: tuple[float, float]
    plain: tuple[float, float]
    rss_mb: list[float]
    peak_mb: list[float]
    get_us: float


def memory_mb(node: NodeProcess) -> tuple[float, float]:
    """(VmRSS, VmHWM) of a running node in MB."""
    assert node.process is not None
    fields = {}
    for line in Path(f"/proc/{node.process.pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        fields[name] = value.split()
    return int(fields["VmRSS"][0]) / 1024, int(fields["VmHWM"][0]) / 1024


def p50_p99(spec: LoadSpec) -> tuple[float, float]:
    result = run_load(spec)
    if result.errors:
        raise RuntimeError(f"{result.errors} requests of {spec.urls[0]}… failed")
    return percentile(result.latencies, 0.5), percentile(result.latencies, 0.99)


def miss_get_us(path: Path, keys: int, reads: int = 5000) -> float:
    """µs per `get` of a random filler key, each read a cache miss (fresh storage object)."""
    picker = random.Random(7)  # only picks which keys to read; no secrets involved
    chosen = [key_id(picker.randrange(keys)) for _ in range(reads)]
    with LevelDbKeyStorage(path, cache_size=1) as storage:
        start = time.perf_counter()
        for key in chosen:
            if storage.get(key) is None:
                raise RuntimeError("a filler key is missing")
        return (time.perf_counter() - start) / reads * 1e6


def measure(root: Path, keys: int, documents: int, requests: int) -> Figures:
    cluster = LocalCluster(root, 3, seed=3, extra=NODE_OPTIONS)
    first = cluster[0].directory / DB_NAME
    fill_s = fill(first, keys, sample_share())
    db_mb = sum(f.stat().st_size for f in first.iterdir()) / 1e6
    get_us = miss_get_us(first, keys)
    for node in cluster.nodes[1:]:
        shutil.copytree(first, node.directory / DB_NAME)
    try:
        started = time.perf_counter()
        cluster.start()
        cluster.wait_ready(timeout=120.0)
        cluster_ready_s = time.perf_counter() - started
        last = cluster[-1]
        last.terminate()
        started = time.perf_counter()
        last.start()
        wait_until(last.health, 120.0, f"{last.name} to answer /health", last.log_tail)
        restart_http_s = time.perf_counter() - started
        cluster.wait_ready(timeout=120.0, nodes=[last])
        restart_ready_s = time.perf_counter() - started
        cluster.wait_ready(timeout=60.0)
        requester = KeyPair.generate(OsRng())
        paths = asyncio.run(prepare_documents(cluster, requester, documents))
        health = tuple(f"{node.url}/health" for node in cluster)
        shadow = tuple(f"{node.url}/shadow/{path}" for path in paths for node in cluster)
        plain = tuple(f"{node.url}/{path}" for path in paths for node in cluster)
        figures = Figures(
            keys=keys,
            fill_s=fill_s,
            db_mb=db_mb,
            cluster_ready_s=cluster_ready_s,
            restart_ready_s=restart_ready_s,
            restart_http_s=restart_http_s,
            health=p50_p99(LoadSpec("GET", health, 1, requests, 0.0, 100)),
            shadow=p50_p99(LoadSpec("GET", shadow, 1, requests, 0.0, 100)),
            plain=p50_p99(LoadSpec("GET", plain, 1, requests, 0.0, 100)),
            rss_mb=[],
            peak_mb=[],
            get_us=get_us,
        )
        for node in cluster:
            rss, peak = memory_mb(node)
            figures.rss_mb.append(rss)
            figures.peak_mb.append(peak)
        return figures
    finally:
        cluster.terminate_all()


def print_table(rows: list[Figures]) -> None:
    def ms(pair: tuple[float, float]) -> str:
        return f"{pair[0] * 1e3:.2f} / {pair[1] * 1e3:.2f}"

    lines = [
        ("keys per node", *(f"{row.keys:,}" for row in rows)),
        ("fill (s), DB size (MB)", *(f"{row.fill_s:.1f}, {row.db_mb:.0f}" for row in rows)),
        ("3 nodes start to ready (s)", *(f"{row.cluster_ready_s:.2f}" for row in rows)),
        ("1 node restart to /health (s)", *(f"{row.restart_http_s:.2f}" for row in rows)),
        ("1 node restart to ready (s)", *(f"{row.restart_ready_s:.2f}" for row in rows)),
        ("GET /health p50 / p99 (ms)", *(ms(row.health) for row in rows)),
        ("GET /shadow p50 / p99 (ms)", *(ms(row.shadow) for row in rows)),
        ("GET plain p50 / p99 (ms)", *(ms(row.plain) for row in rows)),
        ("shadow p50 / health p50", *(f"{row.shadow[0] / row.health[0]:.2f}×" for row in rows)),
        ("plain p50 / health p50", *(f"{row.plain[0] / row.health[0]:.2f}×" for row in rows)),
        ("node RSS (MB, max of 3)", *(f"{max(row.rss_mb):.0f}" for row in rows)),
        ("node peak RSS (MB, max of 3)", *(f"{max(row.peak_mb):.0f}" for row in rows)),
        ("storage get, cache miss (µs)", *(f"{row.get_us:.1f}" for row in rows)),
    ]
    widths = [max(len(line[i]) for line in lines) for i in range(len(lines[0]))]
    for line in lines:
        cells = [line[0].ljust(widths[0])]
        cells += [cell.rjust(width) for cell, width in zip(line[1:], widths[1:], strict=True)]
        print("  ".join(cells))
    if len(rows) == 2:
        small, big = rows
        for name in ("shadow", "plain"):
            ratio = getattr(big, name)[0] / getattr(small, name)[0]
            print(f"{name} p50 at {big.keys:,} keys: {ratio:.2f}× the p50 at {small.keys:,}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--keys", type=int, default=1_000_000, help="keys per node, large run")
    parser.add_argument("--small", type=int, default=1_000, help="keys per node, small run")
    parser.add_argument("--documents", type=int, default=16, help="document keys retrieved")
    parser.add_argument("--requests", type=int, default=1000, help="requests per scenario")
    parser.add_argument("--dir", type=Path, default=None, help="where to create the databases")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-million-", dir=args.dir) as tmp:
        for keys in (args.small, args.keys):
            rows.append(measure(Path(tmp) / f"keys{keys}", keys, args.documents, args.requests))
            shutil.rmtree(Path(tmp) / f"keys{keys}")
    print_table(rows)


if __name__ == "__main__":
    main()
