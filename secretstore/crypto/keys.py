"""Key pairs, addresses, recoverable signatures (r‖s‖v), requester recovery, servers-set hash."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from coincurve import PublicKey
from coincurve._libsecp256k1 import ffi, lib
from coincurve.context import GLOBAL_CONTEXT

from secretstore.crypto.curve import Point, Scalar
from secretstore.crypto.hashing import keccak256
from secretstore.crypto.rng import Rng, random_scalar
from secretstore.errors import InvalidEncoding, InvalidSignature
from secretstore.types import Address, NodeId

#: Length of a recoverable signature r‖s‖v.
SIGNATURE_LENGTH = 65
#: Length of the hash a signature covers (no hashing or prefix is applied to it).
HASH_LENGTH = 32

# v as clients send it: 0/1 (Parity's raw form) or 27/28 (the "Electrum" form).
_RECOVERY_IDS = {0: 0, 1: 1, 27: 0, 28: 1}


@dataclass(frozen=True, slots=True)
class KeyPair:
    """A secp256k1 key pair. repr() hides the secret (Scalar does)."""

    secret: Scalar
    public: Point

    @classmethod
    def from_secret(cls, secret: Scalar) -> KeyPair:
        """The pair of a nonzero secret; raises InvalidScalar for zero."""
        secret.require_nonzero("secret")
        return cls(secret, Point.base_mul(secret))

    @classmethod
    def generate(cls, rng: Rng) -> KeyPair:
        return cls.from_secret(random_scalar(rng))

    @property
    def node_id(self) -> NodeId:
        return NodeId(self.public.to_bytes())

    @property
    def address(self) -> Address:
        return address_of(self.public)


def address_of(public: Point) -> Address:
    """Last 20 bytes of keccak256(public64)."""
    return Address(keccak256(public.to_bytes())[12:])


def _check_hash(message_hash: bytes) -> None:
    if len(message_hash) != HASH_LENGTH:
        raise InvalidEncoding(f"a message hash is {HASH_LENGTH} bytes, got {len(message_hash)}")


def _parse_signature(signature: bytes) -> tuple[bytes, int]:
    """(r‖s, recovery id 0/1) of a 65-byte signature; raises InvalidEncoding/InvalidSignature."""
    if len(signature) != SIGNATURE_LENGTH:
        raise InvalidEncoding(
            f"a signature is {SIGNATURE_LENGTH} bytes r‖s‖v, got {len(signature)}"
        )
    recovery_id = _RECOVERY_IDS.get(signature[64])
    if recovery_id is None:
        raise InvalidSignature(f"signature v must be 0, 1, 27 or 28, got {signature[64]}")
    return bytes(signature[:64]), recovery_id


def _recoverable_signature(compact: bytes, recovery_id: int) -> object:
    """libsecp256k1's parsed recoverable signature; r or s out of range raises InvalidSignature."""
    parsed = ffi.new("secp256k1_ecdsa_recoverable_signature *")
    ok = lib.secp256k1_ecdsa_recoverable_signature_parse_compact(
        GLOBAL_CONTEXT.ctx, parsed, compact, recovery_id
    )
    if not ok:
        raise InvalidSignature("signature r or s is not below the curve order")
    return parsed


def sign_recoverable(secret: Scalar, message_hash: bytes) -> bytes:
    """65 bytes r‖s‖v (v in {0,1}) over a 32-byte hash, no prefix; low-s, RFC 6979."""
    _check_hash(message_hash)
    secret.require_nonzero("signing secret")
    # libsecp256k1 directly: coincurve's PrivateKey would derive two public keys first.
    signature = ffi.new("secp256k1_ecdsa_recoverable_signature *")
    ok = lib.secp256k1_ecdsa_sign_recoverable(
        GLOBAL_CONTEXT.ctx, signature, bytes(message_hash), secret.to_bytes(), ffi.NULL, ffi.NULL
    )
    if not ok:  # pragma: no cover - only for a secret outside [1, n-1], excluded above
        raise InvalidSignature("signing failed")
    compact = ffi.new("unsigned char[64]")
    recovery_id = ffi.new("int *")
    lib.secp256k1_ecdsa_recoverable_signature_serialize_compact(
        GLOBAL_CONTEXT.ctx, compact, recovery_id, signature
    )
    return bytes(ffi.buffer(compact, 64)) + bytes((recovery_id[0],))


def recover_public(signature: bytes, message_hash: bytes) -> Point:
    """The signer's public key; v may be 0/1 or 27/28. Raises InvalidEncoding/InvalidSignature.

    Wrong lengths raise InvalidEncoding; a bad v, r or s out of range, or a signature from which
    no key can be recovered raise InvalidSignature. Any 32-byte hash is accepted, zero included.
    """
    compact, recovery_id = _parse_signature(signature)
    _check_hash(message_hash)
    parsed = _recoverable_signature(compact, recovery_id)
    recovered = ffi.new("secp256k1_pubkey *")
    if not lib.secp256k1_ecdsa_recover(GLOBAL_CONTEXT.ctx, recovered, parsed, bytes(message_hash)):
        raise InvalidSignature("no public key recovers from this signature")
    return Point._from_pk(PublicKey(recovered))


def verify_signature(public: Point, signature: bytes, message_hash: bytes) -> bool:
    """Whether `signature` is a valid low-s ECDSA signature of the hash by `public`.

    As Parity's `verify_public`, v only has to be well-formed (0/1/27/28) and is not checked
    against the key. Wrong lengths raise InvalidEncoding; anything else that does not verify,
    including a malformed v, r or s, gives False.
    """
    if len(signature) != SIGNATURE_LENGTH:
        raise InvalidEncoding(
            f"a signature is {SIGNATURE_LENGTH} bytes r‖s‖v, got {len(signature)}"
        )
    _check_hash(message_hash)
    try:
        compact, recovery_id = _parse_signature(signature)
        parsed = _recoverable_signature(compact, recovery_id)
    except InvalidSignature:
        return False
    standard = ffi.new("secp256k1_ecdsa_signature *")
    lib.secp256k1_ecdsa_recoverable_signature_convert(GLOBAL_CONTEXT.ctx, standard, parsed)
    verified = lib.secp256k1_ecdsa_verify(
        GLOBAL_CONTEXT.ctx, standard, bytes(message_hash), public.public_key().public_key
    )
    return bool(verified)


def recover_requester(signature: bytes, server_key_id: bytes) -> Point:
    """The requester's public key from its signature over the 32-byte server key id itself."""
    if len(server_key_id) != HASH_LENGTH:
        raise InvalidEncoding(f"a server key id is {HASH_LENGTH} bytes, got {len(server_key_id)}")
    return recover_public(signature, server_key_id)


def servers_set_hash(node_ids: Iterable[NodeId | Point]) -> bytes:
    """keccak256 of the 64-byte node ids concatenated in ascending byte order (a set)."""
    unique: set[bytes] = set()
    for node in node_ids:
        raw = node.to_bytes() if isinstance(node, Point) else bytes(node)
        if len(raw) != 64:
            raise InvalidEncoding(f"a node id is 64 bytes, got {len(raw)}")
        unique.add(raw)
    return keccak256(b"".join(sorted(unique)))
