"""Messages of key version negotiation (codes 0x0700–0x07ff) and what a node reports."""

from __future__ import annotations

from dataclasses import dataclass

from secretstore.crypto.curve import Point
from secretstore.types import Address, Hash256, ServerKeyId, SessionId
from secretstore.wire.codec import message


@dataclass(frozen=True, slots=True)
class CommonKeyData:
    """What every holder of a key stores alike: its author, threshold and public."""

    author: Address
    threshold: int
    public: Point


@dataclass(frozen=True, slots=True)
class KeyVersionsHeld:
    """What one node holds of a key: its common data and version hashes, oldest first, and
    which of those versions it keeps the commitments of (`proven`: their answers carry
    proofs).

    A node without the key reports `common` None and no versions. Sessions that embed the
    negotiation (decryption, signing) carry this in their own messages.
    """

    common: CommonKeyData | None
    versions: tuple[Hash256, ...]
    proven: tuple[Hash256, ...] = ()


@message(0x0700)
@dataclass(frozen=True, slots=True)
class RequestKeyVersions:
    """Master → node: which versions of `key_id` do you hold?"""

    session_id: SessionId
    key_id: ServerKeyId


@message(0x0701)
@dataclass(frozen=True, slots=True)
class KeyVersions:
    """Node → master: the versions of the key this node holds."""

    session_id: SessionId
    held: KeyVersionsHeld
