"""ECDSA presigning on the simulated network: presignatures made ahead, a signing that uses
one in a single round trip, and every way back to fresh nonces (an empty pool, a member
without its part, a refusal, a lost or silent member), with each part used once at most."""

from __future__ import annotations

from dataclasses import replace

import pytest

from secretstore.crypto.curve import ZERO, G, Point, Scalar
from secretstore.crypto.keys import KeyPair, recover_public, sign_recoverable
from secretstore.crypto.rng import SeededRng
from secretstore.errors import AccessDenied, ProtocolViolation
from secretstore.sessions import signing_ecdsa, signing_presign
from secretstore.sessions.base import short
from secretstore.sessions.presign import Presignature, PresignedNonces, PresignPool, StoredNonce
from secretstore.sessions.signing_ecdsa import EcdsaSigningMaster, SignEcdsa
from secretstore.sessions.signing_presign import Presign
from secretstore.types import MessageHash, NodeId, ServerKeyId, SessionId
from secretstore.wire import codec
from secretstore.wire.dkg import DkgKeys
from secretstore.wire.signing import (
    EcdsaSignatureShare,
    EcdsaSigningRequest,
    NonceKind,
    SigningNonceMessage,
    SigningNonceRequest,
    SigningSharePublic,
)
from tests.sim import key_sessions
from tests.sim.dealer import DealtKey, deal_key
from tests.sim.harness import Pending, RandomScheduler, SimNetwork
from tests.sim.key_extraction import MasterView, attack_ecdsa
from tests.sim.test_signing import ecdsa_recovers
from tests.sim.test_signing_key_extraction import ObservedNetwork, master_view, unmasked

KEY_ID = ServerKeyId(b"\x4e" * 32)
MASTERS = {**signing_ecdsa.MASTERS, **signing_presign.MASTERS}
SLAVES = {**signing_ecdsa.SLAVES, **signing_presign.SLAVES}
REQUESTER = KeyPair.generate(SeededRng(91))
SIGNATURE = sign_recoverable(REQUESTER.secret, KEY_ID)


def network(
    n: int = 4, t: int = 1, seed: int = 3, depth: int = 4, **options: object
) -> tuple[SimNetwork, DealtKey]:
    net = SimNetwork(n, MASTERS, SLAVES, seed=seed, presignatures=depth, **options)  # type: ignore[arg-type]
    key = deal_key(SeededRng(seed + 1), net.order, t, with_document_key=False)
    for node in net.nodes.values():
        node.storage.insert(KEY_ID, key.shares[node.node_id])
    return net, key


def pool(net: SimNetwork, index: int) -> PresignPool:
    found = net.node(index).core.ctx.presigns
    assert found is not None
    return found


def presign(net: SimNetwork, master: int = 0) -> Presignature:
    sid = net.start(master, Presign(KEY_ID))
    net.run()
    made = net.value(master, sid)
    assert isinstance(made, Presignature)
    return made


def sign(net: SimNetwork, master: int, message: bytes) -> object:
    sid = net.start(master, SignEcdsa(KEY_ID, SIGNATURE, MessageHash(message)))
    net.run()
    return net.value(master, sid)


def sent_of(net: SimNetwork, kind: type, since: int = 0) -> list[tuple[NodeId, NodeId, object]]:
    return [entry for entry in net.sent[since:] if isinstance(entry[2], kind)]


@pytest.mark.parametrize(("n", "t"), [(3, 1), (4, 1), (5, 2), (7, 3)])
def test_a_presigned_signing_takes_one_round_trip_and_verifies(n: int, t: int) -> None:
    net, key = network(n, t)
    made = presign(net)
    assert pool(net, 0).count(KEY_ID) == 1
    for member in made.nodes[1:] if made.nodes[0] == net.order[0] else made.nodes:
        if member != net.order[0]:
            assert pool(net, net.order.index(member)).held_from(net.order[0]) == 1
    before = len(net.sent)
    message = b"\x21" * 32
    signature = sign(net, 0, message)
    assert isinstance(signature, bytes) and recover_public(signature, message) == key.public
    # no nonce generation ran: the members answered the request with their shares
    assert not sent_of(net, SigningNonceMessage, before)
    assert not sent_of(net, SigningNonceRequest, before)
    requests = sent_of(net, EcdsaSigningRequest, before)
    assert {to for _, to, _ in requests} == set(made.nodes) - {net.order[0]}
    assert all(m.presigned is not None for _, _, m in requests)  # type: ignore[attr-defined]
    assert len(sent_of(net, EcdsaSignatureShare, before)) == 2 * t
    # used once: gone from the master's pool and from every member's
    assert pool(net, 0).count(KEY_ID) == 0
    assert all(pool(net, i).held_from(net.order[0]) == 0 for i in range(n))


