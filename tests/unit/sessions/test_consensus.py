"""AccessConsensus and AccessCheck fed by hand: reaching, refusing, losing and re-selecting."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from secretstore.crypto.curve import Point, Scalar
from secretstore.crypto.keys import KeyPair, sign_recoverable
from secretstore.crypto.rng import SeededRng
from secretstore.errors import (
    AccessDenied,
    ConsensusUnreachable,
    InvalidRequest,
    MalformedMessage,
    ProtocolViolation,
    ServerKeyNotFound,
)
from secretstore.sessions import consensus as consensus_module
from secretstore.sessions.base import CheckAccess, Send, SessionContext, short
from secretstore.sessions.consensus import (
    UNDECIDED,
    AccessCheck,
    AccessConsensus,
    AskOthers,
    ConsensusFailed,
    ConsensusPhase,
    GroupSelected,
    Requester,
    random_below,
    random_sample,
    recover_requester_of,
    require_share,
    select_version,
)
from secretstore.storage.model import KeyShare, KeyShareVersion
from secretstore.types import Address, NodeId, ServerKeyId, SessionId
from secretstore.wire import codec
from secretstore.wire.consensus import AccessRequest, ConsensusCompleted, ConsensusResponse
from secretstore.wire.decryption import DecryptionRequest

SID = SessionId(b"\x05" * 32)
KEY_ID = ServerKeyId(b"\x07" * 32)
REQUESTER = Address(b"\x11" * 20)
YES = ConsensusResponse(SID, True)
NO = ConsensusResponse(SID, False)


def node_ids(n: int, seed: int = 1) -> list[NodeId]:
    rng = SeededRng(seed)
    return sorted(KeyPair.generate(rng).node_id for _ in range(n))


def version_of(nodes: list[NodeId]) -> KeyShareVersion:
    return KeyShareVersion.create({node: Scalar(i + 1) for i, node in enumerate(nodes)}, Scalar(9))


def consensus(
    nodes: list[NodeId],
    needed: int,
    master: int = 0,
    connected: list[NodeId] | None = None,
    seed: int = 3,
) -> AccessConsensus:
    ctx = SessionContext(nodes[master], SeededRng(seed), frozenset(nodes))
    return AccessConsensus(
        ctx,
        SID,
        KEY_ID,
        requester=REQUESTER,
        version=version_of(nodes),
        connected=nodes if connected is None else connected,
        needed=needed,
    )


# --- construction and start -----------------------------------------------------------------


def test_start_checks_own_access_and_asks_every_other_connected_holder() -> None:
    nodes = node_ids(5)
    outsider = node_ids(1, seed=9)[0]
    c = consensus(nodes, 2, connected=[*nodes[:4], outsider])
    request = object()
    effects = c.start(request)
    assert effects[0] == CheckAccess(SID, REQUESTER, KEY_ID)
    assert effects[1:] == [Send(node, request) for node in nodes[1:4]]
    assert c.candidates == frozenset(nodes[:4])
    assert c.in_play == frozenset(nodes[:4])
    assert c.phase is ConsensusPhase.WAITING_FOR_ANSWERS
    assert c.pending == frozenset(nodes[:4])


def test_construction_errors() -> None:
    nodes = node_ids(3)
    with pytest.raises(InvalidRequest):
        consensus(nodes, 0)
    with pytest.raises(ConsensusUnreachable, match="1 of the 3 holders"):
        consensus(nodes, 2, connected=[])
    ctx = SessionContext(node_ids(1, seed=8)[0], SeededRng(1), frozenset(nodes))
    with pytest.raises(ServerKeyNotFound):
        AccessConsensus(
            ctx,
            SID,
            KEY_ID,
            requester=REQUESTER,
            version=version_of(nodes),
            connected=nodes,
            needed=1,
        )


# --- reaching consensus ----------------------------------------------------------------------


def test_group_selected_once_enough_allowed_including_self() -> None:
    nodes = node_ids(4)
    c = consensus(nodes, 3)
    c.start(None)
    assert c.on_response(nodes[1], YES) == UNDECIDED
    assert c.on_response(nodes[2], YES) == UNDECIDED  # the master has not answered itself
    decision = c.on_own_access(True)
    assert isinstance(decision, GroupSelected)
    assert decision.attempt == 1
    assert decision.nodes == tuple(sorted(decision.nodes))
    assert set(decision.nodes) == {nodes[0], nodes[1], nodes[2]}
    assert c.group == decision.nodes
    assert c.phase is ConsensusPhase.GROUP_SELECTED
    # a late answer is kept as a spare, nothing else happens
    assert c.on_response(nodes[3], YES) == UNDECIDED
    assert c.allowed == frozenset(nodes)


def test_single_node_consensus() -> None:
    nodes = node_ids(1)
    c = consensus(nodes, 1)
    assert c.start(None) == [CheckAccess(SID, REQUESTER, KEY_ID)]
    assert c.on_own_access(True) == GroupSelected((nodes[0],), 1)


def test_own_refusal_is_final() -> None:
    nodes = node_ids(3)
    c = consensus(nodes, 2)
    c.on_response(nodes[1], YES)
    c.on_response(nodes[2], YES)
    decision = c.on_own_access(False)
    assert isinstance(decision, ConsensusFailed)
    assert isinstance(decision.error, AccessDenied)
    assert c.phase is ConsensusPhase.ENDED
    assert c.on_response(nodes[1], YES) == UNDECIDED  # ended: nothing more


def test_access_denied_as_soon_as_needed_is_out_of_reach() -> None:
    nodes = node_ids(5)
    c = consensus(nodes, 3)
    assert c.on_response(nodes[1], NO) == UNDECIDED
    assert c.on_response(nodes[2], NO) == UNDECIDED  # 3 may still allow
    decision = c.on_response(nodes[3], NO)  # only 2 can allow now; others still pending
    assert isinstance(decision, ConsensusFailed)
    assert isinstance(decision.error, AccessDenied)
    assert "access denied" in str(decision.error)
    # for the log: the nodes that refused (the requester only sees "Access denied")
    assert all(short(node) in str(decision.error) for node in nodes[1:4])
    assert short(nodes[4]) not in str(decision.error)


def test_losses_make_consensus_unreachable() -> None:
    nodes = node_ids(3)
    c = consensus(nodes, 3)
    c.on_own_access(True)
    decision = c.on_node_lost(nodes[2], "disconnected")
    assert isinstance(decision, ConsensusFailed)
    assert isinstance(decision.error, ConsensusUnreachable)
    assert short(nodes[2]) in str(decision.error)


def test_unreachable_names_every_loss_with_its_reason_not_only_the_last() -> None:
    nodes = node_ids(5)
    c = consensus(nodes, 3)
    c.on_own_access(True)
    assert c.on_response(nodes[1], YES) == UNDECIDED
    assert c.on_response(nodes[2], YES) != UNDECIDED  # a group of 3
    assert c.on_node_lost(nodes[1], "failed: node X was silent") == UNDECIDED  # 3, 4 pending
    assert c.on_node_lost(nodes[3], "disconnected") == UNDECIDED
    decision = c.on_node_lost(nodes[4], "disconnected")
    assert isinstance(decision, ConsensusFailed)
    text = str(decision.error)
    assert f"node {short(nodes[1])} failed: node X was silent" in text
    assert f"node {short(nodes[3])} disconnected" in text
    assert f"node {short(nodes[4])} disconnected" in text


def test_refusal_and_loss_together_are_unreachable_not_denied() -> None:
    nodes = node_ids(4)
    c = consensus(nodes, 3)
    c.on_own_access(True)
    assert c.on_response(nodes[1], NO) == UNDECIDED
    decision = c.on_node_lost(nodes[2])
    assert isinstance(decision, ConsensusFailed)
    assert isinstance(decision.error, ConsensusUnreachable)


@given(
    n=st.integers(1, 7),
    data=st.data(),
)
def test_decision_comes_exactly_when_the_outcome_is_determined(n: int, data: st.DataObject) -> None:
    nodes = node_ids(n)
    needed = data.draw(st.integers(1, n))
    answers = data.draw(st.lists(st.booleans(), min_size=n, max_size=n))
    order = data.draw(st.permutations(range(n)))
    c = consensus(nodes, needed)
    allowed: set[int] = set()
    denied: set[int] = set()
    for step, i in enumerate(order):
        (allowed if answers[i] else denied).add(i)
        if i == 0:
            decision = c.on_own_access(answers[i])
        else:
            decision = c.on_response(nodes[i], ConsensusResponse(SID, answers[i]))
        reached = 0 in allowed and len(allowed) >= needed
        refused = 0 in denied or n - len(denied) < needed
        if reached:
            assert isinstance(decision, GroupSelected), step
            assert nodes[0] in decision.nodes and len(decision.nodes) == needed
            assert {nodes[j] for j in allowed} >= set(decision.nodes)
            return
        if refused:
            assert isinstance(decision, ConsensusFailed)
            assert isinstance(decision.error, AccessDenied)
            return
        assert decision == UNDECIDED
    raise AssertionError("every answer is in, yet no decision")


# --- answers that break the protocol ---------------------------------------------------------


def test_answer_from_a_node_not_asked_is_a_violation() -> None:
    nodes = node_ids(4)
    c = consensus(nodes, 2, connected=nodes[:3])
    decision = c.on_response(nodes[3], YES)
    assert isinstance(decision, ConsensusFailed)
    assert isinstance(decision.error, ProtocolViolation)
    assert decision.error.node == short(nodes[3])


def test_answer_from_self_is_a_violation() -> None:
    nodes = node_ids(2)
    c = consensus(nodes, 2)
    decision = c.on_response(nodes[0], YES)
    assert isinstance(decision, ConsensusFailed)
    assert isinstance(decision.error, ProtocolViolation)


def test_same_answer_twice_is_ignored_a_different_one_is_a_violation() -> None:
    nodes = node_ids(4)
    c = consensus(nodes, 3)
    assert c.on_response(nodes[1], YES) == UNDECIDED
    assert c.on_response(nodes[1], YES) == UNDECIDED
    assert c.on_response(nodes[2], NO) == UNDECIDED
    assert c.on_response(nodes[2], NO) == UNDECIDED
    decision = c.on_response(nodes[1], NO)
    assert isinstance(decision, ConsensusFailed)
    assert isinstance(decision.error, ProtocolViolation)
    assert decision.error.node == short(nodes[1])


def test_answer_of_a_lost_node_is_ignored() -> None:
    nodes = node_ids(4)
    c = consensus(nodes, 2)
    c.on_node_lost(nodes[1])
    assert c.on_response(nodes[1], YES) == UNDECIDED
    assert nodes[1] not in c.allowed
    assert nodes[1] not in c.in_play


# --- losing group members --------------------------------------------------------------------


def reach(c: AccessConsensus, nodes: list[NodeId], allow: list[int]) -> GroupSelected:
    decision: object = c.on_own_access(True)
    for i in allow:
        decision = c.on_response(nodes[i], YES)
        if isinstance(decision, GroupSelected):
            return decision
    assert isinstance(decision, GroupSelected)
    return decision


def test_lost_group_member_is_replaced_by_a_spare() -> None:
    nodes = node_ids(5)
    c = consensus(nodes, 3)
    first = reach(c, nodes, [1, 2])
    c.on_response(nodes[3], YES)
    c.on_response(nodes[4], YES)
    lost = next(node for node in first.nodes if node != nodes[0])
    decision = c.on_node_lost(lost, "failed: boom")
    assert isinstance(decision, GroupSelected)
    assert decision.attempt == 2 == c.attempt
    assert lost not in decision.nodes and nodes[0] in decision.nodes
    assert len(decision.nodes) == 3
    assert lost not in c.in_play


def test_lost_group_member_waits_for_pending_answers() -> None:
    nodes = node_ids(4)
    c = consensus(nodes, 3)
    first = reach(c, nodes, [1, 2])
    lost = next(node for node in first.nodes if node != nodes[0])
    assert c.on_node_lost(lost) == UNDECIDED
    assert c.group is None and c.phase is ConsensusPhase.WAITING_FOR_ANSWERS
    decision = c.on_response(nodes[3], YES)
    assert isinstance(decision, GroupSelected) and decision.attempt == 2
    assert lost not in decision.nodes


def test_lost_group_member_without_replacement_is_unreachable() -> None:
    nodes = node_ids(3)
    c = consensus(nodes, 3)
    reach(c, nodes, [1, 2])
    decision = c.on_node_lost(nodes[1], "failed: its job")
    assert isinstance(decision, ConsensusFailed)
    assert isinstance(decision.error, ConsensusUnreachable)
    assert "its job" in str(decision.error)


def test_losing_a_spare_keeps_the_group() -> None:
    nodes = node_ids(5)
    c = consensus(nodes, 2)
    first = reach(c, nodes, [1, 2, 3, 4])
    c.on_response(nodes[2], YES)
    spare = next(node for node in nodes if node not in first.nodes)
    assert c.on_node_lost(spare) == UNDECIDED
    assert c.group == first.nodes


def test_loss_of_self_unknown_or_refused_nodes_changes_nothing() -> None:
    nodes = node_ids(4)
    c = consensus(nodes, 2, connected=nodes[:3])
    c.on_response(nodes[1], NO)
    before = c.in_play
    assert c.on_node_lost(nodes[0]) == UNDECIDED
    assert c.on_node_lost(nodes[3]) == UNDECIDED
    assert c.on_node_lost(nodes[1]) == UNDECIDED
    assert c.in_play == before


# --- broken links ----------------------------------------------------------------------------


def reach_all(c: AccessConsensus, nodes: list[NodeId]) -> GroupSelected:
    """The first group, once every node allowed (the later answers change nothing)."""
    first = reach(c, nodes, list(range(1, len(nodes))))
    for node in nodes[1:]:
        if node in c.pending:
            assert c.on_response(node, YES) == UNDECIDED
    return first


def test_a_broken_link_in_the_group_reselects_without_both_ends_and_loses_neither() -> None:
    nodes = node_ids(5)
    c = consensus(nodes, 3)
    first = reach_all(c, nodes)
    a, b = (node for node in first.nodes if node != nodes[0])
    decision = c.on_link_broken(a, b)
    assert isinstance(decision, GroupSelected) and decision.attempt == 2
    assert not {a, b} <= set(decision.nodes)
    assert nodes[0] in decision.nodes and len(decision.nodes) == 3
    assert c.allowed == set(nodes) and c.in_play == set(nodes)
    assert c.broken_links == {frozenset((a, b))}
    assert c.on_link_broken(b, a) == UNDECIDED  # the same link again


def test_a_broken_link_outside_the_group_keeps_the_group_and_steers_later_ones() -> None:
    nodes = node_ids(5)
    c = consensus(nodes, 3)
    first = reach_all(c, nodes)
    member = next(node for node in first.nodes if node != nodes[0])
    spare = next(node for node in nodes if node not in first.nodes)
    assert c.on_link_broken(member, spare) == UNDECIDED
    assert c.group == first.nodes
    other = next(node for node in first.nodes if node not in (nodes[0], member))
    decision = c.on_node_lost(other)
    assert isinstance(decision, GroupSelected)
    assert not {member, spare} <= set(decision.nodes)


def test_a_broken_link_to_the_master_loses_the_other_end() -> None:
    nodes = node_ids(4)
    c = consensus(nodes, 2)
    first = reach_all(c, nodes)
    member = next(node for node in first.nodes if node != nodes[0])
    decision = c.on_link_broken(member, nodes[0], "lost its link to the master")
    assert isinstance(decision, GroupSelected)
    assert member not in decision.nodes and member not in c.allowed
    assert c.broken_links == set()
    assert c.on_link_broken(nodes[0], nodes[0]) == UNDECIDED


def test_a_node_breaking_its_links_to_everyone_excludes_only_itself() -> None:
    nodes = node_ids(6)
    c = consensus(nodes, 3)
    reach_all(c, nodes)
    liar = nodes[3]
    for victim in nodes[1:]:
        if victim != liar:
            assert not isinstance(c.on_link_broken(liar, victim), ConsensusFailed)
    assert c.group is not None and liar not in c.group
    assert c.allowed == set(nodes)
    for seed in range(20):  # whatever the choice, no group holds the liar any more
        group = consensus_module.select_group(
            SeededRng(seed), nodes[0], c.allowed, 3, c.broken_links
        )
        assert group is not None and liar not in group


def test_broken_links_that_leave_no_group_are_unreachable_and_named() -> None:
    nodes = node_ids(4)
    c = consensus(nodes, 3)
    first = reach_all(c, nodes)
    a, b = (node for node in first.nodes if node != nodes[0])
    spare = next(node for node in nodes if node not in first.nodes)
    decision = c.on_link_broken(a, b)
    assert isinstance(decision, GroupSelected)
    c_, d_ = (node for node in decision.nodes if node != nodes[0])
    decision = c.on_link_broken(c_, d_)
    assert isinstance(decision, GroupSelected | ConsensusFailed)
    while isinstance(decision, GroupSelected):
        x, y = (node for node in decision.nodes if node != nodes[0])
        decision = c.on_link_broken(x, y)
    assert isinstance(decision, ConsensusFailed)
    assert isinstance(decision.error, ConsensusUnreachable)
    text = str(decision.error)
    assert "avoids the broken links" in text
    for pair in c.broken_links:
        assert "–".join(sorted(short(node) for node in pair)) in text
    assert {a, b, spare} <= {node for pair in c.broken_links for node in pair}


def test_broken_links_wait_for_pending_answers_that_could_still_make_a_group() -> None:
    nodes = node_ids(4)
    c = consensus(nodes, 3)
    first = reach(c, nodes, [1, 2])
    a, b = (node for node in first.nodes if node != nodes[0])
    assert c.on_link_broken(a, b) == UNDECIDED  # nodes[3] has yet to answer
    decision = c.on_response(nodes[3], YES)
    assert isinstance(decision, GroupSelected)
    assert nodes[3] in decision.nodes and not {a, b} <= set(decision.nodes)


@given(n=st.integers(2, 8), data=st.data())
def test_select_group_finds_a_valid_group_exactly_when_one_exists(
    n: int, data: st.DataObject
) -> None:
    nodes = node_ids(n)
    needed = data.draw(st.integers(1, n))
    pairs = data.draw(
        st.sets(
            st.tuples(st.integers(1, n - 1), st.integers(1, n - 1)).filter(lambda p: p[0] < p[1])
        )
    )
    broken = {frozenset((nodes[i], nodes[j])) for i, j in pairs}
    group = consensus_module.select_group(
        SeededRng(data.draw(st.integers(0, 99))), nodes[0], nodes, needed, broken
    )
    exists = any(
        not any(pair <= set(chosen) | {nodes[0]} for pair in broken)
        for chosen in itertools.combinations(nodes[1:], needed - 1)
    )
    assert (
        (group is not None)
        == exists
        == consensus_module.group_exists(nodes[0], nodes, needed, broken)
    )
    if group is not None:
        assert len(group) == needed and nodes[0] in group and list(group) == sorted(group)
        assert not any(pair <= set(group) for pair in broken)


def test_group_search_gives_up_at_its_step_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    nodes = node_ids(6)
    broken = {frozenset((nodes[1], nodes[2]))}
    assert consensus_module.select_group(SeededRng(1), nodes[0], nodes, 4, broken) is not None
    monkeypatch.setattr(consensus_module, "GROUP_SEARCH_STEPS", 1)
    assert consensus_module.select_group(SeededRng(1), nodes[0], nodes, 4, broken) is None
    # without broken links no search runs: the choice is the uniform sample, as before
    assert consensus_module.select_group(SeededRng(1), nodes[0], nodes, 4) is not None


def test_max_attempts_bounds_every_reselection() -> None:
    assert [consensus_module.max_attempts(h) for h in (1, 2, 3, 5)] == [1, 2, 4, 11]
    nodes = node_ids(5)
    c = consensus(nodes, 2)
    decision: object = reach(c, nodes, [1, 2, 3, 4])
    while isinstance(decision, GroupSelected):
        other = next(node for node in decision.nodes if node != nodes[0])
        decision = c.on_node_lost(other)
    assert c.attempt <= consensus_module.max_attempts(len(nodes))


# --- completion and timeouts -----------------------------------------------------------------


def test_completion_tells_every_node_still_in_play() -> None:
    nodes = node_ids(5)
    c = consensus(nodes, 2)
    c.on_response(nodes[1], NO)
    c.on_node_lost(nodes[2])
    reach(c, nodes, [3])
    effects = c.completion()
    assert effects == [Send(node, ConsensusCompleted(SID)) for node in (nodes[3], nodes[4])]
    assert c.phase is ConsensusPhase.ENDED
    assert c.on_response(nodes[4], YES) == UNDECIDED


def test_timeout_error_names_the_silent_nodes() -> None:
    nodes = node_ids(3)
    c = consensus(nodes, 3)
    c.on_own_access(True)
    c.on_response(nodes[1], YES)
    error = c.timeout_error()
    assert isinstance(error, ConsensusUnreachable)
    assert short(nodes[2]) in str(error) and short(nodes[1]) not in str(error)


# --- selection -------------------------------------------------------------------------------


def test_selection_is_deterministic_for_a_seed_and_varies_across_seeds() -> None:
    nodes = node_ids(6)
    groups = []

    def select(seed: int) -> tuple[NodeId, ...]:
        c = consensus(nodes, 3, seed=seed)
        for node in nodes[1:]:
            assert c.on_response(node, YES) == UNDECIDED
        decision = c.on_own_access(True)  # the master answers last: all five are allowed
        assert isinstance(decision, GroupSelected)
        return decision.nodes

    for seed in range(30):
        groups.append(select(seed))
        assert select(seed) == groups[-1]
    # with every node allowed before selection, the choice is spread over all of them
    assert {node for group in groups for node in group} == set(nodes)


def test_needed_is_a_parameter_for_ecdsa_style_consensus() -> None:
    nodes = node_ids(7)
    c = consensus(nodes, 5)  # 2t+1 with t = 2
    group = reach(c, nodes, [1, 2, 3, 4, 5, 6])
    assert len(group.nodes) == 5


@given(bound=st.integers(1, 1000), seed=st.integers(0, 2**32))
def test_random_below_stays_in_range(bound: int, seed: int) -> None:
    assert 0 <= random_below(SeededRng(seed), bound) < bound


@given(size=st.integers(0, 8), data=st.data())
def test_random_sample_picks_distinct_items(size: int, data: st.DataObject) -> None:
    items = node_ids(size)
    count = data.draw(st.integers(0, size))
    chosen = random_sample(SeededRng(data.draw(st.integers(0, 99))), items, count)
    assert len(chosen) == count == len(set(chosen))
    assert set(chosen) <= set(items)


def test_random_helpers_reject_bad_arguments() -> None:
    with pytest.raises(InvalidRequest):
        random_below(SeededRng(1), 0)
    with pytest.raises(InvalidRequest):
        random_sample(SeededRng(1), node_ids(2), 3)


# --- the slave side and the shared helpers ---------------------------------------------------


def share_for(nodes: list[NodeId]) -> KeyShare:
    version = version_of(nodes)
    public = KeyPair.generate(SeededRng(4)).public
    return KeyShare(Address(bytes(20)), 0, public, None, None, (version,))


def answer_of(check: AccessCheck) -> bool | None:
    return check.allowed


def test_access_check_recovers_the_requester_itself_and_answers_once() -> None:
    nodes = node_ids(3)
    requester = KeyPair.generate(SeededRng(12))
    signature = sign_recoverable(requester.secret, KEY_ID)
    share = share_for(nodes)
    ctx = SessionContext(nodes[1], SeededRng(2), frozenset(nodes))
    access = AccessRequest(signature, share.last_version().hash)
    check = AccessCheck(ctx, SID, nodes[0], key_id=KEY_ID, request=access, share=share)
    assert check.requester.address == requester.address
    assert check.start() == [CheckAccess(SID, requester.address, KEY_ID)]
    assert answer_of(check) is None
    assert check.on_access_checked(True) == [Send(nodes[0], ConsensusResponse(SID, True))]
    assert answer_of(check) is True
    assert check.on_access_checked(False) == []


def test_access_check_rejections() -> None:
    nodes = node_ids(3)
    outsider = node_ids(1, seed=9)[0]
    signature = sign_recoverable(KeyPair.generate(SeededRng(12)).secret, KEY_ID)
    share = share_for(nodes)
    version = share.last_version().hash
    ctx = SessionContext(nodes[1], SeededRng(2), frozenset(nodes))
    with pytest.raises(ServerKeyNotFound):
        AccessCheck(
            ctx,
            SID,
            nodes[0],
            key_id=KEY_ID,
            request=AccessRequest(signature, b"\x01" * 32),
            share=share,
        )
    with pytest.raises(ProtocolViolation) as caught:
        AccessCheck(
            ctx,
            SID,
            outsider,
            key_id=KEY_ID,
            request=AccessRequest(signature, version),
            share=share,
        )
    assert caught.value.node == short(outsider)
    bad = signature[:64] + b"\x05"
    with pytest.raises(InvalidRequest):
        AccessCheck(
            ctx, SID, nodes[0], key_id=KEY_ID, request=AccessRequest(bad, version), share=share
        )
    other = SessionContext(outsider, SeededRng(2), frozenset(nodes))
    with pytest.raises(ServerKeyNotFound):
        AccessCheck(
            other,
            SID,
            nodes[0],
            key_id=KEY_ID,
            request=AccessRequest(signature, version),
            share=share,
        )


def test_shared_request_helpers() -> None:
    nodes = node_ids(2)
    share = share_for(nodes)
    with pytest.raises(ServerKeyNotFound):
        require_share(None, KEY_ID)
    assert require_share(share, KEY_ID) is share
    assert select_version(share, KEY_ID, nodes[0], None) == share.last_version()
    assert select_version(share, KEY_ID, nodes[0], share.last_version().hash).hash == (
        share.last_version().hash
    )
    with pytest.raises(ServerKeyNotFound, match="version 0x0202"):
        select_version(share, KEY_ID, nodes[0], b"\x02" * 32)
    with pytest.raises(InvalidRequest):
        recover_requester_of(b"\x00" * 64, KEY_ID)
    with pytest.raises(InvalidRequest):
        recover_requester_of(b"\x00" * 65, KEY_ID)


def test_a_requester_is_recovered_once_per_signature_and_failures_are_not_kept(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[bytes] = []
    real = consensus_module.recover_requester

    def counting(signature: bytes, key_id: bytes) -> Point:
        calls.append(signature)
        return real(signature, key_id)

    monkeypatch.setattr(consensus_module, "recover_requester", counting)
    consensus_module._recover.cache_clear()  # nothing remembered from other tests
    key = KeyPair.generate(SeededRng(4242))
    key_id = ServerKeyId(b"\x42" * 32)
    signature = sign_recoverable(key.secret, key_id)
    first = recover_requester_of(signature, key_id)
    assert first == Requester(key.public, key.address)
    assert recover_requester_of(bytes(signature), key_id) == first
    assert calls == [signature]
    other_id = ServerKeyId(b"\x43" * 32)  # the same signature over another key id
    assert recover_requester_of(signature, other_id).public != key.public
    assert len(calls) == 2
    for _ in range(2):
        with pytest.raises(InvalidRequest):
            recover_requester_of(b"\x00" * 65, key_id)
    assert len(calls) == 4


# --- wire ----------------------------------------------------------------------------------


def test_consensus_messages_round_trip_and_reject_bad_lengths() -> None:
    access = AccessRequest(b"\x01" * 65, b"\x02" * 32)
    for msg in (YES, NO, ConsensusCompleted(SID), DecryptionRequest(SID, KEY_ID, access)):
        assert codec.decode(codec.encode(msg)) == msg
    with pytest.raises(ValueError):
        AccessRequest(b"\x01" * 64, b"\x02" * 32)
    with pytest.raises(ValueError):
        AccessRequest(b"\x01" * 65, b"\x02" * 31)
    good = codec.encode(DecryptionRequest(SID, KEY_ID, access))
    # shorten the signature's length prefix and body by one byte: the codec must refuse it
    prefix = 2 + 32 + 32
    tampered = good[:prefix] + (64).to_bytes(4, "big") + good[prefix + 4 : prefix + 4 + 64]
    tampered += good[prefix + 4 + 65 :]
    with pytest.raises(MalformedMessage):
        codec.decode(tampered)


def test_lost_member_whose_part_is_done_keeps_the_group() -> None:
    nodes = node_ids(3)
    c = consensus(nodes, 3)
    first = reach(c, nodes, [1, 2])
    assert c.on_node_lost(nodes[1], keep_group=True) == UNDECIDED
    assert c.group == first.nodes
    assert nodes[1] not in c.in_play and nodes[1] not in c.allowed


# --- a group asked first (the decryption's one round trip) -------------------------------------


def preselected(
    nodes: list[NodeId], needed: int, seed: int = 3
) -> tuple[AccessConsensus, GroupSelected]:
    c = consensus(nodes, needed, seed=seed)
    group = c.preselect()
    c.start("with the job", to=group.nodes)
    return c, group


def test_a_preselected_group_asks_its_members_only() -> None:
    nodes = node_ids(5)
    c = consensus(nodes, 3)
    group = c.preselect()
    assert group.attempt == 1 and len(group.nodes) == 3 and nodes[0] in group.nodes
    assert c.group == group.nodes and c.attempt == 1
    effects = c.start("job", to=group.nodes)
    others = [node for node in group.nodes if node != nodes[0]]
    assert effects == [CheckAccess(SID, REQUESTER, KEY_ID), *(Send(n, "job") for n in others)]
    assert c.unasked == frozenset(nodes) - set(group.nodes)
    assert c.pending == frozenset(group.nodes)
    assert c.in_play == frozenset(group.nodes)  # the unasked are not in the session
    with pytest.raises(InvalidRequest):
        c.preselect()


def test_a_preselected_group_whose_members_all_allow_runs() -> None:
    nodes = node_ids(4)
    c, group = preselected(nodes, 2)
    member = next(node for node in group.nodes if node != nodes[0])
    assert c.on_own_access(True) == UNDECIDED
    assert c.on_response(member, YES) == UNDECIDED
    assert c.group == group.nodes and c.allowed == frozenset(group.nodes)
    done = c.completion()
    assert done == [Send(member, ConsensusCompleted(SID))]  # the unasked hear nothing


def test_a_member_refusing_asks_the_others_then_a_new_group_runs() -> None:
    nodes = node_ids(4)
    c, group = preselected(nodes, 2)
    member = next(node for node in group.nodes if node != nodes[0])
    c.on_own_access(True)
    decision = c.on_response(member, NO)
    assert isinstance(decision, AskOthers)
    assert set(decision.nodes) == set(nodes) - set(group.nodes)
    assert c.group is None and c.unasked == frozenset()
    assert c.pending == frozenset(decision.nodes)
    spare = decision.nodes[0]
    second = c.on_response(spare, YES)
    assert second == GroupSelected(tuple(sorted((nodes[0], spare))), 2)


def test_a_member_lost_asks_the_others_and_an_unasked_answer_is_a_violation() -> None:
    nodes = node_ids(3)
    c, group = preselected(nodes, 2)
    member = next(node for node in group.nodes if node != nodes[0])
    spare = next(node for node in nodes if node not in group.nodes)
    decision = c.on_response(spare, YES)  # not asked yet
    assert isinstance(decision, ConsensusFailed)
    assert isinstance(decision.error, ProtocolViolation) and decision.error.node == short(spare)
    c, group = preselected(nodes, 2)
    assert c.on_node_lost(spare) == UNDECIDED  # an unasked node is not in play
    assert c.on_node_lost(member) == AskOthers((spare,))
    c.on_own_access(True)
    assert c.on_response(spare, YES) == GroupSelected(tuple(sorted((nodes[0], spare))), 2)


def test_refusals_of_unasked_nodes_count_only_once_they_are_asked() -> None:
    nodes = node_ids(4)
    c, group = preselected(nodes, 3)
    member = next(node for node in group.nodes if node != nodes[0])
    decision = c.on_response(member, NO)
    assert isinstance(decision, AskOthers)  # 3 of 4 may still allow
    spare = decision.nodes[0]
    denied = c.on_response(spare, NO)
    assert isinstance(denied, ConsensusFailed) and isinstance(denied.error, AccessDenied)


def test_a_slow_group_asks_the_others_once() -> None:
    nodes = node_ids(4)
    c, group = preselected(nodes, 2)
    decision = c.on_slow()
    assert isinstance(decision, AskOthers) and c.group is None
    assert set(decision.nodes) == set(nodes) - set(group.nodes)
    assert c.on_slow() == UNDECIDED  # nothing left to ask
    c.on_own_access(True)
    member = next(node for node in group.nodes if node != nodes[0])
    # the slow member's late "allowed" counts like any other
    chosen = c.on_response(member, YES)
    assert isinstance(chosen, GroupSelected) and chosen.attempt == 2
    everyone = consensus(nodes[:2], 2)
    first = everyone.preselect()
    everyone.start("job", to=first.nodes)
    assert everyone.on_slow() == UNDECIDED and everyone.group == first.nodes


@given(n=st.integers(1, 6), data=st.data())
def test_asking_a_group_first_decides_as_asking_everyone(n: int, data: st.DataObject) -> None:
    """Whatever each node's policy says and whatever the order of the answers, asking the
    preselected group first ends as asking everyone at once: served exactly when the master
    and at least `needed - 1` others allow, by a group of nodes that allowed."""
    nodes = node_ids(n)
    needed = data.draw(st.integers(1, n))
    answers = data.draw(st.lists(st.booleans(), min_size=n, max_size=n))
    c, group = preselected(nodes, needed, seed=data.draw(st.integers(0, 50)))
    asked = set(group.nodes)
    answered: set[int] = set()
    decision: object = UNDECIDED
    while not isinstance(decision, ConsensusFailed):
        waiting = [i for i in range(n) if nodes[i] in asked and i not in answered]
        if not waiting:
            break
        i = data.draw(st.sampled_from(waiting))
        answered.add(i)
        if i == 0:
            decision = c.on_own_access(answers[i])
        else:
            decision = c.on_response(nodes[i], ConsensusResponse(SID, answers[i]))
        if isinstance(decision, AskOthers):
            asked |= set(decision.nodes)
    allowers = {nodes[i] for i in range(n) if answers[i]}
    served = answers[0] and len(allowers) >= needed
    if served:
        assert not isinstance(decision, ConsensusFailed)
        assert c.group is not None and set(c.group) <= set(c.allowed) <= allowers
        assert len(c.group) == needed and nodes[0] in c.group
    else:
        assert isinstance(decision, ConsensusFailed)
        assert isinstance(decision.error, AccessDenied)
