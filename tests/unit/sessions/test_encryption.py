"""EncryptionSession fed by hand: factories, the two-phase store, every rejection path, the
requester each node recovers itself and the bound-request checks."""

from __future__ import annotations

from dataclasses import replace

import pytest

from secretstore.crypto.bound import BoundOperation, sign_bound_request, store_payload
from secretstore.crypto.curve import Point, Scalar
from secretstore.crypto.keys import KeyPair, sign_recoverable
from secretstore.errors import (
    AccessDenied,
    ConsensusUnreachable,
    DocumentKeyAlreadyStored,
    InvalidRequest,
    NodeDisconnected,
    ProtocolViolation,
    ServerKeyNotFound,
    SessionTimeout,
    UnboundRequest,
)
from secretstore.sessions.base import Effect, Fail, Finish, Persist, Send, SessionContext, short
from secretstore.sessions.encryption import (
    EncryptionPhase,
    EncryptionSession,
    StoreDocumentKey,
    join_encryption,
    start_encryption,
)
from secretstore.storage.model import KeyShare
from secretstore.types import ServerKeyId, SessionId
from secretstore.wire.encryption import (
    CommitEncryption,
    ConfirmEncryption,
    EncryptionStored,
    InitializeEncryption,
)
from secretstore.wire.requester import RequesterProof
from tests.unit.sessions.hand_feeding import contexts, sends

SID = SessionId(b"\x15" * 32)
KEY = ServerKeyId(b"\x17" * 32)
AUTHOR_KEY = KeyPair.from_secret(Scalar(0x1A))
STRANGER_KEY = KeyPair.from_secret(Scalar(0x1B))
AUTHOR = AUTHOR_KEY.address
PUBLIC = Point.base_mul(Scalar(7))
COMMON = Point.base_mul(Scalar(11))
ENCRYPTED = Point.base_mul(Scalar(13))


def share_of(ctxs: list[SessionContext], index: int, holders: int | None = None) -> KeyShare:
    nodes = sorted(ctxs[0].cluster_nodes)[: holders or len(ctxs)]
    ids = {node: Scalar(i + 1) for i, node in enumerate(nodes)}
    threshold = min(1, len(nodes) - 1)
    return KeyShare.from_generation(AUTHOR, threshold, PUBLIC, ids, Scalar(100 + index))


def proof(requester: KeyPair = AUTHOR_KEY, key_id: bytes = KEY) -> RequesterProof:
    return RequesterProof.signature(sign_recoverable(requester.secret, key_id))


def bound(
    requester: KeyPair = AUTHOR_KEY,
    common: Point = COMMON,
    encrypted: Point = ENCRYPTED,
    key_id: bytes = KEY,
) -> bytes:
    payload = store_payload(common, encrypted)
    return sign_bound_request(requester.secret, BoundOperation.STORE_DOCUMENT_KEY, key_id, payload)


def store(
    requester: KeyPair = AUTHOR_KEY, bound_signature: bytes | None = None
) -> StoreDocumentKey:
    return StoreDocumentKey(KEY, proof(requester), COMMON, ENCRYPTED, bound_signature)


def init(
    requester: KeyPair = AUTHOR_KEY, bound_signature: bytes | None = None
) -> InitializeEncryption:
    return InitializeEncryption(SID, KEY, proof(requester), COMMON, ENCRYPTED, bound_signature)


def master_of(n: int = 3) -> tuple[list[SessionContext], EncryptionSession, list[Effect]]:
    ctxs = contexts(n, seed=3)
    session, effects = start_encryption(
        ctxs[0], SID, store(), share_of(ctxs, 0), ctxs[0].cluster_nodes
    )
    assert isinstance(session, EncryptionSession)
    return ctxs, session, effects


def slave_of(ctxs: list[SessionContext], index: int = 1) -> EncryptionSession:
    session, effects = join_encryption(ctxs[index], ctxs[0].self_id, init(), share_of(ctxs, index))
    assert isinstance(session, EncryptionSession)
    assert effects == [Send(ctxs[0].self_id, ConfirmEncryption(SID))]
    return session


