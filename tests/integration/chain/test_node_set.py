"""The key server set from the contract, on real in-process nodes (TCP mesh, LevelDB) and a
real anvil: the contract's set forms the cluster, an isolated node holds no connections, set
changes reconnect, auto-migration adds and removes nodes with their keys, and its traps are
clear errors."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path

import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families
from web3 import Web3

from secretstore.chain import abi
from secretstore.chain.client import ChainClient
from secretstore.chain.devchain import (
    ADD_KEY_SERVER,
    REMOVE_KEY_SERVER,
    Anvil,
    Deployment,
    DevChain,
    deploy_secret_store,
)
from secretstore.chain.node_set import confirm_gas
from secretstore.cli.cluster import render_config
from secretstore.config.loader import parse_config
from secretstore.config.model import NodeAddress, NodeConfig
from secretstore.crypto.keys import KeyPair, sign_recoverable
from secretstore.crypto.rng import SeededRng
from secretstore.node import Node
from secretstore.storage.leveldb import LevelDbKeyStorage
from secretstore.types import Hash256, ServerKeyId
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


def scraped_gauges(node: Node) -> dict[str, float]:
    text = generate_latest(node.metrics.registry).decode()
    return {
        sample.name: sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if not sample.labels
    }


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
    gauges = scraped_gauges(outsider)  # /metrics says the same
    assert (gauges["secretstore_chain_trusted"], gauges["secretstore_isolated"]) == (1.0, 1.0)
    assert 0 < gauges["secretstore_chain_block"] <= dev.block_number
    assert scraped_gauges(nodes[0])["secretstore_isolated"] == 0.0

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


async def mine_until(dev: DevChain, condition: Callable[[], bool], what: str) -> None:
    """Mine a block every 50 ms until `condition` holds (at most 60 s)."""
    deadline = time.monotonic() + 60
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        dev.mine(1)
        await asyncio.sleep(0.05)


def migration_done(dev: DevChain, deployment: Deployment, members: Sequence[KeyPair]) -> bool:
    current = set(dev.call(deployment.server_set, abi.GET_CURRENT_KEY_SERVERS))
    migrating = list(dev.call(deployment.server_set, abi.GET_MIGRATION_KEY_SERVERS))
    return not migrating and current == {k.address for k in members}


def stored(path: Path) -> dict[bytes, frozenset[bytes]]:
    """Key id → the nodes of its newest version, from a stopped node's LevelDB."""
    with LevelDbKeyStorage(path) as storage:
        out = {}
        for key_id in storage.ids():
            share = storage.get(key_id)
            assert share is not None
            out[bytes(key_id)] = frozenset(share.last_version().nodes)
        return out


