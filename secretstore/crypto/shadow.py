"""Node side of threshold decryption: shadows, shadow points, joint decryption, shadow retrieval.

A document key ``M`` is stored as ``C = k·G`` (common point) and ``E = M + k·Y`` (encrypted
point) under the server key ``Y = x·G``. ``t+1`` nodes ``S`` decrypt it without assembling
``x``:

- node ``i`` computes its *shadow* ``ν_i = shadow_mul(s_i) = (-1)^t·λ_i·s_i``, so that
  ``Σ_S ν_i = (-1)^t·x`` (``compute_node_shadow``);
- with a session *access key* ``a`` (nonzero, known to the master) it publishes the shadow
  point ``P_i = a·ν_i·C`` (``compute_node_shadow_point``);
- the master adds them, ``P = Σ P_i`` (``compute_joint_shadow_point``), and recovers
  ``M = E - (-1)^t·a⁻¹·P = E - x·C`` (``decrypt_with_joint_shadow``).

Shadow retrieval (the client decrypts, no node learns ``M``): each node also draws a random
blinding ``δ_i``, publishes ``P_i = a·δ_i·ν_i·C`` and returns the *decrypt shadow*
``d_i = (δ_i - 1)·ν_i`` (ECIES-encrypted to the requester by the caller). The master's
``decrypt_with_joint_shadow`` then yields ``D = E - (-1)^t·Σ δ_i·ν_i·C``, which is not ``M``,
and sends ``C' = (-1)^t·C`` (``make_common_shadow_point``). The client computes
``M = D + (Σ d_i)·C'`` (document.decrypt_with_shadow_coefficients), because
``D + (-1)^t·Σ (δ_i - 1)·ν_i·C = E - (-1)^t·Σ ν_i·C = E - x·C``.

Errors: a zero access key raises InvalidScalar; an identity common or encrypted point
InvalidPoint; id number problems as in shamir (InvalidScalar / InvalidRequest).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from secretstore.crypto.curve import ONE, Point, Scalar, point_sum
from secretstore.crypto.shamir import check_threshold, shadow_mul


@dataclass(frozen=True, slots=True)
class NodeShadowPoint:
    """A node's decryption response: ``P_i`` and, for shadow retrieval, ``d_i``."""

    shadow_point: Point
    decrypt_shadow: Scalar | None


def compute_node_shadow(
    secret_share: Scalar, id_number: Scalar, other_id_numbers: Iterable[Scalar]
) -> Scalar:
    """``ν_i = s_i · Π_{j≠i} x_j / (x_i - x_j) = (-1)^t·λ_i·s_i`` over the ``t`` other
    decrypting nodes (Parity's ``compute_node_shadow``)."""
    return shadow_mul(secret_share, id_number, other_id_numbers)


def compute_node_shadow_point(
    access_key: Scalar,
    common_point: Point,
    node_shadow: Scalar,
    decrypt_shadow: Scalar | None = None,
) -> NodeShadowPoint:
    """``P_i = a·ν_i·C`` (no blinding), or ``P_i = a·δ_i·ν_i·C`` and ``d_i = (δ_i - 1)·ν_i``
    when a blinding ``δ_i = decrypt_shadow`` is given (shadow retrieval)."""
    access_key.require_nonzero("access key")
    common_point.require_not_identity("common point")
    shadow_key = node_shadow * access_key
    returned: Scalar | None = None
    if decrypt_shadow is not None:
        shadow_key = shadow_key * decrypt_shadow
        returned = (decrypt_shadow - ONE) * node_shadow
    return NodeShadowPoint(common_point * shadow_key, returned)


def compute_joint_shadow_point(node_shadow_points: Iterable[Point]) -> Point:
    """``P = Σ P_i`` over the ``t+1`` decrypting nodes."""
    return point_sum(node_shadow_points)


def decrypt_with_joint_shadow(
    threshold: int, access_key: Scalar, encrypted_point: Point, joint_shadow_point: Point
) -> Point:
    """``E - a⁻¹·P`` for even ``t``, ``E + a⁻¹·P`` for odd ``t``: ``M`` after a plain
    decryption, the blinded ``D`` after a shadow decryption."""
    check_threshold(threshold)
    encrypted_point.require_not_identity("encrypted point")
    unblinded = joint_shadow_point * access_key.require_nonzero("access key").inverse()
    if threshold % 2 == 1:
        return encrypted_point + unblinded
    return encrypted_point - unblinded


def make_common_shadow_point(threshold: int, common_point: Point) -> Point:
    """``C' = C`` for even ``t``, ``-C`` for odd ``t``: the common point the client gets."""
    check_threshold(threshold)
    common_point.require_not_identity("common point")
    return -common_point if threshold % 2 == 1 else common_point


def decrypt_with_joint_secret(
    encrypted_point: Point, common_point: Point, joint_secret: Scalar
) -> Point:
    """``M = E - x·C`` with the joint secret itself (tests and trusted checks only)."""
    return encrypted_point - common_point * joint_secret
