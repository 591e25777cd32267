"""The Schnorr signing sessions fed by hand: signing, and every way a peer can break it."""

from __future__ import annotations

from dataclasses import replace

import pytest

from secretstore.crypto.curve import ONE, Point, Scalar
from secretstore.crypto.schnorr import SchnorrSignature, verify_schnorr_signature
from secretstore.errors import (
    AccessDenied,
    ConsensusUnreachable,
    InvalidRequest,
    ProtocolViolation,
    ServerKeyNotFound,
    SessionTimeout,
)
from secretstore.sessions.base import CheckAccess, Fail, Finish, Send, short
from secretstore.sessions.consensus import max_attempts
from secretstore.sessions.signing_common import SigningPhase
from secretstore.sessions.signing_schnorr import (
    MASTERS,
    SLAVES,
    SchnorrSigningMaster,
    SchnorrSigningSlave,
    SignSchnorr,
    join_schnorr_signing,
    start_schnorr_signing,
)
from secretstore.sessions.signing_slave import MESSAGES_PER_GENERATION
from secretstore.storage.model import KeyShare
from secretstore.types import MessageHash, NodeId
from secretstore.wire.consensus import AccessRequest, ConsensusCompleted, ConsensusResponse
from secretstore.wire.dkg import DkgKeys
from secretstore.wire.signing import (
    EcdsaSignatureRequest,
    NonceKind,
    SchnorrSignatureShare,
    SchnorrSigningRequest,
    SigningFault,
    SigningNodeLost,
    SigningNonceMessage,
    SigningNonceRequest,
    SigningSharePublic,
)
from tests.unit.sessions.signing_fixture import (
    KEY_ID,
    MESSAGE,
    SID,
    Cluster,
    Filter,
    Pump,
    make_cluster,
)


def start(
    cluster: Cluster,
    *,
    allow: dict[NodeId, bool] | None = None,
    connected: list[NodeId] | None = None,
    seed: int = 0,
    filter_: Filter | None = None,
) -> Pump:
    pump = Pump(cluster, join_schnorr_signing, allow=allow or {}, filter=filter_)
    request = SignSchnorr(KEY_ID, cluster.signature, MESSAGE)
    session, effects = start_schnorr_signing(
        cluster.ctx(0, seed),
        SID,
        request,
        cluster.key.shares[cluster.ids[0]],
        frozenset(cluster.ids if connected is None else connected),
    )
    pump.begin(session, effects)
    return pump


def group_of(pump: Pump, attempt: int = 1) -> tuple[NodeId, ...]:
    requests = [r for r in pump.sent(SigningNonceRequest) if r.attempt == attempt]
    if requests:
        return tuple(requests[0].nodes)
    nonces = pump.master.nonces
    assert nonces is not None
    return nonces.nodes


def with_wrong_share(share: KeyShare) -> KeyShare:
    version = share.last_version()
    return replace(share, versions=(replace(version, secret_share=version.secret_share + ONE),))


def violation_of(pump: Pump) -> ProtocolViolation:
    with pytest.raises(ProtocolViolation) as info:
        pump.result()
    return info.value


# --- signing ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("t", "n"), [(0, 1), (0, 2), (1, 2), (1, 3), (2, 4), (2, 5)])
def test_signs_and_every_session_ends(t: int, n: int) -> None:
    cluster = make_cluster(n, t)
    pump = start(cluster)
    pump.run()
    signature = pump.result()
    assert isinstance(signature, SchnorrSignature)
    assert verify_schnorr_signature(cluster.key.public, signature, MESSAGE)
    assert all(session.finished for session in pump.sessions.values())
    assert all(isinstance(o, Finish) for o in pump.outcomes.values())
    assert pump.master.phase is SigningPhase.ENDED
    assert len(group_of(pump)) == t + 1


def test_registries_name_the_request_and_the_initialising_message() -> None:
    assert {SignSchnorr: start_schnorr_signing} == MASTERS
    assert {SchnorrSigningRequest: join_schnorr_signing} == SLAVES


def test_start_checks_own_access_and_asks_every_connected_holder() -> None:
    cluster = make_cluster(4, 1)
    ids = cluster.ids
    request = SignSchnorr(KEY_ID, cluster.signature, MESSAGE)
    session, effects = start_schnorr_signing(
        cluster.ctx(0), SID, request, cluster.key.shares[ids[0]], frozenset(ids[:3])
    )
    assert isinstance(effects[0], CheckAccess)
    version = cluster.key.shares[ids[0]].last_version()
    init = SchnorrSigningRequest(
        SID, KEY_ID, AccessRequest(cluster.signature, version.hash), MESSAGE
    )
    assert effects[1:] == [Send(ids[1], init), Send(ids[2], init)]
    assert isinstance(session, SchnorrSigningMaster)
    assert session.phase is SigningPhase.WAITING_FOR_ACCESS
    assert session.participants == frozenset(ids[:3])


