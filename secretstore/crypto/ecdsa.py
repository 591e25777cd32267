"""Threshold ECDSA: inverted-nonce coefficient, masked s-shares, standard r‖s‖v output.

The server key ``x`` is shared with threshold ``t`` (node ``i`` holds ``s_i``); signing needs
a set ``S`` of ``2t+1`` holders (so ``2t < N`` is required). Among ``S`` four generation
sessions (dkg) run:

- the signature nonce ``k`` (threshold ``t``): shares ``k_i``, public ``R = k·G``;
- an inversion nonce ``e`` (threshold ``t``): shares ``e_i``;
- a sharing of zero (threshold ``2t``): shares ``z_i``, which mask the inversion;
- another sharing of zero (threshold ``2t``): shares ``z'_i``, which mask the signature.

Each node sends ``u_i = k_i·e_i + z_i`` (``compute_ecdsa_inversed_secret_coeff_share``), a
share of degree ``2t`` of ``u = k·e``; the master interpolates ``u`` from the ``2t+1`` values
and sends ``w = u⁻¹`` (``compute_ecdsa_inversed_secret_coeff_from_shares``). Now
``w·e_i`` is a degree-``t`` share of ``k⁻¹``. With ``r = R.x mod n`` (``compute_ecdsa_r``) and
``h`` the message hash as a scalar, node ``i`` returns
``σ'_i = (w·e_i)·h + (w·e_i·s_i)·r + z'_i`` (``compute_ecdsa_partial_signature``), a share of
degree ``2t`` of ``s = k⁻¹·(h + x·r)``, which the master interpolates (``compute_ecdsa_s``) and
serializes as a standard 65-byte ``r ‖ s ‖ v`` signature with low ``s``
(``serialize_ecdsa_signature``).

Why ``z'``: without it the ``2t+1`` values ``σ_i = w·e_i·(h + r·s_i)`` (Parity's
``compute_ecdsa_s_share``) are the points of the product ``w·e(x)·(h + r·s(x))``, which the
master can interpolate and factor over F_n: the factor of degree ``t`` that its own share
anchors is ``h + r·s(x)``, and so the key. With ``z'`` they are the points of a polynomial
of degree ``2t`` that is uniformly random apart from its value ``s`` at zero (as in Gennaro,
Jarecki, Krawczyk and Rabin's robust threshold DSS); docs/sessions/signing.md has the argument.

With ``t = 0`` a node signs directly with its share (keys.sign_recoverable), as Parity does.

Errors: the wrong number of shares raises InvalidRequest; a zero ``r``, ``u``, or hash scalar
InvalidScalar; a message hash not of 32 bytes InvalidEncoding.
"""

from __future__ import annotations

from collections.abc import Sequence

from secretstore.crypto.curve import N, Point, Scalar
from secretstore.crypto.shamir import check_threshold, interpolate_at_zero
from secretstore.errors import InvalidEncoding, InvalidRequest, InvalidScalar


def signers_needed(threshold: int) -> int:
    """``2t + 1``: how many key holders a threshold ECDSA signature takes."""
    check_threshold(threshold)
    return 2 * threshold + 1


def message_hash_scalar(message_hash: bytes) -> Scalar:
    """``h = m mod n`` for a 32-byte hash (Parity's ``to_scalar``; zero is rejected)."""
    if len(message_hash) != 32:
        raise InvalidEncoding(f"a message hash is 32 bytes, got {len(message_hash)}")
    return Scalar.from_hash(message_hash)


def compute_ecdsa_r(nonce_public: Point) -> Scalar:
    """``r = R.x mod n``; InvalidScalar if zero."""
    x = nonce_public.require_not_identity("nonce public").x
    r = Scalar(x)
    if r.is_zero():
        raise InvalidScalar("signature r is zero")
    return r


def compute_ecdsa_inversed_secret_coeff_share(
    sig_nonce_share: Scalar, inv_nonce_share: Scalar, zero_share: Scalar
) -> Scalar:
    """``u_i = k_i·e_i + z_i``: a degree-``2t`` share of ``u = k·e``."""
    return sig_nonce_share * inv_nonce_share + zero_share


