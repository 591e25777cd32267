"""The node set change on a simulated network, under hypothesis-chosen delivery orders: add,
remove, replace, an isolated node, a dealer sending a bad subshare, a node lost mid-change, a
migration-style change, refusals. After each: every key keeps its public, any t+1 of its new
holders reconstruct it, and the new holders decrypt and sign through the real sessions."""

from __future__ import annotations

from dataclasses import dataclass, replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from secretstore.crypto.curve import ONE, Point, Scalar
from secretstore.crypto.keys import KeyPair, sign_recoverable
from secretstore.crypto.rng import SeededRng
from secretstore.errors import (
    AccessDenied,
    ConsensusUnreachable,
    ExclusiveSessionActive,
    InvalidRequest,
    NodeDisconnected,
    ProtocolViolation,
    SessionTimeout,
)
from secretstore.sessions.base import Fail, Finish, short
from secretstore.sessions.decryption import RetrieveDocumentKey
from secretstore.types import Hash256, NodeId
from secretstore.wire.admin import (
    KeyDeal,
    KeyMoved,
    KeySubshare,
    NodeSetChangeCompleted,
    NodeSetChangeFinished,
)
from tests.sim.admin_world import (
    REQUESTER,
    AdminWorld,
    key_id,
    make_world,
)

seeds = st.integers(0, 2**32)
KEY0 = key_id(0)


def finished(world: AdminWorld, master: NodeId, sid: bytes) -> None:
    outcome = world.outcome(master, sid)  # type: ignore[arg-type]
    if isinstance(outcome, Fail):
        raise outcome.error
    assert isinstance(outcome, Finish) and outcome.result is None
    assert world.sessions_left() == 0


def failure(world: AdminWorld, master: NodeId, sid: bytes) -> Exception:
    outcome = world.outcome(master, sid)  # type: ignore[arg-type]
    assert isinstance(outcome, Fail), outcome
    return outcome.error


def version_counts(world: AdminWorld) -> dict[tuple[NodeId, bytes], int]:
    return {
        (node, key): len(share.versions)
        for key in world.keys
        for node, share in world.shares(key).items()
    }


# --- adding, removing, replacing ---------------------------------------------------------------


@given(seed=seeds, schedule=seeds, data=st.data())
def test_adding_two_nodes_gives_them_shares_that_decrypt_and_sign(
    seed: int, schedule: int, data: st.DataObject
) -> None:
    world = make_world(5, seed=seed, schedule=schedule, holders=[0, 1, 2], threshold=1)
    ids = world.ids
    master = data.draw(st.sampled_from(ids))
    sid = world.change(master, ids)
    world.net.run()
    finished(world, master, sid)
    everyone = frozenset(ids)
    for key in world.keys:
        world.assert_on(key, everyone)
    # the two new nodes alone (t+1 = 2) serve every request
    world.serve_with(key_id(0), ids[3:], data.draw(st.sampled_from(ids[3:])))
    pair = data.draw(st.lists(st.sampled_from(ids), min_size=2, max_size=2, unique=True))
    world.serve_with(key_id(1), pair, pair[0])
    # the same change again moves nothing
    before = version_counts(world)
    again = world.change(master, ids)
    world.net.run()
    finished(world, master, again)
    assert version_counts(world) == before


@given(seed=seeds, schedule=seeds, data=st.data())
def test_removing_a_node_erases_its_keys_only_at_the_end(
    seed: int, schedule: int, data: st.DataObject
) -> None:
    world = make_world(4, seed=seed, schedule=schedule, holders=[0, 1, 2, 3], threshold=1)
    ids = world.ids
    leaving = data.draw(st.sampled_from(ids))
    master = data.draw(st.sampled_from(ids))  # the master may be the node that leaves
    staying = [node for node in ids if node != leaving]
    sid = world.change(master, staying)
    world.net.run()
    finished(world, master, sid)
    assert list(world.net.nodes[leaving].storage.ids()) == []
    for key in world.keys:
        world.assert_on(key, frozenset(staying))
    world.serve_with(key_id(2), staying[:2], staying[1])


