"""What every node stores when a write fails or a node is lost around the commit, with the real
driver over the in-memory transport (generation and document key store commit in two phases).

The master writes its own share before it sends the commit, so a master whose write fails
leaves no share anywhere; a slave whose write fails after the commit leaves the others
holding the key (the window the two-phase commit cannot close), and that state is usable:
t+1 holders serve retrieval and a second generation of the key is refused.
"""

from __future__ import annotations

import asyncio

import pytest

from secretstore.crypto.curve import Point, Scalar
from secretstore.crypto.document import encrypt_secret
from secretstore.crypto.rng import SeededRng
from secretstore.errors import (
    NodeDisconnected,
    ProtocolViolation,
    ServerKeyAlreadyGenerated,
    StorageError,
)
from secretstore.storage.memory import MemoryKeyStorage
from secretstore.storage.model import KeyShare
from secretstore.types import ServerKeyId
from tests.integration.cluster_builder import MemoryNode, key_id, memory_cluster, signature


class FailingWrites(MemoryKeyStorage):
    """A store whose writes fail (a full or broken disk) while `failing` is set."""

    def __init__(self) -> None:
        super().__init__()
        self.failing = True

    def insert(self, key_id: ServerKeyId, share: KeyShare) -> None:
        if self.failing:
            raise StorageError("disk full")
        super().insert(key_id, share)

    def update(self, key_id: ServerKeyId, share: KeyShare) -> None:
        if self.failing:
            raise StorageError("disk full")
        super().update(key_id, share)


def holders(nodes: list[MemoryNode], kid: ServerKeyId) -> list[int]:
    return [i for i, node in enumerate(nodes) if node.storage.get(kid) is not None]


async def settle(nodes: list[MemoryNode]) -> None:
    for _ in range(200):
        if all(len(node.driver.core) == 0 for node in nodes):
            return
        await asyncio.sleep(0.005)
    raise AssertionError("sessions are still open")


async def test_a_master_whose_write_fails_leaves_no_share_on_any_node() -> None:
    broken = FailingWrites()
    _network, nodes = await memory_cluster(3, seed=31, storages={0: broken})
    kid = key_id(1)
    with pytest.raises(StorageError):
        await nodes[0].server.generate_server_key(kid, signature(kid), 1)
    await settle(nodes)
    assert holders(nodes, kid) == []  # no slave got a commit before the master's own write
    broken.failing = False
    public = await nodes[0].server.generate_server_key(kid, signature(kid), 1)
    assert isinstance(public, Point)
    assert holders(nodes, kid) == [0, 1, 2]


async def test_a_store_whose_master_write_fails_leaves_no_document_key_anywhere() -> None:
    broken = FailingWrites()
    broken.failing = False
    _network, nodes = await memory_cluster(3, seed=32, storages={1: broken})
    kid = key_id(2)
    public = await nodes[1].server.generate_server_key(kid, signature(kid), 1)
    secret = Point.base_mul(Scalar(12345))
    encrypted = encrypt_secret(secret, public, SeededRng(b"store"))
    broken.failing = True
    with pytest.raises(StorageError):
        await nodes[1].server.store_document_key(
            kid, signature(kid), encrypted.common_point, encrypted.encrypted_point
        )
    await settle(nodes)
    for node in nodes:
        share = node.storage.get(kid)
        assert share is not None and share.common_point is None, "a holder stored the key"


async def test_a_slave_whose_write_fails_after_the_commit_leaves_a_usable_key() -> None:
    broken = FailingWrites()
    _network, nodes = await memory_cluster(3, seed=33, storages={2: broken})
    kid = key_id(3)
    with pytest.raises((StorageError, ProtocolViolation)):
        await nodes[0].server.generate_server_key(kid, signature(kid), 1)
    await settle(nodes)
    assert holders(nodes, kid) == [0, 1]  # master and the other slave committed
    with pytest.raises(ServerKeyAlreadyGenerated):
        await nodes[1].server.generate_server_key(kid, signature(kid), 1)
    retrieved = await nodes[0].server.retrieve_server_key(kid, signature(kid))
    assert retrieved == nodes[0].storage.get(kid).public  # type: ignore[union-attr]


async def test_a_slave_lost_between_commit_and_store_fails_by_name_and_leaves_the_rest() -> None:
    """The commit reaches one slave, the other slave's link goes down before it does."""
    network, nodes = await memory_cluster(3, seed=34, response_timeout=0.2)
    kid = key_id(4)
    master, lost = nodes[0], nodes[2]
    original = master.storage.insert

    def insert_then_cut(key: ServerKeyId, share: KeyShare) -> None:
        original(key, share)  # the master's own write, just before it sends the commits
        network.isolate(lost.node_id)

    master.storage.insert = insert_then_cut  # type: ignore[method-assign]
    with pytest.raises(NodeDisconnected) as failure:
        await master.server.generate_server_key(kid, signature(kid), 1)
    assert lost.key.node_id[:4].hex() in str(failure.value) + "".join(
        getattr(failure.value, "__notes__", [])
    )
    await settle(nodes)
    assert holders(nodes, kid) == [0, 1]
    network.heal_all()
