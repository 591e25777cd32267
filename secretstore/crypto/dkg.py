"""Parity's ECDKG: Pedersen-committed dealings, share verification with blame, joint public.

One generation run, on each of the ``n`` nodes ``i`` (id number ``x_i``), for threshold ``t``:

1. The nodes agree on a *derived point* ``H`` whose discrete log nobody knows (Parity: each
   node in turn multiplies a random point by a secret scalar, ``update_random_point``).
2. Node ``i`` draws two random polynomials ``f_i`` (the secret one; ``f_i(0) = 0`` for a
   sharing of zero) and ``g_i`` of degree ``t`` (``deal``) and sends to every node ``j`` the
   pair ``(f_i(x_j), g_i(x_j))`` with the Pedersen commitments ``E_ik = a_ik·G + b_ik·H``
   (``public_values_generation``).
3. Node ``j`` checks every pair it received (``keys_verification``); a failing pair blames its
   sender (``find_faulty_senders`` / ``require_valid_keys``).
4. Its secret share is ``s_j = Σ_i f_i(x_j)`` (``compute_secret_share``).
5. Each node then publishes the Feldman commitments ``F_ik = a_ik·G`` of ``f_i``
   (``prepare_share_proof``) with the coefficients ``b_ik`` of ``g_i``; node ``j`` checks them
   against the ``f_i(x_j)`` it holds (``share_proof_verification``) and against the Pedersen
   commitments, ``F_ik + b_ik·H == E_ik`` (``share_proof_opens_commitments``). The second
   check pins ``F_i0 = f_i(0)·G`` to what node ``i`` committed to before any other node revealed
   anything, however few honest receivers check the first (a group of t+1 has only t besides
   a rushing dealer, which do not pin a degree-t polynomial: without it such a dealer could
   shift its free term after seeing the others'). The joint public is ``Y = Σ_i F_i0``
   (``compute_joint_public``) and the joint secret ``x = Σ_i f_i(0)`` is never assembled;
   ``s_j·G`` of any node follows from the Feldman commitments (``secret_share_public``).
   Their pointwise sums ``C_k = Σ_i F_ik`` (``joint_commitments``) are the Feldman
   commitments of the joint polynomial ``f = Σ_i f_i``: ``C_0 = Y`` and
   ``s_j·G = Σ_k C_k·x_j^k``, which a key record keeps.

Checking every dealer at once (``keys_verification_batch``, ``share_proofs_verification_batch``):
a receiver sums the checks of steps 3 and 5 over all dealers, so they cost the work of one
dealer (t+1 point multiplications and sums of points) instead of n. An honest dealer's terms
are exactly right, so the sums hold exactly when the dealers' errors cancel out: one faulty
dealer alone always makes them fail (then each dealer is checked alone, to name it). Dealers
that collude can deal values that are wrong one by one but right in sum; the receiver's share
``s_j = Σ_i f_i(x_j)``, the joint commitments ``C_k = Σ_i F_ik`` (and ``Σ_i E_ik``) and the zero
of a zero sharing are then exactly what honest dealings of the same sums give, and
``C_0 + (Σ_i b_i0)·H = Σ_i E_i0`` still binds the joint public to the Pedersen commitments sent
before anything was revealed. Only each colluder's own ``F_i``, which nothing uses, may be off.

Errors: wrong numbers of commitments raise InvalidRequest, a zero id number InvalidScalar, an
identity joint public InvalidPoint; a bad dealing from a peer raises ProtocolViolation naming it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar

from secretstore.crypto.curve import ZERO, Point, Scalar, point_sum, scalar_sum
from secretstore.crypto.hashing import keccak256
from secretstore.crypto.rng import Rng, random_scalar
from secretstore.crypto.shamir import (
    Polynomial,
    check_id_numbers,
    check_threshold,
    evaluate_point_polynomial,
    evaluate_polynomial,
    random_polynomial,
)
from secretstore.errors import InvalidRequest, ProtocolViolation

K = TypeVar("K")
B = TypeVar("B", bound=bytes)


@dataclass(frozen=True, slots=True)
class DealtValues:
    """What a dealer sends one node: ``secret1 = f(x)``, ``secret2 = g(x)``."""

    secret1: Scalar
    secret2: Scalar


@dataclass(frozen=True, slots=True)
class ReceivedKeys:
    """A node's view of one sender's dealing: its two values and the sender's commitments."""

    secret1: Scalar
    secret2: Scalar
    publics: tuple[Point, ...]


