"""An in-memory twin of the mesh on one event loop: partitions, heals, drops and delays.

A link between two nodes is up while both transports run, each has the other in its node set and
the pair is not partitioned. Events are delivered asynchronously (never inside the caller's
call) with the same guarantees as the TCP transport: per link, on_connected, then messages in
order, then on_disconnected; whatever is in flight when a link goes down is lost.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from secretstore.crypto.rng import Rng, SeededRng
from secretstore.errors import SecretStoreError
from secretstore.mesh.port import NullHandler, TransportHandler
from secretstore.types import NodeId

_Pair = frozenset[NodeId]


@dataclass(slots=True)
class _Direction:
    """The state of one direction of a link: its epoch, faults and the queue in flight."""

    epoch: int = 0
    delay: float = 0.0
    drop_rate: float = 0.0
    queue: deque[tuple[float, int, bytes]] = field(default_factory=deque)
    pump_scheduled: bool = False
    sent: int = 0
    dropped: int = 0


class MemoryNetwork:
    """Creates and wires MemoryTransports; the test's handle on the links between them."""

    def __init__(self, node_ids: Iterable[NodeId] = (), *, rng: Rng | None = None) -> None:
        self._rng = rng or SeededRng(0)
        self._transports: dict[NodeId, MemoryTransport] = {}
        self._partitioned: set[_Pair] = set()
        self._directions: dict[tuple[NodeId, NodeId], _Direction] = {}
        self._up: set[_Pair] = set()
        ids = list(node_ids)
        for node in ids:
            self.add_node(node, ids)

    @property
    def transports(self) -> Mapping[NodeId, MemoryTransport]:
        return dict(self._transports)

    def transport(self, node: NodeId) -> MemoryTransport:
        try:
            return self._transports[node]
        except KeyError:
            raise SecretStoreError(f"no memory transport for node {node.hex()[:8]}") from None

    def add_node(self, node: NodeId, known: Iterable[NodeId] | None = None) -> MemoryTransport:
        """A new transport; it knows `known` (default: every node so far, and itself)."""
        if node in self._transports:
            raise SecretStoreError(f"node {node.hex()[:8]} is in the network already")
        peers = set(self._transports) if known is None else set(known)
        transport = MemoryTransport(self, node, peers)
        self._transports[node] = transport
        return transport

    # --- faults --------------------------------------------------------------------------
    def partition(self, a: NodeId, b: NodeId) -> None:
        self._partitioned.add(frozenset((a, b)))
        self.refresh()

    def heal(self, a: NodeId, b: NodeId) -> None:
        self._partitioned.discard(frozenset((a, b)))
        self.refresh()

    def isolate(self, node: NodeId) -> None:
        """Partition `node` from every other node."""
        self._partitioned.update(frozenset((node, o)) for o in self._transports if o != node)
        self.refresh()

    def heal_all(self) -> None:
        self._partitioned.clear()
        self.refresh()

    def set_delay(self, sender: NodeId, receiver: NodeId, seconds: float) -> None:
        """Delay messages from sender to receiver (order is kept)."""
        self._direction(sender, receiver).delay = seconds

    def set_drop_rate(self, sender: NodeId, receiver: NodeId, rate: float) -> None:
        """Silently lose this fraction of messages from sender to receiver (drawn from the rng)."""
        self._direction(sender, receiver).drop_rate = rate

    def counts(self, sender: NodeId, receiver: NodeId) -> tuple[int, int]:
        """(messages accepted by send, messages dropped by the drop rate) in that direction."""
        direction = self._direction(sender, receiver)
        return direction.sent, direction.dropped

    # --- links ---------------------------------------------------------------------------
    def _direction(self, sender: NodeId, receiver: NodeId) -> _Direction:
        return self._directions.setdefault((sender, receiver), _Direction())

    def _should_be_up(self, a: MemoryTransport, b: MemoryTransport) -> bool:
        return (
            a.running
            and b.running
            and b.self_id in a.peers
            and a.self_id in b.peers
            and frozenset((a.self_id, b.self_id)) not in self._partitioned
        )

    def refresh(self) -> None:
        """Bring every link to the state the transports and partitions call for."""
        nodes = sorted(self._transports)
        for i, a in enumerate(nodes):
            for b in nodes[i + 1 :]:
                pair = frozenset((a, b))
                want = self._should_be_up(self._transports[a], self._transports[b])
                if want and pair not in self._up:
                    self._up.add(pair)
                    self._set_link(a, b, up=True)
                elif not want and pair in self._up:
                    self._up.discard(pair)
                    self._set_link(a, b, up=False)

    def _set_link(self, a: NodeId, b: NodeId, *, up: bool) -> None:
        for sender, receiver in ((a, b), (b, a)):
            direction = self._direction(sender, receiver)
            direction.epoch += 1
            direction.queue.clear()
            self._transports[sender].link_changed(receiver, up=up)

    def is_up(self, a: NodeId, b: NodeId) -> bool:
        return frozenset((a, b)) in self._up

    def carry(self, sender: NodeId, receiver: NodeId, payload: bytes) -> bool:
        if not self.is_up(sender, receiver):
            return False
        direction = self._direction(sender, receiver)
        direction.sent += 1
        if direction.drop_rate > 0:
            unit = int.from_bytes(self._rng.random_bytes(4), "big") / 2**32
            if unit < direction.drop_rate:
                direction.dropped += 1
                return True
        loop = asyncio.get_running_loop()
        direction.queue.append((loop.time() + direction.delay, direction.epoch, payload))
        if not direction.pump_scheduled:
            self._schedule_pump(sender, receiver, direction)
        return True

    def _schedule_pump(self, sender: NodeId, receiver: NodeId, direction: _Direction) -> None:
        loop = asyncio.get_running_loop()
        due = direction.queue[0][0]
        direction.pump_scheduled = True
        if due <= loop.time():
            loop.call_soon(self._pump, sender, receiver)
        else:
            loop.call_at(due, self._pump, sender, receiver)

    def _pump(self, sender: NodeId, receiver: NodeId) -> None:
        direction = self._direction(sender, receiver)
        direction.pump_scheduled = False
        now = asyncio.get_running_loop().time()
        target = self._transports[receiver]
        while direction.queue and direction.queue[0][0] <= now:
            _, epoch, payload = direction.queue.popleft()
            if epoch == direction.epoch and self.is_up(sender, receiver):
                target.deliver(sender, payload)
        if direction.queue:
            self._schedule_pump(sender, receiver, direction)


