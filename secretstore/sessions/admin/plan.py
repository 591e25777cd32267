"""The plan of a node set change: every node's inventory of keys, and per key what to move.

The rule, per key (inputs: what every node of the old set reported, the new set N):
1. The reports must agree on the key's threshold t and public; otherwise the change is
   refused (a corrupt or lying node).
2. The chosen version is the one most reporting nodes hold (its *holders*); ties go to the
   newest (the largest position at which a node lists it, oldest first), then the larger
   hash. Nodes that list a version but did not report it (isolated: not configured, or a
   node that lost its store) are not holders.
3. The key can be dealt only if its version has at least t+1 holders, and kept only if the
   new set has at least t+1 nodes (every node of N gets a share of the new version).
   Otherwise the change is refused before any key moves.
4. Nothing to do when every node of N holds the version and the version lists exactly |N|
   nodes (then it lists N): a repeated change is a no-op.
5. Otherwise the dealers are t+1 holders (a per-key rotation, so the work spreads over the
   holders); the nodes of N that hold the version keep their id numbers, the others get fresh
   random nonzero ones. When no node of N lacks the version (the change only drops nodes),
   every node of N gets a fresh id number, so that a repeated run never writes a second,
   different sharing under the same version hash.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Protocol

from secretstore.crypto.curve import Point, Scalar
from secretstore.crypto.hashing import keccak256
from secretstore.crypto.rng import Rng
from secretstore.crypto.shamir import random_id_numbers
from secretstore.errors import ProtocolViolation
from secretstore.sessions.base import short
from secretstore.storage.model import KeyShare
from secretstore.types import Hash256, NodeId, ServerKeyId, SessionId
from secretstore.wire.admin import INVENTORY_PAGE_SIZE, InventoryEntry, InventoryPage, VersionHeld

#: How many keys a refusal names (the rest are counted).
NAMED_PROBLEMS = 5


class KeyReader(Protocol):
    """Read access to every key share of this node (the key storage, synchronously)."""

    def get(self, key_id: ServerKeyId) -> KeyShare | None: ...

    def ids(self) -> Iterator[ServerKeyId]: ...


def inventory_entry(key_id: ServerKeyId, share: KeyShare) -> InventoryEntry:
    """What this node reports of one key."""
    versions = tuple(VersionHeld(Hash256(v.hash), len(v.id_numbers)) for v in share.versions)
    return InventoryEntry(key_id, share.threshold, share.public, versions)


def inventory_pages(
    keys: KeyReader, ids: Iterable[ServerKeyId] | None = None
) -> list[tuple[InventoryEntry, ...]]:
    """This node's inventory of `ids` (ascending; default: every key) in pages of at most
    INVENTORY_PAGE_SIZE keys (at least one page, empty when it holds none of them)."""
    pages: list[tuple[InventoryEntry, ...]] = []
    page: list[InventoryEntry] = []
    for key_id in keys.ids() if ids is None else ids:
        share = keys.get(key_id)
        if share is None:  # removed since the listing began
            continue
        page.append(inventory_entry(key_id, share))
        if len(page) == INVENTORY_PAGE_SIZE:
            pages.append(tuple(page))
            page = []
    if page or not pages:
        pages.append(tuple(page))
    return pages


def inventory_messages(
    session_id: SessionId, pages: list[tuple[InventoryEntry, ...]]
) -> list[InventoryPage]:
    """`pages` (inventory_pages) as the messages of a session that carry them, numbered, the
    last one marked."""
    return [InventoryPage(session_id, i, page, i == len(pages) - 1) for i, page in enumerate(pages)]


@dataclass(frozen=True, slots=True)
class KeyPlan:
    """What to do with one key: `dealers` (t+1 holders of `version`, ascending) redistribute
    it to the whole new set; `fresh` are the new-set nodes that get a new id number (the
    others keep theirs in `version`)."""

    key_id: ServerKeyId
    threshold: int
    public: Point
    version: Hash256
    dealers: tuple[NodeId, ...]
    fresh: tuple[tuple[NodeId, Scalar], ...]


@dataclass(frozen=True, slots=True)
class ChangePlan:
    """Every key to move (ascending key id), how many need nothing, what blocks the change."""

    moves: tuple[KeyPlan, ...]
    in_place: int
    problems: tuple[str, ...]

    @property
    def total(self) -> int:
        return len(self.moves) + self.in_place

    def refusal(self) -> str:
        """The text of the refusal when there are problems."""
        named = "; ".join(self.problems[:NAMED_PROBLEMS])
        more = len(self.problems) - NAMED_PROBLEMS
        rest = f"; and {more} more keys" if more > 0 else ""
        count = len(self.problems)
        return (
            f"the node set change is refused, nothing was changed: {count} "
            f"{'key' if count == 1 else 'keys'} would be left without t+1 holders: {named}{rest}"
        )


class Inventory:
    """The master's collection of every node's reports, key by key."""

    def __init__(self) -> None:
        self._keys: dict[ServerKeyId, dict[NodeId, InventoryEntry]] = {}
        self._last: dict[NodeId, ServerKeyId] = {}
        #: node -> the index of the next page of its report
        self._pages: dict[NodeId, int] = {}
        self._complete: set[NodeId] = set()

    def add(self, node: NodeId, entries: Iterable[InventoryEntry], *, last: bool = False) -> None:
        """One page of `node`'s report (`last`: its whole report is in); ProtocolViolation
        for keys out of order (a key reported twice included)."""
        previous = self._last.get(node)
        for entry in entries:
            if previous is not None and entry.key_id <= previous:
                raise ProtocolViolation(short(node), "reported its keys out of order")
            previous = entry.key_id
            self._keys.setdefault(entry.key_id, {})[node] = entry
        if previous is not None:
            self._last[node] = previous
        if last:
            self._complete.add(node)

    def add_page(self, node: NodeId, page: InventoryPage) -> bool:
        """`node`'s next page (as `add`): False for the same page again, which changes
        nothing; ProtocolViolation for a page out of order or after its last."""
        expected = self._pages.get(node, 0)
        if page.index < expected:
            return False
        if page.index > expected or node in self._complete:
            raise ProtocolViolation(short(node), f"sent inventory page {page.index} out of order")
        self._pages[node] = expected + 1
        self.add(node, page.entries, last=page.last)
        return True

    def complete(self) -> frozenset[NodeId]:
        """The nodes whose whole report is in."""
        return frozenset(self._complete)

    def __len__(self) -> int:
        return len(self._keys)

    def key_ids(self) -> list[ServerKeyId]:
        """Every key reported, ascending."""
        return sorted(self._keys)

    def reports(self, key_id: ServerKeyId) -> Mapping[NodeId, InventoryEntry]:
        """What each node reported of `key_id`."""
        return self._keys[key_id]

    def plan(self, new_set: frozenset[NodeId], rng: Rng) -> ChangePlan:
        moves: list[KeyPlan] = []
        problems: list[str] = []
        in_place = 0
        for key_id in sorted(self._keys):
            outcome = plan_key(key_id, self._keys[key_id], new_set, rng)
            if isinstance(outcome, KeyPlan):
                moves.append(outcome)
            elif outcome is None:
                in_place += 1
            else:
                problems.append(outcome)
        return ChangePlan(tuple(moves), in_place, tuple(problems))


def choose_version(
    reports: Mapping[NodeId, InventoryEntry],
) -> tuple[VersionHeld, frozenset[NodeId]]:
    """The version most reporting nodes hold, ties to the newest then the larger hash; and
    the nodes that hold it."""
    holders: dict[VersionHeld, set[NodeId]] = {}
    newness: dict[VersionHeld, int] = {}
    for node, entry in reports.items():
        for position, version in enumerate(entry.versions):
            holders.setdefault(version, set()).add(node)
            newness[version] = max(newness.get(version, 0), position)
    best = max(holders, key=lambda v: (len(holders[v]), newness[v], v.hash, v.nodes))
    return best, frozenset(holders[best])


def plan_key(
    key_id: ServerKeyId,
    reports: Mapping[NodeId, InventoryEntry],
    new_set: frozenset[NodeId],
    rng: Rng,
) -> KeyPlan | str | None:
    """The plan of one key (see the module docstring): a KeyPlan, None when nothing is to be
    done, or the text of the problem that blocks the change."""
    name = f"key 0x{key_id.hex()}"
    first = next(iter(reports.values()))
    if any((e.threshold, e.public) != (first.threshold, first.public) for e in reports.values()):
        return f"{name}: nodes {_names(reports)} report different thresholds or publics"
    reported = [e for e in reports.values() if e.versions]
    if not reported:
        return f"{name}: the nodes that report it ({_names(reports)}) hold no version of it"
    t = first.threshold
    version, holders = choose_version({n: e for n, e in reports.items() if e.versions})
    if len(holders) < t + 1:
        return (
            f"{name}: threshold {t} needs {t + 1} connected holders of one version to move it, "
            f"there are {len(holders)} ({_names(holders)})"
        )
    if len(new_set) < t + 1:
        return f"{name}: threshold {t} needs {t + 1} nodes in the new set, it has {len(new_set)}"
    if new_set <= holders and version.nodes == len(new_set):
        return None
    dealers = pick_dealers(key_id, holders, t)
    lacking = sorted(new_set - holders) or sorted(new_set)
    numbers = random_id_numbers(len(lacking), rng)
    return KeyPlan(
        key_id,
        t,
        first.public,
        version.hash,
        dealers,
        tuple(zip(lacking, numbers, strict=True)),
    )


def _names(nodes: Iterable[NodeId]) -> str:
    """The short ids of `nodes`, ascending, comma-separated."""
    return ", ".join(short(node) for node in sorted(nodes))


def pick_dealers(
    key_id: ServerKeyId, holders: Iterable[NodeId], threshold: int
) -> tuple[NodeId, ...]:
    """t+1 of the holders (ascending), by a per-key rotation so the work spreads."""
    chosen = sorted(holders, key=lambda node: keccak256(key_id + node))[: threshold + 1]
    return tuple(sorted(chosen))


def plan_refresh_key(
    key_id: ServerKeyId,
    reports: Mapping[NodeId, InventoryEntry],
    rng: Rng,
    cluster: frozenset[NodeId] = frozenset(),
) -> KeyPlan | str:
    """The refresh of one key: its chosen version (as for a node set change), re-dealt by t+1
    of its holders to exactly the nodes it lists, each with a fresh id number; or the text
    of why the key is skipped (its reports disagree, or a node it lists does not hold it:
    the text names the nodes of `cluster`, the nodes that reported, without it)."""
    name = f"key 0x{key_id.hex()}"
    first = next(iter(reports.values()))
    if any((e.threshold, e.public) != (first.threshold, first.public) for e in reports.values()):
        nodes = ", ".join(short(node) for node in sorted(reports))
        return f"{name}: nodes {nodes} report different thresholds or publics"
    held = {n: e for n, e in reports.items() if e.versions}
    if not held:
        return f"{name}: no node reports a version of it"
    version, holders = choose_version(held)
    if version.nodes != len(holders):
        without = (set(reports) | cluster) - holders
        others = f" (nodes without it: {_names(without)})" if without else ""
        return (
            f"{name}: its version lists {version.nodes} nodes and {len(holders)} of them hold "
            f"it here{others}; refresh it when they are back, or run a node set change"
        )
    t = first.threshold
    listed = sorted(holders)
    numbers = random_id_numbers(len(listed), rng)
    fresh = tuple(zip(listed, numbers, strict=True))
    return KeyPlan(key_id, t, first.public, version.hash, pick_dealers(key_id, holders, t), fresh)
