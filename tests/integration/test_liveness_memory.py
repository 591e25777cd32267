"""The real driver's liveness rules and its session timeout, over the in-memory transport.

- A message for a configured node that is not connected waits for its link: it is sent when
  the link comes up within the response deadline, and the session loses the node (named,
  with "was not connected for N s") when it does not.
- The session timeout is the backstop: a peer that is connected but never answers (its
  messages are lost) fails the session at the timeout, which the driver starts for every
  session it admits.
- PeerLiveness's held messages: sent in order when the link is up, each outage with its own
  deadline, a bound per node beyond which the oldest session loses the node, the rest kept
  when the link drops again while they go out.
"""

from __future__ import annotations

import asyncio

import pytest

from secretstore.cluster.liveness import MAX_HELD_PER_NODE, PeerLiveness
from secretstore.errors import NodeDisconnected, SessionTimeout, describe
from secretstore.mesh.memory import MemoryNetwork
from secretstore.sessions.base import short
from secretstore.types import NodeId, SessionId
from tests.integration.cluster_builder import key_id, memory_cluster, signature


async def test_messages_for_a_re_forming_link_wait_for_it_and_the_session_succeeds() -> None:
    network, nodes = await memory_cluster(3, seed=41, response_timeout=2.0)
    network.partition(nodes[1].node_id, nodes[2].node_id)
    await asyncio.sleep(0.01)
    loop = asyncio.get_running_loop()
    loop.call_later(0.1, network.heal_all)  # the link between the two slaves comes back
    kid = key_id(1)
    public = await nodes[0].server.generate_server_key(kid, signature(kid), 1)
    assert all(node.storage.get(kid) is not None for node in nodes)
    assert nodes[1].storage.get(kid).public == public  # type: ignore[union-attr]


async def test_a_link_that_does_not_come_up_in_time_loses_the_node_by_name() -> None:
    network, nodes = await memory_cluster(3, seed=42, response_timeout=0.2)
    network.partition(nodes[1].node_id, nodes[2].node_id)
    await asyncio.sleep(0.01)
    kid = key_id(2)
    started = asyncio.get_running_loop().time()
    with pytest.raises(NodeDisconnected) as failure:
        await nodes[0].server.generate_server_key(kid, signature(kid), 1)
    text = describe(failure.value)
    assert "was not connected for 0.2 s" in text, text
    assert short(nodes[1].node_id) in text or short(nodes[2].node_id) in text, text
    assert asyncio.get_running_loop().time() - started < 2.0  # far below the 5 s timeout
    assert all(node.storage.get(kid) is None for node in nodes)
    for _ in range(100):
        if all(
            node.driver.liveness.held_for(other.node_id) == 0 for node in nodes for other in nodes
        ):
            break
        await asyncio.sleep(0.01)
    network.heal_all()


async def test_the_session_timeout_ends_a_session_whose_peer_never_answers() -> None:
    network, nodes = await memory_cluster(3, seed=43, session_timeout=0.3)
    network.set_drop_rate(nodes[2].node_id, nodes[0].node_id, 1.0)  # connected, but silent
    kid = key_id(3)
    started = asyncio.get_running_loop().time()
    async with asyncio.timeout(10):
        with pytest.raises(SessionTimeout):
            await nodes[0].server.generate_server_key(kid, signature(kid), 1)
    took = asyncio.get_running_loop().time() - started
    assert 0.25 <= took < 5.0, took
    for _ in range(100):  # every node's session ends too (the slaves at their own timeout)
        if all(len(node.driver.core) == 0 for node in nodes):
            break
        await asyncio.sleep(0.02)
    assert [len(node.driver.core) for node in nodes] == [0, 0, 0]


# --- PeerLiveness's held messages, over two memory transports -------------------------------


class Receiver:
    """B's handler: what arrived from A, in order."""

    def __init__(self) -> None:
        self.got: list[bytes] = []

    def on_message(self, node: NodeId, payload: bytes) -> None:
        self.got.append(payload)

    def on_connected(self, node: NodeId) -> None:
        pass

    def on_disconnected(self, node: NodeId) -> None:
        pass


async def two_apart(
    timeout: float,
) -> tuple[MemoryNetwork, PeerLiveness, NodeId, Receiver, list[tuple[SessionId, NodeId, str]]]:
    """A's liveness rules with B configured but not connected; the losses they report."""
    a, b = NodeId(b"\x01" * 64), NodeId(b"\x02" * 64)
    network = MemoryNetwork([a, b])
    receiver = Receiver()
    network.transport(b).set_handler(receiver)
    network.partition(a, b)
    for node in (a, b):
        await network.transport(node).start()
    losses: list[tuple[SessionId, NodeId, str]] = []
    liveness = PeerLiveness(
        network.transport(a),
        frozenset,
        lambda sid, node, why: losses.append((sid, node, why)),
        timeout,
    )
    return network, liveness, b, receiver, losses


