"""The node's observer and metrics: what each driver event does to the counters, histograms,
recent sessions and key count (a fake clock; the real prometheus registry)."""

from __future__ import annotations

import math
import time
from collections.abc import Callable

from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from secretstore.cluster.observer import NullObserver, error_kind, session_kind
from secretstore.errors import AccessDenied, ConsensusUnreachable
from secretstore.observe.metrics import NodeMetrics
from secretstore.observe.observer import NodeObserver
from secretstore.observe.recent import RecentSessions
from secretstore.sessions.admin.authority import ConfiguredAdmin
from secretstore.sessions.admin.delete import DeleteSettings, delete_tables
from secretstore.sessions.admin.factories import admin_tables, refresh_tables
from secretstore.sessions.admin.node_set_change import AdminSettings, ChangeNodeSet
from secretstore.sessions.admin.refresh import RefreshSettings
from secretstore.sessions.claims import KeyClaims
from secretstore.sessions.decryption import RetrieveDocumentKey
from secretstore.sessions.generation import GenerateServerKey
from secretstore.sessions.registry import MASTERS, SLAVES
from secretstore.storage.memory import MemoryKeyStorage
from secretstore.types import Address, NodeId, ServerKeyId, SessionId
from secretstore.wire.admin import NodeSetChangeInit

SID = [SessionId(bytes([i]) * 32) for i in range(10)]
PEER = NodeId(b"\x07" * 64)
KEY = ServerKeyId(b"\x01" * 32)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def make() -> tuple[NodeObserver, Clock]:
    clock = Clock()
    observer = NodeObserver(
        NodeMetrics("9.9.9", 1234.0), RecentSessions(), keys=3, monotonic=clock, wall=clock
    )
    return observer, clock


def metrics(observer: NodeObserver) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    text = generate_latest(observer.metrics.registry).decode()
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def get(observer: NodeObserver, name: str, **labels: str) -> float:
    return metrics(observer).get((name, frozenset(labels.items())), 0.0)


#: The kinds docs/HTTP.md lists for the metrics' `kind` label.
DOCUMENTED_KINDS = {
    "server_key_generation",
    "document_key_store",
    "server_key_retrieval",
    "document_key_retrieval",
    "document_key_shadow_retrieval",
    "decryption",
    "key_version_negotiation",
    "schnorr_signing",
    "ecdsa_signing",
    "delegation",
    "ecdsa_presigning",
    "node_set_change",
    "key_refresh",
    "key_deletion",
    "tombstone_push",
}


def test_every_session_the_node_starts_has_a_documented_kind() -> None:
    """Every table of session starters the node registers (node.py), each starter's kind."""
    storage = MemoryKeyStorage()
    connected: Callable[[], frozenset[NodeId]] = frozenset
    tables = [
        (MASTERS, SLAVES),
        admin_tables(AdminSettings(ConfiguredAdmin(None), storage, connected)),
        delete_tables(DeleteSettings(storage, KeyClaims())),
        refresh_tables(
            RefreshSettings(ConfiguredAdmin(None), storage, KeyClaims(), connected, time.time)
        ),
    ]
    starters = [starter for masters, slaves in tables for starter in (*masters, *slaves)]
    assert ChangeNodeSet in starters and NodeSetChangeInit in starters
    kinds = {session_kind(object.__new__(starter)) for starter in starters}
    kinds.add(session_kind(RetrieveDocumentKey(KEY, b"", shadow=True)))
    assert kinds == DOCUMENTED_KINDS


def test_session_kinds_name_the_operation() -> None:
    assert session_kind(GenerateServerKey(KEY, Address(b"\x00" * 20), 1)) == "server_key_generation"
    assert session_kind(RetrieveDocumentKey(KEY, b"", shadow=True)) == (
        "document_key_shadow_retrieval"
    )
    assert session_kind(RetrieveDocumentKey(KEY, b"")) == "document_key_retrieval"

    class SomeNewRequest:
        pass

    assert session_kind(SomeNewRequest()) == "some_new_request"
    assert error_kind(None) == "ok" and error_kind(AccessDenied("x")) == "AccessDenied"


def test_a_session_is_counted_once_with_its_latency_and_outcome() -> None:
    observer, clock = make()
    observer.session_started(SID[0], "schnorr_signing", True)
    assert observer.running == 1
    clock.now += 0.3
    observer.session_ended(SID[0], None)
    observer.session_ended(SID[0], ConsensusUnreachable("late"))  # the second end is ignored
    observer.session_ended(SID[1], None)  # never started here: ignored
    labels = {"kind": "schnorr_signing", "role": "master"}
    assert get(observer, "secretstore_sessions_started_total", **labels) == 1
    assert get(observer, "secretstore_sessions_finished_total", **labels) == 1
    assert get(observer, "secretstore_session_duration_seconds_count", **labels) == 1
    assert abs(get(observer, "secretstore_session_duration_seconds_sum", **labels) - 0.3) < 1e-9
    assert get(observer, "secretstore_session_duration_seconds_bucket", le="0.25", **labels) == 0
    assert get(observer, "secretstore_session_duration_seconds_bucket", le="0.5", **labels) == 1
    assert observer.running == 0
    [ended] = observer.recent.latest(5)
    assert (ended.kind, ended.master, ended.outcome, ended.detail) == (
        "schnorr_signing",
        True,
        "ok",
        "",
    )


