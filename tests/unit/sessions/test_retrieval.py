"""Server key retrieval fed by hand: negotiation, then the author check (as Parity)."""

from __future__ import annotations

from secretstore.crypto.curve import Point, Scalar
from secretstore.errors import AccessDenied, ConsensusUnreachable, ServerKeyNotFound
from secretstore.sessions import key_version, retrieval
from secretstore.sessions.base import Fail, Finish
from secretstore.sessions.retrieval import RetrievalSession, RetrieveServerKey, start_retrieval
from secretstore.storage.model import KeyShare, KeyShareVersion
from secretstore.types import Address, Hash256, NodeId, ServerKeyId, SessionId
from secretstore.wire.negotiation import (
    CommonKeyData,
    KeyVersions,
    KeyVersionsHeld,
    RequestKeyVersions,
)
from tests.unit.sessions.hand_feeding import contexts, sends

SID = SessionId(b"\x35" * 32)
KEY = ServerKeyId(b"\x37" * 32)
AUTHOR = Address(b"\x3a" * 20)
STRANGER = Address(b"\x3b" * 20)
PUBLIC = Point.base_mul(Scalar(17))


def start(
    requester: Address, own_key: bool = True
) -> tuple[list[NodeId], RetrievalSession, KeyVersionsHeld]:
    """A retrieval master among 3 holders of a t=1 key, with its requests checked."""
    ctxs = contexts(3, seed=7)
    ids = [c.self_id for c in ctxs]
    version = KeyShareVersion.create({n: Scalar(i + 1) for i, n in enumerate(ids)}, Scalar(3))
    share = KeyShare(AUTHOR, 1, PUBLIC, None, None, (version,))
    held = KeyVersionsHeld(CommonKeyData(AUTHOR, 1, PUBLIC), (Hash256(version.hash),))
    session, effects = start_retrieval(
        ctxs[0], SID, RetrieveServerKey(KEY, requester), share if own_key else None, frozenset(ids)
    )
    assert isinstance(session, RetrievalSession)
    assert [(s.to, s.message) for s in sends(effects)] == [
        (node, RequestKeyVersions(SID, KEY)) for node in ids[1:]
    ]
    return ids, session, held


def test_the_author_gets_the_public() -> None:
    ids, session, held = start(AUTHOR)
    assert session.on_message(ids[1], KeyVersions(SID, held)) == []
    assert session.on_message(ids[2], KeyVersions(SID, held)) == [Finish(SID, PUBLIC)]


def test_a_master_without_the_key_still_answers() -> None:
    ids, session, held = start(AUTHOR, own_key=False)
    session.on_message(ids[1], KeyVersions(SID, held))
    assert session.on_message(ids[2], KeyVersions(SID, held)) == [Finish(SID, PUBLIC)]


def test_anyone_else_is_denied() -> None:
    ids, session, held = start(STRANGER)
    session.on_message(ids[1], KeyVersions(SID, held))
    (fail,) = session.on_message(ids[2], KeyVersions(SID, held))
    assert isinstance(fail, Fail) and isinstance(fail.error, AccessDenied)


def test_unknown_key_is_not_found_before_access_is_checked() -> None:
    ids, session, _ = start(STRANGER, own_key=False)
    session.on_message(ids[1], KeyVersions(SID, KeyVersionsHeld(None, ())))
    (fail,) = session.on_message(ids[2], KeyVersions(SID, KeyVersionsHeld(None, ())))
    assert isinstance(fail, Fail) and isinstance(fail.error, ServerKeyNotFound)


def test_fewer_than_t_plus_1_holders_is_unreachable() -> None:
    ids, session, held = start(AUTHOR, own_key=False)
    session.on_node_disconnected(ids[1])
    (fail,) = session.on_message(ids[2], KeyVersions(SID, held))
    assert isinstance(fail, Fail) and isinstance(fail.error, ConsensusUnreachable)


def test_slaves_answer_through_the_negotiation() -> None:
    assert retrieval.SLAVES == {}
    assert RequestKeyVersions in key_version.SLAVES
    assert {RetrieveServerKey: start_retrieval} == retrieval.MASTERS
