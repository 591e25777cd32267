"""A trusted dealer for tests: split a fresh server key over given nodes and store a document
key with it, so retrieval and signing sessions can be tested without a generation session."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from secretstore.crypto.curve import Point, Scalar
from secretstore.crypto.document import encrypt_secret
from secretstore.crypto.keys import KeyPair
from secretstore.crypto.rng import Rng, random_scalar
from secretstore.crypto.shamir import evaluate_polynomial, random_id_numbers, random_polynomial
from secretstore.storage.model import KeyShare
from secretstore.types import Address, NodeId

NO_AUTHOR = Address(bytes(20))


@dataclass(frozen=True)
class DealtKey:
    """A server key split by a dealer (tests only: the dealer knows everything)."""

    threshold: int
    secret: Scalar
    public: Point
    document_key: Point | None
    shares: dict[NodeId, KeyShare]


def deal_key(
    rng: Rng,
    nodes: Sequence[NodeId],
    threshold: int,
    with_document_key: bool = True,
    author: Address = NO_AUTHOR,
    with_commitments: bool = True,
) -> DealtKey:
    """Shares of a random server key for `nodes` (one version), with a random document key
    M stored as (C, E) when `with_document_key`, and the key polynomial's Feldman
    commitments in the version when `with_commitments` (without: a schema-1 record)."""
    secret = random_scalar(rng)
    polynomial = random_polynomial(threshold, rng, free_term=secret)
    numbers = random_id_numbers(len(nodes), rng)
    id_numbers = dict(zip(nodes, numbers, strict=True))
    public = Point.base_mul(secret)
    document_key = KeyPair.generate(rng).public if with_document_key else None
    encrypted = encrypt_secret(document_key, public, rng) if document_key is not None else None
    commitments = tuple(Point.base_mul(c) for c in polynomial) if with_commitments else None
    shares: dict[NodeId, KeyShare] = {}
    for node, number in id_numbers.items():
        share = KeyShare.from_generation(
            author,
            threshold,
            public,
            id_numbers,
            evaluate_polynomial(polynomial, number),
            commitments=commitments,
        )
        if encrypted is not None:
            share = share.with_document_key(encrypted.common_point, encrypted.encrypted_point)
        shares[node] = share
    return DealtKey(threshold, secret, public, document_key, shares)
