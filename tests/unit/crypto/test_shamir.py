"""Shamir sharing: evaluation, Lagrange weights, Parity's shadow_mul, reconstruction, errors."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from secretstore.crypto import shamir
from secretstore.crypto.curve import ONE, ZERO, N, Point, Scalar
from secretstore.crypto.rng import SeededRng, random_scalar
from secretstore.errors import InvalidRequest, InvalidScalar

seeds = st.integers(min_value=0, max_value=2**64)


@st.composite
def sharing_case(draw: st.DrawFn) -> tuple[int, int, list[int], int]:
    """(t, n, a subset of t+1 node indices, seed)."""
    n = draw(st.integers(min_value=1, max_value=8))
    t = draw(st.integers(min_value=0, max_value=n - 1))
    subset = draw(st.permutations(range(n)))[: t + 1]
    return t, n, subset, draw(seeds)


def test_evaluate_polynomial_matches_the_power_sum() -> None:
    rng = SeededRng(1)
    poly = shamir.random_polynomial(4, rng)
    x = random_scalar(rng)
    expected = sum(a.to_int() * pow(x.to_int(), k, N) for k, a in enumerate(poly)) % N
    assert shamir.evaluate_polynomial(poly, x).to_int() == expected
    assert shamir.evaluate_polynomial(poly, ZERO) == poly[0]


def test_random_polynomial_has_t_plus_one_coefficients_and_the_free_term() -> None:
    rng = SeededRng(2)
    assert len(shamir.random_polynomial(0, rng)) == 1
    poly = shamir.random_polynomial(3, rng, ZERO)
    assert len(poly) == 4
    assert poly[0] == ZERO
    assert all(not a.is_zero() for a in poly[1:])


def test_evaluate_point_polynomial_commits_to_the_evaluation() -> None:
    rng = SeededRng(3)
    poly = shamir.random_polynomial(3, rng)
    commitments = [Point.base_mul(a) for a in poly]
    x = random_scalar(rng)
    assert shamir.evaluate_point_polynomial(commitments, x) == Point.base_mul(
        shamir.evaluate_polynomial(poly, x)
    )


@given(seeds, st.integers(min_value=0, max_value=6))
def test_lagrange_coefficients_sum_to_one(seed: int, others: int) -> None:
    # A constant polynomial interpolates to itself, so the weights add up to one.
    ids = shamir.random_id_numbers(others + 1, SeededRng(seed))
    assert sum(w.to_int() for w in shamir.lagrange_coefficients(ids)) % N == 1


@given(seeds, st.integers(min_value=0, max_value=6))
def test_shadow_mul_is_the_signed_lagrange_coefficient(seed: int, others: int) -> None:
    rng = SeededRng(seed)
    ids = shamir.random_id_numbers(others + 1, rng)
    coeff = random_scalar(rng)
    xi, rest = ids[0], ids[1:]
    # Parity's form, computed the long way: coeff · Π x_j / (x_i - x_j)
    expected = coeff
    for xj in rest:
        expected = expected * xj / (xi - xj)
    assert shamir.shadow_mul(coeff, xi, rest) == expected
    sign = ONE if others % 2 == 0 else -ONE
    assert expected == sign * shamir.lagrange_coefficient(xi, rest) * coeff


def test_shadow_mul_without_others_is_the_coefficient() -> None:
    coeff = Scalar(12345)
    assert shamir.shadow_mul(coeff, Scalar(7), []) == coeff


@given(sharing_case())
def test_any_t_plus_one_shares_reconstruct_the_secret(
    case: tuple[int, int, list[int], int],
) -> None:
    t, n, subset, seed = case
    rng = SeededRng(seed)
    poly = shamir.random_polynomial(t, rng)
    ids = shamir.random_id_numbers(n, rng)
    shares = [shamir.evaluate_polynomial(poly, x) for x in ids]
    chosen_ids = [ids[k] for k in subset]
    secret = shamir.reconstruct_secret(t, [shares[k] for k in subset], chosen_ids)
    assert secret == poly[0]
    point = shamir.reconstruct_point(t, [Point.base_mul(shares[k]) for k in subset], chosen_ids)
    assert point == Point.base_mul(poly[0])


@given(sharing_case())
def test_t_shares_do_not_reconstruct(case: tuple[int, int, list[int], int]) -> None:
    t, n, subset, seed = case
    if t == 0:
        return  # no proper subset of one share exists
    rng = SeededRng(seed)
    poly = shamir.random_polynomial(t, rng)
    ids = shamir.random_id_numbers(n, rng)
    few = subset[:t]
    guess = shamir.interpolate_at_zero(
        [shamir.evaluate_polynomial(poly, ids[k]) for k in few], [ids[k] for k in few]
    )
    assert guess != poly[0]


def test_more_than_t_plus_one_shares_interpolate_too() -> None:
    rng = SeededRng(4)
    poly = shamir.random_polynomial(2, rng)
    ids = shamir.random_id_numbers(6, rng)
    shares = [shamir.evaluate_polynomial(poly, x) for x in ids]
    assert shamir.interpolate_at_zero(shares, ids) == poly[0]


def test_random_id_numbers_are_distinct_nonzero_and_avoid_taken() -> None:
    rng = SeededRng(5)
    taken = shamir.random_id_numbers(3, rng)
    fresh = shamir.random_id_numbers(20, SeededRng(5), taken=taken)
    assert len({x.to_int() for x in fresh}) == 20
    assert not {x.to_int() for x in fresh} & {x.to_int() for x in taken}
    shamir.check_id_numbers(fresh)


# --- malformed input --------------------------------------------------------------------


def test_zero_id_number_is_invalid_scalar() -> None:
    with pytest.raises(InvalidScalar):
        shamir.lagrange_coefficient(ZERO, [Scalar(2)])
    with pytest.raises(InvalidScalar):
        shamir.lagrange_coefficient(Scalar(2), [ZERO])
    with pytest.raises(InvalidScalar):
        shamir.reconstruct_secret(1, [Scalar(1), Scalar(2)], [Scalar(3), ZERO])


def test_duplicate_id_numbers_are_invalid_request() -> None:
    with pytest.raises(InvalidRequest):
        shamir.lagrange_coefficient(Scalar(5), [Scalar(5)])
    with pytest.raises(InvalidRequest):
        shamir.reconstruct_secret(2, [Scalar(1)] * 3, [Scalar(3), Scalar(4), Scalar(3)])
    with pytest.raises(InvalidRequest):
        shamir.check_id_numbers([Scalar(9), Scalar(9 + N)])


@pytest.mark.parametrize("count", [0, 1, 3])
def test_wrong_share_count_is_invalid_request(count: int) -> None:
    ids = [Scalar(k + 1) for k in range(count)]
    with pytest.raises(InvalidRequest):
        shamir.reconstruct_secret(1, [Scalar(1)] * count, ids)
    with pytest.raises(InvalidRequest):
        shamir.reconstruct_point(1, [Point.base_mul(ONE)] * count, ids)


def test_mismatched_lengths_and_bad_thresholds_are_invalid_request() -> None:
    with pytest.raises(InvalidRequest):
        shamir.interpolate_at_zero([Scalar(1)], [Scalar(1), Scalar(2)])
    with pytest.raises(InvalidRequest):
        shamir.random_polynomial(-1, SeededRng(0))
    with pytest.raises(InvalidRequest):
        shamir.check_threshold(True)
    with pytest.raises(InvalidRequest):
        shamir.evaluate_polynomial([], ONE)
    with pytest.raises(InvalidRequest):
        shamir.evaluate_point_polynomial([], ONE)
