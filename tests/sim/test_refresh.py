"""Proactive refresh on a simulated network, under hypothesis-chosen delivery orders: every key
keeps its public, holders and document key, gets a new version on a fresh polynomial with fresh
id numbers, and its old version is gone everywhere; old and new shares do not combine. Batches,
listed keys, refusals of bad grants, a node lost mid-refresh (everything stays usable, a rerun
finishes), a dealer that lies, a busy key, a node that misses a report (it keeps its old
version: no node erases on the master's word alone)."""

from __future__ import annotations

import itertools
from dataclasses import replace

from hypothesis import given, settings
from hypothesis import strategies as st

from secretstore.crypto.admin import ALL_KEYS, keys_digest, sign_refresh
from secretstore.crypto.curve import ONE
from secretstore.crypto.keys import KeyPair
from secretstore.crypto.rng import SeededRng
from secretstore.crypto.shamir import reconstruct_secret
from secretstore.errors import AccessDenied, NodeDisconnected, ProtocolViolation
from secretstore.sessions.admin.authority import ConfiguredAdmin
from secretstore.sessions.admin.refresh import RefreshKeys, RefreshOutcome
from secretstore.sessions.base import Fail, Finish, short
from secretstore.storage.model import KeyShare
from secretstore.types import Hash256, NodeId, ServerKeyId
from secretstore.wire.admin import InventoryPage, KeyMoved, KeySubshare
from secretstore.wire.refresh import RefreshGrant, RefreshScope
from tests.sim.admin_world import ADMIN, NOW, AdminWorld, key_id, make_world

seeds = st.integers(0, 2**32)
EVERY_KEY = RefreshScope((), None, 256)


def grant(
    world: AdminWorld,
    scope: RefreshScope,
    admin: KeyPair = ADMIN,
    expires: float = NOW + 600,
    cluster: list[NodeId] | None = None,
) -> RefreshGrant:
    digest = keys_digest(scope.keys) if scope.keys else ALL_KEYS
    nodes = cluster if cluster is not None else world.ids
    signature = sign_refresh(admin.secret, nodes, int(expires), digest)
    return RefreshGrant(int(expires), Hash256(digest), signature)


def refresh(
    world: AdminWorld,
    master: NodeId,
    scope: RefreshScope = EVERY_KEY,
    grant_: RefreshGrant | str | None = "admin",
) -> Finish | Fail:
    chosen = grant(world, scope) if grant_ == "admin" else grant_
    assert not isinstance(chosen, str)
    sid = world._start(master, RefreshKeys(scope, chosen))
    world.net.run()
    outcome = world.net.nodes[master].results.get(sid)
    assert outcome is not None, "the refresh has not ended"
    return outcome


def outcome_of(result: Finish | Fail) -> RefreshOutcome:
    if isinstance(result, Fail):
        raise result.error
    assert isinstance(result.result, RefreshOutcome)
    return result.result


def snapshot(world: AdminWorld) -> dict[ServerKeyId, dict[NodeId, KeyShare]]:
    return {key: world.shares(key) for key in world.keys}


def assert_refreshed(
    world: AdminWorld, before: dict[ServerKeyId, dict[NodeId, KeyShare]], key: ServerKeyId
) -> None:
    """One version on every holder, the same holders, public, author and document key as
    before, a new hash and new id numbers; any t+1 new shares give the key; t old shares with
    one new share do not."""
    old = before[key]
    new = world.shares(key)
    assert set(new) == set(old)
    dealt = world.keys[key]
    world.assert_on(key, frozenset(new))
    for node, share in new.items():
        was = old[node]
        assert len(share.versions) == 1
        assert (share.author, share.threshold, share.public) == (
            was.author,
            was.threshold,
            was.public,
        )
        assert (share.common_point, share.encrypted_point) == (
            was.common_point,
            was.encrypted_point,
        )
        assert share.last_version().hash not in {v.hash for v in was.versions}
        assert share.last_version().id_number(node) != was.last_version().id_number(node)
        assert share.last_version().secret_share != was.last_version().secret_share
    t = dealt.threshold
    nodes = sorted(new)
    for mixed in itertools.islice(itertools.combinations(nodes, t + 1), 10):
        olds, fresh = mixed[:t], mixed[t]
        shares = [old[n].last_version().secret_share for n in olds]
        shares.append(new[fresh].last_version().secret_share)
        numbers = [old[n].last_version().id_number(n) for n in olds]
        numbers.append(new[fresh].last_version().id_number(fresh))
        assert reconstruct_secret(t, shares, numbers) != dealt.secret  # type: ignore[arg-type]


