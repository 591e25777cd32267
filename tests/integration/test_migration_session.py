"""`SessionNodeSetChange` (auto-migration's node set change) on real async drivers over the
in-memory transport: the master starts the change with the migration id and its own
signatures, and every node, master or slave, reports it running, finished or failed with that
id; `leave` erases a node's keys."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import pytest

from secretstore.audit.chain import verify_log
from secretstore.audit.model import Operation
from secretstore.audit.receipts import NodeSigner
from secretstore.audit.recorder import AuditRecorder
from secretstore.audit.store import MemoryAuditStore
from secretstore.chain.key_server_set import KeyServerSetSnapshot, Migration
from secretstore.chain.migration import NO_SESSION, AutoMigration, SessionPhase, SessionState
from secretstore.chain.migration_session import MigrationAdmin, SessionNodeSetChange
from secretstore.cluster.access import AllowAll
from secretstore.cluster.driver import ClusterDriver
from secretstore.cluster.observer import NullObserver
from secretstore.crypto.keys import KeyPair
from secretstore.crypto.rng import SeededRng
from secretstore.errors import SecretStoreError
from secretstore.mesh.memory import MemoryNetwork
from secretstore.sessions.admin.factories import admin_tables
from secretstore.sessions.admin.node_set_change import AdminSettings
from secretstore.sessions.base import SessionContext
from secretstore.sessions.core import NodeCore
from secretstore.sessions.registry import MASTERS, SLAVES
from secretstore.storage.memory import MemoryKeyStorage
from secretstore.types import Hash256, NodeId, ServerKeyId
from tests.sim.dealer import deal_key

MIGRATION = Hash256(b"\x42" * 32)
KEYS = 5


@dataclass
class View:
    """The contract as one node read it."""

    snapshot: KeyServerSetSnapshot

    def admin_for(self, migration_id: Hash256 | None, nodes: frozenset[NodeId]) -> NodeId | None:
        return AutoMigration(NodeId(b"\x01" * 64), SeededRng(0)).admin_for(
            self.snapshot, migration_id, nodes
        )


class KeyCount(NullObserver):
    """Counts the key shares the node's observer hears erased."""

    def __init__(self) -> None:
        self.removed = 0

    def key_removed(self) -> None:
        self.removed += 1


@dataclass
class Member:
    key: KeyPair
    storage: MemoryKeyStorage
    driver: ClusterDriver
    change: SessionNodeSetChange
    view: View
    audit: MemoryAuditStore
    keys: KeyCount


@dataclass
class Cluster:
    network: MemoryNetwork
    members: list[Member]

    @property
    def ids(self) -> frozenset[NodeId]:
        return frozenset(m.key.node_id for m in self.members)


def snapshot_of(current: frozenset[NodeId], migration: Migration | None) -> KeyServerSetSnapshot:
    nodes = {node: ("127.0.0.1", 1) for node in current}
    return KeyServerSetSnapshot(nodes, dict(migration.nodes) if migration else nodes, migration)


@pytest.fixture
async def cluster() -> AsyncIterator[Cluster]:
    """4 nodes, the first 3 (the contract's current set) holding KEYS keys; the contract
    migrates to all 4 with the first node as its master."""
    rng = SeededRng(b"migration session")
    keys = sorted((KeyPair.generate(rng) for _ in range(4)), key=lambda k: k.node_id)
    ids = [k.node_id for k in keys]
    current = frozenset(ids[:3])
    migration = Migration(MIGRATION, {n: ("127.0.0.1", 1) for n in ids}, ids[0], False)
    network = MemoryNetwork(ids, rng=SeededRng(1))
    members: list[Member] = []
    for i, key in enumerate(keys):
        storage = MemoryKeyStorage()
        view = View(snapshot_of(current, migration))
        transport = network.transport(key.node_id)
        signer = NodeSigner(key)
        audit = MemoryAuditStore()
        recorder = AuditRecorder(audit, signer)
        ctx = SessionContext(key.node_id, SeededRng(100 + i), current, audit=signer)
        settings = AdminSettings(
            MigrationAdmin(key.node_id, lambda view=view: view),  # type: ignore[misc]
            storage,
            transport.connected,
        )
        admin_masters, admin_slaves = admin_tables(settings)
        core = NodeCore(ctx, storage, {**MASTERS, **admin_masters}, {**SLAVES, **admin_slaves})
        driver = ClusterDriver(
            core, transport, storage, AllowAll(), session_timeout=5.0, audit=recorder
        )
        transport.set_handler(driver)
        counted = KeyCount()
        change = SessionNodeSetChange(
            key, core, storage, driver.request, audit=recorder, observer=counted
        )
        members.append(Member(key, storage, driver, change, view, audit, counted))
    for index in range(KEYS):
        dealt = deal_key(rng, ids[:3], 1)
        for node, share in dealt.shares.items():
            members[ids.index(node)].storage.insert(ServerKeyId(bytes([index]) * 32), share)
    for member in members:
        await network.transport(member.key.node_id).start()
    while not all(len(m.driver.transport.connected()) == 3 for m in members):
        await asyncio.sleep(0.001)
    yield Cluster(network, members)
    for member in members:
        await member.driver.close()


