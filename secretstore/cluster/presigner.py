"""Keeps this node's ECDSA presignatures topped up for the keys it signs with, in the background.

After every ECDSA signing this node served as master (`KeyServer` calls `used`), the key is
queued; one background task runs presigning sessions (sessions/signing_presign.py) for the
queued keys, one at a time, until each has its pool's depth again. It yields to signings: a
presigning starts only once no signing has been served here for `idle` seconds (so a burst
of signings is served from the pool at full speed, and the pool is refilled after it; under
steady load the signings that find the pool empty run their own generations, which cost the
same). A presigning that fails (a
holder is away, keeps no pool, a node set change is running) ends the refill of that key
until its next signing; the failure is logged at debug level (the signing itself never
depends on it: without a presignature it runs its nonce generations).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any, Final, Protocol

from secretstore.errors import SecretStoreError
from secretstore.sessions.presign import PresignPool
from secretstore.sessions.signing_presign import Presign
from secretstore.types import ServerKeyId

log = logging.getLogger(__name__)

#: Seconds without a signing served here before a presigning starts.
IDLE: Final = 0.05


class SessionRunner(Protocol):
    async def request(self, request: Any) -> Any: ...


class Presigner:
    """The background refill of one node's presigning pool."""

    def __init__(self, runner: SessionRunner, pool: PresignPool, *, idle: float = IDLE) -> None:
        self._runner = runner
        self._pool = pool
        self.idle = idle
        self._last_use = 0.0
        self._queued: dict[ServerKeyId, None] = {}  # insertion-ordered set
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        #: presignatures made and presignings failed so far (for status and benchmarks)
        self.made = 0
        self.failed = 0

    def used(self, key_id: ServerKeyId) -> None:
        """A signing with `key_id` ran here: top its presignatures up (in the background)."""
        if self._closed or self._pool.depth == 0:
            return
        loop = asyncio.get_running_loop()
        self._last_use = loop.time()
        self._queued[key_id] = None
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._refill())

    @property
    def busy(self) -> bool:
        return self._task is not None and not self._task.done()

    async def _refill(self) -> None:
        while self._queued and not self._closed:
            key_id = next(iter(self._queued))
            del self._queued[key_id]
            while self._pool.missing(key_id) > 0 and not self._closed:
                await self._until_idle()
                try:
                    await self._runner.request(Presign(key_id))
                except SecretStoreError as exc:
                    self.failed += 1
                    log.debug("presigning key 0x%s failed: %s", key_id.hex(), exc)
                    break
                self.made += 1

    async def _until_idle(self) -> None:
        loop = asyncio.get_running_loop()
        while (wait := self._last_use + self.idle - loop.time()) > 0:
            await asyncio.sleep(wait)

    async def close(self) -> None:
        self._closed = True
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
