"""The composition root in one process: real LevelDB, real TCP mesh, real HTTP on loopback."""

from __future__ import annotations

import asyncio
import logging
import socket
import subprocess
from collections.abc import Sequence
from pathlib import Path

import aiohttp
import pytest

from secretstore import __version__
from secretstore.cli.cluster import render_config
from secretstore.config.loader import load_config, parse_config
from secretstore.config.model import NodeAddress, NodeConfig
from secretstore.crypto.keys import KeyPair, sign_recoverable
from secretstore.crypto.rng import SeededRng
from secretstore.errors import ConfigError, StorageError
from secretstore.listen import ListenError
from secretstore.mesh.admission import AdmissionLimits
from secretstore.node import Node, check_supported, mesh_timings, run_node
from secretstore.observe.health import Health, PeerState
from secretstore.storage.leveldb import LevelDbKeyStorage
from secretstore.types import NodeId


def free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def configs(tmp_path: Path, count: int, **extra: str | float | bool) -> list[NodeConfig]:
    keys = [KeyPair.generate(SeededRng(100 + i)) for i in range(count)]
    ports = free_ports(2 * count)
    nodes = [NodeAddress(k.node_id, "127.0.0.1", ports[i]) for i, k in enumerate(keys)]
    out = []
    for i, key in enumerate(keys):
        text = render_config(
            key,
            index=i + 1,
            nodes=nodes,
            mesh_port=ports[i],
            http_port=ports[count + i],
            path=f"db{i}",
            extra={"keep_alive_interval": 1.0, **extra},
        )
        out.append(parse_config(text, tmp_path))
    return out


