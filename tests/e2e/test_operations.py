"""Operating real node processes: `status`, `health`, `/metrics` after real sessions, the
cause of "Consensus unreachable" shown by the CLI, start-up logs naming missing peers, an
online snapshot restored into a node, configs from `secretstore configs`, a port clash."""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from secretstore.crypto.keys import KeyPair
from secretstore.crypto.rng import SeededRng
from tests.e2e.cluster import (
    NODE_COMMAND,
    LocalCluster,
    NodeProcess,
    free_ranges,
    metric,
    scrape,
    wait_until,
)
from tests.e2e.conftest import ClusterFactory

pytestmark = pytest.mark.e2e

SECRETSTORE = (sys.executable, "-m", "secretstore.cli.main")
REQUESTER = KeyPair.generate(SeededRng(b"operations requester"))


def secretstore(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*SECRETSTORE, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        stdin=subprocess.DEVNULL,
    )


@pytest.fixture
def secret_file(tmp_path: Path) -> Path:
    path = tmp_path / "requester.secret"
    path.write_text(REQUESTER.secret.to_bytes().hex())
    return path


def key_args(node: NodeProcess, key_id: str, secret_file: Path) -> list[str]:
    return ["--node", node.url, "--key-id", key_id, "--secret-file", str(secret_file)]


def test_status_metrics_and_the_cause_of_consensus_unreachable(
    make_cluster: ClusterFactory, secret_file: Path
) -> None:
    cluster = make_cluster(3)
    cluster.start()
    cluster.wait_ready()
    urls = [arg for node in cluster for arg in ("--node", node.url)]

    status = secretstore("status", *urls)
    assert status.returncode == 0, status.stderr
    rows = status.stdout.splitlines()
    assert rows[0].split() == ["NODE", "NODE", "ID", "STATE", "PEERS", "KEYS", "UPTIME", "VERSION"]
    for node, row in zip(cluster, rows[1:], strict=True):
        assert row.split()[:5] == [node.url, node.short_id, "ready", "2/2", "0"], row
    health = secretstore("health", "--config", str(cluster[0].config_path), "--ready")
    assert health.returncode == 0 and "ready" in health.stdout, health

    # Sessions of every role on every node, then what /metrics says about them.
    key_id = "0x" + "a1" * 32
    made = secretstore(
        "server-key-generate", *key_args(cluster[0], key_id, secret_file), "--threshold", "1"
    )
    assert made.returncode == 0, made.stderr
    stored = secretstore("document-key-store", *key_args(cluster[1], key_id, secret_file))
    assert stored.returncode == 0, stored.stderr
    shadow = secretstore("document-key-shadow", *key_args(cluster[2], key_id, secret_file))
    assert shadow.returncode == 0, shadow.stderr
    assert len(json.loads(shadow.stdout)["decrypt_shadows"]) == 2
    signed = secretstore(
        "sign-schnorr", *key_args(cluster[0], key_id, secret_file), "--hash", "77" * 32
    )
    assert signed.returncode == 0 and "verified: against the server key" in signed.stdout, signed

    first = scrape(cluster[0])
    assert (
        metric(
            first,
            "secretstore_sessions_finished_total",
            kind="server_key_generation",
            role="master",
        )
        == 1
    )
    assert (
        metric(first, "secretstore_sessions_finished_total", kind="schnorr_signing", role="master")
        == 1
    )
    assert (
        metric(first, "secretstore_http_requests_total", route="generate_server_key", status="200")
        == 1
    )
    assert (
        metric(first, "secretstore_http_request_duration_seconds_count", route="sign_schnorr") == 1
    )
    assert metric(first, "secretstore_peers_connected") == 2
    assert metric(first, "secretstore_peers_configured") == 2
    assert metric(first, "secretstore_keys_stored") == 1
    assert metric(first, "secretstore_mesh_frames_total", direction="out") > 0
    assert metric(first, "secretstore_mesh_bytes_total", direction="in") > 0
    assert metric(first, "process_resident_memory_bytes") > 0
    third = scrape(cluster[2])
    assert (
        metric(
            third, "secretstore_sessions_finished_total", kind="server_key_generation", role="slave"
        )
        == 1
    )
    assert (
        metric(
            third,
            "secretstore_sessions_finished_total",
            kind="document_key_shadow_retrieval",
            role="master",
        )
        == 1
    )

    # One node down: generation and ECDSA cannot go on, and the CLI says why.
    victim = cluster[2]
    victim.kill()
    wait_until(
        lambda: not cluster[0].is_ready() and not cluster[1].is_ready(),
        10,
        "the others to notice",
        cluster.logs,
    )
    other_key = "0x" + "a2" * 32
    refused = secretstore(
        "server-key-generate", *key_args(cluster[0], other_key, secret_file), "--threshold", "1"
    )
    assert refused.returncode == 1
    assert refused.stderr.strip() == (
        "secretstore server-key-generate: error: Consensus unreachable: key generation needs "
        f"every key server; 1 of 3 are not connected: {victim.short_id}"
    )
    ecdsa = secretstore(
        "sign-ecdsa", *key_args(cluster[1], key_id, secret_file), "--hash", "78" * 32
    )
    assert ecdsa.returncode == 1
    assert ecdsa.stderr.strip() == (  # ECDSA needs 2t + 1 = 3 holders
        "secretstore sign-ecdsa: error: Consensus unreachable: no version of the key is held by 3 "
        "reachable key servers (ECDSA needs 2t+1: 3 needed, at most 2 reachable)"
    )
    failed = scrape(cluster[0])
    assert (
        metric(
            failed,
            "secretstore_sessions_failed_total",
            kind="server_key_generation",
            role="master",
            error="ConsensusUnreachable",
        )
        == 1
    )
    assert (
        metric(failed, "secretstore_http_requests_total", route="generate_server_key", status="403")
        == 1
    )

    status = secretstore("status", *urls)
    assert status.returncode == 1
    lines = status.stdout.splitlines()
    assert (
        f"unreachable: cannot connect to 127.0.0.1:{victim.http_port} (connection refused)"
        in lines[3]
    )
    assert (
        f"{cluster[0].short_id}: not connected to 1 of the 2 other nodes: "
        f"{victim.short_id} (127.0.0.1:{victim.mesh_port})" in lines
    )
    not_ready = secretstore("health", "--node", cluster[0].url, "--ready")
    assert not_ready.returncode == 1 and "not ready: not connected to 1" in not_ready.stdout
    assert secretstore("health", "--node", victim.url).returncode == 1
    for node in cluster:
        assert "Traceback" not in node.log_text(), node.log_tail()


