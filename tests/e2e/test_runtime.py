"""Real `secretstore-node` processes: mesh formation, refusals, restarts, durability, exits."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from secretstore.crypto.keys import KeyPair, sign_recoverable
from secretstore.crypto.rng import SeededRng
from tests.e2e.cluster import (
    NODE_COMMAND,
    LocalCluster,
    NodeProcess,
    free_ports,
    http,
    wait_until,
)
from tests.e2e.conftest import ClusterFactory

pytestmark = pytest.mark.e2e

#: How long a refused node is watched to see that it never joins.
REFUSAL_WINDOW = 1.5


def hex_ids(nodes: list[NodeProcess]) -> set[str]:
    return {"0x" + node.node_id.hex() for node in nodes}


def assert_full_mesh(cluster: LocalCluster) -> None:
    for node in cluster:
        others = [other for other in cluster if other is not node]
        assert node.connected() == hex_ids(others), node.name


def outsider_key(seed: str, below: list[NodeProcess]) -> KeyPair:
    """A key whose id is smaller than every node of `below`, so that it dials all of them."""
    floor = min(node.node_id for node in below)
    for attempt in range(10_000):
        key = KeyPair.generate(SeededRng(f"{seed}-{attempt}".encode()))
        if key.node_id < floor:
            return key
    raise AssertionError("no key below the cluster's ids")


def key_request(requester: KeyPair, index: int) -> tuple[str, str]:
    """A server key id and the requester's signature of it, as URL segments."""
    key_id = bytes([index]) * 32
    return key_id.hex(), sign_recoverable(requester.secret, key_id).hex()


def test_five_nodes_form_a_full_mesh_and_a_killed_node_rejoins(
    make_cluster: ClusterFactory,
) -> None:
    cluster = make_cluster(5)
    cluster.start()
    cluster.wait_ready()
    assert_full_mesh(cluster)
    for node in cluster:
        health = node.health()
        assert health is not None
        assert health["node_id"] == "0x" + node.node_id.hex()
        assert health["cluster_size"] == 5
        node.wait_for_log(r"mesh complete: all 4 other nodes connected")

    victim = cluster[2]
    assert victim.kill() == -signal.SIGKILL
    survivors = [node for node in cluster if node is not victim]
    wait_until(
        lambda: all("0x" + victim.node_id.hex() not in n.connected() for n in survivors),
        10,
        "the others to notice the killed node",
        cluster.logs,
    )
    for node in survivors:
        node.wait_for_log(rf"node {victim.short_id}: disconnected")
        assert not node.is_ready()
    victim.start()
    cluster.wait_ready()
    assert_full_mesh(cluster)


def test_a_stored_key_survives_sigterm_kill9_and_restarts(make_cluster: ClusterFactory) -> None:
    cluster = make_cluster(3)
    cluster.start()
    cluster.wait_ready()
    assert_full_mesh(cluster)
    requester = KeyPair.generate(SeededRng(b"e2e requester"))
    first_id, first_sig = key_request(requester, 1)
    status, first_public = http("POST", f"{cluster[0].url}/shadow/{first_id}/{first_sig}/1")
    assert status == 200, (first_public, cluster.logs())
    assert re.fullmatch(r"0x[0-9a-f]{128}", first_public)

    # SIGTERM: every node exits 0 after closing its links and its database.
    assert cluster.terminate_all() == [0, 0, 0]
    for node in cluster:
        node.wait_for_log(r"SIGTERM received")
        node.wait_for_log(r"key storage closed")
        node.wait_for_log(rf"node {node.short_id} stopped")

    cluster.start()  # the databases reopen (no stale lock) and hold the key
    cluster.wait_ready()
    status, body = http("GET", f"{cluster[1].url}/server/{first_id}/{first_sig}")
    assert (status, body) == (200, first_public)

    # An acknowledged write, then kill -9 of every node at once.
    second_id, second_sig = key_request(requester, 2)
    status, second_public = http("POST", f"{cluster[2].url}/shadow/{second_id}/{second_sig}/2")
    assert status == 200, (second_public, cluster.logs())
    cluster.kill_all()

    cluster.start()
    cluster.wait_ready()
    for node in cluster:
        assert http("GET", f"{node.url}/server/{first_id}/{first_sig}") == (200, first_public)
        assert http("GET", f"{node.url}/server/{second_id}/{second_sig}") == (200, second_public)
    status, body = http("POST", f"{cluster[1].url}/shadow/{second_id}/{second_sig}/1")
    assert status == 400 and "already generated" in body
    assert cluster.terminate_all() == [0, 0, 0]

    # No secret in any log: neither the node keys nor the requester's.
    logs = "\n".join(node.log_text() for node in cluster).lower()
    assert logs.count("\n") > 50  # the logs were written
    for secret in [node.key.secret for node in cluster] + [requester.secret]:
        assert secret.to_bytes().hex() not in logs
    assert "<redacted>" not in logs  # the backstop had nothing to catch


