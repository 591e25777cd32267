"""The service contracts served by real in-process nodes (TCP mesh, LevelDB) on a real anvil:
every API end to end, the cursor in the node's database, answers sent at most once."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import pytest

from secretstore.chain.devchain import (
    ADD_KEY_SERVER,
    REMOVE_KEY_SERVER,
    Anvil,
    DevChain,
    deploy_secret_store,
    deploy_services,
)
from secretstore.chain.services import abi
from secretstore.chain.services.client import ServiceClient
from secretstore.chain.services.cursor import CURSOR_PREFIX, LevelDbCursors
from secretstore.cli.cluster import render_config
from secretstore.client.helpers import (
    generate_document_key,
    key_from_shadow,
    unwrap_document_key,
)
from secretstore.config.loader import parse_config
from secretstore.config.model import NodeAddress, NodeConfig
from secretstore.crypto.curve import Point
from secretstore.crypto.keys import KeyPair
from secretstore.crypto.rng import SeededRng
from secretstore.node import Node
from secretstore.storage.leveldb import LevelDbKeyStorage
from secretstore.types import Address
from tests.e2e.cluster import free_ports

pytestmark = pytest.mark.chain

KEYS = sorted(
    (KeyPair.generate(SeededRng(f"services-{i}".encode())) for i in range(3)),
    key=lambda k: k.node_id,
)
CLIENT = KeyPair.generate(SeededRng(b"services client"))
T = TypeVar("T")


def node_configs(
    tmp_path: Path, chain: Anvil, registry: Address, **extra: object
) -> list[NodeConfig]:
    ports = free_ports(2 * len(KEYS))
    nodes = [NodeAddress(k.node_id, "127.0.0.1", ports[i]) for i, k in enumerate(KEYS)]
    options = {
        "keep_alive_interval": 1.0,
        "acl_contract": "none",
        "server_set_contract": "none",
        "service_contract": "registry",
        "chain_rpc_url": chain.url,
        "registry_address": "0x" + registry.hex(),
        "chain_poll_interval": 0.05,
        "chain_confirmations": 0,
        "chain_retry_interval": 3,
        "disable_auto_migrate": True,
        **extra,
    }
    return [
        parse_config(
            render_config(
                key,
                index=i + 1,
                nodes=nodes,
                mesh_port=ports[i],
                http_port=ports[len(KEYS) + i],
                path=f"db{i}",
                extra=options,  # type: ignore[arg-type]
            ),
            tmp_path,
        )
        for i, key in enumerate(KEYS)
    ]


async def wait_for(condition: Callable[[], object], what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)


@dataclass
class World:
    nodes: list[Node]
    client: ServiceClient
    service: Address
    dev: DevChain
    server_set: Address
    #: the block of the last server key generation request
    requested: int = 0

    def nonces(self) -> list[int]:
        """How many transactions each node's account sent."""
        w3 = self.dev.w3
        return [w3.eth.get_transaction_count(w3.to_checksum_address(k.address.hex())) for k in KEYS]

    async def generate(self, key_id: bytes) -> Point:
        sent = await in_thread(self.client.generate_server_key, key_id, 1)
        self.requested = sent.block
        event = await in_thread(self.client.generated, key_id, sent.block, 30)
        assert event.name == "ServerKeyGenerated"
        return Point.from_bytes(bytes(event.args["serverKeyPublic"]))


@pytest.fixture
async def cluster(tmp_path: Path, anvil: Anvil, dev: DevChain) -> AsyncIterator[World]:
    servers = [(k.node_id, f"127.0.0.1:{9000 + i}") for i, k in enumerate(KEYS)]
    deployment = deploy_secret_store(dev, servers, server_set="OwnedKeyServerSet")
    services = deploy_services(dev, deployment.registry, deployment.server_set, combined=True)
    service = services["secretstore_service"]
    dev.fund(CLIENT.address)
    configs = node_configs(tmp_path, anvil, deployment.registry)
    nodes = [Node(config, rng=SeededRng(i)) for i, config in enumerate(configs)]
    for node in nodes:
        await node.start()
    client = ServiceClient(
        anvil.url,
        CLIENT,
        generation=service,
        retrieval=service,
        store=service,
        shadow_retrieval=service,
    )
    world = World(nodes, client, service, dev, deployment.server_set)
    try:
        await wait_for(lambda: all(n.health().ready for n in nodes), "the cluster")
        yield world
    finally:
        for node in world.nodes:
            await node.stop()


