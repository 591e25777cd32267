"""Verifiable encryption of a key share to a backup key: anyone can check it, only the backup
key holder can decrypt it, and what it decrypts to is the share (pure).

Public: the share's public ``Y = s·G`` (from the key's commitments), the backup public key
``P = b·G``, a context (the backup's node, key, version) bound into every proof.

Encryption of the share ``s`` (a scalar below n < 2^256) in ``CHUNKS`` chunks of
``CHUNK_BITS`` bits, ``s = Σ_j 2^{16j}·m_j`` with ``0 ≤ m_j < 2^16``, each in twisted ElGamal
form with a random ``r_j``:

    C_j = m_j·H + r_j·G        (a Pedersen commitment; H = bulletproofs.VALUE_BASE)
    D_j = r_j·P                (the decryption handle)

Decryption (`ShareDecryptor`): ``C_j − b⁻¹·D_j = m_j·H``, and ``m_j`` comes from a table of the
2^16 multiples of H; ``s = Σ 2^{16j}·m_j`` and ``s·G = Y`` is checked.

Proofs (one Fiat–Shamir transcript over the context, Y, P, every D_j and C_j):
1. range: one aggregated Bulletproof (crypto/bulletproofs.py) that every ``C_j`` opens to a
   value below 2^16;
2. link, one Σ-protocol of four relations with one challenge e, after weights ``ρ_j`` drawn
   from the transcript: with ``C_ρ = Σ ρ_j·C_j``, ``D_ρ = Σ ρ_j·D_j``, ``C_2 = Σ 2^{16j}·C_j``,
   knowledge of ``(a, r, s, γ)`` with ``C_ρ = a·H + r·G``, ``D_ρ = r·P``, ``C_2 = s·H + γ·G``
   and ``Y = s·G``.

Soundness (random oracle model; DL hard between G and H, whose log nobody knows): from (1)
the prover knows openings ``C_j = m_j·H + γ_j·G`` with ``m_j < 2^16``. Write ``D_j =
δ_j·P``. From (2), ``D_ρ = r·P`` gives ``r = Σ ρ_j·δ_j``, and ``C_ρ = a·H + r·G`` with the
openings gives, unless the prover knows log_G H, ``r = Σ ρ_j·γ_j``: so ``Σ ρ_j·(δ_j − γ_j) =
0``, which for weights drawn after the ``D_j`` and ``C_j`` are fixed holds with probability
1/n unless every ``δ_j = γ_j``. Then ``b⁻¹·D_j = γ_j·G`` and every chunk decrypts to ``m_j``
by the table. ``C_2 = s·H + γ·G`` with the openings gives ``s = Σ 2^{16j}·m_j mod n``, and
``Y = s·G`` makes that the share. So a backup entry that verifies decrypts, with the backup
key, to the share behind Y: a dishonest creator cannot make one that verifies and does not.
Zero knowledge: the Bulletproof and the Σ-protocol are simulatable, and ``(C_j, D_j)`` hide
``m_j`` under DDH (``(G, P, r·G, r·P)``), so the entry tells a verifier nothing beyond Y.

Checking many entries at once (`ShareCheck`) folds every equation into one crypto/batch.
PointSum; a batch that fails is checked entry by entry to name the bad ones.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from secretstore.crypto.batch import PointSum
from secretstore.crypto.bulletproofs import (
    VALUE_BASE,
    RangeProof,
    add_range_check,
    prove_range,
)
from secretstore.crypto.curve import G, N, Point, Scalar
from secretstore.crypto.rng import Rng, random_scalar
from secretstore.crypto.transcript import Transcript, point_bytes
from secretstore.errors import CryptoError, DecryptionError, InvalidEncoding, InvalidRequest

CHUNK_BITS: Final = 16
CHUNKS: Final = 16
_DOMAIN: Final = b"secretstore backup share v1"
_POINT: Final = 33
_SCALAR: Final = 32
#: The encoded size of an entry's link proof: four points, four scalars.
LINK_SIZE: Final = 4 * _POINT + 4 * _SCALAR


@dataclass(frozen=True, slots=True, repr=False)
class LinkProof:
    """The Σ-protocol of relation 2 (module docstring): commitments T1..T4, responses."""

    t: tuple[Point, Point, Point, Point]
    z: tuple[int, int, int, int]

    def to_bytes(self) -> bytes:
        return b"".join(point_bytes(p) for p in self.t) + b"".join(
            v.to_bytes(32, "big") for v in self.z
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> LinkProof:
        if len(data) != LINK_SIZE:
            raise InvalidEncoding(f"a link proof is {LINK_SIZE} bytes, got {len(data)}")
        t = tuple(_point(data[i * _POINT : (i + 1) * _POINT]) for i in range(4))
        base = 4 * _POINT
        z = tuple(_scalar(data[base + i * 32 : base + (i + 1) * 32]) for i in range(4))
        return cls((t[0], t[1], t[2], t[3]), (z[0], z[1], z[2], z[3]))

    def __repr__(self) -> str:
        return "LinkProof(...)"


@dataclass(frozen=True, slots=True, repr=False)
class EncryptedShare:
    """One share encrypted to a backup key, with its proofs."""

    commitments: tuple[Point, ...]  # C_j
    handles: tuple[Point, ...]  # D_j
    range_proof: RangeProof
    link: LinkProof

    def to_bytes(self) -> bytes:
        """C_0..C_15, D_0..D_15 (33 bytes each), the link proof, the range proof."""
        points = b"".join(point_bytes(p) for p in (*self.commitments, *self.handles))
        return points + self.link.to_bytes() + self.range_proof.to_bytes()

    @classmethod
    def from_bytes(cls, data: bytes) -> EncryptedShare:
        """InvalidEncoding for anything but an encrypted share's bytes."""
        size = 2 * CHUNKS * _POINT
        if len(data) < size + LINK_SIZE:
            raise InvalidEncoding("an encrypted share is too short")
        points = [_point(data[i * _POINT : (i + 1) * _POINT]) for i in range(2 * CHUNKS)]
        link = LinkProof.from_bytes(data[size : size + LINK_SIZE])
        proof = RangeProof.from_bytes(data[size + LINK_SIZE :])
        return cls(tuple(points[:CHUNKS]), tuple(points[CHUNKS:]), proof, link)

    def __repr__(self) -> str:
        return "EncryptedShare(...)"


