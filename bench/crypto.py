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

from secretstore.crypto import dkg, ecdsa, schnorr, shadow
from secretstore.crypto.curve import Point, Scalar
from secretstore.crypto.rng import SeededRng, random_scalar
from secretstore.crypto.shamir import random_id_numbers


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
