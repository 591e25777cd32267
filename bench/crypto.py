"""Microseconds per threshold-crypto operation, next to coincurve's raw point multiplications.

Run: .venv/bin/python bench/crypto.py [--seconds 0.5]
Prints a table; the raw k·G and k·P lines show how much of each operation is curve arithmetic.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from coincurve import PublicKey

from secretstore.crypto import dkg, ecdsa, schnorr, shadow, shamir
from secretstore.crypto import shadow_proofs as sp
from secretstore.crypto.curve import G, Point, Scalar
from secretstore.crypto.rng import SeededRng, random_scalar
from secretstore.crypto.shamir import random_id_numbers
from secretstore.types import NodeId


def measure(operation: Callable[[], object], seconds: float) -> tuple[float, int]:
    """Mean µs per call over at least `seconds` of calls (after a short warm-up)."""
    for _ in range(5):
        operation()
    iterations = 0
    batch = 10
    start = time.perf_counter()
    elapsed = 0.0
    while elapsed < seconds:
        for _ in range(batch):
            operation()
        iterations += batch
        elapsed = time.perf_counter() - start
        batch = min(batch * 2, 1000)
    return elapsed / iterations * 1e6, iterations


def ecies_operations(seconds: float) -> list[tuple[str, Callable[[], object] | None]]:
    from secretstore.crypto.ecies import ecies_decrypt, ecies_encrypt

    rng = SeededRng(99)
    secret = random_scalar(rng)
    public = Point.base_mul(secret)
    plain = rng.random_bytes(64)
    try:
        cipher = ecies_encrypt(public, plain, rng)
        ecies_decrypt(secret, cipher)
    except NotImplementedError:
        return [("ECIES encrypt 64 bytes", None), ("ECIES decrypt 64 bytes", None)]
    return [
        ("ECIES encrypt 64 bytes", lambda: ecies_encrypt(public, plain, rng)),
        ("ECIES decrypt 64 bytes", lambda: ecies_decrypt(secret, cipher)),
    ]


def operations(seconds: float) -> list[tuple[str, Callable[[], object] | None]]:
    rng = SeededRng(1)
    k = random_scalar(rng)
    k_bytes = k.to_bytes()
    raw_point = PublicKey.from_valid_secret(random_scalar(rng).to_bytes())
    point = Point.base_mul(random_scalar(rng))
    message = rng.random_bytes(32)

    ops: list[tuple[str, Callable[[], object] | None]] = [
        ("coincurve k·G (raw)", lambda: PublicKey.from_valid_secret(k_bytes)),
        ("coincurve k·P (raw)", lambda: raw_point.multiply(k_bytes)),
        ("Point.base_mul k·G", lambda: Point.base_mul(k)),
        ("Point k·P", lambda: point * k),
    ]

    for t in (1, 4):
        derived = Point.base_mul(random_scalar(rng))
        dealing = dkg.deal(t, derived, rng)
        x = random_id_numbers(1, rng)[0]
        values = dealing.values_for(x)
        received = dkg.ReceivedKeys(values.secret1, values.secret2, dealing.publics)

        def verify(
            t: int = t, d: Point = derived, x: Scalar = x, r: dkg.ReceivedKeys = received
        ) -> object:
            return dkg.keys_verification(t, d, x, r)

        ops.append((f"keys_verification t={t}", verify))

    t = 2
    ids = random_id_numbers(2 * t + 1, rng)
    share, access_key, delta = random_scalar(rng), random_scalar(rng), random_scalar(rng)
    others = ids[1 : t + 1]
    node_shadow = shadow.compute_node_shadow(share, ids[0], others)
    ops += [
        (f"node shadow t={t}", lambda: shadow.compute_node_shadow(share, ids[0], others)),
        (
            "node shadow point",
            lambda: shadow.compute_node_shadow_point(access_key, point, node_shadow),
        ),
        (
            "node shadow point + decrypt shadow",
            lambda: shadow.compute_node_shadow_point(access_key, point, node_shadow, delta),
        ),
    ]
    ops += ecies_operations(seconds)
    for proof_t in (1, 2):
        ops += shadow_proof_operations(proof_t, rng)

    nonce_coeff = random_scalar(rng)
    combined = schnorr.combine_message_hash_with_public(message, point)
    signature_share = schnorr.compute_schnorr_signature_share(
        t,
        combined,
        one_time_secret_coeff=nonce_coeff,
        secret_share=share,
        id_number=ids[0],
        other_id_numbers=others,
    )
    share_public, one_time_public = Point.base_mul(share), Point.base_mul(nonce_coeff)
    ops += [
        (
            f"Schnorr signature share t={t}",
            lambda: schnorr.compute_schnorr_signature_share(
                t,
                schnorr.combine_message_hash_with_public(message, point),
                one_time_secret_coeff=nonce_coeff,
                secret_share=share,
                id_number=ids[0],
                other_id_numbers=others,
            ),
        ),
        (
            f"Schnorr share check t={t}",
            lambda: schnorr.check_schnorr_signature_share(
                combined,
                signature_share,
                share_public=share_public,
                one_time_public=one_time_public,
                id_number=ids[0],
                other_id_numbers=others,
            ),
        ),
    ]

    w, e_share = random_scalar(rng), random_scalar(rng)
    s_shares = [random_scalar(rng) for _ in ids]
    ops += [
        (
            "ECDSA s-share",
            lambda: ecdsa.compute_ecdsa_partial_signature(
                w, e_share, share, point, message, signature_zero_share=s_shares[0]
            ),
        ),
        (
            f"ECDSA combine 2t+1={2 * t + 1} shares",
            lambda: ecdsa.combine_ecdsa_signature(t, point, s_shares, ids),
        ),
    ]
    return ops


def shadow_proof_operations(t: int, rng: SeededRng) -> list[tuple[str, Callable[[], object]]]:
    """What verifiable decryption adds: a member's proven answer, the master's check of one,
    and the requester's check of a whole shadow answer (t+1 participants, ECIES not counted)."""
    polynomial = [random_scalar(rng) for _ in range(t + 1)]
    commitments = tuple(Point.base_mul(c) for c in polynomial)
    ids = random_id_numbers(t + 1, rng)
    nodes = [NodeId(Point.base_mul(random_scalar(rng)).to_bytes()) for _ in range(t + 1)]
    shares = {n: shamir.evaluate_polynomial(polynomial, x) for n, x in zip(nodes, ids, strict=True)}
    common, encrypted = Point.base_mul(random_scalar(rng)), Point.base_mul(random_scalar(rng))

    def statement(shadow_mode: bool) -> sp.JobStatement:
        return sp.JobStatement(
            key_id=bytes(32),
            session_id=bytes(32),
            attempt=1,
            requester=Point.base_mul(random_scalar(rng)),
            common_point=common,
            encrypted_point=encrypted,
            access_key=random_scalar(rng),
            commitments=commitments,
            group=tuple(zip(nodes, ids, strict=True)),
            shadow=shadow_mode,
        )

    plain, blinded = statement(False), statement(True)
    node = nodes[0]

    def seal(decrypt_shadow: Scalar) -> bytes:  # ECIES not counted: the scalar as it is
        return decrypt_shadow.to_bytes()

    plain_answer = sp.answer_job(plain, node, shares[node], rng)
    answers = [sp.answer_job(blinded, n, shares[n], rng, seal) for n in nodes]
    shadow_answer = answers[0]
    joint = shadow.compute_joint_shadow_point(a.shadow_point for a in answers)
    proofs = sp.ShadowRetrievalProofs(
        t, blinded.session_id, 1, commitments, encrypted, blinded.access_key,
        tuple(
            sp.ParticipantProof(n, x, a.shadow_point, a.blinded_public or G, a.proof)
            for n, x, a in zip(nodes, ids, answers, strict=True)
        ),
    )  # fmt: skip
    check = {
        "key_id": bytes(32),
        "requester": blinded.requester,
        "server_key_public": commitments[0],
        "decrypted_secret": shadow.decrypt_with_joint_shadow(
            t, blinded.access_key, encrypted, joint
        ),
        "common_point": shadow.make_common_shadow_point(t, common),
        "sealed_shadows": [a.sealed_shadow for a in answers if a.sealed_shadow is not None],
        "open_shadow": Scalar.from_bytes,
        "proofs": proofs,
    }
    assert sp.verify_shadow_retrieval(**check)  # type: ignore[arg-type]
    return [
        (f"proven plain answer t={t}", lambda: sp.answer_job(plain, node, shares[node], rng)),
        (
            f"proven shadow answer t={t}",
            lambda: sp.answer_job(blinded, node, shares[node], rng, seal),
        ),
        (
            f"master checks a plain answer t={t}",
            lambda: sp.verify_job_answer(
                plain, node, plain_answer.shadow_point, None, plain_answer.proof
            ),
        ),
        (
            f"master checks a shadow answer t={t}",
            lambda: sp.verify_job_answer(
                blinded,
                node,
                shadow_answer.shadow_point,
                shadow_answer.blinded_public,
                shadow_answer.proof,
                sealed=shadow_answer.sealed_shadow,
            ),
        ),
        (
            f"requester checks a shadow answer t={t} ({t + 1} nodes)",
            lambda: sp.verify_shadow_retrieval(**check),  # type: ignore[arg-type]
        ),
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=0.5, help="time per operation")
    args = parser.parse_args()
    rows = operations(args.seconds)
    width = max(len(name) for name, _ in rows)
    print(f"{'operation':<{width}}  {'µs/op':>10}  {'iterations':>10}")
    print("-" * (width + 24))
    for name, operation in rows:
        if operation is None:
            print(f"{name:<{width}}  {'n/a':>10}  {'':>10}")
            continue
        micros, iterations = measure(operation, args.seconds)
        print(f"{name:<{width}}  {micros:>10.1f}  {iterations:>10}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