def test_an_empty_pool_signs_with_fresh_nonces() -> None:
    net, key = network()
    message = b"\x22" * 32
    signature = sign(net, 1, message)
    assert isinstance(signature, bytes) and recover_public(signature, message) == key.public
    assert sent_of(net, SigningNonceMessage)


def test_a_member_without_its_part_makes_the_master_run_fresh_nonces() -> None:
    """A member restarted (its pool lost): it answers "allowed" without a share, and the
    signing goes on with fresh nonces; the master's presignature is not used again."""
    net, key = network()
    made = presign(net)
    member = next(node for node in made.nodes if node != net.order[0])
    index = net.order.index(member)
    assert pool(net, index).claim(made.presign_id, net.order[0]) is not None  # lost
    before = len(net.sent)
    message = b"\x23" * 32
    signature = sign(net, 0, message)
    assert isinstance(signature, bytes) and recover_public(signature, message) == key.public
    assert sent_of(net, SigningNonceMessage, before)  # fresh nonces
    assert pool(net, 0).count(KEY_ID) == 0


def test_a_member_refusing_makes_the_master_ask_the_others() -> None:
    """n = 4, t = 1: the presigned group is 3 of 4. A member's own policy refuses: the master
    asks the fourth holder, and the signing goes on with fresh nonces among those that allow."""
    made: Presignature | None = None
    for seed in range(40):
        net, key = network(seed=seed)
        made = presign(net)
        refuser = next(node for node in made.nodes if node != net.order[0])
        net.access = lambda node, requester, key_id, refuser=refuser: node != refuser
        message = b"\x24" * 32
        signature = sign(net, 0, message)
        assert isinstance(signature, bytes) and recover_public(signature, message) == key.public
        spare = next(node for node in net.order if node not in made.nodes)
        assert any(to == spare for _, to, _ in sent_of(net, EcdsaSigningRequest))
        return
    raise AssertionError("unreachable")


def test_refusals_that_leave_too_few_deny_access() -> None:
    net, _ = network(n=3)
    presign(net)
    net.access = lambda node, requester, key_id: node == net.order[0]
    sid = net.start(0, SignEcdsa(KEY_ID, SIGNATURE, MessageHash(b"\x25" * 32)))
    net.run()
    with pytest.raises(AccessDenied):
        net.value(0, sid)
    assert pool(net, 0).count(KEY_ID) == 0  # taken out: it is never used again


def test_a_member_lost_before_answering_leads_to_fresh_nonces() -> None:
    net, key = network(n=4)
    made = presign(net)
    message = MessageHash(b"\x26" * 32)
    sid = net.start(0, SignEcdsa(KEY_ID, SIGNATURE, message))
    lost = next(node for node in made.nodes if node != net.order[0])
    net.disconnect(lost)
    net.run()
    signature = net.value(0, sid)
    assert isinstance(signature, bytes) and recover_public(signature, message) == key.public


def test_a_silent_member_makes_the_master_ask_the_others_after_a_while() -> None:
    net, key = network(n=4)
    made = presign(net)
    silent = next(node for node in made.nodes if node != net.order[0])
    message = MessageHash(b"\x27" * 32)
    sid = net.start(0, SignEcdsa(KEY_ID, SIGNATURE, message))
    net.pending = [p for p in net.pending if p.to != silent]  # it never answers
    net.run()
    assert net.result(0, sid) is None
    net.wake_all()
    while True:
        net.pending = [p for p in net.pending if p.to != silent]
        if not (net.pending or net.access_checks):
            break
        net.run(max_steps=1)
    signature = net.value(0, sid)
    assert isinstance(signature, bytes) and recover_public(signature, message) == key.public