def test_master_factory_rejections() -> None:
    cluster = make_cluster(3, 1)
    share = cluster.key.shares[cluster.ids[0]]
    ctx = cluster.ctx(0)
    everyone = frozenset(cluster.ids)

    def attempt(request: SignSchnorr, held: KeyShare | None = share, on: frozenset = everyone):
        return start_schnorr_signing(ctx, SID, request, held, on)

    good = SignSchnorr(KEY_ID, cluster.signature, MESSAGE)
    with pytest.raises(InvalidRequest, match="requester signature"):
        attempt(replace(good, requester_signature=bytes(65)))
    with pytest.raises(InvalidRequest, match="requester signature"):
        attempt(replace(good, requester_signature=cluster.signature[:64]))
    with pytest.raises(InvalidRequest, match="message hash"):
        attempt(replace(good, message_hash=MessageHash(b"\x01" * 31)))
    with pytest.raises(ServerKeyNotFound):
        attempt(good, held=None)
    with pytest.raises(ServerKeyNotFound, match="version"):
        attempt(replace(good, version=b"\x09" * 32))
    with pytest.raises(ConsensusUnreachable):
        attempt(good, on=frozenset(cluster.ids[:1]))


def test_slave_factory_rejections() -> None:
    cluster = make_cluster(3, 1)
    ids = cluster.ids
    version = cluster.key.shares[ids[1]].last_version()
    init = SchnorrSigningRequest(
        SID, KEY_ID, AccessRequest(cluster.signature, version.hash), MESSAGE
    )
    ctx = cluster.ctx(1)
    with pytest.raises(ServerKeyNotFound):
        join_schnorr_signing(ctx, ids[0], init, None)
    other = make_cluster(3, 1, seed=2)  # a master that holds no share of this version
    with pytest.raises(ProtocolViolation):
        join_schnorr_signing(ctx, other.ids[0], init, cluster.key.shares[ids[1]])
    bad = replace(init, access=AccessRequest(bytes(65), version.hash))
    with pytest.raises(InvalidRequest):
        join_schnorr_signing(ctx, ids[0], bad, cluster.key.shares[ids[1]])


# --- access --------------------------------------------------------------------------------


def test_slave_reports_its_share_public_only_after_allowing() -> None:
    cluster = make_cluster(3, 1)
    ids = cluster.ids
    pump = start(cluster, allow={ids[2]: False})
    pump.run()
    publics = {s: m for s, _, m in pump.seen if isinstance(m, SigningSharePublic)}
    assert set(publics) == {ids[1]}
    expected = Point.base_mul(cluster.key.shares[ids[1]].last_version().secret_share)
    assert publics[ids[1]].share_public == expected
    assert isinstance(pump.outcomes[ids[2]], Finish)  # the refusing slave ended at once
    assert verify_schnorr_signature(cluster.key.public, pump.result(), MESSAGE)


def test_access_denied_by_the_master_or_by_too_many() -> None:
    cluster = make_cluster(3, 1)
    pump = start(cluster, allow={cluster.ids[0]: False})
    pump.run()
    with pytest.raises(AccessDenied):
        pump.result()
    pump = start(cluster, allow={cluster.ids[1]: False, cluster.ids[2]: False})
    pump.run()
    with pytest.raises(AccessDenied):
        pump.result()


def test_share_public_twice() -> None:
    cluster = make_cluster(3, 1)
    pump = start(cluster, filter_=hold_nonces)
    ids = cluster.ids
    pump.run()
    public = pump.master.share_publics[ids[1]]
    assert pump.feed(ids[0], ids[1], SigningSharePublic(SID, public)) == []
    pump.feed(ids[0], ids[1], SigningSharePublic(SID, public + public))
    assert "two different share publics" in str(violation_of(pump))


# --- nonce generation ----------------------------------------------------------------------


def hold_nonces(sender: NodeId, to: NodeId, message: object) -> object | None:
    return None if isinstance(message, SigningNonceMessage) else message


