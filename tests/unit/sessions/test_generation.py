"""GenerationSession fed by hand: factories, each phase, every rejection path, the author each
node recovers itself and the context every DKG message carries."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from secretstore.crypto.curve import Point, Scalar
from secretstore.crypto.keys import KeyPair, sign_recoverable
from secretstore.errors import (
    ConsensusUnreachable,
    InvalidRequest,
    NodeDisconnected,
    ProtocolViolation,
    ServerKeyAlreadyGenerated,
    SessionTimeout,
)
from secretstore.sessions.base import Effect, Fail, Finish, Persist, Send, SessionContext, short
from secretstore.sessions.generation import (
    GenerateServerKey,
    GenerationPhase,
    GenerationSession,
    generation_context,
    join_generation,
    start_generation,
)
from secretstore.storage.model import KeyShare
from secretstore.types import Hash256, NodeId, ServerKeyId, SessionId
from secretstore.wire.dkg import DkgAgreement, DkgKeys
from secretstore.wire.generation import (
    CommitGeneration,
    ConfirmGenerationInitialization,
    GenerationDkg,
    GenerationKeyReady,
    GenerationKeyStored,
    InitializeGeneration,
    NodeIdNumber,
    StartKeysDissemination,
)
from secretstore.wire.requester import RequesterProof
from tests.unit.sessions.hand_feeding import contexts, pump, sends

SID = SessionId(b"\x05" * 32)
KEY = ServerKeyId(b"\x07" * 32)
AUTHOR_KEY = KeyPair.from_secret(Scalar(0x0A))
AUTHOR = AUTHOR_KEY.address
PROOF = RequesterProof.signature(sign_recoverable(AUTHOR_KEY.secret, KEY))
OTHER_POINT = Point.base_mul(Scalar(99))
NO_CONTEXT = Hash256(bytes(32))


def request(threshold: int = 1) -> GenerateServerKey:
    return GenerateServerKey(KEY, PROOF, threshold)


def a_share(ctx: SessionContext) -> KeyShare:
    ids = {node: Scalar(i + 1) for i, node in enumerate(sorted(ctx.cluster_nodes))}
    return KeyShare.from_generation(AUTHOR, 0, OTHER_POINT, ids, Scalar(5))


def master_of(
    n: int = 3, threshold: int = 1
) -> tuple[list[SessionContext], GenerationSession, list[Effect]]:
    ctxs = contexts(n)
    session, effects = start_generation(
        ctxs[0], SID, request(threshold), None, ctxs[0].cluster_nodes
    )
    assert isinstance(session, GenerationSession)
    return ctxs, session, effects


def init_of(effects: list[Effect]) -> InitializeGeneration:
    message = sends(effects)[0].message
    assert isinstance(message, InitializeGeneration)
    return message


def slave_of(
    ctxs: list[SessionContext], index: int, init: InitializeGeneration
) -> GenerationSession:
    session, effects = join_generation(ctxs[index], ctxs[0].self_id, init, None)
    assert isinstance(session, GenerationSession)
    assert effects == [Send(ctxs[0].self_id, ConfirmGenerationInitialization(SID, False))]
    return session


def failed_with(effects: list[Effect], error: type[Exception]) -> Exception:
    assert len(effects) == 1 and isinstance(effects[0], Fail), effects
    assert isinstance(effects[0].error, error)
    return effects[0].error


# --- the master factory ----------------------------------------------------------------------


def test_master_initialises_every_node_with_distinct_id_numbers() -> None:
    ctxs, session, effects = master_of(4, 2)
    assert [s.to for s in sends(effects)] == [c.self_id for c in ctxs[1:]]
    init = init_of(effects)
    assert all(s.message == init for s in sends(effects))
    assert init.key_id == KEY and init.author == PROOF and init.threshold == 2
    assert [e.node for e in init.id_numbers] == [c.self_id for c in ctxs]
    numbers = [e.id_number for e in init.id_numbers]
    assert len(set(numbers)) == 4 and not any(x.is_zero() for x in numbers)
    assert session.phase is GenerationPhase.WAITING_FOR_CONFIRMATIONS
    assert session.participants == ctxs[0].cluster_nodes and session.WRITES_KEY


@pytest.mark.parametrize("threshold", [-1, 3, 10, True])
def test_master_rejects_thresholds_outside_0_to_n_minus_1(threshold: Any) -> None:
    ctx = contexts(3)[0]
    with pytest.raises(InvalidRequest):
        start_generation(ctx, SID, request(threshold), None, ctx.cluster_nodes)


def test_master_with_the_key_refuses() -> None:
    ctx = contexts(3)[0]
    with pytest.raises(ServerKeyAlreadyGenerated):
        start_generation(ctx, SID, request(), a_share(ctx), ctx.cluster_nodes)


def test_master_needs_every_configured_node() -> None:
    ctxs = contexts(3)
    connected = frozenset({ctxs[0].self_id, ctxs[1].self_id})
    with pytest.raises(ConsensusUnreachable):
        start_generation(ctxs[0], SID, request(), None, connected)


def test_single_node_master_persists_and_finishes_at_once() -> None:
    ctx = contexts(1)[0]
    _, effects = start_generation(ctx, SID, request(0), None, ctx.cluster_nodes)
    persist, finish = effects
    assert isinstance(persist, Persist) and persist.create and persist.key_id == KEY
    assert isinstance(finish, Finish) and finish.result == persist.share.public
    assert Point.base_mul(persist.share.last_version().secret_share) == finish.result


# --- the slave factory -------------------------------------------------------------------------


def test_slave_with_the_key_refuses_and_ends() -> None:
    ctxs, _, effects = master_of()
    session, reply = join_generation(ctxs[1], ctxs[0].self_id, init_of(effects), a_share(ctxs[1]))
    assert reply[0] == Send(ctxs[0].self_id, ConfirmGenerationInitialization(SID, True))
    assert isinstance(reply[1], Finish) and session.finished


def test_slave_rejects_a_node_set_other_than_its_configuration() -> None:
    ctxs, _, effects = master_of()
    init = init_of(effects)
    fewer = InitializeGeneration(SID, KEY, PROOF, 1, init.id_numbers[:2])
    with pytest.raises(ProtocolViolation, match="configuration"):
        join_generation(ctxs[1], ctxs[0].self_id, fewer, None)
    twice = InitializeGeneration(SID, KEY, PROOF, 1, (*init.id_numbers, init.id_numbers[0]))
    with pytest.raises(ProtocolViolation, match="twice"):
        join_generation(ctxs[1], ctxs[0].self_id, twice, None)


def test_slave_rejects_a_bad_threshold_or_repeated_id_numbers() -> None:
    ctxs, _, effects = master_of()
    init = init_of(effects)
    with pytest.raises(InvalidRequest):
        join_generation(
            ctxs[1],
            ctxs[0].self_id,
            InitializeGeneration(SID, KEY, PROOF, 3, init.id_numbers),
            None,
        )
    same = tuple(NodeIdNumber(e.node, Scalar(4)) for e in init.id_numbers)
    with pytest.raises(InvalidRequest):
        join_generation(
            ctxs[1], ctxs[0].self_id, InitializeGeneration(SID, KEY, PROOF, 1, same), None
        )


# --- the master's phases -------------------------------------------------------------------------


def test_master_starts_the_dkg_when_every_node_confirmed() -> None:
    ctxs, session, _ = master_of()
    assert session.on_message(ctxs[1].self_id, ConfirmGenerationInitialization(SID, False)) == []
    effects = session.on_message(ctxs[2].self_id, ConfirmGenerationInitialization(SID, False))
    starts = [s for s in sends(effects) if isinstance(s.message, StartKeysDissemination)]
    dealt = [s for s in sends(effects) if isinstance(s.message, GenerationDkg)]
    assert [s.to for s in starts] == [c.self_id for c in ctxs[1:]]
    assert [s.to for s in dealt] == [c.self_id for c in ctxs[1:]]
    assert all(
        isinstance(s.message, GenerationDkg) and isinstance(s.message.message, DkgKeys)
        for s in dealt
    )
    assert session.phase is GenerationPhase.WAITING_FOR_DKG


def test_master_fails_when_a_node_holds_the_key() -> None:
    ctxs, session, _ = master_of()
    effects = session.on_message(ctxs[2].self_id, ConfirmGenerationInitialization(SID, True))
    error = failed_with(effects, ServerKeyAlreadyGenerated)
    assert short(ctxs[2].self_id) in str(error)


@pytest.mark.parametrize(
    "message",
    [
        StartKeysDissemination(SID),
        GenerationDkg(SID, NO_CONTEXT, DkgAgreement(bytes(32))),  # type: ignore[arg-type]
        GenerationKeyReady(SID, OTHER_POINT),
        GenerationKeyStored(SID),
        CommitGeneration(SID),
        InitializeGeneration(SID, KEY, PROOF, 1, ()),
    ],
)
def test_master_rejects_messages_out_of_turn(message: object) -> None:
    ctxs, session, _ = master_of()
    error = failed_with(session.on_message(ctxs[1].self_id, message), ProtocolViolation)
    assert short(ctxs[1].self_id) in str(error)


def test_master_rejects_a_second_confirmation() -> None:
    ctxs, session, _ = master_of()
    session.on_message(ctxs[1].self_id, ConfirmGenerationInitialization(SID, False))
    failed_with(
        session.on_message(ctxs[1].self_id, ConfirmGenerationInitialization(SID, False)),
        ProtocolViolation,
    )


# --- the slave's phases ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "message",
    [
        ConfirmGenerationInitialization(SID, False),
        GenerationKeyReady(SID, OTHER_POINT),
        CommitGeneration(SID),
        GenerationKeyStored(SID),
        "not a message",
    ],
)
def test_slave_rejects_messages_out_of_turn(message: object) -> None:
    ctxs, _, effects = master_of()
    slave = slave_of(ctxs, 1, init_of(effects))
    failed_with(slave.on_message(ctxs[0].self_id, message), ProtocolViolation)


def test_slave_takes_the_start_from_the_master_only_and_once() -> None:
    ctxs, _, effects = master_of()
    slave = slave_of(ctxs, 1, init_of(effects))
    failed_with(slave.on_message(ctxs[2].self_id, StartKeysDissemination(SID)), ProtocolViolation)
    slave = slave_of(ctxs, 1, init_of(effects))
    dealt = slave.on_message(ctxs[0].self_id, StartKeysDissemination(SID))
    assert len(sends(dealt)) == 2 and slave.phase is GenerationPhase.WAITING_FOR_DKG
    failed_with(slave.on_message(ctxs[0].self_id, StartKeysDissemination(SID)), ProtocolViolation)


def test_a_dkg_dealing_waits_for_the_whole_round() -> None:
    ctxs, _, effects = master_of()
    slave = slave_of(ctxs, 1, init_of(effects))
    bad = DkgKeys(Scalar(1), Scalar(2), (OTHER_POINT, OTHER_POINT))
    # the dealings are checked together once every dealer's is in
    assert slave.on_message(ctxs[2].self_id, GenerationDkg(SID, slave.context, bad)) == []  # type: ignore[arg-type]


def test_a_bad_dealing_fails_its_receiver_naming_the_dealer() -> None:
    def bad_keys(sender: NodeId, send: Send) -> Send:
        message = send.message
        link = (sender, send.to) == (ctxs[2].self_id, ctxs[1].self_id)
        if link and isinstance(message, GenerationDkg) and isinstance(message.message, DkgKeys):
            bad = DkgKeys(Scalar(1), Scalar(2), message.message.publics)
            return Send(send.to, GenerationDkg(SID, message.context, bad))
        return send

    ctxs = contexts(3)
    _, produced, _ = run_by_hand(3, 1, bad_keys)
    failures = [e for e in produced[ctxs[1].self_id] if isinstance(e, Fail)]
    assert len(failures) == 1 and isinstance(failures[0].error, ProtocolViolation)
    assert short(ctxs[2].self_id) in str(failures[0].error)
    assert not any(isinstance(e, Persist) for effects in produced.values() for e in effects)


def test_disconnect_peer_error_and_timeout_fail() -> None:
    ctxs, session, _ = master_of()
    failed_with(session.on_node_disconnected(ctxs[1].self_id), NodeDisconnected)
    ctxs, session, _ = master_of()
    failed_with(session.on_peer_error(ctxs[2].self_id, "broken"), ProtocolViolation)
    ctxs, session, _ = master_of()
    failed_with(session.on_timeout(), SessionTimeout)


def test_a_timeout_names_the_nodes_the_session_waits_for() -> None:
    ctxs, session, effects = master_of()
    ids = [ctx.self_id for ctx in ctxs]
    init = init_of(effects)
    assert session.on_message(ids[1], ConfirmGenerationInitialization(SID, False)) == []
    error = failed_with(session.on_timeout(), SessionTimeout)
    assert isinstance(error, SessionTimeout) and error.node == short(ids[2])
    slave = slave_of(ctxs, 1, init)
    error = failed_with(slave.on_timeout(), SessionTimeout)  # waiting for the master's start
    assert isinstance(error, SessionTimeout) and error.node == short(ids[0])


def test_a_master_keeps_timeout_reports_until_every_node_it_waits_for_reported() -> None:
    ctxs, session, _ = master_of(4, 2)
    ids = [ctx.self_id for ctx in ctxs]
    assert session.on_message(ids[1], ConfirmGenerationInitialization(SID, False)) == []
    # it waits for nodes 2 and 3; node 1's report (it waited for the master) changes nothing
    assert session.on_peer_timeout(ids[1], f"node {short(ids[0])}: did not answer") == []
    assert session.on_peer_timeout(ids[2], f"node {short(ids[3])}: did not answer") == []
    assert not session.finished
    error = failed_with(
        session.on_peer_timeout(ids[3], f"node {short(ids[2])}: did not answer"), SessionTimeout
    )
    assert isinstance(error, SessionTimeout)
    assert error.node == f"{short(ids[2])}, {short(ids[3])}"
    for reporter in ids[1:]:
        assert f"node {short(reporter)} timed out first" in error.what
    ctxs, session, _ = master_of(4, 2)  # or its own clock ends it, with what came
    session.on_peer_timeout(ids[2], f"node {short(ids[3])}: did not answer")
    error = failed_with(session.on_timeout(), SessionTimeout)
    assert f"node {short(ids[2])} timed out first: node {short(ids[3])}" in str(error)


def test_a_timeout_in_the_dkg_names_the_dealers_whose_round_is_missing() -> None:
    ctxs, master, effects = master_of()
    ids = [ctx.self_id for ctx in ctxs]
    slave = slave_of(ctxs, 1, init_of(effects))
    master.on_message(ids[1], ConfirmGenerationInitialization(SID, False))
    dealt = master.on_message(ids[2], ConfirmGenerationInitialization(SID, False))
    slave.on_message(ids[0], StartKeysDissemination(SID))
    (keys,) = [
        s.message for s in sends(dealt) if s.to == ids[1] and isinstance(s.message, GenerationDkg)
    ]
    assert slave.on_message(ids[0], keys) == []  # the master's keys; node 2's are missing
    assert slave.waiting_for() == {ids[2]}
    error = failed_with(slave.on_timeout(), SessionTimeout)
    assert str(error) == f"node {short(ids[2])}: did not answer before the session timed out"


# --- a whole run fed by hand ---------------------------------------------------------------------


Tamper = Any


def run_by_hand(
    n: int, threshold: int, tamper: Tamper = None
) -> tuple[list[SessionContext], dict[NodeId, list[Effect]], GenerationSession]:
    ctxs, master, effects = master_of(n, threshold)
    sessions: dict[NodeId, Any] = {ctxs[0].self_id: master}
    by_node = {c.self_id: c for c in ctxs}

    def make_slave(ctx: SessionContext, sender: NodeId, message: Any) -> Any:
        return join_generation(ctx, sender, message, None)

    pending = [(ctxs[0].self_id, s) for s in sends(effects)]
    return ctxs, pump(sessions, pending, by_node, make_slave, tamper), master


def test_whole_run_commits_after_every_node_is_ready() -> None:
    ctxs, produced, master = run_by_hand(3, 1)
    assert master.phase is GenerationPhase.FINISHED and master.public is not None
    own_persist, own_finish = produced[ctxs[0].self_id]
    assert isinstance(own_persist, Persist) and own_persist.create
    assert own_persist.share.public == master.public
    assert own_finish == Finish(SID, master.public)
    for ctx in ctxs[1:]:
        persist, finish = produced[ctx.self_id]
        assert isinstance(persist, Persist) and persist.create and persist.key_id == KEY
        assert persist.share.public == master.public
        assert persist.share.author == AUTHOR and persist.share.threshold == 1
        assert finish == Finish(SID, master.public)  # each node knows the public


def test_master_commits_after_ready_and_finishes_after_stored() -> None:
    seen: list[tuple[NodeId, object]] = []

    def spy(sender: NodeId, send: Send) -> Send:
        seen.append((sender, send.message))
        return send

    _, produced, master = run_by_hand(2, 0, spy)
    kinds = [type(m).__name__ for _, m in seen]
    assert kinds.index("GenerationKeyReady") < kinds.index("CommitGeneration")
    assert kinds[-1] == "GenerationKeyStored"
    assert produced[master.ctx.self_id][-1] == Finish(SID, master.public)


def test_master_rejects_a_ready_with_another_public() -> None:
    def lie(sender: NodeId, send: Send) -> Send:
        if isinstance(send.message, GenerationKeyReady):
            return Send(send.to, GenerationKeyReady(SID, OTHER_POINT))
        return send

    ctxs, produced, _ = run_by_hand(3, 1, lie)
    failures = [e for e in produced[ctxs[0].self_id] if isinstance(e, Fail)]
    assert len(failures) == 1 and isinstance(failures[0].error, ProtocolViolation)
    assert "another public" in str(failures[0].error)
    assert not any(isinstance(e, Persist) for effects in produced.values() for e in effects)


def test_master_rejects_a_ready_twice_and_stored_before_commit() -> None:
    ctxs, session, _ = master_of(3, 1)
    for ctx in ctxs[1:]:
        session.on_message(ctx.self_id, ConfirmGenerationInitialization(SID, False))
    assert session.on_message(ctxs[1].self_id, GenerationKeyReady(SID, OTHER_POINT)) == []
    failed_with(
        session.on_message(ctxs[1].self_id, GenerationKeyReady(SID, OTHER_POINT)),
        ProtocolViolation,
    )
    ctxs, session, _ = master_of(3, 1)
    for ctx in ctxs[1:]:
        session.on_message(ctx.self_id, ConfirmGenerationInitialization(SID, False))
    failed_with(session.on_message(ctxs[2].self_id, GenerationKeyStored(SID)), ProtocolViolation)


# --- the author: every node recovers it; every DKG message says what it generates for ----------


def test_every_node_records_the_author_it_recovered_itself() -> None:
    ctxs, session, effects = master_of()
    assert session.author == AUTHOR
    slave = slave_of(ctxs, 1, init_of(effects))
    assert slave.author == AUTHOR and slave.context == session.context
    # a proof made by another key makes that key's address the author there: another context
    other = KeyPair.from_secret(Scalar(0x0B))
    forged = replace(
        init_of(effects), author=RequesterProof.signature(sign_recoverable(other.secret, KEY))
    )
    slave = slave_of(ctxs, 2, forged)
    assert slave.author == other.address and slave.context != session.context


def test_a_proof_that_recovers_nothing_is_refused_by_master_and_slaves() -> None:
    ctxs, _, effects = master_of()
    unusable = RequesterProof.signature(bytes(64) + b"\x00")
    with pytest.raises(InvalidRequest):
        join_generation(ctxs[1], ctxs[0].self_id, replace(init_of(effects), author=unusable), None)
    with pytest.raises(InvalidRequest):
        start_generation(
            ctxs[0], SID, GenerateServerKey(KEY, unusable, 1), None, ctxs[0].cluster_nodes
        )


def test_the_context_binds_key_author_threshold_and_id_numbers() -> None:
    ids = {NodeId(bytes([i]) * 64): Scalar(i) for i in (1, 2, 3)}
    base = generation_context(KEY, AUTHOR, 1, ids)
    assert base == generation_context(KEY, AUTHOR, 1, dict(reversed(ids.items())))
    changed = [
        generation_context(ServerKeyId(b"\x08" * 32), AUTHOR, 1, ids),
        generation_context(KEY, KeyPair.from_secret(Scalar(3)).address, 1, ids),
        generation_context(KEY, AUTHOR, 2, ids),
        generation_context(KEY, AUTHOR, 1, {**ids, NodeId(b"\x01" * 64): Scalar(9)}),
    ]
    assert base not in changed and len(set(changed)) == len(changed)


def test_a_dkg_message_with_another_context_fails_the_session_and_names_its_sender() -> None:
    ctxs, _, effects = master_of()
    slave = slave_of(ctxs, 1, init_of(effects))
    slave.on_message(ctxs[0].self_id, StartKeysDissemination(SID))
    keys = DkgKeys(Scalar(1), Scalar(2), (OTHER_POINT, OTHER_POINT))
    error = failed_with(
        slave.on_message(ctxs[2].self_id, GenerationDkg(SID, NO_CONTEXT, keys)),  # type: ignore[arg-type]
        ProtocolViolation,
    )
    assert short(ctxs[2].self_id) in str(error) and "another author" in str(error)


def test_a_master_that_tells_nodes_different_authors_gets_nothing_stored() -> None:
    other = KeyPair.from_secret(Scalar(0x0C))
    other_proof = RequesterProof.signature(sign_recoverable(other.secret, KEY))
    target: list[NodeId] = []

    def two_stories(sender: NodeId, send: Send) -> Send:
        message = send.message
        if isinstance(message, InitializeGeneration) and send.to == target[0]:
            return Send(send.to, replace(message, author=other_proof))
        return send

    ctxs = contexts(3)
    target.append(ctxs[2].self_id)
    _, produced, master = run_by_hand(3, 1, two_stories)
    assert master.finished
    assert not any(isinstance(e, Persist) for effects in produced.values() for e in effects)
    failures = [e for effects in produced.values() for e in effects if isinstance(e, Fail)]
    assert failures and all(isinstance(f.error, ProtocolViolation) for f in failures)
