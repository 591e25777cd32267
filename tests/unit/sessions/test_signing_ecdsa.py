"""The ECDSA signing sessions fed by hand: signing, and every way a peer can break it."""

from __future__ import annotations

from dataclasses import replace

import pytest
from coincurve import PublicKey

from secretstore.crypto.curve import ONE, ZERO, N
from secretstore.crypto.keys import recover_public
from secretstore.errors import (
    ConsensusUnreachable,
    InvalidRequest,
    ProtocolViolation,
)
from secretstore.sessions.base import Fail, Finish, Send, short
from secretstore.sessions.signing_common import SigningPhase
from secretstore.sessions.signing_ecdsa import (
    MASTERS,
    SIGNATURE_LENGTH,
    SLAVES,
    EcdsaSigningMaster,
    EcdsaSigningSlave,
    SignEcdsa,
    join_ecdsa_signing,
    start_ecdsa_signing,
)
from secretstore.storage.model import KeyShare
from secretstore.types import MessageHash, NodeId
from secretstore.wire.consensus import AccessRequest
from secretstore.wire.signing import (
    EcdsaInversedNonceShare,
    EcdsaSignatureRequest,
    EcdsaSignatureShare,
    EcdsaSigningRequest,
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
    message_hash: bytes = MESSAGE,
    allow: dict[NodeId, bool] | None = None,
    filter_: Filter | None = None,
) -> Pump:
    pump = Pump(cluster, join_ecdsa_signing, allow=allow or {}, filter=filter_)
    request = SignEcdsa(KEY_ID, cluster.signature, MessageHash(message_hash))
    session, effects = start_ecdsa_signing(
        cluster.ctx(0), SID, request, cluster.key.shares[cluster.ids[0]], frozenset(cluster.ids)
    )
    pump.begin(session, effects)
    return pump


def group_of(pump: Pump, attempt: int = 1) -> tuple[NodeId, ...]:
    requests = [r for r in pump.sent(SigningNonceRequest) if r.attempt == attempt]
    return tuple(requests[0].nodes)


def member_of(cluster: Cluster) -> NodeId:
    """A slave that the master's (seeded) group selection puts into the first group."""
    probe = start(cluster)
    probe.run()
    return next(node for node in group_of(probe) if node != cluster.ids[0])


def violation_of(pump: Pump) -> ProtocolViolation:
    with pytest.raises(ProtocolViolation) as info:
        pump.result()
    return info.value


def with_wrong_share(share: KeyShare) -> KeyShare:
    version = share.last_version()
    return replace(share, versions=(replace(version, secret_share=version.secret_share + ONE),))


def only(kind: type, sender: NodeId, change: object) -> Filter:
    """Replace the `kind` messages `sender` sends by `change(message)`."""

    def alter(s: NodeId, r: NodeId, m: object) -> object | None:
        if s == sender and isinstance(m, kind):
            return change(m)  # type: ignore[operator]
        return m

    return alter


# --- signing ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("t", "n"), [(0, 1), (0, 3), (1, 3), (1, 4), (2, 5)])
def test_signs_a_standard_recoverable_signature(t: int, n: int) -> None:
    cluster = make_cluster(n, t)
    pump = start(cluster)
    pump.run()
    signature = pump.result()
    assert isinstance(signature, bytes)
    assert len(signature) == SIGNATURE_LENGTH
    assert recover_public(signature, MESSAGE) == cluster.key.public
    recovered = PublicKey.from_signature_and_message(signature, MESSAGE, hasher=None)
    assert recovered.format(compressed=False)[1:] == cluster.key.public.to_bytes()
    assert int.from_bytes(signature[32:64], "big") <= N // 2  # low s
    assert all(session.finished for session in pump.sessions.values())
    assert all(isinstance(o, Finish) for o in pump.outcomes.values())
    if t > 0:
        assert len(group_of(pump)) == 2 * t + 1
    else:
        assert pump.sent(SigningNonceRequest) == []  # the master signed alone


