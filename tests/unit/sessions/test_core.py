"""NodeCore: routing, slave creation, duplicate and concurrent-write refusal, error relay."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from secretstore.crypto.keys import KeyPair
from secretstore.crypto.rng import SeededRng
from secretstore.errors import (
    AccessDenied,
    DocumentKeyAlreadyStored,
    InvalidRequest,
    ProtocolViolation,
    SecretStoreError,
    ServerKeyNotFound,
    SessionLimitReached,
    SessionTimeout,
    StorageError,
)
from secretstore.sessions.base import Effect, Fail, Finish, Send, Session, SessionContext, short
from secretstore.sessions.core import Admitted, NodeCore, Notice
from secretstore.storage.memory import MemoryKeyStorage
from secretstore.storage.model import KeyShare
from secretstore.types import NodeId, ServerKeyId, SessionId
from secretstore.wire.codec import message
from secretstore.wire.common import ErrorKind, SessionError, error_of, kind_of

KEY = ServerKeyId(b"\x07" * 32)
RNG = SeededRng(5)
A, B, C = (KeyPair.generate(RNG).node_id for _ in range(3))
ALL = frozenset({A, B, C})


@dataclass(frozen=True, slots=True)
class Poke:
    key_id: ServerKeyId
    writes: bool = False


@message(0x7F01)
@dataclass(frozen=True, slots=True)
class PokeInit:
    session_id: SessionId
    key_id: ServerKeyId


@message(0x7F02)
@dataclass(frozen=True, slots=True)
class PokeDone:
    session_id: SessionId


class PokeSession(Session):
    """Master sends PokeInit to everyone and finishes when every slave answered PokeDone."""

    def __init__(self, ctx: SessionContext, sid: SessionId, master: NodeId, writes: bool) -> None:
        super().__init__(ctx, sid, master, KEY)
        self.WRITES_KEY = writes
        self.waiting = set(ALL - {ctx.self_id}) if self.is_master else set()

    @property
    def participants(self) -> frozenset[NodeId]:
        return ALL

    def on_message(self, sender: NodeId, msg: object) -> list[Effect]:
        if isinstance(msg, PokeDone):
            self.waiting.discard(sender)
            return self.finish("done") if not self.waiting else []
        return self.fail(ProtocolViolation("x", "unexpected"))


def start_poke(
    ctx: SessionContext, sid: SessionId, req: Any, share: KeyShare | None, conn: frozenset[NodeId]
) -> tuple[Session, list[Effect]]:
    if req.key_id == b"\x00" * 32:
        raise InvalidRequest("zero key")
    s = PokeSession(ctx, sid, ctx.self_id, req.writes)
    return s, s.broadcast(PokeInit(sid, req.key_id), ALL)


def join_poke(
    ctx: SessionContext, sender: NodeId, msg: Any, share: KeyShare | None
) -> tuple[Session, list[Effect]]:
    if share is None and ctx.self_id == C:
        raise ServerKeyNotFound("no such key here")
    s = PokeSession(ctx, msg.session_id, sender, writes=False)
    return s, [Send(sender, PokeDone(msg.session_id))]


def core(node: NodeId) -> NodeCore:
    ctx = SessionContext(node, SeededRng(node), ALL)
    return NodeCore(ctx, MemoryKeyStorage(), {Poke: start_poke}, {PokeInit: join_poke})


def limited_core(node: NodeId, limit: int, joined: list[SessionId] | None = None) -> NodeCore:
    """A core whose peers may each have `limit` sessions open; `joined` records every slave
    the factory created."""

    def join(
        ctx: SessionContext, sender: NodeId, msg: Any, share: KeyShare | None
    ) -> tuple[Session, list[Effect]]:
        if joined is not None:
            joined.append(msg.session_id)
        return PokeSession(ctx, msg.session_id, sender, writes=False), []

    ctx = SessionContext(node, SeededRng(node), ALL)
    return NodeCore(
        ctx, MemoryKeyStorage(), {Poke: start_poke}, {PokeInit: join}, max_sessions_per_peer=limit
    )


def sid_of(n: int) -> SessionId:
    return SessionId(n.to_bytes(32, "big"))


def sends(effects: list[Any]) -> list[Send]:
    return [e for e in effects if isinstance(e, Send)]


def test_master_runs_and_finishes_and_forgets_the_session() -> None:
    a = core(A)
    sid, effects = a.start(Poke(KEY), ALL)
    assert isinstance(effects[0], Admitted)
    assert {s.to for s in sends(effects)} == {B, C}
    assert a.on_message(B, PokeDone(sid)) == []
    assert a.on_message(C, PokeDone(sid)) == [Finish(sid, "done")]
    assert len(a) == 0
    # a late message of the ended session is only noticed
    assert all(isinstance(e, Notice) for e in a.on_message(B, PokeDone(sid)))


def test_slave_is_created_by_the_initialising_message_and_ends() -> None:
    b = core(B)
    sid = SessionId(b"\x01" * 32)
    effects = b.on_message(A, PokeInit(sid, KEY))
    assert effects[0] == Admitted(sid, False)
    assert Send(A, PokeDone(sid)) in effects
    assert len(b) == 1


def test_factory_refusal_reaches_the_master_with_its_kind() -> None:
    c = core(C)
    sid = SessionId(b"\x02" * 32)
    (reply,) = c.on_message(A, PokeInit(sid, KEY))
    assert reply == Send(A, SessionError(sid, "no such key here", ErrorKind.SERVER_KEY_NOT_FOUND))
    assert len(c) == 0


def test_master_factory_error_is_a_failure_not_an_exception() -> None:
    a = core(A)
    _sid, effects = a.start(Poke(ServerKeyId(b"\x00" * 32)), ALL)
    assert len(effects) == 1 and isinstance(effects[0], Fail)
    assert isinstance(effects[0].error, InvalidRequest)


def test_duplicate_session_id_is_refused_without_touching_the_first() -> None:
    a = core(A)
    sid, _ = a.start(Poke(KEY), ALL)
    first = a.session(sid)
    same, effects = a.start(Poke(KEY), ALL, session_id=sid)
    assert same == sid
    assert len(effects) == 1 and isinstance(effects[0], Fail)
    assert isinstance(effects[0].error, InvalidRequest)
    assert a.session(sid) is first


def test_an_initialising_message_for_a_live_session_goes_to_that_session() -> None:
    b = core(B)
    sid = SessionId(b"\x03" * 32)
    b.on_message(A, PokeInit(sid, KEY))
    live = b.session(sid)
    effects = b.on_message(A, PokeInit(sid, KEY))
    # PokeSession treats it as a protocol violation: no second session was created
    assert any(isinstance(e, Fail) for e in effects)
    assert live is not None and b.session(sid) is None


def test_a_second_writing_session_on_one_key_is_refused() -> None:
    a = core(A)
    first, _ = a.start(Poke(KEY, writes=True), ALL)
    second, effects = a.start(Poke(KEY, writes=True), ALL)
    assert effects == [Fail(second, effects[0].error)]  # type: ignore[union-attr]
    assert isinstance(effects[0].error, InvalidRequest)  # type: ignore[union-attr]
    # after the first ends, the key is free again
    a.on_message(B, PokeDone(first))
    a.on_message(C, PokeDone(first))
    _third, effects = a.start(Poke(KEY, writes=True), ALL)
    assert isinstance(effects[0], Admitted)


def test_peer_error_fails_the_master_and_notifies_the_others() -> None:
    a = core(A)
    sid, _ = a.start(Poke(KEY), ALL)
    effects = a.on_message(B, SessionError(sid, "disk on fire"))
    fail = effects[0]
    assert isinstance(fail, Fail) and isinstance(fail.error, ProtocolViolation)
    assert {s.to for s in sends(effects)} == {B, C}
    assert all(isinstance(s.message, SessionError) for s in sends(effects))


def test_refusal_kind_is_reconstructed_for_the_session() -> None:
    seen: list[SecretStoreError] = []

    class Recording(PokeSession):
        def on_peer_refusal(self, sender: NodeId, error: SecretStoreError) -> list[Effect]:
            seen.append(error)
            return self.fail(error)

    ctx = SessionContext(A, SeededRng(1), ALL)
    a = NodeCore(
        ctx,
        MemoryKeyStorage(),
        {Poke: lambda c, s, r, sh, cn: (Recording(c, s, A, False), [])},
        {},
    )
    sid, _ = a.start(Poke(KEY), ALL)
    kind = ErrorKind.DOCUMENT_KEY_ALREADY_STORED
    effects = a.on_message(B, SessionError(sid, "stored already", kind))
    assert isinstance(seen[0], DocumentKeyAlreadyStored)
    assert isinstance(effects[0], Fail) and isinstance(effects[0].error, DocumentKeyAlreadyStored)
    # the refusal is passed on in the refusing node's name, whatever its text claims
    assert str(seen[0]) == f"node {short(B)}: stored already"
    sid, _ = a.start(Poke(KEY), ALL)
    a.on_message(B, SessionError(sid, f"node {short(C)}: refused", ErrorKind.ACCESS_DENIED))
    assert str(seen[1]) == f"node {short(B)}: node {short(C)}: refused"
    sid, _ = a.start(Poke(KEY), ALL)
    a.on_message(B, SessionError(sid, f"node {short(B)}: has the key", kind))
    assert str(seen[2]) == f"node {short(B)}: has the key"


def test_message_from_a_non_participant_is_only_noticed() -> None:
    a = core(A)
    sid, _ = a.start(Poke(KEY), ALL)
    stranger = KeyPair.generate(SeededRng(99)).node_id
    effects = a.on_message(stranger, PokeDone(sid))
    assert len(effects) == 1 and isinstance(effects[0], Notice)
    assert a.session(sid) is not None


@pytest.mark.parametrize(
    "error",
    [
        AccessDenied("x"),
        DocumentKeyAlreadyStored("x"),
        ServerKeyNotFound("x"),
        InvalidRequest("x"),
        SessionLimitReached("x"),
    ],
)
def test_kinds_round_trip(error: SecretStoreError) -> None:
    back = error_of(kind_of(error), "x")
    assert type(back) is type(error)


def test_generic_errors_have_no_client_meaning() -> None:
    assert kind_of(ProtocolViolation("n", "w")) is ErrorKind.GENERIC
    assert error_of(ErrorKind.GENERIC, "x") is None


def test_a_peer_s_timeout_reaches_its_own_hook_and_is_no_refusal() -> None:
    assert kind_of(SessionTimeout("did not answer", "1a2b3c4d")) is ErrorKind.TIMED_OUT
    assert error_of(ErrorKind.TIMED_OUT, "x") is None
    seen: list[tuple[NodeId, str]] = []

    class Recording(PokeSession):
        def on_peer_timeout(self, sender: NodeId, reason: str) -> list[Effect]:
            seen.append((sender, reason))
            return []

    ctx = SessionContext(A, SeededRng(1), ALL)
    a = NodeCore(
        ctx, MemoryKeyStorage(), {Poke: lambda c, s, r, sh, cn: (Recording(c, s, A, False), [])}, {}
    )
    sid, _ = a.start(Poke(KEY), ALL)
    assert a.on_message(B, SessionError(sid, "node C: did not answer", ErrorKind.TIMED_OUT)) == []
    assert seen == [(B, "node C: did not answer")] and a.session(sid) is not None
    # a session without the hook treats it as any peer error
    b = core(A)
    sid, _ = b.start(Poke(KEY), ALL)
    (fail, *_) = b.on_message(B, SessionError(sid, "node C: did not answer", ErrorKind.TIMED_OUT))
    assert isinstance(fail, Fail) and isinstance(fail.error, ProtocolViolation)


def test_abort_fails_a_live_session_and_tells_the_others() -> None:
    a = core(A)
    sid, _ = a.start(Poke(KEY), ALL)
    effects = a.abort(sid, StorageError("disk full"))
    assert isinstance(effects[0], Fail) and isinstance(effects[0].error, StorageError)
    assert {s.to for s in sends(effects)} == {B, C}
    assert a.session(sid) is None
    assert a.abort(sid, StorageError("again")) == []


# --- exclusive sessions ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Exclusive:
    key_id: ServerKeyId = KEY


class ExclusiveSession(Session):
    """Finishes when told; records when it was drained."""

    EXCLUSIVE = True

    def __init__(self, ctx: SessionContext, sid: SessionId) -> None:
        super().__init__(ctx, sid, ctx.self_id, KEY)
        self.drained = 0

    @property
    def participants(self) -> frozenset[NodeId]:
        return frozenset({self.ctx.self_id})

    def on_message(self, sender: NodeId, msg: object) -> list[Effect]:
        return []

    def on_drained(self) -> list[Effect]:
        self.drained += 1
        return []


def exclusive_core(node: NodeId) -> NodeCore:
    def start_exclusive(
        ctx: SessionContext, sid: SessionId, req: Any, share: Any, conn: Any
    ) -> tuple[Session, list[Effect]]:
        return ExclusiveSession(ctx, sid), []

    ctx = SessionContext(node, SeededRng(node), ALL)
    return NodeCore(
        ctx,
        MemoryKeyStorage(),
        {Poke: start_poke, Exclusive: start_exclusive},
        {PokeInit: join_poke},
    )


def test_an_exclusive_session_waits_for_running_ones_and_blocks_new_ones() -> None:
    a = exclusive_core(A)
    poke, _ = a.start(Poke(KEY), ALL)
    sid, _ = a.start(Exclusive(), ALL)
    exclusive = a.exclusive_session
    assert isinstance(exclusive, ExclusiveSession) and exclusive.session_id == sid
    assert exclusive.drained == 0  # the poke still runs
    # no new session, master or slave, while the exclusive one is in the table
    _, refused = a.start(Poke(KEY), ALL)
    assert [type(e) for e in refused] == [Fail]
    assert refused[0].error.__class__.__name__ == "ExclusiveSessionActive"  # type: ignore[union-attr]
    slave = a.on_message(B, PokeInit(SessionId(b"\x09" * 32), KEY))
    assert len(slave) == 1 and isinstance(slave[0], Send)
    assert slave[0].message.kind == ErrorKind.EXCLUSIVE_SESSION_ACTIVE
    # the running poke goes on and ends; then the exclusive session is drained, once
    a.on_message(B, PokeDone(poke))
    a.on_message(C, PokeDone(poke))
    assert exclusive.drained == 1
    assert len(a) == 1
    # once it ends, sessions start again
    a.on_timeout(sid)
    assert a.exclusive_session is None
    _, again = a.start(Poke(KEY), ALL)
    assert isinstance(again[0], Admitted)


def test_an_exclusive_session_on_an_idle_node_is_drained_at_once() -> None:
    a = exclusive_core(A)
    a.start(Exclusive(), ALL)
    exclusive = a.exclusive_session
    assert isinstance(exclusive, ExclusiveSession) and exclusive.drained == 1
    # a second exclusive session is refused like any other
    _, refused = a.start(Exclusive(), ALL)
    assert isinstance(refused[0], Fail)


def test_a_changed_node_set_reaches_new_sessions() -> None:
    a = exclusive_core(A)
    a.set_cluster_nodes(frozenset({A, B}))
    assert a.ctx.cluster_nodes == frozenset({A, B})


# --- the session limit per peer -----------------------------------------------------------


def test_a_peer_over_its_session_limit_is_refused_before_any_slave_is_made() -> None:
    joined: list[SessionId] = []
    b = limited_core(B, 2, joined)
    for n in (1, 2):
        assert isinstance(b.on_message(A, PokeInit(sid_of(n), KEY))[0], Admitted)
    effects = b.on_message(A, PokeInit(sid_of(3), KEY))
    assert not any(isinstance(e, Admitted) for e in effects)
    (refusal,) = sends(effects)
    assert refusal.to == A
    assert isinstance(refusal.message, SessionError)
    assert refusal.message.session_id == sid_of(3)
    assert refusal.message.kind is ErrorKind.SESSION_LIMIT
    reason = refusal.message.reason
    assert f"node {B[:4].hex()}" in reason and f"node {A[:4].hex()}" in reason
    assert "2 sessions" in reason and "the limit is 2" in reason
    assert joined == [sid_of(1), sid_of(2)]  # the factory never ran for the refused one
    assert len(b) == 2 and b.session(sid_of(3)) is None
    assert b.sessions_of(A) == 2


def test_other_masters_are_not_limited_by_one_peer() -> None:
    b = limited_core(B, 2)
    for n in range(1, 10):
        b.on_message(A, PokeInit(sid_of(n), KEY))
    assert b.sessions_of(A) == 2
    assert isinstance(b.on_message(C, PokeInit(sid_of(100), KEY))[0], Admitted)
    assert isinstance(b.on_message(C, PokeInit(sid_of(101), KEY))[0], Admitted)
    assert b.sessions_of(C) == 2 and len(b) == 4


def test_sessions_this_node_masters_are_not_counted() -> None:
    a = limited_core(A, 1)
    for _ in range(5):
        _sid, effects = a.start(Poke(KEY), ALL)
        assert isinstance(effects[0], Admitted)
    assert len(a) == 5 and a.sessions_of(A) == 0
    assert isinstance(a.on_message(B, PokeInit(sid_of(1), KEY))[0], Admitted)


def test_a_slave_that_ends_at_once_holds_no_slot() -> None:
    b = NodeCore(
        SessionContext(B, SeededRng(2), ALL),
        MemoryKeyStorage(),
        {},
        {PokeInit: lambda ctx, s, m, sh: _ended(ctx, s, m)},
        max_sessions_per_peer=1,
    )
    for n in range(5):
        effects = b.on_message(A, PokeInit(sid_of(n), KEY))
        assert Finish(sid_of(n), None) in effects
    assert b.sessions_of(A) == 0 and len(b) == 0


def _ended(ctx: SessionContext, sender: NodeId, msg: Any) -> tuple[Session, list[Effect]]:
    session = PokeSession(ctx, msg.session_id, sender, writes=False)
    return session, session.finish()


ENDINGS = {
    "finish": lambda core, sid: core.on_message(A, PokeDone(sid)),
    "master's error": lambda core, sid: core.on_message(A, SessionError(sid, "gave up")),
    "abort": lambda core, sid: core.abort(sid, StorageError("disk full")),
    "timeout": lambda core, sid: core.on_timeout(sid),
    "disconnect": lambda core, sid: core.on_node_disconnected(A),
    "protocol violation": lambda core, sid: core.on_message(A, PokeInit(sid, KEY)),
}


@pytest.mark.parametrize("ending", sorted(ENDINGS))
def test_every_way_a_session_ends_frees_its_slot(ending: str) -> None:
    b = limited_core(B, 1)
    b.on_message(A, PokeInit(sid_of(1), KEY))
    refused = sends(b.on_message(A, PokeInit(sid_of(2), KEY)))
    assert isinstance(refused[0].message, SessionError)
    assert refused[0].message.kind is ErrorKind.SESSION_LIMIT
    ENDINGS[ending](b, sid_of(1))
    assert b.session(sid_of(1)) is None
    assert b.sessions_of(A) == 0
    assert isinstance(b.on_message(A, PokeInit(sid_of(3), KEY))[0], Admitted)
    assert b.sessions_of(A) == 1


def test_a_refusal_is_noticed_once_per_burst() -> None:
    b = limited_core(B, 4)
    for n in range(4):
        b.on_message(A, PokeInit(sid_of(n), KEY))
    notices = [
        e for n in range(10, 60) for e in b.on_message(A, PokeInit(sid_of(n), KEY))
        if isinstance(e, Notice)
    ]  # fmt: skip
    assert len(notices) == 1
    assert A[:4].hex() in notices[0].text and "the limit is 4" in notices[0].text
    # one session ends: still over half the limit, so the burst goes on
    assert not any(isinstance(e, Notice) for e in b.on_message(A, PokeDone(sid_of(0))))
    refused = b.on_message(A, PokeInit(sid_of(61), KEY))
    assert isinstance(refused[0], Admitted)  # a free slot was used again
    assert not any(isinstance(e, Notice) for e in b.on_message(A, PokeInit(sid_of(62), KEY)))
    # down to half the limit: the burst ends, with the count of refusals
    b.on_message(A, PokeDone(sid_of(1)))
    (summary,) = [e for e in b.on_message(A, PokeDone(sid_of(2))) if isinstance(e, Notice)]
    assert summary.text.endswith("; 51 of its sessions were refused"), summary.text
    # a new burst is noticed again, once
    again = [
        e for n in range(70, 90) for e in b.on_message(A, PokeInit(sid_of(n), KEY))
        if isinstance(e, Notice)
    ]  # fmt: skip
    assert len(again) == 1 and "refusing new sessions" in again[0].text
    assert b.sessions_of(A) == 4


def test_with_a_limit_of_one_every_burst_is_noticed() -> None:
    b = limited_core(B, 1)
    b.on_message(A, PokeInit(sid_of(1), KEY))
    first = b.on_message(A, PokeInit(sid_of(2), KEY))
    assert isinstance(first[0], Notice)
    ended = b.on_message(A, PokeDone(sid_of(1)))
    assert any(isinstance(e, Notice) and "1 of its sessions" in e.text for e in ended)
    b.on_message(A, PokeInit(sid_of(3), KEY))
    second = b.on_message(A, PokeInit(sid_of(4), KEY))
    assert isinstance(second[0], Notice)


def test_the_master_gets_the_refusal_as_session_limit_reached() -> None:
    seen: list[SecretStoreError] = []

    class Recording(PokeSession):
        def on_peer_refusal(self, sender: NodeId, error: SecretStoreError) -> list[Effect]:
            seen.append(error)
            return self.fail(error)

    a = NodeCore(
        SessionContext(A, SeededRng(1), ALL),
        MemoryKeyStorage(),
        {Poke: lambda c, s, r, sh, cn: (Recording(c, s, A, False), s_init(c, s))},
        {},
    )
    b = limited_core(B, 1)
    b.on_message(A, PokeInit(sid_of(1), KEY))
    _sid, effects = a.start(Poke(KEY), ALL)
    init = next(e.message for e in sends(effects) if e.to == B)
    (refusal,) = sends(b.on_message(A, init))
    outcome = a.on_message(B, refusal.message)
    assert isinstance(seen[0], SessionLimitReached)
    assert B[:4].hex() in str(seen[0])
    assert isinstance(outcome[0], Fail) and isinstance(outcome[0].error, SessionLimitReached)


def s_init(ctx: SessionContext, sid: SessionId) -> list[Effect]:
    return [Send(node, PokeInit(sid, KEY)) for node in sorted(ALL - {ctx.self_id})]


def test_a_limit_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="max_sessions_per_peer"):
        limited_core(B, 0)


def test_timeout_of_a_refused_session_id_is_harmless() -> None:
    b = limited_core(B, 1)
    b.on_message(A, PokeInit(sid_of(1), KEY))
    b.on_message(A, PokeInit(sid_of(2), KEY))
    assert b.on_timeout(sid_of(2)) == []
    assert b.sessions_of(A) == 1


def test_the_session_tables_merge_and_refuse_a_kind_claimed_twice() -> None:
    from secretstore.sessions import registry

    merged = registry._merge([{Poke: start_poke}, {PokeInit: join_poke}, {Poke: start_poke}])
    assert merged == {Poke: start_poke, PokeInit: join_poke}
    with pytest.raises(RuntimeError, match="Poke is claimed by two sessions"):
        registry._merge([{Poke: start_poke}, {Poke: join_poke}])
    assert registry.MASTERS and registry.SLAVES
