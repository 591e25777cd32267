"""Threshold Schnorr (Parity's variant): full signing runs, per-share checks, verification."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pytest
from coincurve import PublicKey
from Crypto.Hash import keccak
from hypothesis import given
from hypothesis import strategies as st

from secretstore.crypto import schnorr
from secretstore.crypto.curve import ONE, ZERO, N, Point, Scalar
from secretstore.crypto.rng import SeededRng, random_scalar
from secretstore.errors import InvalidEncoding, InvalidRequest, InvalidScalar, InvalidSignature

from .dkg_sim import PARITY_CASES, KeyGeneration, run_key_generation

seeds = st.integers(min_value=0, max_value=2**64)
MESSAGE = bytes(31) + b"\x42"


@dataclass(frozen=True)
class SigningRun:
    gen: KeyGeneration
    signers: list[int]
    nonce: KeyGeneration
    combined_hash: Scalar
    shares: list[Scalar]
    signature: schnorr.SchnorrSignature


def others(gen: KeyGeneration, signers: Sequence[int], i: int) -> list[Scalar]:
    return [gen.id_numbers[j] for j in signers if j != i]


def sign(gen: KeyGeneration, signers: list[int], message: bytes, seed: int) -> SigningRun:
    """The t+1 signers generate a nonce among themselves, then each returns its share."""
    t = gen.threshold
    ids = [gen.id_numbers[i] for i in signers]
    nonce = run_key_generation(t, t + 1, SeededRng(seed), ids)
    assert nonce.joint_public is not None
    c = schnorr.combine_message_hash_with_public(message, nonce.joint_public)
    shares = [
        schnorr.compute_schnorr_signature_share(
            t,
            c,
            one_time_secret_coeff=nonce.secret_coeffs[k],
            secret_share=gen.secret_shares[i],
            id_number=gen.id_numbers[i],
            other_id_numbers=others(gen, signers, i),
        )
        for k, i in enumerate(signers)
    ]
    signature = schnorr.SchnorrSignature(c, schnorr.compute_schnorr_signature(shares))
    return SigningRun(gen, signers, nonce, c, shares, signature)


def share_checks(run: SigningRun) -> list[bool]:
    return [
        schnorr.check_schnorr_signature_share(
            run.combined_hash,
            run.shares[k],
            share_public=run.gen.share_public(i),
            one_time_public=run.nonce.public_shares[k],
            id_number=run.gen.id_numbers[i],
            other_id_numbers=others(run.gen, run.signers, i),
        )
        for k, i in enumerate(run.signers)
    ]


def standard_check(public: Point, nonce_public: Point, signature: bytes, message: bytes) -> bool:
    """Independent check with coincurve and pycryptodome: c = keccak(m ‖ R.x) mod n and
    s·G + c·Y = R, for the 64-byte c ‖ s."""
    c, s = signature[:32], signature[32:]
    y = PublicKey(b"\x04" + public.to_bytes())
    r = PublicKey(b"\x04" + nonce_public.to_bytes())
    recombined = PublicKey.combine_keys([PublicKey.from_secret(s), y.multiply(c)])
    r_x = r.format(compressed=False)[1:33]
    digest = keccak.new(digest_bits=256, data=message + r_x).digest()
    return recombined == r and int.from_bytes(digest, "big") % N == int.from_bytes(c, "big")


def test_local_signature_works() -> None:
    rng = SeededRng(1)
    secret, nonce = random_scalar(rng), random_scalar(rng)
    signature = schnorr.local_compute_schnorr_signature(nonce, secret, MESSAGE)
    public = Point.base_mul(secret)
    assert schnorr.verify_schnorr_signature(public, signature, MESSAGE)
    assert standard_check(public, Point.base_mul(nonce), signature.to_bytes(), MESSAGE)
    assert not schnorr.verify_schnorr_signature(public, signature, bytes(32))
    assert not schnorr.verify_schnorr_signature(Point.base_mul(nonce), signature, MESSAGE)


@pytest.mark.parametrize(("t", "n"), [(0, 1), *PARITY_CASES])
def test_full_schnorr_signing(t: int, n: int) -> None:
    gen = run_key_generation(t, n, SeededRng(t * 100 + n))
    assert gen.joint_public is not None
    run = sign(gen, list(range(t + 1)), MESSAGE, seed=n)
    assert all(share_checks(run))
    local = schnorr.local_compute_schnorr_signature(
        run.nonce.joint_secret, gen.joint_secret, MESSAGE
    )
    assert run.signature == local
    assert schnorr.verify_schnorr_signature(gen.joint_public, run.signature, MESSAGE)
    assert run.nonce.joint_public is not None
    assert standard_check(
        gen.joint_public, run.nonce.joint_public, run.signature.to_bytes(), MESSAGE
    )


@st.composite
def signing_case(draw: st.DrawFn) -> tuple[int, int, list[int], bytes, int]:
    n = draw(st.integers(min_value=1, max_value=6))
    t = draw(st.integers(min_value=0, max_value=n - 1))
    signers = draw(st.permutations(range(n)))[: t + 1]
    return t, n, signers, draw(st.binary(min_size=32, max_size=32)), draw(seeds)


@given(signing_case())
def test_threshold_schnorr_verifies_for_any_signers(
    case: tuple[int, int, list[int], bytes, int],
) -> None:
    t, n, signers, message, seed = case
    gen = run_key_generation(t, n, SeededRng(seed))
    assert gen.joint_public is not None
    run = sign(gen, signers, message, seed + 1)
    assert all(share_checks(run))
    assert schnorr.verify_schnorr_signature(gen.joint_public, run.signature, message)
    assert run.nonce.joint_public is not None
    assert standard_check(
        gen.joint_public, run.nonce.joint_public, run.signature.to_bytes(), message
    )
    wire = run.signature.to_bytes()
    assert len(wire) == 64
    assert schnorr.SchnorrSignature.from_bytes(wire) == run.signature


@given(signing_case(), st.integers(min_value=0, max_value=5))
def test_a_bad_share_is_caught_and_breaks_the_signature(
    case: tuple[int, int, list[int], bytes, int], which: int
) -> None:
    t, n, signers, message, seed = case
    gen = run_key_generation(t, n, SeededRng(seed))
    assert gen.joint_public is not None
    run = sign(gen, signers, message, seed + 1)
    cheater = which % len(signers)
    run.shares[cheater] = run.shares[cheater] + ONE
    checks = share_checks(run)
    assert checks == [k != cheater for k in range(len(signers))]
    bad = schnorr.SchnorrSignature(run.combined_hash, schnorr.compute_schnorr_signature(run.shares))
    assert not schnorr.verify_schnorr_signature(gen.joint_public, bad, message)


def test_share_check_with_the_wrong_share_public_fails() -> None:
    gen = run_key_generation(2, 4, SeededRng(5))
    run = sign(gen, [0, 1, 3], MESSAGE, 6)
    # the naive check against s_i·G without the Lagrange weight (Parity's abandoned TODO) fails
    naive = run.nonce.public_shares[0] - gen.share_public(0) * run.combined_hash
    assert Point.base_mul(run.shares[0]) != naive
    assert not schnorr.check_schnorr_signature_share(
        run.combined_hash,
        run.shares[0],
        share_public=gen.share_public(2),
        one_time_public=run.nonce.public_shares[0],
        id_number=gen.id_numbers[0],
        other_id_numbers=others(gen, run.signers, 0),
    )


def test_combined_hash_is_keccak_of_hash_and_x() -> None:
    point = Point.base_mul(Scalar(99))
    digest = keccak.new(digest_bits=256, data=MESSAGE + point.to_bytes()[:32]).digest()
    combined = schnorr.combine_message_hash_with_public(MESSAGE, point)
    assert combined.to_int() == int.from_bytes(digest, "big") % N


# --- malformed input --------------------------------------------------------------------


def test_bad_message_hash_length_is_invalid_encoding() -> None:
    point = Point.base_mul(ONE)
    with pytest.raises(InvalidEncoding):
        schnorr.combine_message_hash_with_public(b"\x01" * 31, point)
    with pytest.raises(InvalidEncoding):
        schnorr.verify_schnorr_signature(point, schnorr.SchnorrSignature(ONE, ONE), b"")


def test_bad_signature_bytes_are_invalid_signature() -> None:
    with pytest.raises(InvalidSignature):
        schnorr.SchnorrSignature.from_bytes(bytes(63))
    with pytest.raises(InvalidSignature):
        schnorr.SchnorrSignature.from_bytes(b"\xff" * 64)


def test_degenerate_signatures_do_not_verify() -> None:
    public = Point.base_mul(Scalar(3))
    # s·G + c·Y is the identity here: rejected, not an exception
    assert not schnorr.verify_schnorr_signature(
        public, schnorr.SchnorrSignature(ONE, -Scalar(3)), MESSAGE
    )
    assert not schnorr.verify_schnorr_signature(
        public, schnorr.SchnorrSignature(ZERO, ZERO), MESSAGE
    )


def test_bad_inputs_to_shares() -> None:
    with pytest.raises(InvalidScalar):
        schnorr.local_compute_schnorr_signature(ZERO, ONE, MESSAGE)
    with pytest.raises(InvalidScalar):
        schnorr.compute_schnorr_signature_share(
            1, ONE, one_time_secret_coeff=ONE, secret_share=ONE, id_number=ZERO,
            other_id_numbers=[ONE],
        )  # fmt: skip
    with pytest.raises(InvalidRequest):
        schnorr.compute_schnorr_signature_share(
            1, ONE, one_time_secret_coeff=ONE, secret_share=ONE, id_number=ONE,
            other_id_numbers=[ONE],
        )  # fmt: skip
    with pytest.raises(InvalidRequest):
        schnorr.compute_schnorr_signature_share(
            -1, ONE, one_time_secret_coeff=ONE, secret_share=ONE, id_number=ONE,
            other_id_numbers=[],
        )  # fmt: skip
