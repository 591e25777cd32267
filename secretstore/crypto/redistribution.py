"""Share redistribution to a new node set (Parity's share add / servers set change), verifiable.

Based on verifiable secret redistribution (Wong, Wang, Wing, CMU-CS-02-114), as Parity's
share-add session uses it. The key ``x`` is shared with threshold ``t`` on old id numbers;
the new set has threshold ``t'`` and id numbers ``x'_j`` (nodes that stay keep their id
number, new nodes get fresh ones; the sets may overlap or be disjoint).

1. A set ``S`` of exactly ``t+1`` old holders takes part. Holder ``i ∈ S`` draws a polynomial
   ``h_i`` of degree ``t'`` with ``h_i(0) = s_i`` (its old share) and publishes its Feldman
   commitments ``C_ik = c_ik·G`` (``deal_subshares``).
2. It sends ``h_i(x'_j)`` to every new node ``j`` (``RedistributionDealing.value_for``).
3. Node ``j`` checks each value against the sender's commitments (``verify_subshare``;
   ``find_faulty_subshare_senders`` names the senders to blame), weights each by the
   sender's Lagrange coefficient over ``S`` (``compute_secret_subshare``, Parity's form with
   the sign on the parity of ``t``) and sums: ``s'_j = Σ_{i∈S} λ_i·h_i(x'_j)``
   (``compute_new_secret_share``).

The new shares lie on ``H = Σ λ_i·h_i``, of degree ``t'``, with ``H(0) = Σ λ_i·s_i = x``:
the joint secret and so the joint public ``Y`` are unchanged, any ``t'+1`` new shares
reconstruct ``x``, and old shares are useless with new ones. Anyone holding the commitments
can confirm ``Σ λ_i·C_i0 = Y`` (``verify_redistributed_public``: the holders used their real
shares) and compute each new share public ``s'_j·G`` (``new_share_public``). The new
version's own Feldman commitments are ``C'_k = Σ_i λ_i·C_ik`` (``redistributed_commitments``),
the commitments of ``H``: ``C'_0 = Y`` and ``s'_j·G = Σ_k C'_k·x'_j^k``, what a key record of
the new version stores.

Errors: id number problems as in shamir (InvalidScalar / InvalidRequest); the wrong number of
commitments or of old holders raises InvalidRequest.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar

from secretstore.crypto.curve import Point, Scalar, point_sum, scalar_sum
from secretstore.crypto.dkg import find_faulty_share_proofs, share_proof_verification
from secretstore.crypto.rng import Rng
from secretstore.crypto.shamir import (
    Polynomial,
    check_id_numbers,
    check_threshold,
    evaluate_point_polynomial,
    evaluate_polynomial,
    lagrange_coefficients,
    random_polynomial,
    shadow_mul,
)
from secretstore.errors import InvalidRequest

K = TypeVar("K")


@dataclass(frozen=True, slots=True)
class RedistributionDealing:
    """One old holder's subshare polynomial ``h_i`` and its Feldman commitments."""

    polynomial: Polynomial
    commitments: tuple[Point, ...]

    def value_for(self, new_id_number: Scalar) -> Scalar:
        """``h_i(x'_j)``: the value sent to the new node ``j``."""
        check_id_numbers([new_id_number])
        return evaluate_polynomial(self.polynomial, new_id_number)


def deal_subshares(secret_share: Scalar, new_threshold: int, rng: Rng) -> RedistributionDealing:
    """A random ``h_i`` of degree ``t'`` with ``h_i(0) = s_i``, and ``C_ik = c_ik·G``."""
    polynomial = random_polynomial(new_threshold, rng, secret_share)
    return RedistributionDealing(polynomial, tuple(Point.base_mul(c) for c in polynomial))


def verify_subshare(
    new_threshold: int, new_id_number: Scalar, value: Scalar, commitments: Sequence[Point]
) -> bool:
    """``value·G == Σ_k C_k·x'^k``; InvalidRequest unless there are ``t'+1`` commitments.
    The same Feldman check as the DKG's share proofs."""
    return share_proof_verification(new_threshold, new_id_number, value, commitments)


