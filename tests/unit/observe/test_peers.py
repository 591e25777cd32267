"""The mesh watch: names the peers not yet connected and keeps saying so until the mesh is
complete; says when it becomes incomplete, also when the node set grows; stops at once (even
right after an event)."""

from __future__ import annotations

import asyncio
import logging

import pytest

from secretstore.observe.peers import PeerWatch
from secretstore.types import NodeId

A, B, C = NodeId(b"\xaa" * 64), NodeId(b"\xbb" * 64), NodeId(b"\xcc" * 64)
PEERS = {A: "10.0.0.1:12000", B: "10.0.0.2:12000"}


class Sink:
    def __init__(self) -> None:
        self.events: list[tuple[str, NodeId]] = []

    def on_message(self, node: NodeId, payload: bytes) -> None:
        self.events.append(("message", node))

    def on_connected(self, node: NodeId) -> None:
        self.events.append(("connected", node))

    def on_disconnected(self, node: NodeId) -> None:
        self.events.append(("disconnected", node))


def messages(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "secretstore.mesh.peers"]


async def test_it_names_the_missing_peers_until_the_mesh_is_complete(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    connected: set[NodeId] = set()
    sink = Sink()
    watch = PeerWatch(
        sink, lambda: frozenset(connected), lambda: PEERS, remind_first=0.02, remind_max=0.04
    )
    watch.start()
    assert messages(caplog) == [
        "waiting for 2 other nodes to connect: aaaaaaaa (10.0.0.1:12000), bbbbbbbb (10.0.0.2:12000)"
    ]
    await asyncio.sleep(0.05)
    connected.add(A)
    watch.on_connected(A)
    await asyncio.sleep(0.1)
    reminders = [m for m in messages(caplog) if m.startswith("still not connected")]
    assert reminders[0] == (
        "still not connected to 2 of 2 other nodes: aaaaaaaa (10.0.0.1:12000), "
        "bbbbbbbb (10.0.0.2:12000)"
    )
    assert reminders[-1] == "still not connected to 1 of 2 other nodes: bbbbbbbb (10.0.0.2:12000)"
    connected.add(B)
    watch.on_connected(B)
    assert messages(caplog)[-1] == "mesh complete: all 2 other nodes connected"
    caplog.clear()
    await asyncio.sleep(0.1)
    assert messages(caplog) == []  # complete: quiet
    connected.discard(A)
    watch.on_disconnected(A)
    assert messages(caplog) == [
        "mesh incomplete: 1 of 2 other nodes connected; not connected: aaaaaaaa (10.0.0.1:12000)"
    ]
    await asyncio.sleep(0.05)
    assert any(m.startswith("still not connected to 1 of 2") for m in messages(caplog))
    assert sink.events == [("connected", A), ("connected", B), ("disconnected", A)]
    await asyncio.wait_for(watch.stop(), 1)


async def test_stop_ends_the_reminders_even_right_after_an_event() -> None:
    connected: set[NodeId] = set()
    watch = PeerWatch(Sink(), lambda: frozenset(connected), lambda: PEERS, remind_first=10.0)
    watch.start()
    await asyncio.sleep(0)
    watch.on_connected(A)  # the reminder's wait completes as it is cancelled
    await asyncio.wait_for(watch.stop(), 1)
    assert watch._task is None


async def test_a_single_node_is_complete_at_once(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    watch = PeerWatch(Sink(), frozenset, dict)
    watch.start(alone=True)
    assert messages(caplog) == ["mesh complete: this node is the only one"]
    await watch.stop()


async def test_a_node_added_at_run_time_is_named_until_it_connects(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    connected = {A, B}
    peers = dict(PEERS)
    watch = PeerWatch(Sink(), lambda: frozenset(connected), lambda: peers, remind_first=0.02)
    watch.start()
    assert messages(caplog) == []  # complete from the start
    peers[C] = "10.0.0.3:12000"
    watch.nodes_changed()
    assert messages(caplog) == [
        "mesh incomplete: 2 of 3 other nodes connected; not connected: cccccccc (10.0.0.3:12000)"
    ]
    await asyncio.sleep(0.05)
    assert messages(caplog)[-1] == (
        "still not connected to 1 of 3 other nodes: cccccccc (10.0.0.3:12000)"
    )
    del peers[C]
    watch.nodes_changed()
    assert messages(caplog)[-1] == "mesh complete: all 2 other nodes connected"
    await asyncio.wait_for(watch.stop(), 1)


async def test_an_empty_node_set_is_not_called_complete(caplog: pytest.LogCaptureFixture) -> None:
    # A node following a key server set contract knows no peers before its first block.
    caplog.set_level(logging.INFO)
    watch = PeerWatch(Sink(), frozenset, dict)
    watch.start()
    watch.nodes_changed()
    assert messages(caplog) == []
    await watch.stop()


async def test_messages_pass_through_and_shutdown_is_quiet(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    connected = {A, B}
    sink = Sink()
    watch = PeerWatch(sink, lambda: frozenset(connected), lambda: PEERS)
    watch.on_message(A, b"x")
    await watch.stop()
    connected.clear()
    watch.on_disconnected(A)
    assert sink.events == [("message", A), ("disconnected", A)]
    assert messages(caplog) == []
