"""Messages of the threshold delete and of tombstone gossip (codes 0x0d00–0x0dff).

A delete runs in two phases on every connected node: the master sends `DeleteKeyInit` with the
author's proofs, each node checks them against its own record (or tombstone) and answers what
it holds (`DeleteKeyHolding`); when the holders that answered are enough (docs/LIFECYCLE.md,
"The rule"), the master sends `DeleteKeyErase` and each node erases its share, keeps a
tombstone and confirms (`DeleteKeyErased`). A node that erased a key pushes its tombstone to
every node it is connected to, and every node pushes its tombstones to a node whose link comes
up (`TombstonePush`), so a node that was away when a key was deleted erases it when it returns.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from secretstore.crypto.curve import Point
from secretstore.types import Address, Hash256, NodeId, ServerKeyId, SessionId
from secretstore.wire.admin import NO_KEY
from secretstore.wire.codec import message
from secretstore.wire.requester import RequesterProof, check_signature_length

#: The largest number of tombstones one TombstonePush carries.
TOMBSTONE_PAGE_SIZE = 1024


class Holding(enum.IntEnum):
    """What a node has of a key a delete names."""

    #: neither a share nor a tombstone
    NOTHING = 0
    #: a share (its versions follow)
    SHARE = 1
    #: a tombstone: it erased the key before
    TOMBSTONE = 2


@dataclass(frozen=True, slots=True)
class VersionNodes:
    """A key version and every node it lists (ascending)."""

    hash: Hash256
    nodes: tuple[NodeId, ...]


@message(0x0D00)
@dataclass(frozen=True, slots=True)
class DeleteKeyInit:
    """Master -> every other connected node: the author asks to delete `key_id`.

    `requester`: the author's proof (its signature over the key id); `bound_signature`: the
    author's bound signature of the delete (crypto/bound.py, DELETE_KEY over the key id and
    the server key public). Every node checks both against its own record or tombstone."""

    session_id: SessionId
    key_id: ServerKeyId
    requester: RequesterProof
    bound_signature: bytes

    def __post_init__(self) -> None:
        check_signature_length(self.bound_signature, "a bound delete signature")


@message(0x0D01)
@dataclass(frozen=True, slots=True)
class DeleteKeyHolding:
    """Node -> master: the proofs check out here; what this node has of the key (for a
    share: the key's threshold and every version it holds, with the nodes each lists)."""

    session_id: SessionId
    holding: Holding
    threshold: int
    versions: tuple[VersionNodes, ...]


@message(0x0D02)
@dataclass(frozen=True, slots=True)
class DeleteKeyErase:
    """Master -> every node that answered: erase the key now (and keep its tombstone)."""

    session_id: SessionId


@message(0x0D03)
@dataclass(frozen=True, slots=True)
class DeleteKeyErased:
    """Node -> master: this node holds no share of the key any more (written, synced)."""

    session_id: SessionId


@dataclass(frozen=True, slots=True)
class TombstoneEntry:
    """One tombstone as it travels: what storage/model.Tombstone keeps."""

    key_id: ServerKeyId
    public: Point
    author: Address
    signature: bytes

    def __post_init__(self) -> None:
        check_signature_length(self.signature, "a tombstone's signature")


@message(0x0D10)
@dataclass(frozen=True, slots=True)
class TombstonePush:
    """Node -> node: tombstones of keys the sender erased (at most TOMBSTONE_PAGE_SIZE). The
    receiver erases a share of its own only when the tombstone fits that share (same public
    and author, the author's signature); it answers nothing."""

    session_id: SessionId
    tombstones: tuple[TombstoneEntry, ...]

    @property
    def key_id(self) -> ServerKeyId:
        return NO_KEY