def sid(i: int) -> SessionId:
    return SessionId(i.to_bytes(32, "big"))


async def test_held_messages_go_out_in_order_when_the_link_comes_up_and_lose_nothing() -> None:
    network, liveness, b, receiver, losses = await two_apart(0.2)
    for i in range(3):
        liveness.hold(b, sid(i), b"m%d" % i)
    assert liveness.held_for(b) == 3
    await asyncio.sleep(0.1)
    network.heal_all()
    await asyncio.sleep(0.01)
    liveness.on_connected(b)
    await asyncio.sleep(0.01)
    assert receiver.got == [b"m0", b"m1", b"m2"] and liveness.held_for(b) == 0
    # down again: a new message gets a deadline of its own, not what was left of the first
    network.isolate(b)
    await asyncio.sleep(0.06)
    liveness.hold(b, sid(9), b"late")
    await asyncio.sleep(0.1)  # past the first message's deadline
    assert losses == []
    await asyncio.sleep(0.2)
    assert losses == [(sid(9), b, "was not connected for 0.2 s")]
    liveness.close()


async def test_every_outage_has_its_own_deadline() -> None:
    _, liveness, b, _, losses = await two_apart(0.05)
    liveness.hold(b, sid(1), b"one")
    liveness.hold(b, sid(1), b"one more")  # one session loses the node once
    await asyncio.sleep(0.15)
    liveness.hold(b, sid(2), b"two")
    await asyncio.sleep(0.15)
    assert [(s, why) for s, _, why in losses] == [
        (sid(1), "was not connected for 0.05 s"),
        (sid(2), "was not connected for 0.05 s"),
    ]
    assert liveness.held_for(b) == 0


async def test_beyond_the_bound_the_oldest_session_loses_the_node_at_once() -> None:
    _, liveness, b, _, losses = await two_apart(10.0)
    for i in range(MAX_HELD_PER_NODE):
        liveness.hold(b, sid(i), b"x")
    assert losses == [] and liveness.held_for(b) == MAX_HELD_PER_NODE
    liveness.hold(b, sid(MAX_HELD_PER_NODE), b"one too many")
    assert losses == [(sid(0), b, "was not connected and too many messages waited")]
    assert liveness.held_for(b) == MAX_HELD_PER_NODE
    liveness.close()
    assert liveness.held_for(b) == 0


class FlakyTransport:
    """Sends the first `ok` messages, then reports the link gone (a link that drops again while
    its held messages go out); records what it sent."""

    def __init__(self, ok: int) -> None:
        self.ok = ok
        self.sent: list[bytes] = []

    def send(self, node: NodeId, payload: bytes) -> bool:
        if len(self.sent) >= self.ok:
            return False
        self.sent.append(payload)
        return True

    def watch(self, nodes: frozenset[NodeId]) -> None:
        pass


async def test_a_link_that_drops_again_while_held_messages_go_out_keeps_the_rest() -> None:
    b = NodeId(b"\x02" * 64)
    transport = FlakyTransport(ok=2)
    liveness = PeerLiveness(transport, frozenset, lambda *_: None, 5.0)  # type: ignore[arg-type]
    for i in range(5):
        liveness.hold(b, sid(i), b"m%d" % i)
    liveness.on_connected(b)
    assert transport.sent == [b"m0", b"m1"]
    assert liveness.held_for(b) == 3
    transport.ok = 5
    liveness.on_connected(b)
    assert transport.sent == [b"m0", b"m1", b"m2", b"m3", b"m4"]
    assert liveness.held_for(b) == 0
    liveness.close()


@pytest.mark.parametrize("timeout", [0.0, -1.0])
def test_the_response_deadline_must_be_positive(timeout: float) -> None:
    with pytest.raises(ValueError, match="must be positive"):
        PeerLiveness(FlakyTransport(0), frozenset, lambda *_: None, timeout)  # type: ignore[arg-type]


async def test_a_link_that_comes_up_with_nothing_held_is_no_event() -> None:
    _, liveness, b, receiver, losses = await two_apart(0.05)
    liveness.on_connected(b)  # nothing waited for it
    await asyncio.sleep(0.1)
    assert receiver.got == [] and losses == [] and liveness.held_for(b) == 0


async def test_messages_kept_when_the_link_drops_again_keep_their_session_and_deadline() -> None:
    b = NodeId(b"\x02" * 64)
    transport = FlakyTransport(ok=1)
    losses: list[tuple[SessionId, NodeId, str]] = []
    liveness = PeerLiveness(
        transport,  # type: ignore[arg-type]
        frozenset,
        lambda s, node, why: losses.append((s, node, why)),
        0.05,
    )
    for i in range(3):
        liveness.hold(b, sid(i), b"m%d" % i)
    liveness.on_connected(b)  # m0 goes out, then the link is gone again
    await asyncio.sleep(0.15)
    assert losses == [
        (sid(1), b, "was not connected for 0.05 s"),
        (sid(2), b, "was not connected for 0.05 s"),
    ]
