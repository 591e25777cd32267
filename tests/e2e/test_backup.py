"""Verifiable encrypted backup end to end: three real node processes (t = 1), real LevelDB,
the real `secretstore backup` and `secretstore restore` commands.

A running node is backed up (from a private copy of its database) to a backup key; anyone
checks the file without that key. A changed file is refused by `verify` and by `restore`
before anything is written. The node is stopped, its database destroyed and restored from
the file (same node key); with another node stopped, so that every session needs the
restored node's shares, every key is retrieved and signed through it. A key deleted after
the backup stays deleted: the restored node erases it from its peers' tombstones.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from secretstore.cli.cluster import write_private
from secretstore.client.http_client import KeyServerClient
from secretstore.crypto.curve import Point
from secretstore.crypto.hashing import keccak256
from secretstore.crypto.keys import KeyPair
from secretstore.crypto.rng import SeededRng
from secretstore.crypto.schnorr import SchnorrSignature, verify_schnorr_signature
from secretstore.errors import SecretStoreError
from tests.e2e.cluster import LocalCluster, NodeProcess, wait_until
from tests.e2e.conftest import ClusterFactory

pytestmark = pytest.mark.e2e

ALICE = KeyPair.generate(SeededRng(b"e2e backup alice"))
BACKUP = KeyPair.generate(SeededRng(b"e2e backup key"))
KEYS = 8
MESSAGE = keccak256(b"backup e2e message")
DOCUMENT_KEYS: dict[bytes, Point] = {}


def key_id(index: int) -> bytes:
    return keccak256(b"backup e2e key %d" % index)


@pytest.fixture(scope="module")
def cluster(make_module_cluster: ClusterFactory) -> Iterator[LocalCluster]:
    cluster = make_module_cluster(3, seed=91, extra={"disable_auto_migrate": True})
    cluster.start()
    cluster.wait_ready()
    yield cluster
    cluster.kill_all()


def run(node: NodeProcess, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "secretstore.cli.main", *args],
        capture_output=True, text=True, timeout=300, check=False, cwd=node.directory,
    )  # fmt: skip


async def use_every_key(node: NodeProcess) -> None:
    async with KeyServerClient(node.url) as client:
        for index in range(KEYS):
            key = key_id(index)
            public = await client.retrieve_server_key(key, ALICE)
            plain = await client.retrieve_document_key(key, ALICE)
            shadow = await client.retrieve_document_key_shadow(key, ALICE)
            assert plain == shadow == DOCUMENT_KEYS[key], index
            c, s = await client.sign_schnorr(key, ALICE, MESSAGE)
            assert verify_schnorr_signature(public, SchnorrSignature(c, s), MESSAGE)


async def test_back_up_destroy_restore_and_use_every_key(
    cluster: LocalCluster, tmp_path: Path
) -> None:
    async with KeyServerClient(cluster[0].url) as client:
        for index in range(KEYS):
            DOCUMENT_KEYS[key_id(index)] = await client.create_document_key(key_id(index), ALICE, 1)
        doomed = keccak256(b"backup e2e deleted after the backup")
        await client.create_document_key(doomed, ALICE, 1)
    node, other = cluster[1], cluster[2]
    backup = tmp_path / "node2.backup"
    made = run(node, "backup", "create", "--config", str(node.config_path),
               "--backup-public", BACKUP.public.to_bytes().hex(), "--out", str(backup),
               "--snapshot")  # fmt: skip
    assert made.returncode == 0, made.stdout + made.stderr
    assert f"{KEYS + 1} keys" in made.stdout
    assert backup.stat().st_mode & 0o077 == 0
    checked = run(node, "backup", "verify", str(backup), "--node", node.node_id.hex())
    assert checked.returncode == 0 and "verified" in checked.stdout, checked.stdout

    # a changed copy: refused by verify, and restore writes nothing
    data = bytearray(backup.read_bytes())
    data[len(data) // 2] ^= 0x40
    tampered = tmp_path / "tampered.backup"
    tampered.write_bytes(bytes(data))
    bad = run(node, "backup", "verify", str(tampered))
    assert bad.returncode == 1 and "does NOT verify" in bad.stdout, bad.stdout + bad.stderr
    # one that stays well formed (a response scalar of the last entry's range proof changed)
    data = bytearray(backup.read_bytes())
    data[-65 - 4 - 40] ^= 0x01  # inside the last key's last share, before the tombstone count
    reframed = tmp_path / "reframed.backup"
    reframed.write_bytes(bytes(data))
    bad = run(node, "backup", "verify", str(reframed))
    assert bad.returncode == 1 and "PROBLEM" in bad.stdout, bad.stdout + bad.stderr

    # the key deleted after the backup; then the node stopped and its database destroyed
    async with KeyServerClient(cluster[0].url) as client:
        await client.delete_key(doomed, ALICE)
    node.terminate()
    shutil.rmtree(node.directory / "db")
    secret_file = tmp_path / "backup.secret"
    write_private(secret_file, BACKUP.secret.to_bytes().hex() + "\n")
    refused = run(node, "restore", "--config", str(node.config_path), "--backup", str(tampered),
                  "--backup-secret-file", str(secret_file))  # fmt: skip
    assert refused.returncode == 1 and "nothing restored" in refused.stdout, refused.stdout
    assert not (node.directory / "db").exists()
    wrong = tmp_path / "wrong.secret"
    write_private(wrong, ALICE.secret.to_bytes().hex() + "\n")
    refused = run(node, "restore", "--config", str(node.config_path), "--backup", str(backup),
                  "--backup-secret-file", str(wrong))  # fmt: skip
    assert refused.returncode == 1 and "not the secret" in refused.stdout, refused.stdout
    assert not (node.directory / "db").exists()
    another = run(cluster[0], "restore", "--config", str(cluster[0].config_path),
                  "--backup", str(backup), "--backup-secret-file", str(secret_file))  # fmt: skip
    assert another.returncode == 2 and "is of node" in another.stderr, another.stderr

    restored = run(node, "restore", "--config", str(node.config_path), "--backup", str(backup),
                   "--backup-secret-file", str(secret_file))  # fmt: skip
    assert restored.returncode == 0, restored.stdout + restored.stderr
    assert f"{KEYS + 1} keys" in restored.stdout
    again = run(node, "restore", "--config", str(node.config_path), "--backup", str(backup),
                "--backup-secret-file", str(secret_file))  # fmt: skip
    assert again.returncode == 2 and "not empty" in again.stderr, again.stderr

    # every key through the restored node, with the third node stopped: each session takes
    # the restored node's share
    other.terminate()
    node.start()
    wait_until(lambda: {f"0x{cluster[0].node_id.hex()}"} <= node.connected(), 30, "the mesh")
    await use_every_key(node)
    await use_every_key(cluster[0])

    # the deleted key is gone on the restored node too (it took the tombstone from a peer)
    async def gone() -> bool:
        async with KeyServerClient(node.url) as client:
            try:
                await client.retrieve_server_key(doomed, ALICE)
            except SecretStoreError:
                return True
            return False

    deadline = asyncio.get_running_loop().time() + 30
    while not await gone():
        assert asyncio.get_running_loop().time() < deadline, "the deleted key came back"
        await asyncio.sleep(0.2)
    other.start()
    cluster.wait_ready()
