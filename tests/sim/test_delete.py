"""Threshold delete on a simulated network, under hypothesis-chosen delivery orders: the author
erases a key on every holder; anyone else is refused and nothing changes; with up to t holders
away the delete completes and they erase when they come back (tombstone pushes); with more it
is refused before anything is erased; a forged tombstone erases nothing; a later key under
the same id is a new key that old tombstones never touch."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from secretstore.crypto.bound import BoundOperation, delete_payload, sign_bound_request
from secretstore.crypto.curve import Point, Scalar
from secretstore.crypto.keys import KeyPair, sign_recoverable
from secretstore.crypto.rng import SeededRng
from secretstore.errors import (
    AccessDenied,
    InvalidRequest,
    NodeDisconnected,
    ServerKeyNotFound,
)
from secretstore.sessions.admin.delete import DeleteKey, DeleteResult, rule_problems
from secretstore.sessions.base import Fail, Finish, short
from secretstore.sessions.decryption import RetrieveDocumentKey
from secretstore.sessions.generation import GenerateServerKey
from secretstore.sessions.retrieval import RetrieveServerKey
from secretstore.sessions.signing_schnorr import SignSchnorr
from secretstore.storage.model import Tombstone
from secretstore.types import Hash256, NodeId, ServerKeyId, SessionId
from secretstore.wire.delete import (
    DeleteKeyErase,
    DeleteKeyErased,
    DeleteKeyHolding,
    Holding,
    TombstoneEntry,
    TombstonePush,
    VersionNodes,
)
from secretstore.wire.requester import RequesterProof
from tests.sim.admin_world import MESSAGE, REQUESTER, AdminWorld, key_id, make_world

seeds = st.integers(0, 2**32)
KEY0, KEY1 = key_id(0), key_id(1)
STRANGER = KeyPair.generate(SeededRng(b"delete stranger"))


def delete_request(world: AdminWorld, key: ServerKeyId, who: KeyPair = REQUESTER) -> DeleteKey:
    public = world.keys[key].public
    bound = sign_bound_request(who.secret, BoundOperation.DELETE_KEY, key, delete_payload(public))
    return DeleteKey(key, RequesterProof.signature(sign_recoverable(who.secret, key)), bound)


def run(world: AdminWorld, master: NodeId, request: object) -> Finish | Fail:
    sid = world._start(master, request)
    world.net.run()
    outcome = world.net.nodes[master].results.get(sid)
    assert outcome is not None, "the session has not ended"
    return outcome


def holders_of(world: AdminWorld, key: ServerKeyId) -> set[NodeId]:
    return set(world.shares(key))


def assert_unusable(world: AdminWorld, key: ServerKeyId, through: Sequence[NodeId]) -> None:
    """Every route through every node of `through` finds no key."""
    signature = sign_recoverable(REQUESTER.secret, key)
    for master in through:
        for request in (
            RetrieveDocumentKey(key, signature, shadow=False),
            RetrieveDocumentKey(key, signature, shadow=True),
            SignSchnorr(key, signature, MESSAGE),
            RetrieveServerKey(key, REQUESTER.address),
        ):
            outcome = run(world, master, request)
            assert isinstance(outcome, Fail), (request, outcome)
            assert isinstance(outcome.error, ServerKeyNotFound), (request, outcome.error)


@given(seed=seeds, schedule=seeds)
@settings(max_examples=8, deadline=None)
def test_the_author_deletes_a_key_on_every_holder(seed: int, schedule: int) -> None:
    world = make_world(5, seed=seed % 1000, schedule=schedule, holders=range(5), threshold=2)
    ids = world.ids
    outcome = run(world, ids[1], delete_request(world, KEY0))
    assert isinstance(outcome, Finish), outcome
    result = outcome.result
    assert isinstance(result, DeleteResult)
    assert result.confirmed == tuple(sorted(ids)) and result.unconfirmed == ()
    assert holders_of(world, KEY0) == set()
    for node in ids:
        tombstone = world.net.nodes[node].storage.tombstone(KEY0)
        assert tombstone is not None and tombstone.public == world.keys[KEY0].public
    assert holders_of(world, KEY1) == set(ids)  # another key is untouched
    assert_unusable(world, KEY0, ids)
    world.serve_with(KEY1, ids, ids[0])
    assert world.sessions_left() == 0
    # again: nothing left to delete anywhere
    again = run(world, ids[3], delete_request(world, KEY0))
    assert isinstance(again, Fail) and isinstance(again.error, ServerKeyNotFound)


def test_anyone_but_the_author_is_refused_and_nothing_changes() -> None:
    world = make_world(3, seed=3, schedule=4, holders=range(3), threshold=1)
    ids = world.ids
    outcome = run(world, ids[0], delete_request(world, KEY0, STRANGER))
    assert isinstance(outcome, Fail) and isinstance(outcome.error, AccessDenied)
    # the author's key-id signature replayed with a stranger's bound signature
    request = delete_request(world, KEY0)
    forged = sign_bound_request(
        STRANGER.secret,
        BoundOperation.DELETE_KEY,
        KEY0,
        delete_payload(world.keys[KEY0].public),
    )
    for bound in (
        forged,
        sign_bound_request(
            REQUESTER.secret,
            BoundOperation.DELETE_KEY,
            KEY0,
            delete_payload(Point.base_mul(Scalar(9))),
        ),
    ):
        outcome = run(world, ids[1], DeleteKey(KEY0, request.requester, bound))
        assert isinstance(outcome, Fail) and isinstance(outcome.error, InvalidRequest)
    assert holders_of(world, KEY0) == set(ids)
    assert all(world.net.nodes[n].storage.tombstone(KEY0) is None for n in ids)
    world.serve_with(KEY0, ids, ids[2])
    assert world.sessions_left() == 0


def test_a_node_without_the_key_still_runs_the_delete() -> None:
    world = make_world(4, seed=5, schedule=6, holders=[1, 2, 3], threshold=1)
    ids = world.ids
    outcome = run(world, ids[0], delete_request(world, KEY0))
    assert isinstance(outcome, Finish)
    assert holders_of(world, KEY0) == set()
    assert world.net.nodes[ids[0]].storage.tombstone(KEY0) is None  # it never held the key


@given(seed=seeds, schedule=seeds)
@settings(max_examples=6, deadline=None)
def test_with_t_holders_away_the_key_is_dead_and_they_erase_when_back(
    seed: int, schedule: int
) -> None:
    world = make_world(5, seed=seed % 1000, schedule=schedule, holders=range(5), threshold=2)
    ids = world.ids
    away = ids[3:]
    for node in away:
        world.net.disconnect(node)
    outcome = run(world, ids[0], delete_request(world, KEY0))
    assert isinstance(outcome, Finish), outcome
    result = outcome.result
    assert isinstance(result, DeleteResult)
    assert set(result.confirmed) == set(ids[:3]) and set(result.unconfirmed) == set(away)
    assert holders_of(world, KEY0) == set(away)  # two of five: below t + 1 = 3
    # the two that kept a share cannot use it, with every other node up
    for node in away:
        world.reconnect(node)
    signature = sign_recoverable(REQUESTER.secret, KEY0)
    for master in away:
        outcome = run(world, master, SignSchnorr(KEY0, signature, MESSAGE))
        assert isinstance(outcome, Fail)
    # once their links come up they hear the tombstones and erase
    for node in away:
        world.link_up(node)
    world.net.run()
    assert holders_of(world, KEY0) == set()
    assert_unusable(world, KEY0, ids)
    world.serve_with(KEY1, ids, ids[4])
    assert world.sessions_left() == 0


def test_with_more_than_t_holders_away_nothing_is_erased() -> None:
    world = make_world(5, seed=7, schedule=8, holders=range(5), threshold=1)
    ids = world.ids
    for node in ids[3:]:
        world.net.disconnect(node)
    outcome = run(world, ids[0], delete_request(world, KEY0))
    assert isinstance(outcome, Fail) and isinstance(outcome.error, NodeDisconnected)
    assert "nothing was erased" in str(outcome.error)
    assert holders_of(world, KEY0) == set(ids)
    assert all(world.net.nodes[n].storage.tombstone(KEY0) is None for n in ids)
    for node in ids[3:]:
        world.reconnect(node)
    world.serve_with(KEY0, ids, ids[4])


def test_a_node_lost_after_the_first_phase_erases_when_it_is_back() -> None:
    world = make_world(4, seed=9, schedule=10, holders=range(4), threshold=1)
    ids = world.ids
    lost = ids[3]
    dropped: list[object] = []

    def tamper(sender: NodeId, to: NodeId, message: object) -> object:
        if isinstance(message, DeleteKeyErase) and to == lost and not dropped:
            dropped.append(message)
            world.net.down.add(lost)  # it dies before the erase reaches it
        return message

    world.net.tamper = tamper
    sid = world._start(ids[0], delete_request(world, KEY0))
    world.net.run()
    world.net.down.discard(lost)
    world.net.tamper = None
    world.net.disconnect(lost)
    world.net.run()
    outcome = world.net.nodes[ids[0]].results[SessionId(sid)]
    assert isinstance(outcome, Finish), outcome  # three of four erased: t = 1 holds
    assert holders_of(world, KEY0) == {lost}
    world.link_up(lost)
    world.net.run()
    assert holders_of(world, KEY0) == set()


def test_a_forged_tombstone_erases_nothing() -> None:
    world = make_world(3, seed=11, schedule=12, holders=range(3), threshold=1)
    ids = world.ids
    public = world.keys[KEY0].public
    author = REQUESTER.address
    good = sign_bound_request(
        REQUESTER.secret, BoundOperation.DELETE_KEY, KEY0, delete_payload(public)
    )
    other_public = Point.base_mul(Scalar(12345))
    entries = [
        # signed by a stranger who claims to be the author
        TombstoneEntry(
            KEY0,
            public,
            author,
            sign_bound_request(
                STRANGER.secret, BoundOperation.DELETE_KEY, KEY0, delete_payload(public)
            ),
        ),
        # the stranger as author
        TombstoneEntry(
            KEY0,
            public,
            STRANGER.address,
            sign_bound_request(
                STRANGER.secret, BoundOperation.DELETE_KEY, KEY0, delete_payload(public)
            ),
        ),
        # the author's signature of another key's delete
        TombstoneEntry(KEY1, world.keys[KEY1].public, author, good),
        # another public (a tombstone of an earlier key under the same id)
        TombstoneEntry(
            KEY0,
            other_public,
            author,
            sign_bound_request(
                REQUESTER.secret, BoundOperation.DELETE_KEY, KEY0, delete_payload(other_public)
            ),
        ),
    ]
    sender = world.net.nodes[ids[0]]
    world.net._apply(
        sender,
        [world_send(ids[1], TombstonePush(sender.core.new_session_id(), tuple(entries)))],
    )
    world.net.run()
    assert holders_of(world, KEY0) == set(ids) and holders_of(world, KEY1) == set(ids)
    assert world.net.nodes[ids[1]].storage.tombstone(KEY0) is None
    assert world.sessions_left() == 0


def world_send(to: NodeId, message: object) -> object:
    from secretstore.sessions.base import Send

    return Send(to, message)


def test_a_later_key_under_the_same_id_is_new_and_old_tombstones_never_touch_it() -> None:
    world = make_world(3, seed=13, schedule=14, holders=range(3), threshold=1, keys=1)
    ids = world.ids
    assert isinstance(run(world, ids[0], delete_request(world, KEY0)), Finish)
    signature = RequesterProof.signature(sign_recoverable(REQUESTER.secret, KEY0))
    outcome = run(world, ids[1], GenerateServerKey(KEY0, signature, 1))
    assert isinstance(outcome, Finish), outcome
    public = outcome.result
    assert isinstance(public, Point) and public != world.keys[KEY0].public
    assert holders_of(world, KEY0) == set(ids)
    for node in ids:  # every node pushes its old tombstone to every other
        for peer in ids:
            if peer != node:
                world.push_tombstones(node, peer)
    world.net.run()
    assert holders_of(world, KEY0) == set(ids)
    tombstone = world.net.nodes[ids[2]].storage.tombstone(KEY0)
    assert isinstance(tombstone, Tombstone) and tombstone.public == world.keys[KEY0].public


def test_a_delete_while_another_session_writes_the_key_is_refused() -> None:
    world = make_world(3, seed=15, schedule=16, holders=range(3), threshold=1)
    ids = world.ids
    node = world.net.nodes[ids[1]]
    assert node.core.claims.claim(KEY0, SessionId(b"\x01" * 32))
    outcome = run(world, ids[0], delete_request(world, KEY0))
    assert isinstance(outcome, Fail) and isinstance(outcome.error, InvalidRequest)
    assert holders_of(world, KEY0) == set(ids)


# --- the rule ----------------------------------------------------------------------------------


def nodes(count: int) -> list[NodeId]:
    return [NodeId(Point.base_mul(Scalar(i + 1)).to_bytes()) for i in range(count)]


@given(t=st.integers(0, 3), extra=st.integers(0, 3), away=st.integers(0, 7))
def test_the_rule_allows_exactly_t_unconfirmed_holders(t: int, extra: int, away: int) -> None:
    cluster = nodes(t + 1 + extra)
    away = min(away, len(cluster))
    version = VersionNodes(Hash256(b"\x01" * 32), tuple(sorted(cluster)))
    confirmed = frozenset(cluster[away:])
    problems = rule_problems(t, [version], frozenset(cluster), confirmed)
    assert (not problems) == (away <= t)


def test_the_rule_counts_nodes_a_version_lists_outside_the_cluster() -> None:
    a, b, c, gone1, gone2 = nodes(5)
    cluster = frozenset({a, b, c})
    old = VersionNodes(Hash256(b"\x02" * 32), tuple(sorted({a, b, gone1, gone2})))
    assert rule_problems(1, [old], cluster, cluster) != []
    assert rule_problems(2, [old], cluster, cluster) == []


@pytest.mark.parametrize("t", [0, 1])
def test_the_rule_counts_cluster_nodes_that_did_not_answer(t: int) -> None:
    a, b, c = nodes(3)
    version = VersionNodes(Hash256(b"\x03" * 32), tuple(sorted({a, b})))
    problems = rule_problems(t, [version], frozenset({a, b, c}), frozenset({a, b}))
    assert (not problems) == (t >= 1)


def test_every_erase_is_in_the_node_s_audit_log_with_the_author() -> None:
    from secretstore.audit.model import Operation

    world = make_world(4, seed=27, schedule=28, holders=range(4), threshold=1, audit=True)
    ids = world.ids
    world.net.disconnect(ids[3])
    assert isinstance(run(world, ids[0], delete_request(world, KEY0)), Finish)
    world.link_up(ids[3])
    world.net.run()
    for node in ids:
        entries = [r.facts for r in world.net.nodes[node].records if r.facts.key_id == KEY0]
        assert [f.operation for f in entries] == [Operation.DELETE], node
        assert entries[0].requester == REQUESTER.address
    late = next(r.facts for r in world.net.nodes[ids[3]].records if r.facts.key_id == KEY0)
    assert late.master in ids[:3]  # the node whose tombstone it heard


def test_a_node_silent_on_the_question_is_named_and_nothing_is_erased() -> None:
    """A holder that never answers the master: the other nodes' clocks run out first (they
    wait for the erase), and the master's failure names the silent node; nothing is erased."""
    world = make_world(3, seed=31, schedule=32, holders=range(3), threshold=1)
    ids = world.ids
    silent = ids[2]

    def tamper(sender: NodeId, to: NodeId, message: object) -> object | None:
        return None if sender == silent and isinstance(message, DeleteKeyHolding) else message

    world.net.tamper = tamper
    sid = world._start(ids[0], delete_request(world, KEY0))
    world.net.run()
    world.net.expire()
    outcome = world.net.nodes[ids[0]].results[SessionId(sid)]
    assert isinstance(outcome, Fail), outcome
    assert short(silent) in str(outcome.error) and "nothing was erased" in str(outcome.error)
    assert holders_of(world, KEY0) == set(ids)
    for node in ids[1:2]:  # the slave that gave up names whom it waited for: the master
        failed = [r for r in world.net.nodes[node].results.values() if isinstance(r, Fail)]
        assert failed and short(ids[0]) in str(failed[0].error)


def test_a_node_that_answers_out_of_turn_after_the_erase_is_unconfirmed() -> None:
    """A holder that sends its holding again instead of confirming the erase: the others
    erased already, so the delete completes with that node unconfirmed (t = 1)."""
    world = make_world(3, seed=33, schedule=34, holders=range(3), threshold=1)
    ids = world.ids
    liar = ids[2]

    def tamper(sender: NodeId, to: NodeId, message: object) -> object | None:
        if sender == liar and isinstance(message, DeleteKeyErased):
            return DeleteKeyHolding(message.session_id, Holding.NOTHING, 0, ())
        return message

    world.net.tamper = tamper
    outcome = run(world, ids[0], delete_request(world, KEY0))
    assert isinstance(outcome, Finish), outcome
    assert isinstance(outcome.result, DeleteResult)
    assert outcome.result.confirmed == tuple(sorted(ids[:2]))
    assert liar in outcome.result.unconfirmed
    assert holders_of(world, KEY0) == set()  # the liar erased it too (its share is gone)
