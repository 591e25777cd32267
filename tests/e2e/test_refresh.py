"""Proactive refresh end to end: three real node processes (t = 1), real LevelDB.

`secretstore admin refresh` (the real command) refreshes every key: afterwards every node's
database holds exactly one version of every key, with a new hash and the same public, and
every key is retrieved (plain and shadow) and signed (Schnorr and ECDSA) through every node.
A node killed (kill -9) in the middle of a refresh leaves every key usable; run again, the
refresh finishes and the old versions are gone everywhere. On a schedule the lowest node runs
rounds by itself; a round whose leader is killed mid-round resumes from its cursor.
"""

from __future__ import annotations

import asyncio
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from secretstore.cli.cluster import write_private
from secretstore.client.http_client import KeyServerClient
from secretstore.crypto.curve import Point
from secretstore.crypto.hashing import keccak256
from secretstore.crypto.keys import KeyPair, recover_public
from secretstore.crypto.rng import SeededRng
from secretstore.crypto.schnorr import SchnorrSignature, verify_schnorr_signature
from secretstore.storage.leveldb import LevelDbKeyStorage
from secretstore.storage.snapshot import open_database
from tests.e2e.cluster import LocalCluster, NodeProcess, wait_until
from tests.e2e.conftest import ClusterFactory

pytestmark = pytest.mark.e2e

ADMIN = KeyPair.generate(SeededRng(b"e2e refresh admin"))
ALICE = KeyPair.generate(SeededRng(b"e2e refresh alice"))
KEYS = 12
MESSAGE = keccak256(b"refresh e2e message")
OPTIONS = {
    "admin_public": ADMIN.public.to_bytes().hex(),
    "disable_auto_migrate": True,
    "refresh_batch_size": 2,
}

Versions = dict[str, dict[bytes, tuple[bytes, ...]]]


def key_id(index: int) -> bytes:
    return keccak256(b"refresh e2e key %d" % index)


@pytest.fixture(scope="module")
def cluster(make_module_cluster: ClusterFactory) -> Iterator[LocalCluster]:
    cluster = make_module_cluster(3, seed=88, extra=OPTIONS)
    cluster.start()
    cluster.wait_ready()
    yield cluster
    cluster.kill_all()


def versions(cluster: LocalCluster) -> Versions:
    """node name -> key -> its version hashes, from a private copy of each running node's
    database."""
    out: Versions = {}
    for node in cluster:
        with open_database(node.directory / "db", snapshot=True) as storage:
            out[node.name] = {
                key: tuple(v.hash for v in share.versions)
                for key in storage.ids()
                if (share := storage.get(key)) is not None
            }
    return out


def run_cli(node: NodeProcess, secret_file: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "secretstore.cli.main", "admin", "refresh", "--node", node.url,
         "--secret-file", str(secret_file), *extra],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip


async def use_every_key(cluster: LocalCluster, nodes: list[NodeProcess], ecdsa: bool) -> None:
    """Every key retrieved plain and shadow and Schnorr-signed through each of `nodes`;
    ECDSA-signed too when `ecdsa` (it needs every node, 2t + 1 = 3)."""
    limit = asyncio.Semaphore(8)

    async def one(node: NodeProcess, index: int) -> None:
        key = key_id(index)
        async with limit, KeyServerClient(node.url) as client:
            public = await client.retrieve_server_key(key, ALICE)
            plain = await client.retrieve_document_key(key, ALICE)
            shadow = await client.retrieve_document_key_shadow(key, ALICE)
            assert plain == shadow == DOCUMENT_KEYS[key], (node.name, index)
            c, s = await client.sign_schnorr(key, ALICE, MESSAGE)
            assert verify_schnorr_signature(public, SchnorrSignature(c, s), MESSAGE)
            if ecdsa and index % 4 == 0:
                signature = await client.sign_ecdsa(key, ALICE, MESSAGE)
                assert recover_public(signature, MESSAGE) == public

    await asyncio.gather(*(one(node, i) for node in nodes for i in range(KEYS)))


DOCUMENT_KEYS: dict[bytes, Point] = {}
#: keys of the scheduled cluster: 20 batches of two make a round last long enough to cut it
SCHEDULED_KEYS = 40


def assert_refreshed_once(before: Versions, after: Versions) -> None:
    """Every key has exactly one version on every node, the same everywhere, and new."""
    for name, keys in after.items():
        assert set(keys) == set(before[name])
        for key, hashes in keys.items():
            assert len(hashes) == 1, (name, key.hex(), hashes)
            assert hashes[0] not in before[name][key]
    for key in after["node1"]:
        assert {after[name][key] for name in after} == {after["node1"][key]}


async def test_keys_are_made(cluster: LocalCluster) -> None:
    limit = asyncio.Semaphore(8)

    async def make(index: int) -> None:
        async with limit, KeyServerClient(cluster[index % 3].url) as client:
            DOCUMENT_KEYS[key_id(index)] = await client.create_document_key(key_id(index), ALICE, 1)

    await asyncio.gather(*(make(i) for i in range(KEYS)))