def test_a_node_with_an_unknown_key_is_refused(
    make_cluster: ClusterFactory, processes: list[NodeProcess]
) -> None:
    cluster = make_cluster(3)
    cluster.start()
    [port, http_port] = free_ports(2)
    outsider = NodeProcess(
        "outsider",
        cluster.root / "outsider",
        outsider_key("outsider", cluster.nodes),
        port,
        http_port,
    )
    processes.append(outsider)
    # It lists the cluster (and itself), but the cluster does not list it.
    outsider.write_config([*cluster.addresses, outsider.address])
    cluster.wait_ready()
    outsider.start()  # its first dials reach running nodes: each refusal is logged
    for node in cluster:
        node.wait_for_log(  # a warning naming the address and the reason
            r"WARN  node=\S+ secretstore.mesh.transport: refused inbound connection from "
            rf"127\.0\.0\.1:\d+: node {outsider.node_id.hex()[:16]}: "
            r"node is not in the allowed set"
        )
    outsider.wait_for_log(r"WARN .*\(127\.0\.0\.1:\d+\): outbound handshake failed")
    deadline = time.monotonic() + REFUSAL_WINDOW
    while time.monotonic() < deadline:
        health = outsider.health()
        assert health is not None and health["connected"] == [] and not health["ready"]
        for node in cluster:
            assert "0x" + outsider.node_id.hex() not in node.connected()
        time.sleep(0.1)
    assert outsider.running


def test_a_node_in_another_nodes_place_with_another_key_is_refused(
    make_cluster: ClusterFactory, processes: list[NodeProcess]
) -> None:
    cluster = make_cluster(3)
    low, middle, high = cluster.nodes  # sorted by id: low and middle dial high
    impostor = NodeProcess(
        "impostor",
        cluster.root / "impostor",
        KeyPair.generate(SeededRng(b"impostor")),
        high.mesh_port,
        high.http_port,
    )
    processes.append(impostor)
    # high's config, high's ports, high's place in the node list, but not high's key.
    impostor.write_config(cluster.addresses)
    impostor.start()
    wait_until(impostor.health, 30, "the impostor to listen", impostor.log_tail)
    low.start()  # their first dials to high's address reach the impostor: each is logged
    middle.start()
    wait_until(
        lambda: low.connected() == hex_ids([middle]) and middle.connected() == hex_ids([low]),
        30,
        "the two real nodes to connect",
        cluster.logs,
    )
    for node in (low, middle):
        node.wait_for_log(
            rf"WARN .*node {high.short_id} \(127\.0\.0\.1:{high.mesh_port}\): "
            r"outbound handshake failed"
        )
    deadline = time.monotonic() + REFUSAL_WINDOW
    while time.monotonic() < deadline:
        assert low.connected() == hex_ids([middle])
        assert middle.connected() == hex_ids([low])
        health = impostor.health()
        assert health is not None and health["connected"] == [] and not health["ready"]
        time.sleep(0.1)


def run_node_with(config_text: str, directory: Path) -> subprocess.CompletedProcess[str]:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "node.toml"
    path.write_text(config_text)
    return subprocess.run(
        [*NODE_COMMAND, "--config", str(path)],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=directory,
        check=False,
    )


SECRET = "11" * 32
BASE = (
    f'[secretstore]\nself_secret = "{SECRET}"\n'
    'acl_contract = "none"\nserver_set_contract = "none"\n'
)


