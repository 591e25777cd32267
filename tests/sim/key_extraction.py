"""The key-extraction attack on threshold signing, as a signing master would run it.

A master receives one scalar from every member of its group. If those scalars are the values
of a polynomial that factors into a part the master can anchor with its own key share, the
master can read the whole key off them. For Parity's threshold ECDSA without re-randomised
shares they are: ``σ_i = w·e_i·(h + r·s_i)`` are the values at the members' id numbers of
``P(x) = w·e(x)·(h + r·s(x))``, of degree 2t. The attack

1. interpolates the 2t+1 values into a polynomial over F_n,
2. factors it over F_n (sympy's finite-field factorisation handles the 256-bit order),
3. takes every product of irreducible factors of total degree t as a candidate ``B(x)``,
4. scales it so that ``B(x_master) = h + r·s_master`` (the master knows both),
5. reads ``x = (B(0) - h) / r`` and checks ``x·G`` against the server key public.

Pure integer arithmetic modulo n, written here apart from the code under attack; coincurve
only for the final check. Used by tests/sim/test_signing_key_extraction.py.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from coincurve import PublicKey
from sympy.polys.domains import ZZ
from sympy.polys.galoistools import gf_factor

#: the order of secp256k1
ORDER = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141

#: A polynomial over F_n, lowest coefficient first.
Poly = list[int]


def _mul(a: Poly, b: Poly) -> Poly:
    out = [0] * (len(a) + len(b) - 1)
    for i, x in enumerate(a):
        for j, y in enumerate(b):
            out[i + j] = (out[i + j] + x * y) % ORDER
    return out


def evaluate(poly: Poly, x: int) -> int:
    value = 0
    for coeff in reversed(poly):
        value = (value * x + coeff) % ORDER
    return value


def interpolate(points: Sequence[tuple[int, int]]) -> Poly:
    """The coefficients of the polynomial of degree < len(points) through `points`."""
    result = [0] * len(points)
    for i, (xi, yi) in enumerate(points):
        basis: Poly = [1]
        denominator = 1
        for j, (xj, _) in enumerate(points):
            if j != i:
                basis = _mul(basis, [-xj % ORDER, 1])
                denominator = denominator * (xi - xj) % ORDER
        weight = yi * pow(denominator, -1, ORDER) % ORDER
        for k, coeff in enumerate(basis):
            result[k] = (result[k] + weight * coeff) % ORDER
    while len(result) > 1 and result[-1] == 0:
        result.pop()
    return result


def irreducible_factors(poly: Poly) -> list[tuple[Poly, int]]:
    """Monic irreducible factors of `poly` over F_n with their multiplicities."""
    high_first = [ZZ(c) for c in reversed(poly)]
    _, factors = gf_factor(high_first, ORDER, ZZ)
    return [([int(c) for c in reversed(f)], multiplicity) for f, multiplicity in factors]


def divisors_of_degree(poly: Poly, degree: int) -> Iterator[Poly]:
    """Every monic divisor of `poly` of exactly `degree` (products of its irreducible
    factors, multiplicities respected)."""
    factors = irreducible_factors(poly)
    choices = [range(m + 1) for _, m in factors]
    for counts in itertools.product(*choices):
        if sum(c * (len(f) - 1) for (f, _), c in zip(factors, counts, strict=True)) != degree:
            continue
        product: Poly = [1]
        for (f, _), count in zip(factors, counts, strict=True):
            for _ in range(count):
                product = _mul(product, f)
        yield product


def public_of(secret: int) -> bytes:
    """64-byte x‖y of ``secret·G``."""
    return PublicKey.from_secret(secret.to_bytes(32, "big")).format(compressed=False)[1:]


@dataclass(frozen=True)
class MasterView:
    """What a signing master holds after one attempt: the scalar every group member sent it
    (its own included), keyed by id number, and what it knows itself."""

    threshold: int
    #: id number → the share that member sent (the master's own included)
    shares: dict[int, int]
    master_id: int
    master_key_share: int
    key_public: bytes
    #: ECDSA: h and r of the signature; Schnorr: the challenge c (r) and h unused
    message_scalar: int
    signature_r: int


@dataclass(frozen=True)
class AttackOutcome:
    """How far the attack went: the degree of the interpolated polynomial, how many
    candidate factors it tried, and the key secret if one matched."""

    degree: int
    candidates: int
    secret: int | None


def attack_ecdsa(view: MasterView) -> AttackOutcome:
    """Factor the polynomial of the ECDSA signature shares and try every degree-t part."""
    t = view.threshold
    h, r = view.message_scalar, view.signature_r
    poly = interpolate(sorted(view.shares.items()))
    anchor = (h + r * view.master_key_share) % ORDER
    return _try_divisors(view, poly, t, anchor, lambda b0: (b0 - h) * pow(r, -1, ORDER))


def attack_schnorr(view: MasterView) -> AttackOutcome:
    """The same attack on Schnorr shares ``σ_i = λ_i·(k_i - c·s_i)``: undo the Lagrange
    weights, interpolate ``q = k(x) - c·s(x)`` and try every degree-t divisor anchored at the
    master's key share (``B(x_m) = s_m``, key ``B(0)``) or at ``-c·s_m`` (key ``-B(0)/c``)."""
    t = view.threshold
    ids = sorted(view.shares)
    values = []
    for x in ids:
        weight = 1
        for other in ids:
            if other != x:
                weight = weight * other * pow(other - x, -1, ORDER) % ORDER
        values.append((x, view.shares[x] * pow(weight, -1, ORDER) % ORDER))
    poly = interpolate(values)
    c = view.signature_r
    found = _try_divisors(view, poly, t, view.master_key_share, lambda b0: b0)
    if found.secret is not None:
        return found
    anchor = -c * view.master_key_share % ORDER
    again = _try_divisors(view, poly, t, anchor, lambda b0: -b0 * pow(c, -1, ORDER))
    return AttackOutcome(again.degree, found.candidates + again.candidates, again.secret)


def _try_divisors(
    view: MasterView, poly: Poly, degree: int, anchor: int, to_secret: Callable[[int], int]
) -> AttackOutcome:
    tried = 0
    for divisor in divisors_of_degree(poly, degree):
        at_master = evaluate(divisor, view.master_id)
        if at_master == 0:
            continue
        tried += 1
        scale = anchor * pow(at_master, -1, ORDER) % ORDER
        secret = to_secret(divisor[0] * scale % ORDER) % ORDER
        if secret and public_of(secret) == view.key_public:
            return AttackOutcome(len(poly) - 1, tried, secret)
    return AttackOutcome(len(poly) - 1, tried, None)
