"""Decryption sessions fed by hand: the first group asked with the job (one round trip), the
others asked when it cannot serve, re-selection, every rejection path."""

from __future__ import annotations

from dataclasses import dataclass, replace

import pytest

from secretstore.client.verify import DocumentKeyShadow, verify_document_key_shadow
from secretstore.crypto.curve import ZERO, Point, Scalar
from secretstore.crypto.document import decrypt_with_shadow_coefficients
from secretstore.crypto.ecies import ecies_decrypt
from secretstore.crypto.keys import KeyPair, sign_recoverable
from secretstore.crypto.rng import SeededRng
from secretstore.errors import (
    AccessDenied,
    ConsensusUnreachable,
    DecryptionError,
    DocumentKeyNotFound,
    InvalidRequest,
    PlainRetrievalRefused,
    ProtocolViolation,
    ServerKeyNotFound,
)
from secretstore.sessions.base import (
    CheckAccess,
    Effect,
    Fail,
    Finish,
    Send,
    SessionContext,
    Wake,
    short,
)
from secretstore.sessions.decryption import (
    ASK_OTHERS_AFTER,
    DECRYPT_SHADOW_LENGTH,
    MASTERS,
    SLAVES,
    DecryptionMaster,
    DecryptionPhase,
    DecryptionSlave,
    RetrieveDocumentKey,
    ShadowResult,
    compute_job_response,
    join_decryption,
    start_decryption,
)
from secretstore.storage.model import KeyShare
from secretstore.types import NodeId, ServerKeyId, SessionId
from secretstore.wire import codec
from secretstore.wire.common import SessionError, error_of, kind_of
from secretstore.wire.consensus import AccessRequest, ConsensusCompleted, ConsensusResponse
from secretstore.wire.decryption import (
    DecryptionJob,
    DecryptionJobRequest,
    DecryptionJobResponse,
    DecryptionRequest,
)
from tests.sim.dealer import DealtKey, deal_key

SID = SessionId(b"\x05" * 32)
KEY_ID = ServerKeyId(b"\x07" * 32)


@dataclass
class Setup:
    node_keys: list[KeyPair]
    key: DealtKey
    requester: KeyPair
    signature: bytes

    @property
    def nodes(self) -> list[NodeId]:
        return [k.node_id for k in self.node_keys]

    def ctx(self, i: int, seed: int = 0) -> SessionContext:
        return SessionContext(self.nodes[i], SeededRng(seed * 100 + i), frozenset(self.nodes))

    def share(self, i: int) -> KeyShare:
        return self.key.shares[self.nodes[i]]

    def start(
        self,
        shadow: bool = False,
        connected: list[NodeId] | None = None,
        group: tuple[int, ...] | None = None,
    ) -> tuple[DecryptionMaster, list[Effect]]:
        """The master (node 0) started; `group`: the indexes of the nodes its first group
        must hold (a master seed is searched for that picks them)."""
        request = RetrieveDocumentKey(KEY_ID, self.signature, shadow)
        online = frozenset(self.nodes if connected is None else connected)
        wanted = None if group is None else tuple(sorted(self.nodes[i] for i in (0, *group)))
        for seed in range(500):
            session, effects = start_decryption(
                self.ctx(0, seed), SID, request, self.share(0), online
            )
            assert isinstance(session, DecryptionMaster)
            if wanted is None or first_job(effects).nodes == wanted:
                return session, effects
        raise AssertionError(f"no master seed picks the group {group}")

    def init(self, job: DecryptionJobRequest | None = None) -> DecryptionRequest:
        carried = None
        if job is not None:
            carried = DecryptionJob(job.attempt, job.access_key, job.nodes, job.shadow)
        return DecryptionRequest(SID, KEY_ID, AccessRequest(self.signature, self.version), carried)

    @property
    def version(self) -> bytes:
        return self.share(0).last_version().hash

    def join(
        self, i: int, init: DecryptionRequest | None = None, ctx: SessionContext | None = None
    ) -> DecryptionSlave:
        session, effects = join_decryption(
            ctx or self.ctx(i), self.nodes[0], init or self.init(), self.share(i)
        )
        assert isinstance(session, DecryptionSlave)
        assert effects == [CheckAccess(SID, self.requester.address, KEY_ID)]
        return session


def setup(n: int = 3, t: int = 1, seed: int = 1, with_commitments: bool = True) -> Setup:
    rng = SeededRng(seed)
    node_keys = sorted((KeyPair.generate(rng) for _ in range(n)), key=lambda k: k.node_id)
    key = deal_key(rng, [k.node_id for k in node_keys], t, with_commitments=with_commitments)
    requester = KeyPair.generate(rng)
    return Setup(node_keys, key, requester, sign_recoverable(requester.secret, KEY_ID))


def sends(effects: list[Effect]) -> list[Send]:
    return [e for e in effects if isinstance(e, Send)]


def only_send(effects: list[Effect]) -> Send:
    found = sends(effects)
    assert len(found) == 1, effects
    return found[0]


