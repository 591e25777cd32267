"""The chain side of a contract-originated session: is the claimed request on the contract?

Every node that is asked to take part in a session started for a service contract's request
(sessions/origin.py), the master included, reads the request itself, at the block the master
named, before it contributes: the contract must be one this node serves for that API, the
block must be on this node's chain (it waits a little for a block it has not seen yet) and no
more than `max_age` blocks below its latest, and the contract's pending requests there must
hold exactly the claim (a generation: key id, author account and threshold; a shadow
retrieval's personal part: key id and requester public, with the common part done). The
pending requests read at one block are shared by every check of that block.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Callable
from typing import Final

from secretstore.chain.client import BlockUnknown, ChainClient, ContractCallFailed
from secretstore.chain.services.abi import ServiceApi
from secretstore.chain.services.contracts import ServiceCalls
from secretstore.chain.services.requests import (
    GenerationRequest,
    PersonalRetrievalRequest,
    ServiceRequest,
)
from secretstore.encoding import to_hex
from secretstore.errors import ChainUnavailable
from secretstore.sessions.origin import OriginClaim, OriginKind
from secretstore.types import Address, BlockRef

log = logging.getLogger(__name__)

#: How long a node waits for a named block its chain has not reached yet.
DEFAULT_PIN_WAIT: Final = 5.0
#: How many blocks' pending-request reads are kept.
CACHED_BLOCKS: Final = 32

_API: Final = {
    OriginKind.SERVER_KEY_GENERATION: ServiceApi.SERVER_KEY_GENERATION,
    OriginKind.DOCUMENT_KEY_PERSONAL_RETRIEVAL: ServiceApi.DOCUMENT_KEY_SHADOW_RETRIEVAL,
}


class ContractOrigins:
    """The OriginVerifier of a node with service contracts."""

    def __init__(
        self,
        client: ChainClient,
        calls: ServiceCalls,
        served: Callable[[ServiceApi], frozenset[Address]],
        *,
        max_age: int,
        pin_wait: float = DEFAULT_PIN_WAIT,
    ) -> None:
        """`served(api)`: the addresses of the contracts this node serves `api` for now."""
        self._client = client
        self._calls = calls
        self._served = served
        self._max_age = max_age
        self._pin_wait = pin_wait
        self._reads: OrderedDict[
            tuple[Address, ServiceApi, bytes], asyncio.Task[list[ServiceRequest]]
        ] = OrderedDict()

    async def verify(self, claim: OriginClaim) -> str | None:
        api = _API[claim.kind]
        origin = claim.origin
        if origin.contract not in self._served(api):
            return f"{to_hex(origin.contract)} is not a {api.value} service contract of this node"
        latest = self._client.require_trusted("the service contract")
        block = origin.block
        if block.number + self._max_age < latest.number:
            return (
                f"block {block} is {latest.number - block.number} blocks below this node's "
                f"latest {latest} (at most {self._max_age})"
            )
        try:
            pending = await self._pending(origin.contract, api, block)
        except BlockUnknown:
            return f"block {block} is not on this node's chain"
        except ContractCallFailed as exc:
            return f"its pending requests could not be read: {exc}"
        if not any(_matches(claim, request) for request in pending):
            return "it is not pending there"
        log.info("service request confirmed on the contract: %s", claim.describe())
        return None

    async def _pending(
        self, contract: Address, api: ServiceApi, block: BlockRef
    ) -> list[ServiceRequest]:
        await self._reach(block)
        key = (contract, api, bytes(block.hash))
        task = self._reads.get(key)
        if task is None or (task.done() and task.exception() is not None):
            task = asyncio.get_running_loop().create_task(self._read(contract, api, block))
            self._reads[key] = task
            while len(self._reads) > CACHED_BLOCKS:
                self._reads.popitem(last=False)
        return await asyncio.shield(task)

    async def _read(
        self, contract: Address, api: ServiceApi, block: BlockRef
    ) -> list[ServiceRequest]:
        found = await self._calls.pending(contract, api, block, required=False)
        return [request for request, _ in found]

    async def _reach(self, block: BlockRef) -> None:
        """Wait (a little) until this node's chain client has seen `block`'s height."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._pin_wait
        while loop.time() < deadline:
            head = self._client.head
            if head is not None and head.number >= block.number:
                return
            self._client.poll_soon()
            await asyncio.sleep(0.05)
        raise ChainUnavailable(f"block {block} did not reach this node within {self._pin_wait} s")


def _matches(claim: OriginClaim, request: ServiceRequest) -> bool:
    origin = claim.origin
    if request.key_id != claim.key_id:
        return False
    if claim.kind is OriginKind.SERVER_KEY_GENERATION:
        return (
            isinstance(request, GenerationRequest)
            and request.author == origin.requester
            and request.threshold == claim.threshold
        )
    return (
        isinstance(request, PersonalRetrievalRequest)
        and request.requester_public == origin.requester
    )
