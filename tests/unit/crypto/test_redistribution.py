"""Share redistribution: refresh, add nodes, change threshold, disjoint sets, blame, errors."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pytest
from hypothesis import given
from hypothesis import strategies as st

from secretstore.crypto import redistribution as rd
from secretstore.crypto import shadow, shamir
from secretstore.crypto.curve import ONE, ZERO, Point, Scalar
from secretstore.crypto.document import encrypt_secret
from secretstore.crypto.rng import Rng, SeededRng, random_scalar
from secretstore.errors import InvalidRequest, InvalidScalar

from .dkg_sim import run_key_generation

seeds = st.integers(min_value=0, max_value=2**64)


@dataclass(frozen=True)
class Sharing:
    threshold: int
    id_numbers: tuple[Scalar, ...]
    secret_shares: tuple[Scalar, ...]


@dataclass(frozen=True)
class Redistributed:
    new: Sharing
    holder_ids: list[Scalar]
    dealings: list[rd.RedistributionDealing]


def redistribute(
    old: Sharing, holders: Sequence[int], new_threshold: int, new_ids: Sequence[Scalar], rng: Rng
) -> Redistributed:
    """The t+1 old holders deal subshares; every new node verifies, weights and sums them."""
    holder_ids = [old.id_numbers[i] for i in holders]
    dealings = [rd.deal_subshares(old.secret_shares[i], new_threshold, rng) for i in holders]
    commitments = {k: d.commitments for k, d in enumerate(dealings)}
    new_shares = []
    for x_new in new_ids:
        values = {k: d.value_for(x_new) for k, d in enumerate(dealings)}
        assert rd.find_faulty_subshare_senders(new_threshold, x_new, values, commitments) == []
        subshares = [
            rd.compute_secret_subshare(
                old.threshold, values[k], holder_ids[k], holder_ids[:k] + holder_ids[k + 1 :]
            )
            for k in range(len(holders))
        ]
        new_shares.append(rd.compute_new_secret_share(subshares))
    return Redistributed(
        Sharing(new_threshold, tuple(new_ids), tuple(new_shares)), holder_ids, dealings
    )


def generated(t: int, n: int, rng: Rng) -> tuple[Sharing, Scalar, Point]:
    gen = run_key_generation(t, n, rng)
    assert gen.joint_public is not None
    return Sharing(t, gen.id_numbers, gen.secret_shares), gen.joint_secret, gen.joint_public


def first_shares(sharing: Sharing) -> Scalar:
    t = sharing.threshold
    return shamir.reconstruct_secret(t, sharing.secret_shares[: t + 1], sharing.id_numbers[: t + 1])


@pytest.mark.parametrize(("t", "n"), [(1, 4), (6, 10)])
def test_refreshing_shares_keeps_the_secret(t: int, n: int) -> None:
    rng = SeededRng(n)
    old, secret, _ = generated(t, n, rng)
    once = redistribute(old, range(t + 1), t, old.id_numbers, rng).new
    assert first_shares(once) == secret
    assert once.secret_shares != old.secret_shares
    twice = redistribute(once, range(n - t - 1, n), t, once.id_numbers, rng).new
    assert first_shares(twice) == secret


@pytest.mark.parametrize(("t", "n"), [(1, 3), (1, 4), (6, 10)])
def test_adding_nodes_keeps_the_secret(t: int, n: int) -> None:
    rng = SeededRng(n + 1)
    old, secret, _ = generated(t, n, rng)
    ids = old.id_numbers + shamir.random_id_numbers(2, rng, taken=old.id_numbers)
    plus_two = redistribute(old, range(t + 1), t, ids, rng).new
    assert first_shares(plus_two) == secret
    ids = plus_two.id_numbers + shamir.random_id_numbers(1, rng, taken=plus_two.id_numbers)
    plus_three = redistribute(plus_two, range(t + 1), t, ids, rng).new
    assert first_shares(plus_three) == secret
    # the new nodes' shares are usable: the last t+1 (including all new ones) reconstruct
    tail = slice(n + 3 - t - 1, n + 3)
    assert (
        shamir.reconstruct_secret(t, plus_three.secret_shares[tail], plus_three.id_numbers[tail])
        == secret
    )


def test_decreasing_threshold_keeps_the_secret() -> None:
    rng = SeededRng(3)
    old, secret, _ = generated(3, 5, rng)
    lower = redistribute(old, range(4), 2, old.id_numbers, rng).new
    assert first_shares(lower) == secret
    lowest = redistribute(lower, range(3), 0, lower.id_numbers, rng).new
    assert all(share == secret for share in lowest.secret_shares)


@st.composite
def redistribution_case(
    draw: st.DrawFn,
) -> tuple[int, int, int, int, str, list[int], list[int], int]:
    """(t, n, t', n', overlap mode, orderings of the old and of the new nodes, seed)."""
    n = draw(st.integers(min_value=1, max_value=5))
    t = draw(st.integers(min_value=0, max_value=n - 1))
    new_n = draw(st.integers(min_value=1, max_value=6))
    new_t = draw(st.integers(min_value=0, max_value=new_n - 1))
    mode = draw(st.sampled_from(["overlap", "disjoint", "same-prefix"]))
    old_order = draw(st.permutations(range(n)))
    return t, n, new_t, new_n, mode, old_order, draw(st.permutations(range(new_n))), draw(seeds)


def new_id_numbers(old: Sharing, new_n: int, mode: str, rng: Rng) -> list[Scalar]:
    if mode == "disjoint":
        return list(shamir.random_id_numbers(new_n, rng, taken=old.id_numbers))
    keep = list(old.id_numbers[: new_n // 2 + 1] if mode == "overlap" else old.id_numbers)[:new_n]
    return keep + list(shamir.random_id_numbers(new_n - len(keep), rng, taken=old.id_numbers))


@given(redistribution_case())
def test_redistribution_keeps_the_joint_key(
    case: tuple[int, int, int, int, str, list[int], list[int], int],
) -> None:
    t, n, new_t, new_n, mode, old_order, new_order, seed = case
    rng = SeededRng(seed)
    old, secret, joint_public = generated(t, n, rng)
    ids = new_id_numbers(old, new_n, mode, rng)
    holders = old_order[: t + 1]
    result = redistribute(old, holders, new_t, ids, rng)
    new = result.new
    commitments = [d.commitments for d in result.dealings]
    # the holders' commitments prove the joint public is kept ...
    assert rd.verify_redistributed_public(joint_public, result.holder_ids, commitments)
    # ... each new share public follows from them, and any t'+1 of those give Y back
    share_publics = [rd.new_share_public(x, result.holder_ids, commitments) for x in ids]
    assert share_publics == [Point.base_mul(s) for s in new.secret_shares]
    chosen = new_order[: new_t + 1]
    chosen_ids = [ids[k] for k in chosen]
    assert shamir.reconstruct_point(new_t, [share_publics[k] for k in chosen], chosen_ids) == (
        joint_public
    )
    # any t'+1 new shares reconstruct the secret; t' do not
    assert shamir.reconstruct_secret(new_t, [new.secret_shares[k] for k in chosen], chosen_ids) == (
        secret
    )
    if new_t > 0:
        few = chosen[:new_t]
        guess = shamir.interpolate_at_zero(
            [new.secret_shares[k] for k in few], [ids[k] for k in few]
        )
        assert guess != secret


def test_redistributed_shares_decrypt() -> None:
    rng = SeededRng(4)
    old, _, joint_public = generated(2, 4, rng)
    ids = list(shamir.random_id_numbers(5, rng, taken=old.id_numbers))
    new = redistribute(old, [3, 1, 0], 1, ids, rng).new
    document_key = Point.base_mul(random_scalar(rng))
    encrypted = encrypt_secret(document_key, joint_public, rng)
    access_key = random_scalar(rng)
    nodes = [4, 2]
    points = []
    for i in nodes:
        others = [ids[j] for j in nodes if j != i]
        node_shadow = shadow.compute_node_shadow(new.secret_shares[i], ids[i], others)
        points.append(
            shadow.compute_node_shadow_point(access_key, encrypted.common_point, node_shadow)
        )
    joint = shadow.compute_joint_shadow_point(p.shadow_point for p in points)
    assert (
        shadow.decrypt_with_joint_shadow(1, access_key, encrypted.encrypted_point, joint)
        == document_key
    )


def test_tampered_subshare_identifies_its_sender() -> None:
    rng = SeededRng(5)
    old, _, _ = generated(2, 5, rng)
    holders = [0, 2, 4]
    dealings = [rd.deal_subshares(old.secret_shares[i], 2, rng) for i in holders]
    receiver = old.id_numbers[1]
    values = {f"node{i}": d.value_for(receiver) for i, d in zip(holders, dealings, strict=True)}
    commitments = {f"node{i}": d.commitments for i, d in zip(holders, dealings, strict=True)}
    values["node2"] = values["node2"] + ONE
    assert not rd.verify_subshare(2, receiver, values["node2"], commitments["node2"])
    assert rd.find_faulty_subshare_senders(2, receiver, values, commitments) == ["node2"]
    del commitments["node4"]
    assert rd.find_faulty_subshare_senders(2, receiver, values, commitments) == ["node2", "node4"]


def test_a_holder_dealing_a_wrong_share_is_detected() -> None:
    rng = SeededRng(6)
    old, _, joint_public = generated(1, 3, rng)
    honest = rd.deal_subshares(old.secret_shares[0], 1, rng)
    lying = rd.deal_subshares(old.secret_shares[1] + ONE, 1, rng)
    ids = [old.id_numbers[0], old.id_numbers[1]]
    assert not rd.verify_redistributed_public(
        joint_public, ids, [honest.commitments, lying.commitments]
    )
    honest_too = rd.deal_subshares(old.secret_shares[1], 1, rng)
    assert rd.verify_redistributed_public(
        joint_public, ids, [honest.commitments, honest_too.commitments]
    )


def test_subshare_is_the_lagrange_weighted_value() -> None:
    ids = [Scalar(k) for k in (2, 3, 7, 9)]
    value = Scalar(1234)
    for t in (0, 1, 2, 3):
        group = ids[: t + 1]
        got = rd.compute_secret_subshare(t, value, group[0], group[1:])
        assert got == value * shamir.lagrange_coefficient(group[0], group[1:])


# --- malformed input --------------------------------------------------------------------


def test_malformed_inputs() -> None:
    rng = SeededRng(7)
    dealing = rd.deal_subshares(Scalar(5), 2, rng)
    with pytest.raises(InvalidRequest):
        rd.compute_secret_subshare(2, ONE, Scalar(1), [Scalar(2)])
    with pytest.raises(InvalidRequest):
        rd.compute_secret_subshare(1, ONE, Scalar(1), [Scalar(1)])
    with pytest.raises(InvalidScalar):
        rd.compute_secret_subshare(1, ONE, ZERO, [Scalar(1)])
    with pytest.raises(InvalidScalar):
        dealing.value_for(ZERO)
    with pytest.raises(InvalidRequest):
        rd.verify_subshare(1, ONE, ONE, dealing.commitments)
    with pytest.raises(InvalidRequest):
        rd.verify_redistributed_public(Point.base_mul(ONE), [ONE, Scalar(2)], [dealing.commitments])
    with pytest.raises(InvalidRequest):
        rd.new_share_public(ONE, [], [])
    with pytest.raises(InvalidRequest):
        rd.new_share_public(ONE, [Scalar(2)], [()])
    with pytest.raises(InvalidRequest):
        rd.deal_subshares(ONE, -1, rng)
    assert rd.find_faulty_subshare_senders(1, ONE, {"a": ONE}, {"a": dealing.commitments}) == ["a"]


@given(
    st.integers(min_value=1, max_value=4).flatmap(
        lambda n: st.tuples(st.just(n), st.integers(min_value=0, max_value=n - 1))
    ),
    st.integers(min_value=0, max_value=3),
    st.integers(min_value=1, max_value=5),
    seeds,
)
def test_redistributed_commitments_are_those_of_the_new_shares(
    case: tuple[int, int], new_threshold: int, extra_nodes: int, seed: int
) -> None:
    n, t = case
    rng = SeededRng(seed)
    old, _, public = generated(t, n, rng)
    new_count = new_threshold + extra_nodes
    new_ids = shamir.random_id_numbers(new_count, rng)
    done = redistribute(old, range(n - t - 1, n), new_threshold, new_ids, rng)
    commitments = rd.redistributed_commitments(
        done.holder_ids, [d.commitments for d in done.dealings]
    )
    assert len(commitments) == new_threshold + 1
    assert commitments[0] == public  # C'_0 = Y
    for x_new, share in zip(done.new.id_numbers, done.new.secret_shares, strict=True):
        assert shamir.evaluate_point_polynomial(commitments, x_new) == Point.base_mul(share)
        assert rd.new_share_public(
            x_new, done.holder_ids, [d.commitments for d in done.dealings]
        ) == Point.base_mul(share)


def test_redistributed_commitments_refuse_mismatched_holders() -> None:
    rng = SeededRng(5)
    dealings = [rd.deal_subshares(random_scalar(rng), 1, rng) for _ in range(2)]
    ids = shamir.random_id_numbers(2, rng)
    with pytest.raises(InvalidRequest):
        rd.redistributed_commitments(ids[:1], [d.commitments for d in dealings])
    with pytest.raises(InvalidRequest):
        rd.redistributed_commitments(ids, [dealings[0].commitments, dealings[1].commitments[:1]])
    with pytest.raises(InvalidRequest):
        rd.redistributed_commitments([], [])
