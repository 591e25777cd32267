"""Messages of server key generation (codes 0x0100–0x010f)."""

from __future__ import annotations

from dataclasses import dataclass

from secretstore.crypto.curve import Point, Scalar
from secretstore.types import Hash256, NodeId, ServerKeyId, SessionId
from secretstore.wire.codec import AnyMessage, message
from secretstore.wire.requester import RequesterProof


@dataclass(frozen=True, slots=True)
class NodeIdNumber:
    """A participant and its id number (the x at which it holds the key's polynomial)."""

    node: NodeId
    id_number: Scalar


@message(0x0100)
@dataclass(frozen=True, slots=True)
class InitializeGeneration:
    """Master → every node: generate `key_id` with `threshold` among `id_numbers` (every
    configured node, ascending node id) for the author that `author` proves (every node
    recovers the author itself and records that one)."""

    session_id: SessionId
    key_id: ServerKeyId
    author: RequesterProof
    threshold: int
    id_numbers: tuple[NodeIdNumber, ...]
    #: the requester's optional signature over this generation with this threshold
    #: (crypto/bound.py), checked by every node itself
    bound_signature: bytes | None = None


@message(0x0101)
@dataclass(frozen=True, slots=True)
class ConfirmGenerationInitialization:
    """Node → master: ready to generate (`key_exists` False), or refusing because this node
    holds a key with this id already (`key_exists` True; the node's part then ends)."""

    session_id: SessionId
    key_exists: bool


@message(0x0102)
@dataclass(frozen=True, slots=True)
class StartKeysDissemination:
    """Master → every node: every node confirmed; deal the DKG keys now."""

    session_id: SessionId


@message(0x0103)
@dataclass(frozen=True, slots=True)
class GenerationDkg:
    """Node → node: one message of the embedded DKG run (wire/dkg.py), with the sender's
    `context`: the digest of the key id, author, threshold and id numbers it generates for
    (sessions/generation.py `generation_context`). A receiver whose own context differs
    fails the session: the master told the two nodes different things."""

    session_id: SessionId
    context: Hash256
    message: AnyMessage


@message(0x0104)
@dataclass(frozen=True, slots=True)
class GenerationKeyReady:
    """Node → master: this node's DKG ended well with server key public `public`; it stores
    its share when the master commits."""

    session_id: SessionId
    public: Point


@message(0x0105)
@dataclass(frozen=True, slots=True)
class CommitGeneration:
    """Master → every node: every node is ready with the same public; store your share."""

    session_id: SessionId


@message(0x0106)
@dataclass(frozen=True, slots=True)
class GenerationKeyStored:
    """Node → master: this node stored its share of the key."""

    session_id: SessionId