@dataclass(frozen=True, slots=True)
class Dealing:
    """One node's dealing: the secret polynomials and what it publishes about them."""

    polynomial1: Polynomial
    polynomial2: Polynomial
    publics: tuple[Point, ...]
    """Pedersen commitments ``a_k·G + b_k·H`` (Parity's ``publics``)."""
    share_proof: tuple[Point, ...]
    """Feldman commitments ``a_k·G``; the first is the identity for a sharing of zero."""

    @property
    def secret_coeff(self) -> Scalar:
        """``f(0)``: this dealer's contribution to the joint secret."""
        return self.polynomial1[0]

    def values_for(self, id_number: Scalar) -> DealtValues:
        """``(f(x), g(x))`` for the node with id number ``x``."""
        check_id_numbers([id_number])
        return DealtValues(
            evaluate_polynomial(self.polynomial1, id_number),
            evaluate_polynomial(self.polynomial2, id_number),
        )


def update_random_point(point: Point, rng: Rng) -> Point:
    """``r·P`` for a fresh random ``r``: one node's step in agreeing on the derived point."""
    point.require_not_identity("derived point")
    return point * random_scalar(rng)


def public_values_generation(
    threshold: int,
    derived_point: Point,
    polynomial1: Sequence[Scalar],
    polynomial2: Sequence[Scalar],
) -> tuple[Point, ...]:
    """Pedersen commitments ``E_k = a_k·G + b_k·H`` for ``k = 0..t``."""
    _check_degree(threshold, polynomial1, "polynomial1")
    _check_degree(threshold, polynomial2, "polynomial2")
    derived_point.require_not_identity("derived point")
    return tuple(
        Point.base_mul(a) + derived_point * b for a, b in zip(polynomial1, polynomial2, strict=True)
    )


def deal(threshold: int, derived_point: Point, rng: Rng, *, is_zero: bool = False) -> Dealing:
    """Draw ``f``, ``g`` of degree ``t`` (``f(0) = 0`` if ``is_zero``) and their commitments."""
    polynomial1 = random_polynomial(threshold, rng, ZERO if is_zero else None)
    polynomial2 = random_polynomial(threshold, rng)
    return Dealing(
        polynomial1=polynomial1,
        polynomial2=polynomial2,
        publics=public_values_generation(threshold, derived_point, polynomial1, polynomial2),
        share_proof=prepare_share_proof(polynomial1),
    )


def keys_verification(
    threshold: int, derived_point: Point, id_number: Scalar, received: ReceivedKeys
) -> bool:
    """``secret1·G + secret2·H == Σ_k E_k · x^k``: the received pair lies on the polynomials the
    sender committed to (``E_k`` = ``received.publics``, ``x`` = this node's id number).

    Raises InvalidRequest unless there are exactly ``t+1`` commitments, InvalidScalar for a
    zero id number, InvalidPoint for an identity derived point.
    """
    _check_degree(threshold, received.publics, "commitments")
    check_id_numbers([id_number])
    derived_point.require_not_identity("derived point")
    left = Point.base_mul(received.secret1) + derived_point * received.secret2
    return left == evaluate_point_polynomial(received.publics, id_number)


def keys_verification_batch(
    threshold: int, derived_point: Point, id_number: Scalar, received: Iterable[ReceivedKeys]
) -> bool:
    """``keys_verification`` of every dealing at once: ``(Σ secret1)·G + (Σ secret2)·H ==
    Σ_k (Σ_i E_ik)·x^k`` (true when each holds; false whenever exactly one dealing fails;
    module docstring). Raises as `keys_verification` for a malformed dealing."""
    dealings = list(received)
    for keys in dealings:
        _check_degree(threshold, keys.publics, "commitments")
    check_id_numbers([id_number])
    derived_point.require_not_identity("derived point")
    first = scalar_sum(keys.secret1 for keys in dealings)
    second = scalar_sum(keys.secret2 for keys in dealings)
    summed = [point_sum(keys.publics[k] for keys in dealings) for k in range(threshold + 1)]
    left = Point.base_mul(first) + derived_point * second
    return left == evaluate_point_polynomial(summed, id_number)


