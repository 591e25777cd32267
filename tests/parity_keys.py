"""Server keys made by our own sessions for the Parity import tests: a simulated generation
among given nodes (real threshold shares from the DKG), with a document key stored by the
encryption session where asked, and what a test needs to check the served results."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from secretstore.crypto.curve import Point, Scalar
from secretstore.crypto.document import encrypt_secret
from secretstore.crypto.keys import KeyPair
from secretstore.crypto.rng import SeededRng
from secretstore.crypto.shamir import reconstruct_secret
from secretstore.sessions import encryption, generation
from secretstore.storage.model import KeyShare
from secretstore.types import NodeId, ServerKeyId
from tests.sim.harness import SimNetwork
from tests.sim.key_sessions import MASTERS, SLAVES, proof_of


@dataclass(frozen=True)
class KeySpec:
    key_id: ServerKeyId
    threshold: int
    with_document_key: bool


@dataclass(frozen=True)
class MadeKey:
    spec: KeySpec
    public: Point
    secret: Scalar  # reconstructed by the test from t+1 shares
    document_key: Point | None
    shares: dict[NodeId, KeyShare]


def key_id(label: str) -> ServerKeyId:
    return ServerKeyId(label.encode().ljust(32, b"\x00")[:32])


def make_keys(
    node_keys: Sequence[KeyPair], author: KeyPair, specs: Sequence[KeySpec], seed: int = 5
) -> list[MadeKey]:
    """Run one generation (and a document key store) per spec among `node_keys`, each
    requested and authored by `author`."""
    net = SimNetwork(len(node_keys), MASTERS, SLAVES, seed=seed, keys=node_keys)
    rng = SeededRng(f"parity import keys {seed}".encode())
    made: list[MadeKey] = []
    for spec in specs:
        sid = net.start(
            0,
            generation.GenerateServerKey(
                spec.key_id, proof_of(author, spec.key_id), spec.threshold
            ),
        )
        net.run()
        public = net.value(0, sid)
        assert isinstance(public, Point)
        document_key: Point | None = None
        if spec.with_document_key:
            document_key = KeyPair.generate(rng).public
            sealed = encrypt_secret(document_key, public, rng)
            store = encryption.StoreDocumentKey(
                spec.key_id,
                proof_of(author, spec.key_id),
                sealed.common_point,
                sealed.encrypted_point,
            )
            sid = net.start(1 % len(node_keys), store)
            net.run()
            net.value(1 % len(node_keys), sid)
        shares = {
            node_id: share
            for node_id, node in net.nodes.items()
            if (share := node.storage.get(spec.key_id)) is not None
        }
        assert len(shares) == len(node_keys)
        holders = sorted(shares)[: spec.threshold + 1]
        ids = shares[holders[0]].last_version().id_numbers_map()
        secret = reconstruct_secret(
            spec.threshold,
            [shares[n].last_version().secret_share for n in holders],
            [ids[n] for n in holders],
        )
        assert Point.base_mul(secret) == public
        made.append(MadeKey(spec, public, secret, document_key, shares))
    return made


def node_shares(made: Sequence[MadeKey], node: NodeId) -> dict[ServerKeyId, KeyShare]:
    """One node's shares of every made key."""
    return {key.spec.key_id: key.shares[node] for key in made}