def find_faulty_subshare_senders(
    new_threshold: int,
    new_id_number: Scalar,
    values: Mapping[K, Scalar],
    commitments: Mapping[K, Sequence[Point]],
) -> list[K]:
    """Senders whose value does not match their commitments, or whose commitments are
    missing or of the wrong length (in ``values`` order)."""
    return find_faulty_share_proofs(new_threshold, new_id_number, values, commitments)


def compute_secret_subshare(
    old_threshold: int, value: Scalar, sender_id_number: Scalar, other_id_numbers: Iterable[Scalar]
) -> Scalar:
    """``λ_i·h_i(x'_j)`` with ``λ_i`` over the ``t+1`` old holders: Parity's
    ``shadow_mul(value)`` negated for odd ``t``. InvalidRequest unless exactly ``t`` others."""
    check_threshold(old_threshold)
    others = list(other_id_numbers)
    if len(others) != old_threshold:
        raise InvalidRequest(
            f"threshold {old_threshold} redistribution needs {old_threshold} other holders, "
            f"got {len(others)}"
        )
    subshare = shadow_mul(value, sender_id_number, others)
    return -subshare if old_threshold % 2 == 1 else subshare


def compute_new_secret_share(secret_subshares: Iterable[Scalar]) -> Scalar:
    """``s'_j = Σ_i λ_i·h_i(x'_j)``."""
    return scalar_sum(secret_subshares)


def verify_redistributed_public(
    joint_public: Point, old_id_numbers: Sequence[Scalar], commitments: Sequence[Sequence[Point]]
) -> bool:
    """``Σ_i λ_i·C_i0 == Y``: the old holders (same order in both sequences) dealt their
    real shares, so the new sharing keeps the joint public."""
    _check_holders(old_id_numbers, commitments)
    weights = lagrange_coefficients(old_id_numbers)
    total = point_sum(c[0] * w for c, w in zip(commitments, weights, strict=True))
    return total == joint_public


def new_share_public(
    new_id_number: Scalar, old_id_numbers: Sequence[Scalar], commitments: Sequence[Sequence[Point]]
) -> Point:
    """``s'_j·G = Σ_i λ_i·Σ_k C_ik·x'^k``: the public of new node ``j``'s share."""
    _check_holders(old_id_numbers, commitments)
    check_id_numbers([new_id_number])
    weights = lagrange_coefficients(old_id_numbers)
    return point_sum(
        evaluate_point_polynomial(c, new_id_number) * w
        for c, w in zip(commitments, weights, strict=True)
    )


def redistributed_commitments(
    old_id_numbers: Sequence[Scalar], commitments: Sequence[Sequence[Point]]
) -> tuple[Point, ...]:
    """``C'_k = Σ_i λ_i·C_ik``: the Feldman commitments of the new sharing ``H = Σ λ_i·h_i``
    (old holders in the same order in both sequences; every vector of the same length
    ``t'+1``, InvalidRequest otherwise)."""
    _check_holders(old_id_numbers, commitments)
    length = len(commitments[0])
    if any(len(vector) != length for vector in commitments):
        raise InvalidRequest("every holder's commitments must have the same length")
    weights = lagrange_coefficients(old_id_numbers)
    return tuple(
        point_sum(vector[k] * weight for vector, weight in zip(commitments, weights, strict=True))
        for k in range(length)
    )


def _check_holders(
    old_id_numbers: Sequence[Scalar], commitments: Sequence[Sequence[Point]]
) -> None:
    if len(old_id_numbers) != len(commitments) or not commitments:
        raise InvalidRequest(
            f"{len(old_id_numbers)} old holders but {len(commitments)} commitment vectors"
        )
    if any(not c for c in commitments):
        raise InvalidRequest("a commitment vector has at least one point")