def test_a_part_is_used_once_whatever_the_master_asks() -> None:
    """A rogue master naming a presignature a second time (another message), or a master
    naming another master's presignature, gets no signature share: the member answers as
    without a presignature."""
    net, _ = network(n=3)
    made = presign(net)
    message = b"\x28" * 32
    sign(net, 0, message)
    member = next(node for node in made.nodes if node != net.order[0])
    index = net.order.index(member)
    requests = [m for _, to, m in sent_of(net, EcdsaSigningRequest) if to == member]
    first = requests[-1]
    assert isinstance(first, EcdsaSigningRequest) and first.presigned is not None
    again = EcdsaSigningRequest(
        SessionId(b"\x77" * 32), KEY_ID, first.access, MessageHash(b"\x29" * 32), first.presigned
    )
    net.access_checks.clear()
    before = len(net.sent)
    net._apply(net.node(index), net.node(index).core.on_message(net.order[0], again))
    net.run()
    answers = [m for sender, _, m in net.sent[before:] if sender == member]
    assert answers and not any(isinstance(m, EcdsaSignatureShare) for m in answers)
    # a part is bound to its master
    other = presign(net, master=1)
    holder = next(node for node in other.nodes if node != net.order[1])
    held = pool(net, net.order.index(holder))
    assert held.claim(other.presign_id, net.order[0]) is None
    assert held.claim(other.presign_id, net.order[1]) is not None


def test_a_lying_member_is_named() -> None:
    """A member that sends a wrong signature share with a presignature is named, as without."""
    net, _ = network(n=3)
    made = presign(net)
    liar = next(node for node in made.nodes if node != net.order[0])
    real = net._deliver

    def tamper(item: Pending) -> None:
        message = codec.decode(item.data)
        if item.sender == liar and isinstance(message, EcdsaSignatureShare):
            bad = replace(message, share=message.share + Scalar(1))
            item = Pending(item.sender, item.to, codec.encode(bad))
        real(item)

    net._deliver = tamper  # type: ignore[method-assign]
    sid = net.start(0, SignEcdsa(KEY_ID, SIGNATURE, MessageHash(b"\x2a" * 32)))
    net.run()
    with pytest.raises(ProtocolViolation) as caught:
        net.value(0, sid)
    assert caught.value.node == short(liar)


def test_a_changed_key_version_never_uses_older_presignatures() -> None:
    """A presignature made for another version of the key (the node set changed since) is
    dropped unused: the signing runs fresh nonces, and the members never see it named."""
    net, key = network(n=3)
    made = presign(net)
    master_pool = pool(net, 0)
    assert master_pool.take(KEY_ID, made.version, lambda nodes: True) is made
    master_pool.put(replace(made, version=b"\x00" * 32))  # as if made for an older version
    before = len(net.sent)
    message = b"\x2c" * 32
    signature = sign(net, 0, message)
    assert isinstance(signature, bytes) and recover_public(signature, message) == key.public
    assert sent_of(net, SigningNonceMessage, before)
    assert all(m.presigned is None for _, _, m in sent_of(net, EcdsaSigningRequest, before))  # type: ignore[attr-defined]
    assert master_pool.count(KEY_ID) == 0


def test_presigning_failures_keep_nothing() -> None:
    """A member that deals a bad nonce generation fails the presigning, named; nobody keeps
    a part, and a signing afterwards runs with fresh nonces."""
    net, key = network(n=3)
    bad = net.order[1]
    real = net._deliver

    def tamper(item: Pending) -> None:
        message = codec.decode(item.data)
        if (
            item.sender == bad
            and isinstance(message, SigningNonceMessage)
            and isinstance(message.message, DkgKeys)
        ):
            keys = message.message
            forged = replace(keys, secret1=keys.secret1 + Scalar(1))
            item = Pending(item.sender, item.to, codec.encode(replace(message, message=forged)))
        real(item)

    net._deliver = tamper  # type: ignore[method-assign]
    sid = net.start(0, Presign(KEY_ID))
    net.run()
    with pytest.raises(ProtocolViolation) as caught:
        net.value(0, sid)
    assert caught.value.node == short(bad)
    assert all(pool(net, i).sizes()["own"] + pool(net, i).sizes()["held"] == 0 for i in range(3))
    net._deliver = real  # type: ignore[method-assign]
    message = b"\x2b" * 32
    signature = sign(net, 0, message)
    assert isinstance(signature, bytes) and recover_public(signature, message) == key.public


def test_a_member_reporting_a_share_public_that_does_not_fit_is_named() -> None:
    net, _ = network(n=3)
    liar = net.order[2]
    real = net._deliver

    def tamper(item: Pending) -> None:
        message = codec.decode(item.data)
        if item.sender == liar and isinstance(message, SigningSharePublic):
            bad = replace(message, share_public=message.share_public + G)
            item = Pending(item.sender, item.to, codec.encode(bad))
        real(item)

    net._deliver = tamper  # type: ignore[method-assign]
    sid = net.start(0, Presign(KEY_ID))
    net.run()
    with pytest.raises(ProtocolViolation) as caught:
        net.value(0, sid)
    assert caught.value.node == short(liar) and "does not fit" in str(caught.value)
    assert all(not node.core._sessions for node in net.nodes.values())


