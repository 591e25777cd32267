"""Hypothesis strategies and fixed samples of key shares, shared by the storage tests."""

from __future__ import annotations

import dataclasses

from hypothesis import strategies as st

from secretstore.crypto.curve import N, Point, Scalar
from secretstore.crypto.hashing import keccak256
from secretstore.storage.model import KeyShare, KeyShareVersion
from secretstore.types import Address, NodeId, ServerKeyId

nonzero_scalars = st.integers(1, N - 1).map(Scalar)
any_scalars = st.integers(0, N - 1).map(Scalar)
points = st.integers(1, N - 1).map(lambda k: Point.base_mul(Scalar(k)))
node_ids = points.map(lambda p: NodeId(p.to_bytes()))


@st.composite
def key_share_versions(draw: st.DrawFn, min_nodes: int = 1, max_nodes: int = 5) -> KeyShareVersion:
    count = draw(st.integers(min_nodes, max_nodes))
    nodes = draw(st.lists(node_ids, min_size=count, max_size=count, unique=True))
    numbers = draw(st.lists(nonzero_scalars, min_size=count, max_size=count, unique=True))
    hash_ = draw(st.binary(min_size=32, max_size=32))
    return KeyShareVersion(hash_, tuple(zip(nodes, numbers, strict=True)), draw(any_scalars))


@st.composite
def key_shares(draw: st.DrawFn) -> KeyShare:
    versions = draw(
        st.lists(key_share_versions(), min_size=1, max_size=3, unique_by=lambda v: v.hash)
    )
    smallest = min(len(v.id_numbers) for v in versions)
    threshold = draw(st.integers(0, smallest - 1))
    document_key = draw(st.none() | st.tuples(points, points))
    common, encrypted = document_key if document_key else (None, None)
    public = draw(points)
    if draw(st.booleans()):  # some versions with commitments (C_0 = public, t+1 points)
        versions = [
            dataclasses.replace(
                version,
                commitments=(
                    public,
                    *draw(st.lists(points, min_size=threshold, max_size=threshold)),
                ),
            )
            if draw(st.booleans())
            else version
            for version in versions
        ]
    return KeyShare(
        author=Address(draw(st.binary(min_size=20, max_size=20))),
        threshold=threshold,
        public=public,
        common_point=common,
        encrypted_point=encrypted,
        versions=tuple(versions),
    )


def _scalar(tag: int, index: int) -> Scalar:
    return Scalar.from_hash(keccak256(b"sample-%d-%d" % (tag, index)))


def sample_node(tag: int, index: int) -> NodeId:
    return NodeId(Point.base_mul(_scalar(tag, 1000 + index)).to_bytes())


def sample_version(tag: int, nodes: int = 3) -> KeyShareVersion:
    """A deterministic version over `nodes` nodes, different for every tag."""
    id_numbers = {sample_node(tag, i): _scalar(tag, 2000 + i) for i in range(nodes)}
    return KeyShareVersion.create(id_numbers, _scalar(tag, 3000))


def sample_share(
    tag: int, threshold: int = 1, nodes: int = 3, with_commitments: bool = False
) -> KeyShare:
    """A deterministic share without a document key, different for every tag (with
    commitments ``C_0 = public, C_1..C_t`` when asked)."""
    public = Point.base_mul(_scalar(tag, 0))
    commitments = None
    if with_commitments:
        commitments = (public, *(Point.base_mul(_scalar(tag, 4000 + k)) for k in range(threshold)))
    return KeyShare.from_generation(
        author=Address(keccak256(b"author-%d" % tag)[:20]),
        threshold=threshold,
        public=public,
        id_numbers=sample_version(tag, nodes).id_numbers,
        secret_share=_scalar(tag, 3000),
        commitments=commitments,
    )


def sample_key_id(tag: int) -> ServerKeyId:
    return ServerKeyId(keccak256(b"key-%d" % tag))
