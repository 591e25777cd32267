"""Chaum–Pedersen proofs of equal discrete logs: they verify exactly when the logs are equal."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from secretstore.crypto.curve import ONE, G, Point, Scalar, hash_to_point
from secretstore.crypto.dleq import DleqProof, prove_equal_logs, verify_equal_logs
from secretstore.crypto.rng import SeededRng, random_scalar
from secretstore.errors import InvalidPoint

CONTEXT = b"test context"
H = hash_to_point(b"dleq test base")


@given(st.integers(min_value=0, max_value=2**32))
def test_a_proof_of_equal_logs_verifies(seed: int) -> None:
    rng = SeededRng(seed)
    secret = random_scalar(rng)
    base = G * random_scalar(rng)
    proof = prove_equal_logs(secret, H, base, rng, context=CONTEXT)
    assert verify_equal_logs(proof, H, H * secret, base, base * secret, context=CONTEXT)


@given(st.integers(min_value=0, max_value=2**32))
def test_unequal_logs_a_wrong_context_or_an_altered_proof_do_not_verify(seed: int) -> None:
    rng = SeededRng(seed)
    secret = random_scalar(rng)
    other = secret + ONE
    proof = prove_equal_logs(secret, G, H, rng, context=CONTEXT)
    good = (G, G * secret, H, H * secret)
    assert verify_equal_logs(proof, *good, context=CONTEXT)
    assert not verify_equal_logs(proof, G, G * secret, H, H * other, context=CONTEXT)
    assert not verify_equal_logs(proof, G, G * other, H, H * secret, context=CONTEXT)
    assert not verify_equal_logs(proof, *good, context=CONTEXT + b"!")
    bumped = DleqProof(proof.challenge, proof.response + ONE)
    assert not verify_equal_logs(bumped, *good, context=CONTEXT)
    bumped = DleqProof(proof.challenge + ONE, proof.response)
    assert not verify_equal_logs(bumped, *good, context=CONTEXT)


def test_a_prover_with_another_secret_cannot_pass() -> None:
    rng = SeededRng(3)
    secret = random_scalar(rng)
    # P2 has another log than P1: a proof made with either secret fails
    public1, public2 = G * secret, H * (secret + ONE)
    for used in (secret, secret + ONE):
        proof = prove_equal_logs(used, G, H, rng, context=CONTEXT)
        assert not verify_equal_logs(proof, G, public1, H, public2, context=CONTEXT)


def test_identity_points() -> None:
    rng = SeededRng(4)
    identity = Point.identity()
    with pytest.raises(InvalidPoint):
        prove_equal_logs(ONE, identity, H, rng, context=CONTEXT)
    with pytest.raises(InvalidPoint):
        prove_equal_logs(ONE, G, identity, rng, context=CONTEXT)
    proof = prove_equal_logs(Scalar(5), G, H, rng, context=CONTEXT)
    for points in [
        (identity, G, H, H),
        (G, identity, H, H),
        (G, G, identity, H),
        (G, G, H, identity),
    ]:
        assert not verify_equal_logs(proof, *points, context=CONTEXT)


def test_repr_hides_the_proof() -> None:
    proof = prove_equal_logs(Scalar(5), G, H, SeededRng(1), context=CONTEXT)
    assert repr(proof) == "DleqProof(...)"