async def test_auto_migration_adds_a_node_then_removes_one(
    tmp_path: Path,
    anvil: Anvil,
    dev: DevChain,
    started: list[Node],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    ports = free_ports(2 * len(KEYS))
    deployment = deploy_secret_store(dev, servers(ports, [0, 1, 2]))  # the migrating set
    configs = node_configs(tmp_path, anvil, deployment, ports, acl_contract="none")
    nodes = [Node(config, rng=SeededRng(i)) for i, config in enumerate(configs)]
    for node in nodes:
        await node.start()
        started.append(node)
    await mine_until(dev, lambda: all(n.health().ready for n in nodes[:3]), "the 3 nodes")
    requester = KeyPair.generate(SeededRng(b"node set requester"))
    key_ids = [ServerKeyId(bytes([i + 1]) * 32) for i in range(4)]
    for key_id in key_ids:
        signature = sign_recoverable(requester.secret, key_id)
        assert nodes[0].key_server is not None
        await nodes[0].key_server.generate_server_key(key_id, signature, 1)

    # the owner adds the 4th (with ether for its confirmation): the nodes migrate by themselves
    dev.fund(KEYS[3].address)
    dev.transact(deployment.server_set, ADD_KEY_SERVER, *servers(ports, [3])[0])
    await mine_until(dev, lambda: migration_done(dev, deployment, KEYS), "the migration to 4")
    await mine_until(
        dev, lambda: all(n.health().ready and n.health().cluster_size == 4 for n in nodes), "4"
    )
    assert "running the node set change of migration" in caplog.text
    assert "confirming migration" in caplog.text

    # then removes the 1st: the 3 others migrate, the 1st erases its keys once it completed
    dev.transact(deployment.server_set, REMOVE_KEY_SERVER, KEYS[0].address)
    await mine_until(dev, lambda: migration_done(dev, deployment, KEYS[1:]), "the migration to 3")
    await mine_until(dev, lambda: "keys erased" in caplog.text, "the 1st to erase its keys")
    assert nodes[0].health().isolated
    for node in nodes:
        await node.stop()
    started.clear()
    assert stored(tmp_path / "db0") == {}
    rest = frozenset(k.node_id for k in KEYS[1:])
    for i in (1, 2, 3):
        assert stored(tmp_path / f"db{i}") == {key_id: rest for key_id in key_ids}


@pytest.mark.parametrize("floor", [True, False])
async def test_every_confirmation_lands_in_one_block_the_completing_one_too(
    anvil: Anvil, dev: DevChain, floor: bool
) -> None:
    """Each node estimates its confirmMigration before the others' are mined, as a cheap one;
    the one mined last copies the migration set into the current set. With the gas floor it
    does not run out of gas (without it, it does: the migration stays unfinished)."""
    keys = KEYS
    deployment = deploy_secret_store(
        dev, [(k.node_id, f"127.0.0.1:{1000 + i}") for i, k in enumerate(keys[:3])]
    )
    dev.fund(keys[3].address)
    dev.transact(deployment.server_set, ADD_KEY_SERVER, keys[3].node_id, "127.0.0.1:2000")
    migration_id = Hash256(b"\x33" * 32)
    dev.transact(deployment.server_set, abi.START_MIGRATION, migration_id, sender=keys[0].address)
    clients = [ChainClient(anvil.url, key) for key in keys]
    dev.w3.provider.make_request("evm_setAutomine", [False])  # type: ignore[arg-type]
    try:
        for client in clients:
            await client.start()
        for client in clients:
            gas = confirm_gas(len(keys)) if floor else 0
            await client.transact(
                deployment.server_set, abi.CONFIRM_MIGRATION, migration_id, gas_floor=gas
            )
        dev.mine(1)
    finally:
        dev.w3.provider.make_request("evm_setAutomine", [True])  # type: ignore[arg-type]
        for client in clients:
            await client.stop()
    migrating = list(dev.call(deployment.server_set, abi.GET_MIGRATION_KEY_SERVERS))
    current = set(dev.call(deployment.server_set, abi.GET_CURRENT_KEY_SERVERS))
    if floor:
        assert migrating == [] and current == {k.address for k in keys}
    else:
        assert len(migrating) == 4 and len(current) == 3


@pytest.mark.parametrize(("size", "remove"), [(3, False), (16, False), (16, True)])
def test_the_confirmation_gas_covers_completing_the_migration(
    dev: DevChain, size: int, remove: bool
) -> None:
    """What the completing confirmMigration needs (estimated once every other node has
    confirmed), for a set growing or shrinking, is below the gas limit nodes send."""
    keys = [KeyPair.generate(SeededRng(b"gas %d" % i)) for i in range(size + 1)]
    deployment = deploy_secret_store(
        dev, [(k.node_id, f"127.0.0.1:{1000 + i}") for i, k in enumerate(keys[:size])]
    )
    dev.fund(keys[size].address)
    if remove:
        dev.transact(deployment.server_set, REMOVE_KEY_SERVER, keys[0].address)
        members = keys[1:size]
    else:
        dev.transact(deployment.server_set, ADD_KEY_SERVER, keys[size].node_id, "127.0.0.1:9")
        members = keys
    migration_id = Hash256(b"\x44" * 32)
    dev.transact(
        deployment.server_set, abi.START_MIGRATION, migration_id, sender=members[0].address
    )
    for key in members[:-1]:
        dev.transact(deployment.server_set, abi.CONFIRM_MIGRATION, migration_id, sender=key.address)
    needed = dev.w3.eth.estimate_gas(
        {
            "from": Web3.to_checksum_address("0x" + members[-1].address.hex()),
            "to": Web3.to_checksum_address("0x" + deployment.server_set.hex()),
            "data": "0x" + abi.CONFIRM_MIGRATION.calldata(migration_id).hex(),
        }
    )
    assert needed < confirm_gas(len(members)), (needed, confirm_gas(len(members)))


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
