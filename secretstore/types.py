"""Typed ids shared by every layer (pure: no I/O)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import NewType

#: A node's 64-byte public key `x‖y` (Parity's NodeId).
NodeId = NewType("NodeId", bytes)
#: A 32-byte server key id (also the document id).
ServerKeyId = NewType("ServerKeyId", bytes)
#: A 20-byte Ethereum address.
Address = NewType("Address", bytes)
#: A 32-byte message hash to be signed.
MessageHash = NewType("MessageHash", bytes)
#: A 32-byte session id.
SessionId = NewType("SessionId", bytes)
#: A 32-byte hash carried between nodes (key version hashes, commitment footprints).
Hash256 = NewType("Hash256", bytes)


@dataclass(frozen=True, slots=True)
class BlockRef:
    """One block of a chain: its number and its 32-byte hash (together they name one chain
    state, even across reorganisations)."""

    number: int
    hash: Hash256

    def __str__(self) -> str:
        return f"#{self.number} ({self.hash[:4].hex()}…)"