@pytest.mark.parametrize("seed", range(4))
def test_presignatures_of_every_master_and_order(seed: int) -> None:
    """Several masters presign and sign at once, deliveries in a random order: every
    signature recovers to the key, every part is used once."""
    net, key = network(n=5, t=2, seed=seed, scheduler=RandomScheduler(seed))
    for master in range(5):
        net.start(master, Presign(KEY_ID))
    net.run()
    assert all(pool(net, i).count(KEY_ID) == 1 for i in range(5))
    sids = [
        (i, net.start(i, SignEcdsa(KEY_ID, SIGNATURE, MessageHash(bytes([i + 1]) * 32))))
        for i in range(5)
    ]
    net.run()
    for i, sid in sids:
        signature = net.value(i, sid)
        assert isinstance(signature, bytes)
        assert recover_public(signature, bytes([i + 1]) * 32) == key.public
    assert all(pool(net, i).sizes()["own"] + pool(net, i).sizes()["held"] == 0 for i in range(5))


# --- what a master learns ------------------------------------------------------------------


def presigned_view(t: int, n: int, seed: int) -> tuple[MasterView, bytes, bytes, int]:
    """A real generation, a presignature and one signing that uses it; the master's view of
    the signature shares (attempt 1), the signature, the message, the key secret."""
    net = ObservedNetwork(
        n, {**key_sessions.MASTERS, **MASTERS}, {**key_sessions.SLAVES, **SLAVES},
        seed=seed, presignatures=2,
    )  # fmt: skip
    key_sessions.generate(net, t)
    made_sid = net.start(0, Presign(key_sessions.KEY))
    net.run()
    assert isinstance(net.value(0, made_sid), Presignature)
    requester = KeyPair.generate(SeededRng(seed + 7))
    signature = sign_recoverable(requester.secret, key_sessions.KEY)
    message = MessageHash(SeededRng(seed + 11).random_bytes(32))
    sid = net.start(0, SignEcdsa(key_sessions.KEY, signature, message))
    session = net.node(0).core.session(sid)
    net.run()
    value = net.value(0, sid)
    assert isinstance(value, bytes) and isinstance(session, EcdsaSigningMaster)
    assert isinstance(session.nonces, PresignedNonces)  # it did use the presignature
    shares = key_sessions.stored_shares(net)
    secret = key_sessions.reconstruct(shares, sorted(shares)[: t + 1]).to_int()
    view = master_view("ecdsa", net, net.order[0], session, sid, value, message)
    return view, value, message, secret


@pytest.mark.parametrize(("t", "n"), [(1, 3), (1, 4), (2, 5), (3, 7)])
def test_a_presigned_master_view_does_not_give_the_key(t: int, n: int) -> None:
    for seed in (1, 2):
        view, value, message, _ = presigned_view(t, n, seed)
        assert ecdsa_recovers(view.key_public, value, message)
        outcome = attack_ecdsa(view)
        assert outcome.degree == 2 * t
        assert outcome.secret is None, "the master extracted the server key"


def unmasked_presigned(nonces: object) -> object:
    """`signing_ecdsa.signature_mask` replaced: an all-zero sharing (Parity's unmasked shares),
    for a presigned attempt as for one that ran its generations."""
    if isinstance(nonces, PresignedNonces):
        real = nonces.result(NonceKind.SIGNATURE_ZERO)
        zero = tuple((node, Point.identity()) for node, _ in real.publics)
        return StoredNonce(ZERO, None, zero)
    return unmasked(nonces)  # type: ignore[arg-type]


@pytest.mark.parametrize(("t", "n"), [(1, 3), (2, 5)])
def test_without_the_mask_a_presigned_master_view_gives_the_key(
    monkeypatch: pytest.MonkeyPatch, t: int, n: int
) -> None:
    """The attack is real on presigned views too: the mask is what stops it."""
    monkeypatch.setattr(signing_ecdsa, "signature_mask", unmasked_presigned)
    view, value, message, secret = presigned_view(t, n, 1)
    assert ecdsa_recovers(view.key_public, value, message)
    assert attack_ecdsa(view).secret == secret
