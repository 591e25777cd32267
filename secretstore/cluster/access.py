"""The access-policy port: may this requester use this key? (ACL contract or "none")."""

from __future__ import annotations

from typing import Protocol

from secretstore.types import Address, ServerKeyId


class AccessPolicy(Protocol):
    """Answers the consensus step's question on this node."""

    async def check(self, requester: Address, key_id: ServerKeyId) -> bool: ...


class AllowAll:
    """`acl_contract = "none"`: everyone may use every key (Parity's testing mode)."""

    async def check(self, requester: Address, key_id: ServerKeyId) -> bool:
        return True
