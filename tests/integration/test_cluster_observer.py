"""The driver's events reach the node's observer: sessions by kind and role, outcomes, keys
written and mesh traffic, over the in-memory transport with the real metrics registry."""

from __future__ import annotations

import asyncio

import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from secretstore.crypto.curve import Point
from secretstore.crypto.ecies import ecies_decrypt
from secretstore.errors import AccessDenied, ConsensusUnreachable
from secretstore.observe.metrics import NodeMetrics
from secretstore.observe.observer import NodeObserver
from secretstore.observe.recent import RecentSessions
from tests.integration.test_cluster_memory import (
    OTHER,
    REQUESTER,
    MemoryNode,
    key_id,
    make_cluster,
    sig,
)


def observe(nodes: list[MemoryNode]) -> list[NodeObserver]:
    observers = []
    for node in nodes:
        observer = NodeObserver(NodeMetrics("test", 0.0), RecentSessions())
        node.driver.observer = observer
        observers.append(observer)
    return observers


def samples(observer: NodeObserver) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = generate_latest(observer.metrics.registry).decode()
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def value(observer: NodeObserver, name: str, **labels: str) -> float:
    return samples(observer).get((name, tuple(sorted(labels.items()))), 0.0)


async def settle(nodes: list[MemoryNode]) -> None:
    for _ in range(200):
        if all(len(node.driver.core) == 0 for node in nodes):
            return
        await asyncio.sleep(0.005)
    raise AssertionError("sessions still running")


async def test_a_generation_is_one_master_and_two_slave_sessions_and_a_key_each() -> None:
    _, nodes = await make_cluster(3, seed=21)
    observers = observe(nodes)
    kid = key_id(1)
    await nodes[0].server.generate_server_key(kid, sig(REQUESTER, kid), 1)
    await settle(nodes)
    kind = "server_key_generation"
    assert value(observers[0], "secretstore_sessions_started_total", kind=kind, role="master") == 1
    assert value(observers[0], "secretstore_sessions_finished_total", kind=kind, role="master") == 1
    for observer in observers[1:]:
        labels = {"kind": kind, "role": "slave"}
        assert value(observer, "secretstore_sessions_started_total", **labels) == 1
        assert value(observer, "secretstore_sessions_finished_total", **labels) == 1
        assert value(observer, "secretstore_session_duration_seconds_count", **labels) == 1
    for observer in observers:
        assert observer.keys == 1  # every node wrote its share
        assert observer.running == 0
        assert [s.outcome for s in observer.recent.latest(10)] == ["ok"]
    sent = sum(value(o, "secretstore_mesh_frames_total", direction="out") for o in observers)
    received = sum(value(o, "secretstore_mesh_frames_total", direction="in") for o in observers)
    assert sent == received > 0
    sent_bytes = sum(value(o, "secretstore_mesh_bytes_total", direction="out") for o in observers)
    assert sent_bytes == sum(
        value(o, "secretstore_mesh_bytes_total", direction="in") for o in observers
    )
    for node in nodes:
        await node.driver.close()


async def test_retrievals_are_counted_by_kind_and_failures_by_error() -> None:
    network, nodes = await make_cluster(3, seed=22, denied={OTHER.address})
    observers = observe(nodes)
    kid = key_id(2)
    encrypted = await nodes[0].server.generate_document_key(kid, sig(REQUESTER, kid), 1)
    document_key = Point.from_bytes(ecies_decrypt(REQUESTER.secret, encrypted))
    await nodes[1].server.retrieve_document_key_shadow(kid, sig(REQUESTER, kid))
    await nodes[1].server.retrieve_document_key(kid, sig(REQUESTER, kid))
    with pytest.raises(AccessDenied):
        await nodes[1].server.retrieve_document_key(kid, sig(OTHER, kid))
    network.isolate(nodes[2].key.node_id)
    await asyncio.sleep(0.01)
    with pytest.raises(ConsensusUnreachable):
        await nodes[0].server.generate_server_key(key_id(3), sig(REQUESTER, key_id(3)), 1)
    network.heal_all()
    await settle(nodes)

    master = observers[1]
    assert (
        value(
            master,
            "secretstore_sessions_finished_total",
            kind="document_key_shadow_retrieval",
            role="master",
        )
        == 1
    )
    assert (
        value(
            master,
            "secretstore_sessions_finished_total",
            kind="document_key_retrieval",
            role="master",
        )
        == 1
    )
    assert (
        value(
            master,
            "secretstore_sessions_failed_total",
            kind="document_key_retrieval",
            role="master",
            error="AccessDenied",
        )
        == 1
    )
    assert (
        value(
            observers[0],
            "secretstore_sessions_failed_total",
            kind="server_key_generation",
            role="master",
            error="ConsensusUnreachable",
        )
        == 1
    )
    errors = observers[0].recent.errors(5)
    assert errors[0].outcome == "ConsensusUnreachable"
    assert "not connected" in errors[0].detail
    assert document_key is not None
    for observer in observers:
        assert observer.running == 0
    for node in nodes:
        await node.driver.close()
