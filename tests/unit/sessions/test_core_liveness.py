"""NodeCore's part in liveness: who the live sessions wait on, and a lost node's reason in the
error of every session that fails for it (and in what the other nodes are told); a peer that
reports its own failure is named with its reason too."""

from __future__ import annotations

from secretstore.errors import NodeDisconnected, ProtocolViolation, describe
from secretstore.sessions.base import Fail, Send, short
from secretstore.wire.common import ErrorKind, SessionError
from tests.unit.sessions.test_core import ALL, KEY, A, B, C, Poke, PokeInit, core, sid_of


def test_peers_in_sessions_are_the_other_participants_of_live_sessions() -> None:
    a = core(A)
    assert a.peers_in_sessions() == frozenset()
    sid, _ = a.start(Poke(KEY), ALL)
    assert a.peers_in_sessions() == {B, C}
    a.on_node_disconnected(B)
    assert a.peers_in_sessions() == frozenset()  # the session failed and left the table
    assert a.session(sid) is None


def test_a_lost_node_and_its_reason_are_in_the_error_and_in_the_peers_session_error() -> None:
    a = core(A)
    sid, _ = a.start(Poke(KEY), ALL)
    effects = a.on_node_disconnected(C, "did not answer for 2 s")
    [fail] = [e for e in effects if isinstance(e, Fail)]
    assert isinstance(fail.error, NodeDisconnected)
    text = describe(fail.error)
    assert f"node {short(C)} disconnected during the session" in text
    assert f"node {short(C)}: did not answer for 2 s" in text
    told = [e for e in effects if isinstance(e, Send)]
    assert {e.to for e in told} == {B, C}  # C hears it if its link comes back in time
    message = next(e.message for e in told if e.to == B)
    assert isinstance(message, SessionError) and message.session_id == sid
    assert message.kind is ErrorKind.NODE_DISCONNECTED
    assert "did not answer for 2 s" in message.reason


def test_an_unreachable_node_is_lost_for_one_session_only() -> None:
    b = core(B)
    first, second = sid_of(1), sid_of(2)
    b.on_message(A, PokeInit(first, KEY))
    b.on_message(A, PokeInit(second, KEY))
    effects = b.on_node_unreachable(first, C, "was not connected for 2 s")
    assert any(isinstance(e, Fail) for e in effects)
    assert b.session(first) is None
    assert b.session(second) is not None
    assert b.on_node_unreachable(first, C, "again") == []  # ended already
    assert b.on_node_unreachable(second, B, "self") == []  # never loses itself


def test_a_peer_that_reports_a_failure_is_named_with_its_reason() -> None:
    a = core(A)
    sid, _ = a.start(Poke(KEY), ALL)
    effects = a.on_message(C, SessionError(sid, "its disk is full", ErrorKind.GENERIC))
    [fail] = [e for e in effects if isinstance(e, Fail)]
    assert isinstance(fail.error, ProtocolViolation)
    text = describe(fail.error)
    assert short(C) in text and "failed: its disk is full" in text, text


def test_a_peer_refusal_that_the_session_does_not_pass_on_names_the_peer_and_why() -> None:
    a = core(A)
    sid, _ = a.start(Poke(KEY), ALL)
    effects = a.on_message(B, SessionError(sid, "not allowed", ErrorKind.ACCESS_DENIED))
    [fail] = [e for e in effects if isinstance(e, Fail)]
    text = describe(fail.error)
    assert short(B) in text and "not allowed" in text, text
