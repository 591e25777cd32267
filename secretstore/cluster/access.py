"""The access-policy port: may this requester use this key? (ACL contract or "none").

A master pins the chain state its session decides at (`pin`, None without a chain); every node
of the access consensus then answers `check` at that block, so all of them read the same state.
A policy that can answer without waiting (no I/O: "none", a cached answer) says so in `known`,
and the driver then feeds the answer back in the same turn of the event loop.
"""

from __future__ import annotations

from typing import Protocol

from secretstore.types import Address, BlockRef, ServerKeyId


class AccessPolicy(Protocol):
    """Answers the consensus step's question on this node."""

    def pin(self) -> BlockRef | None:
        """The block a session this node masters decides at (None: no chain). Raises
        ChainUnavailable when the chain cannot be trusted now."""
        ...

    async def check(
        self, requester: Address, key_id: ServerKeyId, block: BlockRef | None = None
    ) -> bool:
        """True if `requester` may use `key_id`, decided at `block` (the latest when None).
        Raises (a SecretStoreError) when it cannot decide there: the session ends."""
        ...

    def known(
        self, requester: Address, key_id: ServerKeyId, block: BlockRef | None = None
    ) -> bool | None:
        """`check`'s answer when it is known without waiting for anything, else None (then
        `check` is awaited). Never raises."""
        ...


class AllowAll:
    """`acl_contract = "none"`: everyone may use every key (Parity's testing mode)."""

    def pin(self) -> BlockRef | None:
        return None

    async def check(
        self, requester: Address, key_id: ServerKeyId, block: BlockRef | None = None
    ) -> bool:
        return True

    def known(
        self, requester: Address, key_id: ServerKeyId, block: BlockRef | None = None
    ) -> bool | None:
        return True