def test_failures_are_counted_by_error_and_remembered_with_their_text() -> None:
    observer, clock = make()
    observer.session_started(SID[2], "decryption", False)
    clock.now += 1.5
    observer.session_ended(SID[2], AccessDenied("requester 0xab is not allowed"))
    assert (
        get(
            observer,
            "secretstore_sessions_failed_total",
            kind="decryption",
            role="slave",
            error="AccessDenied",
        )
        == 1
    )
    assert (
        get(observer, "secretstore_sessions_finished_total", kind="decryption", role="slave") == 0
    )
    [error] = observer.recent.errors(5)
    assert error.outcome == "AccessDenied" and error.detail == "requester 0xab is not allowed"
    assert error.seconds == 1.5 and error.ended_at == clock.now


def test_keys_frames_and_the_gauges_read_when_scraped() -> None:
    observer, _ = make()
    observer.key_created()
    observer.key_created()
    observer.key_removed()  # a node set change moved a key off this node
    observer.frame_sent(PEER, 100)
    observer.frame_sent(PEER, 50)
    observer.frame_received(PEER, 70)
    peers = [2]
    observer.metrics.watch(
        connected=lambda: peers[0], configured=lambda: 4, keys=lambda: observer.keys
    )
    assert get(observer, "secretstore_keys_stored") == 4
    assert get(observer, "secretstore_mesh_frames_total", direction="out") == 2
    assert get(observer, "secretstore_mesh_bytes_total", direction="out") == 150
    assert get(observer, "secretstore_mesh_bytes_total", direction="in") == 70
    assert get(observer, "secretstore_peers_connected") == 2
    peers[0] = 4
    assert get(observer, "secretstore_peers_connected") == 4  # read again at each scrape
    assert get(observer, "secretstore_peers_configured") == 4
    assert get(observer, "secretstore_build_info", version="9.9.9") == 1
    assert get(observer, "secretstore_start_time_seconds") == 1234.0


def test_the_chain_gauges_follow_the_chain_client() -> None:
    observer, _ = make()
    assert get(observer, "secretstore_chain_trusted") == 0.0  # no chain: no chain gauges
    assert "secretstore_chain_trusted" not in {name for name, _ in metrics(observer)}
    state: dict[str, object] = {"trusted": False, "block": None, "isolated": True}
    observer.metrics.watch_chain(
        trusted=lambda: bool(state["trusted"]),
        block=lambda: state["block"],  # type: ignore[return-value]
        isolated=lambda: bool(state["isolated"]),
    )
    assert get(observer, "secretstore_chain_trusted") == 0.0
    assert math.isnan(get(observer, "secretstore_chain_block"))
    assert get(observer, "secretstore_isolated") == 1.0
    state.update(trusted=True, block=1234, isolated=False)
    assert get(observer, "secretstore_chain_trusted") == 1.0
    assert get(observer, "secretstore_chain_block") == 1234.0
    assert get(observer, "secretstore_isolated") == 0.0


def test_http_requests_by_route_and_status() -> None:
    observer, _ = make()
    observer.metrics.http_request("generate_server_key", 200, 0.02)
    observer.metrics.http_request("generate_server_key", 403, 0.01)
    observer.metrics.http_request("/status", 200, 0.001)
    assert (
        get(observer, "secretstore_http_requests_total", route="generate_server_key", status="403")
        == 1
    )
    assert get(observer, "secretstore_http_request_duration_seconds_count", route="/status") == 1


def test_every_documented_metric_is_exposed_and_two_nodes_do_not_clash() -> None:
    first, _ = make()
    second, _ = make()  # a second registry in the same process
    names = {name for name, _ in metrics(first)} | {
        f.name
        for f in text_string_to_metric_families(generate_latest(second.metrics.registry).decode())
    }
    for name in (
        "secretstore_sessions_started",
        "secretstore_sessions_finished",
        "secretstore_sessions_failed",
        "secretstore_session_duration_seconds",
        "secretstore_peers_connected",
        "secretstore_peers_configured",
        "secretstore_keys_stored",
        "secretstore_mesh_frames",
        "secretstore_mesh_bytes",
        "secretstore_http_requests",
        "secretstore_http_request_duration_seconds",
        "secretstore_build_info",
        "secretstore_start_time_seconds",
        "process_resident_memory_bytes",
    ):
        assert any(n == name or n.startswith(name + "_") for n in names), name


def test_the_null_observer_accepts_everything() -> None:
    null = NullObserver()
    null.session_started(SID[0], "x", True)
    null.session_ended(SID[0], None)
    null.key_created()
    null.key_removed()
    null.frame_sent(PEER, 1)
    null.frame_received(PEER, 1)