def test_nonce_message_of_a_wrong_attempt_or_a_stranger_is_a_violation() -> None:
    cluster = make_cluster(4, 1)
    ids = cluster.ids
    for attempt in (0, 2):
        pump = start(cluster, filter_=hold_nonces)
        pump.run()
        sender = next(node for node in group_of(pump) if node != ids[0])
        kind = NonceKind.SIGNATURE_NONCE
        pump.feed(ids[0], sender, SigningNonceMessage(SID, attempt, kind, ConsensusCompleted(SID)))
        assert f"attempt {attempt}" in str(violation_of(pump))
    pump = start(cluster, filter_=hold_nonces)
    pump.run()
    stranger = next(node for node in ids if node not in group_of(pump))
    message = SigningNonceMessage(SID, 1, NonceKind.SIGNATURE_NONCE, ConsensusCompleted(SID))
    pump.feed(ids[0], stranger, message)
    error = violation_of(pump)
    assert error.node == short(stranger)
    assert "not in the group" in error.what


def test_a_kind_this_signing_does_not_run_is_a_violation() -> None:
    cluster = make_cluster(3, 1)
    pump = start(cluster, filter_=hold_nonces)
    pump.run()
    member = group_of(pump)[1] if group_of(pump)[0] == cluster.ids[0] else group_of(pump)[0]
    message = SigningNonceMessage(SID, 1, NonceKind.INVERSION_ZERO, ConsensusCompleted(SID))
    pump.feed(cluster.ids[0], member, message)
    error = violation_of(pump)
    assert error.node == short(member)
    assert "INVERSION_ZERO" in error.what


def tamper_keys(bad: NodeId, victim: NodeId | None = None) -> Filter:
    """Alter the DKG keys `bad` deals (to `victim`, or to everyone)."""

    def alter(sender: NodeId, to: NodeId, message: object) -> object | None:
        if (
            sender == bad
            and victim in (None, to)
            and isinstance(message, SigningNonceMessage)
            and isinstance(message.message, DkgKeys)
        ):
            keys = message.message
            return replace(message, message=replace(keys, secret1=keys.secret1 + ONE))
        return message

    return alter


def test_bad_dealing_to_the_master_names_the_dealer() -> None:
    cluster = make_cluster(3, 1)
    probe = start(cluster)
    probe.run()
    bad = next(node for node in group_of(probe) if node != cluster.ids[0])
    pump = start(cluster, filter_=tamper_keys(bad, cluster.ids[0]))
    pump.run()
    error = violation_of(pump)
    assert error.node == short(bad)
    assert "commitments" in error.what
    assert all(s.finished for s in pump.sessions.values() if s.ctx.self_id != bad)


def test_bad_dealing_to_a_slave_is_reported_and_names_the_dealer() -> None:
    cluster = make_cluster(4, 2)
    probe = start(cluster)
    probe.run()
    group = group_of(probe)
    slaves = [node for node in group if node != cluster.ids[0]]
    bad, victim = slaves
    pump = start(cluster, filter_=tamper_keys(bad, victim))
    pump.run()
    faults = pump.sent(SigningFault, victim)
    assert faults == [SigningFault(SID, 1, bad, faults[0].what)]
    error = violation_of(pump)
    assert error.node == short(bad)
    assert f"seen by {short(victim)}" in error.what
    # the victim gave the attempt up: later messages of it change nothing
    victim_session = pump.sessions[victim]
    assert victim_session.finished  # ended by the master's failure, quietly
    assert isinstance(pump.outcomes.get(victim), Finish)


def test_fault_and_loss_reports_of_a_stale_attempt_are_ignored() -> None:
    cluster = make_cluster(4, 1)
    pump = start(cluster, filter_=hold_nonces)
    pump.run()
    first = group_of(pump)
    member = next(node for node in first if node != cluster.ids[0])
    pump.disconnect(member)
    second = group_of(pump, 2)
    assert member not in second
    other = next(node for node in second if node != cluster.ids[0])
    assert pump.feed(cluster.ids[0], other, SigningFault(SID, 1, member, "late")) == []
    assert pump.feed(cluster.ids[0], other, SigningNodeLost(SID, 1, member)) == []
    assert not pump.master.finished