def failed_with(effects: list[Effect], error: type[Exception]) -> None:
    assert len(effects) == 1 and isinstance(effects[0], Fail), effects
    assert isinstance(effects[0].error, error)


# --- the master factory -----------------------------------------------------------------------


def test_master_asks_every_other_holder() -> None:
    ctxs, session, effects = master_of(4)
    assert [s.to for s in sends(effects)] == [c.self_id for c in ctxs[1:]]
    assert all(s.message == init() for s in sends(effects))
    assert session.phase is EncryptionPhase.WAITING_FOR_CONFIRMATIONS
    assert session.participants == ctxs[0].cluster_nodes and session.WRITES_KEY


def test_master_rejects_without_key_stranger_and_second_store() -> None:
    ctxs = contexts(3, seed=3)
    ctx = ctxs[0]
    with pytest.raises(ServerKeyNotFound):
        start_encryption(ctx, SID, store(), None, ctx.cluster_nodes)
    with pytest.raises(AccessDenied):
        start_encryption(ctx, SID, store(STRANGER_KEY), share_of(ctxs, 0), ctx.cluster_nodes)
    stored = share_of(ctxs, 0).with_document_key(COMMON, ENCRYPTED)
    with pytest.raises(DocumentKeyAlreadyStored):
        start_encryption(ctx, SID, store(), stored, ctx.cluster_nodes)


def test_master_needs_every_holder_connected_and_to_hold_the_newest_version() -> None:
    ctxs = contexts(3, seed=3)
    connected = frozenset({ctxs[0].self_id, ctxs[1].self_id})
    with pytest.raises(ConsensusUnreachable):
        start_encryption(ctxs[0], SID, store(), share_of(ctxs, 0), connected)
    # holders are the first two nodes only: node 2 does not hold the newest version
    with pytest.raises(ConsensusUnreachable):
        start_encryption(ctxs[2], SID, store(), share_of(ctxs, 2, 2), ctxs[2].cluster_nodes)
    # but the holders alone suffice
    _, effects = start_encryption(ctxs[0], SID, store(), share_of(ctxs, 0, 2), connected)
    assert [s.to for s in sends(effects)] == [ctxs[1].self_id]


def test_single_holder_stores_and_finishes_at_once() -> None:
    ctx = contexts(1, seed=3)[0]
    share = share_of([ctx], 0)
    _, effects = start_encryption(ctx, SID, store(), share, ctx.cluster_nodes)
    persist, finish = effects
    assert isinstance(persist, Persist) and not persist.create
    assert persist.share == share.with_document_key(COMMON, ENCRYPTED)
    assert finish == Finish(SID, None)


# --- the master's phases ------------------------------------------------------------------------


def test_master_commits_when_all_confirmed_and_finishes_when_all_stored() -> None:
    ctxs, session, _ = master_of(3)
    assert session.on_message(ctxs[1].self_id, ConfirmEncryption(SID)) == []
    effects = session.on_message(ctxs[2].self_id, ConfirmEncryption(SID))
    persist = effects[0]
    assert isinstance(persist, Persist) and not persist.create
    assert persist.share.common_point == COMMON and persist.share.encrypted_point == ENCRYPTED
    assert [(s.to, s.message) for s in sends(effects)] == [
        (c.self_id, CommitEncryption(SID)) for c in ctxs[1:]
    ]
    assert session.phase is EncryptionPhase.WAITING_FOR_STORED
    assert session.on_message(ctxs[2].self_id, EncryptionStored(SID)) == []
    assert session.on_message(ctxs[1].self_id, EncryptionStored(SID)) == [Finish(SID, None)]


@pytest.mark.parametrize(
    "message", [CommitEncryption(SID), EncryptionStored(SID), init(), "not a message"]
)
def test_master_rejects_messages_out_of_turn(message: object) -> None:
    ctxs, session, _ = master_of()
    failed_with(session.on_message(ctxs[1].self_id, message), ProtocolViolation)


