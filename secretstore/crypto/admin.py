"""What the administrator signs beyond Parity's servers set hashes: a refresh grant (pure).

A proactive refresh started by an administrator (`POST /admin/refresh/{expires}/{signature}`,
docs/LIFECYCLE.md) carries the administrator's recoverable signature (r‖s‖v, no prefix) over

    keccak256(REFRESH_DOMAIN ‖ servers_set_hash(cluster) ‖ expires ‖ keys_digest)

- `REFRESH_DOMAIN`: the 28 ASCII bytes ``secretstore:admin-refresh:v1`` and 4 zero bytes, so
  the digest is never the hash of a node set or of anything else signed here;
- `servers_set_hash(cluster)`: Parity's set hash of every node of the cluster the master
  runs the refresh on (itself and every node it is connected to): a grant for one cluster is
  no use on another;
- `expires`: a unix time in seconds, 8 bytes big-endian, after which no node accepts it (a
  recorded grant can be replayed only until then; a replay re-randomises the shares again,
  which is harmless);
- `keys_digest`: 32 zero bytes for every key, else keccak256 of the listed key ids, sorted
  and without repeats, concatenated.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

from secretstore.crypto.curve import Point, Scalar
from secretstore.crypto.hashing import keccak256
from secretstore.crypto.keys import recover_public, servers_set_hash, sign_recoverable
from secretstore.errors import CryptoError, InvalidEncoding
from secretstore.types import NodeId

#: The domain tag that opens every refresh grant digest (32 bytes).
REFRESH_DOMAIN: Final = b"secretstore:admin-refresh:v1".ljust(32, b"\x00")
#: The keys digest of a grant for every key.
ALL_KEYS: Final = bytes(32)
#: The largest `expires` (the u64 it is written as).
MAX_EXPIRES: Final = 2**64 - 1


def keys_digest(key_ids: Iterable[bytes] | None) -> bytes:
    """ALL_KEYS for None, else keccak256 of the sorted, distinct 32-byte key ids (at least
    one; InvalidEncoding otherwise)."""
    if key_ids is None:
        return ALL_KEYS
    unique = {bytes(key) for key in key_ids}
    if not unique:
        raise InvalidEncoding("a refresh of listed keys lists at least one key")
    if any(len(key) != 32 for key in unique):
        raise InvalidEncoding("a server key id is 32 bytes")
    return keccak256(b"".join(sorted(unique)))


def refresh_digest(cluster: Iterable[NodeId | Point], expires: int, keys: bytes) -> bytes:
    """The 32-byte digest of a refresh grant (see the module docstring)."""
    if isinstance(expires, bool) or not isinstance(expires, int) or not 0 <= expires <= MAX_EXPIRES:
        raise InvalidEncoding(f"expires is a unix time in seconds, got {expires!r}")
    if len(keys) != 32:
        raise InvalidEncoding(f"a keys digest is 32 bytes, got {len(keys)}")
    return keccak256(
        REFRESH_DOMAIN + servers_set_hash(cluster) + expires.to_bytes(8, "big") + bytes(keys)
    )


def sign_refresh(
    secret: Scalar, cluster: Iterable[NodeId | Point], expires: int, keys: bytes
) -> bytes:
    """The administrator's grant signature (65 bytes r‖s‖v)."""
    return sign_recoverable(secret, refresh_digest(cluster, expires, keys))


def refresh_signer(
    signature: bytes, cluster: Iterable[NodeId | Point], expires: int, keys: bytes
) -> Point | None:
    """The key that signed this grant, or None for a signature that recovers none."""
    try:
        return recover_public(signature, refresh_digest(cluster, expires, keys))
    except CryptoError:
        return None
