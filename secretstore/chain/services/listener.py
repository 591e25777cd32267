"""The service listener of one node: per block, the new requests; now and then, the pending.

On every block (while the chain is trusted and this node is in the key server set):
1. every service contract's address is looked up again (registry);
2. its request logs are read from the block after its cursor (the last block whose requests
   were handled, in the node's database: cursor.py) to the confirmed block (latest −
   `confirmations`); each request is handled in a task of its own (handlers.py), at most
   `concurrency` at once; a request already being handled is not started twice;
3. once every request of a block range has been handled (answered, or failed and left to the
   retry), the cursor moves to its last block, durably; so a node restarted later reads on
   from there and misses nothing (Parity read only from its start);
4. every `retry_interval` blocks (and at once for a contract without a cursor) every pending
   request of every contract is read at the confirmed block, and those that still need this
   node's answer and were not handled within the last interval are handled again.

Nothing is answered twice: before every transaction the contract is asked (at the latest
block) whether this node's answer is still required (contracts.py).
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Final

from secretstore.chain.client import ChainClient
from secretstore.chain.services.contracts import ServiceCalls, ServiceContract, describe_request
from secretstore.chain.services.cursor import CursorStore
from secretstore.chain.services.handlers import ServiceHandlers
from secretstore.chain.services.requests import (
    CommonRetrievalRequest,
    PersonalRetrievalRequest,
    ServiceRequest,
)
from secretstore.encoding import to_hex
from secretstore.errors import ChainUnavailable, SecretStoreError
from secretstore.types import Address, BlockRef

log = logging.getLogger(__name__)

#: Requests handled at once.
DEFAULT_CONCURRENCY: Final = 32
#: The most blocks whose logs are read in one go (a node far behind catches up block by block).
MAX_LOG_RANGE: Final = 2000


@dataclass
class _Range:
    """The requests of one contract's block range, and the block its cursor moves to."""

    to: BlockRef
    tasks: set[asyncio.Task[None]] = field(default_factory=set)