@given(seed=seeds, schedule=seeds)
def test_replacing_a_node_moves_its_part_to_the_new_one(seed: int, schedule: int) -> None:
    world = make_world(4, seed=seed, schedule=schedule, holders=[0, 1, 2], threshold=1)
    ids = world.ids
    new_set = [ids[0], ids[1], ids[3]]
    sid = world.change(ids[1], new_set)
    world.net.run()
    finished(world, ids[1], sid)
    assert list(world.net.nodes[ids[2]].storage.ids()) == []
    for key in world.keys:
        world.assert_on(key, frozenset(new_set))
    world.serve_with(key_id(0), [ids[0], ids[3]], ids[3])


@given(seed=seeds, schedule=seeds)
def test_an_isolated_node_is_dropped_from_the_new_version(seed: int, schedule: int) -> None:
    # the keys list all four nodes; the fourth is configured nowhere (isolated) and offline
    others = [0, 1, 2]
    world = make_world(
        4,
        seed=seed,
        schedule=schedule,
        holders=[0, 1, 2, 3],
        threshold=1,
        configured={0: others, 1: others, 2: others},
    )
    ids = world.ids
    isolated = ids[3]
    assert isolated in world.net.down
    before = {key: world.net.nodes[isolated].storage.get(key) for key in world.keys}
    sid = world.change(ids[0], ids[:3])
    world.net.run()
    finished(world, ids[0], sid)
    for key in world.keys:
        world.assert_on(key, frozenset(ids[:3]))
        assert world.net.nodes[isolated].storage.get(key) == before[key]  # left alone
    world.serve_with(key_id(1), ids[1:3], ids[2])


@given(seed=seeds, schedule=seeds, threshold=st.integers(0, 2))
def test_thresholds_stay_and_every_key_moves(seed: int, schedule: int, threshold: int) -> None:
    world = make_world(
        5,
        seed=seed,
        schedule=schedule,
        holders=[0, 1, 2, 3],
        threshold=threshold,
        keys=5,
        keys_in_flight=3,
    )
    ids = world.ids
    new_set = [ids[1], ids[2], ids[3], ids[4]]
    sid = world.change(ids[4], new_set)
    world.net.run()
    finished(world, ids[4], sid)
    for key in world.keys:
        world.assert_on(key, frozenset(new_set))
        assert all(s.threshold == threshold for s in world.shares(key).values())


# --- faults -----------------------------------------------------------------------------------


@given(seed=seeds, schedule=seeds, data=st.data())
def test_a_bad_subshare_names_its_dealer_and_changes_nothing_usable(
    seed: int, schedule: int, data: st.DataObject
) -> None:
    world = make_world(5, seed=seed, schedule=schedule, holders=[0, 1, 2], threshold=1, keys=2)
    ids = world.ids
    victim_key = data.draw(st.sampled_from(sorted(world.keys)))
    lying: list[NodeId] = []  # the first dealer of the victim key seen lies to one target

    def tamper(sender: NodeId, to: NodeId, message: object) -> object:
        if isinstance(message, KeySubshare) and message.key_id == victim_key:
            if not lying:
                lying.append(sender)
            if sender == lying[0]:
                return replace(message, value=message.value + ONE)
        return message

    world.net.tamper = tamper
    master = data.draw(st.sampled_from(ids))
    sid = world.change(master, ids)
    world.net.run()
    world.net.tamper = None
    error = failure(world, master, sid)
    # the dealer that lied and the key are named
    assert isinstance(error, ProtocolViolation)
    assert error.node == short(lying[0])
    assert victim_key.hex() in str(error)
    assert world.sessions_left() == 0
    for node in ids[:3]:
        assert set(world.net.nodes[node].storage.ids()) == set(world.keys)
    for key in world.keys:
        world.serve_with(key, ids, ids[4])  # a new node serves (another version, delegated)
    # the same change again, without the liar's lie, finishes it
    again = world.change(master, ids)
    world.net.run()
    finished(world, master, again)
    for key in world.keys:
        world.assert_on(key, frozenset(ids))


