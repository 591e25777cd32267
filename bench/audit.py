"""Audit log figures: bytes per entry, the cost of an entry (signatures, synced LevelDB
append), and the latency an audit log adds to a shadow retrieval and to a signing.

The added latency is measured on an in-process cluster (the real driver, sessions and key
server over the in-memory transport, each node's key shares and audit log in its own real
LevelDB under --dir), once with every node keeping its audit log and once without: a release
writes one synced entry on every participant, the slaves' before they answer, the master's
before it answers, so at least two fsyncs lie on the path of every release.

Usage: .venv/bin/python bench/audit.py [--dir /path/on/the/disk/to/test] [--requests 60]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import plyvel

from secretstore.audit.model import Operation, encode_facts, facts_of
from secretstore.audit.receipts import NodeSigner, receipt_holds
from secretstore.audit.recorder import AuditRecorder
from secretstore.audit.store import LevelDbAuditStore
from secretstore.cluster.access import AllowAll
from secretstore.cluster.driver import ClusterDriver
from secretstore.crypto.document import encrypt_secret
from secretstore.crypto.keys import KeyPair, sign_recoverable
from secretstore.crypto.rng import SeededRng
from secretstore.keyserver import KeyServer
from secretstore.mesh.memory import MemoryNetwork
from secretstore.sessions.base import SessionContext
from secretstore.sessions.core import NodeCore
from secretstore.sessions.registry import MASTERS, SLAVES
from secretstore.storage.leveldb import LevelDbKeyStorage
from secretstore.types import Address, MessageHash, ServerKeyId, SessionId

NODES = [KeyPair.generate(SeededRng(f"bench audit {i}".encode())) for i in range(5)]


def sample_facts(operation: Operation, participants: int) -> Any:
    signing = operation in (Operation.SCHNORR, Operation.ECDSA)
    return facts_of(
        operation,
        ServerKeyId(b"\x01" * 32),
        session_id=SessionId(b"\x02" * 32),
        master=NODES[0].node_id,
        requester=Address(b"\x03" * 20),
        participants=frozenset(k.node_id for k in NODES[:participants]),
        key_version=b"\x04" * 32,
        message_hash=b"\x05" * 32 if signing else None,
    )


def entry_sizes() -> None:
    print("bytes per entry (record; LevelDB adds its key, 15 bytes, and its own overhead)")
    for operation, participants in (
        (Operation.GENERATION, 3),
        (Operation.SHADOW_RETRIEVAL, 2),
        (Operation.SHADOW_RETRIEVAL, 3),
        (Operation.SCHNORR, 2),
        (Operation.ECDSA, 3),
        (Operation.ECDSA, 5),
    ):
        facts = sample_facts(operation, participants)
        size = 1 + 8 + 32 + 8 + len(encode_facts(facts)) + 65 + 65
        print(f"  {operation.label:<17} {participants} participants  {size:>5} bytes")


def per_call_us(run: Callable[[], object], count: int) -> float:
    start = time.perf_counter()
    for _ in range(count):
        run()
    return (time.perf_counter() - start) / count * 1e6


def entry_costs(directory: Path, count: int) -> None:
    facts = sample_facts(Operation.SHADOW_RETRIEVAL, 2)
    signer = NodeSigner(NODES[0])
    receipt = signer.receipt(facts)
    print("cost of one entry")
    print(
        f"  receipt signature            {per_call_us(lambda: signer.receipt(facts), 2000):8.1f} µs"
    )
    verify = lambda: receipt_holds(NODES[0].node_id, facts, receipt)  # noqa: E731
    print(f"  receipt check (recover)      {per_call_us(verify, 2000):8.1f} µs")
    with LevelDbKeyStorage(directory / "entries") as storage:
        recorder = AuditRecorder(LevelDbAuditStore(storage), signer)
        synced = per_call_us(lambda: recorder.append(facts, receipt), count)
        print(f"  append, synced (LevelDB)     {synced:8.1f} µs  ({count} entries)")
    db_dir = directory / "unsynced"
    db = plyvel.DB(str(db_dir), create_if_missing=True)
    record = b"\x00" * 500
    keys = iter(range(10**9))
    unsynced = per_call_us(lambda: db.put(next(keys).to_bytes(8, "big"), record), count)
    db.close()
    print(f"  (a 500-byte put, not synced  {unsynced:8.1f} µs, for comparison)")


async def _cluster(directory: Path, audited: bool) -> tuple[list[KeyServer], list[Any]]:
    keys = NODES[:3]
    ids = frozenset(k.node_id for k in keys)
    network = MemoryNetwork(ids, rng=SeededRng(b"bench net"))
    servers, closers = [], []
    for i, key in enumerate(keys):
        storage = LevelDbKeyStorage(directory / f"{'audited' if audited else 'plain'}-{i}")
        signer = NodeSigner(key) if audited else None
        ctx = SessionContext(key.node_id, SeededRng(i), ids, audit=signer)
        core = NodeCore(ctx, storage, MASTERS, SLAVES)
        transport = network.transport(key.node_id)
        recorder = AuditRecorder(LevelDbAuditStore(storage), signer) if signer else None
        driver = ClusterDriver(core, transport, storage, AllowAll(), audit=recorder)
        transport.set_handler(driver)
        servers.append(KeyServer(driver, len(keys), SeededRng(100 + i)))
        closers.append((driver, storage))
    for key in keys:
        await network.transport(key.node_id).start()
    while not all(len(network.transport(k).connected()) == 2 for k in ids):
        await asyncio.sleep(0.001)
    return servers, closers


async def _median_ms(call: Callable[[], Awaitable[object]], count: int) -> float:
    times = []
    for _ in range(count):
        start = time.perf_counter()
        await call()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


async def _measure(
    directory: Path,
    audited: bool,
    count: int,
    *,
    key_id: ServerKeyId,
    signature: bytes,
    requester: KeyPair,
    message: MessageHash,
) -> list[float]:
    servers, closers = await _cluster(directory, audited)
    public = await servers[0].generate_server_key(key_id, signature, 1)
    enc = encrypt_secret(requester.public, public, SeededRng(b"m"))
    await servers[0].store_document_key(key_id, signature, enc.common_point, enc.encrypted_point)
    shadow = await _median_ms(
        lambda: servers[1].retrieve_document_key_shadow(key_id, signature), count
    )
    schnorr = await _median_ms(lambda: servers[2].sign_schnorr(key_id, signature, message), count)
    ecdsa = await _median_ms(lambda: servers[0].sign_ecdsa(key_id, signature, message), count)
    for driver, storage in closers:
        await driver.close()
        storage.close()
    return [shadow, schnorr, ecdsa]


async def added_latency(directory: Path, count: int) -> None:
    requester = KeyPair.generate(SeededRng(b"bench requester"))
    key_id = ServerKeyId(b"\x09" * 32)
    signature = sign_recoverable(requester.secret, key_id)
    message = MessageHash(b"\x42" * 32)
    rows: dict[str, list[float]] = {}
    for audited in (False, True):
        rows["audited" if audited else "no audit log"] = await _measure(
            directory,
            audited,
            count,
            key_id=key_id,
            signature=signature,
            requester=requester,
            message=message,
        )
    print("median latency per request, 3 nodes t=1 in one process, real LevelDB (ms)")
    print(f"  {'':<14} {'shadow':>8} {'schnorr':>8} {'ecdsa':>8}")
    for name, values in rows.items():
        print(f"  {name:<14} " + " ".join(f"{v:8.2f}" for v in values))
    added = [a - b for a, b in zip(rows["audited"], rows["no audit log"], strict=True)]
    print(f"  {'added':<14} " + " ".join(f"{v:8.2f}" for v in added))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", type=Path, default=None)
    parser.add_argument("--requests", type=int, default=60)
    parser.add_argument("--entries", type=int, default=500)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.dir) as raw:
        directory = Path(raw)
        print(f"on {directory} (machine shared with other work: figures are noisy)")
        entry_sizes()
        entry_costs(directory, args.entries)
        asyncio.run(added_latency(directory, args.requests))


if __name__ == "__main__":
    main()
