"""Liveness of real TCP links: watched links owe a frame within the response deadline, idle
ones are left alone, and a peer's new connection probes a link that may be half-open."""

from __future__ import annotations

import asyncio

from secretstore.crypto.rng import SeededRng
from secretstore.mesh.connection import MeshTimings
from secretstore.mesh.port import DisconnectedEvent, EventQueue
from secretstore.mesh.transport import MeshTransport
from tests.integration.mesh.test_tcp_mesh import (
    LOCAL,
    QUICK_BACKOFF,
    Proxy,
    drain,
    full_mesh,
    next_event,
    sorted_keys,
    wait_until,
)

#: Keep-alive far away, so only the response deadline can close a link in these tests.
TIMINGS = MeshTimings(
    handshake_timeout=1.0, ping_interval=10.0, dead_after=30.0, response_timeout=0.4
)


class PartitionProxy(Proxy):
    """A relay that, while blackholed, also keeps a closed side's closing from the other (a
    partition: nothing crosses, not even the FIN or RST)."""

    async def _pump(
        self, src: asyncio.StreamReader, dst: asyncio.StreamWriter, *, towards_target: bool
    ) -> None:
        try:
            while data := await src.read(65536):
                if not self.blackhole:
                    dst.write(data)
                    await dst.drain()
        except OSError:
            pass
        if not self.blackhole:
            dst.transport.abort()


def mesh(index: int, *, dial_all: bool = False) -> tuple[MeshTransport, EventQueue]:
    key = sorted_keys(2, base=700)[index]
    node = MeshTransport(
        key,
        LOCAL,
        {},
        rng=SeededRng(index),
        timings=TIMINGS,
        backoff=QUICK_BACKOFF,
        dial_all=dial_all,
    )
    events = EventQueue()
    node.set_handler(events)
    return node, events


async def pair_through_proxy(
    *, dial_all: bool = False
) -> tuple[MeshTransport, EventQueue, MeshTransport, EventQueue, Proxy]:
    a, a_events = mesh(0)
    b, b_events = mesh(1, dial_all=dial_all)
    await a.start()
    await b.start()
    proxy = PartitionProxy(b.listen_address)
    via = await proxy.start()
    a.update_nodes({a.self_id: a.listen_address, b.self_id: via})  # a dials b through it
    b.update_nodes({a.self_id: a.listen_address, b.self_id: b.listen_address})
    await wait_until(lambda: full_mesh([a, b]))
    return a, a_events, b, b_events, proxy


async def test_a_watched_link_that_goes_silent_is_closed_at_the_deadline() -> None:
    a, a_events, b, _b_events, proxy = await pair_through_proxy()
    try:
        drain(a_events)
        a.watch(frozenset({b.self_id}))
        proxy.blackhole = True
        took = await wait_until(lambda: b.self_id not in a.connected(), timeout=3.0)
        assert 0.3 <= took < 2.0, took
        await next_event(a_events, DisconnectedEvent(b.self_id))
        assert a.close_reason(b.self_id) == "did not answer for 0.4 s"
    finally:
        await a.stop()
        await b.stop()
        await proxy.stop()


async def test_an_idle_link_is_not_held_to_the_deadline() -> None:
    a, _a_events, b, _b_events, proxy = await pair_through_proxy()
    try:
        proxy.blackhole = True  # silent, but no session waits on it
        await asyncio.sleep(TIMINGS.response_timeout * 4)
        assert b.self_id in a.connected() and a.self_id in b.connected()
    finally:
        await a.stop()
        await b.stop()
        await proxy.stop()


async def test_a_watched_healthy_link_stays_up() -> None:
    a, _a_events, b, _b_events, proxy = await pair_through_proxy()
    try:
        a.watch(frozenset({b.self_id}))
        b.watch(frozenset({a.self_id}))
        await asyncio.sleep(TIMINGS.response_timeout * 5)  # pings answered all along
        assert full_mesh([a, b])
        a.watch(frozenset())
        b.watch(frozenset())
    finally:
        await a.stop()
        await b.stop()
        await proxy.stop()


async def test_a_new_connection_from_the_peer_probes_a_half_open_link() -> None:
    """b gives up its link (it waited on a, which it cannot hear), a still believes in it;
    b dials a directly: a probes its old link, closes it at the deadline, and takes b's."""
    a, a_events, b, _b_events, proxy = await pair_through_proxy(dial_all=True)
    try:
        drain(a_events)
        proxy.blackhole = True
        b.watch(frozenset({a.self_id}))
        await wait_until(lambda: a.self_id not in b.connected(), timeout=3.0)
        assert b.self_id in a.connected()  # half-open: a was not waiting on b
        took = await wait_until(lambda: full_mesh([a, b]), timeout=6.0)
        await next_event(a_events, DisconnectedEvent(b.self_id))
        assert a.close_reason(b.self_id) == "did not answer for 0.4 s"
        assert took < TIMINGS.dead_after / 3
    finally:
        await a.stop()
        await b.stop()
        await proxy.stop()