@pytest.mark.parametrize(
    ("config", "names"),
    [
        (BASE + 'port = "eight"\n', ["secretstore.port", "expected an integer"]),
        (BASE + "colour = 1\n", ["secretstore.colour", "unknown option"]),
        (BASE + 'nodes = ["abc@127.0.0.1:1"]\n', ["secretstore.nodes[0]"]),
        (
            f'[secretstore]\nself_secret = "{SECRET}"\n',
            [
                "secretstore.chain_rpc_url",
                "acl_contract and server_set_contract need an Ethereum JSON-RPC endpoint",
                'acl_contract = "none", server_set_contract = "none"',
            ],
        ),
    ],
    ids=["port", "unknown-option", "nodes", "chain-options"],
)
def test_a_bad_config_exits_2_naming_the_key(tmp_path: Path, config: str, names: list[str]) -> None:
    result = run_node_with(config, tmp_path)
    assert result.returncode == 2, result.stderr
    for name in names:
        assert name in result.stderr
    assert SECRET not in result.stderr + result.stdout
    assert not (tmp_path / "db").exists()


def test_a_missing_config_file_exits_2(tmp_path: Path) -> None:
    result = subprocess.run(
        [*NODE_COMMAND, "--config", str(tmp_path / "absent.toml")],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 2
    assert "absent.toml" in result.stderr and "not found" in result.stderr


def test_a_disabled_node_exits_0_saying_so(tmp_path: Path) -> None:
    result = run_node_with("[secretstore]\ndisable = true\n", tmp_path)
    assert result.returncode == 0, result.stderr
    assert "disabled" in result.stderr


def test_a_node_whose_database_is_in_use_exits_1(make_cluster: ClusterFactory) -> None:
    cluster = make_cluster(1)
    node = cluster[0]
    node.start()
    cluster.wait_ready()
    result = subprocess.run(
        [*NODE_COMMAND, "--config", str(node.config_path)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 1
    assert "in use" in result.stderr
    assert node.is_ready()  # the first one is unharmed
    assert node.terminate() == 0


def test_the_cluster_command_runs_and_stops_a_cluster(tmp_path: Path) -> None:
    mesh_base, http_base = _two_free_ranges(2)
    directory = tmp_path / "c"
    command = [
        sys.executable,
        "-m",
        "secretstore.cli.main",
        "cluster",
        "--nodes",
        "2",
        "--dir",
        str(directory),
        "--base-port",
        str(mesh_base),
        "--http-base-port",
        str(http_base),
    ]
    launcher = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        assert launcher.stdout is not None
        lines = []
        for line in launcher.stdout:
            lines.append(line)
            if line.startswith(("cluster ready", "a node exited", "not every node")):
                break
        assert lines[-1].startswith("cluster ready"), "".join(lines)
        summary = json.loads((directory / "cluster.json").read_text())
        for entry in summary["nodes"]:
            status, health = http("GET", entry["http"] + "/health")
            assert status == 200 and health["ready"] and health["node_id"] == entry["node_id"]
        launcher.send_signal(signal.SIGTERM)
        rest, _ = launcher.communicate(timeout=30)
        assert launcher.returncode == 0, "".join(lines) + rest
        assert "all nodes stopped" in rest
    finally:
        if launcher.poll() is None:
            launcher.kill()
            launcher.wait()
    for name in ("node1", "node2"):
        log = (directory / name / "node.log").read_text()
        assert "SIGTERM received" in log and "key storage closed" in log
    again = subprocess.run(
        [*command, "--write-only"], capture_output=True, text=True, timeout=30, check=False
    )
    assert again.returncode == 0 and "(2 configs reused)" in again.stdout
    assert json.loads((directory / "cluster.json").read_text()) == summary


def _two_free_ranges(count: int) -> tuple[int, int]:
    """Two bases of `count` consecutive free ports each (from the ephemeral range's start)."""
    bases: list[int] = []
    start = 20000 + (os.getpid() % 2000) * 10
    while len(bases) < 2:
        if all(_port_free(port) for port in range(start, start + count)):
            bases.append(start)
        start += count
    return bases[0], bases[1]


def _port_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def test_a_second_stop_signal_during_shutdown_does_not_kill_the_node(
    make_cluster: ClusterFactory,
) -> None:
    # A terminal's Ctrl-C reaches every process of its group, and the cluster launcher then
    # adds a SIGTERM of its own: the node must still shut down cleanly and exit 0.
    cluster = make_cluster(2)
    cluster.start()
    cluster.wait_ready()
    for node in cluster:
        assert node.process is not None
        node.process.send_signal(signal.SIGINT)
        node.wait_for_log(r"SIGINT received")
        node.process.send_signal(signal.SIGTERM)  # while shutting down
        node.wait_for_log(r"node \w+ stopped")
        if node.running:
            node.process.send_signal(signal.SIGTERM)  # after the node stopped, before exit
        assert node.wait_exit() == 0, node.log_tail()
        assert "key storage closed" in node.log_text()
