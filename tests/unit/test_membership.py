"""The node set at run time: the cluster sessions see and the connections the mesh keeps."""

from __future__ import annotations

from collections.abc import Mapping

from secretstore.cluster.membership import Membership
from secretstore.crypto.keys import KeyPair
from secretstore.crypto.rng import SeededRng
from secretstore.errors import ConsensusUnreachable
from secretstore.sessions.base import Fail, SessionContext
from secretstore.sessions.core import NodeCore
from secretstore.sessions.generation import GenerateServerKey
from secretstore.sessions.registry import MASTERS, SLAVES
from secretstore.storage.memory import MemoryKeyStorage
from secretstore.types import NodeId, ServerKeyId
from tests.sim.key_sessions import proof_of

KEYS = [KeyPair.generate(SeededRng(f"member-{i}".encode())) for i in range(4)]
N = [key.node_id for key in KEYS]


class RecordingMesh:
    def __init__(self) -> None:
        self.updates: list[dict[NodeId, tuple[str, int]]] = []

    def update_nodes(self, nodes: Mapping[NodeId, tuple[str, int]]) -> None:
        self.updates.append(dict(nodes))


def at(*indices: int, port: int = 1000) -> dict[NodeId, tuple[str, int]]:
    return {N[i]: ("127.0.0.1", port + i) for i in indices}


def make(nodes: dict[NodeId, tuple[str, int]]) -> tuple[Membership, NodeCore, RecordingMesh]:
    core = NodeCore(
        SessionContext(N[0], SeededRng(1), frozenset(nodes)), MemoryKeyStorage(), MASTERS, SLAVES
    )
    mesh = RecordingMesh()
    return Membership(N[0], core, mesh, nodes), core, mesh


def test_a_new_set_reaches_new_sessions_and_the_mesh() -> None:
    membership, core, mesh = make(at(0, 1, 2))
    key = ServerKeyId(b"\x01" * 32)
    running, _ = core.start(GenerateServerKey(key, proof_of(key_id=key), 1), frozenset(N[1:3]))
    assert membership.update(at(0, 1, 2, 3), at(0, 1, 2, 3))
    assert core.ctx.cluster_nodes == frozenset(N)
    assert mesh.updates == [at(0, 1, 2, 3)]
    assert membership.size == 4 and membership.peers == 3 and not membership.isolated
    session = core.session(running)
    assert session is not None and session.ctx.cluster_nodes == frozenset(N[:3])  # kept its own
    assert not membership.update(at(0, 1, 2, 3), at(0, 1, 2, 3))  # unchanged: nothing done
    assert len(mesh.updates) == 1


def test_an_address_change_reaches_only_the_mesh() -> None:
    membership, core, mesh = make(at(0, 1))
    before = core.ctx
    assert membership.update(at(0, 1, port=2000), at(0, 1, port=2000))
    assert core.ctx is before  # same members: the sessions' view is untouched
    assert mesh.updates == [at(0, 1, port=2000)]


def test_an_isolated_node_holds_no_connections() -> None:
    membership, core, mesh = make(at(0, 1, 2))
    membership.update(at(1, 2), {})
    assert membership.isolated and membership.peers == 0
    assert mesh.updates == [{}]
    assert core.ctx.cluster_nodes == frozenset(N[1:3])
    # a generation master refuses: this node is no key server now
    other = ServerKeyId(b"\x02" * 32)
    _, effects = core.start(GenerateServerKey(other, proof_of(key_id=other), 0), frozenset())
    failures = [effect for effect in effects if isinstance(effect, Fail)]
    assert failures and isinstance(failures[0].error, ConsensusUnreachable)
