"""Bound requests on a simulated network: what a replayed key-id signature gives a dishonest
master with `require_bound_requests` off (Parity's form) and on.

The rogue is a holder of the key that saw the requester's signatures in an honest request
(they are forwarded to every candidate) and then runs a request of its own with them. Its own
policy is off (it runs whatever it likes); what it sends may be rewritten on the way out.
"""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from secretstore.crypto.bound import (
    BoundOperation,
    generation_payload,
    sign_bound_request,
    signing_payload,
    store_payload,
)
from secretstore.crypto.curve import Point
from secretstore.crypto.document import encrypt_secret
from secretstore.crypto.keys import KeyPair, sign_recoverable
from secretstore.crypto.rng import SeededRng
from secretstore.errors import InvalidRequest, UnboundRequest
from secretstore.sessions import signing_ecdsa, signing_schnorr
from secretstore.sessions.base import Fail
from secretstore.sessions.encryption import StoreDocumentKey
from secretstore.sessions.generation import GenerateServerKey
from secretstore.sessions.signing_ecdsa import SignEcdsa
from secretstore.sessions.signing_schnorr import SignSchnorr
from secretstore.types import MessageHash, NodeId
from secretstore.wire.common import ErrorKind, SessionError
from secretstore.wire.consensus import ConsensusResponse
from secretstore.wire.encryption import ConfirmEncryption, InitializeEncryption
from secretstore.wire.generation import InitializeGeneration
from secretstore.wire.signing import EcdsaSigningRequest, SchnorrSigningRequest, SigningSharePublic
from tests.sim.dealer import deal_key
from tests.sim.key_sessions import (
    AUTHOR_KEY,
    KEY,
    all_sessions_ended,
    generate,
    proof_of,
    stored_shares,
)
from tests.sim.key_sessions import MASTERS as KEY_MASTERS
from tests.sim.key_sessions import SLAVES as KEY_SLAVES
from tests.sim.rogue import RogueNetwork
from tests.sim.test_signing import verifies

REQUESTER = KeyPair.generate(SeededRng(b"bound requester"))
STRANGER = KeyPair.generate(SeededRng(b"bound stranger"))
ASKED = MessageHash(b"\x11" * 32)  # the hash the requester asked to sign
CHOSEN = MessageHash(b"\x22" * 32)  # the hash the rogue wants signed
SIGN_MASTERS = {**signing_schnorr.MASTERS, **signing_ecdsa.MASTERS}
SIGN_SLAVES = {**signing_schnorr.SLAVES, **signing_ecdsa.SLAVES}
OPERATIONS = {"schnorr": BoundOperation.SIGN_SCHNORR, "ecdsa": BoundOperation.SIGN_ECDSA}
INITS = {"schnorr": SchnorrSigningRequest, "ecdsa": EcdsaSigningRequest}


def bound_signing(kind: str, message: bytes, signer: KeyPair = REQUESTER) -> bytes:
    return sign_bound_request(signer.secret, OPERATIONS[kind], KEY, signing_payload(message))


def signing_request(
    kind: str, message: bytes, bound: bytes | None, signer: KeyPair = REQUESTER
) -> SignSchnorr | SignEcdsa:
    signature = sign_recoverable(signer.secret, KEY)
    cls = SignSchnorr if kind == "schnorr" else SignEcdsa
    return cls(KEY, signature, MessageHash(message), bound_signature=bound)


def signing_network(strict: bool, seed: int = 3) -> tuple[RogueNetwork, object]:
    """5 holders of a key with t = 1 (ECDSA needs 3); node 4 is the rogue, with its policy
    off; the honest nodes have `strict` as theirs."""
    net = RogueNetwork(5, SIGN_MASTERS, SIGN_SLAVES, seed=seed)
    net.rogue_index = 4
    key = deal_key(SeededRng(seed), net.order, 1, with_document_key=False)
    for node, share in key.shares.items():
        net.nodes[node].storage.insert(KEY, share)
    net.set_policy_of_all(require_bound_requests=strict)
    net.set_policy(4, require_bound_requests=False)
    return net, key


def seen_by_rogue(net: RogueNetwork, kind: str) -> tuple[bytes, bytes | None]:
    """The requester's key-id and bound signatures as the rogue received them."""
    for _, to, message in net.sent:
        if to == net.rogue.node_id and isinstance(message, INITS[kind]):
            return message.access.requester_signature, message.access.bound_signature
    raise AssertionError("the rogue saw no signing request")