def failure(effects: list[Effect]) -> Exception:
    fails = [e for e in effects if isinstance(e, Fail)]
    assert len(fails) == 1, effects
    return fails[0].error


def result(effects: list[Effect]) -> object:
    finishes = [e for e in effects if isinstance(e, Finish)]
    assert len(finishes) == 1, effects
    return finishes[0].result


def first_job(effects: list[Effect]) -> DecryptionJobRequest:
    """The job the master's start sent with its access requests."""
    inits = [e.message for e in sends(effects) if isinstance(e.message, DecryptionRequest)]
    if not inits:  # t = 0: the master alone
        raise AssertionError("no request went out")
    job = inits[0].job
    assert job is not None and all(init.job == job for init in inits)
    return job.request(SID)


def slave_response(
    s: Setup, i: int, job: DecryptionJobRequest, ctx: SessionContext | None = None
) -> DecryptionJobResponse:
    """Node i's answer to `job` as it comes with the request (allowed by its policy)."""
    slave = s.join(i, s.init(job), ctx)
    answer = only_send(slave.on_access_checked(True))
    assert isinstance(answer.message, DecryptionJobResponse)
    return answer.message


def later_response(s: Setup, i: int, job: DecryptionJobRequest) -> DecryptionJobResponse:
    """Node i's answer to a job of a later attempt: asked without a job first, then sent it."""
    slave = s.join(i)
    assert slave.on_access_checked(True) == [Send(s.nodes[0], ConsensusResponse(SID, True))]
    answer = only_send(slave.on_message(s.nodes[0], job))
    assert isinstance(answer.message, DecryptionJobResponse)
    return answer.message


def phase_of(session: DecryptionMaster | DecryptionSlave) -> DecryptionPhase:
    return session.phase


# --- whole runs by hand ----------------------------------------------------------------------


def test_plain_run_by_hand_takes_one_round_trip() -> None:
    s = setup()
    master, effects = s.start(group=(1,))
    job = first_job(effects)
    assert effects == [
        CheckAccess(SID, s.requester.address, KEY_ID),
        Send(s.nodes[1], s.init(job)),
        Wake(SID, ASK_OTHERS_AFTER),
    ]  # node 2 is not asked
    assert job.nodes == (s.nodes[0], s.nodes[1]) and job.attempt == 1 and not job.shadow
    assert phase_of(master) is DecryptionPhase.WAITING_FOR_JOB_RESPONSES
    assert master.participants == frozenset(s.nodes[:2])
    slave = s.join(1, s.init(job))
    assert phase_of(slave) is DecryptionPhase.WAITING_FOR_ACCESS_CHECK
    answer = only_send(slave.on_access_checked(True))  # its access answer is its job answer
    assert answer.to == s.nodes[0] and isinstance(answer.message, DecryptionJobResponse)
    assert answer.message.decrypt_shadow is None and answer.message.attempt == 1
    assert phase_of(slave) is DecryptionPhase.WAITING_FOR_JOB
    assert master.on_access_checked(True) == []  # its own part, computed while node 1 works
    assert master.awaiting == (s.nodes[1],)
    end = master.on_message(s.nodes[1], answer.message)
    assert result(end) == s.key.document_key
    assert sends(end) == [Send(s.nodes[1], ConsensusCompleted(SID))]
    assert master.finished and master.phase is DecryptionPhase.ENDED
    assert slave.on_message(s.nodes[0], ConsensusCompleted(SID)) == [Finish(SID, None)]
    assert slave.finished


def test_an_answer_before_the_masters_own_check_waits_for_it() -> None:
    s = setup()
    master, effects = s.start(group=(1,))
    answer = slave_response(s, 1, first_job(effects))
    assert master.on_message(s.nodes[1], answer) == []  # its own policy has not answered
    assert master.awaiting == (s.nodes[0],)
    assert result(master.on_access_checked(True)) == s.key.document_key


def test_shadow_run_by_hand_and_no_node_can_decrypt() -> None:
    s = setup(n=4, t=2)
    master, effects = s.start(shadow=True, group=(1, 2))
    job = first_job(effects)
    assert [e.to for e in sends(effects)] == [s.nodes[1], s.nodes[2]] and job.shadow
    master.on_access_checked(True)
    end: list[Effect] = []
    for i in (1, 2):
        end = master.on_message(s.nodes[i], slave_response(s, i, job))
    shadow = result(end)
    assert isinstance(shadow, ShadowResult)
    assert len(shadow.decrypt_shadows) == 3
    assert all(len(c) == DECRYPT_SHADOW_LENGTH for c in shadow.decrypt_shadows)
    coefficients = [
        Scalar.from_bytes(ecies_decrypt(s.requester.secret, c)) for c in shadow.decrypt_shadows
    ]
    key = decrypt_with_shadow_coefficients(
        shadow.decrypted_secret, shadow.common_point, coefficients
    )
    assert key == s.key.document_key
    # what the master holds is not the key, and no node key opens a decrypt shadow
    assert shadow.decrypted_secret != s.key.document_key
    for node_key in s.node_keys:
        for c in shadow.decrypt_shadows:
            with pytest.raises(DecryptionError):
                ecies_decrypt(node_key.secret, c)