async def in_thread(function: Callable[..., T], *args: object) -> T:
    return await asyncio.get_running_loop().run_in_executor(None, function, *args)


async def test_every_service_end_to_end(cluster: World) -> None:
    client = cluster.client
    key_id = b"\x21" * 32
    public = await cluster.generate(key_id)

    sent = await in_thread(client.retrieve_server_key, key_id)
    event = await in_thread(client.retrieved, key_id, sent.block, 30)
    assert event.name == "ServerKeyRetrieved"
    assert bytes(event.args["serverKeyPublic"]) == public.to_bytes()

    generated = generate_document_key(CLIENT, public, SeededRng(b"doc"))
    sent = await in_thread(
        client.store_document_key,
        key_id,
        generated.common_point.to_bytes(),
        generated.encrypted_point.to_bytes(),
    )
    event = await in_thread(client.stored, key_id, sent.block, 30)
    assert event.name == "DocumentKeyStored"

    sent = await in_thread(client.retrieve_document_key_shadow, key_id)
    common, personal = await in_thread(client.shadow_retrieved, key_id, sent.block, 30)
    assert common.name == "DocumentKeyCommonRetrieved"
    assert len(personal) == 2
    key = key_from_shadow(
        CLIENT,
        Point.from_bytes(bytes(personal[0].args["decryptedSecret"])),
        Point.from_bytes(bytes(common.args["commonPoint"])),
        [bytes(e.args["shadow"]) for e in personal],
    )
    assert key == unwrap_document_key(CLIENT, generated.encrypted_key)


def cursors(node: Node) -> dict[bytes, bytes]:
    """The service cursor records in a node's database."""
    storage = node._storage
    assert isinstance(storage, LevelDbKeyStorage)

    def read(db: object) -> dict[bytes, bytes]:
        return dict(db.iterator(prefix=CURSOR_PREFIX))  # type: ignore[attr-defined]

    return storage.with_db("read", read)