def test_node_lost_report_breaks_the_link_and_loses_no_node() -> None:
    cluster = make_cluster(4, 2)
    master = cluster.ids[0]
    pump = start(cluster, filter_=hold_nonces)
    pump.run()
    group = group_of(pump)
    reporter, named = (node for node in group if node != master)
    pump.feed(master, reporter, SigningNodeLost(SID, 1, named))
    consensus = pump.master.consensus
    assert consensus.attempt == 2
    assert consensus.broken_links == {frozenset((reporter, named))}
    assert consensus.allowed == set(cluster.ids)  # neither end is lost
    second = group_of(pump, 2)
    assert not {reporter, named} <= set(second)
    pump.filter = None
    for sender, send in pump.held:  # the first attempt's messages: ignored
        pump.deliver(sender, send)
    pump.run()
    assert verify_schnorr_signature(cluster.key.public, pump.result(), MESSAGE)


def test_node_lost_report_naming_the_master_is_the_reporters_own_loss() -> None:
    cluster = make_cluster(4, 2)
    master = cluster.ids[0]
    pump = start(cluster, filter_=hold_nonces)
    pump.run()
    reporter = next(node for node in group_of(pump) if node != master)
    pump.feed(master, reporter, SigningNodeLost(SID, 1, master))
    consensus = pump.master.consensus
    assert consensus.attempt == 2
    assert reporter not in consensus.allowed
    assert reporter not in group_of(pump, 2)
    assert consensus.broken_links == set()


def test_node_lost_report_without_a_group_left_names_the_broken_link() -> None:
    cluster = make_cluster(3, 2)  # every holder is needed
    master = cluster.ids[0]
    pump = start(cluster, filter_=hold_nonces)
    pump.run()
    reporter, named = (node for node in group_of(pump) if node != master)
    pump.feed(master, reporter, SigningNodeLost(SID, 1, named))
    with pytest.raises(ConsensusUnreachable) as info:
        pump.result()
    link = "–".join(sorted((short(reporter), short(named))))
    assert f"avoids the broken links {link}" in str(info.value)
    assert f"node {short(reporter)} lost its link to {short(named)}" in str(info.value)


def test_node_lost_report_about_itself_is_a_violation() -> None:
    cluster = make_cluster(4, 1)
    pump = start(cluster, filter_=hold_nonces)
    pump.run()
    member = next(node for node in group_of(pump) if node != cluster.ids[0])
    pump.feed(cluster.ids[0], member, SigningNodeLost(SID, 1, member))
    error = violation_of(pump)
    assert error.node == short(member)
    assert "itself" in error.what


def test_node_lost_report_about_a_stranger_is_a_violation() -> None:
    cluster = make_cluster(4, 1)
    pump = start(cluster, filter_=hold_nonces)
    pump.run()
    member = next(node for node in group_of(pump) if node != cluster.ids[0])
    stranger = next(node for node in cluster.ids if node not in group_of(pump))
    pump.feed(cluster.ids[0], member, SigningNodeLost(SID, 1, stranger))
    error = violation_of(pump)
    assert error.node == short(member)


# --- signature shares ----------------------------------------------------------------------


def tamper_share(bad: NodeId) -> Filter:
    def alter(sender: NodeId, to: NodeId, message: object) -> object | None:
        if sender == bad and isinstance(message, SchnorrSignatureShare):
            return replace(message, share=message.share + ONE)
        return message

    return alter


@pytest.mark.parametrize(("t", "n"), [(1, 2), (2, 3), (2, 5)])
def test_tampered_signature_share_is_named(t: int, n: int) -> None:
    cluster = make_cluster(n, t)
    probe = start(cluster)
    probe.run()
    bad = next(node for node in group_of(probe) if node != cluster.ids[0])
    pump = start(cluster, filter_=tamper_share(bad))
    pump.run()
    error = violation_of(pump)
    assert error.node == short(bad)
    assert "does not match its publics" in error.what


def test_signature_share_before_the_share_public_is_a_violation() -> None:
    cluster = make_cluster(2, 1)
    slave = cluster.ids[1]
    pump = start(
        cluster,
        filter_=lambda s, r, m: None if isinstance(m, SigningSharePublic) else m,
    )
    pump.run()
    error = violation_of(pump)
    assert error.node == short(slave)
    assert "before its share public" in error.what


def test_share_twice_same_is_ignored_different_is_a_violation() -> None:
    cluster = make_cluster(3, 2)
    ids = cluster.ids
    # hold the share of the last slave so that the master keeps waiting
    pump = start(
        cluster,
        filter_=lambda s, r, m: None if isinstance(m, SchnorrSignatureShare) and s == ids[2] else m,
    )
    pump.run()
    first = next(m for s, _, m in pump.seen if isinstance(m, SchnorrSignatureShare))
    assert pump.master.phase is SigningPhase.WAITING_FOR_SIGNATURE_SHARES
    assert pump.feed(ids[0], ids[1], first) == []
    pump.feed(ids[0], ids[1], replace(first, share=first.share + ONE))
    assert "two different signature shares" in str(violation_of(pump))


