"""The pure handshake, fed by hand: success, refusals with distinct reasons, replays."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from secretstore.crypto.curve import Point
from secretstore.crypto.keys import KeyPair
from secretstore.crypto.rng import SeededRng, random_scalar
from secretstore.mesh.handshake import (
    HELLO_SIZE,
    MSG_HELLO,
    PROTOCOL_VERSION,
    Handshake,
    HandshakeRefused,
    HandshakeResult,
    RefusalReason,
    Role,
)
from secretstore.types import NodeId


def make_key(seed: int) -> KeyPair:
    secret = random_scalar(SeededRng(seed))
    return KeyPair(secret, Point.base_mul(secret))


def node_id(key: KeyPair) -> NodeId:
    return NodeId(key.public.to_bytes())


A, B, C = make_key(1), make_key(2), make_key(3)
ALL = frozenset({node_id(A), node_id(B), node_id(C)})


def pair(
    seed: int = 0, initiator: KeyPair = A, responder: KeyPair = B
) -> tuple[Handshake, Handshake]:
    i = Handshake(Role.INITIATOR, initiator, ALL, SeededRng(seed * 2), node_id(responder))
    r = Handshake(Role.RESPONDER, responder, ALL, SeededRng(seed * 2 + 1))
    return i, r


def run(i: Handshake, r: Handshake) -> tuple[HandshakeResult, HandshakeResult]:
    [hello_i] = i.start()
    [hello_r] = r.start()
    [proof_r] = r.receive(hello_i)
    [proof_i] = i.receive(hello_r)
    assert i.receive(proof_r) == []
    assert r.receive(proof_i) == []
    assert i.result is not None and r.result is not None
    return i.result, r.result


def refusal(call: object) -> RefusalReason:
    assert callable(call)
    with pytest.raises(HandshakeRefused) as info:
        call()
    return info.value.reason


def test_full_handshake_agrees_on_directional_keys() -> None:
    i, r = pair()
    res_i, res_r = run(i, r)
    assert res_i.peer == node_id(B) and res_r.peer == node_id(A)
    assert res_i.send_key == res_r.receive_key
    assert res_i.receive_key == res_r.send_key
    assert res_i.send_key != res_i.receive_key
    assert len(res_i.send_key) == 32
    assert i.done and r.done


def test_each_session_derives_fresh_keys() -> None:
    first, _ = run(*pair(seed=1))
    second, _ = run(*pair(seed=2))
    assert first.send_key != second.send_key
    again, _ = run(*pair(seed=1))
    assert again.send_key == first.send_key  # the rng is the only source of freshness


def test_result_repr_hides_keys() -> None:
    res, _ = run(*pair())
    assert res.send_key.hex() not in repr(res)
    assert res.receive_key.hex() not in repr(res)


def test_unknown_node_is_refused_before_any_proof() -> None:
    stranger = make_key(99)
    i = Handshake(Role.INITIATOR, stranger, ALL, SeededRng(5), node_id(B))
    r = Handshake(Role.RESPONDER, B, ALL, SeededRng(6))
    [hello] = i.start()
    r.start()
    assert refusal(lambda: r.receive(hello)) is RefusalReason.UNKNOWN_NODE


def test_initiator_refuses_a_responder_it_does_not_know() -> None:
    stranger = make_key(99)
    i = Handshake(Role.INITIATOR, A, ALL, SeededRng(5))
    r = Handshake(Role.RESPONDER, stranger, ALL | {node_id(stranger)}, SeededRng(6))
    i.start()
    [hello_r] = r.start()
    assert refusal(lambda: i.receive(hello_r)) is RefusalReason.UNKNOWN_NODE


def test_liar_claiming_another_nodes_id_is_refused_as_bad_proof() -> None:
    liar = KeyPair(make_key(77).secret, C.public)  # claims C's id without C's secret
    i = Handshake(Role.INITIATOR, liar, ALL, SeededRng(10), node_id(B))
    r = Handshake(Role.RESPONDER, B, ALL, SeededRng(11))
    [hello_i] = i.start()
    [hello_r] = r.start()
    [proof_r] = r.receive(hello_i)
    [proof_i] = i.receive(hello_r)
    assert i.receive(proof_r) == []  # the liar can check B's honest proof
    assert refusal(lambda: r.receive(proof_i)) is RefusalReason.BAD_PROOF
    assert r.result is None


def test_dialing_the_wrong_node_is_refused() -> None:
    i = Handshake(Role.INITIATOR, A, ALL, SeededRng(1), expected_peer=node_id(C))
    r = Handshake(Role.RESPONDER, B, ALL, SeededRng(2))
    i.start()
    [hello_r] = r.start()
    assert refusal(lambda: i.receive(hello_r)) is RefusalReason.UNEXPECTED_NODE


def test_own_hello_reflected_back_is_refused() -> None:
    i, _ = pair()
    [hello] = i.start()
    assert refusal(lambda: i.receive(hello)) is RefusalReason.SELF_CONNECTION


def test_other_protocol_version_is_refused() -> None:
    i, r = pair()
    [hello] = i.start()
    r.start()
    bumped = hello[:1] + bytes([PROTOCOL_VERSION + 1]) + hello[2:]
    assert refusal(lambda: r.receive(bumped)) is RefusalReason.VERSION_MISMATCH


def test_replayed_proof_from_an_earlier_session_is_refused() -> None:
    # Record a whole session between A and B.
    old_i, old_r = pair(seed=3)
    [old_hello_i] = old_i.start()
    [old_hello_r] = old_r.start()
    old_r.receive(old_hello_i)
    [old_proof_i] = old_i.receive(old_hello_r)
    # An attacker replays A's recorded messages to a fresh responder: the new challenge differs.
    r = Handshake(Role.RESPONDER, B, ALL, SeededRng(1234))
    r.start()
    r.receive(old_hello_i)
    assert refusal(lambda: r.receive(old_proof_i)) is RefusalReason.BAD_PROOF


def test_duplicate_hello_is_refused_and_the_failure_sticks() -> None:
    i, r = pair()
    [hello_i] = i.start()
    r.start()
    r.receive(hello_i)
    assert refusal(lambda: r.receive(hello_i)) is RefusalReason.UNEXPECTED_MESSAGE
    assert refusal(lambda: r.receive(hello_i)) is RefusalReason.UNEXPECTED_MESSAGE
    assert refusal(r.start) is RefusalReason.UNEXPECTED_MESSAGE


def test_proof_before_hello_and_messages_after_done_are_refused() -> None:
    i, r = pair()
    [hello_i] = i.start()
    [hello_r] = r.start()
    [proof_r] = r.receive(hello_i)
    fresh = Handshake(Role.INITIATOR, A, ALL, SeededRng(8))
    fresh.start()
    assert refusal(lambda: fresh.receive(proof_r)) is RefusalReason.UNEXPECTED_MESSAGE
    [proof_i] = i.receive(hello_r)
    i.receive(proof_r)
    assert refusal(lambda: i.receive(proof_r)) is RefusalReason.UNEXPECTED_MESSAGE
    assert r.receive(proof_i) == []


def test_substituted_ephemeral_key_breaks_both_proofs() -> None:
    i, r = pair()
    [hello_i] = i.start()
    [hello_r] = r.start()
    mallory = Handshake(Role.INITIATOR, C, ALL, SeededRng(50))
    [hello_m] = mallory.start()
    eph = slice(2 + 64, 2 + 64 + 33)
    forged = hello_i[: eph.start] + hello_m[eph] + hello_i[eph.stop :]
    [proof_r] = r.receive(forged)
    [proof_i] = i.receive(hello_r)
    assert refusal(lambda: i.receive(proof_r)) is RefusalReason.BAD_PROOF
    assert refusal(lambda: r.receive(proof_i)) is RefusalReason.BAD_PROOF


@given(position=st.integers(min_value=1, max_value=65), mask=st.integers(1, 255))
def test_any_flipped_proof_byte_is_refused(position: int, mask: int) -> None:
    i, r = pair()
    [hello_i] = i.start()
    [hello_r] = r.start()
    r.receive(hello_i)
    [proof_i] = i.receive(hello_r)
    bad = bytearray(proof_i)
    bad[position] ^= mask
    assert refusal(lambda: r.receive(bytes(bad))) is RefusalReason.BAD_PROOF


@given(message=st.binary(max_size=200))
def test_arbitrary_bytes_raise_only_handshake_refused(message: bytes) -> None:
    r = Handshake(Role.RESPONDER, B, ALL, SeededRng(9))
    r.start()
    try:
        r.receive(message)
    except HandshakeRefused as exc:
        assert isinstance(exc.reason, RefusalReason)
    else:
        # Only a well-formed hello from a known node with a valid ephemeral key gets through.
        assert len(message) == HELLO_SIZE and message[0] == MSG_HELLO


def test_malformed_ephemeral_key_is_refused() -> None:
    i, r = pair()
    [hello_i] = i.start()
    r.start()
    bad = hello_i[:66] + b"\x05" + hello_i[67:]
    assert refusal(lambda: r.receive(bad)) is RefusalReason.MALFORMED