def test_registries() -> None:
    assert {SignEcdsa: start_ecdsa_signing} == MASTERS
    assert {EcdsaSigningRequest: join_ecdsa_signing} == SLAVES


def test_master_factory_rejections() -> None:
    cluster = make_cluster(3, 1)
    share = cluster.key.shares[cluster.ids[0]]
    everyone = frozenset(cluster.ids)
    good = SignEcdsa(KEY_ID, cluster.signature, MESSAGE)
    ctx = cluster.ctx(0)
    with pytest.raises(InvalidRequest, match="zero"):
        start_ecdsa_signing(ctx, SID, replace(good, message_hash=bytes(32)), share, everyone)
    with pytest.raises(InvalidRequest, match="message hash"):
        start_ecdsa_signing(ctx, SID, replace(good, message_hash=b"\x01"), share, everyone)
    with pytest.raises(InvalidRequest):
        start_ecdsa_signing(ctx, SID, replace(good, requester_signature=b""), share, everyone)
    small = make_cluster(2, 1)  # 2t+1 = 3 > 2 holders
    with pytest.raises(ConsensusUnreachable, match="needs 3 holders"):
        start_ecdsa_signing(
            small.ctx(0),
            SID,
            SignEcdsa(KEY_ID, small.signature, MESSAGE),
            small.key.shares[small.ids[0]],
            frozenset(small.ids),
        )
    with pytest.raises(ConsensusUnreachable):
        start_ecdsa_signing(ctx, SID, good, share, frozenset(cluster.ids[:2]))


def init_for(cluster: Cluster, message_hash: bytes = MESSAGE) -> EcdsaSigningRequest:
    version = cluster.key.shares[cluster.ids[1]].last_version()
    access = AccessRequest(cluster.signature, version.hash)
    return EcdsaSigningRequest(SID, KEY_ID, access, MessageHash(message_hash))


def test_slave_factory_rejections() -> None:
    cluster = make_cluster(3, 1)
    share = cluster.key.shares[cluster.ids[1]]
    with pytest.raises(ProtocolViolation, match="zero message hash"):
        join_ecdsa_signing(cluster.ctx(1), cluster.ids[0], init_for(cluster, bytes(32)), share)
    small = make_cluster(2, 1)
    with pytest.raises(ConsensusUnreachable):
        join_ecdsa_signing(
            small.ctx(1), small.ids[0], init_for(small), small.key.shares[small.ids[1]]
        )


# --- proofs ----------------------------------------------------------------------------------


def test_tampered_inversed_nonce_share_is_named() -> None:
    cluster = make_cluster(4, 1)
    bad = member_of(cluster)
    change = only(EcdsaInversedNonceShare, bad, lambda m: replace(m, share=m.share + ONE))
    pump = start(cluster, filter_=change)
    pump.run()
    error = violation_of(pump)
    assert error.node == short(bad)
    assert error.what == "sent an inversed nonce share that is not proven"
    assert pump.sent(EcdsaSignatureRequest) == []  # w was never revealed


def test_inversed_nonce_proof_of_another_member_does_not_pass() -> None:
    cluster = make_cluster(3, 1)
    ids = cluster.ids
    probe = start(cluster)
    probe.run()
    proofs = {s: m for s, _, m in probe.seen if isinstance(m, EcdsaInversedNonceShare)}
    pump = start(cluster, filter_=only(EcdsaInversedNonceShare, ids[1], lambda m: proofs[ids[2]]))
    pump.run()
    assert violation_of(pump).node == short(ids[1])


def test_tampered_signature_share_is_named() -> None:
    cluster = make_cluster(5, 2)
    bad = member_of(cluster)
    change = only(EcdsaSignatureShare, bad, lambda m: replace(m, share=m.share + ONE))
    pump = start(cluster, filter_=change)
    pump.run()
    error = violation_of(pump)
    assert error.node == short(bad)
    assert error.what == "sent a signature share that is not proven"