def test_master_rejects_a_second_confirmation_and_a_second_stored() -> None:
    ctxs, session, _ = master_of()
    session.on_message(ctxs[1].self_id, ConfirmEncryption(SID))
    failed_with(session.on_message(ctxs[1].self_id, ConfirmEncryption(SID)), ProtocolViolation)
    ctxs, session, _ = master_of()
    for ctx in ctxs[1:]:
        session.on_message(ctx.self_id, ConfirmEncryption(SID))
    session.on_message(ctxs[1].self_id, EncryptionStored(SID))
    failed_with(session.on_message(ctxs[1].self_id, EncryptionStored(SID)), ProtocolViolation)


# --- the slave -------------------------------------------------------------------------------


def test_slave_rejects_without_key_stranger_second_store_and_outsiders() -> None:
    ctxs = contexts(3, seed=3)
    master = ctxs[0].self_id
    with pytest.raises(ServerKeyNotFound):
        join_encryption(ctxs[1], master, init(), None)
    with pytest.raises(AccessDenied):
        join_encryption(ctxs[1], master, init(STRANGER_KEY), share_of(ctxs, 1))
    stored = share_of(ctxs, 1).with_document_key(COMMON, ENCRYPTED)
    with pytest.raises(DocumentKeyAlreadyStored):
        join_encryption(ctxs[1], master, init(), stored)
    # node 2 is outside the newest version: asking it, or being asked by it, is a violation
    with pytest.raises(ProtocolViolation):
        join_encryption(ctxs[1], ctxs[2].self_id, init(), share_of(ctxs, 1, 2))
    with pytest.raises(ProtocolViolation):
        join_encryption(ctxs[2], master, init(), share_of(ctxs, 2, 2))


def test_slave_stores_on_commit_only() -> None:
    ctxs, _, _ = master_of()
    slave = slave_of(ctxs)
    assert slave.phase is EncryptionPhase.WAITING_FOR_COMMIT
    persist, stored, finish = slave.on_message(ctxs[0].self_id, CommitEncryption(SID))
    assert isinstance(persist, Persist) and not persist.create and persist.key_id == KEY
    assert persist.share == share_of(ctxs, 1).with_document_key(COMMON, ENCRYPTED)
    assert stored == Send(ctxs[0].self_id, EncryptionStored(SID))
    assert finish == Finish(SID, None)


@pytest.mark.parametrize("message", [ConfirmEncryption(SID), EncryptionStored(SID), init()])
def test_slave_rejects_messages_out_of_turn(message: object) -> None:
    ctxs, _, _ = master_of()
    failed_with(slave_of(ctxs).on_message(ctxs[0].self_id, message), ProtocolViolation)


def test_slave_takes_the_commit_from_the_master_only() -> None:
    ctxs, _, _ = master_of()
    failed_with(
        slave_of(ctxs).on_message(ctxs[2].self_id, CommitEncryption(SID)), ProtocolViolation
    )


def test_disconnect_and_timeout_fail_before_anything_is_stored() -> None:
    ctxs, session, _ = master_of()
    failed_with(session.on_node_disconnected(ctxs[2].self_id), NodeDisconnected)
    failed_with(slave_of(ctxs).on_node_disconnected(ctxs[0].self_id), NodeDisconnected)
    ctxs, session, _ = master_of()
    failed_with(session.on_timeout(), SessionTimeout)


def test_a_timeout_names_the_holders_the_session_waits_for() -> None:
    ctxs, session, _ = master_of(4)
    ids = [ctx.self_id for ctx in ctxs]
    assert session.on_message(ids[2], ConfirmEncryption(SID)) == []
    assert session.waiting_for() == {ids[1], ids[3]}
    (fail,) = session.on_timeout()
    assert isinstance(fail, Fail) and isinstance(fail.error, SessionTimeout)
    assert fail.error.node == f"{short(min(ids[1], ids[3]))}, {short(max(ids[1], ids[3]))}"
    (fail,) = slave_of(ctxs).on_timeout()  # a slave waits for the master's commit
    assert isinstance(fail, Fail) and isinstance(fail.error, SessionTimeout)
    assert fail.error.node == short(ids[0])


