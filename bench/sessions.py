"""CPU figures of whole sessions in the simulated network: protocol logic and codec, no I/O.

Signing (Schnorr, ECDSA) and document key retrieval (plain and shadow, for keys with the
commitments that make every answer proven, and for keys without: schema-1 records). Each
session runs on the synchronous simulated network of tests/sim (every message encoded
and decoded, every node's session in one process), so the figure is the CPU that all nodes
together spend on one signing's sessions, without sockets, encryption of frames or event
loops: a steadier number than a real cluster's latency on a shared machine. Masters take
turns; the best of `--rounds` rounds of `--signs` signings is printed.

Run: .venv/bin/python bench/sessions.py [--signs 20] [--rounds 5]

(One process plays every node, so a requester is recovered from its signature once for all of
them: the same for every row.)
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from secretstore.crypto.keys import KeyPair, sign_recoverable
from secretstore.crypto.rng import SeededRng
from secretstore.sessions import decryption, signing_ecdsa, signing_schnorr
from secretstore.types import MessageHash, ServerKeyId
from tests.sim.dealer import deal_key
from tests.sim.harness import SimNetwork

KEY_ID = ServerKeyId(b"\x33" * 32)
MASTERS = {**signing_schnorr.MASTERS, **signing_ecdsa.MASTERS}
SLAVES = {**signing_schnorr.SLAVES, **signing_ecdsa.SLAVES}
SHAPES = [("schnorr", 3, 1), ("ecdsa", 3, 1), ("schnorr", 5, 2), ("ecdsa", 5, 2)]


def measure(kind: str, n: int, t: int, signs: int, rounds: int) -> tuple[float, float]:
    """(best CPU seconds per signing, messages delivered per signing)."""
    net = SimNetwork(n, MASTERS, SLAVES, seed=n)
    key = deal_key(SeededRng(n), net.order, t, with_document_key=False)
    for node, share in key.shares.items():
        net.nodes[node].storage.insert(KEY_ID, share)
    signature = sign_recoverable(KeyPair.generate(SeededRng(5)).secret, KEY_ID)
    request = signing_schnorr.SignSchnorr if kind == "schnorr" else signing_ecdsa.SignEcdsa
    best = float("inf")
    delivered = net.delivered
    for _ in range(rounds):
        started = time.process_time()
        for i in range(signs):
            sid = net.start(i % n, request(KEY_ID, signature, MessageHash(bytes([i + 1]) * 32)))
            net.run()
            net.value(i % n, sid)
        best = min(best, (time.process_time() - started) / signs)
    return best, (net.delivered - delivered) / (signs * rounds)


RETRIEVALS = [(3, 1), (5, 2)]


def measure_retrieval(
    n: int, t: int, *, shadow: bool, commitments: bool, count: int, rounds: int
) -> tuple[float, float]:
    """(best CPU seconds per retrieval, messages delivered per retrieval)."""
    net = SimNetwork(n, decryption.MASTERS, decryption.SLAVES, seed=n)
    key = deal_key(SeededRng(n), net.order, t, with_commitments=commitments)
    for node, share in key.shares.items():
        net.nodes[node].storage.insert(KEY_ID, share)
    signature = sign_recoverable(KeyPair.generate(SeededRng(5)).secret, KEY_ID)
    best = float("inf")
    delivered = net.delivered
    for _ in range(rounds):
        started = time.process_time()
        for i in range(count):
            request = decryption.RetrieveDocumentKey(KEY_ID, signature, shadow)
            sid = net.start(i % n, request)
            net.run()
            net.value(i % n, sid)
        best = min(best, (time.process_time() - started) / count)
    return best, (net.delivered - delivered) / (count * rounds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--signs", type=int, default=20, help="signings per round")
    parser.add_argument("--rounds", type=int, default=5, help="rounds (the best is printed)")
    args = parser.parse_args()
    print(f"{'signing':<16}{'CPU ms':>8}{'messages':>10}")
    for kind, n, t in SHAPES:
        cpu, messages = measure(kind, n, t, args.signs, args.rounds)
        print(f"{f'{kind} n={n} t={t}':<16}{cpu * 1e3:>8.2f}{messages:>10.0f}")
    print("CPU ms: all nodes' sessions together, per signing (best round); messages: delivered")
    print()
    print(f"{'retrieval':<34}{'CPU ms':>8}{'messages':>10}")
    for n, t in RETRIEVALS:
        for shadow in (False, True):
            for commitments in (False, True):
                cpu, messages = measure_retrieval(
                    n, t, shadow=shadow, commitments=commitments, count=args.signs,
                    rounds=args.rounds,
                )  # fmt: skip
                mode = "shadow" if shadow else "plain"
                proofs = "proven" if commitments else "no commitments"
                label = f"{mode} n={n} t={t}, {proofs}"
                print(f"{label:<34}{cpu * 1e3:>8.2f}{messages:>10.0f}")
    print("retrieval: the same per retrieval; 'no commitments' is a key of a schema-1 record")


if __name__ == "__main__":
    main()
