"""Mesh admission over real TCP on loopback: strangers holding idle connections from their own
addresses (127.0.0.2, 127.0.0.3, … are all loopback on Linux) cannot lock a configured peer out
of 127.0.0.1; the per-address and total caps hold; connections over a cap close at once."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass

import pytest

from secretstore.crypto.keys import KeyPair
from secretstore.mesh.admission import AdmissionLimits
from secretstore.mesh.connection import MeshTimings
from secretstore.mesh.port import EventQueue
from secretstore.mesh.transport import HostPort, MeshTransport
from secretstore.types import NodeId
from tests.integration.mesh.test_tcp_mesh import (
    QUICK_BACKOFF,
    make_key,
    node_id,
    sorted_keys,
    stop_all,
    wait_until,
)

#: Handshakes of idle connections stay pending for the whole test.
SLOW_HANDSHAKES = MeshTimings(handshake_timeout=60.0, ping_interval=0.2, dead_after=2.0)
#: A refused connection must be closed well before any handshake deadline.
AT_ONCE = 1.0


@dataclass
class Idle:
    """A stranger's TCP connection that never says anything."""

    source: str
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter

    async def closed_within(self, seconds: float) -> bool:
        """True when the other side closes (or resets) it within `seconds`."""
        try:
            async with asyncio.timeout(seconds):
                while await self.reader.read(4096):
                    pass  # the listener's HELLO
        except TimeoutError:
            return False
        except ConnectionError:
            return True
        return True

    def close(self) -> None:
        self.writer.transport.abort()


async def open_idle(port: int, sources: Sequence[str], per_source: int) -> list[Idle]:
    idle = []
    for source in sources:
        for _ in range(per_source):
            reader, writer = await asyncio.open_connection(
                "127.0.0.1", port, local_addr=(source, 0)
            )
            idle.append(Idle(source, reader, writer))
    return idle


async def closed_at_once(idle: Sequence[Idle]) -> list[bool]:
    return list(await asyncio.gather(*(c.closed_within(AT_ONCE) for c in idle)))


def strangers(first: int, count: int) -> list[str]:
    return [f"127.0.0.{n}" for n in range(first, first + count)]


class Pair:
    """A listener (`victim`) and a configured peer that dials it from 127.0.0.1."""

    def __init__(
        self, limits: AdmissionLimits | None, extra_nodes: dict[NodeId, HostPort] | None = None
    ) -> None:
        peer_key, victim_key = sorted_keys(2, base=500)  # the peer's id is smaller: it dials
        self.peer_key, self.victim_key = peer_key, victim_key
        self.extra_nodes = extra_nodes or {}
        self.victim = MeshTransport(
            victim_key,
            ("127.0.0.1", 0),
            {},
            timings=SLOW_HANDSHAKES,
            backoff=QUICK_BACKOFF,
            admission=limits,
        )
        self.victim.set_handler(EventQueue())
        self.peer: MeshTransport | None = None

    async def start_victim(self) -> int:
        await self.victim.start()
        self.nodes = {
            node_id(self.peer_key): ("127.0.0.1", 1),  # the real port is set by start_peer
            node_id(self.victim_key): self.victim.listen_address,
            **self.extra_nodes,
        }
        self.victim.update_nodes(self.nodes)
        return self.victim.listen_address[1]

    async def start_peer(self) -> float:
        """Start the peer and return how long until the victim has it connected."""
        self.peer = MeshTransport(
            self.peer_key, ("127.0.0.1", 0), {}, timings=SLOW_HANDSHAKES, backoff=QUICK_BACKOFF
        )
        self.peer.set_handler(EventQueue())
        await self.peer.start()
        nodes = {**self.nodes, node_id(self.peer_key): self.peer.listen_address}
        began = time.monotonic()
        self.victim.update_nodes(nodes)
        self.peer.update_nodes(nodes)
        peer_id = node_id(self.peer_key)
        await wait_until(lambda: peer_id in self.victim.connected(), timeout=5.0)
        return time.monotonic() - began

    async def stop(self) -> None:
        await stop_all([m for m in (self.peer, self.victim) if m is not None])


async def test_one_stranger_address_holding_70_connections_cannot_lock_out_a_peer() -> None:
    pair = Pair(None)  # the defaults: 64 in total, 4 per address, 16 kept for the nodes
    port = await pair.start_victim()
    idle = await open_idle(port, ["127.0.0.2"], 70)
    try:
        closed = await closed_at_once(idle)
        assert closed.count(False) == 4  # held, waiting for their handshake
        assert closed.count(True) == 66  # refused and closed at once
        assert pair.victim.admission.pending_from("127.0.0.2") == 4
        took = await pair.start_peer()
        assert took < 3.0
    finally:
        for connection in idle:
            connection.close()
        await pair.stop()


