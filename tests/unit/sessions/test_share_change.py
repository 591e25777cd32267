"""One key's redistribution by hand (sessions/admin/share_change.py): a dealer refuses a
master's request that does not fit its copy; a target refuses subshares that disagree, do not
match their commitments, or were dealt from a share other than the dealer's own."""

from __future__ import annotations

from dataclasses import replace

import pytest

from secretstore.crypto.curve import ONE, Point, Scalar
from secretstore.crypto.keys import KeyPair
from secretstore.crypto.redistribution import deal_subshares
from secretstore.crypto.rng import SeededRng
from secretstore.crypto.shamir import evaluate_point_polynomial, reconstruct_secret
from secretstore.sessions.admin.share_change import KeyFault, KeyReceipt, deal
from secretstore.types import Hash256, NodeId, ServerKeyId, SessionId
from secretstore.wire.admin import KeyDeal, KeySubshare, NodeNumber
from tests.sim.dealer import DealtKey, deal_key

RNG = SeededRng(b"share change")
A, B, C, D = sorted(KeyPair.generate(RNG).node_id for _ in range(4))
MASTER = A
KEY = ServerKeyId(b"\x21" * 32)
SID = SessionId(b"\x22" * 32)
NEW_SET = frozenset({A, B, C, D})
FRESH = Scalar(12345)


def setup(with_commitments: bool = True) -> tuple[DealtKey, KeyDeal]:
    dealt = deal_key(RNG, [A, B, C], 1, with_commitments=with_commitments)
    version = dealt.shares[A].last_version()
    request = KeyDeal(SID, KEY, Hash256(version.hash), (A, B), (NodeNumber(D, FRESH),))
    return dealt, request


def dealings(dealt: DealtKey, request: KeyDeal) -> dict[NodeId, dict[NodeId, KeySubshare]]:
    """dealer -> target -> subshare."""
    out: dict[NodeId, dict[NodeId, KeySubshare]] = {}
    for dealer in request.dealers:
        sent = deal(
            dealer,
            SID,
            request,
            master=MASTER,
            share=dealt.shares[dealer],
            new_set=NEW_SET,
            rng=RNG,
        )
        out[dealer] = dict(sent)
    return out


def receive(target: NodeId, messages: dict[NodeId, KeySubshare], dealt: DealtKey | None = None):
    first_dealer = next(iter(messages))
    receipt = KeyReceipt.start(target, first_dealer, messages[first_dealer], NEW_SET, MASTER)
    done = False
    for dealer, message in messages.items():
        done = receipt.add(dealer, message)
    assert done
    own = dealt.shares.get(target) if dealt is not None else None
    return receipt.complete(target, own)


def test_every_target_gets_a_share_of_one_new_version_of_the_same_key() -> None:
    dealt, request = setup()
    sent = dealings(dealt, request)
    new = {t: receive(t, {d: sent[d][t] for d in request.dealers}, dealt) for t in sorted(NEW_SET)}
    hashes = {n.version.hash for n in new.values()}
    assert len(hashes) == 1
    version = new[A].version
    assert set(version.nodes) == NEW_SET
    # kept nodes keep their id numbers, the new one has the fresh number
    old = dealt.shares[A].last_version()
    assert version.id_number(B) == old.id_number(B) and version.id_number(D) == FRESH
    assert new[D].create and not new[A].create
    assert new[A].record.versions[-1] == version and len(new[A].record.versions) == 2
    numbers = version.id_numbers_map()
    for pair in ([A, D], [B, C], [C, D]):
        shares = [new[n].version.secret_share for n in pair]
        assert reconstruct_secret(1, shares, [numbers[n] for n in pair]) == dealt.secret
    assert new[D].record.common_point == dealt.shares[A].common_point
    assert new[C].share_public == Point.base_mul(new[C].version.secret_share)


@pytest.mark.parametrize(
    "change",
    [
        {"dealers": (A,)},  # not t+1
        {"dealers": (B, A)},  # not ascending
        {"dealers": (A, D)},  # D does not hold the version
        {"fresh": ()},  # D would keep a number it does not have
        {"fresh": (NodeNumber(D, FRESH), NodeNumber(B, FRESH))},  # a number twice
        {"version": Hash256(b"\x00" * 32)},  # a version nobody holds
    ],
)
def test_a_dealer_refuses_a_request_that_does_not_fit_and_names_the_master(
    change: dict[str, object],
) -> None:
    dealt, request = setup()
    with pytest.raises(KeyFault) as raised:
        deal(
            A,
            SID,
            replace(request, **change),
            master=MASTER,
            share=dealt.shares[A],
            new_set=NEW_SET,
            rng=RNG,
        )  # type: ignore[arg-type]
    assert raised.value.culprits == (MASTER,)


def test_a_subshare_off_its_commitments_names_its_dealer() -> None:
    dealt, request = setup()
    sent = dealings(dealt, request)
    messages = {d: sent[d][D] for d in request.dealers}
    messages[B] = replace(messages[B], value=messages[B].value + ONE)
    with pytest.raises(KeyFault) as raised:
        receive(D, messages)
    assert raised.value.culprits == (B,)
    assert "commitments" in raised.value.what


