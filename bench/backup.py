"""Verifiable encrypted backup figures: `secretstore backup create`, `backup verify` and
`secretstore restore` (the real commands, as subprocesses) on a node database of K keys.

The database is written directly (real LevelDB, synced writes): K server keys of a 3-node
cluster with t = 1, each with a document key and one version with its commitments, this
node's share of a random polynomial. What a backup costs does not depend on how the keys
were made. The restored database is compared with the original, record by record.

Run: .venv/bin/python bench/backup.py [--keys 10000]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from secretstore.cli.cluster import write_private
from secretstore.crypto.curve import Point
from secretstore.crypto.hashing import keccak256
from secretstore.crypto.keys import KeyPair
from secretstore.crypto.rng import OsRng, random_scalar
from secretstore.crypto.shamir import evaluate_polynomial
from secretstore.storage.leveldb import LevelDbKeyStorage
from secretstore.storage.model import KeyShare, KeyShareVersion
from secretstore.types import Address, ServerKeyId
from tests.e2e.cluster import LocalCluster, NodeProcess

RNG = OsRng()
BACKUP = KeyPair.generate(RNG)


def make_record(node: NodeProcess, others: list[NodeProcess]) -> KeyShare:
    coefficients = [random_scalar(RNG), random_scalar(RNG)]
    numbers = {n.node_id: random_scalar(RNG) for n in [node, *others]}
    share = evaluate_polynomial(coefficients, numbers[node.node_id])
    commitments = [Point.base_mul(c) for c in coefficients]
    version = KeyShareVersion.create(numbers, share, commitments)
    return KeyShare(
        Address(bytes(20)),
        1,
        commitments[0],
        Point.base_mul(random_scalar(RNG)),
        Point.base_mul(random_scalar(RNG)),
        (version,),
    )


def run(node: NodeProcess, *args: str) -> tuple[float, str]:
    started = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-m", "secretstore.cli.main", *args],
        capture_output=True, text=True, check=False, cwd=node.directory,
    )  # fmt: skip
    took = time.perf_counter() - started
    if result.returncode != 0:
        raise RuntimeError(f"{args[0]} failed: {result.stdout} {result.stderr}")
    return took, result.stdout.strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keys", type=int, default=10000)
    args = parser.parse_args()
    print("verifiable encrypted backup (one process each, 2 cores shared with the load)")
    with tempfile.TemporaryDirectory(prefix="bench-backup-") as root:
        cluster = LocalCluster(Path(root), 3, seed=7)
        node = cluster[0]
        database = node.directory / "db"
        started = time.perf_counter()
        original: dict[ServerKeyId, KeyShare] = {}
        with LevelDbKeyStorage(database) as storage:
            for index in range(args.keys):
                key_id = ServerKeyId(keccak256(b"bench backup %d" % index))
                original[key_id] = make_record(node, cluster.nodes[1:])
                storage.insert(key_id, original[key_id])
        print(f"database of {args.keys} keys written in {time.perf_counter() - started:.1f} s")
        out = Path(root) / "node.backup"
        public = BACKUP.public.to_bytes().hex()
        took, _ = run(node, "backup", "create", "--config", str(node.config_path),
                      "--backup-public", public, "--out", str(out))  # fmt: skip
        size = out.stat().st_size
        print(f"backup create: {took:7.1f} s  {size / 1e6:7.1f} MB "
              f"({size / args.keys:.0f} bytes per key)")  # fmt: skip
        took, _ = run(node, "backup", "verify", str(out))
        print(f"backup verify: {took:7.1f} s  (no secret; batched proof check)")
        secret = Path(root) / "backup.secret"
        write_private(secret, BACKUP.secret.to_bytes().hex() + "\n")
        database.rename(node.directory / "db.original")
        took, _ = run(node, "restore", "--config", str(node.config_path), "--backup",
                      str(out), "--backup-secret-file", str(secret))  # fmt: skip
        print(f"restore      : {took:7.1f} s  (verify, decrypt, synced LevelDB writes)")
        with LevelDbKeyStorage(database) as storage:
            restored = {key: storage.get(key) for key in storage.ids()}
        if restored != original:
            raise RuntimeError("the restored database differs from the original")
        print(f"restored database identical to the original ({len(restored)} keys)")


if __name__ == "__main__":
    main()