@given(seed=seeds, schedule=seeds, data=st.data())
@settings(max_examples=25)
def test_a_master_that_says_the_change_is_complete_early_has_no_key_erased_before_it_moved(
    seed: int, schedule: int, data: st.DataObject
) -> None:
    # the key on nodes 1..3, the new set 0, 3, 4 (1 and 2 leave); the master (node 0) tells
    # every node the change is complete instead of having some or all keys dealt: the
    # leaving nodes erase only the keys every new-set node confirmed to them: every key stays
    # on t+1 holders of one version, the new set's when a leaving node erased it
    world = make_world(5, seed=seed, schedule=seed, holders=[1, 2, 3], threshold=1, keys=2)
    ids = world.ids
    master, new_set = ids[0], [ids[0], ids[3], ids[4]]
    dealt_keys = data.draw(st.integers(0, 1))  # how many keys the master lets move first

    def tamper(sender: NodeId, to: NodeId, message: object) -> object:
        if sender == master and isinstance(message, KeyDeal):
            if message.key_id in sorted(world.keys)[:dealt_keys]:
                return message
            return NodeSetChangeCompleted(message.session_id)
        return message

    world.net.tamper = tamper
    world.change(master, new_set)
    world.net.run()
    world.net.expire()
    world.net.tamper = None
    leaving = (ids[1], ids[2])
    for key in world.keys:
        erased = [node for node in leaving if world.net.nodes[node].storage.get(key) is None]
        assert not erased or dealt_keys, "a key no node was asked to deal was erased"
        up = new_set if erased else ids[1:4]  # an erased key is on the new set
        world.serve_with(key, up, up[-1])


@given(seed=seeds, schedule=seeds, data=st.data())
@settings(max_examples=25)
def test_a_node_lost_mid_change_fails_it_cleanly_and_a_rerun_completes(
    seed: int, schedule: int, data: st.DataObject
) -> None:
    world = make_world(5, seed=seed, schedule=schedule, holders=[0, 1, 2], threshold=1, keys=6)
    ids = world.ids
    master = ids[0]
    lost = data.draw(st.sampled_from(ids[1:]))
    sid = world.change(master, ids)
    steps = data.draw(st.integers(1, 100))
    world.net.run(max_steps=steps)
    if world.net.nodes[master].results.get(sid) is not None:
        return  # the change ended before the node was lost: nothing to test here
    world.net.disconnect(lost)
    world.net.run()
    outcome = world.outcome(master, sid)
    if isinstance(outcome, Finish):
        # lost after every key had moved (the master was waiting for the nodes to finish)
        for key in world.keys:
            world.assert_on(key, frozenset(ids))
        return
    error = failure(world, master, sid)
    assert isinstance(error, NodeDisconnected)
    assert short(lost) in str(error)
    assert world.sessions_left() == 0
    # nothing was erased, and every key is still served by the nodes that are up
    up = [node for node in ids if node != lost]
    for node in ids[:3]:
        assert set(world.net.nodes[node].storage.ids()) == set(world.keys)
    for key in world.keys:
        world.serve_with(key, up, data.draw(st.sampled_from(up)))
    # the node comes back; the same change finishes the job
    world.reconnect(lost)
    again = world.change(master, ids)
    world.net.run()
    finished(world, master, again)
    for key in world.keys:
        world.assert_on(key, frozenset(ids))


# --- refusals: nothing changes ---------------------------------------------------------------


def test_refusals_change_nothing() -> None:
    world = make_world(4, seed=3, schedule=4, holders=[0, 1, 2], threshold=2)
    ids = world.ids
    before = version_counts(world)

    def refused(sid: bytes, master: NodeId = ids[0]) -> Exception:
        world.net.run()
        error = failure(world, master, sid)
        assert world.sessions_left() == 0
        assert version_counts(world) == before
        return error

    # an empty new set
    assert isinstance(refused(world.change(ids[0], [])), InvalidRequest)
    # keys with t = 2 cannot be kept by two nodes
    error = refused(world.change(ids[0], ids[:2]))
    assert isinstance(error, InvalidRequest) and "needs 3 nodes in the new set" in str(error)
    # signed by someone else
    intruder = KeyPair.generate(SeededRng(b"intruder"))
    error = refused(world.change(ids[0], ids, admin=intruder))
    assert isinstance(error, ConsensusUnreachable)
    # the old set signature must cover every connected node
    error = refused(world.change(ids[0], ids, old_set=ids[:3]))
    assert isinstance(error, ConsensusUnreachable)
    # a node of the new set that is not connected
    world.net.disconnect(ids[3])
    world.configured[ids[0]] = frozenset(ids[:3])
    error = refused(world.change(ids[0], ids))
    assert isinstance(error, InvalidRequest) and "not connected" in str(error)


