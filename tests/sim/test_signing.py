"""Schnorr and ECDSA signing on a simulated network: every signature checks with a verifier
written here from the formulas (Schnorr) or with coincurve / eth-keys (ECDSA), under
hypothesis-chosen (t, n), masters and delivery orders; refusals, lost nodes and bad nodes."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest
from coincurve import PublicKey
from Crypto.Hash import keccak
from eth_keys import keys as eth_keys
from hypothesis import given, settings
from hypothesis import strategies as st

from secretstore.crypto.curve import ONE
from secretstore.crypto.keys import KeyPair, sign_recoverable
from secretstore.crypto.rng import SeededRng
from secretstore.crypto.schnorr import SchnorrSignature
from secretstore.errors import AccessDenied, ConsensusUnreachable, ProtocolViolation
from secretstore.sessions import signing_ecdsa, signing_schnorr
from secretstore.sessions.base import Send, short
from secretstore.sessions.signing_ecdsa import SignEcdsa
from secretstore.sessions.signing_master import SigningMaster
from secretstore.sessions.signing_schnorr import SignSchnorr
from secretstore.storage.model import KeyShare
from secretstore.types import Address, MessageHash, NodeId, ServerKeyId
from secretstore.wire import codec
from secretstore.wire.dkg import DkgKeys
from secretstore.wire.signing import (
    EcdsaInversedNonceShare,
    EcdsaSignatureShare,
    SchnorrSignatureShare,
    SigningNodeLost,
    SigningNonceMessage,
    SigningNonceRequest,
)
from tests.sim.dealer import DealtKey, deal_key
from tests.sim.harness import (
    AccessPolicy,
    Pending,
    RandomScheduler,
    SimNetwork,
    SimNode,
    allow_all,
)

#: the order of secp256k1, written out here so the verifier shares nothing with the code
ORDER = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
KEY_ID = ServerKeyId(b"\x33" * 32)
MASTERS = {**signing_schnorr.MASTERS, **signing_ecdsa.MASTERS}
SLAVES = {**signing_schnorr.SLAVES, **signing_ecdsa.SLAVES}
Tamper = Callable[[NodeId, NodeId, object], object]


# --- independent verifiers -------------------------------------------------------------------


def schnorr_verifies(public64: bytes, signature: bytes, message: bytes) -> bool:
    """Parity's Schnorr check from its formula: c == keccak256(m ‖ (s·G + c·Y).x) mod n."""
    c, s = int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
    terms = [PublicKey(b"\x04" + public64).multiply(c.to_bytes(32, "big"))]
    if s:
        terms.append(PublicKey.from_secret(s.to_bytes(32, "big")))
    nonce_public = PublicKey.combine_keys(terms) if len(terms) > 1 else terms[0]
    digest = keccak.new(digest_bits=256)
    digest.update(message + nonce_public.format(compressed=False)[1:33])
    return int.from_bytes(digest.digest(), "big") % ORDER == c


def ecdsa_recovers(public64: bytes, signature: bytes, message: bytes) -> bool:
    """coincurve and eth-keys both recover the server key; eth-keys verifies it."""
    recovered = PublicKey.from_signature_and_message(signature, message, hasher=None)
    by_coincurve = recovered.format(compressed=False)[1:] == public64
    eth_signature = eth_keys.Signature(signature_bytes=signature)
    by_eth = eth_signature.recover_public_key_from_msg_hash(message).to_bytes() == public64
    verified = eth_keys.PublicKey(public64).verify_msg_hash(message, eth_signature)
    return by_coincurve and by_eth and verified


# --- a network with a key ----------------------------------------------------------------------


class Network(SimNetwork):
    """SimNetwork whose outgoing messages can be altered (a bad node) before encoding."""

    tamper: Tamper | None = None

    def _apply(self, node: SimNode, effects: Any) -> None:
        tamper = self.tamper
        if tamper is not None:
            effects = [
                Send(e.to, tamper(node.node_id, e.to, e.message)) if isinstance(e, Send) else e
                for e in effects
            ]
        super()._apply(node, effects)


def network(
    n: int, t: int, seed: int, *, order: int = 0, access: AccessPolicy = allow_all
) -> tuple[Network, DealtKey]:
    net = Network(n, MASTERS, SLAVES, seed=seed, access=access, scheduler=RandomScheduler(order))
    key = deal_key(SeededRng(seed), net.order, t, with_document_key=False)
    for node, share in key.shares.items():
        net.nodes[node].storage.insert(KEY_ID, share)
    return net, key