def honest_signing_then_rogue(
    kind: str, strict: bool, seed: int = 3
) -> tuple[RogueNetwork, object, bytes, bytes | None]:
    net, key = signing_network(strict, seed)
    sid = net.start(0, signing_request(kind, ASKED, bound_signing(kind, ASKED)))
    net.run()
    assert verifies(kind, key, net.value(0, sid), ASKED)  # type: ignore[arg-type]
    key_id_signature, bound = seen_by_rogue(net, kind)
    net.sent.clear()
    return net, key, key_id_signature, bound


def rogue_signs(
    net: RogueNetwork, kind: str, key_id_signature: bytes, add_bound: bytes | None = None
) -> Fail | object:
    """The rogue runs a signing of CHOSEN with the replayed key-id signature; `add_bound`
    (a bound signature it saw or made) is slipped into what it sends, past its own check."""
    cls = SignSchnorr if kind == "schnorr" else SignEcdsa
    if add_bound is not None:

        def slip(sender: NodeId, to: NodeId, message: object) -> object:
            if isinstance(message, INITS[kind]):
                return replace(message, access=replace(message.access, bound_signature=add_bound))
            return message

        net.tamper = slip
    sid = net.start(4, cls(KEY, key_id_signature, CHOSEN))
    net.run()
    net.tamper = None
    outcome = net.result(4, sid)
    assert outcome is not None
    return outcome


def no_honest_node_took_part(net: RogueNetwork) -> bool:
    for messages in net.answers_to_rogue().values():
        for message in messages:
            if isinstance(message, SigningSharePublic):
                return False
            if isinstance(message, ConsensusResponse) and message.allowed:
                return False
    return True


@pytest.mark.parametrize("kind", ["schnorr", "ecdsa"])
def test_policy_off_a_replayed_key_id_signature_signs_a_hash_of_the_rogue_s_choice(
    kind: str,
) -> None:
    # Parity's form: what the policy exists for (the attack works, so the test below can fail)
    net, key, key_id_signature, _ = honest_signing_then_rogue(kind, strict=False)
    outcome = rogue_signs(net, kind, key_id_signature)
    assert not isinstance(outcome, Fail)
    assert verifies(kind, key, outcome.result, CHOSEN)  # type: ignore[attr-defined, arg-type]


@pytest.mark.parametrize("kind", ["schnorr", "ecdsa"])
@pytest.mark.parametrize("slipped", ["none", "the asked hash's", "another key's"])
def test_policy_on_a_replayed_key_id_signature_signs_nothing(kind: str, slipped: str) -> None:
    net, _, key_id_signature, seen_bound = honest_signing_then_rogue(kind, strict=True)
    assert seen_bound is not None
    add = {
        "none": None,
        "the asked hash's": seen_bound,
        "another key's": bound_signing(kind, CHOSEN, signer=STRANGER),
    }[slipped]
    outcome = rogue_signs(net, kind, key_id_signature, add)
    assert isinstance(outcome, Fail)
    assert no_honest_node_took_part(net)
    refusals = net.refusals_to_rogue()
    assert all(ErrorKind.INVALID_REQUEST in kinds for kinds in refusals.values()), refusals
    assert all_sessions_ended(net)


@pytest.mark.parametrize("kind", ["schnorr", "ecdsa"])
def test_policy_off_a_bound_signature_that_does_not_fit_is_still_refused(kind: str) -> None:
    net, _, key_id_signature, _ = honest_signing_then_rogue(kind, strict=False)
    outcome = rogue_signs(net, kind, key_id_signature, bound_signing(kind, ASKED))
    assert isinstance(outcome, Fail)
    assert no_honest_node_took_part(net)


@settings(max_examples=10)
@given(
    kind=st.sampled_from(["schnorr", "ecdsa"]), master=st.integers(0, 3), seed=st.integers(0, 2**16)
)
def test_policy_on_bound_signings_work_from_any_master(kind: str, master: int, seed: int) -> None:
    net, key = signing_network(strict=True, seed=seed)
    sid = net.start(master, signing_request(kind, CHOSEN, bound_signing(kind, CHOSEN)))
    net.run()
    assert verifies(kind, key, net.value(master, sid), CHOSEN)  # type: ignore[arg-type]
    assert all_sessions_ended(net)