def test_a_second_store_by_a_stranger_is_already_stored_not_access_denied() -> None:
    # Parity checks for a stored document key before the author: HTTP 400, not 403.
    ctxs = contexts(3, seed=3)
    ctx = ctxs[0]
    stored = share_of(ctxs, 0).with_document_key(COMMON, ENCRYPTED)
    with pytest.raises(DocumentKeyAlreadyStored):
        start_encryption(ctx, SID, store(STRANGER_KEY), stored, ctx.cluster_nodes)
    stored = share_of(ctxs, 1).with_document_key(COMMON, ENCRYPTED)
    with pytest.raises(DocumentKeyAlreadyStored):
        join_encryption(ctxs[1], ctx.self_id, init(STRANGER_KEY), stored)


# --- who asked: every node recovers it itself; bound requests -----------------------------------


def strict(ctx: SessionContext) -> SessionContext:
    return replace(ctx, require_bound_requests=True)


def test_the_requester_is_recovered_from_the_proof_not_taken_from_the_master() -> None:
    ctxs = contexts(3, seed=3)
    master = ctxs[0].self_id
    share = share_of(ctxs, 1)
    # the author's signature over another key id recovers someone else
    other_key = InitializeEncryption(SID, KEY, proof(key_id=b"\x99" * 32), COMMON, ENCRYPTED, None)
    with pytest.raises(AccessDenied):
        join_encryption(ctxs[1], master, other_key, share)
    # a signature that recovers nothing
    unusable = RequesterProof.signature(bytes(64) + b"\x00")
    with pytest.raises(InvalidRequest):
        join_encryption(ctxs[1], master, replace(init(), requester=unusable), share)
    with pytest.raises(InvalidRequest):
        start_encryption(
            ctxs[0], SID, replace(store(), requester=unusable), share_of(ctxs, 0), frozenset()
        )


def test_a_bound_store_is_accepted_by_master_and_slaves_and_forwarded() -> None:
    ctxs = [strict(ctx) for ctx in contexts(3, seed=3)]
    _, effects = start_encryption(
        ctxs[0], SID, store(bound_signature=bound()), share_of(ctxs, 0), ctxs[0].cluster_nodes
    )
    assert all(s.message == init(bound_signature=bound()) for s in sends(effects))
    _, effects = join_encryption(
        ctxs[1], ctxs[0].self_id, init(bound_signature=bound()), share_of(ctxs, 1)
    )
    assert effects == [Send(ctxs[0].self_id, ConfirmEncryption(SID))]


@pytest.mark.parametrize(
    "bad_bound",
    [
        bound(requester=STRANGER_KEY),  # by another key
        bound(common=ENCRYPTED, encrypted=COMMON),  # over other points
        bound(key_id=b"\x99" * 32),  # for another key
        bytes(64) + b"\x01",  # recovers nothing
    ],
    ids=["another-key", "other-points", "other-key-id", "unusable"],
)
def test_a_bound_signature_that_does_not_fit_is_refused_whatever_the_policy(
    bad_bound: bytes,
) -> None:
    for ctxs in (contexts(3, seed=3), [strict(c) for c in contexts(3, seed=3)]):
        with pytest.raises(InvalidRequest):
            start_encryption(
                ctxs[0],
                SID,
                store(bound_signature=bad_bound),
                share_of(ctxs, 0),
                ctxs[0].cluster_nodes,
            )
        with pytest.raises(InvalidRequest):
            join_encryption(
                ctxs[1], ctxs[0].self_id, init(bound_signature=bad_bound), share_of(ctxs, 1)
            )


def test_each_node_refuses_the_unbound_form_by_its_own_policy() -> None:
    lax = contexts(3, seed=3)
    ctxs = [lax[0], strict(lax[1]), lax[2]]  # only node 1 requires bound requests
    session, _ = start_encryption(ctxs[0], SID, store(), share_of(ctxs, 0), ctxs[0].cluster_nodes)
    assert isinstance(session, EncryptionSession)
    with pytest.raises(UnboundRequest):
        join_encryption(ctxs[1], ctxs[0].self_id, init(), share_of(ctxs, 1))
    join_encryption(ctxs[2], ctxs[0].self_id, init(), share_of(ctxs, 2))
    with pytest.raises(UnboundRequest):
        start_encryption(strict(lax[0]), SID, store(), share_of(ctxs, 0), frozenset())