@given(seed=seeds, schedule=seeds, threshold=st.integers(1, 2))
@settings(max_examples=8, deadline=None)
def test_every_key_is_refreshed_and_its_old_version_is_gone(
    seed: int, schedule: int, threshold: int
) -> None:
    world = make_world(
        5, seed=seed % 1000, schedule=schedule, holders=range(5), threshold=threshold, keys=4
    )
    ids = world.ids
    before = snapshot(world)
    result = outcome_of(refresh(world, ids[seed % 5]))
    assert set(result.refreshed) == set(world.keys) and result.skipped == ()
    assert result.next_after is None
    for key in world.keys:
        assert_refreshed(world, before, key)
        world.serve_with(key, ids, ids[(seed + 1) % 5])
    assert world.sessions_left() == 0
    assert len(world.net.nodes[ids[0]].core.claims) == 0


def test_a_master_without_the_keys_refreshes_them() -> None:
    world = make_world(4, seed=3, schedule=4, holders=[1, 2, 3], threshold=1, keys=2)
    ids = world.ids
    before = snapshot(world)
    result = outcome_of(refresh(world, ids[0]))
    assert set(result.refreshed) == set(world.keys)
    for key in world.keys:
        assert_refreshed(world, before, key)
        assert ids[0] not in world.shares(key)
        world.serve_with(key, ids, ids[0])  # delegated to a holder


def test_listed_keys_only() -> None:
    world = make_world(3, seed=5, schedule=6, holders=range(3), threshold=1, keys=3)
    ids = world.ids
    before = snapshot(world)
    scope = RefreshScope((key_id(1),), None, 1)
    result = outcome_of(refresh(world, ids[1], scope))
    assert result.refreshed == (key_id(1),)
    assert_refreshed(world, before, key_id(1))
    for key in (key_id(0), key_id(2)):
        assert world.shares(key) == before[key]
    missing = RefreshScope((ServerKeyId(b"\x99" * 32),), None, 1)
    result = outcome_of(refresh(world, ids[1], missing))
    assert result.refreshed == () and "no node holds it" in result.skipped[0][1]


def test_every_key_in_batches() -> None:
    world = make_world(3, seed=7, schedule=8, holders=range(3), threshold=1, keys=5)
    ids = world.ids
    before = snapshot(world)
    after: ServerKeyId | None = None
    refreshed: list[ServerKeyId] = []
    batches = 0
    while True:
        scope = RefreshScope((), after, 2)
        result = outcome_of(refresh(world, ids[0], scope, grant(world, EVERY_KEY)))
        batches += 1
        assert len(result.refreshed) <= 2
        refreshed += result.refreshed
        if result.next_after is None:
            break
        after = result.next_after
    assert sorted(refreshed) == sorted(world.keys) and batches == 3
    for key in world.keys:
        assert_refreshed(world, before, key)


def test_bad_grants_are_refused_and_change_nothing() -> None:
    world = make_world(3, seed=9, schedule=10, holders=range(3), threshold=1, keys=2)
    ids = world.ids
    before = snapshot(world)
    other = KeyPair.generate(SeededRng(b"not the admin"))
    listed = RefreshScope((key_id(0),), None, 1)
    for bad in (
        None,  # no schedule here: a grant is needed
        grant(world, EVERY_KEY, admin=other),
        grant(world, EVERY_KEY, expires=NOW - 1),
        grant(world, EVERY_KEY, expires=NOW + 2 * 24 * 3600),
        grant(world, EVERY_KEY, cluster=ids[:2]),
        grant(world, listed),  # a grant for one key used for every key
    ):
        outcome = refresh(world, ids[0], EVERY_KEY, bad)
        assert isinstance(outcome, Fail) and isinstance(outcome.error, AccessDenied), bad
    assert snapshot(world) == before
    assert world.sessions_left() == 0


def test_a_slave_checks_the_grant_with_its_own_administrator_key() -> None:
    other = KeyPair.generate(SeededRng(b"another admin"))
    rng = SeededRng(11)  # the node keys make_world draws for seed 11
    last = max(KeyPair.generate(rng).node_id for _ in range(3))

    def authority(node: NodeId) -> ConfiguredAdmin:
        return ConfiguredAdmin(other.public if node == last else ADMIN.public)

    world = make_world(
        3, seed=11, schedule=12, holders=range(3), threshold=1, keys=1, authority=authority
    )
    assert world.ids[2] == last
    before = snapshot(world)
    outcome = refresh(world, world.ids[0])  # the master's own check passes; the last refuses
    assert isinstance(outcome, Fail) and isinstance(outcome.error, AccessDenied)
    assert snapshot(world) == before
    assert world.sessions_left() == 0


def test_a_scheduled_refresh_needs_the_schedule_on_every_node() -> None:
    world = make_world(
        3, seed=13, schedule=14, holders=range(3), threshold=1, keys=2, scheduled=True
    )
    before = snapshot(world)
    result = outcome_of(refresh(world, world.ids[2], EVERY_KEY, None))
    assert set(result.refreshed) == set(world.keys)
    for key in world.keys:
        assert_refreshed(world, before, key)


