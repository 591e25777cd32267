"""Key version negotiation and server key retrieval on a simulated network."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from secretstore.crypto.curve import Point, Scalar
from secretstore.errors import (
    AccessDenied,
    ConsensusUnreachable,
    ProtocolViolation,
    ServerKeyNotFound,
    SessionTimeout,
)
from secretstore.sessions.key_version import NegotiatedVersion, NegotiateKeyVersion
from secretstore.sessions.retrieval import RetrieveServerKey
from secretstore.storage.model import KeyShare, KeyShareVersion
from secretstore.types import Address, NodeId
from tests.sim.harness import RandomScheduler, SimNetwork
from tests.sim.key_sessions import (
    AUTHOR,
    KEY,
    MASTERS,
    SLAVES,
    all_sessions_ended,
    generate,
    stored_shares,
)

t_and_n = st.integers(1, 6).flatmap(lambda n: st.tuples(st.integers(0, n - 1), st.just(n)))
PUBLIC = Point.base_mul(Scalar(12345))


def network(n: int, seed: int, schedule: int | None = None) -> SimNetwork:
    scheduler = RandomScheduler(schedule) if schedule is not None else None
    return SimNetwork(n, MASTERS, SLAVES, seed=seed, scheduler=scheduler)


def negotiate(net: SimNetwork, index: int) -> NegotiatedVersion:
    sid = net.start(index, NegotiateKeyVersion(KEY))
    net.run()
    result = net.value(index, sid)
    assert isinstance(result, NegotiatedVersion)
    return result


def plant(net: SimNetwork, versions: list[list[NodeId]], threshold: int) -> list[KeyShareVersion]:
    """Store hand-made versions of KEY (oldest first) on the nodes that hold each."""
    made = [
        KeyShareVersion.create({node: Scalar(i + 1) for i, node in enumerate(nodes)}, Scalar(9))
        for nodes in versions
    ]
    for node_id, node in net.nodes.items():
        held = tuple(v for v in made if node_id in v.nodes)
        if held:
            node.storage.insert(KEY, KeyShare(AUTHOR, threshold, PUBLIC, None, None, held))
    return made


@given(t_and_n, st.integers(0, 2**16), st.integers(0, 2**32), st.data())
def test_every_node_negotiates_the_generated_version(
    tn: tuple[int, int], seed: int, schedule: int, data: st.DataObject
) -> None:
    t, n = tn
    net = network(n, seed, schedule)
    public = generate(net, t)
    share = next(iter(stored_shares(net).values()))
    master = data.draw(st.integers(0, n - 1), label="master")
    result = negotiate(net, master)
    assert result.version == share.last_version().hash
    assert result.holders == frozenset(net.nodes)
    assert result.common.public == public and result.common.author == AUTHOR
    assert result.threshold == t
    sid = net.start(master, RetrieveServerKey(KEY, AUTHOR))
    net.run()
    assert net.value(master, sid) == public
    assert all_sessions_ended(net)


@given(t_and_n, st.integers(0, 2**32), st.data())
def test_disconnected_nodes_leave_the_holders_until_fewer_than_t_plus_1(
    tn: tuple[int, int], schedule: int, data: st.DataObject
) -> None:
    t, n = tn
    net = network(n, 1, schedule)
    generate(net, t)
    gone = data.draw(st.integers(0, n - 1), label="disconnected")
    for node in net.order[n - gone :]:
        net.disconnect(node)
    sid = net.start(0, NegotiateKeyVersion(KEY))
    net.run()
    if n - gone >= t + 1:
        result = net.value(0, sid)
        assert isinstance(result, NegotiatedVersion)
        assert result.holders == frozenset(net.order[: n - gone])
    else:
        with pytest.raises(ConsensusUnreachable):
            net.value(0, sid)


def test_the_newest_version_with_enough_holders_is_chosen() -> None:
    net = network(5, 2)
    ids = net.order
    old, new = plant(net, [list(ids), list(ids[2:])], threshold=2)
    result = negotiate(net, 0)  # node 0 holds only the old version
    assert result.version == new.hash and result.holders == frozenset(ids[2:])
    net.disconnect(ids[4])
    result = negotiate(net, 0)
    assert result.version == old.hash and result.holders == frozenset(ids[:4])


def test_a_master_without_the_key_still_negotiates_and_retrieves() -> None:
    net = network(4, 3)
    generate(net, 1)
    net.node(0).storage.remove(KEY)
    result = negotiate(net, 0)
    assert result.holders == frozenset(net.order[1:])
    sid = net.start(0, RetrieveServerKey(KEY, AUTHOR))
    net.run()
    assert net.value(0, sid) == result.common.public


def test_unknown_key_is_not_found_and_strangers_are_denied() -> None:
    net = network(3, 4)
    sid = net.start(1, NegotiateKeyVersion(KEY))
    net.run()
    with pytest.raises(ServerKeyNotFound):
        net.value(1, sid)
    sid = net.start(1, RetrieveServerKey(KEY, AUTHOR))
    net.run()
    with pytest.raises(ServerKeyNotFound):
        net.value(1, sid)
    generate(net, 1)
    sid = net.start(2, RetrieveServerKey(KEY, Address(b"\x01" * 20)))
    net.run()
    with pytest.raises(AccessDenied):
        net.value(2, sid)


def test_a_node_reporting_other_key_data_is_named() -> None:
    net = network(3, 5)
    generate(net, 1)
    liar = net.node(2)
    share = liar.storage.get(KEY)
    assert share is not None
    liar.storage.update(
        KEY, KeyShare(Address(b"\x02" * 20), 1, share.public, None, None, share.versions)
    )
    sid = net.start(0, NegotiateKeyVersion(KEY))
    net.run()
    with pytest.raises(ProtocolViolation) as info:
        net.value(0, sid)
    assert info.value.node == liar.node_id[:4].hex()


def test_timeout_decides_with_the_answers_so_far() -> None:
    net = network(4, 6)  # FIFO: three requests, three answers queued, then answers arrive
    generate(net, 1)
    sid = net.start(0, NegotiateKeyVersion(KEY))
    net.run(max_steps=4)  # the master has node 1's answer only
    net.time_out_all()
    result = net.value(0, sid)
    assert isinstance(result, NegotiatedVersion)
    assert result.holders == frozenset(net.order[:2])


def test_timeout_without_enough_answers_is_a_timeout() -> None:
    net = network(4, 6)
    generate(net, 1)
    sid = net.start(0, NegotiateKeyVersion(KEY))
    net.run(max_steps=3)  # no answer has reached the master
    net.time_out_all()
    with pytest.raises(SessionTimeout):
        net.value(0, sid)