class MemoryTransport:
    """One node's end of a MemoryNetwork; implements port.Transport."""

    def __init__(self, network: MemoryNetwork, node: NodeId, peers: Iterable[NodeId]) -> None:
        self._network = network
        self._self_id = node
        self._peers = frozenset(p for p in peers if p != node)
        self._handler: TransportHandler = NullHandler()
        self._running = False
        self._connected: set[NodeId] = set()
        #: the nodes sessions wait on (links here are up or down: nothing more to watch)
        self.watched: frozenset[NodeId] = frozenset()
        self._close_reasons: dict[NodeId, str] = {}

    @property
    def self_id(self) -> NodeId:
        return self._self_id

    @property
    def running(self) -> bool:
        return self._running

    @property
    def peers(self) -> frozenset[NodeId]:
        return self._peers

    def set_handler(self, handler: TransportHandler) -> None:
        self._handler = handler

    async def start(self) -> None:
        self._running = True
        self._network.refresh()

    async def stop(self) -> None:
        self._running = False
        self._network.refresh()
        await asyncio.sleep(0)  # let the disconnect events run

    def send(self, node: NodeId, payload: bytes) -> bool:
        if node not in self._connected:
            return False
        return self._network.carry(self._self_id, node, bytes(payload))

    def connected(self) -> frozenset[NodeId]:
        return frozenset(self._connected)

    def watch(self, nodes: frozenset[NodeId]) -> None:
        self.watched = frozenset(nodes)

    def close_reason(self, node: NodeId) -> str:
        return self._close_reasons.get(node, "")

    def update_nodes(self, nodes: Iterable[NodeId]) -> None:
        """Replace the set of nodes this transport links with."""
        self._peers = frozenset(p for p in nodes if p != self._self_id)
        self._network.refresh()

    # --- called by the network -----------------------------------------------------------
    def link_changed(self, node: NodeId, *, up: bool) -> None:
        loop = asyncio.get_running_loop()
        if up:
            self._connected.add(node)
            loop.call_soon(self._handler.on_connected, node)
        else:
            self._connected.discard(node)
            self._close_reasons[node] = "link down" if self._running else "stopped"
            loop.call_soon(self._handler.on_disconnected, node)

    def deliver(self, node: NodeId, payload: bytes) -> None:
        self._handler.on_message(node, payload)
