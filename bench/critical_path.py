"""Where the time of one retrieval goes: its critical path across the master and the member.

A real 3-node cluster (t=1) as in bench/api.py, one request at a time, round-robin over the
nodes and the keys. Every node process runs with trace points: the functions below are
wrapped to note when they start and end (the monotonic clock, which every process on one
machine shares). The script then follows each retrieval from the request's bytes arriving at
the master, through the job it sends, the member's answer, to the response written, and
prints the median of every step (µs), for shadow and plain retrievals of keys with Feldman
commitments (every answer proven: what a key generated here has) and for shadow retrievals of
keys without them (schema-1 records, as imported from Parity: no proofs, the same receipts
and audit entries), which shows what the proofs cost on the path. The master's own part is
computed while the member works (the last row, off the path).

The trace points cost about 1 µs each (a dozen per request on each side); the total is a
little above bench/api.py's p50, which also counts the load generator's side.

Run: .venv/bin/python bench/critical_path.py [--requests 1000] [--keys 8]
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import functools
import itertools
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from secretstore.types import ServerKeyId

TRACE_DIR_VARIABLE = "SECRETSTORE_BENCH_TRACE_DIR"

#: (module, class or None, function, label): what a node notes the start and end of.
TRACE_POINTS: tuple[tuple[str, str | None, str, str], ...] = (
    ("aiohttp.web_protocol", "RequestHandler", "data_received", "http.in"),
    ("secretstore.sessions.core", "NodeCore", "start", "start"),
    ("secretstore.mesh.connection", "MeshConnection", "send", "send"),
    ("secretstore.cluster.driver", "ClusterDriver", "on_message", "receive"),
    ("secretstore.sessions.decryption", None, "compute_job_response", "answer"),
    ("secretstore.sessions.decryption", "DecryptionMaster", "_own_part", "own"),
    ("secretstore.sessions.decryption", "DecryptionMaster", "_answer_problem", "check"),
)
#: coroutine functions noted the same way
ASYNC_TRACE_POINTS: tuple[tuple[str, str | None, str, str], ...] = (
    ("secretstore.cluster.driver", "ClusterDriver", "release", "release"),
    ("aiohttp.web_response", "Response", "write_eof", "http.out"),
)


# --- inside a node process --------------------------------------------------------------------


def _install(events: list[tuple[int, str]]) -> None:
    import importlib

    clock = time.monotonic_ns

    def owner(module: str, cls: str | None) -> Any:
        found = importlib.import_module(module)
        return getattr(found, cls) if cls else found

    for module, cls, name, label in TRACE_POINTS:
        target = owner(module, cls)
        original = getattr(target, name)

        def traced(
            *args: Any, _f: Callable[..., Any] = original, _l: str = label, **kwargs: Any
        ) -> Any:
            events.append((clock(), _l + ">"))
            try:
                return _f(*args, **kwargs)
            finally:
                events.append((clock(), _l + "<"))

        setattr(target, name, functools.wraps(original)(traced))
    for module, cls, name, label in ASYNC_TRACE_POINTS:
        target = owner(module, cls)
        original = getattr(target, name)

        async def traced_async(
            *args: Any, _f: Callable[..., Any] = original, _l: str = label, **kwargs: Any
        ) -> Any:
            events.append((clock(), _l + ">"))
            try:
                return await _f(*args, **kwargs)
            finally:
                events.append((clock(), _l + "<"))

        setattr(target, name, functools.wraps(original)(traced_async))


def run_node(argv: list[str]) -> int:
    """A `secretstore-node` with the trace points; its events go to the trace directory."""
    events: list[tuple[int, str]] = []
    _install(events)
    from secretstore.cli.node import main

    try:
        code: int = main(argv)
    finally:
        directory = Path(os.environ[TRACE_DIR_VARIABLE])
        lines = "".join(f"{moment} {event}\n" for moment, event in events)
        (directory / f"{os.getpid()}.txt").write_text(lines)
    return code


# --- the analysis -----------------------------------------------------------------------------

STEPS: tuple[str, ...] = (
    "master: HTTP request in → session start (aiohttp, middlewares, parsing)",
    "master: session start → job sent to the member",
    "mesh: job → member",
    "member: decode, admit, access check",
    "member: proven answer, sealed decrypt shadow",
    "member: receipt, audit entry, encode, answer sent",
    "mesh: answer → master",
    "master: decode, check of the receipt and proof",
    "master: combine, result, audit entry, hand over",
    "master: response body and HTTP write",
    "total: request in → response written",
    "(off the path) master's own part",
)


class Trace:
    """One node's events, in time order."""

    def __init__(self, events: list[tuple[int, str]]) -> None:
        self.events = events

    def next(self, after: int, event: str) -> int | None:
        for moment, name in self.events[bisect.bisect_left(self.events, (after, "")) :]:
            if name == event:
                return moment
        return None

    def previous(self, before: int, event: str) -> int | None:
        index = bisect.bisect_left(self.events, (before, "")) - 1
        while index >= 0:
            if self.events[index][1] == event:
                return self.events[index][0]
            index -= 1
        return None


def read_traces(directory: Path) -> list[Trace]:
    traces = []
    for path in sorted(directory.glob("*.txt")):
        events = []
        for line in path.read_text().splitlines():
            moment, event = line.split()
            events.append((int(moment), event))
        traces.append(Trace(sorted(events)))
    return traces


