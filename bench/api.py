"""HTTP API figures of a real local cluster of `secretstore-node` processes on loopback.

1. Shadow retrieval (GET /shadow/{id}/{sig}) and plain retrieval (GET /{id}/{sig}) on 3
   nodes, t=1: latency one request at a time, then throughput with `--clients` concurrent
   clients. Requests go round-robin over the nodes and `--keys` document keys, so every node
   is the master of a third of them.
2. Server key generation (POST /shadow/{id}/{sig}/{t}), one at a time: n=5 t=2, n=16 t=5,
   n=32 t=10.
3. Signing (GET /schnorr/… and GET /ecdsa/{id}/{sig}/{hash}) on 3 nodes, t=1, one request at a
   time, round-robin over the nodes, `--sign-keys` server keys and a few message hashes (ECDSA
   with t=1 takes all three nodes: 2t+1 signers and four nonce generations per signature).
GET /health (HTTP alone, no session) is the yardstick.

How it measures: the nodes are started with tests/e2e/cluster.py (production options, logs at
INFO to a file, LevelDB with synced writes). The load generator is aiohttp on uvloop in a
separate process, with keep-alive connections, so it shares no event loop with a node; on a
2-core machine it still competes with the nodes for the CPU. So the table also gives the CPU
time (user + system, from /proc/<pid>/stat, 10 ms ticks) that all nodes together and the load
generator spent per request: 2 cores / (node µs + gen µs) bounds the throughput, and
2 cores / node µs is what the nodes could do with the machine to themselves.

Profiling: --profile DIR runs every node under cProfile (a .prof per node when it exits;
--cpu-timer times it in process CPU time instead of wall time, which a CPU-starved node would
charge to whatever it was doing); --py-spy EXE samples every node with py-spy while each
scenario runs (collapsed stacks per node and scenario into DIR); --gc-stats DIR times every
node's garbage collector (CPU time in collections, by generation), printed after the table.

Run: .venv/bin/python bench/api.py [--requests 2000] [--seconds 5] [--clients 32] [--signs 300]
(--no-retrieval --gen5 0 --gen16 0 runs the signing scenarios alone)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import resource
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import aiohttp

from secretstore.client.helpers import key_from_shadow
from secretstore.crypto.curve import Point, Scalar
from secretstore.crypto.document import encrypt_secret
from secretstore.crypto.ecies import ecies_decrypt
from secretstore.crypto.keys import KeyPair, recover_public, sign_recoverable
from secretstore.crypto.rng import OsRng
from secretstore.crypto.schnorr import SchnorrSignature, verify_schnorr_signature
from secretstore.encoding import parse_hex
from tests.e2e import cluster as e2e_cluster
from tests.e2e.cluster import LocalCluster

#: The production defaults (the e2e helpers default to quicker keep-alives).
NODE_OPTIONS = {"keep_alive_interval": 10.0, "session_timeout": 30.0}
_TICKS = os.sysconf("SC_CLK_TCK")
#: A node process under cProfile; the profile is written when the node exits.
PROFILED_NODE = """
import cProfile, os, sys, time
from secretstore.cli.node import main
profiler = cProfile.Profile(*([time.process_time] if {cpu_timer!r} else []))
code = profiler.runcall(main, sys.argv[1:])
profiler.dump_stats(os.path.join({directory!r}, f"node-{{os.getpid()}}.prof"))
sys.exit(code)
"""
#: A node process that times its garbage collector (CPU time in collections, by generation);
#: one line per node is written to the directory when it exits.
GC_TIMED_NODE = """
import gc, os, sys, time
from secretstore.cli.node import main
spent, counts, started = [0.0, 0.0, 0.0], [0, 0, 0], time.process_time()
def timed(phase, info):
    if phase == "start":
        spent[1] = time.process_time()
    else:
        pause = time.process_time() - spent[1]
        spent[0] += pause
        spent[2] = max(spent[2], pause)
        counts[info["generation"]] += 1
gc.callbacks.append(timed)
code = main(sys.argv[1:])
with open(os.path.join({directory!r}, f"gc-{{os.getpid()}}.txt"), "w") as out:
    figures = (spent[0], spent[2], time.process_time() - started, *counts)
    out.write(" ".join(str(figure) for figure in figures) + "\\n")
