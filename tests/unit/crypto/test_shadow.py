"""Threshold decryption: node shadows, joint decryption and shadow retrieval (Parity's runs)."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from hypothesis import given
from hypothesis import strategies as st

from secretstore.crypto import shadow
from secretstore.crypto.curve import ONE, ZERO, Point, Scalar, scalar_sum
from secretstore.crypto.document import (
    EncryptedSecret,
    decrypt_with_shadow_coefficients,
    encrypt_secret,
)
from secretstore.crypto.ecies import ecies_decrypt, ecies_encrypt
from secretstore.crypto.rng import Rng, SeededRng, random_scalar
from secretstore.errors import InvalidPoint, InvalidRequest, InvalidScalar

from .dkg_sim import PARITY_CASES, KeyGeneration, run_key_generation

seeds = st.integers(min_value=0, max_value=2**64)


@st.composite
def decryption_case(draw: st.DrawFn) -> tuple[int, int, list[int], int]:
    """(t, n, a random ordering of the nodes, seed) with n ≤ 6."""
    n = draw(st.integers(min_value=1, max_value=6))
    t = draw(st.integers(min_value=0, max_value=n - 1))
    return t, n, draw(st.permutations(range(n))), draw(seeds)


def node_shadows(gen: KeyGeneration, nodes: Sequence[int]) -> list[Scalar]:
    """What each of the chosen nodes computes from its share and the others' id numbers."""
    out = []
    for i in nodes:
        others = [gen.id_numbers[j] for j in nodes if j != i]
        out.append(shadow.compute_node_shadow(gen.secret_shares[i], gen.id_numbers[i], others))
    return out


def decrypt(
    gen: KeyGeneration, nodes: Sequence[int], encrypted: EncryptedSecret, rng: Rng
) -> Point:
    """Plain decryption by the chosen nodes, as the master assembles it."""
    access_key = random_scalar(rng)
    points = [
        shadow.compute_node_shadow_point(access_key, encrypted.common_point, s).shadow_point
        for s in node_shadows(gen, nodes)
    ]
    joint = shadow.compute_joint_shadow_point(points)
    return shadow.decrypt_with_joint_shadow(
        gen.threshold, access_key, encrypted.encrypted_point, joint
    )


def shadow_retrieve(
    gen: KeyGeneration, nodes: Sequence[int], encrypted: EncryptedSecret, rng: Rng
) -> tuple[Point, Point, list[Scalar]]:
    """Shadow retrieval by the chosen nodes: (D, C', [d_i]) as the client receives them."""
    access_key = random_scalar(rng)
    responses = [
        shadow.compute_node_shadow_point(
            access_key, encrypted.common_point, s, decrypt_shadow=random_scalar(rng)
        )
        for s in node_shadows(gen, nodes)
    ]
    joint = shadow.compute_joint_shadow_point(r.shadow_point for r in responses)
    decrypted_secret = shadow.decrypt_with_joint_shadow(
        gen.threshold, access_key, encrypted.encrypted_point, joint
    )
    common = shadow.make_common_shadow_point(gen.threshold, encrypted.common_point)
    coefficients = []
    for r in responses:
        assert r.decrypt_shadow is not None
        coefficients.append(r.decrypt_shadow)
    return decrypted_secret, common, coefficients


@pytest.mark.parametrize(("t", "n"), PARITY_CASES)
def test_full_encryption_and_decryption(t: int, n: int) -> None:
    rng = SeededRng(1000 + t * 100 + n)
    gen = run_key_generation(t, n, rng)
    assert gen.joint_public is not None
    document_key = Point.base_mul(random_scalar(rng))
    encrypted = encrypt_secret(document_key, gen.joint_public, rng)
    nodes = list(range(t + 1))
    # the joint shadow point is a·(Σ ν_i)·C, and Σ ν_i = (-1)^t·x
    access_key = random_scalar(rng)
    shadows = node_shadows(gen, nodes)
    points = [
        shadow.compute_node_shadow_point(access_key, encrypted.common_point, s).shadow_point
        for s in shadows
    ]
    joint = shadow.compute_joint_shadow_point(points)
    assert joint == encrypted.common_point * (scalar_sum(shadows) * access_key)
    sign = ONE if t % 2 == 0 else -ONE
    assert scalar_sum(shadows) == sign * gen.joint_secret
    decrypted = shadow.decrypt_with_joint_shadow(t, access_key, encrypted.encrypted_point, joint)
    assert decrypted == document_key
    assert (
        shadow.decrypt_with_joint_secret(
            encrypted.encrypted_point, encrypted.common_point, gen.joint_secret
        )
        == document_key
    )


@pytest.mark.parametrize(("t", "n"), PARITY_CASES)
def test_full_shadow_decryption(t: int, n: int) -> None:
    rng = SeededRng(2000 + t * 100 + n)
    gen = run_key_generation(t, n, rng)
    assert gen.joint_public is not None
    document_key = Point.base_mul(random_scalar(rng))
    encrypted = encrypt_secret(document_key, gen.joint_public, rng)
    nodes = list(range(n - t - 1, n))
    decrypted_secret, common, coefficients = shadow_retrieve(gen, nodes, encrypted, rng)
    assert decrypted_secret != document_key  # the master does not learn M
    assert decrypt_with_shadow_coefficients(decrypted_secret, common, coefficients) == document_key