def retrievals(traces: list[Trace], begin: int, end: int) -> Iterator[list[float]]:
    """The steps (µs, in STEPS order) of every retrieval whose master started it in
    [begin, end)."""
    for master in traces:
        for moment, event in master.events:
            if event != "start>" or not begin <= moment < end:
                continue
            steps = _steps(master, [t for t in traces if t is not master], moment)
            if steps is not None:
                yield steps


def _steps(master: Trace, others: list[Trace], start: int) -> list[float] | None:
    request_in = master.previous(start, "http.in>")
    job_sent = master.next(start, "send<")
    if request_in is None or job_sent is None:
        return None
    arrivals = [(t.next(job_sent, "receive>"), t) for t in others]
    arrived = [(moment, t) for moment, t in arrivals if moment is not None]
    if not arrived:
        return None
    job_in, member = min(arrived, key=lambda item: item[0])
    answer = member.next(job_in, "answer>")
    answered = member.next(job_in, "answer<")
    answer_sent = member.next(job_in, "send<")
    if answer is None or answered is None or answer_sent is None:
        return None
    answer_in = master.next(answer_sent, "receive>")
    checked = master.next(answer_sent, "check<")
    released = master.next(answer_sent, "release<")
    own, own_done = master.next(start, "own>"), master.next(start, "own<")
    if None in (answer_in, checked, released, own, own_done):
        return None
    assert answer_in and checked and released and own and own_done
    response_out = master.next(released, "http.out<")
    if response_out is None:
        return None
    marks = [request_in, start, job_sent, job_in, answer, answered, answer_sent]
    marks += [answer_in, checked, released, response_out]
    if marks != sorted(marks):
        return None  # another request's events in between: not this retrieval's path
    steps = [(b - a) / 1000 for a, b in itertools.pairwise(marks)]
    return [*steps, (response_out - request_in) / 1000, (own_done - own) / 1000]


# --- the run ----------------------------------------------------------------------------------


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "node":
        sys.exit(run_node(sys.argv[2:]))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=1000, help="retrievals of each kind")
    parser.add_argument("--keys", type=int, default=8, help="document keys of each kind")
    args = parser.parse_args()

    import tests.e2e.cluster as e2e_cluster
    from bench import api  # the documents, the node options and the load generator
    from secretstore.cli.cluster import DB_NAME
    from secretstore.crypto.keys import KeyPair, sign_recoverable
    from secretstore.crypto.rng import OsRng
    from secretstore.storage.leveldb import LevelDbKeyStorage
    from tests.sim.dealer import deal_key

    e2e_cluster.NODE_COMMAND = (sys.executable, str(Path(__file__).resolve()), "node")
    requester = KeyPair.generate(OsRng())
    with tempfile.TemporaryDirectory(prefix="bench-path-") as tmp:
        trace_dir = Path(tmp) / "trace"
        trace_dir.mkdir()
        os.environ[TRACE_DIR_VARIABLE] = str(trace_dir)
        cluster = e2e_cluster.LocalCluster(
            Path(tmp) / "cluster", 3, seed=3, extra={**api.NODE_OPTIONS, "audit_sync": False}
        )
        # keys without commitments, dealt into every node's store before it starts
        unproven: list[str] = []
        stores = [LevelDbKeyStorage(node.directory / DB_NAME) for node in cluster]
        for _ in range(args.keys):
            kid = ServerKeyId(OsRng().random_bytes(32))
            dealt = deal_key(OsRng(), [node.node_id for node in cluster], 1, with_commitments=False)
            for node, store in zip(cluster, stores, strict=True):
                store.insert(kid, dealt.shares[node.node_id])
            unproven.append(f"{kid.hex()}/{sign_recoverable(requester.secret, kid).hex()}")
        for store in stores:
            store.close()
        cluster.start()
        phases: list[tuple[str, int, int]] = []
        try:
            cluster.wait_ready(timeout=60.0)
            proven = asyncio.run(api.prepare_documents(cluster, requester, args.keys))
            for kind, prefix, paths in (
                ("shadow", "/shadow/", proven),
                ("plain", "/", proven),
                ("shadow, no proofs", "/shadow/", unproven),
            ):
                urls = tuple(f"{node.url}{prefix}{path}" for path in paths for node in cluster)
                begin = time.monotonic_ns()
                api.run_load(api.LoadSpec("GET", urls, 1, args.requests, 0.0, 100))
                phases.append((kind, begin, time.monotonic_ns()))
        finally:
            cluster.terminate_all()
        traces = read_traces(trace_dir)
    columns = {kind: list(retrievals(traces, begin, end)) for kind, begin, end in phases}
    width = max(len(step) for step in STEPS)
    counts = "  ".join(f"{kind} ({len(rows)})".rjust(22) for kind, rows in columns.items())
    print(f"{'median µs per step'.ljust(width)}  {counts}")
    for index, step in enumerate(STEPS):
        cells = "  ".join(
            f"{statistics.median(row[index] for row in rows):22.1f}" if rows else " " * 22
            for rows in columns.values()
        )
        print(f"{step.ljust(width)}  {cells}")
    print("A real 3-node cluster, t=1, one request at a time (bench/critical_path.py docstring)")


if __name__ == "__main__":
    main()
