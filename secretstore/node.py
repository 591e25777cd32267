"""The composition root: build one key-server node from its config, start and stop it in order.

Start: key storage (LevelDB), then the mesh (listen and dial), then the HTTP API. Stop, in
reverse: the HTTP API (no new requests), the mesh (every link closed), the cluster driver
(pending requests fail, timers stop), the key storage (flushed and unlocked).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from typing import Final

from secretstore import __version__
from secretstore.cluster.access import AllowAll
from secretstore.cluster.driver import ClusterDriver
from secretstore.config.loader import unsupported_options
from secretstore.config.model import NodeConfig, SecretStoreConfig
from secretstore.crypto.keys import KeyPair
from secretstore.crypto.rng import OsRng, Rng
from secretstore.encoding import to_hex
from secretstore.errors import ConfigError
from secretstore.http.app import HttpServer, start_http
from secretstore.keyserver import KeyServer
from secretstore.listen import host_port, listening
from secretstore.logs import short_node
from secretstore.mesh.connection import MeshTimings
from secretstore.mesh.transport import HostPort, MeshTransport
from secretstore.observe.health import Health, PeerState, plural
from secretstore.observe.metrics import NodeMetrics
from secretstore.observe.observer import NodeObserver
from secretstore.observe.peers import PeerWatch
from secretstore.observe.recent import RecentSessions
from secretstore.observe.routes import observe_routes
from secretstore.sessions.base import SessionContext
from secretstore.sessions.core import NodeCore
from secretstore.sessions.registry import MASTERS, SLAVES
from secretstore.storage.leveldb import LevelDbKeyStorage
from secretstore.types import NodeId

log = logging.getLogger(__name__)

#: A peer silent for this many keep-alive intervals is taken for dead.
DEAD_AFTER_INTERVALS: Final = 3.0


def check_supported(config: NodeConfig) -> None:
    """Refuse options this node cannot serve yet (those that need a chain): ConfigError naming
    them and saying what to set instead."""
    paths = unsupported_options(config)
    if not paths:
        return
    keys = [path.rsplit(".", 1)[-1] for path in paths]
    fix = ", ".join(f'{key} = "none"' for key in keys)
    raise ConfigError(
        paths[0],
        f"{', '.join(paths)} need an Ethereum chain (contracts), which this version does not "
        f"support; to run without one, set {fix} in [secretstore]",
    )


def mesh_timings(keep_alive_interval: float) -> MeshTimings:
    """The mesh's keep-alive settings from the config's `keep_alive_interval`."""
    return MeshTimings(
        ping_interval=keep_alive_interval,
        dead_after=keep_alive_interval * DEAD_AFTER_INTERVALS,
    )


class Node:
    """One running key-server node: storage, mesh, cluster driver, key server, HTTP API."""

    def __init__(self, config: NodeConfig, *, rng: Rng | None = None) -> None:
        """Check the config (ConfigError when disabled or asking for a chain); no I/O yet."""
        store: SecretStoreConfig = config.secretstore
        if store.disable:
            raise ConfigError("secretstore.disable", "the secret store is disabled")
        check_supported(config)
        self.config = config
        self._store = store
        self._key: KeyPair = store.key_pair
        self._rng: Rng = rng if rng is not None else OsRng()
        self._storage: LevelDbKeyStorage | None = None
        self._transport: MeshTransport | None = None
        self._driver: ClusterDriver | None = None
        self._http: HttpServer | None = None
        self._watch: PeerWatch | None = None
        self.key_server: KeyServer | None = None
        self._started_at = time.monotonic()
        self.metrics = NodeMetrics(__version__, time.time())
        self.observer = NodeObserver(self.metrics, RecentSessions())

    # --- identity and state ---------------------------------------------------------------
    @property
    def node_id(self) -> NodeId:
        return self._key.node_id

    @property
    def cluster_nodes(self) -> Mapping[NodeId, HostPort]:
        return {n.node_id: (n.host, n.port) for n in self._store.nodes}

    @property
    def mesh_address(self) -> HostPort | None:
        return self._transport.listen_address if self._transport is not None else None

    @property
    def http_address(self) -> HostPort | None:
        return (self._http.host, self._http.port) if self._http is not None else None

    def health(self) -> Health:
        connected = self._transport.connected() if self._transport is not None else frozenset()
        nodes = tuple(
            PeerState(
                n.node_id,
                host_port(n.host, n.port),
                n.node_id in connected,
                n.node_id == self.node_id,
            )
            for n in self._store.nodes
        )
        keys = self.observer.keys if self._storage is not None else None
        return Health(self.node_id, __version__, time.monotonic() - self._started_at, keys, nodes)

    # --- lifecycle ------------------------------------------------------------------------
    async def start(self) -> None:
        """Open the key storage, start the mesh, then the HTTP API. On a failure, whatever
        started is stopped again and the error (StorageError, MeshConnectionError, OSError)
        is raised."""
        store = self._store
        nodes = self.cluster_nodes
        log.info(
            "node %s starting (secretstore %s): %s, key storage %s",
            to_hex(self.node_id),
            __version__,
            plural(len(nodes), "node"),
            store.path,
        )
        try:
            self._storage = LevelDbKeyStorage(store.path)
            self.observer.keys = sum(1 for _ in self._storage.ids())
            self.metrics.watch(
                connected=self._connected_count,
                configured=lambda: len(nodes) - 1,
                keys=lambda: self.observer.keys,
            )
            ctx = SessionContext(self.node_id, self._rng, frozenset(nodes))
            core = NodeCore(ctx, self._storage, MASTERS, SLAVES)
            self._transport = MeshTransport(
                self._key,
                (store.interface, store.port),
                nodes,
                rng=self._rng,
                timings=mesh_timings(store.keep_alive_interval),
            )
            self._driver = ClusterDriver(
                core,
                self._transport,
                self._storage,
                AllowAll(),
                store.session_timeout,
                observer=self.observer,
            )
            self._watch = PeerWatch(
                self._driver,
                self._transport.connected,
                {n: host_port(*a) for n, a in nodes.items() if n != self.node_id},
            )
            self._transport.set_handler(self._watch)
            self.key_server = KeyServer(
                cluster=self._driver, cluster_size=len(nodes), rng=self._rng
            )
            await listening(
                "secretstore.port",
                "secretstore.interface",
                (store.interface, store.port),
                self._transport.start(),
            )
            if not store.disable_http:
                self._http = await listening(
                    "secretstore.http_port",
                    "secretstore.http_interface",
                    (store.http_interface, store.http_port),
                    start_http(
                        self.key_server,
                        store.http_interface,
                        store.http_port,
                        store.http_cors,
                        extra_routes=observe_routes(self.health, self.observer),
                        on_request=self.metrics.http_request,
                    ),
                )
        except BaseException:
            await self.stop()
            raise
        self._watch.start()
        log.info("node %s started", short_node(self.node_id))

    async def stop(self) -> None:
        """Stop what runs, in reverse order; safe to call twice or after a failed start."""
        if self._http is not None:
            http, self._http = self._http, None
            await http.stop()
        if self._watch is not None:
            await self._watch.stop()
        if self._transport is not None:
            transport, self._transport = self._transport, None
            await transport.stop()
        if self._driver is not None:
            driver, self._driver = self._driver, None
            await driver.close()
        if self._storage is not None:
            storage, self._storage = self._storage, None
            storage.close()
            log.info("key storage closed")

    def _connected_count(self) -> int:
        return len(self._transport.connected()) if self._transport is not None else 0


async def run_node(config: NodeConfig, stop: asyncio.Event, *, rng: Rng | None = None) -> None:
    """Run a node until `stop` is set, then shut it down. A disabled config returns at once."""
    if config.secretstore.disable:
        log.info("the secret store is disabled (secretstore.disable = true); nothing to run")
        return
    node = Node(config, rng=rng)
    await node.start()
    try:
        await stop.wait()
        log.info("shutting down")
    finally:
        await node.stop()
    log.info("node %s stopped", short_node(node.node_id))
