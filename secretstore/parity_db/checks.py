"""What can be checked of imported key shares: one node's alone, and across nodes (pure).

One node's record alone (`own_share_problem`): the node is among the nodes of every version
(else the database is another node's, or the node key is wrong); and, for threshold 0, where
every node's share is the key's secret itself, that `share·G` is the key's public. With t ≥ 1
a single share is a point on an unknown polynomial: nothing ties it to the public.

Across nodes (`cross_check`), from the `ShareSummary` of each node (its record without the
secrets: the share publics `s_i·G` of its versions): the records agree, and for every version
held by at least t+1 of the given nodes, the share publics lie on one polynomial of degree t
whose value at zero is the key's public, `Σ λ_i·s_i·G == Y`. A node whose share is off that
polynomial is named; when this node's is, its record is refused.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final

from secretstore.crypto.curve import Point
from secretstore.crypto.shamir import interpolate_point_at_zero
from secretstore.storage.model import KeyShare, KeyShareVersion
from secretstore.types import Address, NodeId

#: How many (t+1)-subsets of the holders are tried to find one that gives the key's public.
MAX_SUBSETS: Final = 256


def short(node: NodeId) -> str:
    """A node id as the import reports name it: 0x and its first 8 bytes."""
    return f"0x{node.hex()[:16]}…"


def own_share_problem(share: KeyShare, node: NodeId) -> str | None:
    """Why `node` cannot hold `share`, or None when nothing is wrong that one node can see."""
    for version in share.versions:
        if version.id_number(node) is None:
            return (
                f"node {short(node)} is not among the {len(version.id_numbers)} nodes of "
                f"version 0x{version.hash.hex()}: this is another node's database, or the "
                "wrong node id was given"
            )
        if share.threshold == 0 and Point.base_mul(version.secret_share) != share.public:
            return (
                f"the share of version 0x{version.hash.hex()} is not the key's secret "
                "(with threshold 0 every node's share is)"
            )
    return None


@dataclass(frozen=True, slots=True)
class ShareSummary:
    """One node's record of one key without its secrets: what another node's import needs
    to check its own share. `versions` maps each version hash to `s_i·G`."""

    node: NodeId
    author: Address
    threshold: int
    public: Point
    common_point: Point | None
    encrypted_point: Point | None
    versions: Mapping[bytes, Point]

    @classmethod
    def of(cls, node: NodeId, share: KeyShare) -> ShareSummary:
        return cls(
            node,
            share.author,
            share.threshold,
            share.public,
            share.common_point,
            share.encrypted_point,
            {version.hash: Point.base_mul(version.secret_share) for version in share.versions},
        )

    def record_fields(self) -> tuple[object, ...]:
        return (
            self.author,
            self.threshold,
            self.public,
            self.common_point,
            self.encrypted_point,
        )


@dataclass
class CrossCheck:
    """The outcome of checking one node's record against other nodes'.

    `problem` (this node's record is refused) or None; `checked` lists the version hashes
    whose shares were checked; `warnings` name other nodes whose records or shares are off.
    """

    problem: str | None = None
    checked: list[bytes] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def _reconstructs(
    version: KeyShareVersion, publics: Mapping[NodeId, Point], nodes: Sequence[NodeId]
) -> Point:
    ids = version.id_numbers_map()
    return interpolate_point_at_zero([publics[n] for n in nodes], [ids[n] for n in nodes])


def _check_version(
    share: KeyShare, version: KeyShareVersion, publics: Mapping[NodeId, Point]
) -> tuple[set[NodeId] | None, list[NodeId]]:
    """(the nodes whose shares lie on the key's polynomial, or None if no t+1 of the given
    shares give the key's public; the nodes whose shares do not)."""
    holders = sorted(publics)
    size = share.threshold + 1
    for subset in itertools.islice(itertools.combinations(holders, size), MAX_SUBSETS):
        if _reconstructs(version, publics, subset) != share.public:
            continue
        # Any t of these shares and one more give the public only if that one lies on the
        # same polynomial (a degree-t polynomial is fixed by t+1 points and f(0)).
        base = list(subset[1:])
        good = set(subset)
        bad: list[NodeId] = []
        for node in holders:
            if node in good:
                continue
            if _reconstructs(version, publics, [*base, node]) == share.public:
                good.add(node)
            else:
                bad.append(node)
        return good, bad
    return None, []


def cross_check(node: NodeId, share: KeyShare, others: Sequence[ShareSummary]) -> CrossCheck:
    """Check `node`'s `share` against the summaries of the same key from other nodes."""
    result = CrossCheck()
    own = ShareSummary.of(node, share)
    agreeing: list[ShareSummary] = []
    for other in others:
        if other.node == node:
            continue
        if other.record_fields() != own.record_fields():
            differs = [
                name
                for name, a, b in zip(
                    ("author", "threshold", "public", "common_point", "encrypted_point"),
                    other.record_fields(),
                    own.record_fields(),
                    strict=True,
                )
                if a != b
            ]
            result.warnings.append(
                f"node {short(other.node)} holds a different record of this key "
                f"({', '.join(differs)} differ); its shares were not used"
            )
            continue
        agreeing.append(other)
    for version in reversed(share.versions):
        publics = {node: own.versions[version.hash]}
        for other in agreeing:
            point = other.versions.get(version.hash)
            if point is not None and version.id_number(other.node) is not None:
                publics[other.node] = point
        if len(publics) <= share.threshold:
            continue
        good, bad = _check_version(share, version, publics)
        label = f"version 0x{version.hash.hex()}"
        if good is None:
            names = ", ".join(short(n) for n in sorted(publics))
            result.problem = (
                f"no {share.threshold + 1} of the shares of {label} held by nodes {names} "
                "give the key's public (a share was changed, or this is another node's "
                "database, or the wrong node id)"
            )
            return result
        if node in bad:
            result.problem = (
                f"this node's share of {label} does not fit the shares of nodes "
                f"{', '.join(short(n) for n in sorted(good))}, which give the key's public "
                "(is this another node's database, or the wrong node id?)"
            )
            return result
        result.warnings.extend(
            f"node {short(other)}'s share of {label} does not fit the other nodes' shares"
            for other in bad
        )
        result.checked.append(version.hash)
    return result
