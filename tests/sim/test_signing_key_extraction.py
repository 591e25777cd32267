"""A signing master plays the key-extraction attack on what it received in real sessions.

The key is made by a real generation session and signed with by real signing sessions on the
simulated network (every message through the codec); the attack (tests/sim/key_extraction.py)
sees exactly the master's view: the signature shares delivered to it, its own share, its key
share, the id numbers, the message hash and the signature.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from secretstore.crypto.curve import ZERO, Point
from secretstore.crypto.keys import KeyPair, sign_recoverable
from secretstore.crypto.rng import SeededRng
from secretstore.crypto.schnorr import SchnorrSignature
from secretstore.sessions import signing_ecdsa, signing_schnorr
from secretstore.sessions.dkg import DkgResult
from secretstore.sessions.signing_common import NonceRuns
from secretstore.sessions.signing_ecdsa import EcdsaSigningMaster, SignEcdsa
from secretstore.sessions.signing_schnorr import SchnorrSigningMaster, SignSchnorr
from secretstore.types import MessageHash, NodeId, SessionId
from secretstore.wire import codec
from secretstore.wire.signing import EcdsaSignatureShare, NonceKind, SchnorrSignatureShare
from tests.sim import key_sessions
from tests.sim.harness import Pending, SimNetwork
from tests.sim.key_extraction import (
    ORDER,
    MasterView,
    attack_ecdsa,
    attack_schnorr,
    public_of,
)
from tests.sim.test_signing import ecdsa_recovers, schnorr_verifies

MASTERS = {**key_sessions.MASTERS, **signing_schnorr.MASTERS, **signing_ecdsa.MASTERS}
SLAVES = {**key_sessions.SLAVES, **signing_schnorr.SLAVES, **signing_ecdsa.SLAVES}
SHARE_TYPES = (EcdsaSignatureShare, SchnorrSignatureShare)


class ObservedNetwork(SimNetwork):
    """A network that records every signature share as it is delivered."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.delivered_shares: list[tuple[NodeId, NodeId, object]] = []

    def _deliver(self, item: Pending) -> None:
        if item.to not in self.down:
            message = codec.decode(item.data)
            if isinstance(message, SHARE_TYPES):
                self.delivered_shares.append((item.sender, item.to, message))
        super()._deliver(item)


@dataclass
class Signed:
    view: MasterView
    value: object
    message: bytes
    key_public: Point
    #: the key secret, reconstructed from t+1 stored shares (to check the attack's answer)
    key_secret: int


def sign_and_observe(kind: str, n: int, t: int, seed: int, master_index: int = 0) -> Signed:
    """Generate a key (real generation session), sign one hash with it on node
    `master_index`, and return that master's view of the signing."""
    net = ObservedNetwork(n, MASTERS, SLAVES, seed=seed)
    public = key_sessions.generate(net, t)
    requester = KeyPair.generate(SeededRng(seed + 7))
    signature = sign_recoverable(requester.secret, key_sessions.KEY)
    message = MessageHash(SeededRng(seed + 11).random_bytes(32))
    request = (
        SignEcdsa(key_sessions.KEY, signature, message)
        if kind == "ecdsa"
        else SignSchnorr(key_sessions.KEY, signature, message)
    )
    master = net.node(master_index)
    sid = net.start(master_index, request)
    session = master.core.session(sid)
    net.run()
    value = net.value(master_index, sid)
    assert session is not None
    shares = key_sessions.stored_shares(net)
    secret = key_sessions.reconstruct(shares, sorted(shares)[: t + 1]).to_int()
    view = master_view(kind, net, master.node_id, session, sid, value, message)
    return Signed(view, value, message, public, secret)


