"""The audit log and release receipts on real node processes with real LevelDB databases.

1. A 3-node cluster serves a release of every kind (generation, store, plain and shadow
   retrieval, Schnorr, ECDSA) through the client library, which checks every answer's
   receipts against the cluster's node ids. While the nodes run, `secretstore audit verify`
   names the locked database and reads a private copy with --snapshot. Once they stopped,
   each node's log (exported with the real CLI) holds exactly the operations it took part in,
   with the facts the receipts name; `audit verify --config` passes on every node; a changed,
   a removed and two reordered entries in a real database are each found at their position.
2. A node whose database lives on a small tmpfs that fills up: a release it is asked for
   answers 500 with the audit log's error, and its log holds exactly the releases that were
   answered; asked of another node, the release goes on without it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from hashlib import sha256
from pathlib import Path
from typing import Any

import aiohttp
import plyvel
import pytest
from yarl import URL

from secretstore.audit.store import entry_key
from secretstore.client.http_client import KeyServerClient
from secretstore.client.receipts import Released
from secretstore.crypto.curve import Point
from secretstore.crypto.document import encrypt_secret
from secretstore.crypto.keys import KeyPair, sign_recoverable
from secretstore.crypto.rng import SeededRng
from secretstore.http.errors import AUDIT_LOG_FAILURE_TEXT
from tests.e2e.cluster import LocalCluster, NodeProcess
from tests.e2e.conftest import ClusterFactory

pytestmark = pytest.mark.e2e

ALICE = KeyPair.generate(SeededRng(b"audit alice"))
MESSAGE = sha256(b"audited message").digest()
AUDIT = (sys.executable, "-m", "secretstore.cli.main", "audit")


def audit(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*AUDIT, *args], capture_output=True, text=True, timeout=60, check=False)


def db_of(node: NodeProcess) -> Path:
    return node.directory / "db"


def exported(node: NodeProcess, tmp: Path) -> list[dict[str, Any]]:
    out = tmp / f"{node.name}.jsonl"
    done = audit("export", "--config", str(node.config_path), "--out", str(out))
    assert done.returncode == 0, done.stderr
    return [json.loads(line) for line in out.read_text().splitlines()]


async def store_key(client: KeyServerClient, key_id: bytes, public: Point) -> Point:
    rng = SeededRng(b"audit document key" + key_id)
    document_key = KeyPair.generate(rng).public
    encrypted = encrypt_secret(document_key, public, rng)
    await client.store_document_key(
        key_id, ALICE, encrypted.common_point, encrypted.encrypted_point
    )
    return document_key


def client_of(cluster: LocalCluster, index: int) -> KeyServerClient:
    nodes = [node.node_id for node in cluster]
    return KeyServerClient(cluster[index].url, nodes=nodes, require_receipts=True)


async def test_every_release_is_in_every_participant_s_log(
    make_cluster: ClusterFactory, tmp_path: Path
) -> None:
    cluster = make_cluster(3, seed=401)
    cluster.start()
    cluster.wait_ready()
    key_id = sha256(b"audited key").digest()
    releases: dict[str, Released[Any]] = {}
    async with client_of(cluster, 0) as client:
        public = await client.generate_server_key(key_id, ALICE, threshold=1)
    async with client_of(cluster, 1) as client:
        document_key = await store_key(client, key_id, public)
    async with client_of(cluster, 2) as client:
        releases["retrieval"] = await client.retrieve_document_key_released(key_id, ALICE)
        assert releases["retrieval"].value == document_key
    async with client_of(cluster, 0) as client:
        releases["shadow_retrieval"] = await client.retrieve_document_key_shadow_released(
            key_id, ALICE, server_key_public=public
        )
        assert releases["shadow_retrieval"].value == document_key
    async with client_of(cluster, 1) as client:
        releases["schnorr"] = await client.sign_schnorr_released(key_id, ALICE, MESSAGE)
    async with client_of(cluster, 2) as client:
        releases["ecdsa"] = await client.sign_ecdsa_released(key_id, ALICE, MESSAGE)

    # a running node's database is locked; a private copy of it can be read
    running = audit("verify", "--db", str(db_of(cluster[0])))
    assert running.returncode == 2 and "locked: its node is running" in running.stderr
    copy = audit("verify", "--db", str(db_of(cluster[0])), "--snapshot", "--quiet")
    assert copy.returncode == 0, copy.stdout + copy.stderr
    assert sorted(p.name for p in cluster[0].directory.iterdir() if p.name.startswith(".db")) == []
    assert cluster.terminate_all() == [0, 0, 0]

    masters = {"retrieval": 2, "shadow_retrieval": 0, "schnorr": 1, "ecdsa": 2}
    for node in cluster:
        entries = exported(node, tmp_path)
        assert all(entry["node"] == "0x" + node.node_id.hex() for entry in entries)
        assert all(entry["requester"] == "0x" + ALICE.address.hex() for entry in entries)
        assert all(entry["key_id"] == "0x" + key_id.hex() for entry in entries)
        operations = [entry["operation"] for entry in entries]
        assert operations[:2] == ["generation", "store"]
        assert entries[0]["master"] == "0x" + cluster[0].node_id.hex()
        assert entries[1]["master"] == "0x" + cluster[1].node_id.hex()
        by_session = {entry["session"]: entry for entry in entries[2:]}
        assert len(by_session) == len(entries) - 2
        for kind, released in releases.items():
            receipts = released.receipts
            assert receipts is not None
            facts = receipts.facts
            took_part = node.node_id in facts.participants
            entry = by_session.get("0x" + facts.session_id.hex())
            assert (entry is not None) == took_part, (node.name, kind)
            if entry is None:
                continue
            assert entry["operation"] == kind
            assert entry["master"] == "0x" + cluster[masters[kind]].node_id.hex()
            assert entry["participants"] == ["0x" + n.hex() for n in facts.participants]
            assert entry["receipt"] == "0x" + receipts.receipt_of(node.node_id).hex()  # type: ignore[union-attr]
            signing = kind in ("schnorr", "ecdsa")
            assert entry["message_hash"] == ("0x" + MESSAGE.hex() if signing else None)
        assert len(releases["ecdsa"].receipts.facts.participants) == 3  # type: ignore[union-attr]
        checked = audit("verify", "--config", str(node.config_path))
        assert checked.returncode == 0, checked.stdout + checked.stderr
        assert "verified: the chain is whole" in checked.stdout
        assert f"audit log of node 0x{node.node_id.hex()}: {len(entries)} entries" in checked.stdout

    # tampering with a real database is found, at its position
    target = cluster[1]
    path = str(db_of(target))
    db = plyvel.DB(path)
    original = {i: db.get(entry_key(i)) for i in range(4)}
    record = bytearray(original[1])
    record[100] ^= 0x01
    db.put(entry_key(1), bytes(record), sync=True)
    db.close()
    changed = audit("verify", "--db", path, "--quiet")
    assert changed.returncode == 1
    assert "PROBLEM entry 1: its signature is not the node's" in changed.stdout
    db = plyvel.DB(path)
    db.put(entry_key(1), original[1], sync=True)
    db.delete(entry_key(2), sync=True)
    db.close()
    removed = audit("verify", "--db", path, "--quiet")
    assert removed.returncode == 1 and "PROBLEM entry 2: entry 2 is missing" in removed.stdout
    db = plyvel.DB(path)
    db.put(entry_key(2), original[3], sync=True)
    db.put(entry_key(3), original[2], sync=True)
    db.close()
    reordered = audit("verify", "--db", path, "--quiet")
    assert reordered.returncode == 1
    assert "PROBLEM entry 2: holds entry 3 (moved or reordered)" in reordered.stdout
    assert "PROBLEM entry 3: holds entry 2 (moved or reordered)" in reordered.stdout
    db = plyvel.DB(path)
    db.put(entry_key(2), original[2], sync=True)
    db.put(entry_key(3), original[3], sync=True)
    db.close()
    assert audit("verify", "--db", path, "--quiet").returncode == 0


# --- a database that fills up -----------------------------------------------------------------


@pytest.fixture
def small_disk(tmp_path: Path) -> Any:
    """A 4 MiB tmpfs (the node's database goes there), unmounted at the end."""
    mount = tmp_path / "small-disk"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=4m,mode=0700", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.fail(f"this test mounts a small tmpfs and needs root for it: {done.stderr}")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(directory: Path) -> Path:
    """Write a file until the filesystem is full."""
    filler = directory / "filler"
    with open(filler, "wb", buffering=0) as out:
        for size in (65536, 4096, 1):
            try:
                while out.write(b"\x00" * size):
                    pass
            except OSError:
                pass
    return filler


async def shadow_status(
    session: aiohttp.ClientSession, node: NodeProcess, key_id: bytes
) -> tuple[int, Any]:
    path = f"/shadow/{key_id.hex()}/{sign_recoverable(ALICE.secret, key_id).hex()}"
    async with session.get(URL(node.url + path, encoded=True)) as response:
        return response.status, json.loads(await response.read())


async def test_a_node_whose_log_cannot_be_written_releases_nothing(
    make_cluster: ClusterFactory, small_disk: Path, tmp_path: Path
) -> None:
    cluster = make_cluster(3, seed=402)
    full = cluster[0]
    full.write_config(cluster.addresses, {"path": str(small_disk / "db")})
    cluster.start()
    cluster.wait_ready()
    key_id = sha256(b"audited on a small disk").digest()
    async with client_of(cluster, 1) as client:
        public = await client.generate_server_key(key_id, ALICE, threshold=1)
        await store_key(client, key_id, public)
    filler = fill(small_disk)
    answered = failed = 0
    async with aiohttp.ClientSession() as session:
        for _ in range(40):  # the log's last page may hold a few more entries
            status, body = await shadow_status(session, full, key_id)
            if status == 200:
                answered += 1
                continue
            assert (status, body) == (500, f'"{AUDIT_LOG_FAILURE_TEXT}"')
            assert "decrypt_shadows" not in str(body)
            failed += 1
            if failed == 3:
                break
        assert failed == 3, "the full disk never failed a write"
        full.wait_for_log("could not write audit entry")
        # the others serve the key without the node that cannot log
        for index in (1, 2):
            async with client_of(cluster, index) as client:
                released = await client.retrieve_document_key_shadow_released(
                    key_id, ALICE, server_key_public=public
                )
                assert released.receipts is not None
                assert full.node_id not in released.receipts.facts.participants
    assert cluster.terminate_all()[1:] == [0, 0]
    os.remove(filler)
    entries = exported(full, tmp_path)
    shadows = [e for e in entries if e["operation"] == "shadow_retrieval"]
    mastered = [e for e in shadows if e["master"] == "0x" + full.node_id.hex()]
    assert len(mastered) == answered
    assert [e for e in shadows if e["master"] != "0x" + full.node_id.hex()] == []