def test_a_wrong_stored_share_is_located_from_the_reported_share_publics() -> None:
    cluster = make_cluster(4, 1)
    probe = start(cluster)
    probe.run()
    bad = next(node for node in group_of(probe) if node != cluster.ids[0])
    cluster.key.shares[bad] = with_wrong_share(cluster.key.shares[bad])
    pump = start(cluster)
    pump.run()
    error = violation_of(pump)
    assert error.node == short(bad)
    assert error.what == "holds a key share that does not fit the key"


def test_a_wrong_stored_share_without_spare_reports_names_the_group() -> None:
    cluster = make_cluster(2, 1)
    bad = cluster.ids[1]
    cluster.key.shares[bad] = with_wrong_share(cluster.key.shares[bad])
    pump = start(cluster)
    pump.run()
    error = violation_of(pump)
    assert error.node == short(bad)
    assert error.what.startswith("one of these nodes")


# --- losses and timeouts ---------------------------------------------------------------------


def test_member_disconnect_selects_another_group_with_a_fresh_nonce() -> None:
    cluster = make_cluster(4, 1)
    pump = start(cluster, filter_=hold_nonces)
    pump.run()
    lost = next(node for node in group_of(pump) if node != cluster.ids[0])
    pump.disconnect(lost)
    assert pump.master.consensus.attempt == 2
    assert lost not in group_of(pump, 2)
    pump.filter = None
    for sender, send in pump.held:
        pump.deliver(sender, send)  # the first attempt's messages: ignored everywhere
    pump.run()
    assert verify_schnorr_signature(cluster.key.public, pump.result(), MESSAGE)
    shares = pump.sent(SchnorrSignatureShare)
    assert shares
    assert {share.attempt for share in shares} == {2}


def test_member_disconnect_without_a_spare_is_unreachable() -> None:
    cluster = make_cluster(2, 1)
    pump = start(cluster, filter_=hold_nonces)
    pump.run()
    pump.disconnect(cluster.ids[1])
    with pytest.raises(ConsensusUnreachable):
        pump.result()


def test_member_error_counts_as_a_loss() -> None:
    cluster = make_cluster(3, 1)
    pump = start(cluster, filter_=hold_nonces)
    pump.run()
    lost = next(node for node in group_of(pump) if node != cluster.ids[0])
    pump.take(cluster.ids[0], pump.master.on_peer_error(lost, "disk full"))
    assert pump.master.consensus.attempt == 2
    assert lost not in group_of(pump, 2)


def test_unknown_message_is_a_violation() -> None:
    cluster = make_cluster(3, 1)
    pump = start(cluster, filter_=hold_nonces)
    pump.run()
    pump.feed(cluster.ids[0], cluster.ids[1], EcdsaSignatureRequest(SID, 1, ONE))
    error = violation_of(pump)
    assert error.node == short(cluster.ids[1])
    assert "EcdsaSignatureRequest" in error.what


def test_timeouts_name_who_kept_the_master_waiting() -> None:
    cluster = make_cluster(3, 1)
    ids = cluster.ids
    pump = start(cluster, filter_=lambda s, r, m: None if isinstance(m, ConsensusResponse) else m)
    pump.run()
    pump.take(ids[0], pump.master.on_timeout())
    with pytest.raises(ConsensusUnreachable, match="no consensus in time"):
        pump.result()

    pump = start(cluster, filter_=hold_nonces)
    pump.run()
    member = next(node for node in group_of(pump) if node != ids[0])
    pump.take(ids[0], pump.master.on_timeout())
    error = violation_of(pump)
    assert error.node == short(member)
    assert "nonce generation" in error.what

    def hold_member_share(s: NodeId, r: NodeId, m: object) -> object | None:
        return None if isinstance(m, SchnorrSignatureShare) else m

    pump = start(cluster, filter_=hold_member_share)
    pump.run()
    member = next(node for node in group_of(pump) if node != ids[0])
    assert pump.master.phase is SigningPhase.WAITING_FOR_SIGNATURE_SHARES
    pump.take(ids[0], pump.master.on_timeout())
    error = violation_of(pump)
    assert error.node == short(member)
    assert pump.master.on_timeout() == []


