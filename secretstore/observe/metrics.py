"""The node's Prometheus metrics: one private registry, every metric defined here.

Names (all `secretstore_`): sessions started / finished / failed by kind and role (and error),
a session latency histogram by kind and role, connected and configured peers, keys stored,
mesh frames and payload bytes by direction, HTTP requests by route and status with a latency
histogram, the node's version and start time; with a contract, the chain client's state
(trusted, latest block) and whether this node is in the key server set; and the process's own
`process_*` metrics. Gauges whose value lives elsewhere (peers, keys, the chain) are read when
scraped, through callbacks.

Another subsystem may add collectors of its own with `NodeMetrics.register`, so that every
metric still appears on the one `/metrics` route.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any, Final

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, ProcessCollector
from prometheus_client.registry import Collector

#: Session latency buckets (seconds): a local retrieval takes milliseconds, a generation on a
#: loaded cluster a second or more, and the default session timeout is 30 s.
SESSION_BUCKETS: Final = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
HTTP_BUCKETS: Final = SESSION_BUCKETS

ROLES: Final = ("master", "slave")


def role(master: bool) -> str:
    return "master" if master else "slave"


class NodeMetrics:
    """Every metric of one node, in a registry of its own (several nodes fit in one process)."""

    def __init__(self, version: str, started_at: float) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        #: the labelled children recorded so far (see _child)
        self._children: dict[tuple[int, tuple[str, ...]], Any] = {}
        r = self.registry
        self.sessions_started = Counter(
            "secretstore_sessions_started",
            "Sessions started on this node, by kind and role (master: this node serves the "
            "request; slave: it helps another node)",
            ("kind", "role"),
            registry=r,
        )
        self.sessions_finished = Counter(
            "secretstore_sessions_finished",
            "Sessions that ended successfully, by kind and role",
            ("kind", "role"),
            registry=r,
        )
        self.sessions_failed = Counter(
            "secretstore_sessions_failed",
            "Sessions that failed, by kind, role and error (the error's class, e.g. "
            "ConsensusUnreachable, AccessDenied, SessionTimeout)",
            ("kind", "role", "error"),
            registry=r,
        )
        self.session_seconds = Histogram(
            "secretstore_session_duration_seconds",
            "How long sessions took from start to end (successful or not), by kind and role",
            ("kind", "role"),
            buckets=SESSION_BUCKETS,
            registry=r,
        )
        self.mesh_frames = Counter(
            "secretstore_mesh_frames",
            "Cluster messages exchanged with other nodes (one sealed frame each), by direction",
            ("direction",),
            registry=r,
        )
        self.mesh_bytes = Counter(
            "secretstore_mesh_bytes",
            "Payload bytes of the cluster messages exchanged with other nodes (before sealing "
            "and framing), by direction",
            ("direction",),
            registry=r,
        )
        self.http_requests = Counter(
            "secretstore_http_requests",
            "HTTP requests answered, by route (the Parity operation, e.g. "
            "generate_server_key, or the path of /health, /metrics, /status) and status",
            ("route", "status"),
            registry=r,
        )
        self.http_seconds = Histogram(
            "secretstore_http_request_duration_seconds",
            "How long HTTP requests took to answer, by route",
            ("route",),
            buckets=HTTP_BUCKETS,
            registry=r,
        )
        self.peers_connected = Gauge(
            "secretstore_peers_connected",
            "Other nodes of the cluster this node is connected to now",
            registry=r,
        )
        self.peers_configured = Gauge(
            "secretstore_peers_configured",
            "Other nodes this node should be connected to now (the configured nodes, or the "
            "key server set contract's)",
            registry=r,
        )
        self.keys_stored = Gauge(
            "secretstore_keys_stored",
            "Server keys this node holds a share of",
            registry=r,
        )
        info = Gauge(
            "secretstore_build_info",
            "The node's version (the value is always 1)",
            ("version",),
            registry=r,
        )
        info.labels(version).set(1)
        start = Gauge(
            "secretstore_start_time_seconds",
            "When the node started, in seconds since the Unix epoch",
            registry=r,
        )
        start.set(started_at)
        ProcessCollector(registry=r)
        for direction in ("in", "out"):
            self.mesh_frames.labels(direction)
            self.mesh_bytes.labels(direction)

    def watch(
        self,
        *,
        connected: Callable[[], int],
        configured: Callable[[], int],
        keys: Callable[[], float],
    ) -> None:
        """Read these when scraped: connected peers, configured peers, keys stored."""
        self.peers_connected.set_function(connected)
        self.peers_configured.set_function(configured)
        self.keys_stored.set_function(keys)

    def watch_chain(
        self,
        *,
        trusted: Callable[[], bool],
        block: Callable[[], int | None],
        isolated: Callable[[], bool],
    ) -> None:
        """Add the chain client's gauges (a node whose config uses a contract), read when
        scraped: trusted or not, the latest block, whether this node is outside the set."""
        r = self.registry
        Gauge(
            "secretstore_chain_trusted",
            "1 while the chain client trusts the chain (its RPC answers and it is not "
            "syncing), else 0",
            registry=r,
        ).set_function(lambda: 1.0 if trusted() else 0.0)
        Gauge(
            "secretstore_chain_block",
            "The latest block the chain client has seen while it trusted the chain (NaN "
            "before the first)",
            registry=r,
        ).set_function(lambda: _number(block()))
        Gauge(
            "secretstore_isolated",
            "1 while this node is not in the key server set (it holds no connections), else 0",
            registry=r,
        ).set_function(lambda: 1.0 if isolated() else 0.0)

    def register(self, collectors: Iterable[Collector]) -> None:
        """Add another subsystem's collectors (e.g. the chain client's) to /metrics."""
        for collector in collectors:
            self.registry.register(collector)

    # --- recording ------------------------------------------------------------------------
    def session_started(self, kind: str, master: bool) -> None:
        self._child(self.sessions_started, kind, role(master)).inc()

    def session_ended(self, kind: str, master: bool, error: str | None, seconds: float) -> None:
        """`error`: None for success, else the error label."""
        who = role(master)
        if error is None:
            self._child(self.sessions_finished, kind, who).inc()
        else:
            self._child(self.sessions_failed, kind, who, error).inc()
        self._child(self.session_seconds, kind, who).observe(seconds)

    def frame(self, direction: str, size: int) -> None:
        self._child(self.mesh_frames, direction).inc()
        self._child(self.mesh_bytes, direction).inc(size)

    def http_request(self, route: str, status: int, seconds: float) -> None:
        self._child(self.http_requests, route, str(status)).inc()
        self._child(self.http_seconds, route).observe(seconds)

    def _child(self, metric: Any, *labels: str) -> Any:
        """`metric.labels(*labels)`, remembered: the label sets are few (routes, statuses,
        session kinds, error names) and the hot path records several per request."""
        key = (id(metric), labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*labels)
        return child


def _number(value: int | None) -> float:
    return math.nan if value is None else float(value)