def test_signature_share_before_the_request_is_a_violation() -> None:
    cluster = make_cluster(3, 1)
    ids = cluster.ids
    pump = start(cluster, filter_=lambda s, r, m: None if isinstance(m, SigningNonceMessage) else m)
    pump.run()
    assert pump.master.phase is SigningPhase.WAITING_FOR_NONCES
    any_share = EcdsaSignatureShare(SID, 1, ONE, _any_proof(cluster))
    pump.feed(ids[0], ids[1], any_share)
    error = violation_of(pump)
    assert error.node == short(ids[1])
    assert "unasked" in error.what


def _any_proof(cluster: Cluster):  # type: ignore[no-untyped-def]
    probe = start(cluster)
    probe.run()
    return next(m for _, _, m in probe.seen if isinstance(m, EcdsaInversedNonceShare)).proof


def test_signature_share_before_the_share_public_is_a_violation() -> None:
    cluster = make_cluster(3, 1)
    slave = cluster.ids[2]
    pump = start(cluster, filter_=only(SigningSharePublic, slave, lambda m: None))
    pump.run()
    error = violation_of(pump)
    assert error.node == short(slave)
    assert "before its share public" in error.what


def test_shares_twice_same_is_ignored_different_is_a_violation() -> None:
    cluster = make_cluster(3, 1)
    ids = cluster.ids
    hold_last = only(EcdsaInversedNonceShare, ids[2], lambda m: None)
    pump = start(cluster, filter_=hold_last)
    pump.run()
    assert pump.master.phase is SigningPhase.WAITING_FOR_INVERSED_NONCE_SHARES
    first = next(m for s, _, m in pump.seen if isinstance(m, EcdsaInversedNonceShare))
    assert pump.feed(ids[0], ids[1], first) == []
    pump.feed(ids[0], ids[1], replace(first, share=first.share + ONE))
    assert "two different shares" in str(violation_of(pump))


def test_a_wrong_stored_share_is_located() -> None:
    cluster = make_cluster(4, 1)
    bad = member_of(cluster)
    cluster.key.shares[bad] = with_wrong_share(cluster.key.shares[bad])
    pump = start(cluster)
    pump.run()
    error = violation_of(pump)
    assert error.node == short(bad)
    assert error.what == "holds a key share that does not fit the key"


def test_a_wrong_share_of_a_lone_master_names_itself() -> None:
    cluster = make_cluster(2, 0)
    master = cluster.ids[0]
    cluster.key.shares[master] = with_wrong_share(cluster.key.shares[master])
    pump = start(cluster)
    pump.run()
    error = violation_of(pump)
    assert error.node == short(master)


# --- phases, losses, timeouts ----------------------------------------------------------------


def test_phases_of_master_and_slave() -> None:
    cluster = make_cluster(3, 1)
    ids = cluster.ids
    pump = start(cluster, filter_=lambda s, r, m: None if isinstance(m, EcdsaSignatureShare) else m)
    pump.run()
    assert isinstance(pump.master, EcdsaSigningMaster)
    assert pump.master.phase is SigningPhase.WAITING_FOR_SIGNATURE_SHARES
    slave = pump.sessions[ids[1]]
    assert isinstance(slave, EcdsaSigningSlave)
    assert slave.phase is SigningPhase.WAITING_FOR_END
    pump.take(ids[0], pump.master.on_timeout())
    error = violation_of(pump)
    assert set(error.node.split(", ")) == {short(ids[1]), short(ids[2])}

    pump = start(
        cluster, filter_=lambda s, r, m: None if isinstance(m, EcdsaSignatureRequest) else m
    )
    pump.run()
    assert pump.sessions[ids[1]].phase is SigningPhase.WAITING_FOR_SIGNATURE_REQUEST
    assert pump.master.phase is SigningPhase.WAITING_FOR_SIGNATURE_SHARES
    pump = start(
        cluster, filter_=lambda s, r, m: None if isinstance(m, EcdsaInversedNonceShare) else m
    )
    pump.run()
    assert pump.master.phase is SigningPhase.WAITING_FOR_INVERSED_NONCE_SHARES
    pump.take(ids[0], pump.master.on_timeout())
    assert violation_of(pump).what == "did not answer before the session timed out"


