"""The in-memory transport twin: links, order, partitions, drops, delays, node-set changes."""

from __future__ import annotations

import asyncio

from secretstore.mesh.memory import MemoryNetwork, MemoryTransport
from secretstore.mesh.port import (
    ConnectedEvent,
    DisconnectedEvent,
    EventQueue,
    MessageEvent,
    Transport,
    TransportEvent,
)
from secretstore.types import NodeId

A, B, C = (NodeId(bytes([i]) * 64) for i in (1, 2, 3))


def drain(queue: EventQueue) -> list[TransportEvent]:
    events = []
    while not queue.queue.empty():
        events.append(queue.queue.get_nowait())
    return events


async def settle(seconds: float = 0.0) -> None:
    await asyncio.sleep(seconds)
    for _ in range(5):
        await asyncio.sleep(0)


async def started(nodes: list[NodeId]) -> tuple[MemoryNetwork, dict[NodeId, EventQueue]]:
    network = MemoryNetwork(nodes)
    queues = {}
    for node in nodes:
        queues[node] = EventQueue()
        network.transport(node).set_handler(queues[node])
        await network.transport(node).start()
    await settle()
    return network, queues


def test_memory_transport_satisfies_the_port() -> None:
    transport: Transport = MemoryNetwork([A]).transport(A)
    assert transport.self_id == A


async def test_started_nodes_form_a_full_mesh() -> None:
    network, queues = await started([A, B, C])
    for node in (A, B, C):
        assert network.transport(node).connected() == {A, B, C} - {node}
        events = drain(queues[node])
        assert {e.node for e in events if isinstance(e, ConnectedEvent)} == {A, B, C} - {node}


async def test_messages_arrive_in_order_after_the_connected_event() -> None:
    network, queues = await started([A, B])
    drain(queues[B])
    for i in range(50):
        assert network.transport(A).send(B, i.to_bytes(2, "big"))
    await settle()
    got = [e.payload for e in drain(queues[B]) if isinstance(e, MessageEvent)]
    assert got == [i.to_bytes(2, "big") for i in range(50)]


async def test_send_before_the_link_is_up_returns_false() -> None:
    network = MemoryNetwork([A, B])
    assert network.transport(A).send(B, b"early") is False
    await network.transport(A).start()
    assert network.transport(A).send(B, b"still alone") is False


async def test_partition_drops_the_link_and_in_flight_messages_then_heal_restores() -> None:
    network, queues = await started([A, B, C])
    for q in queues.values():
        drain(q)
    assert network.transport(A).send(B, b"in flight")
    network.partition(A, B)
    assert network.transport(A).send(B, b"after") is False
    assert network.transport(A).connected() == {C}
    await settle()
    events_b = drain(queues[B])
    assert events_b == [DisconnectedEvent(A)]
    network.heal(A, B)
    await settle()
    assert drain(queues[B]) == [ConnectedEvent(A)]
    assert network.transport(A).send(B, b"again")
    await settle()
    assert drain(queues[B]) == [MessageEvent(A, b"again")]


async def test_isolate_and_heal_all() -> None:
    network, _ = await started([A, B, C])
    network.isolate(C)
    assert network.transport(C).connected() == frozenset()
    assert network.transport(A).connected() == {B}
    network.heal_all()
    assert network.transport(C).connected() == {A, B}


async def test_drop_rate_loses_messages_silently() -> None:
    network, queues = await started([A, B])
    drain(queues[B])
    network.set_drop_rate(A, B, 1.0)
    assert network.transport(A).send(B, b"lost")
    network.set_drop_rate(A, B, 0.5)
    for _ in range(200):
        network.transport(A).send(B, b"maybe")
    await settle()
    delivered = [e for e in drain(queues[B]) if isinstance(e, MessageEvent)]
    sent, dropped = network.counts(A, B)
    assert sent == 201
    assert len(delivered) == sent - dropped
    assert 40 < dropped - 1 < 160  # about half of the 200, plus the certain loss


async def test_delay_keeps_order_and_postpones_delivery() -> None:
    network, queues = await started([A, B])
    drain(queues[B])
    network.set_delay(A, B, 0.05)
    network.transport(A).send(B, b"1")
    network.set_delay(A, B, 0.0)
    network.transport(A).send(B, b"2")  # not allowed to overtake "1"
    await settle()
    assert drain(queues[B]) == []
    await settle(0.08)
    assert drain(queues[B]) == [MessageEvent(A, b"1"), MessageEvent(A, b"2")]


async def test_stop_disconnects_both_sides() -> None:
    network, queues = await started([A, B, C])
    for q in queues.values():
        drain(q)
    await network.transport(C).stop()
    await settle()
    assert set(drain(queues[C])) == {DisconnectedEvent(A), DisconnectedEvent(B)}
    assert drain(queues[A]) == [DisconnectedEvent(C)]
    assert network.transport(C).send(A, b"x") is False
    await network.transport(C).start()
    await settle()
    assert network.transport(A).connected() == {B, C}


async def test_update_nodes_needs_both_sides_to_know_each_other() -> None:
    network, _ = await started([A, B, C])
    network.transport(A).update_nodes([A, B])
    assert network.transport(A).connected() == {B}
    assert network.transport(C).connected() == {B}
    network.transport(A).update_nodes([A, B, C])
    assert network.transport(C).connected() == {A, B}


async def test_add_node_joins_the_nodes_that_know_it() -> None:
    network, _ = await started([A, B])
    d = NodeId(bytes([4]) * 64)
    late: MemoryTransport = network.add_node(d)
    await late.start()
    assert late.connected() == frozenset()  # A and B do not know d yet
    for node in (A, B):
        network.transport(node).update_nodes([A, B, d])
    assert late.connected() == {A, B}


async def test_handler_sees_connect_messages_disconnect_in_order() -> None:
    log: list[str] = []

    class Recorder:
        def on_message(self, node: NodeId, payload: bytes) -> None:
            log.append(f"msg:{payload.decode()}")

        def on_connected(self, node: NodeId) -> None:
            log.append("up")

        def on_disconnected(self, node: NodeId) -> None:
            log.append("down")

    network = MemoryNetwork([A, B])
    network.transport(B).set_handler(Recorder())

    def send(payload: bytes) -> bool:
        return network.transport(A).send(B, payload)

    await network.transport(B).start()
    await network.transport(A).start()
    send(b"1")
    send(b"2")
    await settle()
    network.partition(A, B)
    await settle()
    assert log == ["up", "msg:1", "msg:2", "down"]
