"""The local-cluster flow a new user tries: `secretstore cluster` runs 3 nodes, `secretstore
cluster add` brings a fourth in and moves every key onto it, `secretstore admin` hashes the set
and runs a (no-op) signed change with the keystore account, `secretstore cluster remove` takes
a node out after the change erased its keys; the keys stay retrievable throughout."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from secretstore.client.http_client import KeyServerClient
from secretstore.crypto.curve import Point
from secretstore.crypto.hashing import keccak256
from secretstore.crypto.keys import KeyPair, servers_set_hash
from secretstore.crypto.rng import SeededRng
from secretstore.storage.leveldb import LevelDbKeyStorage
from secretstore.types import NodeId
from tests.e2e.cluster import http, wait_until
from tests.e2e.test_runtime import _two_free_ranges

pytestmark = pytest.mark.e2e

ALICE = KeyPair.generate(SeededRng(b"local cluster change alice"))
CLI = (sys.executable, "-m", "secretstore.cli.main")
KEYS = [keccak256(b"local cluster key %d" % i) for i in range(5)]


def cli(*args: str, timeout: float = 120.0) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *args], capture_output=True, text=True, timeout=timeout, check=False
    )


def members(directory: Path) -> dict[str, dict[str, str]]:
    summary = json.loads((directory / "cluster.json").read_text())
    return {entry["name"]: entry for entry in summary["nodes"]}


async def make_keys(url: str) -> dict[bytes, Point]:
    async with KeyServerClient(url) as client:
        return {key: await client.create_document_key(key, ALICE, 1) for key in KEYS}


async def read_keys(url: str) -> dict[bytes, Point]:
    async with KeyServerClient(url) as client:
        return {key: await client.retrieve_document_key_shadow(key, ALICE) for key in KEYS}


def test_add_then_remove_a_node_on_a_local_cluster(tmp_path: Path) -> None:
    mesh_base, http_base = _two_free_ranges(4)
    directory = tmp_path / "c"
    runner = subprocess.Popen(
        [
            *CLI,
            "cluster",
            "--nodes",
            "3",
            "--dir",
            str(directory),
            "--base-port",
            str(mesh_base),
            "--http-base-port",
            str(http_base),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []

    def collect() -> None:
        assert runner.stdout is not None
        lines.extend(runner.stdout)

    reader = threading.Thread(target=collect, daemon=True)
    reader.start()
    try:
        wait_until(lambda: any(line.startswith("cluster ready") for line in lines), 60, "ready")
        nodes = members(directory)
        keys = asyncio.run(make_keys(nodes["node1"]["http"]))

        hashed = cli("admin", "hash", "--node", nodes["node1"]["http"])
        ids = [NodeId(bytes.fromhex(entry["node_id"][2:])) for entry in nodes.values()]
        assert hashed.stdout.strip() == "0x" + servers_set_hash(ids).hex(), hashed

        added = cli("cluster", "add", "--dir", str(directory))
        assert added.returncode == 0, added.stdout + added.stderr
        assert "done: the node set is now 4 nodes" in added.stdout
        nodes = members(directory)
        assert list(nodes) == ["node1", "node2", "node3", "node4"]
        assert asyncio.run(read_keys(nodes["node4"]["http"])) == keys

        # the administrator's keystore account signs a change by hand (the same set: no-op)
        admin = directory / "admin"
        signed = cli(
            "admin",
            "change",
            "--node",
            nodes["node3"]["http"],
            "--keystore",
            str(admin / "keys"),
            "--account",
            (admin / "account").read_text().strip(),
            "--password-file",
            str(admin / "password"),
            "--new-set",
            *(entry["node_id"] for entry in nodes.values()),
        )
        assert signed.returncode == 0, signed.stdout + signed.stderr
        assert "old set: 4 nodes" in signed.stdout and "done" in signed.stdout
        status = cli("admin", "status", "--node", nodes["node3"]["http"])
        assert "no node set change runs" in status.stdout

        removed = cli("cluster", "remove", "--dir", str(directory), "--node", "2")
        assert removed.returncode == 0, removed.stdout + removed.stderr
        assert list(members(directory)) == ["node1", "node3", "node4"]
        wait_until(lambda: http("GET", nodes["node2"]["http"] + "/health")[0] == 0, 30, "stop")
        with LevelDbKeyStorage(directory / "node2" / "db") as storage:
            assert list(storage.ids()) == []
        for name in ("node1", "node3", "node4"):
            assert asyncio.run(read_keys(nodes[name]["http"])) == keys
        wait_until(
            lambda: any("node2 left the cluster" in line for line in lines), 10, "the runner"
        )

        runner.send_signal(signal.SIGTERM)
        assert runner.wait(timeout=30) == 0, "".join(lines)
    finally:
        if runner.poll() is None:
            runner.kill()
            runner.wait()
        reader.join(timeout=5)
    assert not (directory / "cluster.pid").exists()
    # running the command again runs the three members left, not node1..node3
    again = cli("cluster", "--dir", str(directory), "--write-only")
    assert again.returncode == 0 and "3 nodes in" in again.stdout, again.stdout + again.stderr
    assert list(members(directory)) == ["node1", "node3", "node4"]