@pytest.mark.parametrize("kind", ["schnorr", "ecdsa"])
def test_each_node_refuses_the_unbound_form_by_its_own_policy(kind: str) -> None:
    net, _ = signing_network(strict=True)
    net.set_policy(4, require_bound_requests=True)
    net.set_policy(0, require_bound_requests=False)  # a master without the policy
    sid = net.start(0, signing_request(kind, ASKED, None))
    net.run()
    assert isinstance(net.result(0, sid), Fail)
    for node in net.order[1:]:
        kinds = {
            m.kind
            for sender, to, m in net.sent
            if sender == node and to == net.order[0] and isinstance(m, SessionError)
        }
        assert ErrorKind.INVALID_REQUEST in kinds
    sid = net.start(1, signing_request(kind, ASKED, None))  # a strict master refuses at once
    with pytest.raises(UnboundRequest):
        net.value(1, sid)
    assert all_sessions_ended(net)


# --- document key store ----------------------------------------------------------------------


def store_network(strict: bool, seed: int = 4) -> tuple[RogueNetwork, Point]:
    """4 nodes with a server key of AUTHOR (t = 1) and no document key yet; node 3 is the
    rogue (policy off) and saw AUTHOR's key-id signature (the generation forwarded it)."""
    net = RogueNetwork(4, KEY_MASTERS, KEY_SLAVES, seed=seed)
    net.rogue_index = 3
    public = generate(net, 1)
    net.set_policy_of_all(require_bound_requests=strict)
    net.set_policy(3, require_bound_requests=False)
    net.sent.clear()
    return net, public


def points(public: Point, seed: bytes) -> tuple[Point, Point]:
    rng = SeededRng(seed)
    encrypted = encrypt_secret(KeyPair.generate(rng).public, public, rng)
    return encrypted.common_point, encrypted.encrypted_point


def bound_store(common: Point, encrypted: Point, signer: KeyPair = AUTHOR_KEY) -> bytes:
    payload = store_payload(common, encrypted)
    return sign_bound_request(signer.secret, BoundOperation.STORE_DOCUMENT_KEY, KEY, payload)


def document_keys(net: RogueNetwork) -> set[tuple[Point | None, Point | None]]:
    return {(s.common_point, s.encrypted_point) for s in stored_shares(net).values()}


def rogue_stores(net: RogueNetwork, common: Point, encrypted: Point, add: bytes | None) -> object:
    if add is not None:

        def slip(sender: NodeId, to: NodeId, message: object) -> object:
            if isinstance(message, InitializeEncryption):
                return replace(message, bound_signature=add)
            return message

        net.tamper = slip
    sid = net.start(3, StoreDocumentKey(KEY, proof_of(), common, encrypted))
    net.run()
    net.tamper = None
    return net.result(3, sid)


def test_policy_off_a_replayed_key_id_signature_stores_the_rogue_s_document_key() -> None:
    net, public = store_network(strict=False)
    mine = points(public, b"rogue's")
    rogue_stores(net, *mine, add=None)
    assert document_keys(net) == {mine}  # the author is locked out: Parity's form allows it


@pytest.mark.parametrize("slipped", ["none", "for other points", "by another key"])
def test_policy_on_a_replayed_key_id_signature_stores_nothing(slipped: str) -> None:
    net, public = store_network(strict=True)
    wanted = points(public, b"the author's")
    mine = points(public, b"rogue's")
    add = {
        "none": None,
        "for other points": bound_store(*wanted),
        "by another key": bound_store(*mine, signer=STRANGER),
    }[slipped]
    outcome = rogue_stores(net, *mine, add=add)
    assert isinstance(outcome, Fail) and isinstance(outcome.error, InvalidRequest)
    refusals = net.refusals_to_rogue()
    assert all(ErrorKind.INVALID_REQUEST in kinds for kinds in refusals.values()), refusals
    answers = net.answers_to_rogue()
    assert not any(isinstance(m, ConfirmEncryption) for ms in answers.values() for m in ms)
    assert document_keys(net) == {(None, None)}
    assert all_sessions_ended(net)
    # the author's own bound store still works
    sid = net.start(1, StoreDocumentKey(KEY, proof_of(), *wanted, bound_store(*wanted)))
    net.run()
    assert net.value(1, sid) is None
    assert document_keys(net) == {wanted}


