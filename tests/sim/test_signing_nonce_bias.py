"""A rushing Schnorr master tries to choose the signature nonce after seeing the honest ones.

In a Schnorr group of t+1 the master's dealing of the nonce is checked by only t honest
members, so its Feldman commitments are pinned at their t points and not at zero. A master
that waits for the honest Feldman commitments (which fix the honest part ``R_h`` of the
nonce) could then publish commitments of ``f_m + a·L`` — ``L`` the polynomial of degree t
that is 1 at zero and 0 at every honest member — for an ``a`` of its choice: the honest
checks still pass, the nonce becomes ``R + a·G``, and the master knows its own share of it.
So it would choose the challenge ``c = H(m ‖ (R + a·G).x)`` (in concurrent sessions, the
freedom the ROS attack needs to forge a signature). The DKG binds every dealer's Feldman
commitments to the Pedersen commitments it sent before anyone revealed anything, so every
honest member refuses the shifted commitments and names the master.

The attack runs on real signing sessions in the simulated network: the master's outgoing
share proofs and agreements are held back until every honest share proof has reached it,
then replaced by the shifted ones (with a matching agreement footprint).
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from secretstore.crypto import dkg
from secretstore.crypto.curve import ONE, ZERO, Point, Scalar
from secretstore.crypto.keys import KeyPair, sign_recoverable
from secretstore.crypto.rng import SeededRng
from secretstore.crypto.schnorr import (
    SchnorrSignature,
    combine_message_hash_with_public,
    verify_schnorr_signature,
)
from secretstore.crypto.shamir import evaluate_polynomial, lagrange_coefficient
from secretstore.sessions import signing_schnorr
from secretstore.sessions.signing_schnorr import SchnorrSigningMaster, SignSchnorr
from secretstore.types import Hash256, MessageHash, NodeId, ServerKeyId
from secretstore.wire import codec
from secretstore.wire.codec import AnyMessage
from secretstore.wire.dkg import DkgAgreement, DkgShareProof
from secretstore.wire.signing import (
    NonceKind,
    SchnorrSignatureShare,
    SigningFault,
    SigningNonceMessage,
)
from tests.sim.dealer import deal_key
from tests.sim.harness import Pending, SimNetwork

KEY_ID = ServerKeyId(b"\x44" * 32)
#: the property the master grinds the challenge for: its low 4 bits are zero
CHOSEN_BITS = 4


class RushingNetwork(SimNetwork):
    """Holds back the master's share proofs and agreements of the nonce generation, and
    records what the honest members send the master."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.master = self.order[0]
        self.held: list[Pending] = []
        self.holding = True
        self.to_master: list[tuple[NodeId, object]] = []

    def _deliver(self, item: Pending) -> None:
        message = codec.decode(item.data)
        if self.holding and item.sender == self.master and _is_held(message):
            self.held.append(item)
            return
        if item.to == self.master:
            self.to_master.append((item.sender, message))
        super()._deliver(item)


def _is_held(message: object) -> bool:
    return isinstance(message, SigningNonceMessage) and isinstance(
        message.message, DkgShareProof | DkgAgreement
    )


def _vanishing_polynomial(threshold: int, honest: list[Scalar]) -> list[Scalar]:
    """Coefficients of ``L`` of degree t with ``L(0) = 1`` and ``L(x_j) = 0`` at `honest`."""
    assert len(honest) == threshold
    poly = [ONE]
    for x in honest:  # multiply by (1 - X/x_j)
        factor = [ONE, -(x.inverse())]
        out = [ZERO] * (len(poly) + 1)
        for i, a in enumerate(poly):
            for j, b in enumerate(factor):
                out[i + j] = out[i + j] + a * b
        poly = out
    return poly


@pytest.mark.parametrize("t", [1, 2])
def test_a_rushing_schnorr_master_cannot_shift_the_nonce(t: int) -> None:
    n = t + 1
    net = RushingNetwork(n, signing_schnorr.MASTERS, signing_schnorr.SLAVES, seed=40 + t)
    key = deal_key(SeededRng(t), net.order, t, with_document_key=False)
    for node, share in key.shares.items():
        net.nodes[node].storage.insert(KEY_ID, share)
    requester = KeyPair.generate(SeededRng(9))
    message = MessageHash(b"\x5a" * 32)
    signature = sign_recoverable(requester.secret, KEY_ID)
    sid = net.start(0, SignSchnorr(KEY_ID, signature, message))
    session = net.node(0).core.session(sid)
    assert isinstance(session, SchnorrSigningMaster)
    net.run()

    # the master has every honest share proof, the honest members wait for its own
    nonces = session.nonces
    assert nonces is not None
    honest = [node for node in nonces.nodes if node != net.master]
    proofs = {
        sender: m.message
        for sender, m in net.to_master
        if isinstance(m, SigningNonceMessage) and isinstance(m.message, DkgShareProof)
    }
    assert set(proofs) == set(honest)
    own_proof = next(
        codec.decode(p.data).message
        for p in net.held
        if isinstance(codec.decode(p.data).message, DkgShareProof)
    )
    assert isinstance(own_proof, DkgShareProof)
    nonce_public = dkg.compute_joint_public(
        [own_proof.share_proof[0]] + [proofs[node].share_proof[0] for node in honest]
    )

    # choose the shift: grind the challenge of R + a·G for CHOSEN_BITS zero bits
    a = ONE
    while True:
        shifted = nonce_public + Point.base_mul(a)
        challenge = combine_message_hash_with_public(message, shifted)
        if challenge.to_int() % (1 << CHOSEN_BITS) == 0:
            break
        a = a + ONE
    ids = session.id_numbers
    vanishing = _vanishing_polynomial(t, [ids[node] for node in honest])
    moved = tuple(
        point + Point.base_mul(a * coeff)
        for point, coeff in zip(own_proof.share_proof, vanishing, strict=True)
    )
    full = {node: proofs[node].share_proof for node in honest} | {net.master: moved}
    footprint = Hash256(dkg.publics_footprint(full))
    for item in net.held:
        sent = codec.decode(item.data)
        assert isinstance(sent, SigningNonceMessage)
        inner = sent.message
        if isinstance(inner, DkgShareProof):
            inner = replace(inner, share_proof=moved)
        else:
            inner = DkgAgreement(footprint)
        forged = replace(sent, message=AnyMessage(inner))
        net.pending.append(Pending(item.sender, item.to, codec.encode(forged)))
    net.held.clear()
    net.holding = False
    net.run()

    shares = {s: m.share for s, m in net.to_master if isinstance(m, SchnorrSignatureShare)}
    faults = [m for _, m in net.to_master if isinstance(m, SigningFault)]
    if len(shares) == len(honest):
        # the honest members accepted the shifted nonce: finish the master's forgery
        run = nonces.runs[NonceKind.SIGNATURE_NONCE]
        own_nonce = run._secret_share
        assert own_nonce is not None
        x_m = ids[net.master]
        own_nonce = own_nonce + a * evaluate_polynomial(vanishing, x_m)
        weight = lagrange_coefficient(x_m, [ids[node] for node in honest])
        own = weight * own_nonce - challenge * weight * session.version.secret_share
        forged_sig = SchnorrSignature(challenge, own + sum(shares.values(), ZERO))
        chosen = verify_schnorr_signature(key.public, forged_sig, message)
        pytest.fail(
            f"the honest members took a nonce shifted by the master (signature with a "
            f"ground challenge verifies: {chosen})"
        )
    # every honest member refused the shifted commitments and named the master
    assert {fault.culprit for fault in faults} == {net.master}
    assert len(faults) == len(honest)
    assert shares == {}
