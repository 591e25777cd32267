"""Messages of the node set change (servers set change) session (codes 0x0a00–0x0aff).

One session per change, on every node of the old set; the per-key share redistribution runs
inside it, its messages naming the key. Failures travel as the common `SessionError` (with
its kind) or, for a fault one node saw in another's message, as `KeyChangeFault`.
"""

from __future__ import annotations

from dataclasses import dataclass

from secretstore.crypto.curve import Point, Scalar
from secretstore.types import Address, Hash256, NodeId, ServerKeyId, SessionId
from secretstore.wire.codec import message

#: The key id the session is filed under (it is about every key, not one).
NO_KEY = ServerKeyId(bytes(32))
#: The largest number of keys one InventoryPage lists.
INVENTORY_PAGE_SIZE = 1024


@dataclass(frozen=True, slots=True)
class NodeNumber:
    """A node and its id number in a key version."""

    node: NodeId
    number: Scalar


@dataclass(frozen=True, slots=True)
class VersionHeld:
    """A key version a node holds: its hash and how many nodes it lists."""

    hash: Hash256
    nodes: int


@dataclass(frozen=True, slots=True)
class InventoryEntry:
    """What one node holds of one key: threshold, public, versions (oldest first)."""

    key_id: ServerKeyId
    threshold: int
    public: Point
    versions: tuple[VersionHeld, ...]


@dataclass(frozen=True, slots=True)
class KeyCommon:
    """The data of a key every holder stores alike (a new holder's record is built from it)."""

    author: Address
    threshold: int
    public: Point
    common_point: Point | None
    encrypted_point: Point | None


@message(0x0A00)
@dataclass(frozen=True, slots=True)
class NodeSetChangeInit:
    """Master -> every other node of the old set: take part in this change.

    `old_set`, `new_set`: ascending node ids; the signatures are the administrator's
    recoverable signatures of keccak256 of each set's concatenated ids (Parity's servers set
    hash). `migration_id`: set when the change is a contract-driven migration.
    """

    session_id: SessionId
    migration_id: Hash256 | None
    old_set: tuple[NodeId, ...]
    new_set: tuple[NodeId, ...]
    old_signature: bytes
    new_signature: bytes

    @property
    def key_id(self) -> ServerKeyId:
        return NO_KEY


@message(0x0A01)
@dataclass(frozen=True, slots=True)
class NodeSetChangeAccepted:
    """Node -> master: the signatures and sets check out here, no other session runs here
    and none will start; the node's inventory follows."""

    session_id: SessionId


@message(0x0A02)
@dataclass(frozen=True, slots=True)
class InventoryPage:
    """Node -> master: page `index` (from 0) of its keys, at most INVENTORY_PAGE_SIZE
    (ascending key id); `last` on the final page (an empty store sends one empty page)."""

    session_id: SessionId
    index: int
    entries: tuple[InventoryEntry, ...]
    last: bool


@message(0x0A03)
@dataclass(frozen=True, slots=True)
class KeyDeal:
    """Master -> each dealer of one key: redistribute your share of `version`.

    `dealers`: the t+1 holders that deal (ascending); the targets are the whole new set:
    those in `fresh` get these new id numbers, every other node of the new set keeps its id
    number of `version`."""

    session_id: SessionId
    key_id: ServerKeyId
    version: Hash256
    dealers: tuple[NodeId, ...]
    fresh: tuple[NodeNumber, ...]


@message(0x0A04)
@dataclass(frozen=True, slots=True)
class KeySubshare:
    """Dealer -> each target of one key: its subshare `value` = g_i(x'_j), the dealer's
    Feldman commitments C_i0..C_it, and what every dealer sends alike: the key's common data,
    the dealers' id numbers in `version` (for the Lagrange weights), the new version's id
    numbers (the whole new set) and `version`'s own commitments when the dealers' records
    have them (then every dealer's C_i0 must be its public share in `version`)."""

    session_id: SessionId
    key_id: ServerKeyId
    version: Hash256
    value: Scalar
    commitments: tuple[Point, ...]
    common: KeyCommon
    dealer_numbers: tuple[NodeNumber, ...]
    new_numbers: tuple[NodeNumber, ...]
    version_commitments: tuple[Point, ...] | None = None


@message(0x0A05)
@dataclass(frozen=True, slots=True)
class KeyMoved:
    """Target -> master: the new version of the key is written (synced) here; its hash, this
    node's id number in it, the public of this node's new share and the keccak256 digest of
    the new version's commitments as this node stored them (every holder's must agree)."""

    session_id: SessionId
    key_id: ServerKeyId
    version: Hash256
    number: Scalar
    share_public: Point
    commitments: Hash256


@message(0x0A06)
@dataclass(frozen=True, slots=True)
class KeyChangeFault:
    """Node -> master: one of `culprits` sent something wrong for `key_id` (`what` says
    what; several culprits when the fault cannot be pinned on one of them)."""

    session_id: SessionId
    key_id: ServerKeyId
    culprits: tuple[NodeId, ...]
    what: str


@message(0x0A07)
@dataclass(frozen=True, slots=True)
class NodeSetChangeProgress:
    """Master -> every other node: how far the change is (also keeps quiet nodes' session
    alive)."""

    session_id: SessionId
    done: int
    total: int


@message(0x0A08)
@dataclass(frozen=True, slots=True)
class NodeSetChangeCompleted:
    """Master -> every other node: every key is on the new set; nodes outside it erase
    their keys now."""

    session_id: SessionId


@message(0x0A09)
@dataclass(frozen=True, slots=True)
class NodeSetChangeFinished:
    """Node -> master: done here (a removed node has erased every key first)."""

    session_id: SessionId
