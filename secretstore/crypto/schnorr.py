"""Parity's threshold Schnorr signatures: shares, combination, verification, per-share checks.

Parity's variant over secp256k1, for a key ``Y = x·G`` and a 32-byte message hash ``m``:
nonce ``k``, ``R = k·G``, ``c = keccak256(m ‖ R.x) mod n`` (``combine_message_hash_with_public``,
zero rejected), ``s = k - c·x``. The signature is ``(c, s)``, 64 bytes ``c ‖ s`` on the wire.
Verification recomputes ``R' = s·G + c·Y`` and checks ``c == keccak256(m ‖ R'.x) mod n``.

Threshold signing by a set ``S`` of ``t+1`` key holders: a nonce generation (dkg) among ``S``
gives each node ``i`` its coefficient ``k_i`` (its dealer free term, ``Σ_S k_i = k``) and
publishes ``R_i = k_i·G`` (``R = Σ R_i``). Node ``i`` returns
``σ_i = k_i - c·λ_i·s_i`` (``compute_schnorr_signature_share``; Parity writes it with
``shadow_mul`` and a sign flip on the parity of ``t``, which is the same value), and
``s = Σ σ_i`` (``compute_schnorr_signature``) because ``Σ λ_i·s_i = x``.

A share can be checked on its own (``check_schnorr_signature_share``) given the node's share
public ``Y_i = s_i·G`` (dkg.secret_share_public): ``σ_i·G == R_i - (c·λ_i)·Y_i``.

Errors: a message hash not of 32 bytes raises InvalidEncoding; a hash that reduces to zero
InvalidScalar; an identity nonce public InvalidPoint; id number problems as in shamir.
``verify_schnorr_signature`` answers False for any signature that does not verify.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from secretstore.crypto.curve import Point, Scalar, scalar_sum
from secretstore.crypto.hashing import keccak256
from secretstore.crypto.shamir import check_threshold, lagrange_coefficient, shadow_mul
from secretstore.errors import InvalidEncoding, InvalidScalar, InvalidSignature


@dataclass(frozen=True, slots=True)
class SchnorrSignature:
    """Parity's Schnorr signature ``(c, s)``."""

    c: Scalar
    s: Scalar

    def to_bytes(self) -> bytes:
        """64 bytes ``c ‖ s`` (what the HTTP response carries, ECIES-encrypted)."""
        return self.c.to_bytes() + self.s.to_bytes()

    @classmethod
    def from_bytes(cls, data: bytes) -> SchnorrSignature:
        """Inverse of ``to_bytes``; InvalidSignature for a wrong length or out-of-range scalar."""
        if len(data) != 64:
            raise InvalidSignature(f"a Schnorr signature is 64 bytes, got {len(data)}")
        try:
            return cls(Scalar.from_bytes(data[:32]), Scalar.from_bytes(data[32:]))
        except InvalidScalar as exc:
            raise InvalidSignature("Schnorr signature scalar out of range") from exc


def combine_message_hash_with_public(message_hash: bytes, public: Point) -> Scalar:
    """``c = keccak256(m ‖ P.x) mod n``; InvalidScalar if it reduces to zero."""
    if len(message_hash) != 32:
        raise InvalidEncoding(f"a message hash is 32 bytes, got {len(message_hash)}")
    return Scalar.from_hash(keccak256(message_hash + public.to_bytes()[:32]))


def compute_schnorr_signature_share(
    threshold: int,
    combined_hash: Scalar,
    *,
    one_time_secret_coeff: Scalar,
    secret_share: Scalar,
    id_number: Scalar,
    other_id_numbers: Iterable[Scalar],
) -> Scalar:
    """``σ_i = k_i - c·λ_i·s_i`` over the ``t`` other signers (Parity: ``k_i ∓ shadow_mul(c)·s_i``,
    minus for even ``t``, plus for odd ``t``)."""
    check_threshold(threshold)
    term = shadow_mul(combined_hash, id_number, other_id_numbers) * secret_share
    if threshold % 2 == 0:
        return one_time_secret_coeff - term
    return one_time_secret_coeff + term


def compute_schnorr_signature(signature_shares: Iterable[Scalar]) -> Scalar:
    """``s = Σ σ_i``."""
    return scalar_sum(signature_shares)


def check_schnorr_signature_share(
    combined_hash: Scalar,
    signature_share: Scalar,
    *,
    share_public: Point,
    one_time_public: Point,
    id_number: Scalar,
    other_id_numbers: Iterable[Scalar],
) -> bool:
    """``σ_i·G == R_i - (c·λ_i)·Y_i`` where ``Y_i = s_i·G`` is the signer's share public,
    ``R_i = k_i·G`` its published nonce coefficient public and ``λ_i`` its Lagrange
    coefficient among the signers. True exactly when ``σ_i`` is the share the signer owes."""
    weight = combined_hash * lagrange_coefficient(id_number, other_id_numbers)
    return Point.base_mul(signature_share) == one_time_public - share_public * weight


def local_compute_schnorr_signature(
    nonce: Scalar, secret: Scalar, message_hash: bytes
) -> SchnorrSignature:
    """Single-key signing: ``R = k·G``, ``c = H(m ‖ R.x)``, ``s = k - c·x``."""
    nonce.require_nonzero("nonce")
    c = combine_message_hash_with_public(message_hash, Point.base_mul(nonce))
    return SchnorrSignature(c, nonce - c * secret)


def verify_schnorr_signature(
    public: Point, signature: SchnorrSignature, message_hash: bytes
) -> bool:
    """``c == H(m ‖ (s·G + c·Y).x)``; False (not an error) for any mismatch."""
    if len(message_hash) != 32:
        raise InvalidEncoding(f"a message hash is 32 bytes, got {len(message_hash)}")
    nonce_public = Point.base_mul(signature.s) + public * signature.c
    if nonce_public.is_identity():
        return False
    try:
        return combine_message_hash_with_public(message_hash, nonce_public) == signature.c
    except InvalidScalar:
        return False