def requester_signature(seed: int = 5) -> tuple[KeyPair, bytes]:
    requester = KeyPair.generate(SeededRng(seed))
    return requester, sign_recoverable(requester.secret, KEY_ID)


def request(kind: str, message: bytes) -> SignSchnorr | SignEcdsa:
    _, signature = requester_signature()
    if kind == "schnorr":
        return SignSchnorr(KEY_ID, signature, MessageHash(message))
    return SignEcdsa(KEY_ID, signature, MessageHash(message))


def needed(kind: str, t: int) -> int:
    return t + 1 if kind == "schnorr" else 2 * t + 1


def verifies(kind: str, key: DealtKey, value: object, message: bytes) -> bool:
    if kind == "schnorr":
        assert isinstance(value, SchnorrSignature)
        return schnorr_verifies(key.public.to_bytes(), value.to_bytes(), message)
    assert isinstance(value, bytes)
    return ecdsa_recovers(key.public.to_bytes(), value, message)


def all_ended(net: SimNetwork) -> bool:
    return all(len(node.core) == 0 for node in net.nodes.values() if node.node_id not in net.down)


@st.composite
def shapes(
    draw: st.DrawFn, kind: str, min_n: int = 1, max_n: int = 6, min_t: int = 0
) -> tuple[int, int]:
    """(n, t) with 0 ≤ t and enough nodes for `kind` (t+1 ≤ n, or 2t+1 ≤ n for ECDSA)."""
    n = draw(st.integers(min_value=max(min_n, needed(kind, min_t)), max_value=max_n))
    top = n - 1 if kind == "schnorr" else (n - 1) // 2
    return n, draw(st.integers(min_value=min_t, max_value=top))


messages = st.binary(min_size=32, max_size=32).filter(any)
seeds = st.integers(min_value=0, max_value=2**31)


# --- signatures verify -------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["schnorr", "ecdsa"])
@given(data=st.data(), message=messages, seed=seeds, order=seeds)
def test_signatures_verify_for_any_shape_master_and_order(
    kind: str, data: st.DataObject, message: bytes, seed: int, order: int
) -> None:
    n, t = data.draw(shapes(kind))
    master = data.draw(st.integers(min_value=0, max_value=n - 1))
    net, key = network(n, t, seed, order=order)
    sid = net.start(master, request(kind, message))
    net.run()
    assert verifies(kind, key, net.value(master, sid), message)
    assert all_ended(net)


@settings(max_examples=10)
@given(seed=seeds, order=seeds)
def test_both_signings_at_once_from_two_masters(seed: int, order: int) -> None:
    net, key = network(5, 2, seed, order=order)
    message = b"\x17" * 32
    schnorr = net.start(0, request("schnorr", message))
    ecdsa = net.start(3, request("ecdsa", message))
    net.run()
    assert verifies("schnorr", key, net.value(0, schnorr), message)
    assert verifies("ecdsa", key, net.value(3, ecdsa), message)
    assert all_ended(net)


# --- access ----------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["schnorr", "ecdsa"])
@given(data=st.data(), seed=seeds, order=seeds)
def test_refusals(kind: str, data: st.DataObject, seed: int, order: int) -> None:
    n, t = data.draw(shapes(kind))
    refusing = data.draw(st.sets(st.integers(min_value=0, max_value=n - 1)))
    probe, _ = network(n, t, seed)
    refusers = {probe.order[i] for i in refusing}

    def policy(node: NodeId, who: Address, key_id: ServerKeyId) -> bool:
        assert key_id == KEY_ID
        return node not in refusers

    net, key = network(n, t, seed, order=order, access=policy)
    message = b"\x21" * 32
    sid = net.start(0, request(kind, message))
    net.run()
    if 0 in refusing or n - len(refusing) < needed(kind, t):
        with pytest.raises(AccessDenied):
            net.value(0, sid)
    else:
        assert verifies(kind, key, net.value(0, sid), message)
    assert all_ended(net)


# --- a node drops out ------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["schnorr", "ecdsa"])
@given(data=st.data(), seed=seeds, order=seeds)
def test_a_node_dropping_mid_session(kind: str, data: st.DataObject, seed: int, order: int) -> None:
    n, t = data.draw(shapes(kind, min_n=2))
    lost = data.draw(st.integers(min_value=1, max_value=n - 1))
    steps = data.draw(st.integers(min_value=0, max_value=60))
    net, key = network(n, t, seed, order=order)
    message = b"\x22" * 32
    sid = net.start(0, request(kind, message))
    net.run(max_steps=steps)
    ended_before = net.result(0, sid) is not None
    net.disconnect(net.order[lost])
    net.run()
    if ended_before or n - 1 >= needed(kind, t):
        assert verifies(kind, key, net.value(0, sid), message)
    else:
        with pytest.raises(ConsensusUnreachable):
            net.value(0, sid)
    assert all_ended(net)


