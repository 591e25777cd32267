"""Messages of one ECDKG run (codes 0x0110–0x011f); an embedding session wraps them.

They carry no session id: the session that runs the DKG sends each inside its own message
(which has the session id and an `AnyMessage` field), so one DKG serves several sessions.
"""

from __future__ import annotations

from dataclasses import dataclass

from secretstore.crypto.curve import Point, Scalar
from secretstore.types import Hash256
from secretstore.wire.codec import message


@message(0x0110)
@dataclass(frozen=True, slots=True)
class DkgKeys:
    """A dealer's values for the receiver: ``secret1 = f(x)``, ``secret2 = g(x)`` at the
    receiver's id number ``x``, and the dealer's ``t+1`` Pedersen commitments
    ``a_k·G + b_k·H`` (sent to every receiver alike). Secret: never logged."""

    secret1: Scalar
    secret2: Scalar
    publics: tuple[Point, ...]


@message(0x0111)
@dataclass(frozen=True, slots=True)
class DkgShareProof:
    """A dealer's Feldman commitments ``a_k·G`` of its secret polynomial, the coefficients
    ``b_k`` of its blinding polynomial, and the footprint of every dealer's Pedersen
    commitments as the sender received them.

    ``share_proof`` holds ``k = 0..t``; in a zero-secret run it holds ``k = 1..t`` only (the
    free term is zero by construction, its commitment the identity). ``blinding`` holds
    ``b_0..b_t`` always: with them every receiver checks ``a_k·G + b_k·H`` against the
    Pedersen commitments the dealer sent before anything was revealed, so no dealer can
    choose its Feldman commitments after seeing the others' (nothing secret: ``g`` only hid
    ``f`` until every dealer was committed)."""

    publics_footprint: Hash256
    share_proof: tuple[Point, ...]
    blinding: tuple[Scalar, ...]


@message(0x0112)
@dataclass(frozen=True, slots=True)
class DkgAgreement:
    """The footprint of every dealer's Feldman commitments as the sender received them: equal
    footprints mean every node computes the same public shares and joint public."""

    share_proofs_footprint: Hash256