def test_messages_after_the_end_are_ignored() -> None:
    cluster = make_cluster(3, 1)
    pump = start(cluster)
    pump.run()
    master = pump.master
    assert master.on_message(cluster.ids[1], ConsensusResponse(SID, True)) == []
    assert master.on_access_checked(True) == []
    assert master.on_node_disconnected(cluster.ids[1]) == []
    assert master.on_peer_error(cluster.ids[1], "late") == []


# --- the slave -------------------------------------------------------------------------------


def slave_of(cluster: Cluster, index: int = 1) -> tuple[SchnorrSigningSlave, list[object]]:
    version = cluster.key.shares[cluster.ids[index]].last_version()
    init = SchnorrSigningRequest(
        SID, KEY_ID, AccessRequest(cluster.signature, version.hash), MESSAGE
    )
    session, effects = join_schnorr_signing(
        cluster.ctx(index), cluster.ids[0], init, cluster.key.shares[cluster.ids[index]]
    )
    assert isinstance(session, SchnorrSigningSlave)
    return session, effects


def test_slave_answers_and_reports_its_share_public() -> None:
    cluster = make_cluster(3, 1)
    slave, effects = slave_of(cluster)
    assert len(effects) == 1
    assert isinstance(effects[0], CheckAccess)
    assert slave.phase is SigningPhase.WAITING_FOR_ACCESS_CHECK
    effects = slave.on_access_checked(True)
    public = Point.base_mul(cluster.key.shares[cluster.ids[1]].last_version().secret_share)
    assert effects == [
        Send(cluster.ids[0], ConsensusResponse(SID, True)),
        Send(cluster.ids[0], SigningSharePublic(SID, public)),
    ]
    assert slave.on_access_checked(True) == []  # answered once
    assert slave.phase is SigningPhase.WAITING_FOR_NONCE_REQUEST
    assert slave.participants == frozenset(cluster.ids)

    refusing, _ = slave_of(cluster)
    effects = refusing.on_access_checked(False)
    assert effects[0] == Send(cluster.ids[0], ConsensusResponse(SID, False))
    assert refusing.finished


BAD_GROUPS = {
    "group of 1 nodes": lambda ids: (ids[0],),
    "ascending": lambda ids: (ids[1], ids[0]),
    "without this node": lambda ids: (ids[0], ids[2]),
    "without this node or itself": lambda ids: (ids[1], ids[2]),
}


@pytest.mark.parametrize("problem", sorted(BAD_GROUPS))
def test_slave_rejects_bad_groups(problem: str) -> None:
    cluster = make_cluster(3, 1)
    ids = cluster.ids
    slave, _ = slave_of(cluster)
    slave.on_access_checked(True)
    nodes = BAD_GROUPS[problem](ids)
    effects = slave.on_message(ids[0], SigningNonceRequest(SID, 1, nodes))
    assert slave.finished
    fail = next(e for e in effects if isinstance(e, Fail))
    assert isinstance(fail.error, ProtocolViolation)
    assert fail.error.node == short(ids[0])
    assert problem in fail.error.what


def test_slave_rejects_a_group_with_a_node_outside_the_version() -> None:
    cluster = make_cluster(4, 2)
    ids = cluster.ids
    outsider = make_cluster(1, 0, seed=7).ids[0]
    slave, _ = slave_of(cluster)
    slave.on_access_checked(True)
    nodes = tuple(sorted((ids[0], ids[1], outsider)))
    effects = slave.on_message(ids[0], SigningNonceRequest(SID, 1, nodes))
    fail = next(e for e in effects if isinstance(e, Fail))
    assert "outside the key version" in str(fail.error)


def test_slave_rejects_a_nonce_request_before_allowing_and_older_attempts() -> None:
    cluster = make_cluster(3, 1)
    ids = cluster.ids
    request = SigningNonceRequest(SID, 1, (ids[0], ids[1]))
    slave, _ = slave_of(cluster)
    effects = slave.on_message(ids[0], request)
    assert "did not allow access" in str(next(e for e in effects if isinstance(e, Fail)).error)

    slave, _ = slave_of(cluster)
    slave.on_access_checked(True)
    later = SigningNonceRequest(SID, 2, (ids[0], ids[1]))
    assert slave.on_message(ids[0], later)  # deals
    assert slave.attempt == 2
    assert slave.phase is SigningPhase.WAITING_FOR_NONCES
    assert slave.on_message(ids[0], later) == []  # the same request again
    effects = slave.on_message(ids[0], request)
    assert "attempt 1 after 2" in str(next(e for e in effects if isinstance(e, Fail)).error)


