"""Mixed store/retrieve operations against a cluster while its nodes are killed, stopped,
partitioned and restarted; what was acknowledged, and whether every acknowledged key
survived."""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from dataclasses import dataclass, field

import aiohttp

from secretstore.crypto.rng import SeededRng
from tests.faults.cluster import NetCluster, NetNode
from tests.faults.ops import StoredKey, create, key_id_of, retrieve


@dataclass
class ChaosReport:
    operations: int = 0
    stores_acknowledged: int = 0
    retrievals_ok: int = 0
    #: a retrieval that answered 200 with another key than the one stored (must stay 0)
    wrong_answers: int = 0
    failures: Counter[str] = field(default_factory=Counter)
    faults: Counter[str] = field(default_factory=Counter)
    slowest: float = 0.0
    acknowledged: list[StoredKey] = field(default_factory=list)
    lost: list[bytes] = field(default_factory=list)
    seconds: float = 0.0


async def _operator(
    session: aiohttp.ClientSession,
    cluster: NetCluster,
    report: ChaosReport,
    budget: list[int],
    rng: random.Random,
    seed: int,
    pace: float,
) -> None:
    crypto_rng = SeededRng(f"chaos-{seed}".encode())
    while budget[0] > 0:
        budget[0] -= 1
        await asyncio.sleep(pace * rng.random() * 2)
        up = [node for node in cluster.nodes if node.running and not node.stopped]
        node = rng.choice(up or cluster.nodes)
        report.operations += 1
        if not report.acknowledged or rng.random() < 0.5:
            key_id = key_id_of(f"chaos-{seed}-{report.operations}-")
            answer, stored = await create(session, node, key_id, crypto_rng)
            if stored is not None:
                report.stores_acknowledged += 1
                report.acknowledged.append(stored)
        else:
            wanted = rng.choice(report.acknowledged)
            answer, secret = await retrieve(session, node, wanted.key_id)
            if answer.ok:
                report.retrievals_ok += 1
                if secret != wanted.secret:
                    report.wrong_answers += 1
        report.slowest = max(report.slowest, answer.seconds)
        if not answer.ok:
            text = answer.body if answer.status else "no answer"
            report.failures[f"{answer.status} {str(text)[:60]}"] += 1


async def _chaos(
    cluster: NetCluster,
    report: ChaosReport,
    rng: random.Random,
    every: float,
    kinds: tuple[str, ...],
    stop: asyncio.Event,
) -> None:
    turn = 0
    while not stop.is_set():
        try:
            await asyncio.wait_for(stop.wait(), every)
            return
        except TimeoutError:
            pass
        victim: NetNode = rng.choice(cluster.nodes)
        kind = kinds[turn % len(kinds)]  # in turn: every kind is played, however short the run
        turn += 1
        report.faults[kind] += 1
        if kind == "kill":
            victim.kill()
            await asyncio.sleep(rng.uniform(0.2, 1.5))
            victim.start()
        elif kind == "kill-all":  # every node at once: a power cut
            cluster.kill_all()
            await asyncio.sleep(rng.uniform(0.2, 1.0))
            cluster.start()
        elif kind == "stop":
            victim.pause()
            await asyncio.sleep(rng.uniform(0.5, 3.0))
            victim.resume()
        elif kind == "partition":
            cluster.lab.isolate(cluster.index_of(victim))
            await asyncio.sleep(rng.uniform(0.5, 3.0))
            cluster.lab.heal()
        await asyncio.to_thread(cluster.wait_ready, 60.0)


async def run_chaos(
    cluster: NetCluster,
    operations: int,
    *,
    workers: int = 8,
    fault_every: float = 3.0,
    kinds: tuple[str, ...] = ("kill",),
    seed: int = 1,
    pace: float = 0.05,
) -> ChaosReport:
    """`operations` mixed operations by `workers` clients while faults of `kinds` ("kill",
    "kill-all", "stop", "partition", played in turn) hit one node (every node for
    "kill-all") every `fault_every` seconds (each worker waits `pace` s on average between its
    operations, so that healthy stretches and faults alternate); then every acknowledged
    key is retrieved from every node (once the cluster is whole again) and the lost ones
    are listed."""
    report = ChaosReport()
    rng = random.Random(seed)
    budget = [operations]
    began = time.monotonic()
    stop = asyncio.Event()
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=64)) as session:
        chaos = asyncio.create_task(_chaos(cluster, report, rng, fault_every, kinds, stop))
        await asyncio.gather(
            *(
                _operator(session, cluster, report, budget, random.Random(seed * 100 + i), i, pace)
                for i in range(workers)
            )
        )
        stop.set()
        await chaos
        report.seconds = time.monotonic() - began
        await asyncio.to_thread(cluster.wait_ready, 60.0)
        for stored in report.acknowledged:
            for node in cluster:
                answer, secret = await retrieve(session, node, stored.key_id)
                if not answer.ok or secret != stored.secret:
                    report.lost.append(stored.key_id)
                    break
    return report
