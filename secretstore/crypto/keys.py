"""Key pairs, addresses, recoverable signatures (r‖s‖v), requester recovery, servers-set hash."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from secretstore.crypto.curve import Point, Scalar
from secretstore.crypto.rng import Rng
from secretstore.types import Address, NodeId


@dataclass(frozen=True, slots=True)
class KeyPair:
    """A secp256k1 key pair. repr() hides the secret (Scalar does)."""

    secret: Scalar
    public: Point

    @classmethod
    def from_secret(cls, secret: Scalar) -> KeyPair:
        raise NotImplementedError

    @classmethod
    def generate(cls, rng: Rng) -> KeyPair:
        raise NotImplementedError

    @property
    def node_id(self) -> NodeId:
        raise NotImplementedError

    @property
    def address(self) -> Address:
        raise NotImplementedError


def address_of(public: Point) -> Address:
    """Last 20 bytes of keccak256(public64)."""
    raise NotImplementedError


def sign_recoverable(secret: Scalar, message_hash: bytes) -> bytes:
    """65 bytes r‖s‖v (v in {0,1}) over a 32-byte hash, no prefix; low-s, RFC 6979."""
    raise NotImplementedError


def recover_public(signature: bytes, message_hash: bytes) -> Point:
    """The signer's public key; v may be 0/1 or 27/28. Raises InvalidEncoding/InvalidSignature."""
    raise NotImplementedError


def verify_signature(public: Point, signature: bytes, message_hash: bytes) -> bool:
    raise NotImplementedError


def recover_requester(signature: bytes, server_key_id: bytes) -> Point:
    """The requester's public key from its signature over the 32-byte server key id itself."""
    raise NotImplementedError


def servers_set_hash(node_ids: Iterable[NodeId | Point]) -> bytes:
    """keccak256 of the 64-byte node ids concatenated in ascending byte order (a set)."""
    raise NotImplementedError
