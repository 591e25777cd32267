"""Real `secretstore-node` processes: the session limit per peer, mesh admission under a
stranger's connection flood, and the key database's file modes."""

from __future__ import annotations

import socket
import stat
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from secretstore.crypto.keys import KeyPair, sign_recoverable
from secretstore.crypto.rng import SeededRng
from tests.e2e.cluster import LocalCluster, NodeProcess, http
from tests.e2e.conftest import ClusterFactory

pytestmark = pytest.mark.e2e

REQUESTER = KeyPair.generate(SeededRng(b"e2e limits requester"))


def generate(node: NodeProcess, index: int) -> tuple[int, object]:
    key_id = index.to_bytes(32, "big")
    signature = sign_recoverable(REQUESTER.secret, key_id).hex()
    return http("POST", f"{node.url}/shadow/{key_id.hex()}/{signature}/1", timeout=30)


def test_max_sessions_per_peer_is_read_and_refusals_reach_the_client(
    make_cluster: ClusterFactory,
) -> None:
    cluster = make_cluster(3, extra={"max_sessions_per_peer": 1})
    cluster.start()
    cluster.wait_ready()
    master = cluster[0]
    with ThreadPoolExecutor(max_workers=16) as pool:
        answers = list(pool.map(lambda i: generate(master, i), range(1, 17)))
    statuses = [status for status, _ in answers]
    assert 200 in statuses, (answers, cluster.logs())
    busy = [body for status, body in answers if status == 500]
    assert busy, (answers, cluster.logs())  # 16 at once: some met a peer's limit of 1
    assert set(busy) == {'"Too many sessions: a key server is busy"'}
    assert set(statuses) <= {200, 500}
    refusal = rf"refusing new sessions from node {master.short_id}: 1 are open here, the limit is 1"
    assert any(node.log_text().count("refusing new sessions") for node in cluster[1:])
    for node in cluster[1:]:
        if "refusing new sessions" in node.log_text():
            node.wait_for_log(refusal)
    # the limit frees its slots: one at a time, every generation works
    for index in range(100, 103):
        status, body = generate(master, index)
        assert status == 200, (body, cluster.logs())


def idle_connection(port: int, source: str) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=5, source_address=(source, 0))
    sock.settimeout(1.0)
    return sock


def closed_at_once(sock: socket.socket) -> bool:
    """True when the node closes (or resets) the connection within the socket's timeout."""
    try:
        while sock.recv(4096):
            pass  # the node's HELLO
    except TimeoutError:
        return False
    except ConnectionError:
        return True
    return True


def test_a_peer_reconnects_while_a_stranger_holds_70_connections(
    make_cluster: ClusterFactory,
) -> None:
    cluster = make_cluster(2)
    cluster.start()
    cluster.wait_ready()
    dialer, victim = cluster[0], cluster[1]  # the smaller id dials the other
    assert dialer.kill() != 0
    flood = [idle_connection(victim.mesh_port, "127.0.0.2") for _ in range(70)]
    try:
        with ThreadPoolExecutor(max_workers=70) as pool:
            closed = list(pool.map(closed_at_once, flood))
        assert closed.count(False) == 4, closed  # the default limit per address
        victim.wait_for_log(r"refusing inbound connections from 127\.0\.0\.2: 4 handshakes")
        assert victim.log_text().count("refusing inbound connections from 127.0.0.2") == 1
        began = time.monotonic()
        dialer.start()
        cluster.wait_ready(timeout=8.0)  # before the stranger's handshakes time out (10 s)
        took = time.monotonic() - began
        assert took < 8.0
    finally:
        for sock in flood:
            sock.close()


def private_modes(root: Path) -> dict[str, int]:
    entries = [root, *root.rglob("*")]
    return {str(e.relative_to(root)): stat.S_IMODE(e.lstat().st_mode) for e in entries}


def database(node: NodeProcess) -> Path:
    return node.directory / "db"


def test_a_node_creates_its_database_private_and_reports_an_exposed_one(
    make_cluster: ClusterFactory,
) -> None:
    cluster: LocalCluster = make_cluster(2)
    cluster.start()
    cluster.wait_ready()
    for index in range(1, 6):
        status, body = generate(cluster[0], index)
        assert status == 200, (body, cluster.logs())
    assert cluster.terminate_all() == [0, 0]
    for node in cluster:
        modes = private_modes(database(node))
        assert modes.pop(".") == 0o700, node.name
        assert {"CURRENT", "LOCK", "LOG"} <= set(modes)
        assert set(modes.values()) == {0o600}, (node.name, modes)
        assert "readable or writable by group or others" not in node.log_text()
    # An operator loosened one node's database: the node says so and still serves the keys.
    node = cluster[1]
    path = database(node)
    path.chmod(0o755)
    for entry in path.iterdir():
        entry.chmod(0o644)
    cluster.start()
    cluster.wait_ready()
    line = node.wait_for_log(r"the key database .* is readable or writable by group or others.*")
    assert f"{path} (mode 0755)" in line.group(0) and f"chmod -R go-rwx {path}" in line.group(0)
    assert node.log_text().count("readable or writable by group or others") == 1
    key_id = (1).to_bytes(32, "big")
    signature = sign_recoverable(REQUESTER.secret, key_id).hex()
    status, _ = http("GET", f"{node.url}/server/{key_id.hex()}/{signature}")
    assert status == 200
