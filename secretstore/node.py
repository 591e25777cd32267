"""The composition root: build one key-server node from its config, start and stop it in order.

Start: key storage (LevelDB, with the audit log in it), then the mesh (listen and dial), then
the chain (when a contract is configured: the ACL, the key server set and the service
contracts follow the chain from its first block on), then the HTTP API. Stop, in reverse: the
HTTP API (no new requests), the chain (the service listener first), the mesh (every link
closed), the cluster driver (pending requests fail, timers stop), the key storage (flushed and
unlocked). While it runs, `reload_nodes` (SIGHUP) applies a changed `nodes` list from the
config file, through the same `Membership` a key server set contract drives.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final

from secretstore import __version__
from secretstore.audit.receipts import NodeSigner
from secretstore.audit.recorder import AuditRecorder
from secretstore.audit.store import AuditFlusher, LevelDbAuditStore
from secretstore.cluster.access import AccessPolicy, AllowAll
from secretstore.cluster.driver import ClusterDriver
from secretstore.cluster.membership import Membership
from secretstore.cluster.presigner import Presigner
from secretstore.cluster.refresh import RefreshSchedule
from secretstore.config.loader import load_config
from secretstore.config.model import Deadlines, NodeConfig, SecretStoreConfig
from secretstore.config.rules import check_startup
from secretstore.crypto.keys import KeyPair
from secretstore.crypto.rng import OsRng, Rng
from secretstore.encoding import to_hex
from secretstore.errors import ConfigError, SecretStoreError
from secretstore.filemodes import exposure_warning
from secretstore.http.app import HttpServer, start_http
from secretstore.http.guard import GuardLimits
from secretstore.keyserver import KeyServer
from secretstore.listen import host_port, listening
from secretstore.logs import short_node
from secretstore.mesh.admission import AdmissionLimits
from secretstore.mesh.connection import MeshTimings
from secretstore.mesh.transport import HostPort, MeshTransport
from secretstore.observe.health import Health, PeerState, plural
from secretstore.observe.metrics import NodeMetrics
from secretstore.observe.observer import NodeObserver
from secretstore.observe.peers import PeerWatch
from secretstore.observe.recent import RecentSessions
from secretstore.observe.routes import observe_routes
from secretstore.sessions.admin.authority import AdminAuthority, ConfiguredAdmin
from secretstore.sessions.admin.delete import DeleteSettings, delete_tables
from secretstore.sessions.admin.factories import admin_tables, refresh_tables
from secretstore.sessions.admin.node_set_change import AdminSettings, NodeSetChange
from secretstore.sessions.admin.refresh import RefreshSession, RefreshSettings
from secretstore.sessions.base import SessionContext
from secretstore.sessions.claims import KeyClaims
from secretstore.sessions.core import NodeCore
from secretstore.sessions.presign import PresignPool
from secretstore.sessions.registry import MASTERS, SLAVES
from secretstore.storage.leveldb import LevelDbKeyStorage
from secretstore.types import NodeId

if TYPE_CHECKING:  # the chain modules (web3) load only for a node whose config uses a chain
    from secretstore.chain.node_set import ContractNodeSet
    from secretstore.chain.runtime import ChainRuntime

log = logging.getLogger(__name__)

#: A peer silent for this many keep-alive intervals is taken for dead.
DEAD_AFTER_INTERVALS: Final = 3.0


def check_supported(config: NodeConfig) -> None:
    """Refuse a config this node cannot run (config/rules.py): ConfigError naming the option
    and saying what to set instead."""
    check_startup(config)


def mesh_timings(keep_alive_interval: float, deadlines: Deadlines | None = None) -> MeshTimings:
    """The mesh's keep-alive and deadline settings from the config's `keep_alive_interval`,
    `peer_timeout` and `handshake_timeout`."""
    chosen = deadlines or Deadlines()
    return MeshTimings(
        handshake_timeout=chosen.handshake_timeout,
        ping_interval=keep_alive_interval,
        dead_after=keep_alive_interval * DEAD_AFTER_INTERVALS,
        response_timeout=chosen.peer_timeout,
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
        self._flusher: AuditFlusher | None = None
        self._presigns: PresignPool | None = None
        self._presigner: Presigner | None = None
        self._transport: MeshTransport | None = None
        self._driver: ClusterDriver | None = None
        self._http: HttpServer | None = None
        self._watch: PeerWatch | None = None
        self._membership: Membership | None = None
        self._chain: ChainRuntime | None = None
        self._core: NodeCore | None = None
        self._schedule: RefreshSchedule | None = None
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
        """The key servers now: the configured `nodes`, or the contract's current set (empty,
        i.e. isolated, until the first block is read)."""
        if self._membership is not None:
            return self._membership.cluster
        if self._store.server_set_contract is not None:
            return {}
        return {n.node_id: (n.host, n.port) for n in self._store.nodes}

    @property
    def mesh_address(self) -> HostPort | None:
        return self._transport.listen_address if self._transport is not None else None

    @property
    def http_address(self) -> HostPort | None:
        return (self._http.host, self._http.port) if self._http is not None else None

    def health(self) -> Health:
        connected = self._transport.connected() if self._transport is not None else frozenset()
        nodes = self.cluster_nodes
        peers = tuple(
            PeerState(node, host_port(*nodes[node]), node in connected, node == self.node_id)
            for node in sorted(nodes)
        )
        change = self._core.exclusive_session if self._core is not None else None
        return Health(
            self.node_id,
            __version__,
            time.monotonic() - self._started_at,
            self.observer.keys if self._storage is not None else None,
            peers,
            chain=self._chain.status() if self._chain is not None else None,
            isolated=self.node_id not in nodes,
            node_set_change=change.status() if isinstance(change, NodeSetChange) else None,
            refresh=self._refresh_status(),
            presignatures=self._presignature_status(),
        )

    def _refresh_status(self) -> dict[str, Any] | None:
        """The progress of the refresh running here (None when none runs)."""
        sessions = self._core.sessions() if self._core is not None else []
        refreshes = [session for session in sessions if isinstance(session, RefreshSession)]
        return refreshes[0].status() if refreshes else None

    def _presignature_status(self) -> dict[str, Any] | None:
        """The ECDSA presignature pool's sizes and its refills (None: presignatures off)."""
        if self._presigns is None:
            return None
        presignatures: dict[str, Any] = dict(self._presigns.sizes())
        presigner = self._presigner
        presignatures["refilling"] = presigner is not None and presigner.busy
        presignatures["made"] = presigner.made if presigner is not None else 0
        return presignatures

    # --- the configured node set at run time ----------------------------------------------
    def update_nodes(self, nodes: Mapping[NodeId, HostPort]) -> bool:
        """Work with the configured `nodes` (this node added if missing) from now on, through
        the membership: the mesh drops links to nodes no longer listed and dials new ones, new
        sessions see the new set (running ones keep theirs). False when nothing changed or the
        node set follows a contract."""
        membership = self._membership
        if membership is None or self._store.server_set_contract is not None:
            return False
        wanted = {NodeId(bytes(node)): address for node, address in nodes.items()}
        wanted.setdefault(self.node_id, membership.cluster.get(self.node_id, ("", 0)))
        changed = membership.update(wanted, wanted)
        if changed and self._watch is not None:
            self._watch.nodes_changed()
        return changed

    def reload_nodes(self) -> bool:
        """Read the config file again and apply its `nodes` list (SIGHUP). Other options take
        effect at the next start. ConfigError for a config that does not load or names another
        key for this node; False when the node set is unchanged (or follows a contract)."""
        source = self.config.source
        if source is None:
            raise ConfigError("config", "this node was not started from a config file")
        store = load_config(source).secretstore
        if store.self_key is None or store.self_key.node_id != self.node_id:
            raise ConfigError(
                f"{source}: secretstore.self_secret", "changed: restart the node to use a new key"
            )
        if self._store.server_set_contract is not None:
            log.info("the node set follows the key server set contract: `nodes` is not used")
            return False
        return self.update_nodes({n.node_id: (n.host, n.port) for n in store.nodes})

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
        warn_if_exposed(self.config)
        try:
            self._storage = LevelDbKeyStorage(store.path)
            signer = NodeSigner(self._key)
            audit_store = LevelDbAuditStore(self._storage, sync=store.audit_sync)
            audit = AuditRecorder(audit_store, signer)
            log.info("audit log: %d entries", audit.entries)
            self.observer.keys = self._storage.count()
            if not store.audit_sync:
                self._flusher = AuditFlusher(audit_store)
                self._flusher.start()
            limits = store.limits
            self._transport = MeshTransport(
                self._key,
                (store.interface, store.port),
                nodes,
                rng=self._rng,
                timings=mesh_timings(store.keep_alive_interval, store.deadlines),
                dial_all=True,
                admission=AdmissionLimits(
                    max_pending=limits.max_pending_handshakes,
                    max_pending_per_address=limits.max_pending_handshakes_per_address,
                    reserved_for_nodes=limits.reserved_handshakes_for_nodes,
                ),
            )
            authority: AdminAuthority = ConfiguredAdmin(store.admin_public)
            if store.auto_migrates:  # the contract's migration master, for its migrations
                from secretstore.chain.migration_session import MigrationAdmin

                authority = MigrationAdmin(self.node_id, self._contract_node_set)
            admin = AdminSettings(
                authority,
                self._storage,
                self._transport.connected,
                keys_in_flight=store.node_set_change_keys_in_flight,
                stall_timeout=2 * store.session_timeout,
            )
            admin_masters, admin_slaves = admin_tables(admin)
            claims = KeyClaims()
            delete_masters, delete_slaves = delete_tables(DeleteSettings(self._storage, claims))
            refresh = RefreshSettings(
                ConfiguredAdmin(store.admin_public),
                self._storage,
                claims,
                self._transport.connected,
                time.time,
                scheduled=store.refresh_interval > 0,
                stall_timeout=2 * store.session_timeout,
            )
            refresh_masters, refresh_slaves = refresh_tables(refresh)
            pool = None
            if store.ecdsa_presignatures > 0:
                pool = PresignPool(self.node_id, depth=store.ecdsa_presignatures)
            self._presigns = pool
            ctx = SessionContext(
                self.node_id,
                self._rng,
                frozenset(nodes),
                presigns=pool,
                require_bound_requests=store.require_bound_requests,
                require_shadow_retrieval=store.require_shadow_retrieval,
                audit=signer,
            )
            core = NodeCore(
                ctx,
                self._storage,
                {**MASTERS, **admin_masters, **delete_masters, **refresh_masters},
                {**SLAVES, **admin_slaves, **delete_slaves, **refresh_slaves},
                max_sessions_per_peer=limits.max_sessions_per_peer,
                claims=claims,
            )
            self._core = core
            membership = Membership(self.node_id, core, self._transport, nodes)
            self._membership = membership
            self.metrics.watch(
                connected=self._connected_count,
                configured=lambda: membership.peers,
                keys=lambda: self.observer.keys,
            )
            if store.uses_chain:
                self._chain = self._build_chain(store, core, membership, audit)
                if self._chain is not None:
                    self._watch_chain(self._chain, membership)
            access: AccessPolicy = self._chain.access if self._chain is not None else AllowAll()
            self._driver = ClusterDriver(
                core,
                self._transport,
                self._storage,
                access,
                store.session_timeout,
                response_timeout=store.deadlines.peer_timeout,
                audit=audit,
                observer=self.observer,
            )
            self._watch = PeerWatch(
                self._driver,
                self._transport.connected,
                lambda: {
                    node: host_port(*address)
                    for node, address in membership.connections.items()
                    if node != self.node_id
                },
            )
            self._transport.set_handler(self._watch)
            if pool is not None:
                self._presigner = Presigner(self._driver, pool)
            self.key_server = KeyServer(
                cluster=self._driver,
                cluster_size=lambda: membership.size,
                rng=self._rng,
                pin=access.pin,
                require_bound_requests=store.require_bound_requests,
                refresh_batch_size=store.refresh_batch_size,
                ecdsa_signed=self._presigner.used if self._presigner is not None else None,
            )
            if self._chain is not None:
                from secretstore.chain.services.runtime import attach_services

                self._chain.services = attach_services(
                    store,
                    self._chain.client,
                    key_server=self.key_server,
                    storage=self._storage,
                    access=access,
                    driver=self._driver,
                    membership=membership,
                )
            if self._watch is not None:
                # who is missing, said before the first dial: a link may come up at once
                self._watch.start(alone=len(nodes) == 1)
            await listening(
                "secretstore.port",
                "secretstore.interface",
                (store.interface, store.port),
                self._transport.start(),
            )
            if self._chain is not None:
                await self._chain.start()
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
                        limits=GuardLimits(
                            store.deadlines.http_read_timeout, store.deadlines.http_max_requests
                        ),
                    ),
                )
            if store.refresh_interval > 0:
                transport = self._transport
                self._schedule = RefreshSchedule(
                    self._driver,
                    self._storage,
                    self_id=self.node_id,
                    interval=store.refresh_interval,
                    batch_size=store.refresh_batch_size,
                    cluster=lambda: frozenset(membership.cluster),
                    connected=transport.connected,
                )
                self._schedule.start()
                log.info("refresh schedule: every %g s", store.refresh_interval)
        except BaseException:
            await self.stop()
            raise
        log.info("node %s started", short_node(self.node_id))

    async def stop(self) -> None:
        """Stop what runs, in reverse order; safe to call twice or after a failed start."""
        if self._schedule is not None:
            schedule, self._schedule = self._schedule, None
            await schedule.stop()
        if self._http is not None:
            http, self._http = self._http, None
            await http.stop()
        if self._chain is not None:
            chain, self._chain = self._chain, None
            await chain.stop()
        if self._watch is not None:
            await self._watch.stop()
        if self._transport is not None:
            transport, self._transport = self._transport, None
            await transport.stop()
        if self._presigner is not None:
            presigner, self._presigner = self._presigner, None
            await presigner.close()
        if self._driver is not None:
            driver, self._driver = self._driver, None
            await driver.close()
        if self._flusher is not None:
            flusher, self._flusher = self._flusher, None
            await flusher.stop()
        if self._storage is not None:
            storage, self._storage = self._storage, None
            storage.close()
            log.info("key storage closed")

    def _build_chain(
        self,
        store: SecretStoreConfig,
        core: NodeCore,
        membership: Membership,
        audit: AuditRecorder | None,
    ) -> ChainRuntime | None:
        """The chain side (imported here: web3 takes most of a second to load, which a node
        without a chain need not spend at start-up)."""
        from secretstore.chain.migration_session import SessionNodeSetChange
        from secretstore.chain.runtime import build_chain

        assert self._storage is not None and self._transport is not None
        change = None
        if store.auto_migrates:
            change = SessionNodeSetChange(
                self._key,
                core,
                self._storage,
                self._run_session,
                audit=audit,
                observer=self.observer,
            )
        return build_chain(
            store, self._key, membership, self._rng, self._transport.connected, change=change
        )

    def _watch_chain(self, chain: ChainRuntime, membership: Membership) -> None:
        client = chain.client
        self.metrics.watch_chain(
            trusted=lambda: client.trusted,
            block=lambda: client.head.number if client.head is not None else None,
            isolated=lambda: membership.isolated,
        )

    def _connected_count(self) -> int:
        return len(self._transport.connected()) if self._transport is not None else 0

    def _contract_node_set(self) -> ContractNodeSet | None:
        return self._chain.node_set if self._chain is not None else None

    async def _run_session(self, request: Any) -> Any:
        """Run a session as this node's master (auto-migration's node set change)."""
        if self._driver is None:
            raise SecretStoreError("the node is not running")
        return await self._driver.request(request)


