"""Sessions a service contract asked for: the claim every node checks before it takes part.

A session started for a contract's request carries its origin: a SERVICE_REQUEST requester
proof (wire/requester.py `ServiceOrigin`: the contract, the block at which the request is
pending, the requester as the contract names it). No node takes the master's word for it:
NodeCore holds every initialising message that carries one (`claim_of`: a generation's, a
decryption's, a delegated retrieval's), asks its driver to read the request from the contract
at that block (`CheckOrigin`: the contract must be one this node serves, and hold exactly this
request there), and creates the slave only once the answer is yes; otherwise it refuses the
master with ConsensusUnreachable (not confirmed here, perhaps not yet). When such a session
ends, NodeCore reports its outcome (`OriginOutcome`), so that every participant publishes its
own response on the contract. Pure.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from secretstore.errors import SecretStoreError
from secretstore.types import NodeId, ServerKeyId, SessionId
from secretstore.wire.decryption import DecryptionRequest
from secretstore.wire.delegation import DelegatedRequest
from secretstore.wire.generation import InitializeGeneration
from secretstore.wire.requester import ServiceOrigin


class OriginKind(enum.Enum):
    """Which contract request a session serves."""

    SERVER_KEY_GENERATION = "server key generation"
    DOCUMENT_KEY_PERSONAL_RETRIEVAL = "document key shadow retrieval (personal part)"


@dataclass(frozen=True, slots=True)
class OriginClaim:
    """What a session says the contract asked for: `kind` of request, of `key_id`, pending at
    `origin.block` on `origin.contract` for `origin.requester`; `threshold` for a generation."""

    kind: OriginKind
    origin: ServiceOrigin
    key_id: ServerKeyId
    threshold: int | None = None

    def describe(self) -> str:
        return (
            f"{self.kind.value} of key 0x{self.key_id.hex()} on contract "
            f"0x{self.origin.contract.hex()} at block {self.origin.block}"
        )


@dataclass(frozen=True, slots=True)
class CheckOrigin:
    """Read the claimed request from the contract; the answer comes back through
    `NodeCore.on_origin_checked` (a problem text, or None when the request is there)."""

    session_id: SessionId
    master: NodeId
    claim: OriginClaim


@dataclass(frozen=True, slots=True)
class OriginOutcome:
    """A session with an origin ended on this node: its result (None on a node with nothing
    to publish) or its error."""

    session_id: SessionId
    claim: OriginClaim
    result: object
    error: SecretStoreError | None


def claim_of(message: object) -> OriginClaim | None:
    """The origin claim of an initialising message, or None when it has none."""
    if isinstance(message, InitializeGeneration):
        origin = ServiceOrigin.of(message.author)
        if origin is None:
            return None
        return OriginClaim(
            OriginKind.SERVER_KEY_GENERATION, origin, message.key_id, message.threshold
        )
    if isinstance(message, DecryptionRequest | DelegatedRequest):
        origin = message.access.origin if isinstance(message, DecryptionRequest) else message.origin
        if origin is None:
            return None
        return OriginClaim(OriginKind.DOCUMENT_KEY_PERSONAL_RETRIEVAL, origin, message.key_id)
    return None