def test_a_key_with_too_few_holders_blocks_the_change_before_anything_moves() -> None:
    world = make_world(4, seed=5, schedule=6, holders=[0, 1, 2], threshold=1, keys=3)
    ids = world.ids
    # one key lost a share on two of its three holders: it cannot be dealt any more
    broken = key_id(1)
    world.net.nodes[ids[0]].storage.remove(broken)
    world.net.nodes[ids[1]].storage.remove(broken)
    before = version_counts(world)
    sid = world.change(ids[3], ids)
    world.net.run()
    error = failure(world, ids[3], sid)
    assert isinstance(error, InvalidRequest)
    assert broken.hex() in str(error) and "nothing was changed" in str(error)
    assert f"there are 1 ({short(ids[2])})" in str(error)  # the holders left are named
    assert version_counts(world) == before
    assert world.sessions_left() == 0


def test_a_node_without_an_administrator_refuses() -> None:
    from secretstore.sessions.admin.authority import ConfiguredAdmin
    from tests.sim.admin_world import ADMIN

    holder = {}

    def authority(node: NodeId) -> ConfiguredAdmin:
        return ConfiguredAdmin(None if node == holder.get("none") else ADMIN.public)

    probe = make_world(3, seed=9, schedule=1, holders=[0, 1, 2], threshold=1)
    holder["none"] = probe.ids[2]
    world = make_world(3, seed=9, schedule=1, holders=[0, 1, 2], threshold=1, authority=authority)
    ids = world.ids
    sid = world.change(ids[0], ids)
    world.net.run()
    assert isinstance(failure(world, ids[0], sid), AccessDenied)
    # and a master without one refuses at once
    sid = world.change(ids[2], ids)
    world.net.run()
    assert isinstance(failure(world, ids[2], sid), AccessDenied)


# --- exclusivity -------------------------------------------------------------------------------


def test_client_requests_during_a_change_are_refused_and_lose_nothing() -> None:
    world = make_world(4, seed=11, schedule=12, holders=[0, 1, 2], threshold=1, keys=4)
    ids = world.ids
    sid = world.change(ids[0], ids)
    world.net.run(max_steps=8)  # every node has the change by now
    signature = sign_recoverable(REQUESTER.secret, key_id(0))
    request = RetrieveDocumentKey(key_id(0), signature, False)
    refused = world._start(ids[1], request)
    world.net.run()
    finished(world, ids[0], sid)
    assert isinstance(failure(world, ids[1], refused), ExclusiveSessionActive)
    for key in world.keys:
        world.assert_on(key, frozenset(ids))
    asked = world._start(ids[1], request)
    world.net.run()
    assert world.net.nodes[ids[1]].results[asked].result == world.keys[key_id(0)].document_key  # type: ignore[union-attr]


def test_a_change_waits_for_a_running_session_to_end() -> None:
    world = make_world(3, seed=13, schedule=14, holders=[0, 1, 2], threshold=1, keys=1)
    ids = world.ids
    signature = sign_recoverable(REQUESTER.secret, key_id(0))
    asked = world._start(ids[1], RetrieveDocumentKey(key_id(0), signature, True))
    sid = world.change(ids[0], ids)  # the retrieval runs on every node: the change waits
    world.net.run()
    assert isinstance(world.net.nodes[ids[1]].results[asked], Finish)
    finished(world, ids[0], sid)


