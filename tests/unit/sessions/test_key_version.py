"""Key version negotiation fed by hand: the embeddable object and the session."""

from __future__ import annotations

import pytest

from secretstore.crypto.curve import Point, Scalar
from secretstore.errors import (
    ConsensusUnreachable,
    ProtocolViolation,
    ServerKeyNotFound,
    SessionTimeout,
)
from secretstore.sessions.base import Effect, Fail, Finish, Send, SessionContext, short
from secretstore.sessions.key_version import (
    KeyVersionSession,
    NegotiatedVersion,
    NegotiateKeyVersion,
    VersionNegotiation,
    answer_negotiation,
    describe_holding,
    start_negotiation,
)
from secretstore.storage.model import KeyShare, KeyShareVersion
from secretstore.types import Address, Hash256, NodeId, ServerKeyId, SessionId
from secretstore.wire.negotiation import (
    CommonKeyData,
    KeyVersions,
    KeyVersionsHeld,
    RequestKeyVersions,
)
from tests.unit.sessions.hand_feeding import contexts, sends

SID = SessionId(b"\x25" * 32)
KEY = ServerKeyId(b"\x27" * 32)
AUTHOR = Address(b"\x2a" * 20)
PUBLIC = Point.base_mul(Scalar(7))
COMMON = CommonKeyData(AUTHOR, 1, PUBLIC)


def version(nodes: list[NodeId], secret: int = 5) -> KeyShareVersion:
    return KeyShareVersion.create({n: Scalar(i + 1) for i, n in enumerate(nodes)}, Scalar(secret))


def share(versions: list[KeyShareVersion], threshold: int = 1) -> KeyShare:
    return KeyShare(AUTHOR, threshold, PUBLIC, None, None, tuple(versions))


def held(*versions: KeyShareVersion, common: CommonKeyData = COMMON) -> KeyVersionsHeld:
    return KeyVersionsHeld(common, tuple(Hash256(v.hash) for v in versions))


NOTHING = KeyVersionsHeld(None, ())


def nodes_of(n: int) -> tuple[list[SessionContext], list[NodeId]]:
    ctxs = contexts(n, seed=5)
    return ctxs, [c.self_id for c in ctxs]


# --- describe_holding ------------------------------------------------------------------------


def test_describe_holding_lists_versions_oldest_first() -> None:
    _, ids = nodes_of(3)
    old, new = version(ids), version(ids[:2])
    assert describe_holding(None) == NOTHING
    assert describe_holding(share([old, new])) == held(old, new)


def test_describe_holding_says_which_versions_keep_their_commitments() -> None:
    _, ids = nodes_of(3)
    old = version(ids[:2])
    new = KeyShareVersion.create(
        {n: Scalar(i + 1) for i, n in enumerate(ids)}, Scalar(5), [PUBLIC, PUBLIC]
    )
    assert describe_holding(share([old, new])).proven == (Hash256(new.hash),)


# --- VersionNegotiation ------------------------------------------------------------------------


def test_all_holders_answer_and_the_version_is_chosen() -> None:
    _, ids = nodes_of(3)
    v = version(ids)
    negotiation = VersionNegotiation(ids[0], share([v]), ids)
    assert negotiation.asked == frozenset(ids[1:]) and not negotiation.done
    negotiation.on_versions(ids[1], held(v))
    negotiation.on_versions(ids[2], held(v))
    assert negotiation.done
    assert negotiation.result() == NegotiatedVersion(Hash256(v.hash), frozenset(ids), COMMON)
    assert negotiation.result().threshold == 1


def test_the_newest_version_with_t_plus_1_holders_wins() -> None:
    _, ids = nodes_of(4)
    old, new = version(ids), version(ids[1:])
    negotiation = VersionNegotiation(ids[0], share([old]), ids)
    negotiation.on_versions(ids[1], held(old, new))
    negotiation.on_versions(ids[2], held(old, new))
    negotiation.on_versions(ids[3], held(new))
    outcome = negotiation.result()
    assert outcome.version == new.hash and outcome.holders == frozenset(ids[1:])


def test_a_newer_version_without_t_plus_1_holders_loses() -> None:
    _, ids = nodes_of(4)
    old, new = version(ids), version(ids[2:])
    negotiation = VersionNegotiation(ids[0], share([old], 2), ids)
    common = CommonKeyData(AUTHOR, 2, PUBLIC)
    negotiation.on_versions(ids[1], held(old, common=common))
    negotiation.on_node_gone(ids[2])  # would have held both
    negotiation.on_versions(ids[3], held(old, new, common=common))
    outcome = negotiation.result()
    assert outcome.version == old.hash
    assert outcome.holders == frozenset({ids[0], ids[1], ids[3]})