def compute_ecdsa_inversed_secret_coeff_from_shares(
    threshold: int, id_numbers: Sequence[Scalar], shares: Sequence[Scalar]
) -> Scalar:
    """``w = u⁻¹`` where ``u = Σ λ_i·u_i`` over exactly ``2t+1`` shares.

    Raises InvalidRequest for the wrong number of shares, InvalidScalar if ``u`` is zero.
    """
    _check_double_threshold(threshold, id_numbers, shares)
    u = interpolate_at_zero(shares, id_numbers)
    if u.is_zero():
        raise InvalidScalar("inversed nonce coefficient is zero")
    return u.inverse()


def compute_ecdsa_s_share(
    inv_nonce_share: Scalar, inv_nonce_mul_secret: Scalar, signature_r: Scalar, message_hash: Scalar
) -> Scalar:
    """``σ_i = κ_i·h + (κ_i·s_i)·r`` where ``κ_i = w·e_i`` is the node's share of ``k⁻¹``
    (Parity's unmasked s-share; never sent as it is, see `compute_ecdsa_partial_signature`)."""
    return inv_nonce_share * message_hash + inv_nonce_mul_secret * signature_r


def compute_ecdsa_partial_signature(
    inversed_nonce_coeff: Scalar,
    inv_nonce_share: Scalar,
    secret_share: Scalar,
    nonce_public: Point,
    message_hash: bytes,
    *,
    signature_zero_share: Scalar,
) -> Scalar:
    """What a signer returns: ``κ_i = w·e_i``, then ``σ'_i = κ_i·h + κ_i·s_i·r + z'_i`` with
    ``z'_i`` its share of the sharing of zero (degree ``2t``) that masks the signature."""
    kappa = inversed_nonce_coeff * inv_nonce_share
    unmasked = compute_ecdsa_s_share(
        kappa,
        kappa * secret_share,
        compute_ecdsa_r(nonce_public),
        message_hash_scalar(message_hash),
    )
    return unmasked + signature_zero_share


def compute_ecdsa_s(
    threshold: int, signature_s_shares: Sequence[Scalar], id_numbers: Sequence[Scalar]
) -> Scalar:
    """``s = Σ λ_i·σ_i`` over exactly ``2t+1`` shares (InvalidRequest otherwise)."""
    _check_double_threshold(threshold, id_numbers, signature_s_shares)
    return interpolate_at_zero(signature_s_shares, id_numbers)


def serialize_ecdsa_signature(
    nonce_public: Point, signature_r: Scalar, signature_s: Scalar
) -> bytes:
    """65 bytes ``r ‖ s ‖ v``: ``v`` bit 0 is the parity of ``R.y``, bit 1 is set when
    ``R.x ≥ n``; a high ``s`` is replaced by ``n - s`` and bit 0 of ``v`` flipped (low-s)."""
    signature_s.require_nonzero("signature s")
    v = (nonce_public.y & 1) | (2 if nonce_public.x != signature_r.to_int() else 0)
    s = signature_s.to_int()
    if s > N // 2:
        s = N - s
        v ^= 1
    return signature_r.to_bytes() + s.to_bytes(32, "big") + bytes([v])


def combine_ecdsa_signature(
    threshold: int,
    nonce_public: Point,
    signature_s_shares: Sequence[Scalar],
    id_numbers: Sequence[Scalar],
) -> bytes:
    """The master's last step: interpolate ``s`` and serialize ``r ‖ s ‖ v``."""
    signature_s = compute_ecdsa_s(threshold, signature_s_shares, id_numbers)
    return serialize_ecdsa_signature(nonce_public, compute_ecdsa_r(nonce_public), signature_s)


def _check_double_threshold(
    threshold: int, id_numbers: Sequence[Scalar], shares: Sequence[Scalar]
) -> None:
    needed = signers_needed(threshold)
    if len(shares) != needed or len(id_numbers) != needed:
        raise InvalidRequest(
            f"threshold {threshold} needs {needed} shares and id numbers, "
            f"got {len(shares)} and {len(id_numbers)}"
        )