async def test_the_admin_command_refreshes_every_key(cluster: LocalCluster, tmp_path: Path) -> None:
    before = versions(cluster)
    secret_file = tmp_path / "admin.secret"
    write_private(secret_file, ADMIN.secret.to_bytes().hex() + "\n")
    result = run_cli(cluster[1], secret_file)
    assert result.returncode == 0, result.stdout + result.stderr + cluster.logs()
    assert f"done: {KEYS} keys refreshed, 0 skipped" in result.stdout
    # another administrator's key is refused, and changes nothing
    other = tmp_path / "other.secret"
    write_private(other, KeyPair.generate(SeededRng(b"other")).secret.to_bytes().hex() + "\n")
    refused = run_cli(cluster[0], other)
    assert refused.returncode == 1 and "HTTP 403" in refused.stdout
    after = versions(cluster)
    assert_refreshed_once(before, after)
    await use_every_key(cluster, cluster.nodes, ecdsa=True)
    # one listed key only
    one = run_cli(cluster[2], secret_file, "--key", key_id(3).hex())
    assert one.returncode == 0 and "done: 1 keys refreshed" in one.stdout, one.stdout


async def test_a_node_silent_in_a_refresh_then_killed_leaves_every_key_usable(
    cluster: LocalCluster, tmp_path: Path
) -> None:
    secret_file = tmp_path / "admin.secret"
    write_private(secret_file, ADMIN.secret.to_bytes().hex() + "\n")
    master, victim = cluster[0], cluster[2]
    # A batch of this cluster takes milliseconds, too short to catch between two polls: the
    # victim is frozen first (its links stay up, so the refresh starts with it), its silence
    # ends the refresh within peer_timeout, and it is killed before it can resume.
    assert victim.process is not None
    victim.process.send_signal(signal.SIGSTOP)
    process = subprocess.Popen(
        [sys.executable, "-m", "secretstore.cli.main", "admin", "refresh", "--node", master.url,
         "--secret-file", str(secret_file)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        output, _ = process.communicate(timeout=60)
        victim.kill()
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 1 and "HTTP 500" in output, output
    await use_every_key(cluster, cluster.nodes[:2], ecdsa=False)
    victim.start()
    cluster.wait_ready()
    await use_every_key(cluster, cluster.nodes, ecdsa=True)
    before = versions(cluster)
    result = run_cli(cluster[1], secret_file)
    assert result.returncode == 0, result.stdout + cluster.logs()
    after = versions(cluster)
    assert_refreshed_once(before, after)
    await use_every_key(cluster, cluster.nodes, ecdsa=True)


async def test_the_schedule_refreshes_and_a_round_cut_short_resumes(
    make_cluster: ClusterFactory,
) -> None:
    options = {**OPTIONS, "refresh_interval": 3.0, "refresh_batch_size": 2}
    cluster = make_cluster(3, seed=89, extra=options)
    cluster.start()
    cluster.wait_ready()
    leader, frozen = cluster[0], cluster[2]  # nodes are sorted by id: node1 leads
    async with KeyServerClient(leader.url) as client:
        for index in range(SCHEDULED_KEYS):
            await client.generate_server_key(key_id(100 + index), ALICE, 1)
    leader.wait_for_log(
        rf"refresh schedule: round done, {SCHEDULED_KEYS} keys refreshed", timeout=60.0
    )
    # the next round: freeze a node after its first batch, kill the leader, thaw, restart
    erased = "skipped; old versions erased"
    done_so_far = leader.log_text().count(erased)
    wait_until(
        lambda: leader.log_text().count(erased) > done_so_far,
        30.0,
        "a batch of the next round",
        cluster.logs,
    )
    assert frozen.process is not None
    frozen.process.send_signal(signal.SIGSTOP)
    try:
        leader.kill()
    finally:
        frozen.process.send_signal(signal.SIGCONT)
    before_restart = len(leader.log_text())
    leader.start()
    leader.wait_for_log(r"refresh schedule: resuming the round started at", timeout=30.0)
    # The log goes on from before the kill: only what follows the restart counts. A key cut
    # short holds its old version and, where it was written, the new one; while the next
    # round re-deals it, a third is in flight. Once a whole round after the restart refreshed
    # every key (none skipped), each key holds one version, and a round in flight at the
    # stop below adds at most one.
    every_key = re.compile(
        r"refresh schedule: round done, \d+ keys refreshed in \d+ batches, 0 skipped"
    )
    wait_until(
        lambda: every_key.search(leader.log_text()[before_restart:]),
        60.0,
        "a round after the restart that refreshed every key",
        cluster.logs,
    )
    cluster.terminate_all()
    for node in cluster:
        with LevelDbKeyStorage(node.directory / "db") as storage:
            for key in storage.ids():
                share = storage.get(key)
                assert share is not None and len(share.versions) <= 2
