"""The permissioning contract as every node's access policy, with the master's pinned block,
over a 3-node in-memory cluster whose nodes each ask the contract on anvil themselves."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest

from secretstore.chain import abi
from secretstore.chain.acl import AccessCheckFailed, ContractAccessPolicy
from secretstore.chain.client import ChainClient
from secretstore.chain.devchain import GRANT, REVOKE, Anvil, DevChain, set_entry
from secretstore.chain.registry import ContractAddress
from secretstore.cluster.driver import ClusterDriver
from secretstore.config.model import ContractAtAddress, ContractFromRegistry
from secretstore.crypto.curve import Point
from secretstore.crypto.document import encrypt_secret
from secretstore.crypto.ecies import ecies_decrypt
from secretstore.crypto.keys import KeyPair, sign_recoverable
from secretstore.crypto.rng import SeededRng
from secretstore.errors import AccessDenied, ChainUnavailable
from secretstore.keyserver import KeyServer
from secretstore.mesh.memory import MemoryNetwork
from secretstore.sessions.base import SessionContext
from secretstore.sessions.core import NodeCore
from secretstore.sessions.registry import MASTERS, SLAVES
from secretstore.storage.memory import MemoryKeyStorage
from secretstore.types import Address, BlockRef, Hash256, ServerKeyId

pytestmark = pytest.mark.chain

REQUESTER = KeyPair.generate(SeededRng(b"requester"))
KEY_ID = ServerKeyId(b"\x31" * 32)
SIGNATURE = sign_recoverable(REQUESTER.secret, KEY_ID)


@dataclass
class ChainNode:
    client: ChainClient
    acl: ContractAddress
    policy: ContractAccessPolicy
    driver: ClusterDriver
    server: KeyServer


async def wait_for(condition, timeout: float = 5.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.02)


@pytest.fixture
async def world(anvil: Anvil, dev: DevChain) -> AsyncIterator[tuple[list[ChainNode], Address]]:
    registry = dev.deploy("Registry")
    acl = dev.deploy("OwnedPermissions")
    set_entry(dev, registry, abi.ACL_ENTRY, acl)
    rng = SeededRng(b"acl-world")
    keys = [KeyPair.generate(rng) for _ in range(3)]
    ids = frozenset(k.node_id for k in keys)
    network = MemoryNetwork(ids, rng=SeededRng(b"net"))
    nodes = []
    for i, key in enumerate(keys):
        client = ChainClient(anvil.url, key, poll_interval=0.05)
        source = ContractAddress(
            client, ContractFromRegistry(), abi.ACL_ENTRY, registry=registry, confirmations=1
        )
        client.add_listener(source.refresh)
        policy = ContractAccessPolicy(client, source, pin_wait=0.5)
        storage = MemoryKeyStorage()
        core = NodeCore(SessionContext(key.node_id, SeededRng(i), ids), storage, MASTERS, SLAVES)
        transport = network.transport(key.node_id)
        driver = ClusterDriver(core, transport, storage, policy, session_timeout=5.0)
        transport.set_handler(driver)
        server = KeyServer(driver, 3, SeededRng(100 + i), pin=policy.pin)
        nodes.append(ChainNode(client, source, policy, driver, server))
    for key in keys:
        await network.transport(key.node_id).start()
    for node in nodes:
        await node.client.start()
    yield nodes, acl
    for node in nodes:
        await node.driver.close()
        await node.client.stop()


async def advance(dev: DevChain, nodes: list[ChainNode], blocks: int = 1) -> None:
    """Mine `blocks` and wait until every node's client has seen the new head."""
    target = dev.block_number + blocks
    dev.mine(blocks)
    for node in nodes:
        node.client.poll_soon()
    await wait_for(lambda: all(n.client.head and n.client.head.number >= target for n in nodes))
    await wait_for(lambda: all(n.acl.address is not None for n in nodes))  # listeners ran