def test_no_holder_means_not_found_and_too_few_means_unreachable() -> None:
    _, ids = nodes_of(3)
    negotiation = VersionNegotiation(ids[0], None, ids)
    negotiation.on_versions(ids[1], NOTHING)
    negotiation.on_node_gone(ids[2])
    with pytest.raises(ServerKeyNotFound):
        negotiation.result()
    v = version(ids)
    negotiation = VersionNegotiation(ids[0], None, ids)
    negotiation.on_versions(ids[1], held(v))
    negotiation.on_versions(ids[2], NOTHING)
    with pytest.raises(ConsensusUnreachable, match=r"\(t\+1: 2 needed, at most 1 reachable\)"):
        negotiation.result()


def test_the_error_says_what_the_operation_needs_and_how_many_are_reachable() -> None:
    _, ids = nodes_of(3)
    v = version(ids)
    negotiation = VersionNegotiation(ids[0], share([v]), ids)
    negotiation.on_versions(ids[1], held(v))
    negotiation.on_node_gone(ids[2])
    assert negotiation.result().holders == frozenset(ids[:2])  # t+1 = 2 holders suffice
    with pytest.raises(ConsensusUnreachable) as raised:
        negotiation.result(lambda t: 2 * t + 1, "ECDSA needs 2t+1")
    assert str(raised.value) == (
        "no version of the key is held by 3 reachable key servers (ECDSA needs 2t+1: 3 needed, "
        f"at most 2 reachable; node {short(ids[2])} disconnected)"
    )


def test_a_master_without_the_key_takes_the_common_data_from_the_answers() -> None:
    _, ids = nodes_of(3)
    v = version(ids[1:])
    negotiation = VersionNegotiation(ids[0], None, ids)
    negotiation.on_versions(ids[1], held(v))
    negotiation.on_versions(ids[2], held(v))
    assert negotiation.result().holders == frozenset(ids[1:])


@pytest.mark.parametrize(
    "answer",
    [
        KeyVersionsHeld(None, (Hash256(b"\x01" * 32),)),
        KeyVersionsHeld(COMMON, ()),
        KeyVersionsHeld(COMMON, (Hash256(b"\x01" * 32), Hash256(b"\x01" * 32))),
        KeyVersionsHeld(CommonKeyData(AUTHOR, 2, PUBLIC), (Hash256(b"\x01" * 32),)),
        KeyVersionsHeld(CommonKeyData(Address(b"\x01" * 20), 1, PUBLIC), (Hash256(b"\x01" * 32),)),
        KeyVersionsHeld(
            CommonKeyData(AUTHOR, 1, Point.base_mul(Scalar(8))), (Hash256(b"\x01" * 32),)
        ),
    ],
)
def test_inconsistent_answers_name_their_sender(answer: KeyVersionsHeld) -> None:
    _, ids = nodes_of(3)
    negotiation = VersionNegotiation(ids[0], share([version(ids)]), ids)
    with pytest.raises(ProtocolViolation) as info:
        negotiation.on_versions(ids[1], answer)
    assert info.value.node == ids[1][:4].hex()


OTHER = CommonKeyData(AUTHOR, 1, Point.base_mul(Scalar(8)))


@pytest.mark.parametrize("liar", [1, 2, 3])
def test_a_master_without_the_key_names_the_holder_whose_data_differs_from_the_others(
    liar: int,
) -> None:
    # whichever answers first: a master that holds nothing has no data of its own to trust
    _, ids = nodes_of(4)
    v = version(ids[1:])
    negotiation = VersionNegotiation(ids[0], None, ids)
    for node in ids[1:]:
        negotiation.on_versions(node, held(v, common=OTHER if node == ids[liar] else COMMON))
    with pytest.raises(ProtocolViolation) as info:
        negotiation.result()
    assert info.value.node == short(ids[liar])


def test_a_master_without_the_key_and_holders_split_evenly_names_them_all() -> None:
    _, ids = nodes_of(3)
    v = version(ids[1:])
    negotiation = VersionNegotiation(ids[0], None, ids)
    negotiation.on_versions(ids[1], held(v, common=OTHER))
    negotiation.on_versions(ids[2], held(v))
    with pytest.raises(ProtocolViolation) as info:
        negotiation.result()
    assert info.value.node == ", ".join(sorted([short(ids[1]), short(ids[2])]))


def test_unasked_and_repeated_answers_are_violations() -> None:
    _, ids = nodes_of(3)
    negotiation = VersionNegotiation(ids[0], None, ids[:2])
    with pytest.raises(ProtocolViolation):
        negotiation.on_versions(ids[2], NOTHING)
    negotiation.on_versions(ids[1], NOTHING)
    with pytest.raises(ProtocolViolation):
        negotiation.on_versions(ids[1], NOTHING)


# --- the session ------------------------------------------------------------------------------


def master_of(
    n: int = 3, own: KeyShare | None = None
) -> tuple[list[NodeId], KeyVersionSession, list[Effect]]:
    ctxs, ids = nodes_of(n)
    session, effects = start_negotiation(
        ctxs[0], SID, NegotiateKeyVersion(KEY), own, frozenset(ids)
    )
    assert isinstance(session, KeyVersionSession)
    return ids, session, effects


