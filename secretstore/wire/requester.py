"""How a node learns who asked: the requester proof and the bound signature that messages carry.

A `RequesterProof` is a tagged field: a kind and that kind's bytes. Every node that receives
one recovers the requester from it itself; no node takes a master's word for an address.
Only the requester's signature over the key id exists today; a later kind (e.g. a chain log
every node reads itself) gets a new `ProofKind` value and its own payload layout, and a node
that does not know a kind refuses the message as malformed (the codec rejects the value).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Final

#: Length of a recoverable signature r‖s‖v (requester and bound signatures).
SIGNATURE_LENGTH: Final = 65


class ProofKind(enum.IntEnum):
    """What a RequesterProof's payload is."""

    #: the requester's 65-byte recoverable signature r‖s‖v over the 32-byte server key id
    #: (Parity's requester signature)
    REQUESTER_SIGNATURE = 0


@dataclass(frozen=True, slots=True)
class RequesterProof:
    """Who asked, in a form every node checks itself (a field of a message, not a message).

    `payload` per kind: REQUESTER_SIGNATURE, the 65-byte signature over the key id."""

    kind: ProofKind
    payload: bytes

    def __post_init__(self) -> None:
        if self.kind == ProofKind.REQUESTER_SIGNATURE:
            check_signature_length(self.payload, "a requester signature")
        else:
            raise ValueError(f"unknown requester proof kind {self.kind!r}")

    @classmethod
    def signature(cls, signature: bytes) -> RequesterProof:
        """The proof of a requester that signed the key id (ValueError unless 65 bytes)."""
        return cls(ProofKind.REQUESTER_SIGNATURE, bytes(signature))


def check_signature_length(value: bytes, what: str) -> None:
    """ValueError unless `value` has the length of an r‖s‖v signature."""
    if len(value) != SIGNATURE_LENGTH:
        raise ValueError(f"{what} is {SIGNATURE_LENGTH} bytes r‖s‖v, got {len(value)}")


def check_bound_signature(value: bytes | None) -> None:
    """ValueError for a bound signature (when present) that is not 65 bytes."""
    if value is not None:
        check_signature_length(value, "a bound request signature")
