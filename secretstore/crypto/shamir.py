"""Shamir sharing over Z/nZ: polynomials, Lagrange coefficients at zero, reconstruction.

Conventions used across the threshold modules:

- A sharing of threshold ``t`` is a polynomial ``f`` of degree ``t``; node ``i`` holds ``f(x_i)``
  where ``x_i`` is its *id number*, a nonzero scalar unique among the nodes.
- ``λ_i = Π_{j≠i} x_j / (x_j - x_i)`` is the Lagrange coefficient at zero, so that
  ``f(0) = Σ λ_i f(x_i)`` over any ``t+1`` distinct holders.
- Parity's ``compute_shadow_mul`` computes ``coeff · Π_{j≠i} x_j / (x_i - x_j)``, which is
  ``(-1)^m · λ_i · coeff`` for ``m`` other nodes; Parity's sessions undo that sign with the
  parity of ``t``. ``shadow_mul`` reproduces it exactly.

Errors: a zero id number raises InvalidScalar; duplicate id numbers, a negative threshold or
the wrong number of shares raise InvalidRequest.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from secretstore.crypto.curve import ONE, ZERO, N, Point, Scalar, point_sum
from secretstore.crypto.rng import Rng, random_scalar
from secretstore.errors import InvalidRequest, InvalidScalar

Polynomial = tuple[Scalar, ...]
"""Coefficients ``(a_0, a_1, ..., a_t)`` of ``a_0 + a_1·x + ... + a_t·x^t``."""


def check_threshold(threshold: int) -> None:
    """A threshold is a non-negative int; raises InvalidRequest otherwise."""
    if isinstance(threshold, bool) or not isinstance(threshold, int) or threshold < 0:
        raise InvalidRequest(f"threshold must be a non-negative integer, got {threshold!r}")


def check_id_numbers(id_numbers: Iterable[Scalar]) -> None:
    """Id numbers must be nonzero (InvalidScalar) and pairwise distinct (InvalidRequest)."""
    seen: set[int] = set()
    for x in id_numbers:
        v = x.to_int()
        if v == 0:
            raise InvalidScalar("an id number cannot be zero")
        if v in seen:
            raise InvalidRequest("id numbers must be distinct")
        seen.add(v)


def random_polynomial(threshold: int, rng: Rng, free_term: Scalar | None = None) -> Polynomial:
    """``t+1`` random nonzero coefficients; ``free_term`` (which may be zero) replaces ``a_0``.

    Parity's ``generate_random_polynom``; a zero ``free_term`` gives a sharing of zero.
    """
    check_threshold(threshold)
    coefficients = [random_scalar(rng) for _ in range(threshold + 1)]
    if free_term is not None:
        coefficients[0] = free_term
    return tuple(coefficients)


def evaluate_polynomial(polynomial: Sequence[Scalar], x: Scalar) -> Scalar:
    """``f(x) = Σ_k a_k · x^k`` (Horner's rule). Parity's ``compute_polynom``."""
    if not polynomial:
        raise InvalidRequest("a polynomial has at least one coefficient")
    xv = x.to_int()
    acc = 0
    for coefficient in reversed(polynomial):
        acc = acc * xv + coefficient.to_int()
    return Scalar(acc)


def evaluate_point_polynomial(commitments: Sequence[Point], x: Scalar) -> Point:
    """``Σ_k C_k · x^k`` for commitments ``C_k = a_k·P``: equals ``f(x)·P`` when they match."""
    if not commitments:
        raise InvalidRequest("a commitment vector has at least one point")
    terms = [commitments[0]]
    power = ONE
    for commitment in commitments[1:]:
        power = power * x
        terms.append(commitment * power)
    return point_sum(terms)


def lagrange_coefficient(id_number: Scalar, other_id_numbers: Iterable[Scalar]) -> Scalar:
    """``λ_i = Π_{j≠i} x_j / (x_j - x_i)``: the weight of ``f(x_i)`` in ``f(0)``.

    Raises InvalidScalar for a zero id number and InvalidRequest when ids repeat.
    """
    others = list(other_id_numbers)
    check_id_numbers([id_number, *others])
    xi = id_number.to_int()
    numerator = 1
    denominator = 1
    for xj in others:
        v = xj.to_int()
        numerator = numerator * v % N
        denominator = denominator * (v - xi) % N
    return Scalar(numerator) / Scalar(denominator)


def shadow_mul(coeff: Scalar, id_number: Scalar, other_id_numbers: Iterable[Scalar]) -> Scalar:
    """Parity's ``compute_shadow_mul``: ``coeff · Π_{j≠i} x_j / (x_i - x_j)``.

    Equal to ``(-1)^m · λ_i · coeff`` where ``m`` is the number of other id numbers; with no
    other id numbers it is ``coeff`` itself.
    """
    others = list(other_id_numbers)
    sign = ONE if len(others) % 2 == 0 else -ONE
    return coeff * lagrange_coefficient(id_number, others) * sign


def lagrange_coefficients(id_numbers: Sequence[Scalar]) -> tuple[Scalar, ...]:
    """``(λ_0, ..., λ_m)`` for the holders ``id_numbers`` (same order)."""
    check_id_numbers(id_numbers)
    xs = [x.to_int() for x in id_numbers]
    weights = []
    for i, xi in enumerate(xs):
        numerator = 1
        denominator = 1
        for j, xj in enumerate(xs):
            if j != i:
                numerator = numerator * xj % N
                denominator = denominator * (xj - xi) % N
        weights.append(Scalar(numerator * pow(denominator, -1, N)))
    return tuple(weights)


def _check_pairs(values: Sequence[object], id_numbers: Sequence[Scalar]) -> None:
    if len(values) != len(id_numbers):
        raise InvalidRequest(f"{len(values)} shares but {len(id_numbers)} id numbers")
    if not values:
        raise InvalidRequest("at least one share is needed")


def interpolate_at_zero(shares: Sequence[Scalar], id_numbers: Sequence[Scalar]) -> Scalar:
    """``Σ λ_i · s_i``: ``f(0)`` when the ``m`` shares lie on a polynomial of degree < m."""
    _check_pairs(shares, id_numbers)
    total = ZERO
    for share, weight in zip(shares, lagrange_coefficients(id_numbers), strict=True):
        total = total + share * weight
    return total


def interpolate_point_at_zero(points: Sequence[Point], id_numbers: Sequence[Scalar]) -> Point:
    """``Σ λ_i · P_i``: ``f(0)·G`` from the share publics ``P_i = f(x_i)·G``."""
    _check_pairs(points, id_numbers)
    weights = lagrange_coefficients(id_numbers)
    return point_sum(p * w for p, w in zip(points, weights, strict=True))


def reconstruct_secret(
    threshold: int, shares: Sequence[Scalar], id_numbers: Sequence[Scalar]
) -> Scalar:
    """The shared secret ``f(0)`` from exactly ``t+1`` shares (Parity's
    ``compute_joint_secret_from_shares``, which takes ``(-1)^t · Σ shadow_mul(s_i)``).

    Raises InvalidRequest unless there are exactly ``threshold + 1`` shares and id numbers.
    """
    check_threshold(threshold)
    _check_pairs(shares, id_numbers)
    if len(shares) != threshold + 1:
        raise InvalidRequest(
            f"threshold {threshold} needs {threshold + 1} shares, got {len(shares)}"
        )
    return interpolate_at_zero(shares, id_numbers)


def reconstruct_point(
    threshold: int, points: Sequence[Point], id_numbers: Sequence[Scalar]
) -> Point:
    """``f(0)·G`` from exactly ``t+1`` share publics ``f(x_i)·G`` (InvalidRequest otherwise)."""
    check_threshold(threshold)
    _check_pairs(points, id_numbers)
    if len(points) != threshold + 1:
        raise InvalidRequest(
            f"threshold {threshold} needs {threshold + 1} points, got {len(points)}"
        )
    return interpolate_point_at_zero(points, id_numbers)


def random_id_numbers(count: int, rng: Rng, taken: Iterable[Scalar] = ()) -> tuple[Scalar, ...]:
    """``count`` fresh random id numbers, nonzero and distinct from each other and ``taken``."""
    used = {x.to_int() for x in taken}
    fresh: list[Scalar] = []
    while len(fresh) < count:
        x = random_scalar(rng)
        if x.to_int() not in used:
            used.add(x.to_int())
            fresh.append(x)
    return tuple(fresh)
