"""Chaum–Pedersen proofs that two points have the same discrete log to two bases (Fiat–Shamir).

A prover who knows ``x`` with ``P1 = x·B1`` and ``P2 = x·B2`` picks a fresh nonce ``ρ``,
commits ``T1 = ρ·B1``, ``T2 = ρ·B2``, and answers the challenge
``e = keccak256(label ‖ context ‖ B1 ‖ P1 ‖ B2 ‖ P2 ‖ T1 ‖ T2) mod n`` with ``z = ρ - e·x``.
A verifier recomputes ``T1 = z·B1 + e·P1`` and ``T2 = z·B2 + e·P2`` and the challenge.
The proof reveals nothing about ``x``; `context` binds it to one use (session, signer, step),
so it cannot be replayed elsewhere.

Threshold ECDSA signing uses it to make each signer's contribution checkable on its own.

Errors: proving with an identity base raises InvalidPoint; `verify_equal_logs` answers False
for anything that does not verify (an identity among the points included).
"""

from __future__ import annotations

from dataclasses import dataclass

from secretstore.crypto.curve import Point, Scalar
from secretstore.crypto.hashing import keccak256
from secretstore.crypto.rng import Rng, random_scalar

_LABEL = b"secretstore-dleq-v1"


@dataclass(frozen=True, slots=True, repr=False)
class DleqProof:
    """A proof ``(e, z)``: challenge and response."""

    challenge: Scalar
    response: Scalar

    def __repr__(self) -> str:
        return "DleqProof(...)"


def _encode(point: Point) -> bytes:
    return bytes(64) if point.is_identity() else point.to_bytes()


def _challenge(context: bytes, points: tuple[Point, ...]) -> Scalar:
    data = _LABEL + len(context).to_bytes(4, "big") + context
    data += b"".join(_encode(point) for point in points)
    return Scalar(int.from_bytes(keccak256(data), "big"))


def prove_equal_logs(
    secret: Scalar,
    base1: Point,
    base2: Point,
    rng: Rng,
    *,
    context: bytes,
    publics: tuple[Point, Point] | None = None,
) -> DleqProof:
    """A proof that ``secret·base1`` and ``secret·base2`` share the log ``secret``.
    `publics`: those two points when the caller has them already (they are not checked:
    a wrong pair gives a proof that does not verify)."""
    base1.require_not_identity("first base")
    base2.require_not_identity("second base")
    public1, public2 = publics if publics is not None else (base1 * secret, base2 * secret)
    nonce = random_scalar(rng)
    points = (base1, public1, base2, public2, base1 * nonce, base2 * nonce)
    challenge = _challenge(context, points)
    return DleqProof(challenge, nonce - challenge * secret)


def verify_equal_logs(
    proof: DleqProof,
    base1: Point,
    public1: Point,
    base2: Point,
    public2: Point,
    *,
    context: bytes,
) -> bool:
    """Whether `proof` shows ``log_base1(public1) == log_base2(public2)`` for `context`."""
    if any(p.is_identity() for p in (base1, public1, base2, public2)):
        return False
    commit1 = base1 * proof.response + public1 * proof.challenge
    commit2 = base2 * proof.response + public2 * proof.challenge
    points = (base1, public1, base2, public2, commit1, commit2)
    return _challenge(context, points) == proof.challenge