def test_a_node_lost_mid_refresh_leaves_every_key_usable_and_a_rerun_finishes() -> None:
    world = make_world(
        4, seed=15, schedule=16, holders=range(4), threshold=1, keys=6, keys_in_flight=1
    )
    ids = world.ids
    before = snapshot(world)
    lost = ids[3]
    seen: list[int] = []

    def tamper(sender: NodeId, to: NodeId, message: object) -> object:
        if isinstance(message, KeyMoved) and sender == lost:
            seen.append(1)
            if len(seen) == 3 * 3:  # its reports of three keys went out: it dies
                world.net.down.add(lost)
        return message

    world.net.tamper = tamper
    sid = world._start(ids[0], RefreshKeys(EVERY_KEY, grant(world, EVERY_KEY)))
    world.net.run()
    world.net.tamper = None
    world.net.down.discard(lost)
    world.net.disconnect(lost)
    world.net.run()
    failed = world.net.nodes[ids[0]].results[sid]
    assert isinstance(failed, Fail) and isinstance(failed.error, NodeDisconnected)
    versions = {len(share.versions) for key in world.keys for share in world.shares(key).values()}
    assert versions == {1, 2}  # some keys have their new version beside the old one
    for key in world.keys:
        world.serve_with(key, ids[:3], ids[1])
    world.reconnect(lost)
    for key in world.keys:
        world.serve_with(key, ids, lost)
    result = outcome_of(refresh(world, ids[1]))
    assert set(result.refreshed) == set(world.keys)
    for key in world.keys:
        assert_refreshed(world, before, key)
        world.serve_with(key, ids, ids[2])


def test_a_dealer_that_lies_is_named_and_nothing_is_erased() -> None:
    world = make_world(4, seed=17, schedule=18, holders=range(4), threshold=1, keys=3)
    ids = world.ids
    before = snapshot(world)
    liar = ids[2]

    def tamper(sender: NodeId, to: NodeId, message: object) -> object:
        if sender == liar and isinstance(message, KeySubshare):
            return replace(message, value=message.value + ONE)
        return message

    world.net.tamper = tamper
    outcome = refresh(world, ids[0])
    world.net.tamper = None
    assert isinstance(outcome, Fail) and isinstance(outcome.error, ProtocolViolation)
    assert outcome.error.node == short(liar)
    for key in world.keys:
        for node, share in world.shares(key).items():
            assert share.versions[0] == before[key][node].versions[0]  # nothing erased
        world.serve_with(key, ids, ids[1])
    assert world.sessions_left() == 0


def test_a_key_another_session_writes_is_skipped() -> None:
    world = make_world(3, seed=19, schedule=20, holders=range(3), threshold=1, keys=3)
    ids = world.ids
    before = snapshot(world)
    busy = key_id(1)
    from secretstore.types import SessionId

    assert world.net.nodes[ids[1]].core.claims.claim(busy, SessionId(b"\x07" * 32))
    result = outcome_of(refresh(world, ids[0]))
    assert busy not in result.refreshed and [k for k, _ in result.skipped] == [busy]
    assert "another session is writing the key" in result.skipped[0][1]
    for key in world.keys:
        if key != busy:
            assert_refreshed(world, before, key)
        world.serve_with(key, ids, ids[2])


def test_a_node_that_misses_a_report_keeps_its_old_version() -> None:
    world = make_world(3, seed=21, schedule=22, holders=range(3), threshold=1, keys=1)
    ids = world.ids
    key = key_id(0)

    def tamper(sender: NodeId, to: NodeId, message: object) -> object:
        if isinstance(message, KeyMoved) and sender == ids[1] and to == ids[2]:
            return replace(message, number=message.number + ONE)  # a report that does not fit
        return message

    world.net.tamper = tamper
    sid = world._start(ids[0], RefreshKeys(EVERY_KEY, grant(world, EVERY_KEY)))
    world.net.run()
    assert world.net.nodes[ids[0]].results.get(sid) is None  # node 2 waits for a good report
    world.net.time_out_all()  # it gives up waiting, keeps its old version, answers
    world.net.run()
    result = outcome_of(world.net.nodes[ids[0]].results[sid])
    assert result.refreshed == (key,)
    shares = world.shares(key)
    assert len(shares[ids[0]].versions) == 1 and len(shares[ids[1]].versions) == 1
    assert len(shares[ids[2]].versions) == 2  # it could not check the whole new version
    world.net.tamper = None
    world.serve_with(key, ids, ids[2])