def warn_if_exposed(config: NodeConfig) -> None:
    """Log a warning for the key database, and for a config file holding a raw secret, when
    group or others may access it (the node still starts)."""
    checks = [(config.secretstore.path, "the key database")]
    if config.source is not None and config.secretstore.self_account is None:
        checks.append((config.source, "the config file holding self_secret"))
    for path, what in checks:
        warning = exposure_warning(path, what)
        if warning is not None:
            log.warning("%s", warning)


async def run_node(
    config: NodeConfig,
    stop: asyncio.Event,
    *,
    rng: Rng | None = None,
    hangup: asyncio.Event | None = None,
) -> None:
    """Run a node until `stop` is set, then shut it down; each time `hangup` is set, re-read
    the config's `nodes` (a bad config is logged and changes nothing). A disabled config
    returns at once."""
    if config.secretstore.disable:
        log.info("the secret store is disabled (secretstore.disable = true); nothing to run")
        return
    node = Node(config, rng=rng)
    await node.start()
    try:
        while not stop.is_set():
            if hangup is None:
                await stop.wait()
                break
            waiters = [asyncio.ensure_future(e.wait()) for e in (stop, hangup)]
            await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
            for waiter in waiters:
                waiter.cancel()
            if hangup.is_set() and not stop.is_set():
                hangup.clear()
                try:
                    if not node.reload_nodes():
                        log.info("config read again: the node set is unchanged")
                except ConfigError as exc:
                    log.error("config not applied: %s", exc)
        log.info("shutting down")
    finally:
        await node.stop()
    log.info("node %s stopped", short_node(node.node_id))