def master_view(
    kind: str,
    net: ObservedNetwork,
    master_id: NodeId,
    session: object,
    sid: SessionId,
    value: object,
    message: bytes,
) -> MasterView:
    """The master's view of its last attempt: the shares delivered to it, its own share
    (read from its session), its key share, and the public values of the signature."""
    if kind == "ecdsa":
        assert isinstance(session, EcdsaSigningMaster)
        own_share = session._signature_shares[master_id][0]
    else:
        assert isinstance(session, SchnorrSigningMaster)
        own_share = session._shares[master_id]
    nonces = session.nonces
    assert nonces is not None
    ids = session.id_numbers
    shares = {ids[master_id].to_int(): own_share.to_int()}
    for sender, to, sent in net.delivered_shares:
        assert isinstance(sent, SHARE_TYPES)
        if to == master_id and sent.session_id == sid and sent.attempt == nonces.attempt:
            shares[ids[sender].to_int()] = sent.share.to_int()
    assert len(shares) == len(nonces.nodes)
    h = int.from_bytes(message, "big") % ORDER
    if kind == "ecdsa":
        assert isinstance(value, bytes)
        r = int.from_bytes(value[:32], "big")
    else:
        assert isinstance(value, SchnorrSignature)
        r = value.c.to_int()
    return MasterView(
        threshold=session.threshold,
        shares=shares,
        master_id=ids[master_id].to_int(),
        master_key_share=session.version.secret_share.to_int(),
        key_public=session.share.public.to_bytes(),
        message_scalar=h,
        signature_r=r,
    )


SHAPES = [(1, 3), (1, 4), (2, 5), (2, 6), (3, 7)]


@pytest.mark.parametrize(("t", "n"), SHAPES)
def test_ecdsa_master_view_does_not_give_the_key(t: int, n: int) -> None:
    for seed in (1, 2, 3):
        signed = sign_and_observe("ecdsa", n, t, seed)
        assert isinstance(signed.value, bytes)
        assert ecdsa_recovers(signed.key_public.to_bytes(), signed.value, signed.message)
        outcome = attack_ecdsa(signed.view)
        assert outcome.degree == 2 * t  # the shares lie on a polynomial of degree 2t
        assert outcome.secret is None, "the master extracted the server key"


@settings(max_examples=15)
@given(data=st.data(), seed=st.integers(min_value=0, max_value=2**31))
def test_no_master_of_any_ecdsa_signing_extracts_the_key(data: st.DataObject, seed: int) -> None:
    t = data.draw(st.integers(min_value=1, max_value=2), label="t")
    n = data.draw(st.integers(min_value=2 * t + 1, max_value=2 * t + 3), label="n")
    master = data.draw(st.integers(min_value=0, max_value=n - 1), label="master")
    signed = sign_and_observe("ecdsa", n, t, seed, master)
    assert isinstance(signed.value, bytes)
    assert ecdsa_recovers(signed.key_public.to_bytes(), signed.value, signed.message)
    assert attack_ecdsa(signed.view).secret is None


@pytest.mark.parametrize(("t", "n"), [(1, 2), (1, 3), (2, 3), (2, 5)])
def test_schnorr_master_view_does_not_give_the_key(t: int, n: int) -> None:
    for seed in (1, 2, 3):
        signed = sign_and_observe("schnorr", n, t, seed)
        assert isinstance(signed.value, SchnorrSignature)
        public = signed.key_public.to_bytes()
        assert schnorr_verifies(public, signed.value.to_bytes(), signed.message)
        outcome = attack_schnorr(signed.view)
        assert outcome.degree == t
        assert outcome.candidates >= 1
        assert outcome.secret is None, "the master extracted the server key"


def unmasked(nonces: NonceRuns) -> DkgResult:
    """The seam `signing_ecdsa.signature_mask` replaced: a sharing of zero whose every
    coefficient is zero, so every member sends ``σ_i = w·e_i·(h + r·s_i)`` unmasked (and the
    master checks the proofs against ``σ_i·G``), as Parity's scheme does."""
    real = nonces.result(NonceKind.SIGNATURE_ZERO)
    assert real.share_proofs is not None
    zero = (Point.identity(),) * (real.threshold + 1)
    proofs = tuple((node, zero) for node, _ in real.share_proofs)
    return DkgResult(real.threshold, ZERO, real.id_numbers, None, proofs)


@pytest.mark.parametrize(("t", "n"), SHAPES)
def test_without_the_mask_the_master_view_gives_the_key(
    monkeypatch: pytest.MonkeyPatch, t: int, n: int
) -> None:
    monkeypatch.setattr(signing_ecdsa, "signature_mask", unmasked)
    for seed in (1, 2, 3):
        signed = sign_and_observe("ecdsa", n, t, seed)
        assert isinstance(signed.value, bytes)
        assert ecdsa_recovers(signed.key_public.to_bytes(), signed.value, signed.message)
        outcome = attack_ecdsa(signed.view)
        assert outcome.degree == 2 * t
        assert outcome.secret == signed.key_secret
        assert public_of(outcome.secret) == signed.key_public.to_bytes()