def test_single_node_key_finishes_at_once() -> None:
    s = setup(n=1, t=0)
    master, effects = s.start()
    assert effects == [CheckAccess(SID, s.requester.address, KEY_ID)]
    assert result(master.on_access_checked(True)) == s.key.document_key


def test_threshold_zero_asks_nobody() -> None:
    s = setup(n=3, t=0)
    master, effects = s.start()
    assert effects == [CheckAccess(SID, s.requester.address, KEY_ID), Wake(SID, ASK_OTHERS_AFTER)]
    end = master.on_access_checked(True)
    assert result(end) == s.key.document_key and sends(end) == []


def test_factories_are_registered() -> None:
    assert MASTERS[RetrieveDocumentKey] is start_decryption
    assert SLAVES[DecryptionRequest] is join_decryption


# --- master factory rejections ---------------------------------------------------------------


def test_master_factory_rejections() -> None:
    s = setup()
    ctx = s.ctx(0)
    everyone = frozenset(s.nodes)
    bad = RetrieveDocumentKey(KEY_ID, b"\x01" * 64)
    with pytest.raises(InvalidRequest):
        start_decryption(ctx, SID, bad, s.share(0), everyone)
    good = RetrieveDocumentKey(KEY_ID, s.signature)
    with pytest.raises(ServerKeyNotFound):
        start_decryption(ctx, SID, good, None, everyone)
    bare = deal_key(SeededRng(3), s.nodes, 1, with_document_key=False).shares[s.nodes[0]]
    with pytest.raises(DocumentKeyNotFound):
        start_decryption(ctx, SID, good, bare, everyone)
    unknown_version = replace(good, version=b"\x09" * 32)
    with pytest.raises(ServerKeyNotFound):
        start_decryption(ctx, SID, unknown_version, s.share(0), everyone)
    with pytest.raises(ConsensusUnreachable):
        start_decryption(ctx, SID, good, s.share(0), frozenset())


def test_master_refusing_access_itself_fails_at_once() -> None:
    s = setup()
    master, _ = s.start()
    error = failure(master.on_access_checked(False))
    assert isinstance(error, AccessDenied)


def test_a_member_refusing_asks_the_others_and_refusals_fail_with_access_denied() -> None:
    s = setup()
    master, _ = s.start(group=(1,))
    master.on_access_checked(True)
    ask = only_send(master.on_message(s.nodes[1], ConsensusResponse(SID, False)))
    assert ask == Send(s.nodes[2], s.init())  # the access request alone, without a job
    assert phase_of(master) is DecryptionPhase.WAITING_FOR_ACCESS
    error = failure(master.on_message(s.nodes[2], ConsensusResponse(SID, False)))
    assert isinstance(error, AccessDenied)


def test_slave_errors_during_consensus_leave_too_few() -> None:
    s = setup()
    master, _ = s.start(group=(1,))
    master.on_access_checked(True)
    assert only_send(master.on_peer_error(s.nodes[1], "no server key")).to == s.nodes[2]
    assert s.nodes[1] not in master.participants
    error = failure(master.on_node_disconnected(s.nodes[2]))
    assert isinstance(error, ConsensusUnreachable)
    assert short(s.nodes[2]) in str(error)


# --- job responses that break the protocol ---------------------------------------------------


def bad_response(s: Setup, shadow: bool, change: dict[str, object]) -> Exception:
    """The failure of a 2-node (t = 1) retrieval whose only helper answers wrongly: there is
    nobody to replace it, so the session fails naming it (and tells it so)."""
    assert len(s.nodes) == 2
    master, effects = s.start(shadow=shadow)
    master.on_access_checked(True)
    response = replace(slave_response(s, 1, first_job(effects)), **change)  # type: ignore[arg-type]
    effects = master.on_message(s.nodes[1], response)
    told = only_send(effects)
    assert told.to == s.nodes[1] and isinstance(told.message, SessionError)
    return failure(effects)


BAD_ANSWERS: list[tuple[bool, dict[str, object], str]] = [
    (False, {"shadow_point": Point.identity()}, "identity"),
    (True, {"decrypt_shadow": None}, "no decrypt shadow"),
    (False, {"decrypt_shadow": b"\x04" * DECRYPT_SHADOW_LENGTH}, "decrypt shadow for a plain"),
    (True, {"decrypt_shadow": b"\x04" * 10}, "10 bytes"),
    (False, {"proof": None}, "no proof"),
    (True, {"proof": None}, "no proof"),
    (True, {"blinded_public": None}, "blinded public"),
    (False, {"blinded_public": Point.generator()}, "blinded public"),
    (False, {"shadow_point": Point.generator()}, "does not verify"),
    (True, {"shadow_point": Point.generator()}, "does not verify"),
    (True, {"blinded_public": Point.generator()}, "does not verify"),
]


