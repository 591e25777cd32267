"""The access policy of a permissioning contract: `checkPermissions(requester, key id)`.

Each node of an access consensus asks the contract itself (as Parity's nodes did), never
trusting the master's answer. Beyond Parity, the decision is pinned: the session's master
takes its latest trusted block (`pin`), sends it with the access request, and every node calls
the contract at exactly that block (EIP-1898, by hash, canonical only). A node whose chain does
not have that block waits for it a little (its client may lag), then refuses; so all nodes
answer from the same chain state, and a grant or revoke counts from the first session pinned
at or after the block that mined it. A pin more than `max_age` blocks below this node's latest
block is refused too: a lying master cannot pick an old block to undo a revoke (a revoke binds
such a master `max_age` blocks after it was mined). Every decision is logged with its block.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Final

from secretstore.chain.abi import CHECK_PERMISSIONS
from secretstore.chain.client import BlockUnknown, ChainClient, ContractCallFailed
from secretstore.chain.registry import ContractAddress
from secretstore.encoding import to_hex
from secretstore.errors import ChainUnavailable, SecretStoreError
from secretstore.types import Address, BlockRef, ServerKeyId

log = logging.getLogger(__name__)

#: How long a node waits for a pinned block its chain has not reached yet.
DEFAULT_PIN_WAIT: Final = 5.0
#: How far below this node's latest block a pinned block may be.
DEFAULT_PIN_MAX_AGE: Final = 4


class AccessCheckFailed(SecretStoreError):
    """The permissioning contract could not answer (not set, reverted, block not here)."""


class ContractAccessPolicy:
    """AccessPolicy over the permissioning contract `contract` on `client`'s chain."""

    def __init__(
        self,
        client: ChainClient,
        contract: ContractAddress,
        *,
        pin_wait: float = DEFAULT_PIN_WAIT,
        max_age: int = DEFAULT_PIN_MAX_AGE,
    ) -> None:
        self._client = client
        self._contract = contract
        self._pin_wait = pin_wait
        self._max_age = max_age

    def pin(self) -> BlockRef | None:
        """This node's latest trusted block; ChainUnavailable while the chain is not trusted."""
        return self._client.require_trusted("the permissioning contract")

    def known(
        self, requester: Address, key_id: ServerKeyId, block: BlockRef | None = None
    ) -> bool | None:
        """Never known without asking the chain."""
        return None

    async def check(
        self, requester: Address, key_id: ServerKeyId, block: BlockRef | None = None
    ) -> bool:
        latest = self._client.require_trusted("the permissioning contract")
        if block is None:  # a master without a chain ACL pinned nothing: decide at the latest
            block = latest
        elif block.number + self._max_age < latest.number:
            raise AccessCheckFailed(
                f"the pinned block {block} is {latest.number - block.number} blocks below this "
                f"node's latest {latest} (at most {self._max_age}): refused"
            )
        address = self._contract.address
        if address is None:
            raise AccessCheckFailed(
                f"no permissioning contract: {self._contract.describe()} is not set"
            )
        allowed = await self._call(address, requester, key_id, block)
        log.info(
            "access %s for %s to key %s at block %s (contract %s)",
            "allowed" if allowed else "denied",
            to_hex(requester),
            to_hex(key_id),
            block,
            to_hex(address),
        )
        return allowed

    async def _call(
        self, address: Address, requester: Address, key_id: ServerKeyId, block: BlockRef
    ) -> bool:
        try:
            return await self._checked(address, requester, key_id, block)
        except BlockUnknown:
            pass
        # The master may be ahead of this node's chain client: wait for the block, once.
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._pin_wait
        while loop.time() < deadline:
            head = self._client.head
            if head is not None and head.number >= block.number:
                break
            self._client.poll_soon()
            await asyncio.sleep(0.05)
        try:
            return await self._checked(address, requester, key_id, block)
        except BlockUnknown as exc:
            log.warning(
                "access for %s to key %s refused: %s", to_hex(requester), to_hex(key_id), exc
            )
            raise AccessCheckFailed(
                f"cannot decide at the pinned block {block}: it is not on this node's chain"
            ) from None

    async def _checked(
        self, address: Address, requester: Address, key_id: ServerKeyId, block: BlockRef
    ) -> bool:
        try:
            result = await self._client.call(
                address, CHECK_PERMISSIONS, requester, key_id, block=block
            )
        except ContractCallFailed as exc:
            raise AccessCheckFailed(str(exc)) from None
        except ChainUnavailable:
            raise
        return bool(result)