def test_master_asks_every_other_connected_node_and_finishes_with_the_version() -> None:
    _, ids = nodes_of(3)
    v = version(ids)
    ids, session, effects = master_of(3, share([v]))
    assert [(s.to, s.message) for s in sends(effects)] == [
        (node, RequestKeyVersions(SID, KEY)) for node in ids[1:]
    ]
    assert session.on_message(ids[1], KeyVersions(SID, held(v))) == []
    (finish,) = session.on_message(ids[2], KeyVersions(SID, held(v)))
    assert finish == Finish(SID, NegotiatedVersion(Hash256(v.hash), frozenset(ids), COMMON))


def test_a_single_node_decides_at_once() -> None:
    ctxs, ids = nodes_of(1)
    v = version(ids)
    session, effects = start_negotiation(
        ctxs[0], SID, NegotiateKeyVersion(KEY), share([v], 0), frozenset(ids)
    )
    assert len(effects) == 1 and isinstance(effects[0], Finish) and session.finished
    _, effects = start_negotiation(ctxs[0], SID, NegotiateKeyVersion(KEY), None, frozenset(ids))
    assert isinstance(effects[0], Fail) and isinstance(effects[0].error, ServerKeyNotFound)


def test_disconnects_and_peer_errors_count_as_holding_nothing() -> None:
    _, ids = nodes_of(4)
    v = version(ids)
    ids, session, _ = master_of(4, share([v], 2))
    assert session.on_node_disconnected(ids[1]) == []
    assert session.on_peer_error(ids[2], "corrupt record") == []
    common = CommonKeyData(AUTHOR, 2, PUBLIC)
    (fail,) = session.on_message(ids[3], KeyVersions(SID, held(v, common=common)))
    assert isinstance(fail, Fail) and isinstance(fail.error, ConsensusUnreachable)


def test_timeout_decides_with_the_answers_it_has() -> None:
    _, ids = nodes_of(3)
    v = version(ids)
    ids, session, _ = master_of(3, share([v]))
    session.on_message(ids[1], KeyVersions(SID, held(v)))
    (finish,) = session.on_timeout()
    assert isinstance(finish, Finish) and isinstance(finish.result, NegotiatedVersion)
    assert finish.result.holders == frozenset(ids[:2])


def test_timeout_without_a_usable_version_while_nodes_are_silent_is_a_timeout() -> None:
    ids, session, _ = master_of(3, None)
    session.on_message(ids[1], KeyVersions(SID, NOTHING))
    (fail,) = session.on_timeout()
    assert isinstance(fail, Fail) and isinstance(fail.error, SessionTimeout)
    assert fail.error.node == short(ids[2])  # the silent node, by name


@pytest.mark.parametrize("message", [RequestKeyVersions(SID, KEY), "not a message"])
def test_master_rejects_other_messages(message: object) -> None:
    ids, session, _ = master_of()
    (fail,) = session.on_message(ids[1], message)
    assert isinstance(fail, Fail) and isinstance(fail.error, ProtocolViolation)


def test_master_fails_on_an_inconsistent_answer() -> None:
    _, ids = nodes_of(3)
    ids, session, _ = master_of(3, share([version(ids)]))
    versions_without_data = KeyVersionsHeld(None, (Hash256(b"\x02" * 32),))
    (fail,) = session.on_message(ids[1], KeyVersions(SID, versions_without_data))
    assert isinstance(fail, Fail) and isinstance(fail.error, ProtocolViolation)


def test_slave_answers_with_its_holding_and_ends() -> None:
    ctxs, ids = nodes_of(2)
    v = version(ids, 9)
    session, effects = answer_negotiation(ctxs[1], ids[0], RequestKeyVersions(SID, KEY), share([v]))
    assert effects[0] == Send(ids[0], KeyVersions(SID, held(v)))
    assert effects[1] == Finish(SID, None) and session.finished
    assert session.participants == frozenset(ids)
    _, effects = answer_negotiation(ctxs[1], ids[0], RequestKeyVersions(SID, KEY), None)
    assert effects[0] == Send(ids[0], KeyVersions(SID, NOTHING))


def test_the_holders_that_keep_the_chosen_versions_commitments_are_named() -> None:
    _, ids = nodes_of(3)
    v = version(ids)
    negotiation = VersionNegotiation(ids[0], None, ids)
    negotiation.on_versions(ids[1], KeyVersionsHeld(COMMON, (Hash256(v.hash),), (Hash256(v.hash),)))
    negotiation.on_versions(ids[2], held(v))
    assert negotiation.result().proven_by == frozenset({ids[1]})


def test_commitments_of_a_version_a_node_does_not_list_are_a_violation() -> None:
    _, ids = nodes_of(3)
    v, other = version(ids), version(ids[:2])
    negotiation = VersionNegotiation(ids[0], None, ids)
    lie = KeyVersionsHeld(COMMON, (Hash256(v.hash),), (Hash256(other.hash),))
    with pytest.raises(ProtocolViolation, match=short(ids[1])):
        negotiation.on_versions(ids[1], lie)
