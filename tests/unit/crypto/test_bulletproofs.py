"""Aggregated Bulletproofs: every value in range proves and verifies, alone and in batches; a
proof says nothing about other commitments, another context, or after any change; values out
of range cannot be proven, and a proof bent to an out-of-range commitment fails."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from secretstore.crypto.batch import PointSum
from secretstore.crypto.bulletproofs import (
    VALUE_BASE,
    RangeProof,
    add_range_check,
    prove_range,
    verify_range,
)
from secretstore.crypto.curve import G, N, Point, Scalar
from secretstore.crypto.rng import SeededRng, random_scalar
from secretstore.crypto.transcript import Transcript
from secretstore.errors import InvalidEncoding, InvalidRequest

RNG = SeededRng(b"bulletproofs tests")


def proven(values: list[int], bits: int, context: bytes = b"ctx"):
    blindings = [random_scalar(RNG) for _ in values]
    commitments, proof = prove_range(values, blindings, bits, Transcript(context), RNG)
    return commitments, proof, blindings


def verifies(commitments, proof, bits, context: bytes = b"ctx") -> bool:
    return verify_range(commitments, proof, bits, Transcript(context), RNG)


@given(st.lists(st.integers(0, 2**8 - 1), min_size=4, max_size=4))
@settings(max_examples=10, deadline=None)
def test_values_in_range_prove_and_verify(values: list[int]) -> None:
    commitments, proof, blindings = proven(values, 8)
    assert verifies(commitments, proof, 8)
    for value, blinding, commitment in zip(values, blindings, commitments, strict=True):
        assert commitment == VALUE_BASE * Scalar(value) + G * blinding if value else G * blinding


def test_the_edges_of_the_range_and_the_backup_shape() -> None:
    for values in ([0] * 16, [2**16 - 1] * 16, list(range(16))):
        commitments, proof, _ = proven(values, 16)
        assert verifies(commitments, proof, 16)
        assert RangeProof.from_bytes(proof.to_bytes()) == proof
        assert len(proof.to_bytes()) == 4 * 33 + 3 * 32 + 1 + 8 * 66 + 64


@pytest.mark.parametrize("values", [[256, 0, 0, 0], [-1, 0, 0, 0], [0, 0, 0, 2**9]])
def test_values_out_of_range_cannot_be_proven(values: list[int]) -> None:
    with pytest.raises(InvalidRequest):
        proven(values, 8)


def test_shapes_that_are_not_a_power_of_two_are_refused() -> None:
    with pytest.raises(InvalidRequest):
        proven([1, 2, 3], 8)


def test_a_proof_is_only_about_its_commitments_and_context() -> None:
    commitments, proof, _ = proven([5, 6, 7, 8], 8)
    assert not verifies(commitments, proof, 8, b"another context")
    swapped = (commitments[1], commitments[0], *commitments[2:])
    assert not verifies(swapped, proof, 8)
    other, _, _ = proven([5, 6, 7, 8], 8)
    assert not verifies(other, proof, 8)


def test_a_proof_bent_to_an_out_of_range_commitment_fails() -> None:
    """The prover holds an opening of V + 2^8·H (value 5 + 256, out of range) and the honest
    proof for 5: it does not verify for the shifted commitment."""
    commitments, proof, _ = proven([5, 0, 0, 0], 8)
    shifted = (commitments[0] + VALUE_BASE * Scalar(256), *commitments[1:])
    assert not verifies(shifted, proof, 8)
    # nor with the value wrapped below zero (n − 1 is far out of range)
    wrapped = (commitments[0] + VALUE_BASE * Scalar(N - 6), *commitments[1:])
    assert not verifies(wrapped, proof, 8)


def test_every_change_of_the_proof_fails() -> None:
    commitments, proof, _ = proven([1, 2, 3, 4], 8)
    changed = []
    for name in ("a_commit", "s_commit", "t1", "t2"):
        changed.append(dataclasses.replace(proof, **{name: getattr(proof, name) + G}))
    for name in ("tau_x", "mu", "t_hat", "a", "b"):
        changed.append(dataclasses.replace(proof, **{name: (getattr(proof, name) + 1) % N}))
    changed.append(dataclasses.replace(proof, left=(proof.left[0] + G, *proof.left[1:])))
    changed.append(dataclasses.replace(proof, right=(*proof.right[:-1], proof.right[-1] + G)))
    changed.append(dataclasses.replace(proof, left=proof.right, right=proof.left))
    for bad in changed:
        assert not verifies(commitments, bad, 8)
    assert not verifies(commitments, dataclasses.replace(proof, left=proof.left[1:]), 8)


def test_a_batch_holds_only_when_every_proof_does() -> None:
    good = [proven([i, i + 1, i + 2, i + 3], 8, b"ctx %d" % i) for i in range(5)]
    sums = PointSum()
    for i, (commitments, proof, _) in enumerate(good):
        assert add_range_check(
            sums, commitments, proof, bits=8, transcript=Transcript(b"ctx %d" % i), rng=RNG
        )
    assert sums.is_identity()
    sums = PointSum()
    for i, (commitments, made, _) in enumerate(good):
        proof = dataclasses.replace(made, t_hat=(made.t_hat + 1) % N) if i == 3 else made
        add_range_check(
            sums, commitments, proof, bits=8, transcript=Transcript(b"ctx %d" % i), rng=RNG
        )
    assert not sums.is_identity()


def test_malformed_encodings_are_refused() -> None:
    _, proof, _ = proven([1, 2, 3, 4], 8)
    raw = proof.to_bytes()
    bad_point = b"\x05" + raw[1:]
    bad_scalar = raw[: 4 * 33] + b"\xff" * 32 + raw[4 * 33 + 32 :]
    for data in (raw[:-1], raw + b"\x00", bad_point, bad_scalar, b""):
        with pytest.raises(InvalidEncoding):
            RangeProof.from_bytes(data)
    assert isinstance(Point.identity(), Point)
