"""Aggregated Bulletproofs range proofs (Bünz et al., 2018) on secp256k1, with batch checking.

A proof shows that each of `m` Pedersen commitments ``V_j = v_j·H + γ_j·G`` opens to a value
``v_j ∈ [0, 2^n)``, without revealing the values: ``H`` is the value base (`VALUE_BASE`,
hashed to the curve, so nobody knows its log to ``G``), ``G`` the blinding base. The vector
bases ``g_i``, ``h_i`` and the inner-product base ``u`` are hashed to the curve too. The proof
is the paper's §4.3 (aggregation) with the §3 inner-product argument run to vectors of one,
non-interactive through a `Transcript` the caller opens (binding the proof to its context):

    A, S, T1, T2 (points), τx, μ, t̂ (scalars), L_1..L_k, R_1..R_k (points, k = log2(n·m)),
    a, b (scalars)                                             — 2·log2(n·m) + 4 points

Checking folds the two verification equations of a proof, and those of many proofs, with
random weights into one sum of point multiples that must be the identity (`add_range_check`
into a crypto/batch.PointSum): the
vector bases are shared, so a batch of many proofs costs about 2·n·m multiplications in all
and ``2·log2(n·m) + m + 4`` for each proof. A proof that does not verify makes the sum a
random point except with probability about 1/n (the group order), whatever the prover does,
because the weights are drawn after the proofs are fixed.

Soundness (the paper's Theorem 3, in the random oracle model): a prover that makes a proof
that verifies knows openings ``v_j, γ_j`` with ``v_j < 2^n`` unless it knows a discrete-log
relation between the bases. Zero knowledge: the proof is simulatable, so it reveals nothing
of the ``v_j`` or ``γ_j``.

Errors: a value out of range, a count that is not a power of two, or wrong lengths raise
InvalidRequest; a proof that does not parse raises InvalidEncoding.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

from secretstore.crypto.batch import PointSum
from secretstore.crypto.curve import G, N, Point, Scalar, hash_to_point, point_sum
from secretstore.crypto.rng import Rng, random_scalar
from secretstore.crypto.transcript import Transcript, point_bytes
from secretstore.errors import InvalidEncoding, InvalidRequest

#: The value base H of every commitment these proofs are about.
VALUE_BASE = hash_to_point(b"secretstore bulletproofs: value base")
_U = hash_to_point(b"secretstore bulletproofs: inner product base")


@lru_cache(maxsize=4)
def vector_bases(size: int) -> tuple[tuple[Point, ...], tuple[Point, ...]]:
    """``g_0..g_{size-1}`` and ``h_0..h_{size-1}``, hashed to the curve."""
    g = tuple(
        hash_to_point(b"secretstore bulletproofs: g" + i.to_bytes(4, "big")) for i in range(size)
    )
    h = tuple(
        hash_to_point(b"secretstore bulletproofs: h" + i.to_bytes(4, "big")) for i in range(size)
    )
    return g, h


def _mul(point: Point, k: int) -> Point:
    k %= N
    return point * Scalar(k) if k else Point.identity()


def _multi(terms: Sequence[tuple[int, Point]]) -> Point:
    return point_sum(_mul(point, k) for k, point in terms)


def _inner(a: Sequence[int], b: Sequence[int]) -> int:
    return sum(x * y for x, y in zip(a, b, strict=True)) % N


def _powers(base: int, count: int) -> list[int]:
    out, value = [], 1
    for _ in range(count):
        out.append(value)
        value = value * base % N
    return out


@dataclass(frozen=True, slots=True, repr=False)
class RangeProof:
    """One aggregated range proof (see the module docstring)."""

    a_commit: Point
    s_commit: Point
    t1: Point
    t2: Point
    tau_x: int
    mu: int
    t_hat: int
    left: tuple[Point, ...]
    right: tuple[Point, ...]
    a: int
    b: int

    def __repr__(self) -> str:
        return f"RangeProof(rounds={len(self.left)})"

    def to_bytes(self) -> bytes:
        """Points compressed (33 bytes), scalars 32 bytes, in field order; the rounds' count
        is one byte."""
        points = [self.a_commit, self.s_commit, self.t1, self.t2]
        out = bytearray(b"".join(point_bytes(p) for p in points))
        for value in (self.tau_x, self.mu, self.t_hat):
            out += value.to_bytes(32, "big")
        out.append(len(self.left))
        for left, right in zip(self.left, self.right, strict=True):
            out += point_bytes(left) + point_bytes(right)
        out += self.a.to_bytes(32, "big") + self.b.to_bytes(32, "big")
        return bytes(out)

    @classmethod
    def from_bytes(cls, data: bytes) -> RangeProof:
        """InvalidEncoding for anything but a proof's encoding (points on the curve, scalars
        below n)."""
        if len(data) < 4 * 33 + 3 * 32 + 1:
            raise InvalidEncoding("a range proof is too short")
        rounds = data[4 * 33 + 3 * 32]
        if len(data) != 4 * 33 + 3 * 32 + 1 + rounds * 66 + 64:
            raise InvalidEncoding("a range proof has the wrong length")
        points = [_point(data[33 * i : 33 * i + 33]) for i in range(4)]
        scalars = [_scalar(data[132 + 32 * i : 164 + 32 * i]) for i in range(3)]
        offset = 4 * 33 + 3 * 32 + 1
        left, right = [], []
        for _ in range(rounds):
            left.append(_point(data[offset : offset + 33]))
            right.append(_point(data[offset + 33 : offset + 66]))
            offset += 66
        a, b = _scalar(data[offset : offset + 32]), _scalar(data[offset + 32 : offset + 64])
        a_commit, s_commit, t1, t2 = points
        tau_x, mu, t_hat = scalars
        return cls(a_commit, s_commit, t1, t2, tau_x, mu, t_hat, tuple(left), tuple(right), a, b)


def _point(data: bytes) -> Point:
    try:
        return Point.from_sec1(data)
    except Exception:  # coincurve's own errors for bad encodings
        raise InvalidEncoding("a range proof holds a point that is not on the curve") from None


def _scalar(data: bytes) -> int:
    value = int.from_bytes(data, "big")
    if value >= N:
        raise InvalidEncoding("a range proof holds a scalar that is not below n")
    return value


def _check_shape(bits: int, count: int) -> int:
    size = bits * count
    if bits < 1 or count < 1 or size & (size - 1) or bits > 64:
        raise InvalidRequest(f"{count} values of {bits} bits: n·m must be a power of two")
    return size


def _absorb_statement(transcript: Transcript, bits: int, commitments: Sequence[Point]) -> None:
    transcript.absorb(b"range", bits.to_bytes(2, "big") + len(commitments).to_bytes(2, "big"))
    transcript.absorb_points(b"V", tuple(commitments))


def prove_range(
    values: Sequence[int],
    blindings: Sequence[Scalar],
    bits: int,
    transcript: Transcript,
    rng: Rng,
) -> tuple[tuple[Point, ...], RangeProof]:
    """The commitments ``v_j·H + γ_j·G`` and one proof that every ``v_j < 2^bits``."""
    m = len(values)
    size = _check_shape(bits, m)
    if len(blindings) != m:
        raise InvalidRequest("one blinding per value")
    if any(not 0 <= v < 1 << bits for v in values):
        raise InvalidRequest(f"a value is not in [0, 2^{bits})")
    commitments = tuple(
        VALUE_BASE * Scalar(v) + Point.base_mul(g) if v else Point.base_mul(g)
        for v, g in zip(values, blindings, strict=True)
    )
    _absorb_statement(transcript, bits, commitments)
    g_vec, h_vec = vector_bases(size)
    a_left = [(v >> i) & 1 for v in values for i in range(bits)]
    a_right = [(x - 1) % N for x in a_left]
    alpha, rho = random_scalar(rng).to_int(), random_scalar(rng).to_int()
    # A = α·G + <a_L, g> + <a_R, h>: a_L is 0/1 and a_R is 0/-1, so A is a sum of bases
    ones = [g_vec[i] for i in range(size) if a_left[i]]
    minus = [-h_vec[i] for i in range(size) if not a_left[i]]
    a_commit = point_sum([Point.base_mul(Scalar(alpha)), *ones, *minus])
    s_left = [random_scalar(rng).to_int() for _ in range(size)]
    s_right = [random_scalar(rng).to_int() for _ in range(size)]
    s_commit = point_sum(
        [
            Point.base_mul(Scalar(rho)),
            *(_mul(g_vec[i], s_left[i]) for i in range(size)),
            *(_mul(h_vec[i], s_right[i]) for i in range(size)),
        ]
    )
    transcript.absorb_point(b"A", a_commit)
    transcript.absorb_point(b"S", s_commit)
    y = transcript.challenge(b"y")
    z = transcript.challenge(b"z")
    y_pow = _powers(y, size)
    two_pow = _powers(2, bits)
    z_pow = _powers(z, m + 2)  # z^0 .. z^{m+1}
    # l(X) = (a_L − z) + s_L·X ; r(X) = y^N ∘ (a_R + z + s_R·X) + Σ_j z^{1+j}·2^n (block j)
    l0 = [(x - z) % N for x in a_left]
    r0 = [
        (y_pow[i] * ((a_right[i] + z) % N) + z_pow[2 + i // bits] * two_pow[i % bits]) % N
        for i in range(size)
    ]
    r1 = [y_pow[i] * s_right[i] % N for i in range(size)]
    t1 = (_inner(l0, r1) + _inner(s_left, r0)) % N
    t2 = _inner(s_left, r1)
    tau1, tau2 = random_scalar(rng).to_int(), random_scalar(rng).to_int()
    t1_commit = _mul(VALUE_BASE, t1) + Point.base_mul(Scalar(tau1))
    t2_commit = _mul(VALUE_BASE, t2) + Point.base_mul(Scalar(tau2))
    transcript.absorb_point(b"T1", t1_commit)
    transcript.absorb_point(b"T2", t2_commit)
    x = transcript.challenge(b"x")
    l_vec = [(l0[i] + s_left[i] * x) % N for i in range(size)]
    r_vec = [(r0[i] + r1[i] * x) % N for i in range(size)]
    t_hat = _inner(l_vec, r_vec)
    blinding = sum(z_pow[2 + j] * blindings[j].to_int() for j in range(m))
    tau_x = (tau2 * x * x + tau1 * x + blinding) % N
    mu = (alpha + rho * x) % N
    transcript.absorb_scalar(b"tau_x", tau_x)
    transcript.absorb_scalar(b"mu", mu)
    transcript.absorb_scalar(b"t_hat", t_hat)
    w = transcript.challenge(b"w")
    u = _mul(_U, w)
    # the inner-product argument runs on h'_i = y^{-i}·h_i, carried as scales of h_i
    y_inv_pow = _powers(pow(y, -1, N), size)
    left, right, a_final, b_final = _inner_product(
        list(g_vec), [1] * size, list(h_vec), y_inv_pow, u, l_vec, r_vec, transcript
    )
    proof = RangeProof(
        a_commit,
        s_commit,
        t1_commit,
        t2_commit,
        tau_x,
        mu,
        t_hat,
        tuple(left),
        tuple(right),
        a_final,
        b_final,
    )
    return commitments, proof


def _inner_product(  # noqa: PLR0917 - the argument's vectors, as in the paper
    g: list[Point],
    g_scale: list[int],
    h: list[Point],
    h_scale: list[int],
    u: Point,
    a: list[int],
    b: list[int],
    transcript: Transcript,
) -> tuple[list[Point], list[Point], int, int]:
    """The inner-product argument on the bases ``g_scale[i]·g[i]`` and ``h_scale[i]·h[i]``.
    Keeping each base as a point and a scale makes a fold one multiplication per base:
    ``x⁻¹·s·P + x·s'·P' = (x⁻¹·s)·(P + (x²·s'/s)·P')``."""
    left: list[Point] = []
    right: list[Point] = []
    while len(a) > 1:
        half = len(a) // 2
        a_lo, a_hi, b_lo, b_hi = a[:half], a[half:], b[:half], b[half:]
        c_left, c_right = _inner(a_lo, b_hi), _inner(a_hi, b_lo)
        l_point = _multi(
            [
                *((a_lo[i] * g_scale[half + i], g[half + i]) for i in range(half)),
                *((b_hi[i] * h_scale[i], h[i]) for i in range(half)),
                (c_left, u),
            ]
        )
        r_point = _multi(
            [
                *((a_hi[i] * g_scale[i], g[i]) for i in range(half)),
                *((b_lo[i] * h_scale[half + i], h[half + i]) for i in range(half)),
                (c_right, u),
            ]
        )
        left.append(l_point)
        right.append(r_point)
        transcript.absorb_point(b"L", l_point)
        transcript.absorb_point(b"R", r_point)
        x = transcript.challenge(b"ipa")
        x_inv = pow(x, -1, N)
        x2, x2_inv = x * x % N, x_inv * x_inv % N
        a = [(lo * x + hi * x_inv) % N for lo, hi in zip(a_lo, a_hi, strict=True)]
        b = [(lo * x_inv + hi * x) % N for lo, hi in zip(b_lo, b_hi, strict=True)]
        # g'_i = x⁻¹·g_lo + x·g_hi ; h'_i = x·h_lo + x⁻¹·h_hi
        g, g_scale = _fold(g, g_scale, half, x_inv, x2)
        h, h_scale = _fold(h, h_scale, half, x, x2_inv)
    return left, right, a[0], b[0]


def _fold(
    points: list[Point], scales: list[int], half: int, low: int, ratio: int
) -> tuple[list[Point], list[int]]:
    """``low·s_i·P_i + low·ratio·s_j·P_j`` (j = half + i) as a point and a scale."""
    new_points, new_scales = [], []
    for i in range(half):
        s_lo, s_hi = scales[i], scales[half + i]
        factor = ratio * s_hi * pow(s_lo, -1, N) % N
        new_points.append(points[i] + _mul(points[half + i], factor))
        new_scales.append(low * s_lo % N)
    return new_points, new_scales


# --- checking ------------------------------------------------------------------------------


def add_range_check(
    sums: PointSum,
    commitments: Sequence[Point],
    proof: RangeProof,
    *,
    bits: int,
    transcript: Transcript,
    rng: Rng,
) -> bool:
    """Fold the two equations of `proof` about `commitments` (the transcript as the prover
    had it) into `sums`, with fresh random weights (crypto/batch.py); False for a proof whose
    shape does not fit (it cannot verify). The proof verifies when `sums` ends the identity."""
    m = len(commitments)
    size = _check_shape(bits, m)
    rounds = size.bit_length() - 1
    if len(proof.left) != rounds or len(proof.right) != rounds:
        return False
    _absorb_statement(transcript, bits, commitments)
    transcript.absorb_point(b"A", proof.a_commit)
    transcript.absorb_point(b"S", proof.s_commit)
    y = transcript.challenge(b"y")
    z = transcript.challenge(b"z")
    transcript.absorb_point(b"T1", proof.t1)
    transcript.absorb_point(b"T2", proof.t2)
    x = transcript.challenge(b"x")
    transcript.absorb_scalar(b"tau_x", proof.tau_x)
    transcript.absorb_scalar(b"mu", proof.mu)
    transcript.absorb_scalar(b"t_hat", proof.t_hat)
    w = transcript.challenge(b"w")
    challenges = []
    for l_point, r_point in zip(proof.left, proof.right, strict=True):
        transcript.absorb_point(b"L", l_point)
        transcript.absorb_point(b"R", r_point)
        challenges.append(transcript.challenge(b"ipa"))
    inverses = [pow(c, -1, N) for c in challenges]
    # s_i = Π_k x_k^{±1}: x_k when bit (rounds − 1 − k) of i is set (i in the high half of
    # round k), built from the last round to the first; s_i⁻¹ likewise
    s, s_inv = [1], [1]
    for c, c_inv in zip(reversed(challenges), reversed(inverses), strict=True):
        s = [v * c_inv % N for v in s] + [v * c % N for v in s]
        s_inv = [v * c % N for v in s_inv] + [v * c_inv % N for v in s_inv]
    y_pow = _powers(y, size)
    y_inv_pow = _powers(pow(y, -1, N), size)
    two_pow = _powers(2, bits)
    z_pow = _powers(z, m + 3)
    sum_y = sum(y_pow) % N
    sum_two = (1 << bits) - 1
    delta = ((z - z * z) * sum_y - sum(z_pow[3 + j] for j in range(m)) * sum_two) % N
    # equation 1, weighted c: t̂·H + τx·G − Σ z^{2+j}·V_j − δ·H − x·T1 − x²·T2 = O
    # equation 2, weighted 1: A + x·S − μ·G + Σ x_k²·L_k + x_k⁻²·R_k
    #   + Σ (−z − a·s_i)·g_i + Σ (z + y^{-i}·(z^{2+j(i)}·2^{i mod n} − b·s_i⁻¹))·h_i
    #   + w·(t̂ − a·b)·u = O
    weight = random_scalar(rng).to_int()
    wc = weight * random_scalar(rng).to_int() % N
    sums.add(wc * (proof.t_hat - delta), VALUE_BASE)
    sums.add(wc * proof.tau_x - weight * proof.mu, G)
    for j, commitment in enumerate(commitments):
        sums.add(-wc * z_pow[2 + j], commitment)
    sums.add(-wc * x, proof.t1)
    sums.add(-wc * x * x, proof.t2)
    sums.add(weight, proof.a_commit)
    sums.add(weight * x, proof.s_commit)
    for k, (l_point, r_point) in enumerate(zip(proof.left, proof.right, strict=True)):
        sums.add(weight * challenges[k] * challenges[k], l_point)
        sums.add(weight * inverses[k] * inverses[k], r_point)
    a, b = proof.a, proof.b
    g_vec, h_vec = vector_bases(size)
    for i in range(size):
        sums.add(weight * (-z - a * s[i]), g_vec[i])
        sums.add(
            weight * (z + y_inv_pow[i] * (z_pow[2 + i // bits] * two_pow[i % bits] - b * s_inv[i])),
            h_vec[i],
        )
    sums.add(weight * w * (proof.t_hat - a * b), _U)
    return True


def verify_range(
    commitments: Sequence[Point],
    proof: RangeProof,
    bits: int,
    transcript: Transcript,
    rng: Rng,
) -> bool:
    """Whether `proof` shows every commitment opens to a value below ``2^bits``."""
    sums = PointSum()
    folded = add_range_check(sums, commitments, proof, bits=bits, transcript=transcript, rng=rng)
    return folded and sums.is_identity()