def test_older_versions_and_stale_records_are_erased() -> None:
    world = make_world(4, seed=23, schedule=24, holders=range(3), threshold=1, keys=2)
    ids = world.ids
    sid = world.change(ids[0], ids)  # every key to four nodes: old versions stay
    world.net.run()
    assert isinstance(world.outcome(ids[0], sid), Finish)
    assert {len(s.versions) for k in world.keys for s in world.shares(k).values()} == {1, 2}
    result = outcome_of(refresh(world, ids[3]))
    assert set(result.refreshed) == set(world.keys)
    for key in world.keys:
        shares = world.shares(key)
        assert set(shares) == set(ids)
        assert {len(s.versions) for s in shares.values()} == {1}
        world.assert_on(key, frozenset(ids))


def test_a_key_listing_a_node_outside_the_cluster_is_skipped() -> None:
    world = make_world(4, seed=25, schedule=26, holders=range(4), threshold=1, keys=1)
    ids = world.ids
    gone = ids[3]
    world.net.disconnect(gone)
    for node in ids[:3]:
        world.reconfigure(node, ids[:3])
    result = outcome_of(refresh(world, ids[0], EVERY_KEY, grant(world, EVERY_KEY, cluster=ids[:3])))
    assert result.refreshed == () and "run a node set change" in result.skipped[0][1]


def test_every_refreshed_key_is_in_every_holder_s_audit_log_with_the_admin() -> None:
    from secretstore.audit.model import Operation

    world = make_world(3, seed=29, schedule=30, holders=range(3), threshold=1, keys=2, audit=True)
    ids = world.ids
    result = outcome_of(refresh(world, ids[0]))
    for node in ids:
        entries = [r.facts for r in world.net.nodes[node].records]
        assert sorted(f.key_id for f in entries) == sorted(result.refreshed)
        assert {f.operation for f in entries} == {Operation.REFRESH}
        assert {f.requester for f in entries} == {ADMIN.address}


@given(seed=seeds, schedule=seeds)
@settings(max_examples=15, deadline=None)
def test_batches_in_any_delivery_order_leave_one_version_everywhere(
    seed: int, schedule: int
) -> None:
    """Reports that reach a node after the commit (another link is quicker) are waited for:
    a node erases the old version of every key of the batch, not only of the last one."""
    world = make_world(
        3, seed=seed % 1000, schedule=schedule, holders=range(3), threshold=1, keys=6
    )
    ids = world.ids
    before = snapshot(world)
    after: ServerKeyId | None = None
    while True:
        scope = RefreshScope((), after, 2)
        result = outcome_of(refresh(world, ids[seed % 3], scope, grant(world, EVERY_KEY)))
        if result.next_after is None:
            break
        after = result.next_after
    for key in world.keys:
        assert_refreshed(world, before, key)


def test_a_silent_dealer_is_named_when_the_refresh_times_out() -> None:
    """A dealer that sends no subshares: the other nodes' clocks run out first, each naming
    whom it waited for; the master's failure names the silent dealer; nothing is erased."""
    world = make_world(3, seed=41, schedule=42, holders=range(3), threshold=1, keys=1)
    ids = world.ids
    before = snapshot(world)
    sent: set[NodeId] = set()

    def tamper(sender: NodeId, to: NodeId, message: object) -> object | None:
        if isinstance(message, KeySubshare) and sender != ids[0] and sent <= {sender}:
            sent.add(sender)
            return None  # one dealer other than the master sends nothing
        return message

    world.net.tamper = tamper
    sid = world._start(ids[0], RefreshKeys(EVERY_KEY, grant(world, EVERY_KEY)))
    world.net.run()
    world.net.expire()
    outcome = world.net.nodes[ids[0]].results[sid]
    assert isinstance(outcome, Fail), outcome
    (silent,) = sent
    assert short(silent) in str(outcome.error), outcome.error
    for node in set(ids) - {ids[0], silent}:  # a slave that waited for it names it
        failed = [r for r in world.net.nodes[node].results.values() if isinstance(r, Fail)]
        assert failed and short(silent) in str(failed[0].error), failed
    for key in world.keys:
        for node, share in world.shares(key).items():
            assert share.versions[0] == before[key][node].versions[0]  # nothing erased
    assert world.sessions_left() == 0


def test_a_skip_names_the_nodes_that_lack_the_version() -> None:
    """A node that reports a key without its version: the key is skipped, naming it."""
    world = make_world(3, seed=43, schedule=44, holders=range(3), threshold=1, keys=1)
    ids = world.ids

    def tamper(sender: NodeId, to: NodeId, message: object) -> object | None:
        if isinstance(message, InventoryPage) and sender == ids[2]:
            entries = tuple(replace(e, versions=()) for e in message.entries)
            return replace(message, entries=entries)
        return message

    world.net.tamper = tamper
    result = outcome_of(refresh(world, ids[0]))
    assert result.refreshed == () and len(result.skipped) == 1
    assert f"nodes without it: {short(ids[2])}" in result.skipped[0][1]