sys.exit(code)
"""
HEADER: tuple[str, ...] = ("scenario", "requests", "p50 ms", "p90 ms", "p99 ms", "req/s")
HEADER += ("node µs", "sys µs", "gen µs", "errors")


# --- the load generator (runs in its own process) -----------------------------------------


@dataclass(frozen=True, slots=True)
class LoadSpec:
    method: str
    urls: tuple[str, ...]  # taken in turn
    clients: int
    requests: int  # > 0: this many requests in all; 0: as many as fit in `seconds`
    seconds: float
    warmup: int  # requests made (one at a time) before measuring


@dataclass(frozen=True, slots=True)
class LoadResult:
    latencies: tuple[float, ...]
    wall: float
    errors: int
    cpu: float  # CPU seconds the load generator used while measuring


def _own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def _load(spec: LoadSpec) -> LoadResult:
    connector = aiohttp.TCPConnector(limit=spec.clients * len(spec.urls), limit_per_host=0)
    latencies: list[float] = []
    errors = 0
    issued = 0
    async with aiohttp.ClientSession(
        connector=connector, timeout=aiohttp.ClientTimeout(total=60)
    ) as session:

        async def one(url: str) -> bool:
            async with session.request(spec.method, url) as response:
                await response.read()
                return response.status == 200

        for i in range(spec.warmup):
            await one(spec.urls[i % len(spec.urls)])
        cpu_before = _own_cpu()
        started = time.perf_counter()
        deadline = started + spec.seconds

        def more() -> bool:
            if spec.requests > 0:
                return issued < spec.requests
            return time.perf_counter() < deadline

        async def client(turn: int) -> None:
            nonlocal errors, issued
            while more():
                issued += 1
                url = spec.urls[turn % len(spec.urls)]
                turn += 1
                begun = time.perf_counter()
                ok = await one(url)
                latencies.append(time.perf_counter() - begun)
                errors += not ok

        await asyncio.gather(*(client(i) for i in range(spec.clients)))
        wall = time.perf_counter() - started
        cpu = _own_cpu() - cpu_before
    return LoadResult(tuple(latencies), wall, errors, cpu)


def _worker(spec: LoadSpec, pipe: Connection) -> None:
    import uvloop

    pipe.send(uvloop.run(_load(spec)))
    pipe.close()


def run_load(spec: LoadSpec) -> LoadResult:
    """Run `spec` in a fresh process and return what it measured."""
    context = multiprocessing.get_context("spawn")
    receiver, sender = context.Pipe(duplex=False)
    process = context.Process(target=_worker, args=(spec, sender))
    process.start()
    sender.close()
    result: LoadResult = receiver.recv()
    process.join()
    return result


# --- the cluster ----------------------------------------------------------------------------


def cluster_cpu(cluster: LocalCluster) -> tuple[float, float]:
    """CPU seconds (user, system) the running node processes have used so far."""
    user = system = 0
    for node in cluster:
        if node.process is not None:
            stat = Path(f"/proc/{node.process.pid}/stat").read_text()
            fields = stat.rsplit(")", 1)[1].split()
            user += int(fields[11])
            system += int(fields[12])
    return user / _TICKS, system / _TICKS


def start_cluster(root: Path, count: int, **options: object) -> LocalCluster:
    cluster = LocalCluster(root, count, seed=count, extra={**NODE_OPTIONS, **options})
    cluster.start()
    cluster.wait_ready(timeout=60.0 + 5.0 * count)
    return cluster


def key_path(requester: KeyPair) -> str:
    """`{key id}/{signature}` of a fresh key id, signed by `requester`."""
    key_id = OsRng().random_bytes(32)
    return f"{key_id.hex()}/{sign_recoverable(requester.secret, key_id).hex()}"


async def _post(session: aiohttp.ClientSession, url: str) -> object:
    async with session.post(url) as response:
        body = await response.read()
        if response.status != 200:
            raise RuntimeError(f"POST {url}: {response.status} {body[:200]!r}")
        return json.loads(body) if body else None


async def prepare_documents(cluster: LocalCluster, requester: KeyPair, count: int) -> list[str]:
    """`count` server keys (t=1) with a stored document key each; their `{id}/{sig}` paths.
    One shadow retrieval is checked end to end: the shadows open to the stored key."""
    paths: list[str] = []
    stored: list[Point] = []
    async with aiohttp.ClientSession() as session:
        for i in range(count):
            url = cluster[i % len(cluster.nodes)].url
            path = key_path(requester)
            public = await _post(session, f"{url}/shadow/{path}/1")
            assert isinstance(public, str)
            document_key = KeyPair.generate(OsRng()).public
            server_key = Point.from_bytes(parse_hex(public, 64))
            encrypted = encrypt_secret(document_key, server_key, OsRng())
            common = encrypted.common_point.to_bytes().hex()
            point = encrypted.encrypted_point.to_bytes().hex()
            await _post(session, f"{url}/shadow/{path}/{common}/{point}")
            paths.append(path)
            stored.append(document_key)
        async with session.get(f"{cluster[-1].url}/shadow/{paths[0]}") as response:
            body = json.loads(await response.read())
    found = key_from_shadow(
        requester,
        Point.from_bytes(parse_hex(body["decrypted_secret"], 64)),
        Point.from_bytes(parse_hex(body["common_point"], 64)),
        [parse_hex(item) for item in body["decrypt_shadows"]],
    )
    if found != stored[0]:
        raise RuntimeError("a shadow retrieval did not give the stored document key")
    return paths


async def prepare_signing_keys(
    cluster: LocalCluster, requester: KeyPair, count: int
) -> list[tuple[str, Point]]:
    """`count` server keys (t=1): their `{id}/{sig}` paths and publics."""
    keys: list[tuple[str, Point]] = []
    async with aiohttp.ClientSession() as session:
        for i in range(count):
            path = key_path(requester)
            public = await _post(session, f"{cluster[i % len(cluster.nodes)].url}/shadow/{path}/1")
            assert isinstance(public, str)
            keys.append((path, Point.from_bytes(parse_hex(public, 64))))
    return keys


async def check_signature(
    url: str, kind: str, requester: KeyPair, public: Point, message: bytes
) -> None:
    """One signing end to end: the answer opens (ECIES) to a signature of `message` by the
    server key (Schnorr: it verifies; ECDSA: it recovers to the key)."""
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        body = await response.read()
        if response.status != 200:
            raise RuntimeError(f"GET {url}: {response.status} {body[:200]!r}")
    plain = ecies_decrypt(requester.secret, parse_hex(json.loads(body)))
    if kind == "schnorr":
        signature = SchnorrSignature(Scalar.from_bytes(plain[:32]), Scalar.from_bytes(plain[32:]))
        good = verify_schnorr_signature(public, signature, message)
    else:
        good = recover_public(plain, message) == public
    if not good:
        raise RuntimeError(f"a {kind} signature does not check against the server key")


async def pool_sizes(cluster: LocalCluster, field: str = "own") -> int:
    """The nodes' presignature figure `field` (own: held as masters; made: since start) in
    all (GET /health)."""
    total = 0
    async with aiohttp.ClientSession() as session:
        for node in cluster:
            async with session.get(f"{node.url}/health") as response:
                body = json.loads(await response.read())
            total += body.get("presignatures", {}).get(field, 0)
    return total


async def fill_pools(
    cluster: LocalCluster, requester: KeyPair, prepared: list[tuple[str, Point]], depth: int
) -> None:
    """One ECDSA signing per node and key (each makes that master top the key up), then wait
    until every node holds `depth` presignatures of every key."""
    message = OsRng().random_bytes(32).hex()
    async with aiohttp.ClientSession() as session:
        for node in cluster:
            for path, _ in prepared:
                async with session.get(f"{node.url}/ecdsa/{path}/{message}") as response:
                    await response.read()
    wanted = depth * len(prepared) * len(cluster.nodes)
    deadline = time.monotonic() + 60.0 + 0.5 * wanted
    while await pool_sizes(cluster) < wanted:
        if time.monotonic() > deadline:
            raise RuntimeError(f"the pools did not fill: {await pool_sizes(cluster)} of {wanted}")
        await asyncio.sleep(0.2)


# --- profilers --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Sampler:
    """py-spy on every node while a scenario runs."""

    executable: str
    directory: Path
    options: tuple[str, ...]

    def start(self, cluster: LocalCluster, scenario: str) -> list[subprocess.Popen[bytes]]:
        label = "".join(c if c.isalnum() else "_" for c in scenario)
        spies = []
        for node in cluster:
            assert node.process is not None
            output = self.directory / f"{label}-{node.name}.txt"
            command = [self.executable, "record", "--pid", str(node.process.pid)]
            command += ["--format", "raw", *self.options, "--output", str(output)]
            spies.append(subprocess.Popen(command, stdout=subprocess.DEVNULL))
        time.sleep(0.5)  # let them attach
        return spies

    @staticmethod
    def stop(spies: list[subprocess.Popen[bytes]]) -> None:
        for spy in spies:
            spy.send_signal(signal.SIGINT)
        for spy in spies:
            spy.wait(30)


# --- scenarios and the table ------------------------------------------------------------------


def percentile(values: Sequence[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


@dataclass(frozen=True, slots=True)
class Row:
    scenario: str
    result: LoadResult
    node_user: float
    node_system: float

    def cells(self) -> tuple[str, ...]:
        done = len(self.result.latencies)
        times = [f"{percentile(self.result.latencies, f) * 1e3:.2f}" for f in (0.5, 0.9, 0.99)]
        per_request = (self.node_user + self.node_system, self.node_system, self.result.cpu)
        return (
            self.scenario,
            str(done),
            *times,
            f"{done / self.result.wall:.0f}",
            *(f"{seconds / done * 1e6:.0f}" for seconds in per_request),
            str(self.result.errors),
        )


class Bench:
    def __init__(self, root: Path, sampler: Sampler | None) -> None:
        self.root = root
        self.sampler = sampler
        self.rows: list[Row] = []
        self.notes: list[str] = []
        #: the audit log setting of the signing and generation clusters
        self.audit_sync = True

    def measure(self, cluster: LocalCluster, scenario: str, spec: LoadSpec) -> None:
        spies = self.sampler.start(cluster, scenario) if self.sampler else []
        user, system = cluster_cpu(cluster)
        result = run_load(spec)
        user_after, system_after = cluster_cpu(cluster)
        Sampler.stop(spies)
        done = len(result.latencies)
        share = done / (done + spec.warmup)  # the warm-up is in the nodes' CPU too
        self.rows.append(
            Row(scenario, result, (user_after - user) * share, (system_after - system) * share)
        )

    def retrieval(
        self, requests: int, seconds: float, clients: int, keys: int, audit_sync: bool = True
    ) -> None:
        label = ", audit_sync=true" if audit_sync else ""
        cluster = start_cluster(
            self.root / f"retrieval{label.strip(', =')}", 3, audit_sync=audit_sync
        )
        try:
            paths = asyncio.run(prepare_documents(cluster, KeyPair.generate(OsRng()), keys))
            urls = tuple(f"{node.url}/shadow/{path}" for path in paths for node in cluster)
            health = tuple(f"{node.url}/health" for node in cluster)
            once = LoadSpec("GET", health, 1, requests, 0.0, 100)
            self.measure(cluster, f"GET /health (HTTP only), 1 client{label}", once)
            load = LoadSpec("GET", health, clients, 0, seconds, 200)
            self.measure(cluster, f"GET /health (HTTP only), {clients} clients{label}", load)
            once = LoadSpec("GET", urls, 1, requests, 0.0, 100)
            self.measure(cluster, f"GET /shadow n=3 t=1, 1 client{label}", once)
            load = LoadSpec("GET", urls, clients, 0, seconds, 200)
            self.measure(cluster, f"GET /shadow n=3 t=1, {clients} clients{label}", load)
            plain = tuple(f"{node.url}/{path}" for path in paths for node in cluster)
            once = LoadSpec("GET", plain, 1, requests, 0.0, 100)
            self.measure(cluster, f"GET /{{key}}/{{sig}} plain n=3 t=1, 1 client{label}", once)
            load = LoadSpec("GET", plain, clients, 0, seconds, 200)
            self.measure(
                cluster, f"GET /{{key}}/{{sig}} plain n=3 t=1, {clients} clients{label}", load
            )
        finally:
            cluster.terminate_all()

    def generation(self, count: int, threshold: int, keys: int) -> None:
        cluster = start_cluster(self.root / f"generation{count}", count, audit_sync=self.audit_sync)
        try:
            requester = KeyPair.generate(OsRng())
            urls = tuple(
                f"{cluster[i % count].url}/shadow/{key_path(requester)}/{threshold}"
                for i in range(keys + 3)
            )
            run_load(LoadSpec("POST", urls[:3], 1, 3, 0.0, 0))  # warm up (fresh key ids)
            spec = LoadSpec("POST", urls[3:], 1, keys, 0.0, 0)
            self.measure(cluster, f"POST /shadow n={count} t={threshold}", spec)
        finally:
            cluster.terminate_all()

    def signing(self, requests: int, keys: int) -> None:
        """Schnorr and ECDSA with fresh nonces (no presignatures), then ECDSA served from
        presignatures on a second cluster whose pools were filled first."""
        cluster = start_cluster(
            self.root / "signing", 3, ecdsa_presignatures=0, audit_sync=self.audit_sync
        )
        try:
            requester = KeyPair.generate(OsRng())
            prepared = asyncio.run(prepare_signing_keys(cluster, requester, keys))
            for kind in ("schnorr", "ecdsa"):
                self._sign(
                    cluster,
                    kind=kind,
                    requester=requester,
                    prepared=prepared,
                    requests=requests,
                    label="",
                )
        finally:
            cluster.terminate_all()
        depth = max(1, -(-(requests + 20) // (3 * keys)))  # enough for every request
        cluster = start_cluster(
            self.root / "presigned", 3, ecdsa_presignatures=depth, audit_sync=self.audit_sync
        )
        try:
            requester = KeyPair.generate(OsRng())
            prepared = asyncio.run(prepare_signing_keys(cluster, requester, keys))
            asyncio.run(fill_pools(cluster, requester, prepared, depth))
            before = asyncio.run(pool_sizes(cluster))
            made = asyncio.run(pool_sizes(cluster, "made"))
            label = f", presigned (pools of {depth})"
            self._sign(
                cluster,
                kind="ecdsa",
                requester=requester,
                prepared=prepared,
                requests=requests,
                label=label,
            )
            made = asyncio.run(pool_sizes(cluster, "made")) - made
            used = before + made - asyncio.run(pool_sizes(cluster))
            self.notes.append(
                f"ECDSA presigned: {used} of the {requests + 20} signings (warm-up included) "
                "used a presignature"
            )
        finally:
            cluster.terminate_all()

    def _sign(
        self,
        cluster: LocalCluster,
        *,
        kind: str,
        requester: KeyPair,
        prepared: list[tuple[str, Point]],
        requests: int,
        label: str,
    ) -> None:
        hashes = [OsRng().random_bytes(32) for _ in range(4)]
        path, public = prepared[0]
        first = f"{cluster[0].url}/{kind}/{path}/{hashes[0].hex()}"
        asyncio.run(check_signature(first, kind, requester, public, hashes[0]))
        urls = tuple(
            f"{node.url}/{kind}/{path}/{message.hex()}"
            for path, _ in prepared
            for message in hashes
            for node in cluster
        )
        spec = LoadSpec("GET", urls, 1, requests, 0.0, 20)
        self.measure(cluster, f"GET /{kind} n=3 t=1, 1 client{label}", spec)

    def print_table(self) -> None:
        table = [HEADER, *(row.cells() for row in self.rows)]
        widths = [max(len(line[i]) for line in table) for i in range(len(HEADER))]
        for line in table:
            cells = [line[0].ljust(widths[0])]
            cells += [cell.rjust(width) for cell, width in zip(line[1:], widths[1:], strict=True)]
            print("  ".join(cells))
        for note in self.notes:
            print(note)
        print(
            "node µs: CPU (user + system) of all node processes per request; sys µs: its system "
            f"part; gen µs: CPU of the load generator per request; {os.cpu_count()} CPUs"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=2000, help="one-at-a-time retrievals")
    parser.add_argument("--seconds", type=float, default=5.0, help="throughput run length")
    parser.add_argument("--clients", type=int, default=32, help="concurrent clients")
    parser.add_argument("--keys", type=int, default=8, help="document keys retrieved")
    parser.add_argument("--gen5", type=int, default=100, help="keys generated by 5 nodes")
    parser.add_argument("--gen16", type=int, default=20, help="keys generated by 16 nodes")
    parser.add_argument("--gen32", type=int, default=10, help="keys generated by 32 nodes")
    parser.add_argument("--signs", type=int, default=300, help="signatures of each kind (0: none)")
    parser.add_argument("--sign-keys", type=int, default=4, help="server keys signed with")
    parser.add_argument("--no-retrieval", action="store_true", help="skip the retrieval runs")
    wrappers = parser.add_mutually_exclusive_group()
    wrappers.add_argument("--profile", type=Path, help="cProfile every node into this directory")
    wrappers.add_argument("--gc-stats", type=Path, help="time every node's garbage collector")
    parser.add_argument("--cpu-timer", action="store_true", help="cProfile in CPU time")
    parser.add_argument("--py-spy", help="py-spy executable: sample every node (see --out)")
    parser.add_argument("--py-spy-options", default="--rate 200 --nonblocking")
    parser.add_argument("--out", type=Path, default=Path("."), help="py-spy output directory")
    parser.add_argument(
        "--audit-sync",
        choices=("true", "false"),
        default="false",
        help="audit_sync of the signing and generation clusters (retrieval runs both)",
    )
    args = parser.parse_args()
    wrapped = None  # a node process that writes figures of its own into a directory
    if args.profile is not None:
        wrapped = PROFILED_NODE.format(
            directory=str(args.profile.resolve()), cpu_timer=args.cpu_timer
        )
        args.profile.mkdir(parents=True, exist_ok=True)
    elif args.gc_stats is not None:
        wrapped = GC_TIMED_NODE.format(directory=str(args.gc_stats.resolve()))
        args.gc_stats.mkdir(parents=True, exist_ok=True)
    if wrapped is not None:
        e2e_cluster.NODE_COMMAND = (sys.executable, "-c", wrapped)
    sampler = None
    if args.py_spy is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        sampler = Sampler(args.py_spy, args.out, tuple(args.py_spy_options.split()))
    with tempfile.TemporaryDirectory(prefix="bench-api-") as tmp:
        bench = Bench(Path(tmp), sampler)
        bench.audit_sync = args.audit_sync == "true"
        if not args.no_retrieval:
            for audit_sync in (False, True):
                bench.retrieval(args.requests, args.seconds, args.clients, args.keys, audit_sync)
        if args.gen5 > 0:
            bench.generation(5, 2, args.gen5)
        if args.gen16 > 0:
            bench.generation(16, 5, args.gen16)
        if args.gen32 > 0:
            bench.generation(32, 10, args.gen32)
        if args.signs > 0:
            bench.signing(args.signs, args.sign_keys)
    bench.print_table()
    if args.gc_stats is not None:
        print_gc_stats(args.gc_stats)


def print_gc_stats(directory: Path) -> None:
    """One line per node process of the run: its collections and their share of its CPU."""
    for path in sorted(directory.glob("gc-*.txt")):
        spent, longest, cpu, *counts = (float(word) for word in path.read_text().split())
        share = 100 * spent / cpu if cpu > 0 else 0.0
        print(
            f"{path.stem}: collections by generation {'/'.join(f'{n:.0f}' for n in counts)}, "
            f"{spent * 1000:.1f} ms in the collector of {cpu:.2f} s CPU ({share:.2f}%), "
            f"the longest {longest * 1000:.2f} ms"
        )


if __name__ == "__main__":
    main()