def test_start_up_names_the_missing_peers_until_the_mesh_is_complete(
    make_cluster: ClusterFactory,
) -> None:
    cluster = make_cluster(3)
    first, second, late = cluster.nodes
    first.start()
    second.start()
    for node in (first, second):
        node.wait_for_log(r"waiting for 2 other nodes to connect: ")
    expected = (
        rf"still not connected to 1 of 2 other nodes: {late.short_id} "
        rf"\(127\.0\.0\.1:{late.mesh_port}\)"
    )
    first.wait_for_log(expected, timeout=15)
    health = first.health()
    assert health is not None and health["ready"] is False
    assert health["missing"] == [
        {"node_id": "0x" + late.node_id.hex(), "address": f"127.0.0.1:{late.mesh_port}"}
    ]
    late.start()
    cluster.wait_ready()
    first.wait_for_log(r"mesh complete: all 2 other nodes connected")


def test_an_online_snapshot_restores_into_a_node_that_serves_its_share(
    make_cluster: ClusterFactory, secret_file: Path, tmp_path: Path
) -> None:
    cluster = make_cluster(3)
    cluster.start()
    cluster.wait_ready()
    keys = [f"0x{i:064x}" for i in range(1, 6)]
    for key_id in keys[:3]:
        made = secretstore(
            "server-key-generate", *key_args(cluster[1], key_id, secret_file), "--threshold", "1"
        )
        assert made.returncode == 0, made.stderr
    # A snapshot of node 1's database while the node runs and more keys are made.
    writer = subprocess.Popen(
        [
            *SECRETSTORE,
            "server-key-generate",
            *key_args(cluster[1], keys[3], secret_file),
            "--threshold",
            "1",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    snapshot = secretstore(
        "snapshot", "--config", str(cluster[0].config_path), "--out", str(tmp_path / "snapshot")
    )
    writer.communicate(timeout=60)
    assert snapshot.returncode == 0, snapshot.stderr
    assert re.search(r"snapshot: [345] keys, \d+ files, [\d.]+ MB, verified", snapshot.stdout), (
        snapshot.stdout
    )
    later = secretstore(
        "server-key-generate", *key_args(cluster[1], keys[4], secret_file), "--threshold", "1"
    )
    assert later.returncode == 0

    # Node 1 loses its disk; its snapshot goes in place; with node 3 down, every key it had
    # at the snapshot is served by nodes 1 and 2 together (t + 1 = 2: node 1's share is used).
    assert cluster.terminate_all() == [0, 0, 0]
    database = cluster[0].directory / "db"
    database.rename(cluster[0].directory / "lost-db")
    (tmp_path / "snapshot").rename(database)
    cluster[0].start()
    cluster[1].start()
    wait_until(
        lambda: cluster[0].connected() == {"0x" + cluster[1].node_id.hex()},
        30,
        "nodes 1 and 2 to connect",
        cluster.logs,
    )
    for key_id in keys[:3]:
        signed = secretstore(
            "sign-schnorr", *key_args(cluster[0], key_id, secret_file), "--hash", "55" * 32
        )
        assert signed.returncode == 0, signed.stderr
    missing = secretstore("server-key-retrieve", *key_args(cluster[0], keys[4], secret_file))
    assert missing.returncode == 1  # made after the snapshot: node 1 does not have it


def test_configs_from_the_configs_command_run_a_cluster(
    tmp_path: Path, processes: list[NodeProcess]
) -> None:
    mesh, http = free_ranges(3)
    out = tmp_path / "deploy"
    made = secretstore(
        "configs",
        "--out",
        str(out),
        "--nodes",
        "3",
        "--port",
        str(mesh),
        "--http-port",
        str(http),
        "--option",
        "keep_alive_interval = 1.0",
    )
    assert made.returncode == 0, made.stderr
    assert made.stdout.startswith(f"3 nodes in {out} (0 keys reused)")
    summary = json.loads((out / "cluster.json").read_text())
    assert [n["http"] for n in summary["nodes"]] == [
        f"http://127.0.0.1:{http + i}" for i in range(3)
    ]
    again = secretstore(
        "configs", "--out", str(out), "--nodes", "3", "--port", str(mesh), "--http-port", str(http)
    )
    assert "(3 keys reused)" in again.stdout
    started = []
    for i in range(3):
        directory = out / f"node{i + 1}"
        assert (directory / "node.toml").stat().st_mode & 0o077 == 0
        log = (directory / "node.log").open("ab")
        started.append(
            subprocess.Popen(
                [*NODE_COMMAND, "--config", str(directory / "node.toml")], stdout=log, stderr=log
            )
        )
        log.close()
    try:
        wait_until(
            lambda: (
                secretstore("status", "--cluster", str(out / "cluster.json"), timeout=20).returncode
                == 0
            ),
            30,
            "the generated cluster to be ready",
        )
    finally:
        for proc in started:
            proc.terminate()
        assert [proc.wait(timeout=20) for proc in started] == [0, 0, 0]


def test_a_taken_http_port_names_the_option(tmp_path: Path, processes: list[NodeProcess]) -> None:
    cluster = LocalCluster(tmp_path / "one", 1)
    node = cluster[0]
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", node.http_port))
        blocker.listen()
        result = subprocess.run(
            [*NODE_COMMAND, "--config", str(node.config_path)],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert result.returncode == 1
    assert (
        f"node failed: secretstore.http_port: cannot listen on 127.0.0.1:{node.http_port}: "
        "the port is in use by another process; choose another http_port"
    ) in result.stderr
    assert "Traceback" not in result.stderr
