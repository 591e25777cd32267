"""Key storage figures: open time (empty vs many keys), synced insert, get, contains, ids.

Usage: .venv/bin/python bench/storage.py [--keys 100000] [--dir /path/on/the/disk/to/test]
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import plyvel

from secretstore.crypto.curve import Point, Scalar
from secretstore.crypto.hashing import keccak256
from secretstore.storage.codec import encode_key_share
from secretstore.storage.leveldb import COUNT_KEY, LevelDbKeyStorage, share_record_key
from secretstore.storage.model import KeyShare
from secretstore.types import Address, NodeId, ServerKeyId


def _scalar(label: str) -> Scalar:
    return Scalar.from_hash(keccak256(label.encode()))


def sample_share(nodes: int = 3, threshold: int = 1) -> KeyShare:
    id_numbers = {
        NodeId(Point.base_mul(_scalar(f"node{i}")).to_bytes()): _scalar(f"id{i}")
        for i in range(nodes)
    }
    share = KeyShare.from_generation(
        Address(bytes(20)), threshold, Point.base_mul(_scalar("public")), id_numbers, _scalar("s")
    )
    return share.with_document_key(Point.base_mul(_scalar("c")), Point.base_mul(_scalar("e")))


def key_id(i: int) -> ServerKeyId:
    return ServerKeyId(keccak256(i.to_bytes(8, "big")))


def open_seconds(path: Path, repeat: int = 5) -> tuple[float, float]:
    """(first open, median of the next `repeat` opens) in seconds."""
    times = []
    for _ in range(repeat + 1):
        start = time.perf_counter()
        storage = LevelDbKeyStorage(path)
        times.append(time.perf_counter() - start)
        storage.close()
    return times[0], statistics.median(times[1:])


def varied_record(share: KeyShare, i: int) -> bytes:
    """The record of `share` with a per-key author and secret share (so records differ)."""
    version = share.versions[0]
    version = replace(version, secret_share=version.secret_share + Scalar(i))
    return encode_key_share(replace(share, author=Address(key_id(i)[:20]), versions=(version,)))


def fill(path: Path, count: int, share: KeyShare) -> float:
    """Write `count` distinct share records in batches (not synced); returns seconds taken."""
    LevelDbKeyStorage(path).close()  # the schema record
    start = time.perf_counter()
    db = plyvel.DB(str(path))
    for first in range(0, count, 10_000):
        with db.write_batch() as batch:
            for i in range(first, min(first + 10_000, count)):
                batch.put(share_record_key(key_id(i)), varied_record(share, i))
    db.put(COUNT_KEY, str(count).encode())  # as LevelDbKeyStorage keeps it
    db.close()
    return time.perf_counter() - start


def per_call_us(call: Callable[[int], object], count: int) -> float:
    start = time.perf_counter()
    for i in range(count):
        call(i)
    return (time.perf_counter() - start) / count * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--keys", type=int, default=100_000)
    parser.add_argument("--dir", type=Path, default=None, help="where to create the databases")
    args = parser.parse_args()
    share = sample_share()
    record = encode_key_share(share)
    rng = random.Random(1)  # only picks which keys to read; no secrets involved

    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        empty, full = Path(tmp) / "empty", Path(tmp) / "full"
        LevelDbKeyStorage(empty).close()
        fill_s = fill(full, args.keys, share)
        size_mb = sum(f.stat().st_size for f in full.iterdir()) / 1e6
        print(f"record size: {len(record)} bytes (3 nodes, one version, document key)")
        print(f"filled {args.keys} keys in {fill_s:.1f} s (batched, unsynced); {size_mb:.0f} MB")

        for label, path in (("empty", empty), (f"{args.keys} keys", full)):
            first, median = open_seconds(path)
            print(
                f"open {label:>12}: first {first * 1e3:7.2f} ms, then median {median * 1e3:7.2f} ms"
            )

        with LevelDbKeyStorage(full) as storage:
            base = args.keys
            insert = per_call_us(lambda i: storage.insert(key_id(base + i), share), 500)
            update = per_call_us(lambda i: storage.update(key_id(base + i), share), 500)
            reads = [key_id(rng.randrange(args.keys)) for _ in range(20_000)]
            get = per_call_us(lambda i: storage.get(reads[i]), len(reads))
            contains = per_call_us(lambda i: storage.contains(reads[i]), len(reads))
            start = time.perf_counter()
            listed = sum(1 for _ in storage.ids())
            ids_s = time.perf_counter() - start
        print(f"insert (synced): {insert:8.1f} µs/op")
        print(f"update (synced): {update:8.1f} µs/op")
        print(f"get (decode)   : {get:8.1f} µs/op")
        print(f"contains       : {contains:8.1f} µs/op")
        print(
            f"ids            : {listed} keys in {ids_s:.2f} s ({ids_s / listed * 1e6:.2f} µs/key)"
        )


if __name__ == "__main__":
    main()
