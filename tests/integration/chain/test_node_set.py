"""The key server set from the contract, on real in-process nodes (TCP mesh, LevelDB) and a
real anvil: the contract's set forms the cluster, an isolated node holds no connections, set
changes reconnect, and auto-migration's traps and its missing session are clear errors."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path

import pytest

from secretstore.chain import abi
from secretstore.chain.devchain import (
    ADD_KEY_SERVER,
    REMOVE_KEY_SERVER,
    Anvil,
    Deployment,
    DevChain,
    deploy_secret_store,
)
from secretstore.cli.cluster import render_config
from secretstore.config.loader import parse_config
from secretstore.config.model import NodeAddress, NodeConfig
from secretstore.crypto.keys import KeyPair
from secretstore.crypto.rng import SeededRng
from secretstore.node import Node
from tests.e2e.cluster import free_ports

pytestmark = pytest.mark.chain

KEYS = sorted(
    (KeyPair.generate(SeededRng(f"node-set-{i}".encode())) for i in range(4)),
    key=lambda k: k.node_id,
)


def node_configs(
    tmp_path: Path, chain: Anvil, deployment: Deployment | None, ports: list[int], **extra: object
) -> list[NodeConfig]:
    count = len(KEYS)
    options = {
        "keep_alive_interval": 1.0,
        "acl_contract": "registry",
        "server_set_contract": "registry",
        "chain_rpc_url": chain.url,
        "chain_poll_interval": 0.05,
        "chain_confirmations": 0,
        "chain_migration_delay": 2,
        "chain_retry_interval": 5,
        **extra,
    }
    if deployment is not None:
        options["registry_address"] = "0x" + deployment.registry.hex()
    out = []
    for i, key in enumerate(KEYS):
        text = render_config(
            key,
            index=i + 1,
            nodes=[NodeAddress(key.node_id, "127.0.0.1", ports[i])],
            mesh_port=ports[i],
            http_port=ports[count + i],
            path=f"db{i}",
            extra=options,  # type: ignore[arg-type]
        )
        out.append(parse_config(text, tmp_path))
    return out


def servers(ports: list[int], indices: Sequence[int]) -> list[tuple[bytes, str]]:
    return [(KEYS[i].node_id, f"127.0.0.1:{ports[i]}") for i in indices]


async def wait_for(condition: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.02)


def connected_to(node: Node, others: Sequence[Node]) -> bool:
    health = node.health()
    return health.connected == frozenset(o.node_id for o in others if o is not node)


@pytest.fixture
async def started() -> AsyncIterator[list[Node]]:
    nodes: list[Node] = []
    yield nodes
    for node in nodes:
        await node.stop()


async def test_the_contracts_set_forms_the_cluster_and_follows_its_changes(
    tmp_path: Path, anvil: Anvil, dev: DevChain, started: list[Node]
) -> None:
    ports = free_ports(2 * len(KEYS))
    deployment = deploy_secret_store(dev, servers(ports, [0, 1, 2]), server_set="OwnedKeyServerSet")
    configs = node_configs(tmp_path, anvil, deployment, ports, disable_auto_migrate=True)
    nodes = [Node(config, rng=SeededRng(i)) for i, config in enumerate(configs)]
    for node in nodes:
        await node.start()
        started.append(node)
    three, outsider = nodes[:3], nodes[3]
    await wait_for(lambda: all(n.health().ready for n in three), "the contract's 3 nodes")
    assert all(n.health().cluster_size == 3 for n in three)
    # the node the contract does not list is isolated: no links, never ready
    assert outsider.health().connected == frozenset()
    assert outsider.health().isolated and not outsider.health().ready
    assert all(n.health().chain["trusted"] for n in nodes)  # type: ignore[index]

    # the owner adds the 4th: everyone links it
    dev.transact(deployment.server_set, ADD_KEY_SERVER, *servers(ports, [3])[0])
    await wait_for(
        lambda: all(n.health().ready and n.health().cluster_size == 4 for n in nodes),
        "4 nodes linked",
    )

    # and removes the 1st: it drops every link and the others drop theirs to it
    dev.transact(deployment.server_set, REMOVE_KEY_SERVER, KEYS[0].address)
    rest = nodes[1:]
    await wait_for(lambda: all(connected_to(n, rest) for n in rest), "3 nodes without the 1st")
    await wait_for(lambda: nodes[0].health().isolated, "the 1st isolated")
    await wait_for(lambda: nodes[0].health().connected == frozenset(), "the 1st without links")
    assert not nodes[0].health().ready


async def test_an_address_change_reconnects_at_the_new_address(
    tmp_path: Path, anvil: Anvil, dev: DevChain, started: list[Node]
) -> None:
    ports = free_ports(2 * len(KEYS) + 1)
    deployment = deploy_secret_store(dev, servers(ports, [0, 1]), server_set="OwnedKeyServerSet")
    configs = node_configs(tmp_path, anvil, deployment, ports, disable_auto_migrate=True)
    first = Node(configs[0], rng=SeededRng(1))
    second = Node(configs[1], rng=SeededRng(2))
    for node in (first, second):
        await node.start()
        started.append(node)
    await wait_for(lambda: first.health().ready and second.health().ready, "2 nodes")
    # the 2nd moves to another port: stop it, start it there, and update the contract
    await second.stop()
    moved_text = render_config(
        KEYS[1],
        index=2,
        nodes=[],
        mesh_port=ports[-1],
        http_port=0,
        path="db1",
        extra={
            "acl_contract": "registry",
            "server_set_contract": "registry",
            "chain_rpc_url": anvil.url,
            "registry_address": "0x" + deployment.registry.hex(),
            "chain_poll_interval": 0.05,
            "chain_confirmations": 0,
            "disable_auto_migrate": True,
            "keep_alive_interval": 1.0,
        },
    )
    moved = Node(parse_config(moved_text, tmp_path), rng=SeededRng(3))
    await moved.start()
    started.append(moved)
    dev.transact(deployment.server_set, REMOVE_KEY_SERVER, KEYS[1].address)
    dev.transact(deployment.server_set, ADD_KEY_SERVER, KEYS[1].node_id, f"127.0.0.1:{ports[-1]}")
    await wait_for(
        lambda: first.cluster_nodes.get(KEYS[1].node_id) == ("127.0.0.1", ports[-1]),
        "the new address in the set",
    )
    await wait_for(lambda: first.health().ready and moved.health().ready, "the new address")


async def test_auto_migration_without_the_change_session_starts_nothing(
    tmp_path: Path,
    anvil: Anvil,
    dev: DevChain,
    started: list[Node],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    ports = free_ports(2 * len(KEYS))
    deployment = deploy_secret_store(dev, servers(ports, [0, 1, 2]))  # the migrating set
    configs = node_configs(tmp_path, anvil, deployment, ports)  # auto-migrate on (Parity's)
    nodes = [Node(config, rng=SeededRng(i)) for i, config in enumerate(configs)]
    for node in nodes:
        await node.start()
        started.append(node)
    await wait_for(lambda: all(n.health().ready for n in nodes[:3]), "the contract's 3 nodes")
    dev.transact(deployment.server_set, ADD_KEY_SERVER, *servers(ports, [3])[0])

    def refused() -> bool:
        dev.mine(1)  # blocks go by: past the migration delay (2 blocks)
        return "cannot run the node set change session" in caplog.text

    await wait_for(refused, "the refusal")
    for _ in range(5):
        dev.mine(1)
        await asyncio.sleep(0.06)
    assert list(dev.call(deployment.server_set, abi.GET_MIGRATION_KEY_SERVERS)) == []
    assert all(n.health().cluster_size == 3 for n in nodes[:3])  # the current set stays


async def test_the_simple_set_with_auto_migration_on_is_a_clear_error(
    tmp_path: Path,
    anvil: Anvil,
    dev: DevChain,
    started: list[Node],
    caplog: pytest.LogCaptureFixture,
) -> None:
    ports = free_ports(2 * len(KEYS))
    deployment = deploy_secret_store(dev, servers(ports, [0, 1]), server_set="OwnedKeyServerSet")
    configs = node_configs(tmp_path, anvil, deployment, ports)  # auto-migrate on: the trap
    nodes = [Node(configs[i], rng=SeededRng(i)) for i in (0, 1)]
    for node in nodes:
        await node.start()
        started.append(node)
    # Parity's nodes isolated themselves here; ours say why and keep the current set
    await wait_for(lambda: all(n.health().ready for n in nodes), "the 2 nodes")
    assert "needs disable_auto_migrate = true" in caplog.text


async def test_an_unset_registry_entry_isolates_and_says_so(
    tmp_path: Path,
    anvil: Anvil,
    dev: DevChain,
    started: list[Node],
    caplog: pytest.LogCaptureFixture,
) -> None:
    ports = free_ports(2 * len(KEYS))
    registry = dev.deploy("Registry")
    configs = node_configs(
        tmp_path, anvil, None, ports, registry_address="0x" + registry.hex(), acl_contract="none"
    )
    node = Node(configs[0], rng=SeededRng(0))
    await node.start()
    started.append(node)
    await wait_for(lambda: "no key server set contract" in caplog.text, "the warning")
    assert node.health().cluster_size == 0 and node.health().isolated
    assert not node.health().ready