def test_slave_keeps_nonce_messages_that_come_before_its_request() -> None:
    cluster = make_cluster(3, 2)
    ids = cluster.ids
    held_request = {"on": True}

    def hold_request_to_2(s: NodeId, r: NodeId, m: object) -> object | None:
        if held_request["on"] and r == ids[2] and isinstance(m, SigningNonceRequest):
            return None
        return m

    pump = start(cluster, filter_=hold_request_to_2)
    pump.run()
    slave = pump.sessions[ids[2]]
    assert slave.attempt == 0
    assert slave._early[1]  # the peers' dealings are kept
    held_request["on"] = False
    for sender, send in pump.held:
        pump.deliver(sender, send)
    pump.run()
    assert verify_schnorr_signature(cluster.key.public, pump.result(), MESSAGE)


def test_slave_reports_a_flood_of_early_nonce_messages() -> None:
    cluster = make_cluster(3, 2)
    ids = cluster.ids
    slave, _ = slave_of(cluster)
    slave.on_access_checked(True)
    slave.on_message(ids[0], SigningNonceRequest(SID, 1, tuple(ids)))
    message = SigningNonceMessage(SID, 2, NonceKind.SIGNATURE_NONCE, ConsensusCompleted(SID))
    for _ in range(MESSAGES_PER_GENERATION):  # one generation: its keys, proof, agreement
        assert slave.on_message(ids[2], message) == []
    effects = slave.on_message(ids[2], message)
    assert effects == [Send(ids[0], SigningFault(SID, 1, ids[2], effects[0].message.what))]
    beyond = replace(message, attempt=max_attempts(len(ids)) + 1)
    assert isinstance(slave.on_message(ids[2], beyond)[0].message, SigningFault)


def test_slave_ignores_nonce_messages_of_abandoned_attempts() -> None:
    cluster = make_cluster(3, 1)
    ids = cluster.ids
    slave, _ = slave_of(cluster)
    slave.on_access_checked(True)
    slave.on_message(ids[0], SigningNonceRequest(SID, 2, (ids[0], ids[1])))
    stale = SigningNonceMessage(SID, 1, NonceKind.SIGNATURE_NONCE, ConsensusCompleted(SID))
    assert slave.on_message(ids[0], stale) == []
    assert not slave.finished


def test_slave_reports_a_bad_nonce_message_and_gives_the_attempt_up() -> None:
    cluster = make_cluster(3, 2)
    ids = cluster.ids
    slave, _ = slave_of(cluster)
    slave.on_access_checked(True)
    slave.on_message(ids[0], SigningNonceRequest(SID, 1, tuple(ids)))
    bogus = SigningNonceMessage(SID, 1, NonceKind.SIGNATURE_NONCE, ConsensusCompleted(SID))
    effects = slave.on_message(ids[2], bogus)
    assert effects == [
        Send(ids[0], SigningFault(SID, 1, ids[2], "sent ConsensusCompleted to a DKG"))
    ]
    assert slave.phase is SigningPhase.WAITING_FOR_NONCE_REQUEST
    assert slave.on_message(ids[2], bogus) == []  # the attempt is given up


def test_slave_reports_other_messages_from_peers_and_fails_on_the_masters() -> None:
    cluster = make_cluster(3, 1)
    ids = cluster.ids
    slave, _ = slave_of(cluster)
    slave.on_access_checked(True)
    assert slave.on_message(ids[2], ConsensusCompleted(SID)) == []  # no attempt to end yet
    slave.on_message(ids[0], SigningNonceRequest(SID, 1, (ids[0], ids[1])))
    effects = slave.on_message(ids[2], ConsensusCompleted(SID))
    assert effects == [
        Send(ids[0], SigningFault(SID, 1, ids[2], "sent ConsensusCompleted to a member"))
    ]
    share = SchnorrSignatureShare(SID, 1, ONE)
    effects = slave.on_message(ids[0], share)
    assert slave.finished
    assert "SchnorrSignatureShare" in str(next(e for e in effects if isinstance(e, Fail)).error)


def test_slave_ends_on_completion_the_init_again_is_ignored() -> None:
    cluster = make_cluster(3, 1)
    slave, _ = slave_of(cluster)
    slave.on_access_checked(True)
    assert slave.on_message(cluster.ids[0], slave._init) == []
    assert slave.on_message(cluster.ids[0], ConsensusCompleted(SID)) == [Finish(SID, None)]
    assert slave.phase is SigningPhase.ENDED
    assert slave.on_message(cluster.ids[0], ConsensusCompleted(SID)) == []