def test_a_change_that_cannot_drain_says_so() -> None:
    world = make_world(3, seed=15, schedule=16, holders=[0, 1, 2], threshold=1, keys=1)
    ids = world.ids
    signature = sign_recoverable(REQUESTER.secret, key_id(0))
    world._start(ids[1], RetrieveDocumentKey(key_id(0), signature, True))  # never delivered
    sid = world.change(ids[1], ids)
    node = world.net.nodes[ids[1]]
    assert node.deadlines[sid] == 5.0  # the drain deadline
    world.net._apply(node, node.core.on_timeout(sid))
    error = failure(world, ids[1], sid)
    assert error.__class__.__name__ == "HasActiveSessions"


# --- a contract-driven migration -----------------------------------------------------------------


@dataclass(frozen=True)
class MigrationAuthority:
    """What a node set contract would answer: the migration `id` with `master` and `nodes`."""

    id: bytes
    master: NodeId
    nodes: frozenset[NodeId]

    def admin_key(
        self, master: NodeId, migration_id: Hash256 | None, new_set: frozenset[NodeId]
    ) -> Point | None:
        if migration_id != self.id or master != self.master or new_set != self.nodes:
            return None
        return Point.from_bytes(master)


@given(seed=seeds, schedule=seeds)
@settings(max_examples=10)
def test_a_migration_signed_by_its_master_moves_the_keys(seed: int, schedule: int) -> None:
    probe = make_world(4, seed=seed, schedule=schedule, holders=[0, 1, 2], threshold=1)
    ids = probe.ids
    migration = Hash256(b"\x77" * 32)
    authority = MigrationAuthority(migration, ids[3], frozenset(ids))
    world = make_world(
        4,
        seed=seed,
        schedule=schedule,
        holders=[0, 1, 2],
        threshold=1,
        authority=lambda node: authority,
    )
    master_key = KeyPair.from_secret(world.net.nodes[ids[3]].key.secret)
    # the migration master signs the migration set as the old and as the new set
    sid = world.change(
        ids[3], ids, admin=master_key, migration_id=migration, admin_public=master_key.public
    )
    world.net.run()
    finished(world, ids[3], sid)
    for key in world.keys:
        world.assert_on(key, frozenset(ids))
    # another migration id is refused by every node
    other = world.change(
        ids[3],
        ids,
        admin=master_key,
        migration_id=Hash256(b"\x78" * 32),
        admin_public=master_key.public,
    )
    world.net.run()
    assert isinstance(failure(world, ids[3], other), AccessDenied)


@pytest.mark.parametrize("count", [1, 2])
def test_a_cluster_of_one_or_two_moves_keys_too(count: int) -> None:
    world = make_world(count + 1, seed=17, schedule=18, holders=list(range(count)), threshold=0)
    ids = world.ids
    sid = world.change(ids[0], ids)
    world.net.run()
    finished(world, ids[0], sid)
    for key in world.keys:
        world.assert_on(key, frozenset(ids))


def test_a_target_reporting_a_share_off_the_key_is_named() -> None:
    world = make_world(4, seed=19, schedule=20, holders=[0, 1, 2], threshold=1, keys=2)
    ids = world.ids
    liar = ids[3]

    def tamper(sender: NodeId, to: NodeId, message: object) -> object:
        if sender == liar and isinstance(message, KeyMoved):
            return replace(message, share_public=message.share_public + world.keys[KEY0].public)
        return message

    world.net.tamper = tamper
    sid = world.change(ids[0], ids)
    world.net.run()
    error = failure(world, ids[0], sid)
    assert isinstance(error, ProtocolViolation) and "does not fit the key" in str(error)
    assert error.node == short(liar)  # four new holders of a t = 1 key: the misfit is found
    assert world.sessions_left() == 0


# --- silence is named --------------------------------------------------------------------------


def _silent_run(kind: type, towards_master: bool) -> tuple[AdminWorld, NodeId, NodeId, object]:
    """A change adding a node in which the first node to send a `kind` message sends none of
    them (to the master only, or to everyone but the master); every clock then runs out, the
    slaves' first. Returns the world, the master, the silent node and the master's error."""
    world = make_world(4, seed=8, schedule=9, holders=[0, 1, 2], threshold=1, keys=1)
    ids = world.ids
    master = ids[3]
    silent: list[NodeId] = []

    def tamper(sender: NodeId, to: NodeId, message: object) -> object | None:
        if isinstance(message, kind) and sender != master:
            if not silent:
                silent.append(sender)
            if sender == silent[0] and (to == master) == towards_master:
                return None
        return message

    world.net.tamper = tamper
    sid = world.change(master, ids)
    world.net.run()
    world.net.expire()
    return world, master, silent[0], failure(world, master, sid)