def _point(data: bytes) -> Point:
    try:
        return Point.from_sec1(data)
    except CryptoError:
        raise InvalidEncoding("an encrypted share holds a point that is not on the curve") from None


def _scalar(data: bytes) -> int:
    value = int.from_bytes(data, "big")
    if value >= N:
        raise InvalidEncoding("an encrypted share holds a scalar that is not below n")
    return value


def _transcript(
    context: bytes, share_public: Point, backup: Point, handles: Sequence[Point]
) -> Transcript:
    transcript = Transcript(_DOMAIN)
    transcript.absorb(b"context", context)
    transcript.absorb_point(b"Y", share_public)
    transcript.absorb_point(b"P", backup)
    transcript.absorb_points(b"D", tuple(handles))
    return transcript


def _weights(transcript: Transcript) -> list[int]:
    return [transcript.challenge(b"rho") for _ in range(CHUNKS)]


_SHIFTS: Final = [pow(2, CHUNK_BITS * j, N) for j in range(CHUNKS)]


def encrypt_share(
    share: Scalar, share_public: Point, backup: Point, context: bytes, rng: Rng
) -> EncryptedShare:
    """The share encrypted to `backup` with its proofs (`share_public` must be ``share·G``)."""
    if Point.base_mul(share) != share_public:
        raise InvalidRequest("the share does not belong to its share public")
    backup.require_not_identity("the backup public key")
    s = share.to_int()
    chunks = [(s >> (CHUNK_BITS * j)) & ((1 << CHUNK_BITS) - 1) for j in range(CHUNKS)]
    blindings = [random_scalar(rng) for _ in range(CHUNKS)]
    handles = tuple(backup * r for r in blindings)
    transcript = _transcript(context, share_public, backup, handles)
    commitments, range_proof = prove_range(chunks, blindings, CHUNK_BITS, transcript, rng)
    rho = _weights(transcript)
    a = sum(w * m for w, m in zip(rho, chunks, strict=True)) % N
    r = sum(w * b.to_int() for w, b in zip(rho, blindings, strict=True)) % N
    gamma = sum(k * b.to_int() for k, b in zip(_SHIFTS, blindings, strict=True)) % N
    nonces = [random_scalar(rng) for _ in range(4)]
    a1, b1, a2, b2 = nonces
    t = (
        VALUE_BASE * a1 + Point.base_mul(b1),
        backup * b1,
        VALUE_BASE * a2 + Point.base_mul(b2),
        Point.base_mul(a2),
    )
    transcript.absorb_points(b"T", t)
    e = transcript.challenge(b"e")
    z = (
        (a1.to_int() + e * a) % N,
        (b1.to_int() + e * r) % N,
        (a2.to_int() + e * s) % N,
        (b2.to_int() + e * gamma) % N,
    )
    return EncryptedShare(commitments, handles, range_proof, LinkProof(t, z))