@pytest.mark.parametrize(("shadow", "change", "expected"), BAD_ANSWERS)
def test_a_wrong_answer_without_a_replacement_fails_naming_its_node(
    shadow: bool, change: dict[str, object], expected: str
) -> None:
    s = setup(n=2)
    error = bad_response(s, shadow, change)
    assert isinstance(error, ProtocolViolation) and error.node == short(s.nodes[1])
    assert expected in str(error) and "too few other consenting nodes" in str(error)


@pytest.mark.parametrize(("shadow", "change", "expected"), BAD_ANSWERS)
def test_a_wrong_answer_is_replaced_by_another_consenting_node(
    shadow: bool, change: dict[str, object], expected: str
) -> None:
    s = setup()
    master, effects = s.start(shadow=shadow, group=(1,))
    master.on_access_checked(True)
    wrong = replace(slave_response(s, 1, first_job(effects)), **change)  # type: ignore[arg-type]
    told, ask = sends(master.on_message(s.nodes[1], wrong))
    assert told.to == s.nodes[1] and isinstance(told.message, SessionError)
    assert expected in told.message.reason
    assert ask == Send(s.nodes[2], s.init())  # the holder not asked yet
    retry = only_send(master.on_message(s.nodes[2], ConsensusResponse(SID, True)))
    assert retry.to == s.nodes[2] and isinstance(retry.message, DecryptionJobRequest)
    assert retry.message.attempt == 2 and retry.message.nodes == (s.nodes[0], s.nodes[2])
    assert s.nodes[1] not in master.participants and expected in master.rejected[s.nodes[1]]
    value = result(master.on_message(s.nodes[2], later_response(s, 2, retry.message)))
    assert open_result(s, value) == s.key.document_key


def test_a_wrong_answer_waits_for_the_others_then_names_the_liar() -> None:
    s = setup()
    master, effects = s.start(group=(1,))
    master.on_access_checked(True)
    wrong = replace(slave_response(s, 1, first_job(effects)), shadow_point=Point.generator())
    assert len(sends(master.on_message(s.nodes[1], wrong))) == 2  # the notice, node 2 asked
    assert master.phase is DecryptionPhase.WAITING_FOR_ACCESS
    error = failure(master.on_message(s.nodes[2], ConsensusResponse(SID, False)))
    assert isinstance(error, ProtocolViolation) and error.node == short(s.nodes[1])
    assert "does not verify" in str(error)
    master, effects = s.start(group=(1,))
    master.on_access_checked(True)
    master.on_message(s.nodes[1], replace(slave_response(s, 1, first_job(effects)), proof=None))
    error = failure(master.on_node_disconnected(s.nodes[2]))
    assert isinstance(error, ProtocolViolation) and error.node == short(s.nodes[1])
    assert "no proof" in str(error) and short(s.nodes[2]) in str(error)


def open_result(s: Setup, value: object) -> Point:
    """The document key in a plain or shadow result, as the requester gets it."""
    if isinstance(value, Point):
        return value
    assert isinstance(value, ShadowResult)
    coefficients = [
        Scalar.from_bytes(ecies_decrypt(s.requester.secret, c)) for c in value.decrypt_shadows
    ]
    return decrypt_with_shadow_coefficients(
        value.decrypted_secret, value.common_point, coefficients
    )


def test_answer_to_a_future_attempt_is_named() -> None:
    s = setup()
    master, effects = s.start(group=(1,))
    response = replace(slave_response(s, 1, first_job(effects)), attempt=2)
    error = failure(master.on_message(s.nodes[1], response))
    assert isinstance(error, ProtocolViolation) and error.node == short(s.nodes[1])


def test_job_answer_to_an_attempt_that_never_was_is_named() -> None:
    s = setup()
    master, _ = s.start(group=(1,))
    response = DecryptionJobResponse(SID, 0, s.key.public, None)
    error = failure(master.on_message(s.nodes[1], response))
    assert isinstance(error, ProtocolViolation) and error.node == short(s.nodes[1])


def test_answer_from_outside_the_group_is_named() -> None:
    s = setup()
    master, effects = s.start(group=(1,))
    response = slave_response(s, 1, first_job(effects))
    error = failure(master.on_message(s.nodes[2], response))  # node 2 was not even asked
    assert isinstance(error, ProtocolViolation) and error.node == short(s.nodes[2])


def test_a_job_answer_after_refusing_is_named() -> None:
    s = setup(n=4, t=2)
    master, effects = s.start(group=(1, 2))
    response = slave_response(s, 1, first_job(effects))
    assert len(sends(master.on_message(s.nodes[1], ConsensusResponse(SID, False)))) == 1
    error = failure(master.on_message(s.nodes[1], response))
    assert isinstance(error, ProtocolViolation) and "twice" in str(error)


def test_same_answer_twice_is_ignored_a_different_one_is_named() -> None:
    s = setup(n=4, t=2)
    master, effects = s.start(group=(1, 2))
    master.on_access_checked(True)
    response = slave_response(s, 1, first_job(effects))
    assert master.on_message(s.nodes[1], response) == []
    assert master.on_message(s.nodes[1], response) == []
    changed = replace(response, shadow_point=response.shadow_point + s.key.public)
    error = failure(master.on_message(s.nodes[1], changed))
    assert isinstance(error, ProtocolViolation) and "twice" in str(error)


