"""Messages of the access consensus that decryption and signing sessions embed (0x0300–0x03ff).

The request itself is not a message of its own: each session that runs a consensus puts an
`AccessRequest` into its own initialising message, so that the receiving node knows which
kind of session to create. The answer and the end notice are common to every such session.
"""

from __future__ import annotations

from dataclasses import dataclass

from secretstore.types import BlockRef, SessionId
from secretstore.wire.codec import message
from secretstore.wire.requester import ServiceOrigin, check_bound_signature

#: Length of a requester signature r‖s‖v.
REQUESTER_SIGNATURE_LENGTH = 65
#: Length of a key version hash.
VERSION_HASH_LENGTH = 32


@dataclass(frozen=True, slots=True)
class AccessRequest:
    """What a candidate node needs to decide on access itself (a field of an initialising
    message, not a message of its own).

    `requester_signature`: the requester's signature over the server key id, exactly as the
    requester gave it to the master; every node recovers the requester from it, none trusts
    the master's word. `version`: the hash of the key version the session will use.
    `bound_signature`: the requester's signature over the whole request (crypto/bound.py;
    signing checks it), or None for Parity's form.
    `block`: the chain block (number and hash) the master pinned for the session's access
    decisions; every node decides at that block or refuses (None: no chain ACL on the master).
    `origin`: for a service contract's request, where it is (the contract, the block it is
    read at, the requester's public); every node reads the request there itself before it
    answers (sessions/origin.py). `requester_signature` is then empty.
    """

    requester_signature: bytes
    version: bytes
    bound_signature: bytes | None = None
    block: BlockRef | None = None
    origin: ServiceOrigin | None = None

    def __post_init__(self) -> None:
        if self.origin is not None:
            if self.requester_signature:
                raise ValueError("a service request carries no requester signature")
        elif len(self.requester_signature) != REQUESTER_SIGNATURE_LENGTH:
            raise ValueError(
                f"a requester signature is {REQUESTER_SIGNATURE_LENGTH} bytes, "
                f"got {len(self.requester_signature)}"
            )
        if len(self.version) != VERSION_HASH_LENGTH:
            raise ValueError(
                f"a key version hash is {VERSION_HASH_LENGTH} bytes, got {len(self.version)}"
            )
        check_bound_signature(self.bound_signature)


@message(0x0300)
@dataclass(frozen=True, slots=True)
class ConsensusResponse:
    """A candidate's answer to the access request: whether its access policy lets the
    requester use the key. A node that cannot take part at all (no share of the version, a
    signature that does not recover) answers with a `SessionError` instead."""

    session_id: SessionId
    allowed: bool


@message(0x0301)
@dataclass(frozen=True, slots=True)
class ConsensusCompleted:
    """Master -> every candidate still taking part: the session is over, forget it."""

    session_id: SessionId
