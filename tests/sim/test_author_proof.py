"""A dishonest master cannot name the author: every node recovers it from the requester's own
signature, for a document key store and for a server key generation (simulated network).

Each attack is played by a rogue node that sends the messages its own sessions would never
make (injected, or rewritten on their way out); every honest node must refuse, and no node
may end up storing anything. The honest flows run afterwards on the same network.
"""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from secretstore.crypto.curve import Point
from secretstore.crypto.document import encrypt_secret
from secretstore.crypto.keys import KeyPair, sign_recoverable
from secretstore.crypto.rng import SeededRng
from secretstore.errors import ProtocolViolation
from secretstore.sessions.base import Fail
from secretstore.sessions.encryption import StoreDocumentKey
from secretstore.sessions.generation import GenerateServerKey
from secretstore.types import NodeId, ServerKeyId, SessionId
from secretstore.wire import codec
from secretstore.wire.common import ErrorKind, SessionError
from secretstore.wire.encryption import CommitEncryption, ConfirmEncryption, InitializeEncryption
from secretstore.wire.generation import (
    ConfirmGenerationInitialization,
    InitializeGeneration,
)
from secretstore.wire.requester import RequesterProof
from tests.sim.key_sessions import (
    AUTHOR,
    AUTHOR_KEY,
    KEY,
    MASTERS,
    SLAVES,
    all_sessions_ended,
    generate,
    proof_of,
    stored_shares,
)
from tests.sim.rogue import RogueNetwork

ROGUE_KEY = KeyPair.generate(SeededRng(b"rogue requester"))
OTHER_KEY_ID = ServerKeyId(b"\x5a" * 32)
SID = SessionId(b"\x66" * 32)
#: a signature whose r is zero: no key recovers from it
ZERO_SIGNATURE = bytes(64) + b"\x00"


def network(n: int = 4, rogue: int = 3, seed: int = 1) -> RogueNetwork:
    net = RogueNetwork(n, MASTERS, SLAVES, seed=seed)
    net.rogue_index = rogue
    return net


def document_key_points(public: Point, seed: bytes) -> tuple[Point, Point]:
    rng = SeededRng(seed)
    encrypted = encrypt_secret(KeyPair.generate(rng).public, public, rng)
    return encrypted.common_point, encrypted.encrypted_point


def nothing_stored_anywhere(net: RogueNetwork, key_id: ServerKeyId = KEY) -> bool:
    """No node holds a document key for `key_id` (every node's own storage is read)."""
    return all(
        node.storage.get(key_id) is None or not node.storage.get(key_id).has_document_key()  # type: ignore[union-attr]
        for node in net.nodes.values()
    )


# --- document key store ------------------------------------------------------------------------

FORGED_PROOFS = {
    "a signature by another key": proof_of(ROGUE_KEY),
    "the author's signature over another key id": proof_of(AUTHOR_KEY, OTHER_KEY_ID),
    "a signature that recovers nothing": RequesterProof.signature(ZERO_SIGNATURE),
    "a signature with a bad v": RequesterProof.signature(
        sign_recoverable(AUTHOR_KEY.secret, KEY)[:64] + b"\x05"
    ),
}


@pytest.mark.parametrize("forged", sorted(FORGED_PROOFS))
def test_a_master_that_forges_the_author_of_a_store_is_refused_by_every_holder(
    forged: str,
) -> None:
    net = network()
    public = generate(net, 1)
    net.sent.clear()
    common, encrypted = document_key_points(public, b"rogue's document key")
    forged_init = InitializeEncryption(SID, KEY, FORGED_PROOFS[forged], common, encrypted, None)
    for node in net.honest:
        net.inject(node.node_id, forged_init)
    net.run()
    for node in net.honest:  # and the commit as if every holder had confirmed
        net.inject(node.node_id, CommitEncryption(SID))
    net.run()
    refusals = net.refusals_to_rogue()
    assert all(
        kinds & {ErrorKind.ACCESS_DENIED, ErrorKind.INVALID_REQUEST} for kinds in refusals.values()
    )
    answers = net.answers_to_rogue()
    assert not any(isinstance(m, ConfirmEncryption) for ms in answers.values() for m in ms)
    assert nothing_stored_anywhere(net)
    assert all_sessions_ended(net)
    # the real author still stores, through any node
    sid = net.start(1, StoreDocumentKey(KEY, proof_of(), common, encrypted))
    net.run()
    assert net.value(1, sid) is None
    assert {(s.common_point, s.encrypted_point) for s in stored_shares(net).values()} == {
        (common, encrypted)
    }


def old_form_store(common: Point, encrypted: Point) -> bytes:
    """The store message as it was: the requester a bare 20-byte address (ROGUE's choice)."""
    code = codec.code_of(InitializeEncryption).to_bytes(2, "big")
    return code + SID + KEY + AUTHOR + common.to_bytes() + encrypted.to_bytes()