def test_responses_that_cancel_to_nothing_name_the_group() -> None:
    """A key without commitments: no proof to catch the forgery, only the identity check."""
    s = setup(with_commitments=False)
    master, effects = s.start(group=(1,))
    job = first_job(effects)
    master.on_access_checked(True)
    own = compute_job_response(
        s.ctx(0), s.share(0), s.share(0).last_version(), KEY_ID, job, requester=s.requester.public
    ).shadow_point
    encrypted_point = s.share(0).encrypted_point
    assert encrypted_point is not None
    # t = 1 is odd: D = E + a⁻¹·(P_0 + P_1), the identity when P_1 = -a·E - P_0
    forged = -(encrypted_point * job.access_key) - own
    response = DecryptionJobResponse(SID, job.attempt, forged, None)
    error = failure(master.on_message(s.nodes[1], response))
    assert isinstance(error, ProtocolViolation) and error.node == short(s.nodes[1])
    assert "do not combine" in str(error)


def test_unexpected_message_at_the_master_is_named() -> None:
    s = setup()
    master, _ = s.start(group=(1,))
    error = failure(master.on_message(s.nodes[1], ConsensusCompleted(SID)))
    assert isinstance(error, ProtocolViolation) and error.node == short(s.nodes[1])
    assert master.on_message(s.nodes[1], ConsensusResponse(SID, True)) == []  # ended


# --- losing group members, slow ones, timeouts ------------------------------------------------


def test_lost_group_member_is_replaced() -> None:
    s = setup()
    master, effects = s.start(group=(1,))
    job = first_job(effects)
    master.on_access_checked(True)
    old = slave_response(s, 1, job)
    assert only_send(master.on_node_disconnected(s.nodes[1])) == Send(s.nodes[2], s.init())
    retry = only_send(master.on_message(s.nodes[2], ConsensusResponse(SID, True)))
    assert isinstance(retry.message, DecryptionJobRequest) and retry.to == s.nodes[2]
    assert retry.message.attempt == 2 and retry.message.nodes == (s.nodes[0], s.nodes[2])
    assert retry.message.access_key != job.access_key
    assert s.nodes[1] not in master.participants
    assert master.on_message(s.nodes[1], old) == []  # the abandoned group's answer
    new = later_response(s, 2, retry.message)
    assert result(master.on_message(s.nodes[2], new)) == s.key.document_key


def test_stale_answer_is_ignored() -> None:
    s = setup(n=4, t=2)
    master, effects = s.start(group=(1, 2))
    job = first_job(effects)
    master.on_access_checked(True)
    late = slave_response(s, 2, job)
    # node 1 reports an error: node 3 is asked, a new group runs; node 1 is out of the session
    assert only_send(master.on_peer_error(s.nodes[1], "its job failed")).to == s.nodes[3]
    assert master.on_message(s.nodes[1], slave_response(s, 1, job)) == []  # the lost node
    retry = sends(master.on_message(s.nodes[3], ConsensusResponse(SID, True)))
    assert retry == []  # node 2 has not answered: the group waits for it
    # node 2's answer to attempt 1 says it allowed; the answer itself is stale
    chosen = sends(master.on_message(s.nodes[2], late))
    assert [c.to for c in chosen] == [s.nodes[2], s.nodes[3]]
    second = chosen[0].message
    assert isinstance(second, DecryptionJobRequest) and second.attempt == 2
    assert master.on_message(s.nodes[2], late) == []  # any answer for attempt 1 is stale
    master.on_message(s.nodes[2], later_response(s, 2, second))
    end = master.on_message(s.nodes[3], later_response(s, 3, second))
    assert result(end) == s.key.document_key


def test_lost_group_member_waits_for_the_others() -> None:
    s = setup()
    master, _ = s.start(group=(1,))
    assert only_send(master.on_node_disconnected(s.nodes[1])).to == s.nodes[2]
    assert phase_of(master) is DecryptionPhase.WAITING_FOR_ACCESS
    assert master.on_message(s.nodes[2], ConsensusResponse(SID, True)) == []  # master pending
    retry = only_send(master.on_access_checked(True))
    assert isinstance(retry.message, DecryptionJobRequest) and retry.message.attempt == 2


def test_member_lost_after_answering_keeps_the_job() -> None:
    s = setup(n=4, t=2)
    master, effects = s.start(group=(1, 2))
    job = first_job(effects)
    master.on_access_checked(True)
    assert master.on_message(s.nodes[1], slave_response(s, 1, job)) == []
    assert master.awaiting == (s.nodes[2],)
    assert master.on_node_disconnected(s.nodes[1]) == []  # its part is in: no new group
    assert s.nodes[1] not in master.participants
    end = master.on_message(s.nodes[2], slave_response(s, 2, job))
    assert result(end) == s.key.document_key
    assert sends(end) == [Send(s.nodes[2], ConsensusCompleted(SID))]  # node 3 was never asked