# --- bad nodes are named ---------------------------------------------------------------------


def bump_share(bad: NodeId, kinds: tuple[type, ...]) -> Tamper:
    def alter(sender: NodeId, to: NodeId, message: object) -> object:
        if sender == bad and isinstance(message, kinds):
            return replace(message, share=message.share + ONE)  # type: ignore[attr-defined]
        return message

    return alter


def bad_dealing(bad: NodeId) -> Tamper:
    def alter(sender: NodeId, to: NodeId, message: object) -> object:
        if (
            sender == bad
            and isinstance(message, SigningNonceMessage)
            and isinstance(message.message, DkgKeys)
        ):
            keys = message.message
            return replace(message, message=replace(keys, secret2=keys.secret2 + ONE))
        return message

    return alter


TAMPERS: dict[str, Callable[[NodeId], Tamper]] = {
    "schnorr share": lambda bad: bump_share(bad, (SchnorrSignatureShare,)),
    "ecdsa inversed share": lambda bad: bump_share(bad, (EcdsaInversedNonceShare,)),
    "ecdsa signature share": lambda bad: bump_share(bad, (EcdsaSignatureShare,)),
    "schnorr dealing": bad_dealing,
    "ecdsa dealing": bad_dealing,
}


@pytest.mark.parametrize("attack", sorted(TAMPERS))
@given(data=st.data(), seed=seeds, order=seeds)
def test_a_tampering_node_is_detected_and_named(
    attack: str, data: st.DataObject, seed: int, order: int
) -> None:
    kind = attack.split(maxsplit=1)[0]
    # with t = 0 an ECDSA master signs alone: nobody else's share is used
    n, t = data.draw(shapes(kind, min_n=2, min_t=1 if kind == "ecdsa" else 0))
    bad_index = data.draw(st.integers(min_value=1, max_value=n - 1))
    net, key = network(n, t, seed, order=order)
    bad = net.order[bad_index]
    net.tamper = TAMPERS[attack](bad)
    message = b"\x23" * 32
    sid = net.start(0, request(kind, message))
    net.run()
    outcome = net.result(0, sid)
    assert outcome is not None
    in_every_group = n == needed(kind, t)
    try:
        value = net.value(0, sid)
    except ProtocolViolation as error:
        assert error.node == short(bad)
    else:
        assert not in_every_group  # the bad node was left out of the group
        assert verifies(kind, key, value, message)
    assert all_ended(net)


def wrong_share(share: KeyShare) -> KeyShare:
    version = share.last_version()
    return replace(share, versions=(replace(version, secret_share=version.secret_share + ONE),))


@pytest.mark.parametrize("kind", ["schnorr", "ecdsa"])
@given(data=st.data(), seed=seeds, order=seeds)
def test_a_node_with_a_wrong_stored_share_is_named(
    kind: str, data: st.DataObject, seed: int, order: int
) -> None:
    # with t = 0 every share is the key; a wrong one is caught as any bad signature share
    n, t = data.draw(shapes(kind, min_n=2, min_t=1))
    bad_index = data.draw(st.integers(min_value=1, max_value=n - 1))
    net, key = network(n, t, seed, order=order)
    bad = net.order[bad_index]
    storage = net.nodes[bad].storage
    share = storage.get(KEY_ID)
    assert share is not None
    storage.update(KEY_ID, wrong_share(share))
    message = b"\x24" * 32
    sid = net.start(0, request(kind, message))
    net.run()
    try:
        value = net.value(0, sid)
    except ProtocolViolation as error:
        assert short(bad) in error.node.split(", ")
        if error.node != short(bad):
            assert error.what.startswith("one of these nodes")
    else:
        assert n > needed(kind, t)
        assert verifies(kind, key, value, message)
    assert all_ended(net)


def test_a_wrong_stored_share_is_located_when_every_holder_reported() -> None:
    # FIFO delivery: every share public reaches the master before the shares are combined,
    # and the master's seeded choice of group is the same in both runs
    message = b"\x25" * 32
    probe, _ = network(5, 1, 11)
    groups: list[tuple[NodeId, ...]] = []

    def record(sender: NodeId, to: NodeId, sent: object) -> object:
        if isinstance(sent, SigningNonceRequest):
            groups.append(sent.nodes)
        return sent

    probe.tamper = record
    probe.start(0, request("schnorr", message))
    probe.run()
    bad = next(node for node in groups[0] if node != probe.order[0])
    net, _ = network(5, 1, 11)
    storage = net.nodes[bad].storage
    share = storage.get(KEY_ID)
    assert share is not None
    storage.update(KEY_ID, wrong_share(share))
    sid = net.start(0, request("schnorr", message))
    net.run()
    with pytest.raises(ProtocolViolation) as info:
        net.value(0, sid)
    assert info.value.node == short(bad)
    assert info.value.what == "holds a key share that does not fit the key"