async def test_the_cursor_is_kept_and_a_restarted_node_answers_nothing_twice(
    cluster: World, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    await cluster.generate(b"\x31" * 32)

    # the event needs only some of the nodes' answers: a node's cursor moves past the
    # request's block once its own answer is mined (or has failed), which may come later
    def cursor_of(node: Node) -> int:
        storage = node._storage
        assert isinstance(storage, LevelDbKeyStorage)
        cursor = LevelDbCursors(storage).get(cluster.service)
        return -1 if cursor is None else cursor.number

    await wait_for(
        lambda: all(cursor_of(node) >= cluster.requested for node in cluster.nodes),
        "every node's cursor to pass the request's block",
    )
    for node in cluster.nodes:
        assert list(cursors(node)) == [CURSOR_PREFIX + cluster.service]
    before = cluster.nonces()
    # every node restarts: each reads on from its cursor, nothing is answered again
    for node in cluster.nodes:
        await node.stop()
    restarted = [Node(node.config, rng=SeededRng(10 + i)) for i, node in enumerate(cluster.nodes)]
    cluster.nodes = restarted
    for node in restarted:
        await node.start()
    await wait_for(lambda: "resuming its logs after block" in caplog.text, "a resumed cursor")
    for _ in range(8):  # past the retry interval: pending requests are read again
        cluster.dev.mine(1)
        await asyncio.sleep(0.1)
    assert cluster.nonces() == before


async def test_a_request_mined_while_a_node_is_down_is_answered_from_its_cursor(
    cluster: World, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    key_id = b"\x41" * 32
    public = await cluster.generate(key_id)
    down = cluster.nodes[2]
    await down.stop()
    generated = generate_document_key(CLIENT, public, SeededRng(b"doc 2"))
    sent = await in_thread(
        cluster.client.store_document_key,
        key_id,
        generated.common_point.to_bytes(),
        generated.encrypted_point.to_bytes(),
    )
    await asyncio.sleep(0.5)  # the two others store and answer; the store needs all three
    assert not cluster.client.events(
        cluster.client.store, ("DocumentKeyStored",), key_id, sent.block
    )
    back = Node(down.config, rng=SeededRng(20))
    cluster.nodes[2] = back
    await back.start()
    event = await in_thread(cluster.client.stored, key_id, sent.block, 30)
    assert event.name == "DocumentKeyStored"
    assert "1 request(s)" in caplog.text


async def test_a_node_without_ether_says_so_and_answers_once_funded(
    cluster: World, caplog: pytest.LogCaptureFixture
) -> None:
    key_id = b"\x51" * 32
    public = await cluster.generate(key_id)
    poor = KEYS[1]
    cluster.dev.fund(poor.address, 0)
    generated = generate_document_key(CLIENT, public, SeededRng(b"doc 3"))
    sent = await in_thread(
        cluster.client.store_document_key,
        key_id,
        generated.common_point.to_bytes(),
        generated.encrypted_point.to_bytes(),
    )
    await wait_for(lambda: "cannot pay for the transaction" in caplog.text, "the poor node's error")
    assert "0x" + poor.address.hex() in caplog.text
    cluster.dev.fund(poor.address)

    def answered() -> bool:
        cluster.dev.mine(1)  # blocks go by: the retry reads the pending request again
        return bool(
            cluster.client.events(cluster.client.store, ("DocumentKeyStored",), key_id, sent.block)
        )

    await wait_for(answered, "the store answered after the funding")


async def test_a_key_server_set_change_while_a_store_is_pending_has_every_node_answer_again(
    cluster: World, caplog: pytest.LogCaptureFixture
) -> None:
    """Two nodes answered a store (the third cannot pay yet) when the owner adds a key server
    and removes it again: the contract forgets both answers. Once the third is funded, all
    three answer (the two again, after the retry interval), and the store is published once."""
    key_id = b"\x53" * 32
    public = await cluster.generate(key_id)
    poor = KEYS[1]
    cluster.dev.fund(poor.address, 0)
    before = cluster.nonces()
    generated = generate_document_key(CLIENT, public, SeededRng(b"doc 4"))
    sent = await in_thread(
        cluster.client.store_document_key,
        key_id,
        generated.common_point.to_bytes(),
        generated.encrypted_point.to_bytes(),
    )

    def sent_since() -> list[int]:
        return [now - then for now, then in zip(cluster.nonces(), before, strict=True)]

    await wait_for(lambda: sent_since() == [1, 0, 1], "the answers of the two that can pay")
    await wait_for(lambda: "cannot pay for the transaction" in caplog.text, "the poor node")
    passing = KeyPair.generate(SeededRng(b"a passing key server"))
    cluster.dev.transact(cluster.server_set, ADD_KEY_SERVER, passing.node_id, "127.0.0.1:9009")
    cluster.dev.transact(cluster.server_set, REMOVE_KEY_SERVER, passing.address)
    required = abi.IS_DOCUMENT_KEY_STORE_RESPONSE_REQUIRED
    assert all(cluster.dev.call(cluster.service, required, key_id, k.address) for k in KEYS)
    cluster.dev.fund(poor.address)
    names = ("DocumentKeyStored", "DocumentKeyStoreError")

    def answered() -> bool:
        cluster.dev.mine(1)  # blocks go by: the retry reads the pending request again
        return bool(cluster.client.events(cluster.client.store, names, key_id, sent.block))

    await wait_for(answered, "the store answered after the change", timeout=30)
    found = cluster.client.events(cluster.client.store, names, key_id, sent.block)
    assert [event.name for event in found] == ["DocumentKeyStored"]
    assert sent_since() == [2, 1, 2]