def test_lost_group_member_without_replacement_fails() -> None:
    s = setup()
    master, _ = s.start(group=(1,))
    master.on_access_checked(True)
    master.on_node_disconnected(s.nodes[1])
    error = failure(master.on_message(s.nodes[2], ConsensusResponse(SID, False)))
    assert isinstance(error, ConsensusUnreachable)


def test_a_slow_group_asks_the_others_after_a_while() -> None:
    s = setup()
    master, effects = s.start(group=(1,))
    job = first_job(effects)
    assert Wake(SID, ASK_OTHERS_AFTER) in effects
    master.on_access_checked(True)
    assert only_send(master.on_wake()) == Send(s.nodes[2], s.init())
    assert master.on_wake() == []  # asked already
    retry = only_send(master.on_message(s.nodes[2], ConsensusResponse(SID, True)))
    assert isinstance(retry.message, DecryptionJobRequest) and retry.message.attempt == 2
    assert retry.message.nodes == (s.nodes[0], s.nodes[2])
    # the slow node's answer arrives at last: it allowed, but its job was given up
    assert master.on_message(s.nodes[1], slave_response(s, 1, job)) == []
    end = master.on_message(s.nodes[2], later_response(s, 2, retry.message))
    assert result(end) == s.key.document_key
    # a group that answered in time is not disturbed; with every holder asked, no Wake
    master, effects = s.start(group=(1,))
    master.on_access_checked(True)
    result(master.on_message(s.nodes[1], slave_response(s, 1, first_job(effects))))
    assert master.on_wake() == []
    two = setup(n=2)
    _, effects = two.start()
    assert not any(isinstance(e, Wake) for e in effects)


def test_timeouts() -> None:
    s = setup()
    master, _ = s.start(group=(2,))
    master.on_access_checked(True)
    error = failure(master.on_timeout())  # the first group's member never answered
    assert isinstance(error, ProtocolViolation) and error.node == short(s.nodes[2])
    assert master.on_timeout() == []
    master, _ = s.start(group=(2,))
    master.on_node_disconnected(s.nodes[2])  # node 1 asked, and silent
    error = failure(master.on_timeout())
    assert isinstance(error, ConsensusUnreachable) and short(s.nodes[1]) in str(error)


# --- the slave -------------------------------------------------------------------------------


def job_for(s: Setup, **change: object) -> DecryptionJobRequest:
    base = DecryptionJobRequest(SID, 1, Scalar(5), (s.nodes[0], s.nodes[1]), False)
    return replace(base, **change)  # type: ignore[arg-type]


def test_slave_factory_rejections() -> None:
    s = setup()
    ctx = s.ctx(1)
    init = s.init()
    with pytest.raises(ServerKeyNotFound):
        join_decryption(ctx, s.nodes[0], init, None)
    bare = deal_key(SeededRng(3), s.nodes, 1, with_document_key=False).shares[s.nodes[1]]
    with pytest.raises(DocumentKeyNotFound):
        join_decryption(ctx, s.nodes[0], init, bare)
    other_version = replace(init, access=AccessRequest(s.signature, b"\x09" * 32))
    with pytest.raises(ServerKeyNotFound):
        join_decryption(ctx, s.nodes[0], other_version, s.share(1))
    outsider = KeyPair.generate(SeededRng(77)).node_id
    with pytest.raises(ProtocolViolation):
        join_decryption(ctx, outsider, init, s.share(1))
    unrecoverable = replace(init, access=AccessRequest(b"\x00" * 65, s.version))
    with pytest.raises(InvalidRequest):
        join_decryption(ctx, s.nodes[0], unrecoverable, s.share(1))


def test_slave_refusing_answers_and_ends() -> None:
    s = setup()
    for init in (s.init(), s.init(job_for(s))):
        slave = s.join(1, init)
        assert slave.on_access_checked(False) == [
            Send(s.nodes[0], ConsensusResponse(SID, False)),
            Finish(SID, None),
        ]
        assert slave.on_access_checked(True) == []


def test_slave_encrypts_to_the_requester_it_recovered() -> None:
    s = setup()
    response = slave_response(s, 1, job_for(s, shadow=True))
    assert response.decrypt_shadow is not None
    plain = ecies_decrypt(s.requester.secret, response.decrypt_shadow)
    assert len(plain) == 32


BAD_JOBS = [
    ({"access_key": ZERO}, "zero access key"),
    ({"nodes": ()}, "for 0 nodes"),
    ({"nodes": "three"}, "for 3 nodes"),
    ({"nodes": "reversed"}, "ascending"),
    ({"nodes": "without self"}, "without this node"),
    ({"nodes": "without master"}, "without this node or itself"),
    ({"nodes": "outsider"}, "outside the key version"),
]


def bad_job(s: Setup, change: dict[str, object]) -> DecryptionJobRequest:
    outsider = KeyPair.generate(SeededRng(77)).node_id
    groups: dict[str, tuple[NodeId, ...]] = {
        "three": tuple(s.nodes),
        "reversed": (s.nodes[1], s.nodes[0]),
        "without self": (s.nodes[0], s.nodes[2]),
        "without master": (s.nodes[1], s.nodes[2]),
        "outsider": tuple(sorted((s.nodes[1], outsider))),
    }
    if isinstance(change.get("nodes"), str):
        change = {"nodes": groups[str(change["nodes"])]}
    return job_for(s, **change)


