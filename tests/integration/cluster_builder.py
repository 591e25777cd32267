"""A cluster of real drivers and key servers over the in-memory transport, with options."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from secretstore.cluster.access import AccessPolicy, AllowAll
from secretstore.cluster.driver import ClusterDriver
from secretstore.crypto.keys import KeyPair, sign_recoverable
from secretstore.crypto.rng import SeededRng
from secretstore.keyserver import KeyServer
from secretstore.mesh.memory import MemoryNetwork
from secretstore.sessions.base import SessionContext
from secretstore.sessions.core import NodeCore
from secretstore.sessions.registry import MASTERS, SLAVES
from secretstore.storage.memory import MemoryKeyStorage
from secretstore.storage.port import KeyStorage
from secretstore.types import NodeId, ServerKeyId

REQUESTER = KeyPair.generate(SeededRng(b"memory cluster requester"))


@dataclass
class MemoryNode:
    key: KeyPair
    storage: KeyStorage
    driver: ClusterDriver
    server: KeyServer

    @property
    def node_id(self) -> NodeId:
        return self.key.node_id


async def memory_cluster(
    n: int,
    seed: int,
    *,
    session_timeout: float = 5.0,
    response_timeout: float = 2.0,
    storages: dict[int, KeyStorage] | None = None,
    policies: dict[int, AccessPolicy] | None = None,
) -> tuple[MemoryNetwork, list[MemoryNode]]:
    """`n` nodes sorted by id, every link up; `storages` and `policies` replace some nodes'
    storage and access policy (AllowAll by default)."""
    rng = SeededRng(seed)
    keys = sorted((KeyPair.generate(rng) for _ in range(n)), key=lambda k: k.node_id)
    ids = frozenset(k.node_id for k in keys)
    network = MemoryNetwork(ids, rng=SeededRng(seed + 1))
    nodes = []
    for i, key in enumerate(keys):
        storage = (storages or {}).get(i) or MemoryKeyStorage()
        ctx = SessionContext(key.node_id, SeededRng(seed * 100 + i), ids)
        core = NodeCore(ctx, storage, MASTERS, SLAVES)
        transport = network.transport(key.node_id)
        driver = ClusterDriver(
            core,
            transport,
            storage,
            (policies or {}).get(i) or AllowAll(),
            session_timeout=session_timeout,
            response_timeout=response_timeout,
        )
        transport.set_handler(driver)
        nodes.append(MemoryNode(key, storage, driver, KeyServer(driver, n, SeededRng(seed + i))))
    for node in nodes:
        await network.transport(node.node_id).start()
    for _ in range(100):
        if all(len(network.transport(x).connected()) == n - 1 for x in ids):
            break
        await asyncio.sleep(0.001)
    return network, nodes


def key_id(i: int) -> ServerKeyId:
    return ServerKeyId(i.to_bytes(32, "big"))


def signature(kid: ServerKeyId, requester: KeyPair = REQUESTER) -> bytes:
    return sign_recoverable(requester.secret, kid)