# --- loss reports: a member can only break its own links -------------------------------------


class LyingReporter(Network):
    """`liar` runs the protocol, but as soon as it is asked into a group it reports every
    other member lost (the master too when `report_master`)."""

    liar: NodeId
    report_master = False

    def _deliver(self, item: Pending) -> None:
        super()._deliver(item)
        if item.to != self.liar or item.to in self.down:
            return
        message = codec.decode(item.data)
        if not isinstance(message, SigningNonceRequest):
            return
        for node in message.nodes:
            if node == self.liar or (node == item.sender and not self.report_master):
                continue
            lie = SigningNodeLost(message.session_id, message.attempt, node)
            self.pending.append(Pending(self.liar, item.sender, codec.encode(lie)))


LIAR_CASES = [
    ("schnorr", 5, 1),
    ("schnorr", 5, 2),
    ("schnorr", 5, 3),
    ("schnorr", 3, 2),
    ("ecdsa", 5, 1),
    ("ecdsa", 6, 2),
    ("ecdsa", 5, 2),
    ("ecdsa", 3, 1),
]


@pytest.mark.parametrize(("kind", "n", "t"), LIAR_CASES)
@settings(max_examples=8)
@given(data=st.data(), seed=seeds, order=seeds)
def test_a_member_reporting_everyone_lost_excludes_only_itself(
    kind: str, n: int, t: int, data: st.DataObject, seed: int, order: int
) -> None:
    net = LyingReporter(n, MASTERS, SLAVES, seed=seed, scheduler=RandomScheduler(order))
    key = deal_key(SeededRng(seed), net.order, t, with_document_key=False)
    for node, share in key.shares.items():
        net.nodes[node].storage.insert(KEY_ID, share)
    net.liar = net.order[data.draw(st.integers(min_value=1, max_value=n - 1), label="liar")]
    net.report_master = data.draw(st.booleans(), label="reports the master")
    message = b"\x26" * 32
    sid = net.start(0, request(kind, message))
    master = net.node(0).core.session(sid)
    assert isinstance(master, SigningMaster)
    net.run()
    consensus = master.consensus
    honest = set(net.order) - {net.liar}
    # no honest node is ever lost, and every broken link has the liar at one end
    assert honest <= consensus.in_play
    assert all(net.liar in link for link in consensus.broken_links)
    if n - 1 >= needed(kind, t):
        assert verifies(kind, key, net.value(0, sid), message)
        final = master.nonces
        assert final is not None
        assert not any(link <= set(final.nodes) for link in consensus.broken_links)
        if net.liar in final.nodes:  # it had nobody but the master to report
            assert not net.report_master and len(final.nodes) == 2
    else:
        with pytest.raises(ConsensusUnreachable) as info:
            net.value(0, sid)
        assert short(net.liar) in str(info.value)
    # every honest node's session ends (a liar that reported the master is no longer told)
    assert all(len(net.nodes[node].core) == 0 for node in honest)


@pytest.mark.parametrize(("kind", "t"), [("schnorr", 2), ("ecdsa", 1)])
@given(seed=seeds, order=seeds)
def test_a_real_broken_link_between_members_reselects_a_group_without_both_ends(
    kind: str, t: int, seed: int, order: int
) -> None:
    net, key = network(5, t, seed, order=order)
    message = b"\x27" * 32
    sid = net.start(0, request(kind, message))
    master = net.node(0).core.session(sid)
    assert isinstance(master, SigningMaster)
    while master.nonces is None and net.run(max_steps=1):
        pass
    nonces = master.nonces
    assert nonces is not None
    a, b = [node for node in nonces.nodes if node != net.order[0]][:2]
    net.cut(a, b)
    net.run()
    if net.result(0, sid) is not None and master.consensus.attempt == 1:
        # the first group had finished its part before the cut mattered
        assert verifies(kind, key, net.value(0, sid), message)
        return
    assert verifies(kind, key, net.value(0, sid), message)
    assert master.consensus.broken_links == {frozenset((a, b))}
    assert master.consensus.in_play == set(net.order)  # neither end is lost
    assert master.nonces is not None and not {a, b} <= set(master.nonces.nodes)
    assert all_ended(net)
