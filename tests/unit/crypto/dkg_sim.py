"""Plain-loop simulation of n nodes running the crypto of a generation session (test helper)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from secretstore.crypto import dkg
from secretstore.crypto.curve import Point, Scalar
from secretstore.crypto.rng import Rng, random_scalar
from secretstore.crypto.shamir import random_id_numbers

# (t, n) pairs from Parity's math.rs tests.
PARITY_CASES = [
    (0, 2), (1, 2), (1, 3), (2, 3), (1, 4), (2, 4), (3, 4), (1, 5), (2, 5), (3, 5), (4, 5),
    (1, 10), (2, 10), (3, 10), (4, 10), (5, 10), (6, 10), (7, 10), (8, 10), (9, 10),
]  # fmt: skip


@dataclass(frozen=True)
class KeyGeneration:
    """Everything one simulated generation run produced (node k is index k everywhere)."""

    threshold: int
    id_numbers: tuple[Scalar, ...]
    derived_point: Point
    dealings: tuple[dkg.Dealing, ...]
    secret_shares: tuple[Scalar, ...]
    public_shares: tuple[Point, ...]
    joint_public: Point | None  # None for a sharing of zero

    @property
    def joint_secret(self) -> Scalar:
        return dkg.compute_joint_secret(d.secret_coeff for d in self.dealings)

    @property
    def secret_coeffs(self) -> tuple[Scalar, ...]:
        return tuple(d.secret_coeff for d in self.dealings)

    def share_public(self, node: int) -> Point:
        return dkg.secret_share_public(
            self.id_numbers[node], [d.share_proof for d in self.dealings]
        )


def agree_derived_point(n: int, rng: Rng) -> Point:
    """Each node in turn multiplies a random starting point by its own secret scalar."""
    point = Point.base_mul(random_scalar(rng))
    for _ in range(n):
        point = dkg.update_random_point(point, rng)
    return point


def run_key_generation(
    threshold: int,
    n: int,
    rng: Rng,
    id_numbers: Sequence[Scalar] | None = None,
    *,
    is_zero: bool = False,
) -> KeyGeneration:
    """Deal, verify every pair (nobody is faulty), combine shares, check share proofs."""
    ids = tuple(id_numbers) if id_numbers is not None else random_id_numbers(n, rng)
    assert len(ids) == n
    derived_point = agree_derived_point(n, rng)
    dealings = tuple(dkg.deal(threshold, derived_point, rng, is_zero=is_zero) for _ in range(n))
    secret_shares: list[Scalar] = []
    for j in range(n):
        received = {}
        for i in range(n):
            values = dealings[i].values_for(ids[j])
            received[i] = dkg.ReceivedKeys(values.secret1, values.secret2, dealings[i].publics)
        assert dkg.find_faulty_senders(threshold, derived_point, ids[j], received) == []
        secrets1 = {i: keys.secret1 for i, keys in received.items()}
        proofs = {i: dealings[i].share_proof for i in range(n)}
        assert dkg.find_faulty_share_proofs(threshold, ids[j], secrets1, proofs) == []
        secret_shares.append(dkg.compute_secret_share(secrets1.values()))
    public_shares = tuple(dkg.compute_public_share(d.secret_coeff) for d in dealings)
    joint_public = None if is_zero else dkg.compute_joint_public(public_shares)
    return KeyGeneration(
        threshold=threshold,
        id_numbers=ids,
        derived_point=derived_point,
        dealings=dealings,
        secret_shares=tuple(secret_shares),
        public_shares=public_shares,
        joint_public=joint_public,
    )