def test_slave_disconnects_and_errors() -> None:
    cluster = make_cluster(4, 1)
    ids = cluster.ids
    slave, _ = slave_of(cluster)
    slave.on_access_checked(True)
    slave.on_message(ids[0], SigningNonceRequest(SID, 1, (ids[0], ids[1])))
    assert slave.on_node_disconnected(ids[3]) == []  # not in the group
    assert slave.on_peer_error(ids[3], "whatever") == []
    slave2, _ = slave_of(cluster)
    slave2.on_access_checked(True)
    slave2.on_message(ids[0], SigningNonceRequest(SID, 1, tuple(sorted((ids[0], ids[1])))))
    effects = slave2.on_node_disconnected(ids[0])
    assert slave2.finished
    assert isinstance(effects[0], Fail)
    assert slave.on_peer_error(ids[0], "gave up") == [Finish(SID, None)]
    assert slave.on_peer_error(ids[0], "again") == []


def test_slave_reports_losing_a_group_peer() -> None:
    cluster = make_cluster(3, 2)
    ids = cluster.ids
    slave, _ = slave_of(cluster)
    slave.on_access_checked(True)
    slave.on_message(ids[0], SigningNonceRequest(SID, 1, tuple(ids)))
    assert slave.on_node_disconnected(ids[2]) == [Send(ids[0], SigningNodeLost(SID, 1, ids[2]))]
    assert slave.phase is SigningPhase.WAITING_FOR_NONCE_REQUEST
    assert slave.on_node_disconnected(ids[2]) == []


def test_slave_grouped_with_a_peer_it_lost_earlier_reports_the_link_instead_of_starting() -> None:
    cluster = make_cluster(4, 2)
    ids = cluster.ids
    slave, _ = slave_of(cluster)
    slave.on_access_checked(True)
    assert slave.on_node_disconnected(ids[3]) == []  # no attempt yet: nothing to report
    assert slave.on_message(ids[0], SigningNonceRequest(SID, 1, (ids[0], ids[1], ids[3]))) == [
        Send(ids[0], SigningNodeLost(SID, 1, ids[3]))
    ]
    assert slave.phase is SigningPhase.WAITING_FOR_NONCE_REQUEST
    effects = slave.on_message(ids[0], SigningNonceRequest(SID, 2, (ids[0], ids[1], ids[2])))
    assert effects and all(isinstance(e.message, SigningNonceMessage) for e in effects)
    assert slave.phase is SigningPhase.WAITING_FOR_NONCES


def test_slave_timeout_fails_it_naming_whom_it_waited_for() -> None:
    cluster = make_cluster(3, 1)
    ids = cluster.ids
    slave, _ = slave_of(cluster)
    effects = slave.on_timeout()  # its own access policy did not answer
    assert isinstance(effects[0], Fail)
    assert isinstance(effects[0].error, SessionTimeout)
    assert effects[0].error.node == short(ids[1])
    slave, _ = slave_of(cluster)
    slave.on_access_checked(True)
    (fail,) = slave.on_timeout()  # the master's nonce request
    assert isinstance(fail, Fail) and isinstance(fail.error, SessionTimeout)
    assert fail.error.node == short(ids[0])
    slave, _ = slave_of(cluster)
    slave.on_access_checked(True)
    slave.on_message(ids[0], SigningNonceRequest(SID, 1, (ids[0], ids[1])))
    (fail,) = slave.on_timeout()  # the master's nonce generation messages
    assert isinstance(fail, Fail) and isinstance(fail.error, SessionTimeout)
    assert fail.error.node == short(ids[0])


def test_share_check_uses_the_group_weights() -> None:
    # a share that is right for another group (other Lagrange weight) is caught
    cluster = make_cluster(3, 1)
    probe = start(cluster)
    probe.run()
    group = group_of(probe)
    member = next(node for node in group if node != cluster.ids[0])
    share = next(m for s, _, m in probe.seen if isinstance(m, SchnorrSignatureShare))
    scaled = Scalar(2) * share.share

    def alter(s: NodeId, r: NodeId, m: object) -> object | None:
        if s == member and isinstance(m, SchnorrSignatureShare):
            return replace(m, share=scaled)
        return m

    pump = start(cluster, filter_=alter)
    pump.run()
    assert violation_of(pump).node == short(member)
