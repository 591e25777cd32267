"""The known-nodes TCP mesh: listen, dial by a deterministic rule, reconnect, route frames.

Dialing rule: of two nodes, the one with the smaller id (bytewise) dials the other and redials
with exponential backoff and jitter while the other is in the node set. An inbound connection
from a known node is always accepted when there is none; when there is one already, the
connection dialed by the smaller id wins, and between two such the newer one (the dialer only
redials after losing its connection, e.g. when it restarted). Both ends apply the same rule, so
they keep the same single connection. With `dial_all` a node dials the smaller ids too: at once
when it starts, later only after giving the rule's dial a moment.

Inbound connections pass the admission policy (mesh/admission.py) before the handshake: pending
handshakes are capped per source address and in total, with a reserve for the configured
nodes' addresses (host names in the node set are resolved when the set is given). A refused
connection is closed at once; refusals are logged once per address and burst.

Half-open links: when a peer dials while this node still holds a connection to it that the
rule keeps, the peer has no link (it restarted, or it closed ours after a partition), so the
old one is probed (mesh/connection.py): a connection that does not answer within the
response deadline is closed, and the next dial replaces it. `watch(nodes)` marks the links
that sessions wait on, which then owe a frame within that deadline too.

`send` never raises for a missing link: it returns False when the node is not connected.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from secretstore.crypto.keys import KeyPair
from secretstore.crypto.rng import DEFAULT_RNG, Rng
from secretstore.errors import SecretStoreError
from secretstore.mesh.admission import AdmissionLimits, HandshakeAdmission, Refuse
from secretstore.mesh.connection import (
    STREAM_LIMIT,
    MeshConnection,
    MeshConnectionError,
    MeshTimings,
    establish,
    short_id,
)
from secretstore.mesh.framing import FrameError
from secretstore.mesh.handshake import HandshakeRefused, Role
from secretstore.mesh.port import NullHandler, TransportHandler
from secretstore.types import NodeId

log = logging.getLogger(__name__)

HostPort = tuple[str, int]


@dataclass(frozen=True, slots=True)
class Backoff:
    """Redial delays: initial·factor^attempt capped at maximum, then reduced by up to jitter·d."""

    initial: float = 0.1
    maximum: float = 2.0
    factor: float = 2.0
    jitter: float = 0.5

    def delay(self, attempt: int, rng: Rng) -> float:
        base = min(self.maximum, self.initial * self.factor ** min(attempt, 64))
        unit = int.from_bytes(rng.random_bytes(4), "big") / 2**32
        return base * (1.0 - self.jitter * unit)


class MeshTransport:
    """The Transport over TCP between the configured nodes only (see port.Transport)."""

    def __init__(
        self,
        self_key: KeyPair,
        self_address: HostPort,
        nodes: Mapping[NodeId, HostPort],
        *,
        rng: Rng = DEFAULT_RNG,
        timings: MeshTimings | None = None,
        backoff: Backoff | None = None,
        dial_all: bool = False,
        admission: AdmissionLimits | None = None,
    ) -> None:
        """`nodes` may include this node (ignored). `dial_all` also dials larger ids, for a
        node that the smaller ones cannot reach; duplicates are resolved as described above.
        `admission`: the limits of pending inbound handshakes."""
        self._key = self_key
        self._self_id = NodeId(self_key.public.to_bytes())
        self._listen = self_address
        self._nodes = self._without_self(nodes)
        self._rng = rng
        self._timings = timings or MeshTimings()
        self._backoff = backoff or Backoff()
        self._dial_all = dial_all
        self._admission = HandshakeAdmission(admission or AdmissionLimits())
        #: host names of the node set → their IP addresses (literal IPs need no entry)
        self._resolved: dict[str, tuple[str, ...]] = {}
        self._handler: TransportHandler = NullHandler()
        self._server: asyncio.Server | None = None
        self._running = False
        self._connections: dict[NodeId, MeshConnection] = {}
        #: why the last link to each node ended
        self._close_reasons: dict[NodeId, str] = {}
        #: the nodes that sessions wait on (see watch)
        self._watched: frozenset[NodeId] = frozenset()
        self._dialers: dict[NodeId, asyncio.Task[None]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._update_node_addresses()

    # --- the Transport port ------------------------------------------------------------
    @property
    def self_id(self) -> NodeId:
        return self._self_id

    def set_handler(self, handler: TransportHandler) -> None:
        self._handler = handler

    async def start(self) -> None:
        """Listen on self_address, then dial the peers this node dials."""
        if self._running:
            raise SecretStoreError("the mesh transport is already running")
        host, port = self._listen
        try:
            self._server = await asyncio.start_server(
                self._on_inbound, host, port, limit=STREAM_LIMIT
            )
        except OSError as exc:
            raise MeshConnectionError(f"cannot listen on {host}:{port}: {exc}") from exc
        self._running = True
        log.info("mesh %s listening on %s:%d", short_id(self._self_id), *self.listen_address)
        self._resolve_node_names()
        self._sync_dialers()

    async def stop(self) -> None:
        """Stop listening and dialing, close every connection, wait for every task."""
        if not self._running:
            return
        self._running = False
        if self._server is not None:
            self._server.close()
        for connection in list(self._connections.values()):
            connection.close("shutting down")
        tasks = [*self._dialers.values(), *self._tasks]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._dialers.clear()
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None
        log.info("mesh %s stopped", short_id(self._self_id))

    def send(self, node: NodeId, payload: bytes) -> bool:
        """Queue `payload` for `node`; False when not connected. Raises OversizedFrame when the
        payload is above the frame limit."""
        connection = self._connections.get(node)
        if connection is None:
            return False
        return connection.send(payload)

    def connected(self) -> frozenset[NodeId]:
        return frozenset(node for node, c in self._connections.items() if not c.is_closed)

    def watch(self, nodes: frozenset[NodeId]) -> None:
        """The nodes that sessions wait on now: their links owe a frame within the response
        deadline (MeshTimings.response_timeout) or are closed as unresponsive."""
        self._watched = frozenset(nodes)
        for node, connection in self._connections.items():
            connection.watch(node in self._watched)

    def close_reason(self, node: NodeId) -> str:
        """Why the last link to `node` ended ("" when none has)."""
        return self._close_reasons.get(node, "")

    # --- beyond the port ---------------------------------------------------------------
    @property
    def listen_address(self) -> HostPort:
        """The bound (host, port); the real port when self_address asked for port 0."""
        if self._server is None or not self._server.sockets:
            return self._listen
        host, port = self._server.sockets[0].getsockname()[:2]
        return str(host), int(port)

    @property
    def nodes(self) -> Mapping[NodeId, HostPort]:
        return dict(self._nodes)

    @property
    def admission(self) -> HandshakeAdmission:
        """The admission policy of inbound connections (its counters are live)."""
        return self._admission

    def update_nodes(self, nodes: Mapping[NodeId, HostPort]) -> None:
        """Replace the known nodes: drop links to removed ones and to those whose address
        changed (they are dialed again at the new address), dial new ones."""
        old, self._nodes = self._nodes, self._without_self(nodes)
        self._update_node_addresses()
        for node, connection in list(self._connections.items()):
            if node not in self._nodes:
                connection.close("removed from the node set")
            elif old.get(node) != self._nodes[node]:
                connection.close("its address changed")
        for node, task in list(self._dialers.items()):
            if node not in self._nodes:
                task.cancel()
                del self._dialers[node]
        if self._running:
            self._resolve_node_names()
            self._sync_dialers()

    # --- the node set's addresses, for admission ---------------------------------------
    def _update_node_addresses(self) -> None:
        addresses: list[str] = []
        for host, _port in self._nodes.values():
            addresses += [host] if _is_ip(host) else self._resolved.get(host, ())
        self._admission.set_node_addresses(addresses)

    def _resolve_node_names(self) -> None:
        names = {host for host, _ in self._nodes.values() if not _is_ip(host)}
        if names:
            task = asyncio.create_task(self._resolve(names))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _resolve(self, names: set[str]) -> None:
        loop = asyncio.get_running_loop()
        for name in sorted(names):
            try:
                infos = await loop.getaddrinfo(name, None, type=socket.SOCK_STREAM)
            except OSError as exc:
                log.warning("cannot resolve node host %s: %s", name, exc)
                continue
            self._resolved[name] = tuple(sorted({str(info[4][0]) for info in infos}))
        self._update_node_addresses()

    # --- dialing -----------------------------------------------------------------------
    def _without_self(self, nodes: Mapping[NodeId, HostPort]) -> dict[NodeId, HostPort]:
        return {NodeId(bytes(n)): a for n, a in nodes.items() if n != self._self_id}

    def _dials(self, node: NodeId) -> bool:
        return self._dial_all or self._self_id < node

    def _sync_dialers(self) -> None:
        for node in self._nodes:
            if self._dials(node) and node not in self._dialers:
                self._dialers[node] = asyncio.create_task(self._dial_loop(node))

    async def _dial_loop(self, node: NodeId) -> None:
        attempt = 0
        # The first dial goes at once: the peer's redials to a node that was down backed off
        # (up to Backoff.maximum), so yielding to them would hold up a node that starts.
        first = True
        while self._running and node in self._nodes:
            existing = self._connections.get(node)
            if existing is not None:
                await existing.wait_closed()
                attempt = 0
            elif node < self._self_id and not first and not await self._yield_to_rule_dialer(node):
                continue
            else:
                connection = await self._dial_once(node, attempt)
                if connection is not None and self._register(connection):
                    began = asyncio.get_running_loop().time()
                    await self._serve(connection)
                    lived = asyncio.get_running_loop().time() - began
                    # a link that ended at once (refused as a duplicate) backs off
                    attempt = 0 if lived > self._timings.response_timeout else attempt + 1
                else:
                    attempt += 1
            first = False
            if self._running:
                await asyncio.sleep(self._backoff.delay(attempt, self._rng))

    async def _yield_to_rule_dialer(self, node: NodeId) -> bool:
        """Before dialing a smaller id (dial_all), give it a moment to dial us as the rule
        says; True when there is still no link afterwards."""
        await asyncio.sleep(self._timings.response_timeout / 2)
        return self._running and node not in self._connections

    async def _dial_once(self, node: NodeId, attempt: int) -> MeshConnection | None:
        host, port = self._nodes[node]
        try:
            async with asyncio.timeout(self._timings.handshake_timeout):
                reader, writer = await asyncio.open_connection(host, port, limit=STREAM_LIMIT)
        except (OSError, TimeoutError) as exc:
            log.debug("node %s: dial %s:%d failed: %s", short_id(node), host, port, exc)
            return None
        try:
            return await establish(
                reader,
                writer,
                role=Role.INITIATOR,
                node_key=self._key,
                allowed=frozenset(self._nodes),
                rng=self._rng,
                timings=self._timings,
                expected_peer=node,
            )
        except (HandshakeRefused, FrameError, MeshConnectionError) as exc:
            level = logging.WARNING if attempt == 0 else logging.DEBUG
            log.log(
                level,
                "node %s (%s): outbound handshake failed: %s",
                short_id(node),
                _address(host, port),
                exc,
            )
            return None

    # --- accepting ---------------------------------------------------------------------
    async def _on_inbound(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        source = _source_address(writer)
        try:
            if not self._running:
                writer.transport.abort()
                return
            decision = self._admission.admit(source)
            if isinstance(decision, Refuse):
                writer.transport.abort()
                if decision.first_in_burst:
                    log.warning(
                        "refusing inbound connections from %s: %s (not logged again until one "
                        "is admitted)",
                        source,
                        decision.reason,
                    )
                return
            if decision.refused_before:
                log.info(
                    "admitted a connection from %s after refusing %d",
                    source,
                    decision.refused_before,
                )
            try:
                connection = await establish(
                    reader,
                    writer,
                    role=Role.RESPONDER,
                    node_key=self._key,
                    allowed=frozenset(self._nodes),
                    rng=self._rng,
                    timings=self._timings,
                )
            except (HandshakeRefused, FrameError) as exc:
                peer = _peer_address(writer.get_extra_info("peername"))
                log.warning("refused inbound connection from %s: %s", peer, exc)
                return
            except MeshConnectionError as exc:
                peer = _peer_address(writer.get_extra_info("peername"))
                log.info("inbound handshake from %s failed: %s", peer, exc)
                return
            finally:
                self._admission.release(source)
            if self._register(connection):
                await self._serve(connection)
        except asyncio.CancelledError:
            # stop() cancels this server-owned task; ending quietly keeps asyncio's stream
            # callback from reporting the cancellation as an error.
            pass
        finally:
            if task is not None:
                self._tasks.discard(task)

    # --- the connection table ----------------------------------------------------------
    def _dialed_by_rule(self, connection: MeshConnection) -> bool:
        """True when the connection was dialed by the smaller of the two ids."""
        we_dialed = connection.role is Role.INITIATOR
        return we_dialed == (self._self_id < connection.peer)

    def _register(self, connection: MeshConnection) -> bool:
        node = connection.peer
        if not self._running or node not in self._nodes:
            connection.close("not in the node set")
            return False
        existing = self._connections.get(node)
        if existing is not None and not existing.is_closed:
            if not self._dialed_by_rule(connection):
                connection.close("duplicate connection")
                # The peer dialed: it holds no link to us, so ours may be half-open.
                existing.probe()
                return False
            self._drop(existing, "replaced by a newer connection")
        self._connections[node] = connection
        connection.watch(node in self._watched)
        direction = "outbound" if connection.role is Role.INITIATOR else "inbound"
        log.info("node %s: connected (%s)", short_id(node), direction)
        self._emit(self._handler.on_connected, node)
        return True

    def _drop(self, connection: MeshConnection, reason: str) -> None:
        connection.close(reason)
        if self._connections.get(connection.peer) is connection:
            del self._connections[connection.peer]
            self._close_reasons[connection.peer] = reason
            log.info("node %s: disconnected (%s)", short_id(connection.peer), reason)
            self._emit(self._handler.on_disconnected, connection.peer)

    async def _serve(self, connection: MeshConnection) -> None:
        node = connection.peer
        try:
            reason = await connection.run(
                lambda payload: self._emit(self._handler.on_message, node, payload)
            )
        finally:
            self._drop(connection, connection.close_reason or "stopped")
        log.debug("node %s: connection ended: %s", short_id(node), reason)

    @staticmethod
    def _emit(callback: Callable[..., None], node: NodeId, *args: bytes) -> None:
        try:
            callback(node, *args)
        except Exception:
            log.exception("node %s: transport handler failed", short_id(node))


def _address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _peer_address(peername: object) -> str:
    """`host:port` of a socket's peer name (an unknown one for anything else)."""
    if isinstance(peername, tuple) and len(peername) >= 2:
        return _address(str(peername[0]), int(peername[1]))
    return "an unknown address"


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _source_address(writer: asyncio.StreamWriter) -> str:
    """The IP address an inbound connection comes from (its text for other socket kinds)."""
    peer = writer.get_extra_info("peername")
    if isinstance(peer, tuple) and peer:
        return str(peer[0])
    return str(peer)
