"""Messages of document key storing (codes 0x0200–0x02ff)."""

from __future__ import annotations

from dataclasses import dataclass

from secretstore.crypto.curve import Point
from secretstore.types import ServerKeyId, SessionId
from secretstore.wire.codec import message
from secretstore.wire.requester import RequesterProof, check_bound_signature


@message(0x0200)
@dataclass(frozen=True, slots=True)
class InitializeEncryption:
    """Master → every node holding the key: store this encrypted document key with server
    key `key_id` for the requester that `requester` proves (who must be the key's author;
    every holder recovers it itself). `bound_signature`: the requester's signature over this
    very store (crypto/bound.py), or None for Parity's form (the key id signature only)."""

    session_id: SessionId
    key_id: ServerKeyId
    requester: RequesterProof
    common_point: Point
    encrypted_point: Point
    bound_signature: bytes | None

    def __post_init__(self) -> None:
        check_bound_signature(self.bound_signature)


@message(0x0201)
@dataclass(frozen=True, slots=True)
class ConfirmEncryption:
    """Node → master: checked (author, nothing stored yet); ready to store on commit."""

    session_id: SessionId


@message(0x0202)
@dataclass(frozen=True, slots=True)
class CommitEncryption:
    """Master → every holder: every holder is ready; store the document key now."""

    session_id: SessionId


@message(0x0203)
@dataclass(frozen=True, slots=True)
class EncryptionStored:
    """Node → master: the document key is stored with this node's share."""

    session_id: SessionId
