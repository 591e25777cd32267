"""KeyShare and KeyShareVersion: invariants, helpers, the version hash, and secrecy of repr."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given
from hypothesis import strategies as st

from secretstore.crypto.curve import Point, Scalar
from secretstore.crypto.hashing import keccak256
from secretstore.errors import DocumentKeyAlreadyStored, InvalidKeyShare
from secretstore.storage.model import KeyShare, KeyShareVersion, version_hash
from secretstore.types import Address, NodeId
from tests.unit.storage.strategies import (
    key_share_versions,
    key_shares,
    node_ids,
    nonzero_scalars,
    sample_node,
    sample_share,
    sample_version,
)

AUTHOR = Address(bytes(range(20)))
PUBLIC = Point.base_mul(Scalar(7))


def _pairs(count: int) -> tuple[tuple[NodeId, Scalar], ...]:
    return tuple((sample_node(0, i), Scalar(i + 1)) for i in range(count))


# --- KeyShareVersion -----------------------------------------------------------------------


@given(st.lists(node_ids, min_size=1, max_size=6, unique=True), st.randoms())
def test_version_sorts_id_numbers_by_node_id(nodes: list[NodeId], rnd: object) -> None:
    pairs = [(node, Scalar(i + 1)) for i, node in enumerate(nodes)]
    shuffled = list(pairs)
    rnd.shuffle(shuffled)  # type: ignore[attr-defined]
    version = KeyShareVersion(bytes(32), tuple(shuffled), Scalar(5))
    assert version.nodes == tuple(sorted(nodes))
    assert version.id_numbers == tuple(sorted(pairs))
    assert version == KeyShareVersion(bytes(32), tuple(pairs), Scalar(5))


@given(
    st.lists(st.tuples(node_ids, nonzero_scalars), min_size=1, max_size=5, unique_by=lambda p: p[0])
)
def test_version_hash_is_keccak_of_sorted_node_and_number(
    pairs: list[tuple[NodeId, Scalar]],
) -> None:
    expected = keccak256(b"".join(n + s.to_bytes() for n, s in sorted(pairs, key=lambda p: p[0])))
    assert version_hash(pairs) == expected
    assert version_hash(reversed(pairs)) == expected


def test_create_computes_the_hash_from_a_mapping_or_pairs() -> None:
    pairs = _pairs(3)
    from_map = KeyShareVersion.create(dict(pairs), Scalar(9))
    from_pairs = KeyShareVersion.create(reversed(pairs), Scalar(9))
    assert from_map == from_pairs
    assert from_map.hash == version_hash(pairs)
    assert from_map.id_numbers_map() == dict(pairs)


def test_id_number_lookup() -> None:
    version = KeyShareVersion.create(_pairs(3), Scalar(9))
    assert version.id_number(sample_node(0, 1)) == Scalar(2)
    assert version.id_number(sample_node(1, 1)) is None


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: KeyShareVersion(bytes(31), _pairs(2), Scalar(1)), "32 bytes"),
        (lambda: KeyShareVersion(bytes(32), (), Scalar(1)), "at least one node"),
        (
            lambda: KeyShareVersion(bytes(32), ((sample_node(0, 0), Scalar(0)),), Scalar(1)),
            "nonzero",
        ),
        (
            lambda: KeyShareVersion(
                bytes(32),
                ((sample_node(0, 0), Scalar(1)), (sample_node(0, 0), Scalar(2))),
                Scalar(1),
            ),
            "node ids",
        ),
        (
            lambda: KeyShareVersion(
                bytes(32),
                ((sample_node(0, 0), Scalar(1)), (sample_node(0, 1), Scalar(1))),
                Scalar(1),
            ),
            "id numbers",
        ),
        (
            lambda: KeyShareVersion(bytes(32), ((NodeId(bytes(64)), Scalar(1)),), Scalar(1)),
            "not a point",
        ),
        (
            lambda: KeyShareVersion(bytes(32), ((NodeId(bytes(63)), Scalar(1)),), Scalar(1)),
            "64 bytes",
        ),
        (lambda: KeyShareVersion(bytes(32), ((sample_node(0, 0), 1),), Scalar(1)), "Scalar"),  # type: ignore[arg-type]
        (lambda: KeyShareVersion(bytes(32), _pairs(1), 3), "Scalar"),  # type: ignore[arg-type]
        (lambda: KeyShareVersion(bytes(32), (sample_node(0, 0),), Scalar(1)), "pairs"),  # type: ignore[arg-type]
    ],
)
def test_version_rejects_invalid_fields(build: object, message: str) -> None:
    with pytest.raises(InvalidKeyShare, match=message):
        build()  # type: ignore[operator]


# --- KeyShare ------------------------------------------------------------------------------


def _share(**changes: object) -> KeyShare:
    fields: dict[str, object] = {
        "author": AUTHOR,
        "threshold": 1,
        "public": PUBLIC,
        "common_point": None,
        "encrypted_point": None,
        "versions": (KeyShareVersion.create(_pairs(3), Scalar(4)),),
    }
    fields.update(changes)
    return KeyShare(**fields)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"author": bytes(19)}, "20 bytes"),
        ({"threshold": -1}, "negative"),
        ({"threshold": True}, "int"),
        ({"threshold": 3}, "threshold 3"),
        ({"public": Point.identity()}, "public"),
        ({"public": PUBLIC.to_bytes()}, "public"),
        ({"common_point": PUBLIC}, "together"),
        ({"encrypted_point": PUBLIC}, "together"),
        ({"common_point": Point.identity(), "encrypted_point": PUBLIC}, "common_point"),
        ({"versions": ()}, "at least one version"),
        ({"versions": (sample_version(1), sample_version(1))}, "distinct"),
        ({"versions": ("v",)}, "KeyShareVersion"),
        ({"versions": (sample_version(1, nodes=3), sample_version(2, nodes=1))}, "has 1"),
    ],
)
def test_share_rejects_invalid_fields(changes: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidKeyShare, match=message):
        _share(**changes)


def test_threshold_just_below_node_count_is_accepted() -> None:
    assert _share(threshold=2).threshold == 2


def test_versions_given_as_a_list_become_a_tuple() -> None:
    share = _share(versions=[sample_version(1)])
    assert share.versions == (sample_version(1),)


def test_from_generation_has_one_version_and_no_document_key() -> None:
    share = KeyShare.from_generation(AUTHOR, 1, PUBLIC, dict(_pairs(3)), Scalar(4))
    assert share.versions == (KeyShareVersion.create(_pairs(3), Scalar(4)),)
    assert not share.has_document_key()
    assert share.common_point is None
    assert share.encrypted_point is None


def test_last_version_and_lookup_by_hash() -> None:
    first, second = sample_version(1), sample_version(2)
    share = _share(versions=(first,)).with_version(second)
    assert share.versions == (first, second)
    assert share.last_version() == second
    assert share.version(first.hash) == first
    assert share.version(second.hash) == second
    assert share.version(bytes(32)) is None


def test_with_version_rejects_a_held_hash_and_too_few_nodes() -> None:
    share = _share(versions=(sample_version(1),))
    with pytest.raises(InvalidKeyShare, match="distinct"):
        share.with_version(sample_version(1))
    with pytest.raises(InvalidKeyShare, match="threshold"):
        share.with_version(sample_version(2, nodes=1))
    assert share.versions == (sample_version(1),)


def test_with_document_key_sets_both_points_once() -> None:
    common, encrypted = Point.base_mul(Scalar(11)), Point.base_mul(Scalar(12))
    share = _share()
    stored = share.with_document_key(common, encrypted)
    assert stored.has_document_key()
    assert (stored.common_point, stored.encrypted_point) == (common, encrypted)
    assert stored.versions == share.versions
    assert not share.has_document_key()
    with pytest.raises(DocumentKeyAlreadyStored):
        stored.with_document_key(common, encrypted)


def test_shares_are_frozen() -> None:
    share = sample_share(1)
    with pytest.raises(dataclasses.FrozenInstanceError):
        share.threshold = 2  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        share.versions[0].secret_share = Scalar(1)  # type: ignore[misc]


@given(key_shares())
def test_repr_does_not_depend_on_secret_shares_or_id_numbers(share: KeyShare) -> None:
    twin = dataclasses.replace(
        share,
        versions=tuple(
            KeyShareVersion(
                v.hash,
                tuple((node, number * Scalar(2)) for node, number in v.id_numbers),
                v.secret_share + Scalar(1),
                v.commitments,
            )
            for v in share.versions
        ),
    )
    assert twin != share
    assert repr(twin) == repr(share)
    assert str(twin) == str(share)
    assert repr(twin.versions) == repr(share.versions)


@given(key_share_versions(min_nodes=2))
def test_equal_versions_hash_equal(version: KeyShareVersion) -> None:
    copy = KeyShareVersion(version.hash, tuple(reversed(version.id_numbers)), version.secret_share)
    assert copy == version
    assert hash(copy) == hash(version)


# --- commitments ---------------------------------------------------------------------------


def _commitments(share: KeyShare, extra: int = 0) -> tuple[Point, ...]:
    rest = tuple(Point.base_mul(Scalar(100 + k)) for k in range(share.threshold + extra))
    return (share.public, *rest)


def test_a_version_may_carry_the_commitments_of_its_key() -> None:
    share = sample_share(4, threshold=2, nodes=3, with_commitments=True)
    commitments = share.last_version().commitments
    assert commitments is not None
    assert len(commitments) == 3
    assert commitments[0] == share.public
    assert sample_share(4, threshold=2, nodes=3).last_version().commitments is None
    version = KeyShareVersion.create(_pairs(2), Scalar(3), iter(_commitments(share)[:2]))
    assert version.commitments == _commitments(share)[:2]


def test_commitments_must_be_t_plus_1_points_starting_with_the_public() -> None:
    base = sample_share(5, threshold=1, nodes=3)
    version = base.last_version()
    good = _commitments(base)
    KeyShare(AUTHOR, 1, base.public, None, None, (dataclasses.replace(version, commitments=good),))
    for wrong, message in [
        (good[:1], "needs 2 commitments"),
        (_commitments(base, extra=1), "needs 2 commitments"),
        ((Point.base_mul(Scalar(9)), good[1]), "not the server key public"),
    ]:
        bad = dataclasses.replace(version, commitments=wrong)
        with pytest.raises(InvalidKeyShare, match=message):
            KeyShare(AUTHOR, 1, base.public, None, None, (bad,))
    with pytest.raises(InvalidKeyShare, match="at least one point"):
        dataclasses.replace(version, commitments=())
    with pytest.raises(InvalidKeyShare, match="commitment 1"):
        dataclasses.replace(version, commitments=(good[0], Point.identity()))
    with pytest.raises(InvalidKeyShare, match="commitment 0"):
        dataclasses.replace(version, commitments=(b"not a point",))  # type: ignore[arg-type]


def test_document_key_and_new_versions_keep_the_commitments() -> None:
    share = sample_share(6, threshold=1, nodes=3, with_commitments=True)
    stored = share.with_document_key(Point.base_mul(Scalar(2)), Point.base_mul(Scalar(3)))
    assert stored.versions[0].commitments == share.versions[0].commitments
    grown = stored.with_version(sample_version(7, nodes=2))
    assert grown.versions[0].commitments == share.versions[0].commitments
    assert grown.versions[1].commitments is None
