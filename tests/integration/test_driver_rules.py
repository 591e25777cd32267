"""The real driver's own rules, over the in-memory transport, beside the fault suite's real
processes: which links it watches, how a lost link's reason reaches the client, that no clock
or waiting request outlives its session, what it asks the access policy and what a policy
that fails means, and what a closing node answers.

(Mutation testing found these rules unchecked by the fast tests: a driver that never told the
mesh which links to watch, dropped the reason of a disconnection, leaked a timer per session,
or allowed access when the policy crashed passed them all.)
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from secretstore.crypto.document import encrypt_secret
from secretstore.crypto.ecies import ecies_decrypt
from secretstore.crypto.keys import KeyPair
from secretstore.crypto.rng import SeededRng
from secretstore.errors import (
    AccessDenied,
    ChainUnavailable,
    NodeDisconnected,
    SecretStoreError,
    SessionTimeout,
    describe,
)
from secretstore.sessions.base import Notice, short
from secretstore.sessions.core import CoreEffect
from secretstore.types import Address, BlockRef, NodeId, ServerKeyId, SessionId
from secretstore.wire import codec
from tests.integration.cluster_builder import (
    REQUESTER,
    MemoryNode,
    key_id,
    memory_cluster,
    signature,
)


async def until(condition: Callable[[], bool], seconds: float = 5.0) -> None:
    """Poll `condition()` until it holds (AssertionError after `seconds`)."""
    deadline = asyncio.get_running_loop().time() + seconds
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"condition did not hold within {seconds} s")
        await asyncio.sleep(0.01)


def settled(nodes: list[MemoryNode]) -> bool:
    """Every session everywhere has ended and left nothing behind in its driver."""
    return all(
        len(node.driver.core) == 0
        and node.driver.clocks_running == 0
        and node.driver.requests_waiting == 0
        for node in nodes
    )


async def test_the_links_of_running_sessions_are_watched_and_only_while_they_run() -> None:
    network, nodes = await memory_cluster(3, seed=61, session_timeout=0.6)
    master = nodes[0]
    others = frozenset(node.node_id for node in nodes[1:])
    assert network.transport(master.node_id).watched == frozenset()
    network.set_drop_rate(nodes[2].node_id, master.node_id, 1.0)  # the session waits
    kid = key_id(61)
    request = asyncio.ensure_future(master.server.generate_server_key(kid, signature(kid), 1))
    await until(lambda: network.transport(master.node_id).watched == others)
    assert master.driver.liveness.watched == others
    with pytest.raises(SessionTimeout):
        await request
    await until(lambda: settled(nodes))
    for node in nodes:
        await until(lambda n=node: network.transport(n.node_id).watched == frozenset())


async def test_a_link_lost_during_a_session_names_the_node_and_the_reason() -> None:
    network, nodes = await memory_cluster(3, seed=62, session_timeout=5.0)
    master, lost = nodes[0], nodes[2]
    network.set_drop_rate(lost.node_id, master.node_id, 1.0)  # the session waits on it
    kid = key_id(62)
    request = asyncio.ensure_future(master.server.generate_server_key(kid, signature(kid), 1))
    await until(lambda: lost.node_id in master.driver.liveness.watched)
    started = asyncio.get_running_loop().time()
    network.partition(master.node_id, lost.node_id)
    with pytest.raises(NodeDisconnected) as failure:
        await request
    assert asyncio.get_running_loop().time() - started < 2.0  # at once, not at the timeout
    text = describe(failure.value)
    assert f"node {short(lost.node_id)}: link down" in text, text
    network.heal_all()


async def test_no_clock_nor_waiting_request_outlives_its_session() -> None:
    network, nodes = await memory_cluster(3, seed=63, session_timeout=0.4)
    kids = [key_id(630 + i) for i in range(4)]
    await asyncio.gather(
        *(nodes[i % 3].server.generate_server_key(k, signature(k), 1) for i, k in enumerate(kids))
    )
    await until(lambda: settled(nodes))
    # sessions that end at their timeout leave nothing behind either
    network.set_drop_rate(nodes[1].node_id, nodes[0].node_id, 1.0)
    kid = key_id(639)
    with pytest.raises(SessionTimeout):
        await nodes[0].server.generate_server_key(kid, signature(kid), 1)
    await until(lambda: settled(nodes))
    assert nodes[0].driver.clocks_running == 0


class Recording:
    """Allows everyone and remembers every question it was asked."""

    def __init__(self) -> None:
        self.asked: list[tuple[Address, ServerKeyId, BlockRef | None]] = []

    def pin(self) -> BlockRef | None:
        return None

    async def check(
        self, requester: Address, key_id: ServerKeyId, block: BlockRef | None = None
    ) -> bool:
        self.asked.append((requester, key_id, block))
        return True

    def known(
        self, requester: Address, key_id: ServerKeyId, block: BlockRef | None = None
    ) -> bool | None:
        return None  # always asked through `check`


class Crashing(Recording):
    """A policy with a bug: it raises something that is not a SecretStoreError."""

    async def check(
        self, requester: Address, key_id: ServerKeyId, block: BlockRef | None = None
    ) -> bool:
        raise RuntimeError("a bug in the policy")


class Undecided(Recording):
    """A policy that cannot decide now (its chain is not trusted)."""

    async def check(
        self, requester: Address, key_id: ServerKeyId, block: BlockRef | None = None
    ) -> bool:
        raise ChainUnavailable("the chain is 40 blocks behind")


async def test_every_node_asks_its_policy_about_this_requester_and_this_key() -> None:
    policies = {i: Recording() for i in range(3)}
    _, nodes = await memory_cluster(3, seed=64, policies=dict(policies))
    kid = key_id(64)
    encrypted = await nodes[0].server.generate_document_key(kid, signature(kid), 1)
    for policy in policies.values():
        policy.asked.clear()
    got = (await nodes[0].server.retrieve_document_key(kid, signature(kid))).encrypted
    assert ecies_decrypt(REQUESTER.secret, got) == ecies_decrypt(REQUESTER.secret, encrypted)
    asked = [question for policy in policies.values() for question in policy.asked]
    assert len(asked) >= 2  # the master and at least t other nodes of the consensus
    assert all(question == (REQUESTER.address, kid, None) for question in asked), asked


async def test_a_policy_that_crashes_denies_access() -> None:
    _, nodes = await memory_cluster(3, seed=65)
    kid = key_id(65)
    await nodes[0].server.generate_document_key(kid, signature(kid), 1)
    for node in nodes:  # the same cluster, now with a broken policy on every node
        node.driver.access = Crashing()
    with pytest.raises(AccessDenied):
        await nodes[0].server.retrieve_document_key(kid, signature(kid))
    await until(lambda: settled(nodes))


async def test_a_policy_that_cannot_decide_ends_the_session_with_its_error_everywhere() -> None:
    _, nodes = await memory_cluster(3, seed=66)
    kid = key_id(66)
    await nodes[0].server.generate_document_key(kid, signature(kid), 1)
    nodes[0].driver.access = Undecided()
    started = asyncio.get_running_loop().time()
    with pytest.raises(ChainUnavailable, match="40 blocks behind"):
        await nodes[0].server.retrieve_document_key(kid, signature(kid))
    assert asyncio.get_running_loop().time() - started < 2.0  # not the 5 s timeout
    await until(lambda: settled(nodes), seconds=2.0)  # the other side was told


async def test_a_closing_node_answers_its_waiting_requests() -> None:
    network, nodes = await memory_cluster(3, seed=67, session_timeout=30.0)
    network.set_drop_rate(nodes[1].node_id, nodes[0].node_id, 1.0)
    kid = key_id(67)
    request = asyncio.ensure_future(nodes[0].server.generate_server_key(kid, signature(kid), 1))
    await until(lambda: nodes[0].driver.requests_waiting == 1)
    await nodes[0].driver.close()
    async with asyncio.timeout(2):
        with pytest.raises(SessionTimeout, match="shutting down"):
            await request
    assert nodes[0].driver.clocks_running == 0


async def test_a_session_that_times_out_answers_with_its_own_error() -> None:
    """At the timeout the session says what it lacks (here: which node never answered its
    job), not the driver's generic timeout, and it does not go on past it."""
    network, nodes = await memory_cluster(3, seed=68, session_timeout=0.5)
    kid = key_id(68)
    await nodes[0].server.generate_document_key(kid, signature(kid), 1)
    for silent in nodes[1:]:
        network.set_drop_rate(silent.node_id, nodes[0].node_id, 1.0)
    with pytest.raises(SecretStoreError) as failure:
        await asyncio.wait_for(nodes[0].server.retrieve_document_key(kid, signature(kid)), 5.0)
    text = describe(failure.value)
    assert "did not finish in time" not in text, text
    assert any(short(silent.node_id) in text for silent in nodes[1:]), text
    await until(lambda: settled(nodes))