async def test_grant_then_revoke_decide_retrieval_at_the_pinned_block(
    world: tuple[list[ChainNode], Address], dev: DevChain, caplog: pytest.LogCaptureFixture
) -> None:
    nodes, acl = world
    await advance(dev, nodes)  # the registry entry is confirmed (1 block) on every node
    await wait_for(lambda: all(node.acl.address == acl for node in nodes))
    public = await nodes[0].server.generate_server_key(KEY_ID, SIGNATURE, 1)
    document_key = KeyPair.generate(SeededRng(b"doc")).public
    encrypted = encrypt_secret(document_key, public, SeededRng(b"enc"))
    await nodes[0].server.store_document_key(
        KEY_ID, SIGNATURE, encrypted.common_point, encrypted.encrypted_point
    )
    with pytest.raises(AccessDenied):
        await nodes[1].server.retrieve_document_key(KEY_ID, SIGNATURE)

    dev.transact(acl, GRANT, REQUESTER.address, KEY_ID)
    await advance(dev, nodes, 0)
    caplog.set_level(logging.INFO, logger="secretstore.chain.acl")
    pinned = nodes[2].policy.pin()
    assert pinned is not None
    secret = (await nodes[2].server.retrieve_document_key(KEY_ID, SIGNATURE)).encrypted
    assert Point.from_bytes(ecies_decrypt(REQUESTER.secret, secret)) == document_key
    # every node that answered decided at the master's block
    decisions = [r.getMessage() for r in caplog.records if "access allowed" in r.getMessage()]
    assert len(decisions) >= 2
    assert all(f"at block {pinned}" in text for text in decisions)

    dev.transact(acl, REVOKE, REQUESTER.address, KEY_ID)
    await advance(dev, nodes, 0)
    for node in nodes:  # the next block's sessions refuse, on every master
        with pytest.raises(AccessDenied):
            await node.server.retrieve_document_key(KEY_ID, SIGNATURE)


async def test_every_node_decides_at_the_pin_not_at_its_latest(
    world: tuple[list[ChainNode], Address], dev: DevChain
) -> None:
    nodes, acl = world
    await advance(dev, nodes)
    before = nodes[0].policy.pin()
    assert before is not None
    dev.transact(acl, GRANT, REQUESTER.address, KEY_ID)
    await advance(dev, nodes, 0)
    for node in nodes:  # their latest says allowed; the pinned block says denied
        assert await node.policy.check(REQUESTER.address, KEY_ID) is True
        assert await node.policy.check(REQUESTER.address, KEY_ID, before) is False


async def test_a_pinned_block_a_node_does_not_have_is_refused(
    world: tuple[list[ChainNode], Address], dev: DevChain
) -> None:
    nodes, _ = world
    await advance(dev, nodes)
    head = nodes[0].policy.pin()
    assert head is not None
    forked = BlockRef(head.number, Hash256(b"\x66" * 32))  # a block of another chain
    future = BlockRef(head.number + 50, Hash256(b"\x67" * 32))  # one this node never reaches
    for block in (forked, future):
        started = time.monotonic()
        with pytest.raises(AccessCheckFailed, match="not on this node's chain"):
            await nodes[1].policy.check(REQUESTER.address, KEY_ID, block)
        assert time.monotonic() - started < 3  # bounded wait, no hang


async def test_a_master_that_pins_an_old_block_to_undo_a_revoke_is_refused(
    world: tuple[list[ChainNode], Address], dev: DevChain
) -> None:
    """The attacker: a master that pins a block from before the revoke."""
    nodes, acl = world
    dev.transact(acl, GRANT, REQUESTER.address, KEY_ID)
    await advance(dev, nodes)
    granted = nodes[0].policy.pin()
    assert granted is not None
    dev.transact(acl, REVOKE, REQUESTER.address, KEY_ID)
    await advance(dev, nodes, 4)  # the revoke plus 4 blocks: the granted block is 5 below
    assert await nodes[1].policy.check(REQUESTER.address, KEY_ID) is False
    with pytest.raises(AccessCheckFailed, match="blocks below this node's latest"):
        await nodes[1].policy.check(REQUESTER.address, KEY_ID, granted)
    # a pin within the age bound is honoured as given
    revoke_hash = await nodes[1].client.block_hash(granted.number + 1)
    assert revoke_hash is not None
    revoked = BlockRef(granted.number + 1, revoke_hash)
    assert await nodes[1].policy.check(REQUESTER.address, KEY_ID, revoked) is False


async def test_without_the_registry_entry_or_the_chain_it_fails_clearly(anvil: Anvil) -> None:
    key = KeyPair.generate(SeededRng(b"lonely"))
    client = ChainClient(anvil.url, key, poll_interval=0.05)
    await client.start()
    try:
        empty = DevChain(anvil.url).deploy("Registry")
        source = ContractAddress(
            client, ContractFromRegistry(), abi.ACL_ENTRY, registry=empty, confirmations=0
        )
        head = client.require_trusted()
        assert await source.refresh(head) is None
        policy = ContractAccessPolicy(client, source)
        with pytest.raises(AccessCheckFailed, match="secretstore_acl_checker from the registry"):
            await policy.check(REQUESTER.address, KEY_ID, head)
        fixed = ContractAddress(
            client, ContractAtAddress(empty), abi.ACL_ENTRY, registry=None, confirmations=0
        )
        assert fixed.address == empty  # a configured address needs no registry
    finally:
        await client.stop()
    with pytest.raises(ChainUnavailable, match="without trusted blockchain client"):
        ContractAccessPolicy(client, source).pin()