class ShareCheck:
    """Entries folded into one check (see the module docstring): `add` each, then `holds`."""

    def __init__(self, backup: Point, rng: Rng) -> None:
        self.backup = backup
        self.rng = rng
        self.sums = PointSum()
        self.entries = 0

    def add(self, entry: EncryptedShare, share_public: Point, context: bytes) -> bool:
        """Fold one entry in; False for one whose shape cannot verify."""
        if len(entry.commitments) != CHUNKS or len(entry.handles) != CHUNKS:
            return False
        transcript = _transcript(context, share_public, self.backup, entry.handles)
        sums = self.sums
        folded = add_range_check(
            sums,
            entry.commitments,
            entry.range_proof,
            bits=CHUNK_BITS,
            transcript=transcript,
            rng=self.rng,
        )
        if not folded:
            return False
        rho = _weights(transcript)
        t, z = entry.link.t, entry.link.z
        transcript.absorb_points(b"T", t)
        e = transcript.challenge(b"e")
        w = [random_scalar(self.rng).to_int() for _ in range(4)]
        # z1·H + z2·G − T1 − e·C_ρ = O
        sums.add(w[0] * z[0], VALUE_BASE)
        sums.add(w[0] * z[1], G)
        sums.add(-w[0], t[0])
        # z2·P − T2 − e·D_ρ = O
        sums.add(w[1] * z[1], self.backup)
        sums.add(-w[1], t[1])
        # z3·H + z4·G − T3 − e·C_2 = O
        sums.add(w[2] * z[2], VALUE_BASE)
        sums.add(w[2] * z[3], G)
        sums.add(-w[2], t[2])
        # z3·G − T4 − e·Y = O
        sums.add(w[3] * z[2], G)
        sums.add(-w[3], t[3])
        sums.add(-w[3] * e, share_public)
        for j in range(CHUNKS):
            sums.add(-e * (w[0] * rho[j] + w[2] * _SHIFTS[j]), entry.commitments[j])
            sums.add(-e * w[1] * rho[j], entry.handles[j])
        self.entries += 1
        return True

    def holds(self) -> bool:
        """Whether every entry added verifies (True for none)."""
        return self.entries == 0 or self.sums.is_identity()


def check_share(
    entry: EncryptedShare, share_public: Point, backup: Point, context: bytes, rng: Rng
) -> bool:
    """Whether one entry verifies."""
    check = ShareCheck(backup, rng)
    return check.add(entry, share_public, context) and check.holds()


class ShareDecryptor:
    """Decrypts entries with the backup secret (the table of 2^16 multiples of H is made once,
    about half a second)."""

    def __init__(self, backup_secret: Scalar) -> None:
        self._inverse = backup_secret.require_nonzero("the backup secret").inverse()
        table: dict[bytes, int] = {}
        point = Point.identity()
        for m in range(1, 1 << CHUNK_BITS):
            point = point + VALUE_BASE
            table[point.to_bytes()] = m
        self._table = table

    def decrypt(self, entry: EncryptedShare, share_public: Point) -> Scalar:
        """The share; DecryptionError when a chunk is not a 16-bit multiple of H, or the chunks
        do not make the share behind `share_public` (another backup key, a bad entry)."""
        total = 0
        for j, (commitment, handle) in enumerate(
            zip(entry.commitments, entry.handles, strict=True)
        ):
            chunk_point = commitment - handle * self._inverse
            if chunk_point.is_identity():
                continue
            value = self._table.get(chunk_point.to_bytes())
            if value is None:
                raise DecryptionError(f"chunk {j} does not decrypt with this backup key")
            total += value << (CHUNK_BITS * j)
        share = Scalar(total)
        if Point.base_mul(share) != share_public:
            raise DecryptionError("the decrypted share does not match its share public")
        return share