def share_proofs_verification_batch(
    threshold: int,
    derived_point: Point,
    id_number: Scalar,
    dealings: Iterable[tuple[Scalar, Sequence[Point], Sequence[Point], Sequence[Scalar]]],
) -> bool:
    """``share_proof_opens_commitments`` and ``share_proof_verification`` of every dealer at
    once, from (secret1, Pedersen commitments E, Feldman commitments F, blinding b) per dealer:
    ``Σ_i F_ik + (Σ_i b_ik)·H == Σ_i E_ik`` for every k, and ``(Σ secret1)·G == Σ_k (Σ_i F_ik)·
    x^k`` (module docstring). Raises InvalidRequest for a malformed dealing."""
    items = list(dealings)
    for _, pedersen, feldman, blinding in items:
        _check_degree(threshold, pedersen, "commitments")
        _check_degree(threshold, feldman, "share proof")
        _check_degree(threshold, blinding, "blinding coefficients")
    check_id_numbers([id_number])
    derived_point.require_not_identity("derived point")
    joint = []
    for k in range(threshold + 1):
        feldman_k = point_sum(item[2][k] for item in items)
        pedersen_k = point_sum(item[1][k] for item in items)
        if feldman_k + derived_point * scalar_sum(item[3][k] for item in items) != pedersen_k:
            return False
        joint.append(feldman_k)
    secret = scalar_sum(item[0] for item in items)
    return Point.base_mul(secret) == evaluate_point_polynomial(joint, id_number)


def find_faulty_senders(
    threshold: int, derived_point: Point, id_number: Scalar, received: Mapping[K, ReceivedKeys]
) -> list[K]:
    """The senders whose dealing fails ``keys_verification`` or has the wrong number of
    commitments (a malformed dealing is its sender's fault), in ``received`` order."""
    check_threshold(threshold)
    faulty: list[K] = []
    for sender, keys in received.items():
        if len(keys.publics) != threshold + 1 or not keys_verification(
            threshold, derived_point, id_number, keys
        ):
            faulty.append(sender)
    return faulty


def require_valid_keys(
    threshold: int, derived_point: Point, id_number: Scalar, received: Mapping[K, ReceivedKeys]
) -> None:
    """Raise ProtocolViolation naming the first sender whose dealing does not verify."""
    faulty = find_faulty_senders(threshold, derived_point, id_number, received)
    if faulty:
        raise ProtocolViolation(_label(faulty[0]), "dealt keys do not match its commitments")


def prepare_share_proof(polynomial1: Sequence[Scalar]) -> tuple[Point, ...]:
    """Feldman commitments ``F_k = a_k·G`` of the secret polynomial (``F_0`` = public share)."""
    if not polynomial1:
        raise InvalidRequest("a polynomial has at least one coefficient")
    return tuple(Point.base_mul(a) for a in polynomial1)


def share_proof_verification(
    threshold: int, id_number: Scalar, secret1: Scalar, share_proof: Sequence[Point]
) -> bool:
    """``secret1·G == Σ_k F_k · x^k``: the sender's Feldman commitments match what it dealt.

    Raises InvalidRequest unless there are exactly ``t+1`` commitments.
    """
    _check_degree(threshold, share_proof, "share proof")
    check_id_numbers([id_number])
    return Point.base_mul(secret1) == evaluate_point_polynomial(share_proof, id_number)