async def test_strangers_from_many_addresses_cannot_take_the_reserve() -> None:
    limits = AdmissionLimits(max_pending=12, max_pending_per_address=2, reserved_for_nodes=4)
    pair = Pair(limits)
    port = await pair.start_victim()
    idle = await open_idle(port, strangers(2, 10), 3)  # 30 connections from 10 addresses
    try:
        closed = await closed_at_once(idle)
        assert closed.count(False) == 8  # 12 - 4 reserved
        held_per_source = {
            source: sum(
                1 for c, shut in zip(idle, closed, strict=True) if c.source == source and not shut
            )
            for source in strangers(2, 10)
        }
        assert max(held_per_source.values()) <= 2
        assert pair.victim.admission.pending == 8
        more = await open_idle(port, ["127.0.0.40"], 1)
        idle += more
        assert await closed_at_once(more) == [True]
        took = await pair.start_peer()
        assert took < 3.0
    finally:
        for connection in idle:
            connection.close()
        await pair.stop()


async def test_the_total_cap_holds_for_configured_addresses_too() -> None:
    limits = AdmissionLimits(max_pending=6, max_pending_per_address=2, reserved_for_nodes=2)
    # Four more configured nodes, at 127.0.0.11..14 (their ids are never dialed successfully).
    fake = {node_id(make_key(900 + n)): (f"127.0.0.{11 + n}", 9) for n in range(4)}
    pair = Pair(limits, fake)
    port = await pair.start_victim()
    idle = await open_idle(port, strangers(11, 4), 2)  # 8 connections from node addresses
    try:
        closed = await closed_at_once(idle)
        assert closed.count(False) == 6
        assert pair.victim.admission.pending == 6
        assert all(pair.victim.admission.is_node_address(a) for a in strangers(11, 4))
    finally:
        for connection in idle:
            connection.close()
        await pair.stop()


async def test_a_refusal_is_logged_once_per_address_and_burst(
    caplog: pytest.LogCaptureFixture,
) -> None:
    limits = AdmissionLimits(max_pending=8, max_pending_per_address=1, reserved_for_nodes=2)
    pair = Pair(limits)
    port = await pair.start_victim()
    caplog.set_level(logging.INFO, logger="secretstore.mesh.transport")
    idle = await open_idle(port, ["127.0.0.2", "127.0.0.3"], 20)
    try:
        closed = await closed_at_once(idle)
        assert closed.count(True) == 38
        refusals = [r.getMessage() for r in caplog.records if "refusing inbound" in r.getMessage()]
        assert len([m for m in refusals if "127.0.0.2" in m]) == 1
        assert len([m for m in refusals if "127.0.0.3" in m]) == 1
        assert "1 handshakes pending from this address" in refusals[0]
        # the held connection of 127.0.0.2 ends: its next one is admitted and says how many
        # were refused meanwhile; a new burst is logged again
        held = next(
            c for c, shut in zip(idle, closed, strict=True) if c.source == "127.0.0.2" and not shut
        )
        held.close()
        await wait_until(lambda: pair.victim.admission.pending_from("127.0.0.2") == 0)
        idle += await open_idle(port, ["127.0.0.2"], 3)
        await wait_until(lambda: any("after refusing 19" in r.getMessage() for r in caplog.records))
        await closed_at_once(idle[-2:])
        again = [
            r
            for r in caplog.records
            if "refusing inbound connections from 127.0.0.2" in r.getMessage()
        ]
        assert len(again) == 2
    finally:
        for connection in idle:
            connection.close()
        await pair.stop()


def test_the_local_cluster_shape_gives_each_node_on_one_host_its_allowance() -> None:
    keys: list[KeyPair] = sorted_keys(5, base=700)
    nodes = {node_id(k): ("127.0.0.1", 9000 + i) for i, k in enumerate(keys)}
    mesh = MeshTransport(keys[0], ("127.0.0.1", 0), nodes)
    assert mesh.admission.allowance("127.0.0.1") == 4 * 4  # four peers at 127.0.0.1


async def test_node_host_names_are_resolved_for_admission() -> None:
    own, peer = sorted_keys(2, base=800)  # `own` dials; the dial fails, which does not matter
    mesh = MeshTransport(
        own, ("127.0.0.1", 0), {node_id(peer): ("localhost", 9)}, backoff=QUICK_BACKOFF
    )
    assert not mesh.admission.is_node_address("127.0.0.1")
    await mesh.start()
    try:
        await wait_until(lambda: mesh.admission.is_node_address("127.0.0.1"))
    finally:
        await mesh.stop()
