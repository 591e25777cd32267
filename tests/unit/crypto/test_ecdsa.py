"""Threshold ECDSA (Parity's scheme): full signing runs verified by coincurve and eth_keys."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from coincurve import PublicKey
from coincurve.ecdsa import cdata_to_der, deserialize_recoverable, recoverable_convert
from eth_keys import keys as eth
from hypothesis import given
from hypothesis import strategies as st

from secretstore.crypto import ecdsa, shamir
from secretstore.crypto.curve import ONE, ZERO, N, Point, Scalar
from secretstore.crypto.keys import recover_public
from secretstore.crypto.rng import SeededRng, random_scalar
from secretstore.errors import InvalidEncoding, InvalidRequest, InvalidScalar

from .dkg_sim import KeyGeneration, run_key_generation

seeds = st.integers(min_value=0, max_value=2**64)


def reciprocal_shares(
    t: int, ids: Sequence[Scalar], shares: Sequence[Scalar], seed: int
) -> tuple[list[Scalar], Scalar]:
    """Shares of x⁻¹ from shares of x among 2t+1 nodes: e and a zero sharing are generated,
    u_i = x_i·e_i + z_i is opened to u = x·e, and each node keeps e_i·u⁻¹. Returns those and u⁻¹."""
    n = len(ids)
    e = run_key_generation(t, n, SeededRng(seed), ids)
    z = run_key_generation(2 * t, n, SeededRng(seed + 1), ids, is_zero=True)
    u = [
        ecdsa.compute_ecdsa_inversed_secret_coeff_share(
            shares[i], e.secret_shares[i], z.secret_shares[i]
        )
        for i in range(n)
    ]
    w = ecdsa.compute_ecdsa_inversed_secret_coeff_from_shares(t, ids, u)
    return [e.secret_shares[i] * w for i in range(n)], w


def threshold_sign(gen: KeyGeneration, signers: Sequence[int], message: bytes, seed: int) -> bytes:
    """The 2t+1 signers run the four nested generations, open u, and return masked s-shares."""
    t = gen.threshold
    ids = [gen.id_numbers[i] for i in signers]
    m = len(signers)
    nonce = run_key_generation(t, m, SeededRng(seed), ids)
    inv_nonce = run_key_generation(t, m, SeededRng(seed + 1), ids)
    zero = run_key_generation(2 * t, m, SeededRng(seed + 2), ids, is_zero=True)
    signature_zero = run_key_generation(2 * t, m, SeededRng(seed + 3), ids, is_zero=True)
    assert nonce.joint_public is not None
    u_shares = [
        ecdsa.compute_ecdsa_inversed_secret_coeff_share(
            nonce.secret_shares[k], inv_nonce.secret_shares[k], zero.secret_shares[k]
        )
        for k in range(m)
    ]
    w = ecdsa.compute_ecdsa_inversed_secret_coeff_from_shares(t, ids, u_shares)
    s_shares = [
        ecdsa.compute_ecdsa_partial_signature(
            w,
            inv_nonce.secret_shares[k],
            gen.secret_shares[i],
            nonce.joint_public,
            message,
            signature_zero_share=signature_zero.secret_shares[k],
        )
        for k, i in enumerate(signers)
    ]
    return ecdsa.combine_ecdsa_signature(t, nonce.joint_public, s_shares, ids)


def assert_standard_signature(signature: bytes, message: bytes, public: Point) -> None:
    assert len(signature) == 65
    assert signature[64] in (0, 1)
    assert int.from_bytes(signature[32:64], "big") <= N // 2  # low s
    key = PublicKey(b"\x04" + public.to_bytes())
    # coincurve: recover, and verify the DER form
    recovered = PublicKey.from_signature_and_message(signature, message, hasher=None)
    assert recovered.format(compressed=False) == key.format(compressed=False)
    der = cdata_to_der(recoverable_convert(deserialize_recoverable(signature)))
    assert key.verify(der, message, hasher=None)
    # eth_keys
    eth_signature = eth.Signature(signature)
    eth_public = eth.PublicKey(public.to_bytes())
    assert eth_signature.verify_msg_hash(message, eth_public)
    assert eth_signature.recover_public_key_from_msg_hash(message) == eth_public
    # and our own recovery
    assert recover_public(signature, message) == public


@pytest.mark.parametrize(("t", "n"), [(1, 3), (2, 5), (2, 6), (3, 11), (4, 11)])
def test_full_ecdsa_signing(t: int, n: int) -> None:
    rng = SeededRng(t * 100 + n)
    gen = run_key_generation(t, n, rng)
    assert gen.joint_public is not None
    message = rng.random_bytes(32)
    signers = list(range(n - 2 * t - 1, n))
    signature = threshold_sign(gen, signers, message, seed=n)
    assert_standard_signature(signature, message, gen.joint_public)


@st.composite
def ecdsa_case(draw: st.DrawFn) -> tuple[int, int, list[int], bytes, int]:
    t = draw(st.integers(min_value=0, max_value=2))
    n = draw(st.integers(min_value=2 * t + 1, max_value=2 * t + 3))
    signers = draw(st.permutations(range(n)))[: 2 * t + 1]
    message = draw(st.binary(min_size=32, max_size=32).filter(lambda m: int.from_bytes(m) % N))
    return t, n, signers, message, draw(seeds)


@given(ecdsa_case())
def test_threshold_ecdsa_verifies_with_standard_verifiers(
    case: tuple[int, int, list[int], bytes, int],
) -> None:
    t, n, signers, message, seed = case
    gen = run_key_generation(t, n, SeededRng(seed))
    assert gen.joint_public is not None
    signature = threshold_sign(gen, signers, message, seed + 1)
    assert_standard_signature(signature, message, gen.joint_public)
    other = bytes([message[0] ^ 1]) + message[1:]
    assert recover_public(signature, other) != gen.joint_public


@pytest.mark.parametrize(("t", "n"), [(1, 3), (2, 5), (2, 7), (3, 8)])
def test_shares_multiply_into_a_double_threshold_sharing(t: int, n: int) -> None:
    rng = SeededRng(n)
    a = run_key_generation(t, n, rng)
    b = run_key_generation(t, n, rng, a.id_numbers)
    products = [x * y for x, y in zip(a.secret_shares, b.secret_shares, strict=True)]
    ids = a.id_numbers[: 2 * t + 1]
    assert shamir.reconstruct_secret(2 * t, products[: 2 * t + 1], ids) == (
        a.joint_secret * b.joint_secret
    )


@pytest.mark.parametrize(("t", "n"), [(1, 3), (2, 5), (2, 7), (3, 8)])
def test_reciprocal_protocol_shares_the_inverse(t: int, n: int) -> None:
    gen = run_key_generation(t, n, SeededRng(n + 50))
    ids = list(gen.id_numbers[: 2 * t + 1])
    inverse_shares, _ = reciprocal_shares(t, ids, gen.secret_shares[: 2 * t + 1], seed=n)
    # the inverse shares form a degree-t sharing of x⁻¹: any t+1 of them reconstruct it
    assert shamir.reconstruct_secret(t, inverse_shares[: t + 1], ids[: t + 1]) == (
        gen.joint_secret.inverse()
    )
    assert shamir.reconstruct_secret(t, inverse_shares[-t - 1 :], ids[-t - 1 :]) == (
        gen.joint_secret.inverse()
    )


@pytest.mark.parametrize(("t", "seed"), [(1, 3), (2, 4)])
def test_what_a_master_holds_in_the_exponent_and_in_numbers(t: int, seed: int) -> None:
    """The points a master can compute (docs/sessions/signing.md): ``w·E = k⁻¹·G`` and
    ``σ'_i·G − Z'_i = e_i·w·(h·G + r·Y_i)``; the masked numbers differ from the unmasked
    product shares at every member, yet combine to the same s."""
    n = 2 * t + 1
    gen = run_key_generation(t, n, SeededRng(seed))
    ids = list(gen.id_numbers)
    nonce = run_key_generation(t, n, SeededRng(seed + 1), ids)
    inv = run_key_generation(t, n, SeededRng(seed + 2), ids)
    zero = run_key_generation(2 * t, n, SeededRng(seed + 3), ids, is_zero=True)
    mask = run_key_generation(2 * t, n, SeededRng(seed + 4), ids, is_zero=True)
    assert nonce.joint_public is not None and inv.joint_public is not None
    u = [
        ecdsa.compute_ecdsa_inversed_secret_coeff_share(
            nonce.secret_shares[i], inv.secret_shares[i], zero.secret_shares[i]
        )
        for i in range(n)
    ]
    w = ecdsa.compute_ecdsa_inversed_secret_coeff_from_shares(t, ids, u)
    assert inv.joint_public * w == Point.base_mul(nonce.joint_secret.inverse())
    message = b"\x61" * 32
    r = ecdsa.compute_ecdsa_r(nonce.joint_public)
    h = ecdsa.message_hash_scalar(message)
    masked, unmasked = [], []
    for i in range(n):
        e, x = inv.secret_shares[i], gen.secret_shares[i]
        sigma = ecdsa.compute_ecdsa_partial_signature(
            w, e, x, nonce.joint_public, message, signature_zero_share=mask.secret_shares[i]
        )
        base = (Point.base_mul(h) + gen.share_public(i) * r) * w
        assert Point.base_mul(sigma) - mask.share_public(i) == base * e
        masked.append(sigma)
        unmasked.append(ecdsa.compute_ecdsa_s_share(w * e, w * e * x, r, h))
    assert all(a != b for a, b in zip(masked, unmasked, strict=True))
    assert ecdsa.compute_ecdsa_s(t, masked, ids) == ecdsa.compute_ecdsa_s(t, unmasked, ids)


@given(seeds, st.binary(min_size=32, max_size=32).filter(lambda m: int.from_bytes(m) % N))
def test_serialization_normalizes_high_s(seed: int, message: bytes) -> None:
    rng = SeededRng(seed)
    secret, k = random_scalar(rng), random_scalar(rng)
    nonce_public = Point.base_mul(k)
    r = ecdsa.compute_ecdsa_r(nonce_public)
    s = k.inverse() * (ecdsa.message_hash_scalar(message) + r * secret)
    signature = ecdsa.serialize_ecdsa_signature(nonce_public, r, s)
    assert_standard_signature(signature, message, Point.base_mul(secret))
    flipped = s.to_int() > N // 2
    assert int.from_bytes(signature[32:64], "big") == ((N - s.to_int()) if flipped else s.to_int())
    assert signature[64] == (nonce_public.y & 1) ^ int(flipped)
    # the negated s (same signature, other half) serializes identically
    assert ecdsa.serialize_ecdsa_signature(-nonce_public, r, -s) == signature


def test_signers_needed() -> None:
    assert [ecdsa.signers_needed(t) for t in range(4)] == [1, 3, 5, 7]
    with pytest.raises(InvalidRequest):
        ecdsa.signers_needed(-1)


# --- malformed input --------------------------------------------------------------------


def test_wrong_number_of_shares_is_invalid_request() -> None:
    ids = [Scalar(k) for k in (1, 2, 3, 4)]
    nonce_public = Point.base_mul(Scalar(5))
    with pytest.raises(InvalidRequest):
        ecdsa.compute_ecdsa_inversed_secret_coeff_from_shares(1, ids, [ONE] * 4)
    with pytest.raises(InvalidRequest):
        ecdsa.compute_ecdsa_inversed_secret_coeff_from_shares(1, ids[:3], [ONE] * 2)
    with pytest.raises(InvalidRequest):
        ecdsa.compute_ecdsa_s(2, [ONE] * 3, ids[:3])
    with pytest.raises(InvalidRequest):
        ecdsa.combine_ecdsa_signature(1, nonce_public, [ONE] * 2, ids[:2])


def test_duplicate_and_zero_id_numbers() -> None:
    with pytest.raises(InvalidRequest):
        ecdsa.compute_ecdsa_s(1, [ONE] * 3, [Scalar(1), Scalar(2), Scalar(1)])
    with pytest.raises(InvalidScalar):
        ecdsa.compute_ecdsa_s(1, [ONE] * 3, [Scalar(1), Scalar(2), ZERO])


def test_zero_values_are_invalid_scalar() -> None:
    ids = [Scalar(1), Scalar(2), Scalar(3)]
    with pytest.raises(InvalidScalar):
        ecdsa.compute_ecdsa_inversed_secret_coeff_from_shares(1, ids, [ZERO] * 3)
    with pytest.raises(InvalidScalar):
        ecdsa.message_hash_scalar(bytes(32))
    with pytest.raises(InvalidScalar):
        ecdsa.message_hash_scalar(N.to_bytes(32, "big"))
    with pytest.raises(InvalidScalar):
        ecdsa.serialize_ecdsa_signature(Point.base_mul(ONE), ONE, ZERO)


def test_bad_message_hash_is_invalid_encoding() -> None:
    with pytest.raises(InvalidEncoding):
        ecdsa.message_hash_scalar(b"\x01" * 33)
    with pytest.raises(InvalidEncoding):
        ecdsa.compute_ecdsa_partial_signature(
            ONE, ONE, ONE, Point.base_mul(ONE), b"", signature_zero_share=ONE
        )