@pytest.mark.parametrize("with_commitments", [True, False])
def test_a_dealer_dealing_from_another_share_is_caught(with_commitments: bool) -> None:
    # B deals a self-consistent polynomial around a share it does not hold: every Feldman
    # check passes; with the version's commitments its C_i0 is not its public share (B is
    # named), without them the dealers' free terms no longer add up to the key (both named)
    dealt, request = setup(with_commitments)
    sent = dealings(dealt, request)
    forged = deal_subshares(Scalar(777), 1, RNG)
    messages = {d: sent[d][D] for d in request.dealers}
    x = {p.node: p.number for p in sent[B][D].new_numbers}[D]
    messages[B] = replace(messages[B], value=forged.value_for(x), commitments=forged.commitments)
    with pytest.raises(KeyFault) as raised:
        receive(D, messages)
    if with_commitments:
        assert raised.value.culprits == (B,)
        assert "not its share" in raised.value.what
    else:
        assert set(raised.value.culprits) == {A, B}
        assert "do not combine to the key" in raised.value.what


def test_the_new_version_carries_the_redistributed_commitments() -> None:
    dealt, request = setup()
    sent = dealings(dealt, request)
    for target in sorted(NEW_SET):
        new = receive(target, {d: sent[d][target] for d in request.dealers}, dealt)
        commitments = new.version.commitments
        assert commitments is not None and len(commitments) == 2
        assert commitments[0] == dealt.public
        number = new.version.id_number(target)
        assert number is not None
        assert evaluate_point_polynomial(commitments, number) == new.share_public
    # a key without commitments gets them with its first redistribution
    bare, bare_request = setup(with_commitments=False)
    sent = dealings(bare, bare_request)
    new = receive(D, {d: sent[d][D] for d in bare_request.dealers})
    assert new.version.commitments is not None and new.version.commitments[0] == bare.public


def test_dealers_lying_about_the_version_commitments_are_refused() -> None:
    dealt, request = setup()
    sent = dealings(dealt, request)
    other = deal_subshares(Scalar(5), 1, RNG).commitments

    def lying(target: NodeId) -> dict[NodeId, KeySubshare]:
        return {d: replace(sent[d][target], version_commitments=other) for d in request.dealers}

    with pytest.raises(KeyFault, match="other commitments"):
        receive(C, lying(C), dealt)  # C holds the version: its own copy disagrees
    with pytest.raises(KeyFault, match="commitments of another key"):
        receive(D, lying(D))  # D does not: their first one is not the key


def test_dealers_that_disagree_are_refused() -> None:
    dealt, request = setup()
    sent = dealings(dealt, request)
    messages = {d: sent[d][D] for d in request.dealers}
    other = replace(messages[B].common, author=b"\x01" * 20)  # type: ignore[arg-type]
    messages[B] = replace(messages[B], common=other)
    with pytest.raises(KeyFault, match="different key data") as caught:
        receive(D, messages)
    assert caught.value.culprits == (A, B)  # the key data is the dealers' own


def test_dealers_told_different_things_name_the_master_too() -> None:
    # B was told other fresh id numbers than A: the dealers or the master (C here) lie
    dealt, request = setup()
    sent = dealings(dealt, request)
    other = dealings(dealt, replace(request, fresh=(NodeNumber(D, FRESH + ONE),)))
    messages = {A: sent[A][D], B: other[B][D]}
    receipt = KeyReceipt.start(D, A, messages[A], NEW_SET, C)
    receipt.add(A, messages[A])
    receipt.add(B, messages[B])
    with pytest.raises(KeyFault, match="different key data") as caught:
        receipt.complete(D, None)
    assert caught.value.culprits == tuple(sorted((A, B, C)))


def test_a_target_with_the_key_checks_the_dealers_against_its_record() -> None:
    dealt, request = setup()
    sent = dealings(dealt, request)
    messages = {d: sent[d][C] for d in request.dealers}
    for dealer in request.dealers:  # every dealer says so: the data still differs from C's
        messages[dealer] = replace(
            messages[dealer], common=replace(messages[dealer].common, threshold=2)
        )
    with pytest.raises(KeyFault):
        receive(C, messages, dealt)


def test_a_stranger_or_a_second_different_subshare_is_refused() -> None:
    dealt, request = setup()
    sent = dealings(dealt, request)
    receipt = KeyReceipt.start(D, A, sent[A][D], NEW_SET, MASTER)
    with pytest.raises(KeyFault, match="disagree on the dealers") as caught:
        receipt.add(C, sent[A][D])
    # which of them lies (or whether the master told them different things) is unknown
    assert caught.value.culprits == tuple(sorted({A, C, MASTER}))
    receipt.add(A, sent[A][D])
    assert not receipt.add(A, sent[A][D])  # the same again is fine
    with pytest.raises(KeyFault, match="two different"):
        receipt.add(A, replace(sent[A][D], value=sent[A][D].value + ONE))
    with pytest.raises(KeyFault, match="not the new set"):
        KeyReceipt.start(D, A, sent[A][D], frozenset({A, B, C}), MASTER)


def test_a_first_subshare_naming_other_dealers_gets_no_real_dealer_blamed_alone() -> None:
    # A's subshare comes first and names A and C as the dealers: B, a real dealer, is then
    # outside them, and D cannot tell which of A and B lies: both are named
    dealt, request = setup()
    sent = dealings(dealt, request)
    lie = sent[A][D]
    numbers = tuple(
        sorted((lie.dealer_numbers[0], NodeNumber(C, Scalar(77))), key=lambda p: p.node)
    )
    receipt = KeyReceipt.start(D, A, replace(lie, dealer_numbers=numbers), NEW_SET, MASTER)
    with pytest.raises(KeyFault) as caught:
        receipt.add(B, sent[B][D])
    assert caught.value.culprits == tuple(sorted({A, B, MASTER}))
