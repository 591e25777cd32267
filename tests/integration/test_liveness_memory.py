"""The real driver's liveness rules and its session timeout, over the in-memory transport.

- A message for a configured node that is not connected waits for its link: it is sent when
  the link comes up within the response deadline, and the session loses the node (named,
  with "was not connected for N s") when it does not.
- The session timeout is the backstop: a peer that is connected but never answers (its
  messages are lost) fails the session at the timeout, which the driver starts for every
  session it admits.
"""

from __future__ import annotations

import asyncio

import pytest

from secretstore.errors import NodeDisconnected, SessionTimeout, describe
from secretstore.sessions.base import short
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
