"""What an import can check: one node's own record, and shares across nodes (the attacks: a
swapped database, a share changed on one node, records that disagree between nodes)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from secretstore.crypto.curve import Scalar
from secretstore.crypto.rng import SeededRng
from secretstore.crypto.shamir import random_id_numbers
from secretstore.parity_db.checks import ShareSummary, cross_check, own_share_problem
from secretstore.storage.model import KeyShare, KeyShareVersion
from secretstore.types import Address, NodeId
from tests.sim.dealer import DealtKey, deal_key
from tests.unit.storage.strategies import sample_node

AUTHOR = Address(b"\x22" * 20)


def nodes(count: int) -> list[NodeId]:
    return sorted(sample_node(77, i) for i in range(count))


def dealt(count: int, threshold: int, seed: int = 1) -> tuple[list[NodeId], DealtKey]:
    members = nodes(count)
    return members, deal_key(SeededRng(seed), members, threshold, author=AUTHOR)


def with_share(share: KeyShare, secret_share: Scalar) -> KeyShare:
    version = replace(share.last_version(), secret_share=secret_share)
    return replace(share, versions=(*share.versions[:-1], version))


def summaries(key: DealtKey, members: list[NodeId]) -> list[ShareSummary]:
    return [ShareSummary.of(node, key.shares[node]) for node in members]


def test_a_node_is_in_every_version_of_its_own_records() -> None:
    members, key = dealt(3, 1)
    assert own_share_problem(key.shares[members[0]], members[0]) is None
    stranger = sample_node(78, 0)
    problem = own_share_problem(key.shares[members[0]], stranger)
    assert problem is not None and "is not among the 3 nodes of version" in problem


def test_with_threshold_zero_one_share_is_checked_against_the_public() -> None:
    members, key = dealt(3, 0)
    share = key.shares[members[1]]
    assert own_share_problem(share, members[1]) is None
    wrong = with_share(share, share.last_version().secret_share + Scalar(1))
    problem = own_share_problem(wrong, members[1])
    assert problem is not None and "is not the key's secret" in problem


def test_with_threshold_one_a_wrong_share_alone_is_not_seen() -> None:
    """What one node cannot check: a share on another polynomial looks like any other."""
    members, key = dealt(3, 1)
    share = key.shares[members[0]]
    assert own_share_problem(with_share(share, Scalar(12345)), members[0]) is None


@pytest.mark.parametrize(("count", "threshold"), [(2, 0), (2, 1), (3, 1), (3, 2), (5, 2)])
def test_consistent_shares_check_across_nodes(count: int, threshold: int) -> None:
    members, key = dealt(count, threshold)
    for node in members:
        result = cross_check(node, key.shares[node], summaries(key, members))
        assert result.problem is None, result.problem
        assert result.checked == [key.shares[node].last_version().hash]
        assert result.warnings == []


def test_this_nodes_changed_share_is_refused_naming_the_others() -> None:
    members, key = dealt(3, 1)
    bad = with_share(key.shares[members[0]], Scalar(999))
    result = cross_check(members[0], bad, summaries(key, members[1:]))
    assert result.problem is not None
    assert "this node's share of version" in result.problem
    assert "does not fit the shares of nodes" in result.problem


def test_another_nodes_changed_share_is_a_warning_naming_it() -> None:
    members, key = dealt(4, 1)
    others = summaries(key, members[1:])
    bad = ShareSummary.of(members[3], with_share(key.shares[members[3]], Scalar(999)))
    result = cross_check(members[0], key.shares[members[0]], [*others[:2], bad])
    assert result.problem is None
    assert result.checked == [key.shares[members[0]].last_version().hash]
    (warning,) = result.warnings
    assert f"0x{members[3].hex()[:16]}" in warning and "does not fit" in warning


def test_a_swapped_database_is_refused_with_the_other_nodes_shares() -> None:
    """Node B's database imported as node A's: B's share taken for A's."""
    members, key = dealt(3, 1)
    a, b = members[0], members[1]
    swapped = key.shares[b]
    assert own_share_problem(swapped, a) is None  # every node is in every version
    result = cross_check(a, swapped, summaries(key, members[1:]))
    assert result.problem is not None and "does not fit" in result.problem


def test_when_no_t_plus_1_shares_give_the_public_the_record_is_refused() -> None:
    members, key = dealt(3, 2)
    bad = with_share(key.shares[members[0]], Scalar(999))
    result = cross_check(members[0], bad, summaries(key, members[1:]))
    assert result.problem is not None and "no 3 of the shares" in result.problem


def test_fewer_than_t_plus_1_shares_are_not_checkable() -> None:
    members, key = dealt(3, 2)
    result = cross_check(members[0], key.shares[members[0]], summaries(key, members[1:2]))
    assert result.problem is None and result.checked == [] and result.warnings == []


def test_a_node_whose_record_differs_is_left_out_with_a_warning() -> None:
    members, key = dealt(3, 1)
    other = replace(summaries(key, members[1:2])[0], threshold=2)
    result = cross_check(members[0], key.shares[members[0]], [other])
    assert result.checked == []
    (warning,) = result.warnings
    assert "holds a different record of this key (threshold differ)" in warning


def test_every_version_held_by_enough_nodes_is_checked() -> None:
    """After a share redistribution a record has two versions; both are checked."""
    members, key = dealt(3, 1)
    ids = dict(zip(members, random_id_numbers(3, SeededRng(b"second version")), strict=True))
    slope = Scalar(4242)  # the same secret re-shared: f2(x) = secret + slope·x
    shares = {
        node: key.shares[node].with_version(
            KeyShareVersion.create(ids, key.secret + slope * ids[node])
        )
        for node in members
    }
    views = [ShareSummary.of(node, shares[node]) for node in members]
    own = shares[members[0]]
    result = cross_check(members[0], own, views)
    assert result.problem is None
    assert result.checked == [own.versions[1].hash, own.versions[0].hash]
    broken = replace(own, versions=(own.versions[0], replace(own.versions[1], secret_share=slope)))
    assert cross_check(members[0], broken, views[1:]).problem is not None