def test_a_dealer_silent_towards_a_target_is_named_by_the_target_and_the_master() -> None:
    world, master, dealer, error = _silent_run(KeySubshare, towards_master=False)
    assert isinstance(error, SessionTimeout) and f"node {short(dealer)}" in str(error)
    targets = [node for node in world.ids if node not in (master, dealer)]
    named = []
    for node in targets:
        for outcome in world.net.nodes[node].results.values():
            if isinstance(outcome, Fail):
                named.append(isinstance(outcome.error, SessionTimeout) and outcome.error.node)
    assert short(dealer) in named  # a target that waited for its subshare names its dealer
    assert world.sessions_left() == 0


def test_a_dealer_silent_towards_the_master_is_named_by_the_master() -> None:
    # the master is a target too: it waits for the dealer's subshare, its slaves for it
    _, _, dealer, error = _silent_run(KeySubshare, towards_master=True)
    assert isinstance(error, SessionTimeout) and f"node {short(dealer)}" in str(error)


def test_a_node_that_never_reports_its_end_is_named() -> None:
    _, _, quiet, error = _silent_run(NodeSetChangeFinished, towards_master=True)
    assert isinstance(error, SessionTimeout) and error.node == short(quiet)


@pytest.mark.parametrize("seed", range(6))
def test_the_master_waits_for_every_report_before_it_names_whom_the_change_waited_for(
    seed: int,
) -> None:
    # the key moves off one of its holders, and the master (which holds nothing) leaves: a
    # dealer sends none of its subshares. The targets wait for the dealer, a node that deals
    # nothing for the master; whichever report comes first, the master's error names the
    # silent dealer
    world = make_world(5, seed=seed, schedule=seed, holders=[1, 2, 3], threshold=1, keys=1)
    ids = world.ids
    master = ids[0]
    silent: list[NodeId] = []

    def tamper(sender: NodeId, to: NodeId, message: object) -> object | None:
        if isinstance(message, KeySubshare) and sender != master:
            if not silent:
                silent.append(sender)
            if sender == silent[0]:
                return None
        return message

    world.net.tamper = tamper
    sid = world.change(master, ids[2:])
    world.net.run()
    world.net.expire()
    error = failure(world, master, sid)
    assert isinstance(error, SessionTimeout) and f"node {short(silent[0])}" in str(error)


def test_a_dealer_telling_targets_different_commitments_is_caught() -> None:
    """For t ≥ 2 a dealer can give one target the commitments of another polynomial through
    its share and that target's value: every Feldman check passes there, the share publics
    still fit, but that target would store other commitments than the rest (so its later
    decryption proofs would blame honest nodes). The digests in KeyMoved differ: refused."""
    world = make_world(5, seed=23, schedule=24, holders=[0, 1, 2, 3], threshold=2, keys=1)
    ids = world.ids
    victim = ids[4]
    cheated: list[NodeId] = []

    def tamper(sender: NodeId, to: NodeId, message: object) -> object:
        if not isinstance(message, KeySubshare) or to != victim or cheated:
            return message
        if sender != message.dealer_numbers[0].node:
            return message
        x = next(pair.number for pair in message.new_numbers if pair.node == victim)
        c0 = message.commitments[0]
        c2 = Point.base_mul(Scalar(987654321))
        c1 = (Point.base_mul(message.value) - c0 - c2 * (x * x)) * x.inverse()
        cheated.append(sender)
        return replace(message, commitments=(c0, c1, c2))

    world.net.tamper = tamper
    sid = world.change(ids[0], ids)
    world.net.run()
    assert cheated
    error = failure(world, ids[0], sid)
    assert isinstance(error, ProtocolViolation)
    assert "stored different commitments" in str(error)
    assert world.sessions_left() == 0
    world.net.tamper = None
    for key in world.keys:
        world.serve_with(key, ids[:4], ids[0])