@pytest.mark.parametrize(("change", "expected"), BAD_JOBS)
def test_slave_rejects_bad_jobs(change: dict[str, object], expected: str) -> None:
    s = setup()
    slave = s.join(1)
    slave.on_access_checked(True)
    error = failure(slave.on_message(s.nodes[0], bad_job(s, change)))
    assert isinstance(error, ProtocolViolation) and error.node == short(s.nodes[0])
    assert expected in str(error)


@pytest.mark.parametrize(("change", "expected"), BAD_JOBS)
def test_slave_refuses_a_request_with_a_bad_job_before_checking_access(
    change: dict[str, object], expected: str
) -> None:
    s = setup()
    with pytest.raises(ProtocolViolation, match=expected) as caught:
        join_decryption(s.ctx(1), s.nodes[0], s.init(bad_job(s, change)), s.share(1))
    assert caught.value.node == short(s.nodes[0])


def test_slave_rejects_a_job_before_it_allowed_access() -> None:
    s = setup()
    slave = s.join(1)
    error = failure(slave.on_message(s.nodes[0], job_for(s)))
    assert isinstance(error, ProtocolViolation) and "did not allow" in str(error)


def test_slave_rejects_a_job_after_it_refused() -> None:
    s = setup()
    slave = s.join(1)
    slave.on_access_checked(False)
    assert slave.on_message(s.nodes[0], job_for(s)) == []  # ended: nothing more


def test_slave_answers_new_attempts_ignores_repeats_rejects_old_ones() -> None:
    s = setup()
    first = job_for(s)
    slave = s.join(1, s.init(first))
    assert len(sends(slave.on_access_checked(True))) == 1  # the job of the request
    assert slave.on_message(s.nodes[0], first) == []
    assert slave.on_message(s.nodes[0], s.init(first)) == []  # the request again
    second = job_for(s, attempt=2, access_key=Scalar(6))
    assert len(sends(slave.on_message(s.nodes[0], second))) == 1
    error = failure(slave.on_message(s.nodes[0], first))
    assert isinstance(error, ProtocolViolation) and "attempt 1 after 2" in str(error)


def test_slave_other_messages() -> None:
    s = setup()
    slave = s.join(1)
    assert slave.on_message(s.nodes[0], s.init()) == []  # the initialising message again
    assert slave.participants == frozenset(s.nodes[:2])
    error = failure(slave.on_message(s.nodes[2], ConsensusCompleted(SID)))
    assert isinstance(error, ProtocolViolation) and error.node == short(s.nodes[2])
    slave = s.join(1)
    error = failure(slave.on_message(s.nodes[0], ConsensusResponse(SID, True)))
    assert isinstance(error, ProtocolViolation) and error.node == short(s.nodes[0])
    slave = s.join(1)
    assert slave.on_peer_error(s.nodes[0], "access denied") == [Finish(SID, None)]
    slave = s.join(1)
    assert slave.on_message(s.nodes[0], ConsensusCompleted(SID)) == [Finish(SID, None)]
    assert slave.phase is DecryptionPhase.ENDED


def test_compute_job_response_checks_its_group() -> None:
    s = setup()
    outsider = KeyPair.generate(SeededRng(77)).node_id
    for nodes in [(s.nodes[0], outsider), (s.nodes[0], s.nodes[2])]:
        with pytest.raises(InvalidRequest):
            compute_job_response(
                s.ctx(1),
                s.share(1),
                s.share(1).last_version(),
                KEY_ID,
                job_for(s, nodes=nodes),
                requester=s.requester.public,
            )


def test_decryption_messages_round_trip() -> None:
    s = setup()
    messages = [
        s.init(),
        s.init(job_for(s, shadow=True)),
        job_for(s, shadow=True),
        DecryptionJobResponse(SID, 3, s.key.public, None),
        DecryptionJobResponse(SID, 3, s.key.public, b"\x04" * DECRYPT_SHADOW_LENGTH),
    ]
    for msg in messages:
        assert codec.decode(codec.encode(msg)) == msg


# --- proofs ----------------------------------------------------------------------------------


@pytest.mark.parametrize("shadow", [False, True])
def test_answers_carry_proofs_when_the_key_has_commitments(shadow: bool) -> None:
    s = setup()
    response = slave_response(s, 1, job_for(s, shadow=shadow))
    assert response.proof is not None
    assert (response.blinded_public is not None) == shadow
    v1 = setup(with_commitments=False)
    response = slave_response(v1, 1, job_for(v1, shadow=shadow))
    assert response.proof is None and response.blinded_public is None


