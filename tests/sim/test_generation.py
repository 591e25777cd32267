"""Server key generation on a simulated network: results checked cryptographically."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from secretstore.crypto.curve import Point, Scalar
from secretstore.crypto.shamir import evaluate_point_polynomial
from secretstore.errors import (
    ConsensusUnreachable,
    InvalidRequest,
    ProtocolViolation,
    ServerKeyAlreadyGenerated,
    SessionTimeout,
)
from secretstore.sessions import generation
from secretstore.sessions.base import Effect, Fail, Finish, SessionContext, short
from secretstore.sessions.core import NodeCore
from secretstore.sessions.dkg import Outgoing
from secretstore.storage.model import KeyShare, version_hash
from secretstore.types import NodeId
from secretstore.wire.dkg import DkgKeys
from secretstore.wire.generation import InitializeGeneration
from tests.sim.harness import RandomScheduler, SimNetwork
from tests.sim.key_sessions import (
    AUTHOR,
    AUTHOR_PROOF,
    KEY,
    MASTERS,
    SLAVES,
    all_sessions_ended,
    assert_consistent_key,
    generate,
    outcome,
    stored_shares,
)

t_and_n = st.integers(1, 6).flatmap(lambda n: st.tuples(st.integers(0, n - 1), st.just(n)))


def network(n: int, seed: int, schedule: int | None = None) -> SimNetwork:
    scheduler = RandomScheduler(schedule) if schedule is not None else None
    return SimNetwork(n, MASTERS, SLAVES, seed=seed, scheduler=scheduler)


@given(t_and_n, st.integers(0, 2**16), st.integers(0, 2**32), st.data())
def test_generation_stores_a_consistent_key_on_every_node(
    tn: tuple[int, int], seed: int, schedule: int, data: st.DataObject
) -> None:
    t, n = tn
    net = network(n, seed, schedule)
    master = data.draw(st.integers(0, n - 1), label="master")
    public = generate(net, t, master)
    shares = stored_shares(net)
    assert set(shares) == set(net.nodes)
    assert_consistent_key(shares, public)
    share = next(iter(shares.values()))
    assert share.author == AUTHOR and share.threshold == t
    assert share.common_point is None and share.encrypted_point is None
    assert len(share.versions) == 1
    version = share.last_version()
    assert version.hash == version_hash(version.id_numbers)
    assert set(version.nodes) == set(net.nodes)
    assert all_sessions_ended(net)
    # every node stores the same commitments of the key: C_0 = Y, and each node's share
    # public Y_j = Σ_k C_k·x_j^k is s_j·G
    commitments = version.commitments
    assert commitments is not None and len(commitments) == t + 1
    assert commitments[0] == public
    for node, stored in shares.items():
        assert stored.last_version().commitments == commitments
        x = version.id_numbers_map()[node]
        share_public = evaluate_point_polynomial(commitments, x)
        assert share_public == Point.base_mul(stored.last_version().secret_share)


def test_single_node_generates_alone() -> None:
    net = network(1, 3)
    public = generate(net, 0)
    share = stored_shares(net)[net.order[0]]
    assert Point.base_mul(share.last_version().secret_share) == public
    assert net.delivered == 0


def test_sixteen_nodes_threshold_five() -> None:
    net = network(16, 4, schedule=77)
    public = generate(net, 5, 7)
    assert_consistent_key(stored_shares(net), public, max_subsets=10)
    assert all_sessions_ended(net)


def test_second_generation_of_a_key_is_refused() -> None:
    net = network(3, 5)
    generate(net, 1, 0)
    sid = net.start(2, generation.GenerateServerKey(KEY, AUTHOR_PROOF, 1))
    net.run()
    with pytest.raises(ServerKeyAlreadyGenerated):
        net.value(2, sid)


def test_a_key_on_one_slave_refuses_generation_and_nothing_is_stored() -> None:
    net = network(3, 6)
    generate(net, 1, 0)
    # only node 1 keeps the key
    for index in (0, 2):
        net.node(index).storage.remove(KEY)
    sid = net.start(0, generation.GenerateServerKey(KEY, AUTHOR_PROOF, 1))
    net.run()
    with pytest.raises(ServerKeyAlreadyGenerated, match=short(net.order[1])):
        net.value(0, sid)
    assert set(stored_shares(net)) == {net.order[1]}
    assert all_sessions_ended(net)


@pytest.mark.parametrize("threshold", [-1, 3, 4])
def test_threshold_out_of_range_is_an_invalid_request(threshold: int) -> None:
    net = network(3, 7)
    sid = net.start(0, generation.GenerateServerKey(KEY, AUTHOR_PROOF, threshold))
    with pytest.raises(InvalidRequest):
        net.value(0, sid)


def test_generation_needs_every_node_connected() -> None:
    net = network(3, 8)
    net.disconnect(net.order[2])
    sid = net.start(0, generation.GenerateServerKey(KEY, AUTHOR_PROOF, 1))
    with pytest.raises(ConsensusUnreachable):
        net.value(0, sid)


@given(st.integers(0, 80), st.integers(0, 2**32))
def test_a_disconnect_fails_the_session_and_stored_keys_stay_consistent(
    steps: int, schedule: int
) -> None:
    net = network(4, 9, schedule)
    sid = net.start(0, generation.GenerateServerKey(KEY, AUTHOR_PROOF, 1))
    net.run(max_steps=steps)
    finished_before = net.result(0, sid)
    net.disconnect(net.order[2])
    net.run()
    result = outcome(net, 0, sid)
    if finished_before is None:
        assert isinstance(result, Fail)
    shares = stored_shares(net)
    if isinstance(result, Finish):
        assert isinstance(result.result, Point)
        assert_consistent_key(shares, result.result)
    elif shares:
        # the master committed before the disconnect: whatever is stored is one key
        public = next(iter(shares.values())).public
        assert all(s.public == public for s in shares.values())
    assert all(len(node.core) == 0 for i, node in enumerate(net.nodes.values()) if i != 2)


def test_time_out_fails_every_session() -> None:
    net = network(3, 10)
    sid = net.start(0, generation.GenerateServerKey(KEY, AUTHOR_PROOF, 1))
    net.run(max_steps=4)
    net.time_out_all()
    with pytest.raises(SessionTimeout):
        net.value(0, sid)
    net.run()
    assert all_sessions_ended(net)
    assert stored_shares(net) == {}


@given(st.integers(0, 2**32), st.integers(0, 2**16))
def test_concurrent_generation_of_one_key_at_most_one_succeeds(schedule: int, seed: int) -> None:
    net = network(4, seed, schedule)
    first = net.start(0, generation.GenerateServerKey(KEY, AUTHOR_PROOF, 1))
    second = net.start(3, generation.GenerateServerKey(KEY, AUTHOR_PROOF, 2))
    net.run()
    outcomes = [outcome(net, 0, first), outcome(net, 3, second)]
    winners = [o for o in outcomes if isinstance(o, Finish)]
    assert len(winners) <= 1
    shares = stored_shares(net)
    if winners:
        public = winners[0].result
        assert isinstance(public, Point)
        assert set(shares) == set(net.nodes)
        assert_consistent_key(shares, public)
    else:
        assert shares == {}
    assert all_sessions_ended(net)


# --- a node that deals a bad share ----------------------------------------------------------


class BadDealer(generation.GenerationSession):
    """Sends every other node a first secret off by one."""

    def _after_dkg(self, out: list[Outgoing]) -> list[Effect]:
        bad: list[Outgoing] = []
        for node, message in out:
            if isinstance(message, DkgKeys):
                bad.append((node, replace(message, secret1=message.secret1 + Scalar(1))))
            else:
                bad.append((node, message))
        return super()._after_dkg(bad)


def join_as_bad_dealer(
    ctx: SessionContext, sender: NodeId, message: InitializeGeneration, share: KeyShare | None
) -> tuple[generation.Session, list[Effect]]:
    session, effects = generation.join_generation(ctx, sender, message, share)
    assert isinstance(session, generation.GenerationSession)
    session.__class__ = BadDealer
    return session, effects


@given(st.integers(0, 2**32))
def test_a_node_that_sends_a_bad_share_is_named(schedule: int) -> None:
    net = network(4, 11, schedule)
    culprit = net.node(2)
    culprit.core = NodeCore(
        culprit.core.ctx,
        culprit.storage,
        MASTERS,
        {**SLAVES, InitializeGeneration: join_as_bad_dealer},
    )
    sid = net.start(0, generation.GenerateServerKey(KEY, AUTHOR_PROOF, 1))
    net.run()
    result = outcome(net, 0, sid)
    assert isinstance(result, Fail)
    assert isinstance(result.error, ProtocolViolation)
    assert short(culprit.node_id) in str(result.error)
    assert "commitments" in str(result.error)
    assert stored_shares(net) == {}
    assert all_sessions_ended(net)