def test_a_timeout_in_the_nonce_generations_names_only_the_silent_member() -> None:
    cluster = make_cluster(4, 1)
    silent = member_of(cluster)

    def hold(s: NodeId, r: NodeId, m: object) -> object | None:
        return None if s == silent and isinstance(m, SigningNonceMessage) else m

    pump = start(cluster, filter_=hold)
    pump.run()
    assert pump.master.phase is SigningPhase.WAITING_FOR_NONCES
    pump.take(cluster.ids[0], pump.master.on_timeout())
    assert violation_of(pump).node == short(silent)  # not the other member, which sent all


def test_member_disconnect_selects_another_group() -> None:
    cluster = make_cluster(4, 1)
    lost = member_of(cluster)
    pump = start(
        cluster, filter_=lambda s, r, m: None if isinstance(m, EcdsaSignatureRequest) else m
    )
    pump.run()
    pump.disconnect(lost)
    assert pump.master.consensus.attempt == 2
    pump.filter = None
    for sender, send in pump.held:  # the first attempt's requests: ignored
        pump.deliver(sender, send)
    pump.run()
    assert recover_public(pump.result(), MESSAGE) == cluster.key.public
    assert lost not in group_of(pump, 2)


# --- the slave's signature request -----------------------------------------------------------


def prepared_slave(cluster: Cluster) -> tuple[Pump, EcdsaSigningSlave, EcdsaSignatureRequest]:
    """A run stopped where the master's signature request is about to reach slave 1."""
    ids = cluster.ids
    pump = start(
        cluster,
        filter_=lambda s, r, m: None if isinstance(m, EcdsaSignatureRequest) and r == ids[1] else m,
    )
    pump.run()
    request = next(send.message for _, send in pump.held)
    slave = pump.sessions[ids[1]]
    assert isinstance(slave, EcdsaSigningSlave)
    assert isinstance(request, EcdsaSignatureRequest)
    return pump, slave, request


def failure(effects: list[object]) -> str:
    return str(next(e for e in effects if isinstance(e, Fail)).error)


def test_slave_signature_request_rejections() -> None:
    cluster = make_cluster(3, 1)
    master = cluster.ids[0]
    _, slave, request = prepared_slave(cluster)
    assert "attempt 2" in failure(slave.on_message(master, replace(request, attempt=2)))

    _, slave, request = prepared_slave(cluster)
    zero = replace(request, inversed_nonce_coeff=ZERO)
    assert "zero inversed nonce" in failure(slave.on_message(master, zero))

    _, slave, request = prepared_slave(cluster)
    effects = slave.on_message(master, request)
    assert isinstance(effects[0], Send)
    assert isinstance(effects[0].message, EcdsaSignatureShare)
    assert slave.on_message(master, request) == []  # the same request again
    other = replace(request, inversed_nonce_coeff=request.inversed_nonce_coeff + ONE)
    assert "two different" in failure(slave.on_message(master, other))


def test_slave_signature_request_too_early_stale_or_given_up() -> None:
    cluster = make_cluster(3, 1)
    ids = cluster.ids
    master = ids[0]
    pump = start(cluster, filter_=lambda s, r, m: None if isinstance(m, SigningNonceMessage) else m)
    pump.run()
    slave = pump.sessions[ids[1]]
    early = EcdsaSignatureRequest(SID, 1, ONE)
    assert "before this node's inversed share" in failure(slave.on_message(master, early))

    _, slave, request = prepared_slave(cluster)
    slave.on_message(master, SigningNonceRequest(SID, 2, tuple(ids)))
    assert slave.on_message(master, request) == []  # attempt 1 is stale now

    _, slave, request = prepared_slave(cluster)
    assert slave.on_node_disconnected(ids[2])  # gives attempt 1 up, reports the loss
    assert slave.on_message(master, request) == []
    assert not slave.finished