def test_policy_off_a_bound_store_that_does_not_fit_is_refused() -> None:
    net, public = store_network(strict=False)
    mine = points(public, b"rogue's")
    outcome = rogue_stores(net, *mine, add=bound_store(*points(public, b"other")))
    assert isinstance(outcome, Fail)
    assert document_keys(net) == {(None, None)}


def test_one_strict_holder_refuses_an_unbound_store_and_nothing_is_stored() -> None:
    net, public = store_network(strict=False)
    net.set_policy(2, require_bound_requests=True)
    sid = net.start(0, StoreDocumentKey(KEY, proof_of(), *points(public, b"a")))
    net.run()
    with pytest.raises(InvalidRequest, match="bound request"):
        net.value(0, sid)
    assert document_keys(net) == {(None, None)}
    # the bound form passes every node
    wanted = points(public, b"b")
    sid = net.start(0, StoreDocumentKey(KEY, proof_of(), *wanted, bound_store(*wanted)))
    net.run()
    assert net.value(0, sid) is None and document_keys(net) == {wanted}


# --- generation: Parity's key-id signature does not cover the threshold --------------------


def generation_network(strict: bool) -> RogueNetwork:
    """3 nodes, none holding KEY; node 0 is the rogue master R asked to generate, with its
    own policy off; the honest nodes have `strict` as theirs."""
    net = RogueNetwork(3, KEY_MASTERS, KEY_SLAVES, seed=11)
    net.rogue_index = 0
    net.set_policy_of_all(require_bound_requests=strict)
    net.set_policy(0, require_bound_requests=False)
    return net


def bound_generation(threshold: int, signer: KeyPair = AUTHOR_KEY) -> bytes:
    return sign_bound_request(
        signer.secret, BoundOperation.GENERATE_SERVER_KEY, KEY, generation_payload(threshold)
    )


def test_policy_off_a_master_can_generate_with_another_threshold() -> None:
    # R asked for threshold 2 of 3; the rogue master generates with threshold 0 instead, and
    # then holds the whole secret itself: the key-id signature does not cover the threshold
    net = generation_network(strict=False)
    sid = net.start(0, GenerateServerKey(KEY, proof_of(), 0))
    net.run()
    public = net.value(0, sid)
    shares = stored_shares(net)
    assert len(shares) == 3 and all(share.threshold == 0 for share in shares.values())
    own = shares[net.rogue.node_id].last_version().secret_share
    assert Point.base_mul(own) == public


@pytest.mark.parametrize("sent", ["R's bound signature", "no bound signature"])
def test_policy_on_a_master_cannot_generate_with_another_threshold(sent: str) -> None:
    net = generation_network(strict=True)
    asked = bound_generation(2)

    def lower_threshold(sender: NodeId, to: NodeId, message: object) -> object:
        if isinstance(message, InitializeGeneration):
            bound = asked if sent == "R's bound signature" else None
            return replace(message, threshold=0, bound_signature=bound)
        return message

    net.tamper = lower_threshold
    sid = net.start(0, GenerateServerKey(KEY, proof_of(), 0))
    net.run()
    assert isinstance(net.result(0, sid), Fail)
    assert stored_shares(net) == {}
    refusals = net.refusals_to_rogue()
    assert all(ErrorKind.INVALID_REQUEST in kinds for kinds in refusals.values()), refusals
    assert all_sessions_ended(net)


def test_policy_on_a_bound_generation_stores_the_asked_threshold_everywhere() -> None:
    net = generation_network(strict=True)
    net.set_policy(0, require_bound_requests=True)
    sid = net.start(0, GenerateServerKey(KEY, proof_of(), 2, bound_signature=bound_generation(2)))
    net.run()
    public = net.value(0, sid)
    shares = stored_shares(net)
    assert len(shares) == 3
    assert {share.threshold for share in shares.values()} == {2}
    assert {share.public for share in shares.values()} == {public}


def test_a_bound_generation_by_another_key_is_refused_by_its_master() -> None:
    net = generation_network(strict=False)
    net.set_policy(0, require_bound_requests=False)
    request = GenerateServerKey(KEY, proof_of(), 1, bound_signature=bound_generation(1, STRANGER))
    sid = net.start(0, request)
    net.run()
    outcome = net.result(0, sid)
    assert isinstance(outcome, Fail) and isinstance(outcome.error, InvalidRequest)
    assert stored_shares(net) == {}
