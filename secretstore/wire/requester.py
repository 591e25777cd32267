"""How a node learns who asked: the requester proof and the bound signature that messages carry.

A `RequesterProof` is a tagged field: a kind and that kind's bytes. Every node that receives
one recovers the requester from it itself; no node takes a master's word for an address.
Two kinds: the requester's signature over the key id (HTTP requests), and a service request
(`ServiceOrigin`: a request a service contract holds, named by the contract and a block; every
node reads that request from the contract itself before it takes part, see
sessions/origin.py). A node that does not know a kind refuses the message as malformed (the
codec rejects the value).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Final

from secretstore.types import Address, BlockRef, Hash256

#: Length of a recoverable signature r‖s‖v (requester and bound signatures).
SIGNATURE_LENGTH: Final = 65


class ProofKind(enum.IntEnum):
    """What a RequesterProof's payload is."""

    #: the requester's 65-byte recoverable signature r‖s‖v over the 32-byte server key id
    #: (Parity's requester signature)
    REQUESTER_SIGNATURE = 0
    #: a request a service contract holds (`ServiceOrigin`): the contract's address (20),
    #: the block the request is read at (number, 8 bytes big-endian; hash, 32) and who asked
    #: as the contract says (a 20-byte account for a generation, the 64-byte public of a
    #: shadow retrieval's requester)
    SERVICE_REQUEST = 1


@dataclass(frozen=True, slots=True)
class RequesterProof:
    """Who asked, in a form every node checks itself (a field of a message, not a message).

    `payload` per kind: REQUESTER_SIGNATURE, the 65-byte signature over the key id;
    SERVICE_REQUEST, a `ServiceOrigin` (`ServiceOrigin.of(proof)`)."""

    kind: ProofKind
    payload: bytes

    def __post_init__(self) -> None:
        if self.kind == ProofKind.REQUESTER_SIGNATURE:
            check_signature_length(self.payload, "a requester signature")
        elif self.kind == ProofKind.SERVICE_REQUEST:
            ServiceOrigin.parse(self.payload)
        else:
            raise ValueError(f"unknown requester proof kind {self.kind!r}")

    @classmethod
    def signature(cls, signature: bytes) -> RequesterProof:
        """The proof of a requester that signed the key id (ValueError unless 65 bytes)."""
        return cls(ProofKind.REQUESTER_SIGNATURE, bytes(signature))


_ORIGIN_HEAD: Final = 20 + 8 + 32


@dataclass(frozen=True, slots=True)
class ServiceOrigin:
    """A session's request as a service contract holds it: the contract, the block whose state
    shows the request pending (every node reads it there itself), and the requester as the
    contract names it (`requester`: a 20-byte account, or a 64-byte public key)."""

    contract: Address
    block: BlockRef
    requester: bytes

    def __post_init__(self) -> None:
        if len(self.contract) != 20:
            raise ValueError(f"a contract address is 20 bytes, got {len(self.contract)}")
        if len(self.block.hash) != 32 or not 0 <= self.block.number < 1 << 64:
            raise ValueError("a service origin's block is a u64 number and a 32-byte hash")
        if len(self.requester) not in (20, 64):
            raise ValueError(
                f"a service request's requester is a 20-byte account or a 64-byte public, "
                f"got {len(self.requester)} bytes"
            )

    @classmethod
    def parse(cls, payload: bytes) -> ServiceOrigin:
        """The origin a SERVICE_REQUEST payload holds (ValueError for another layout)."""
        if len(payload) < _ORIGIN_HEAD:
            raise ValueError(f"a service request proof is too short ({len(payload)} bytes)")
        block = BlockRef(int.from_bytes(payload[20:28], "big"), Hash256(payload[28:60]))
        return cls(Address(payload[:20]), block, payload[_ORIGIN_HEAD:])

    @classmethod
    def of(cls, proof: RequesterProof) -> ServiceOrigin | None:
        """The origin of a SERVICE_REQUEST proof; None for another kind."""
        if proof.kind != ProofKind.SERVICE_REQUEST:
            return None
        return cls.parse(proof.payload)

    def to_proof(self) -> RequesterProof:
        payload = (
            self.contract + self.block.number.to_bytes(8, "big") + self.block.hash + self.requester
        )
        return RequesterProof(ProofKind.SERVICE_REQUEST, payload)


def check_signature_length(value: bytes, what: str) -> None:
    """ValueError unless `value` has the length of an r‖s‖v signature."""
    if len(value) != SIGNATURE_LENGTH:
        raise ValueError(f"{what} is {SIGNATURE_LENGTH} bytes r‖s‖v, got {len(value)}")


def check_bound_signature(value: bytes | None) -> None:
    """ValueError for a bound signature (when present) that is not 65 bytes."""
    if value is not None:
        check_signature_length(value, "a bound request signature")