async def until(condition: Callable[[], bool], what: str) -> None:
    for _ in range(2000):
        if condition():
            return
        await asyncio.sleep(0.005)
    raise AssertionError(f"timed out waiting for {what}")


def phases(cluster: Cluster) -> list[SessionState]:
    return [m.change.state() for m in cluster.members]


async def test_the_master_runs_the_migration_and_every_node_reports_it_done(
    cluster: Cluster,
) -> None:
    master = cluster.members[0]
    assert all(state == NO_SESSION for state in phases(cluster))
    await master.change.start(MIGRATION, cluster.ids)
    # running at once on the master (the request is under way), then on every node
    assert master.change.state() == SessionState(SessionPhase.RUNNING, MIGRATION)
    with pytest.raises(SecretStoreError, match="runs on this node already"):
        await master.change.start(MIGRATION, cluster.ids)
    done = SessionState(SessionPhase.FINISHED, MIGRATION)
    await until(lambda: all(state == done for state in phases(cluster)), "every node done")
    for member in cluster.members:
        for index in range(KEYS):
            share = member.storage.get(ServerKeyId(bytes([index]) * 32))
            assert share is not None
            assert set(share.last_version().nodes) == cluster.ids
    # the ended state stays until auto-migration drops it
    assert master.change.state() == done
    for member in cluster.members:
        member.change.drop()
    assert all(state == NO_SESSION for state in phases(cluster))


async def test_a_slave_refusing_fails_the_change_on_every_node(cluster: Cluster) -> None:
    master, _, lagging, _ = cluster.members
    lagging.view.snapshot = snapshot_of(cluster.ids, None)  # it has not read the migration
    await master.change.start(MIGRATION, cluster.ids)
    await until(lambda: master.change.state().phase is SessionPhase.FAILED, "the master's failure")
    await asyncio.sleep(0.05)
    states = phases(cluster)
    assert states[0] == SessionState(SessionPhase.FAILED, MIGRATION)
    assert states[2] == NO_SESSION  # it refused: it never ran the change
    for state in states[1::2]:  # the slaves that had joined: not done (they do not confirm)
        assert state in (NO_SESSION, SessionState(SessionPhase.FAILED, MIGRATION))
    assert all(state.phase is not SessionPhase.FINISHED for state in states)


async def test_a_change_the_master_cannot_start_is_failed(cluster: Cluster) -> None:
    master, new = cluster.members[0], cluster.members[3]
    cluster.network.isolate(new.key.node_id)
    await until(lambda: len(master.driver.transport.connected()) == 2, "the new node gone")
    await master.change.start(MIGRATION, cluster.ids)
    await until(lambda: master.change.state().phase is SessionPhase.FAILED, "the failure")
    assert master.change.state() == SessionState(SessionPhase.FAILED, MIGRATION)


def audit_log(member: Member) -> list[tuple[Operation, bytes, bytes]]:
    report = verify_log(member.audit.records(), member.key.node_id)
    assert report.ok, report
    return [
        (item.entry.facts.operation, item.entry.facts.key_id, item.entry.facts.session_id)
        for item in report.entries
    ]


async def test_leave_erases_every_key_each_after_its_audit_entry(cluster: Cluster) -> None:
    leaving, master = cluster.members[1], cluster.members[0]
    ids = sorted(leaving.storage.ids())
    assert len(ids) == KEYS
    await leaving.change.leave(MIGRATION, master.key.node_id)
    assert list(leaving.storage.ids()) == []
    assert leaving.keys.removed == KEYS  # the node's key count follows
    assert audit_log(leaving) == [(Operation.DELETE, key_id, MIGRATION) for key_id in ids]


async def test_leave_stops_at_a_failed_audit_entry(cluster: Cluster) -> None:
    leaving = cluster.members[1]
    leaving.audit.fail = "No space left on device"
    await leaving.change.leave(MIGRATION, cluster.members[0].key.node_id)
    assert len(list(leaving.storage.ids())) == KEYS  # nothing erased without its entry
    assert leaving.keys.removed == 0
    # the others keep theirs
    assert len(list(cluster.members[2].storage.ids())) == KEYS