def test_shadow_decryption_through_ecies_to_the_requester() -> None:
    # the decrypt shadows travel ECIES-encrypted to the requester, as 32-byte scalars
    rng = SeededRng(3)
    gen = run_key_generation(2, 5, rng)
    assert gen.joint_public is not None
    requester = random_scalar(rng)
    document_key = Point.base_mul(random_scalar(rng))
    encrypted = encrypt_secret(document_key, gen.joint_public, rng)
    decrypted_secret, common, coefficients = shadow_retrieve(gen, [4, 0, 2], encrypted, rng)
    sealed = [ecies_encrypt(Point.base_mul(requester), d.to_bytes(), rng) for d in coefficients]
    opened = [Scalar.from_bytes(ecies_decrypt(requester, e)) for e in sealed]
    assert decrypt_with_shadow_coefficients(decrypted_secret, common, opened) == document_key


@given(decryption_case())
def test_any_t_plus_one_nodes_decrypt_and_shadow_decrypt_alike(
    case: tuple[int, int, list[int], int],
) -> None:
    t, n, order, seed = case
    rng = SeededRng(seed)
    gen = run_key_generation(t, n, rng)
    assert gen.joint_public is not None
    document_key = Point.base_mul(random_scalar(rng))
    encrypted = encrypt_secret(document_key, gen.joint_public, rng)
    first, second = order[: t + 1], order[::-1][: t + 1]
    assert decrypt(gen, first, encrypted, rng) == document_key
    assert decrypt(gen, second, encrypted, rng) == document_key
    d, c, coefficients = shadow_retrieve(gen, second, encrypted, rng)
    via_shadows = decrypt_with_shadow_coefficients(d, c, coefficients)
    assert via_shadows == decrypt(gen, first, encrypted, rng)


@given(decryption_case())
def test_t_nodes_cannot_decrypt(case: tuple[int, int, list[int], int]) -> None:
    t, n, order, seed = case
    if t == 0:
        return
    rng = SeededRng(seed)
    gen = run_key_generation(t, n, rng)
    assert gen.joint_public is not None
    document_key = Point.base_mul(random_scalar(rng))
    encrypted = encrypt_secret(document_key, gen.joint_public, rng)
    few = order[:t]
    # t nodes, even using the sign convention of their own count, get the wrong key
    for threshold in (t, t - 1):
        access_key = random_scalar(rng)
        points = [
            shadow.compute_node_shadow_point(access_key, encrypted.common_point, s).shadow_point
            for s in node_shadows(gen, few)
        ]
        joint = shadow.compute_joint_shadow_point(points)
        wrong = shadow.decrypt_with_joint_shadow(
            threshold, access_key, encrypted.encrypted_point, joint
        )
        assert wrong != document_key


def test_decrypt_shadow_formula() -> None:
    rng = SeededRng(4)
    access_key, node_shadow, delta = (random_scalar(rng) for _ in range(3))
    common = Point.base_mul(random_scalar(rng))
    plain = shadow.compute_node_shadow_point(access_key, common, node_shadow)
    assert plain.decrypt_shadow is None
    assert plain.shadow_point == common * (access_key * node_shadow)
    blinded = shadow.compute_node_shadow_point(access_key, common, node_shadow, delta)
    assert blinded.shadow_point == common * (access_key * node_shadow * delta)
    assert blinded.decrypt_shadow == (delta - ONE) * node_shadow


def test_common_shadow_point_sign_follows_threshold_parity() -> None:
    common = Point.base_mul(Scalar(77))
    assert shadow.make_common_shadow_point(0, common) == common
    assert shadow.make_common_shadow_point(1, common) == -common
    assert shadow.make_common_shadow_point(4, common) == common
    assert shadow.make_common_shadow_point(7, common) == -common


# --- malformed input --------------------------------------------------------------------


def test_zero_access_key_is_invalid_scalar() -> None:
    common = Point.base_mul(Scalar(5))
    with pytest.raises(InvalidScalar):
        shadow.compute_node_shadow_point(ZERO, common, ONE)
    with pytest.raises(InvalidScalar):
        shadow.decrypt_with_joint_shadow(1, ZERO, common, common)


def test_identity_points_are_invalid_point() -> None:
    point = Point.base_mul(Scalar(5))
    with pytest.raises(InvalidPoint):
        shadow.compute_node_shadow_point(ONE, Point.identity(), ONE)
    with pytest.raises(InvalidPoint):
        shadow.decrypt_with_joint_shadow(1, ONE, Point.identity(), point)
    with pytest.raises(InvalidPoint):
        shadow.make_common_shadow_point(1, Point.identity())


def test_bad_id_numbers_and_thresholds() -> None:
    with pytest.raises(InvalidScalar):
        shadow.compute_node_shadow(ONE, ZERO, [Scalar(2)])
    with pytest.raises(InvalidRequest):
        shadow.compute_node_shadow(ONE, Scalar(2), [Scalar(3), Scalar(2)])
    with pytest.raises(InvalidRequest):
        shadow.make_common_shadow_point(-1, Point.base_mul(ONE))