def test_a_shadow_result_carries_proofs_the_requester_can_check() -> None:
    s = setup(n=4, t=2)
    master, effects = s.start(shadow=True, group=(1, 2))
    job = first_job(effects)
    master.on_access_checked(True)
    end: list[Effect] = []
    for i in (1, 2):
        end = master.on_message(s.nodes[i], slave_response(s, i, job))
    value = result(end)
    assert isinstance(value, ShadowResult) and value.proofs is not None
    proofs = value.proofs
    assert proofs.threshold == 2 and proofs.session_id == SID and proofs.attempt == 1
    assert [p.node for p in proofs.participants] == s.nodes[:3]
    commitments = s.share(0).last_version().commitments
    assert proofs.commitments == commitments
    answer = DocumentKeyShadow(
        value.decrypted_secret, value.common_point, value.decrypt_shadows, proofs
    )
    found = verify_document_key_shadow(KEY_ID, answer, s.requester, s.key.public)
    assert found == s.key.document_key
    v1 = setup(with_commitments=False)
    master, effects = v1.start(shadow=True, group=(1,))
    master.on_access_checked(True)
    response = slave_response(v1, 1, first_job(effects))
    plain_v1 = result(master.on_message(v1.nodes[1], response))
    assert isinstance(plain_v1, ShadowResult) and plain_v1.proofs is None
    assert open_result(v1, plain_v1) == v1.key.document_key


def test_a_proof_made_for_another_session_or_node_is_rejected() -> None:
    s = setup(n=2)
    for change in [{"session_id": SessionId(b"\x06" * 32)}, {"attempt": 7}]:
        master, effects = s.start()
        job = first_job(effects)
        other = replace(job, **change)  # type: ignore[arg-type]
        replayed = compute_job_response(
            s.ctx(1), s.share(1), s.share(1).last_version(), KEY_ID, other,
            requester=s.requester.public,
        )  # fmt: skip
        response = replace(slave_response(s, 1, job), proof=replayed.proof)
        error = failure(master.on_message(s.nodes[1], response))
        assert isinstance(error, ProtocolViolation) and error.node == short(s.nodes[1])
    # the master's own valid answer, passed off as node 1's
    master, effects = s.start()
    own = compute_job_response(
        s.ctx(0), s.share(0), s.share(0).last_version(), KEY_ID, first_job(effects),
        requester=s.requester.public,
    )  # fmt: skip
    error = failure(master.on_message(s.nodes[1], own))
    assert isinstance(error, ProtocolViolation) and error.node == short(s.nodes[1])


# --- require_shadow_retrieval -------------------------------------------------------------------


def policy_ctx(s: Setup, i: int) -> SessionContext:
    return replace(s.ctx(i), require_shadow_retrieval=True)


def test_a_master_with_the_policy_refuses_plain_retrieval_up_front() -> None:
    s = setup()
    request = RetrieveDocumentKey(KEY_ID, s.signature, shadow=False)
    with pytest.raises(PlainRetrievalRefused, match="require_shadow_retrieval"):
        start_decryption(policy_ctx(s, 0), SID, request, s.share(0), frozenset(s.nodes))
    shadow = RetrieveDocumentKey(KEY_ID, s.signature, shadow=True)
    _, effects = start_decryption(policy_ctx(s, 0), SID, shadow, s.share(0), frozenset(s.nodes))
    assert len(sends(effects)) == 1


def test_a_slave_with_the_policy_refuses_a_plain_job_whatever_the_master_says() -> None:
    s = setup()
    # a plain job with the request: refused before anything is computed
    with pytest.raises(PlainRetrievalRefused) as caught:
        join_decryption(policy_ctx(s, 1), s.nodes[0], s.init(job_for(s)), s.share(1))
    # the refusal reaches the master as a SessionError of kind ACCESS_DENIED
    refusal = error_of(kind_of(caught.value), str(caught.value))
    assert isinstance(refusal, AccessDenied)
    master, _ = s.start(shadow=False, group=(1,))  # a master without the policy
    outcome = failure(master.on_peer_refusal(s.nodes[1], refusal))
    assert isinstance(outcome, PlainRetrievalRefused) and short(s.nodes[1]) in str(outcome)
    # a plain job of a later attempt: no shadow point leaves the node either
    slave = s.join(1, ctx=policy_ctx(s, 1))
    slave.on_access_checked(True)
    effects = slave.on_message(s.nodes[0], job_for(s))
    assert sends(effects) == []
    assert isinstance(failure(effects), PlainRetrievalRefused)
    # a shadow job is served as usual
    response = slave_response(s, 1, job_for(s, shadow=True), ctx=policy_ctx(s, 1))
    assert response.decrypt_shadow is not None


def test_the_policy_also_stops_the_master_computing_a_plain_job_itself() -> None:
    s = setup()
    job = job_for(s)
    with pytest.raises(PlainRetrievalRefused):
        compute_job_response(
            policy_ctx(s, 0), s.share(0), s.share(0).last_version(), KEY_ID, job,
            requester=s.requester.public,
        )  # fmt: skip


def test_proof_fields_round_trip_through_the_codec() -> None:
    s = setup()
    response = slave_response(s, 1, job_for(s, shadow=True))
    assert response.proof is not None and response.blinded_public is not None
    assert codec.decode(codec.encode(response)) == response