def test_a_bare_address_as_the_author_of_a_store_is_refused_and_nothing_is_stored() -> None:
    net = network()
    public = generate(net, 1)
    net.sent.clear()
    common, encrypted = document_key_points(public, b"bare address")
    raw = old_form_store(common, encrypted)
    with pytest.raises(codec.MalformedMessage):
        codec.decode(raw)
    for node in net.honest:
        net.inject(node.node_id, raw)
        net.inject(node.node_id, CommitEncryption(SID))
    net.run()
    assert len(net.undecodable) == len(net.honest)
    assert not any(net.answers_to_rogue().values())  # no session was opened for it
    assert nothing_stored_anywhere(net)
    assert all_sessions_ended(net)


@settings(max_examples=20)
@given(st.integers(0, 3), st.integers(0, 2**16))
def test_the_master_s_own_session_refuses_a_stranger_and_stores_nothing(
    master: int, seed: int
) -> None:
    net = network(seed=seed)
    public = generate(net, 1)
    stranger = KeyPair.generate(SeededRng(seed.to_bytes(4, "big")))
    sid = net.start(
        master, StoreDocumentKey(KEY, proof_of(stranger), *document_key_points(public, b"x"))
    )
    net.run()
    outcome = net.result(master, sid)
    assert isinstance(outcome, Fail)
    assert nothing_stored_anywhere(net)


# --- server key generation ---------------------------------------------------------------------


def generation_fails_everywhere(net: RogueNetwork) -> None:
    """The rogue's generation ended without a share stored on any node."""
    assert stored_shares(net) == {}
    assert all_sessions_ended(net)


def rogue_generation(net: RogueNetwork) -> SessionId:
    """The rogue starts an honest-looking generation for the author (its tamper rewrites)."""
    sid = net.start(net.rogue_index, GenerateServerKey(KEY, proof_of(), 1))
    net.run()
    return sid


@pytest.mark.parametrize("told", ["one slave", "every slave"])
def test_a_master_that_tells_slaves_another_author_gets_no_key_stored(told: str) -> None:
    net = network(rogue=0)
    rogue_proof = proof_of(ROGUE_KEY)
    targets = {net.order[1]} if told == "one slave" else set(net.order[1:])

    def other_author(sender: NodeId, to: NodeId, message: object) -> object:
        if isinstance(message, InitializeGeneration) and to in targets:
            return replace(message, author=rogue_proof)
        return message

    net.tamper = other_author
    sid = rogue_generation(net)
    outcome = net.result(0, sid)
    assert isinstance(outcome, Fail) and isinstance(outcome.error, ProtocolViolation)
    generation_fails_everywhere(net)
    # honest nodes failed on seeing another context (the rogue's own one differs from theirs)
    assert any(
        isinstance(m, SessionError) and "another author" in m.reason
        for _, to, m in net.sent
        if to == net.rogue.node_id
    )


@pytest.mark.parametrize("forged", sorted(FORGED_PROOFS))
def test_a_generation_with_a_forged_author_records_only_recovered_authors(forged: str) -> None:
    net = network(rogue=0)
    proof = FORGED_PROOFS[forged]

    def forge(sender: NodeId, to: NodeId, message: object) -> object:
        if isinstance(message, InitializeGeneration):
            return replace(message, author=proof)
        return message

    net.tamper = forge
    rogue_generation(net)
    generation_fails_everywhere(net)
    # a proof that recovers nothing is refused before any DKG
    if forged in ("a signature that recovers nothing", "a signature with a bad v"):
        refusals = net.refusals_to_rogue()
        assert all(ErrorKind.INVALID_REQUEST in kinds for kinds in refusals.values())
        answers = net.answers_to_rogue()
        assert not any(
            isinstance(m, ConfirmGenerationInitialization) for ms in answers.values() for m in ms
        )


def test_a_bare_address_as_the_author_of_a_generation_is_refused() -> None:
    net = network(rogue=0)
    init_seen: list[InitializeGeneration] = []

    def keep(sender: NodeId, to: NodeId, message: object) -> object:
        if isinstance(message, InitializeGeneration):
            init_seen.append(message)
        return message

    net.tamper = keep
    net.start(0, GenerateServerKey(KEY, proof_of(), 1))
    net.pending.clear()  # the rogue sends the old form instead of what its session made
    init = init_seen[0]
    code = codec.code_of(InitializeGeneration).to_bytes(2, "big")
    tail = codec.encode(init)[2 + 32 + 32 + 1 + 4 + 65 :]  # threshold and id numbers
    raw = code + init.session_id + init.key_id + AUTHOR + tail
    with pytest.raises(codec.MalformedMessage):
        codec.decode(raw)
    for node in net.honest:
        net.inject(node.node_id, raw)
    net.run()
    net.time_out_all()
    net.run()
    assert len(net.undecodable) == len(net.honest)
    generation_fails_everywhere(net)


@settings(max_examples=15)
@given(st.integers(0, 3), st.integers(0, 2**16))
def test_every_node_stores_the_author_it_recovered(master: int, seed: int) -> None:
    net = network(seed=seed)
    requester = KeyPair.generate(SeededRng(b"requester" + seed.to_bytes(4, "big")))
    sid = net.start(master, GenerateServerKey(KEY, proof_of(requester), 2))
    net.run()
    assert isinstance(net.value(master, sid), Point)
    shares = stored_shares(net)
    assert set(shares) == set(net.nodes)
    assert {share.author for share in shares.values()} == {requester.address}