class ServiceListener:
    """Reads every configured service contract and has its requests handled."""

    def __init__(
        self,
        client: ChainClient,
        contracts: Sequence[ServiceContract],
        calls: ServiceCalls,
        handlers: ServiceHandlers,
        cursors: CursorStore,
        *,
        isolated: Callable[[], bool],
        confirmations: int,
        retry_interval: int,
        concurrency: int = DEFAULT_CONCURRENCY,
    ) -> None:
        self._client = client
        self._contracts = list(contracts)
        self._calls = calls
        self._handlers = handlers
        self._cursors = cursors
        self._isolated = isolated
        self._confirmations = confirmations
        self._retry_interval = retry_interval
        self._slots = asyncio.Semaphore(concurrency)
        #: the block each contract's logs were read to (in memory: ahead of the cursor)
        self._read_to: dict[Address, int] = {}
        self._ranges: dict[Address, deque[_Range]] = {}
        self._inflight: dict[tuple[object, ...], asyncio.Task[None]] = {}
        self._handled_at: dict[tuple[object, ...], int] = {}
        self._retry_due: set[Address] = set()
        self._last_retry: int | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._stopped = False

    # --- per block ---------------------------------------------------------------------------
    async def on_block(self, head: BlockRef) -> None:
        for contract in self._contracts:
            await contract.address.refresh(head)
        if self._stopped or self._isolated():
            return
        confirmed_number = head.number - self._confirmations
        if confirmed_number < 0:
            return
        block_hash = await self._client.block_hash(confirmed_number)
        if block_hash is None:
            return
        confirmed = BlockRef(confirmed_number, block_hash)
        for contract in self._contracts:
            address = contract.address.address
            if address is not None:
                await self._read_logs(contract, address, confirmed)
        if self._last_retry is None:
            self._last_retry = head.number  # the first block: contracts without a cursor only
        elif head.number - self._last_retry >= self._retry_interval:
            self._last_retry = head.number
            self._retry_due.update(c.address.address for c in self._contracts if c.address.address)
        for contract in self._contracts:
            address = contract.address.address
            if address is not None and address in self._retry_due:
                self._retry_due.discard(address)
                await self._retry(contract, address, confirmed, head.number)

    async def _read_logs(
        self, contract: ServiceContract, address: Address, confirmed: BlockRef
    ) -> None:
        start = await self._start_of(address, confirmed)
        if start > confirmed.number:
            return
        end = min(confirmed.number, start + MAX_LOG_RANGE - 1)
        to = confirmed if end == confirmed.number else await self._block(end)
        if to is None:
            return
        requests = await self._calls.requests_in(address, contract.apis, start, end)
        self._read_to[address] = end
        # a personal part asked for means the common part is done: answer only the former
        personal = {r.identity for r in requests if isinstance(r, PersonalRetrievalRequest)}
        requests = [
            r
            for r in requests
            if not (isinstance(r, CommonRetrievalRequest) and r.identity in personal)
        ]
        if requests:
            log.info(
                "%s: %d request(s) in blocks #%d..#%d",
                contract.describe(),
                len(requests),
                start,
                end,
            )
        block_range = _Range(to)
        self._ranges.setdefault(address, deque()).append(block_range)
        for request in requests:
            task = self._launch(request, to, "log", to.number)
            if task is not None:
                block_range.tasks.add(task)
        self._advance(address)

    async def _start_of(self, address: Address, confirmed: BlockRef) -> int:
        """The first block whose logs are still to be read for `address`."""
        known = self._read_to.get(address)
        if known is not None:
            return known + 1
        cursor = self._cursors.get(address)
        if cursor is None:
            log.info(
                "service contract %s: no cursor yet; reading its logs from the confirmed block "
                "#%d and its pending requests now",
                to_hex(address),
                confirmed.number,
            )
            self._retry_due.add(address)
            return confirmed.number
        if await self._client.block_hash(cursor.number) != cursor.hash:
            rewind = max(0, cursor.number - self._confirmations)
            log.warning(
                "service contract %s: the cursor's block %s left the chain; reading again from #%d",
                to_hex(address),
                cursor,
                rewind,
            )
            return rewind
        log.info("service contract %s: resuming its logs after block %s", to_hex(address), cursor)
        return cursor.number + 1

    async def _block(self, number: int) -> BlockRef | None:
        block_hash = await self._client.block_hash(number)
        return None if block_hash is None else BlockRef(number, block_hash)

    async def _retry(
        self, contract: ServiceContract, address: Address, confirmed: BlockRef, now: int
    ) -> None:
        started = 0
        for api in sorted(contract.apis, key=lambda a: a.value):
            try:
                pending = await self._calls.pending(address, api, confirmed)
            except SecretStoreError as exc:
                if isinstance(exc, ChainUnavailable):
                    raise
                log.warning(
                    "%s: pending %s requests unreadable: %s", contract.describe(), api.value, exc
                )
                continue
            for request, required in pending:
                last = self._handled_at.get(request.identity)
                if not required or (last is not None and now - last < self._retry_interval):
                    continue
                if self._launch(request, confirmed, "retry", now) is not None:
                    started += 1
        if started:
            log.info("%s: retrying %d pending request(s)", contract.describe(), started)

    # --- handling ------------------------------------------------------------------------------
    def _launch(
        self, request: ServiceRequest, pin: BlockRef, why: str, now: int
    ) -> asyncio.Task[None] | None:
        identity = request.identity
        if identity in self._inflight:
            return None
        self._handled_at[identity] = now
        task = asyncio.get_running_loop().create_task(self._handle(request, pin, why))
        self._inflight[identity] = task
        self._tasks.add(task)

        def done(finished: asyncio.Task[None]) -> None:
            self._tasks.discard(finished)
            if self._inflight.get(identity) is finished:
                del self._inflight[identity]
            for address in list(self._ranges):
                self._advance(address)

        task.add_done_callback(done)
        return task

    async def _handle(self, request: ServiceRequest, pin: BlockRef, why: str) -> None:
        async with self._slots:
            try:
                await self._handlers.handle(request, pin)
            except asyncio.CancelledError:
                raise
            except SecretStoreError as exc:
                log.warning(
                    "%s (%s) failed: %s; tried again within %d blocks",
                    describe_request(request),
                    why,
                    exc,
                    self._retry_interval,
                )
            except Exception:
                log.exception("%s (%s) failed", describe_request(request), why)

    def _advance(self, address: Address) -> None:
        """Move the cursor over every finished block range, durably."""
        ranges = self._ranges.get(address)
        moved: BlockRef | None = None
        while ranges and all(task.done() for task in ranges[0].tasks):
            moved = ranges.popleft().to
        if moved is None or self._stopped:
            return
        try:
            self._cursors.put(address, moved)
        except SecretStoreError as exc:
            log.error(
                "service contract %s: the cursor could not be written: %s", to_hex(address), exc
            )

    async def stop(self) -> None:
        """Stop handling: requests under way are cancelled (the cursor stays before them)."""
        self._stopped = True
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._handlers.stop()
