"""Messages of document key storing (codes 0x0200–0x02ff)."""

from __future__ import annotations

from dataclasses import dataclass

from secretstore.crypto.curve import Point
from secretstore.types import Address, ServerKeyId, SessionId
from secretstore.wire.codec import message


@message(0x0200)
@dataclass(frozen=True, slots=True)
class InitializeEncryption:
    """Master → every node holding the key: store this encrypted document key with server
    key `key_id`, on behalf of `requester` (who must be the key's author)."""

    session_id: SessionId
    key_id: ServerKeyId
    requester: Address
    common_point: Point
    encrypted_point: Point


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