def share_proof_opens_commitments(
    threshold: int,
    derived_point: Point,
    commitments: Sequence[Point],
    share_proof: Sequence[Point],
    blinding: Sequence[Scalar],
) -> bool:
    """``F_k + b_k·H == E_k`` for ``k = 0..t``: the Feldman commitments ``F_k`` and blinding
    coefficients ``b_k`` a dealer revealed open the Pedersen commitments ``E_k`` it sent
    first (binding as long as nobody knows the discrete log of ``H``).

    Raises InvalidRequest unless each sequence holds ``t+1`` items, InvalidPoint for an
    identity derived point.
    """
    _check_degree(threshold, commitments, "commitments")
    _check_degree(threshold, share_proof, "share proof")
    _check_degree(threshold, blinding, "blinding coefficients")
    derived_point.require_not_identity("derived point")
    return all(
        feldman + derived_point * b == pedersen
        for pedersen, feldman, b in zip(commitments, share_proof, blinding, strict=True)
    )


def find_faulty_share_proofs(
    threshold: int,
    id_number: Scalar,
    secrets1: Mapping[K, Scalar],
    share_proofs: Mapping[K, Sequence[Point]],
) -> list[K]:
    """Senders whose share proof is missing, malformed or does not match the value they dealt."""
    check_threshold(threshold)
    faulty: list[K] = []
    for sender, secret1 in secrets1.items():
        proof = share_proofs.get(sender)
        if (
            proof is None
            or len(proof) != threshold + 1
            or not share_proof_verification(threshold, id_number, secret1, proof)
        ):
            faulty.append(sender)
    return faulty


def compute_secret_share(secret_values: Iterable[Scalar]) -> Scalar:
    """``s_j = Σ_i f_i(x_j)``: this node's share of the joint secret."""
    return scalar_sum(secret_values)


def compute_public_share(secret_coeff: Scalar) -> Point:
    """``f_i(0)·G``: a dealer's contribution to the joint public (identity for zero)."""
    return Point.base_mul(secret_coeff)


def compute_joint_public(public_shares: Iterable[Point]) -> Point:
    """``Y = Σ_i f_i(0)·G``; raises InvalidPoint if the sum is the identity."""
    return point_sum(public_shares).require_not_identity("joint public")


def compute_joint_secret(secret_coeffs: Iterable[Scalar]) -> Scalar:
    """``x = Σ_i f_i(0)`` (tests and trusted dealing only; a real run never assembles it)."""
    return scalar_sum(secret_coeffs)


def secret_share_public(id_number: Scalar, share_proofs: Iterable[Sequence[Point]]) -> Point:
    """``s_j·G = Σ_i Σ_k F_ik · x_j^k``: the public of node ``j``'s secret share, computable by
    anyone holding every dealer's Feldman commitments (used to check signature shares)."""
    check_id_numbers([id_number])
    return point_sum(evaluate_point_polynomial(proof, id_number) for proof in share_proofs)


def joint_commitments(share_proofs: Iterable[Sequence[Point]]) -> tuple[Point, ...]:
    """``C_k = Σ_i F_ik``: the Feldman commitments of the joint polynomial ``Σ_i f_i``, from
    every dealer's (same length, at least one point each; InvalidRequest otherwise)."""
    proofs = [tuple(proof) for proof in share_proofs]
    if not proofs or not proofs[0]:
        raise InvalidRequest("joint commitments need at least one dealer with commitments")
    length = len(proofs[0])
    if any(len(proof) != length for proof in proofs):
        raise InvalidRequest("every dealer's commitments must have the same length")
    return tuple(point_sum(proof[k] for proof in proofs) for k in range(length))


def publics_footprint(publics_by_node: Mapping[B, Sequence[Point]]) -> bytes:
    """keccak256 of every node's points, nodes in ascending id order, points in order.

    Nodes exchange it to confirm they saw the same commitments. Identity points (the first
    Feldman commitment of a zero sharing) contribute 64 zero bytes.
    """
    data = bytearray()
    for node in sorted(publics_by_node):
        for point in publics_by_node[node]:
            data += bytes(64) if point.is_identity() else point.to_bytes()
    return keccak256(bytes(data))


def _check_degree(threshold: int, values: Sequence[object], what: str) -> None:
    check_threshold(threshold)
    if len(values) != threshold + 1:
        raise InvalidRequest(
            f"threshold {threshold} needs {threshold + 1} {what}, got {len(values)}"
        )


def _label(node: object) -> str:
    return node.hex() if isinstance(node, bytes) else str(node)