async def wait_ready(nodes: Sequence[Node], timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while not all(node.health().ready for node in nodes):
            await asyncio.sleep(0.01)


def url(node: Node, path: str) -> str:
    address = node.http_address
    assert address is not None
    return f"http://{address[0]}:{address[1]}{path}"


async def test_three_nodes_serve_a_key_and_keep_it_across_a_restart(tmp_path: Path) -> None:
    cfgs = configs(tmp_path, 3)
    nodes = [Node(c, rng=SeededRng(i)) for i, c in enumerate(cfgs)]
    requester = KeyPair.generate(SeededRng(9))
    key_id = bytes(range(32))
    sig = sign_recoverable(requester.secret, key_id).hex()
    try:
        for node in nodes:
            await node.start()
        await wait_ready(nodes)
        async with aiohttp.ClientSession() as http:
            async with http.get(url(nodes[0], "/health")) as response:
                health = await response.json()
            others = sorted(nodes[1:], key=lambda n: n.node_id)
            fields = ("node_id", "connected", "cluster_size", "ready", "presignatures")
            assert {k: health[k] for k in fields} == {
                "node_id": "0x" + nodes[0].node_id.hex(),
                "connected": ["0x" + n.node_id.hex() for n in others],
                "cluster_size": 3,
                "ready": True,
                "presignatures": {"own": 0, "held": 0, "keys": 0, "refilling": False, "made": 0},
            }
            assert health["version"] == __version__
            assert health["keys"] == 0
            assert health["missing"] == [] and health["reason"] is None
            assert health["uptime_seconds"] > 0
            async with http.post(url(nodes[1], f"/shadow/{key_id.hex()}/{sig}/1")) as response:
                assert response.status == 200
                public = await response.json()
            for node in nodes:
                await node.stop()
            nodes = [Node(c, rng=SeededRng(10 + i)) for i, c in enumerate(cfgs)]
            for node in nodes:
                await node.start()
            await wait_ready(nodes)
            async with http.get(url(nodes[2], f"/server/{key_id.hex()}/{sig}")) as response:
                assert response.status == 200
                assert await response.json() == public
    finally:
        for node in nodes:
            await node.stop()


async def test_a_locked_database_fails_the_start_and_releases_the_ports(tmp_path: Path) -> None:
    [cfg] = configs(tmp_path, 1)
    first = Node(cfg)
    await first.start()
    try:
        assert first.health().ready  # a one-node cluster is complete at once
        second = Node(cfg)
        with pytest.raises(StorageError, match="in use"):
            await second.start()
        assert second.mesh_address is None and second.http_address is None
    finally:
        await first.stop()
    again = Node(cfg)  # the first one released the database and both ports
    await again.start()
    await again.stop()
    await again.stop()  # stopping twice is fine


async def test_a_taken_http_port_fails_the_start_and_closes_the_database(tmp_path: Path) -> None:
    [cfg] = configs(tmp_path, 1)
    blocker = socket.socket()
    blocker.bind(("127.0.0.1", cfg.secretstore.http_port))
    blocker.listen()
    try:
        with pytest.raises(ListenError) as raised:
            await Node(cfg).start()
    finally:
        blocker.close()
    assert raised.value.key_path == "secretstore.http_port"
    assert f"cannot listen on 127.0.0.1:{cfg.secretstore.http_port}" in str(raised.value)
    assert "in use by another process; choose another http_port" in str(raised.value)
    node = Node(cfg)  # the database lock was released
    await node.start()
    await node.stop()


async def test_a_taken_mesh_port_names_the_port_option(tmp_path: Path) -> None:
    [cfg] = configs(tmp_path, 1)
    blocker = socket.socket()
    blocker.bind(("127.0.0.1", cfg.secretstore.port))
    blocker.listen()
    try:
        with pytest.raises(ListenError) as raised:
            await Node(cfg).start()
    finally:
        blocker.close()
    assert raised.value.key_path == "secretstore.port"
    assert "choose another port" in str(raised.value)


async def test_run_node_stops_on_the_event(tmp_path: Path) -> None:
    [cfg] = configs(tmp_path, 1)
    stop = asyncio.Event()
    task = asyncio.create_task(run_node(cfg, stop))
    await asyncio.sleep(0.2)
    assert not task.done()
    stop.set()
    await asyncio.wait_for(task, 5)
    Node(cfg)  # and the config is still runnable


async def test_a_disabled_config_runs_nothing(tmp_path: Path) -> None:
    [cfg] = configs(tmp_path, 1, disable=True)
    await asyncio.wait_for(run_node(cfg, asyncio.Event()), 1)
    with pytest.raises(ConfigError) as raised:
        Node(cfg)
    assert raised.value.key_path == "secretstore.disable"


@pytest.mark.parametrize(
    ("options", "key_path", "says"),
    [
        ({"acl_contract": "registry"}, "secretstore.chain_rpc_url", 'acl_contract = "none"'),
        (
            {"server_set_contract": "0x" + "ab" * 20},
            "secretstore.chain_rpc_url",
            "JSON-RPC endpoint",
        ),
        (
            {"acl_contract": "registry", "chain_rpc_url": "http://127.0.0.1:8545"},
            "secretstore.registry_address",
            "registry_address",
        ),
        (
            {"service_contract_srv_gen": "registry"},
            "secretstore.chain_rpc_url",
            'service_contract_srv_gen = "none"',
        ),
        (
            {"service_contract": "registry", "chain_rpc_url": "http://127.0.0.1:8545"},
            "secretstore.registry_address",
            'service_contract = "registry"',
        ),
        (
            {"acl_contract": "registry", "chain_rpc_url": "ws://127.0.0.1:8546"},
            "secretstore.chain_rpc_url",
            "http://",
        ),
        (
            {"admin_public": KeyPair.generate(SeededRng(b"admin")).node_id.hex()},
            "secretstore.admin_public",
            "disable_auto_migrate = true",
        ),
    ],
)
def test_start_up_rules_name_the_option_and_the_fix(
    tmp_path: Path, options: dict[str, str], key_path: str, says: str
) -> None:
    [cfg] = configs(tmp_path, 1, **options)
    with pytest.raises(ConfigError) as raised:
        check_supported(cfg)
    assert raised.value.key_path == key_path
    assert says in str(raised.value)
    with pytest.raises(ConfigError):
        Node(cfg)


def test_chain_configs_that_pass_the_start_up_rules(tmp_path: Path) -> None:
    admin = KeyPair.generate(SeededRng(b"admin")).node_id.hex()
    [manual] = configs(tmp_path / "a", 1, admin_public=admin, disable_auto_migrate=True)
    check_supported(manual)
    [chain] = configs(
        tmp_path / "b",
        1,
        acl_contract="registry",
        server_set_contract="0x" + "cd" * 20,
        chain_rpc_url="http://127.0.0.1:8545",
        registry_address="0x" + "ab" * 20,
    )
    check_supported(chain)


def test_keep_alive_maps_to_the_mesh_timings() -> None:
    timings = mesh_timings(2.0)
    assert (timings.ping_interval, timings.dead_after) == (2.0, 6.0)


def _health(me: NodeId, everyone: list[NodeId], connected: set[NodeId]) -> Health:
    nodes = tuple(
        PeerState(n, f"127.0.0.1:{12000 + i}", n in connected, n == me)
        for i, n in enumerate(sorted(everyone))
    )
    return Health(me, "1.2.3", 5.0, 7, nodes)


def test_health_is_ready_only_with_every_peer() -> None:
    keys = [KeyPair.generate(SeededRng(i)).node_id for i in range(3)]
    assert not _health(keys[0], keys, {keys[1]}).ready
    assert _health(keys[0], keys, set(keys[1:])).ready
    assert _health(keys[0], keys[:1], set()).ready
    body = _health(keys[0], keys, set(keys[1:])).to_json()
    assert body["connected"] == sorted("0x" + k.hex() for k in keys[1:])


def test_health_names_the_missing_peers_and_their_addresses() -> None:
    keys = sorted(KeyPair.generate(SeededRng(i)).node_id for i in range(3))
    health = _health(keys[0], keys, {keys[1]})
    body = health.to_json()
    assert body["ready"] is False
    assert body["missing"] == [{"node_id": "0x" + keys[2].hex(), "address": "127.0.0.1:12002"}]
    assert body["reason"] == (
        f"not connected to 1 of the 2 other nodes: {keys[2][:4].hex()} (127.0.0.1:12002)"
    )
    assert [n["state"] for n in body["nodes"]] == ["this node", "connected", "not connected"]
    assert (body["version"], body["uptime_seconds"], body["keys"]) == ("1.2.3", 5.0, 7)
    assert "isolated" not in body and "chain" not in body and "node_set_change" not in body
    assert "refresh" not in body and "presignatures" not in body


def test_health_carries_a_running_refresh_and_the_presignature_pool() -> None:
    keys = sorted(KeyPair.generate(SeededRng(i)).node_id for i in range(3))
    nodes = tuple(PeerState(n, "127.0.0.1:12000", True, n == keys[0]) for n in keys)
    refresh = {"master": "0x" + keys[1].hex(), "phase": "taking part", "keys_done": 1}
    pool = {"own": 2, "held": 4, "keys": 1, "refilling": True, "made": 6}
    body = Health(keys[0], "1.2.3", 1.0, 1, nodes, refresh=refresh, presignatures=pool).to_json()
    assert (body["refresh"], body["presignatures"], body["ready"]) == (refresh, pool, True)


def test_health_of_a_node_outside_the_key_server_set_says_so() -> None:
    keys = sorted(KeyPair.generate(SeededRng(i)).node_id for i in range(3))
    others = tuple(PeerState(n, "127.0.0.1:12000", True) for n in keys[1:])
    chain = {"trusted": True, "block": 7}
    body = Health(keys[0], "1.2.3", 1.0, 0, others, chain=chain, isolated=True).to_json()
    assert (body["ready"], body["isolated"], body["chain"]) == (False, True, chain)
    assert body["reason"] == "this node is not in the key server set"
    nobody = Health(keys[0], "1.2.3", 1.0, 0, (), isolated=True)
    assert nobody.reason == "this node is not in the key server set (none is known yet)"


async def test_the_limits_reach_the_session_table_and_the_mesh(tmp_path: Path) -> None:
    [cfg] = configs(
        tmp_path,
        1,
        max_sessions_per_peer=7,
        max_pending_handshakes=20,
        max_pending_handshakes_per_address=3,
        reserved_handshakes_for_nodes=5,
    )
    node = Node(cfg)
    await node.start()
    try:
        assert node._driver is not None and node._transport is not None
        assert node._driver.core.max_sessions_per_peer == 7
        assert node._transport.admission.limits == AdmissionLimits(20, 3, 5)
    finally:
        await node.stop()


async def test_a_database_and_config_others_can_read_are_reported_at_start(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    [cfg] = configs(tmp_path, 1)
    source = tmp_path / "node.toml"
    key = cfg.secretstore.key_pair
    source.write_text(
        render_config(
            key,
            index=1,
            nodes=list(cfg.secretstore.nodes),
            mesh_port=cfg.secretstore.port,
            http_port=cfg.secretstore.http_port,
            path="db",
        )
    )
    source.chmod(0o644)
    db = tmp_path / "db"
    LevelDbKeyStorage(db).close()  # made in this process, whose umask may let others read
    db.chmod(0o755)
    config = load_config(source)
    caplog.set_level(logging.WARNING, logger="secretstore.node")
    node = Node(config)
    await node.start()
    try:
        assert node.health().ready
    finally:
        await node.stop()
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 2, warnings
    assert warnings[0].startswith(f"the key database {db} is readable or writable by group")
    assert f"{db} (mode 0755)" in warnings[0] and f"chmod -R go-rwx {db}" in warnings[0]
    assert warnings[1].startswith(f"the config file holding self_secret {source}")
    assert key.secret.to_bytes().hex() not in "".join(warnings)
    # after the fix the warning says nothing more
    subprocess.run(["chmod", "-R", "go-rwx", str(db), str(source)], check=True)
    caplog.clear()
    node = Node(load_config(source))
    await node.start()
    await node.stop()
    assert not [r for r in caplog.records if r.levelno == logging.WARNING]