async def test_a_session_that_goes_on_past_its_timeout_is_ended_by_the_backstop() -> None:
    """A session whose timeout only starts more work (and sets no new deadline) would never
    end; the driver ends it with SessionTimeout, everywhere."""
    network, nodes = await memory_cluster(3, seed=69, session_timeout=0.3)
    master = nodes[0]
    network.set_drop_rate(nodes[2].node_id, master.node_id, 1.0)  # the session waits
    core = master.driver.core
    calls: list[SessionId] = []

    def on_timeout_that_goes_on(sid: SessionId) -> list[CoreEffect]:
        calls.append(sid)
        return [Notice("still working")]

    core.on_timeout = on_timeout_that_goes_on  # type: ignore[method-assign]
    kid = key_id(69)
    with pytest.raises(SessionTimeout, match="did not finish in time"):
        await asyncio.wait_for(master.server.generate_server_key(kid, signature(kid), 1), 5.0)
    assert len(calls) == 1
    await until(lambda: settled(nodes))


async def test_a_master_answers_its_caller_before_it_sends_its_closing_messages() -> None:
    """The messages that end a master's session at the others (ConsensusCompleted) wait for
    the caller to have its result: a retrieval's HTTP answer is not delayed by them. They
    still go out, and every member ends its session."""
    network, nodes = await memory_cluster(3, seed=72)
    master = nodes[0]
    kid = key_id(72)
    public = await master.server.generate_server_key(kid, signature(kid), 1)
    stored = encrypt_secret(KeyPair.generate(SeededRng(72)).public, public, SeededRng(73))
    await master.server.store_document_key(
        kid, signature(kid), stored.common_point, stored.encrypted_point
    )
    await until(lambda: settled(nodes))
    events: list[str] = []
    transport = network.transport(master.node_id)
    send = transport.send

    def logged_send(node: NodeId, payload: bytes) -> bool:
        events.append(type(codec.decode(payload)).__name__)
        return send(node, payload)

    transport.send = logged_send  # type: ignore[method-assign]
    await master.server.retrieve_document_key_shadow(kid, signature(kid))
    events.append("caller resumed")
    await until(lambda: settled(nodes))
    assert events[0] == "DecryptionRequest"  # the job, with the access request
    assert events.index("caller resumed") < events.index("ConsensusCompleted"), events
