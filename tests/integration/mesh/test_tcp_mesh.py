"""Real TCP on loopback: meshes of 3 and 5 nodes, refusals, restarts, tampering, dead peers."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable

import pytest

from secretstore.crypto.curve import Point
from secretstore.crypto.keys import KeyPair
from secretstore.crypto.rng import SeededRng, random_scalar
from secretstore.errors import SecretStoreError
from secretstore.mesh.connection import MeshConnectionError, MeshTimings, PeerRefused, establish
from secretstore.mesh.framing import FrameHeader, FrameKind
from secretstore.mesh.handshake import Role
from secretstore.mesh.port import (
    ConnectedEvent,
    DisconnectedEvent,
    EventQueue,
    MessageEvent,
    Transport,
    TransportEvent,
)
from secretstore.mesh.transport import Backoff, HostPort, MeshTransport
from secretstore.types import NodeId

FAST = MeshTimings(handshake_timeout=2.0, ping_interval=0.1, dead_after=0.6)
QUICK_BACKOFF = Backoff(initial=0.05, maximum=0.3)
LOCAL: HostPort = ("127.0.0.1", 0)


def make_key(seed: int) -> KeyPair:
    secret = random_scalar(SeededRng(seed))
    return KeyPair(secret, Point.base_mul(secret))


def node_id(key: KeyPair) -> NodeId:
    return NodeId(key.public.to_bytes())


def sorted_keys(count: int, base: int = 100) -> list[KeyPair]:
    """Keys ordered by node id, so index 0 dials everybody else."""
    return sorted((make_key(base + i) for i in range(count)), key=node_id)


def transport(
    key: KeyPair, seed: int, *, dial_all: bool = False, listen: HostPort = LOCAL
) -> tuple[MeshTransport, EventQueue]:
    mesh = MeshTransport(
        key,
        listen,
        {},
        rng=SeededRng(seed),
        timings=FAST,
        backoff=QUICK_BACKOFF,
        dial_all=dial_all,
    )
    events = EventQueue()
    mesh.set_handler(events)
    return mesh, events


async def start_mesh(keys: list[KeyPair]) -> list[tuple[MeshTransport, EventQueue]]:
    nodes = [transport(key, i) for i, key in enumerate(keys)]
    for mesh, _ in nodes:
        await mesh.start()
    addresses = {mesh.self_id: mesh.listen_address for mesh, _ in nodes}
    for mesh, _ in nodes:
        mesh.update_nodes(addresses)
    return nodes


async def stop_all(meshes: Iterable[MeshTransport]) -> None:
    for mesh in meshes:
        await mesh.stop()


async def wait_until(condition: Callable[[], bool], timeout: float = 5.0) -> float:
    """Seconds until the condition held; fails the test on timeout."""
    start = time.monotonic()
    while not condition():
        if time.monotonic() - start > timeout:
            pytest.fail("condition not reached in time")
        await asyncio.sleep(0.01)
    return time.monotonic() - start


def full_mesh(meshes: list[MeshTransport]) -> bool:
    everyone = {m.self_id for m in meshes}
    return all(m.connected() == everyone - {m.self_id} for m in meshes)


def drain(events: EventQueue) -> list[TransportEvent]:
    out = []
    while not events.queue.empty():
        out.append(events.queue.get_nowait())
    return out


async def next_event(events: EventQueue, wanted: TransportEvent, timeout: float = 5.0) -> None:
    """Consume events until `wanted` arrives; fails the test on timeout."""
    async with asyncio.timeout(timeout):
        while await events.get() != wanted:
            pass


async def messages(events: EventQueue, count: int, timeout: float = 5.0) -> list[MessageEvent]:
    got: list[MessageEvent] = []
    async with asyncio.timeout(timeout):
        while len(got) < count:
            event = await events.get()
            if isinstance(event, MessageEvent):
                got.append(event)
    return got


def test_mesh_transport_satisfies_the_port() -> None:
    mesh: Transport = MeshTransport(make_key(1), LOCAL, {})
    assert mesh.self_id == node_id(make_key(1))


@pytest.mark.parametrize("count", [3, 5])
async def test_nodes_form_a_full_mesh_and_talk_to_each_other(count: int) -> None:
    nodes = await start_mesh(sorted_keys(count))
    meshes = [m for m, _ in nodes]
    try:
        await wait_until(lambda: full_mesh(meshes))
        for sender in meshes:
            for receiver in meshes:
                if sender is not receiver:
                    assert sender.send(receiver.self_id, b"from " + sender.self_id[:4])
        for mesh, events in nodes:
            got = await messages(events, count - 1)
            assert {e.node for e in got} == {m.self_id for m in meshes} - {mesh.self_id}
            assert all(e.payload == b"from " + e.node[:4] for e in got)
    finally:
        await stop_all(meshes)


async def test_messages_are_delivered_in_order_both_ways() -> None:
    nodes = await start_mesh(sorted_keys(2))
    (a, a_events), (b, b_events) = nodes
    try:
        await wait_until(lambda: full_mesh([a, b]))
        payloads = [i.to_bytes(4, "big") * (1 + i % 300) for i in range(2000)]
        for p in payloads:
            assert a.send(b.self_id, p)
            assert b.send(a.self_id, p)
        assert [e.payload for e in await messages(b_events, len(payloads))] == payloads
        assert [e.payload for e in await messages(a_events, len(payloads))] == payloads
    finally:
        await stop_all([a, b])


async def test_send_to_an_unconnected_node_returns_false() -> None:
    a, _ = transport(make_key(1), 1)
    await a.start()
    try:
        assert a.send(node_id(make_key(2)), b"nobody home") is False
        assert a.connected() == frozenset()
    finally:
        await a.stop()


async def test_node_with_an_unknown_key_is_refused() -> None:
    nodes = await start_mesh(sorted_keys(3))
    meshes = [m for m, _ in nodes]
    stranger, _ = transport(make_key(999), 99, dial_all=True)
    await stranger.start()
    stranger.update_nodes({m.self_id: m.listen_address for m in meshes})
    try:
        await wait_until(lambda: full_mesh(meshes))
        # The stranger dials everybody and is told why it is refused.
        reader, writer = await asyncio.open_connection(*meshes[0].listen_address)
        with pytest.raises(PeerRefused, match="not in the allowed set"):
            await establish(
                reader,
                writer,
                role=Role.INITIATOR,
                node_key=make_key(999),
                allowed={meshes[0].self_id},
                rng=SeededRng(5),
                timings=FAST,
            )
        await asyncio.sleep(0.3)
        assert stranger.connected() == frozenset()
        assert all(stranger.self_id not in m.connected() for m in meshes)
    finally:
        await stop_all([*meshes, stranger])


async def test_liar_claiming_a_configured_id_is_refused() -> None:
    keys = sorted_keys(3)
    nodes = await start_mesh(keys[:2])  # keys[2] is configured but its node is down
    meshes = [m for m, _ in nodes]
    addresses = {m.self_id: m.listen_address for m in meshes}
    addresses[node_id(keys[2])] = ("127.0.0.1", 1)
    for m in meshes:
        m.update_nodes(addresses)
    liar_key = KeyPair(make_key(4242).secret, keys[2].public)
    liar, _ = transport(liar_key, 77, dial_all=True)
    await liar.start()
    liar.update_nodes(addresses)
    try:
        await wait_until(lambda: full_mesh(meshes))
        reader, writer = await asyncio.open_connection(*meshes[0].listen_address)
        with pytest.raises(PeerRefused, match="proof"):
            await establish(
                reader,
                writer,
                role=Role.INITIATOR,
                node_key=liar_key,
                allowed={meshes[0].self_id},
                rng=SeededRng(6),
                timings=FAST,
            )
        await asyncio.sleep(0.3)
        assert liar.connected() == frozenset()
        assert all(node_id(keys[2]) not in m.connected() for m in meshes)
    finally:
        await stop_all([*meshes, liar])


async def test_stopped_node_is_reconnected_after_it_restarts() -> None:
    keys = sorted_keys(3)
    nodes = await start_mesh(keys)
    meshes = [m for m, _ in nodes]
    addresses = {m.self_id: m.listen_address for m in meshes}
    middle = meshes[1]  # dialed by node 0, dials node 2
    try:
        await wait_until(lambda: full_mesh(meshes))
        await middle.stop()
        await wait_until(lambda: all(middle.self_id not in m.connected() for m in meshes))
        await next_event(nodes[0][1], DisconnectedEvent(middle.self_id))
        restarted, restarted_events = transport(keys[1], 50, listen=addresses[middle.self_id])
        restarted.update_nodes(addresses)
        await restarted.start()
        meshes[1] = restarted
        await wait_until(lambda: full_mesh(meshes))
        assert meshes[0].send(restarted.self_id, b"welcome back")
        [event] = await messages(restarted_events, 1)
        assert event == MessageEvent(meshes[0].self_id, b"welcome back")
    finally:
        await stop_all(meshes)


class Proxy:
    """A TCP relay that can flip one byte of the next chunk towards the target, or go silent."""

    def __init__(self, target: HostPort) -> None:
        self.target = target
        self.corrupt_next = False
        self.blackhole = False
        self.corrupted = 0
        self._server: asyncio.Server | None = None
        self._writers: list[asyncio.StreamWriter] = []
        self._relays: set[asyncio.Task[None]] = set()

    async def start(self) -> HostPort:
        self._server = await asyncio.start_server(self._relay, "127.0.0.1", 0)
        return "127.0.0.1", self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        assert self._server is not None
        self._server.close()
        for writer in self._writers:
            writer.transport.abort()
        await asyncio.gather(*self._relays, return_exceptions=True)

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._relays.add(task)
        up_reader, up_writer = await asyncio.open_connection(*self.target)
        self._writers += [writer, up_writer]
        await asyncio.gather(
            self._pump(reader, up_writer, towards_target=True),
            self._pump(up_reader, writer, towards_target=False),
            return_exceptions=True,
        )
        self._relays.discard(task)

    async def _pump(
        self, src: asyncio.StreamReader, dst: asyncio.StreamWriter, *, towards_target: bool
    ) -> None:
        try:
            while data := await src.read(65536):
                if self.blackhole:
                    continue
                if towards_target and self.corrupt_next:
                    self.corrupt_next = False
                    self.corrupted += 1
                    data = data[:-1] + bytes([data[-1] ^ 0x01])
                dst.write(data)
                await dst.drain()
        finally:
            dst.transport.abort()


async def proxied_pair() -> tuple[MeshTransport, EventQueue, MeshTransport, EventQueue, Proxy]:
    """Two nodes; the dialing one reaches the other only through a proxy."""
    small, big = sorted_keys(2, base=300)
    a, a_events = transport(small, 1)
    b, b_events = transport(big, 2)
    await a.start()
    await b.start()
    proxy = Proxy(b.listen_address)
    via = await proxy.start()
    a.update_nodes({a.self_id: a.listen_address, b.self_id: via})
    b.update_nodes({a.self_id: a.listen_address, b.self_id: b.listen_address})
    await wait_until(lambda: full_mesh([a, b]))
    return a, a_events, b, b_events, proxy


async def test_tampered_frame_closes_the_connection_and_is_never_delivered() -> None:
    a, a_events, b, b_events, proxy = await proxied_pair()
    try:
        drain(a_events)
        drain(b_events)
        proxy.corrupt_next = True
        assert a.send(b.self_id, b"tampered in transit")
        await wait_until(lambda: proxy.corrupted == 1)
        async with asyncio.timeout(5.0):
            event = await b_events.get()
        assert event == DisconnectedEvent(a.self_id)  # and no MessageEvent before it
        # The dialer reconnects through the (now honest) proxy.
        await wait_until(lambda: full_mesh([a, b]))
        assert a.send(b.self_id, b"intact")
        [event] = await messages(b_events, 1)
        assert event.payload == b"intact"
    finally:
        await stop_all([a, b])
        await proxy.stop()


async def test_silent_peer_is_declared_dead() -> None:
    a, a_events, b, b_events, proxy = await proxied_pair()
    try:
        drain(a_events)
        drain(b_events)
        proxy.blackhole = True
        started = time.monotonic()
        await wait_until(lambda: not a.connected() and not b.connected(), timeout=3.0)
        assert time.monotonic() - started >= FAST.dead_after * 0.8
        await next_event(a_events, DisconnectedEvent(b.self_id))
        await next_event(b_events, DisconnectedEvent(a.self_id))
        proxy.blackhole = False
        await wait_until(lambda: full_mesh([a, b]), timeout=5.0)
    finally:
        await stop_all([a, b])
        await proxy.stop()


async def test_oversized_frame_closes_the_connection_before_the_body() -> None:
    [(a, _)] = await start_mesh(sorted_keys(1))
    try:
        reader, writer = await asyncio.open_connection(*a.listen_address)
        writer.write(FrameHeader(FrameKind.HANDSHAKE, 2**31).to_bytes())
        await writer.drain()
        async with asyncio.timeout(2.0):
            received = await reader.read(-1)  # the node's hello, then the end of the stream
        assert len(received) < 200
        writer.close()
    finally:
        await a.stop()


async def test_both_sides_dialing_keep_one_connection() -> None:
    small, big = sorted_keys(2, base=500)
    a, a_events = transport(small, 1, dial_all=True)
    b, b_events = transport(big, 2, dial_all=True)
    await a.start()
    await b.start()
    addresses = {a.self_id: a.listen_address, b.self_id: b.listen_address}
    a.update_nodes(addresses)
    b.update_nodes(addresses)
    try:
        await wait_until(lambda: full_mesh([a, b]))
        await asyncio.sleep(0.3)
        drain(a_events)
        drain(b_events)
        await asyncio.sleep(0.3)
        assert drain(a_events) == [] and drain(b_events) == []  # stable: no flapping
        assert a._connections[b.self_id].role is Role.INITIATOR  # the smaller id dialed it
        assert b._connections[a.self_id].role is Role.RESPONDER
        assert a.send(b.self_id, b"ping") and b.send(a.self_id, b"pong")
        assert (await messages(b_events, 1))[0].payload == b"ping"
        assert (await messages(a_events, 1))[0].payload == b"pong"
    finally:
        await stop_all([a, b])


async def test_removing_a_node_disconnects_it_and_events_are_balanced() -> None:
    nodes = await start_mesh(sorted_keys(3, base=700))
    meshes = [m for m, _ in nodes]
    try:
        await wait_until(lambda: full_mesh(meshes))
        gone = meshes[2]
        remaining = {m.self_id: m.listen_address for m in meshes[:2]}
        for m in meshes[:2]:
            m.update_nodes(remaining)
        await wait_until(lambda: all(gone.self_id not in m.connected() for m in meshes[:2]))
        await asyncio.sleep(0.3)
        assert gone.connected() == frozenset()  # its redials are refused
    finally:
        await stop_all(meshes)
    for mesh, events in nodes:
        history = drain(events)
        ups = sum(isinstance(e, ConnectedEvent) for e in history)
        downs = sum(isinstance(e, DisconnectedEvent) for e in history)
        assert ups == downs >= 2, mesh


async def test_stop_closes_gracefully_and_start_twice_is_an_error() -> None:
    nodes = await start_mesh(sorted_keys(2, base=900))
    (a, _), (b, b_events) = nodes
    await wait_until(lambda: full_mesh([a, b]))
    with pytest.raises(SecretStoreError, match="already running"):
        await a.start()
    await a.stop()
    await next_event(b_events, DisconnectedEvent(a.self_id))
    assert not b.connected()
    await b.stop()


async def test_handshake_with_a_silent_listener_times_out() -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(-1)
        writer.close()

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        started = time.monotonic()
        with pytest.raises(MeshConnectionError, match="timed out"):
            await establish(
                reader,
                writer,
                role=Role.INITIATOR,
                node_key=make_key(1),
                allowed={node_id(make_key(2))},
                rng=SeededRng(1),
                timings=MeshTimings(handshake_timeout=0.2),
            )
        assert 0.15 < time.monotonic() - started < 1.5
    finally:
        server.close()
        await server.wait_closed()
