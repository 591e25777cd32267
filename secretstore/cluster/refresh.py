"""Refreshing every key in batches, and the schedule that does it (the async side of refresh).

A refresh of every key runs one refresh session per batch of at most `batch_size` keys
(sessions/admin/refresh.py): each batch starts above the last key of the one before, until a
batch says there is none after it. The same loop serves the administrator's call (with its
grant) and the schedule (without one).

The schedule (`refresh_interval` > 0): on the cluster's lowest node id among those connected
(so one node runs it), with every configured node connected, a round of every key starts
`refresh_interval` seconds after the last round started (the first one `refresh_interval` after
the schedule first ran). Its cursor (the round's start time
and the last key of the last batch done) is kept in the key database (`put_meta`), so a
round a crash or restart cut short resumes where it stopped; a round that failed is retried
after `retry` seconds from where it stopped.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final, Protocol

from secretstore.errors import SecretStoreError
from secretstore.sessions.admin.refresh import RefreshKeys, RefreshOutcome
from secretstore.types import NodeId, ServerKeyId
from secretstore.wire.refresh import RefreshGrant, RefreshScope

log = logging.getLogger(__name__)

#: The named value (KeyStorage.put_meta) that holds the schedule's round.
ROUND_META: Final = "refresh-round"
#: How long the schedule waits before it tries a failed round again, or checks again.
DEFAULT_RETRY: Final = 60.0


class Runner(Protocol):
    async def request(self, request: Any) -> Any: ...


@dataclass(slots=True)
class RefreshReport:
    """A whole refresh: keys refreshed, keys skipped with the reason, batches run."""

    refreshed: int = 0
    skipped: list[tuple[ServerKeyId, str]] = field(default_factory=list)
    batches: int = 0


async def refresh_in_batches(
    runner: Runner,
    grant: RefreshGrant | None,
    batch_size: int,
    *,
    after: ServerKeyId | None = None,
    done: Callable[[RefreshOutcome], None] | None = None,
) -> RefreshReport:
    """Refresh every key above `after` (every key when None) batch by batch; `done` hears
    each batch's outcome. A batch's error is raised (the batches before it are done)."""
    report = RefreshReport()
    while True:
        outcome: RefreshOutcome = await runner.request(
            RefreshKeys(RefreshScope((), after, batch_size), grant)
        )
        report.batches += 1
        report.refreshed += len(outcome.refreshed)
        report.skipped += outcome.skipped
        if done is not None:
            done(outcome)
        if outcome.next_after is None:
            return report
        after = outcome.next_after


class MetaStore(Protocol):
    def get_meta(self, name: str) -> bytes | None: ...

    def put_meta(self, name: str, value: bytes | None) -> None: ...


@dataclass(frozen=True, slots=True)
class Round:
    """The schedule's round: when it started, and the last key done (None: not begun, or
    finished when `finished`)."""

    started: float
    after: ServerKeyId | None
    finished: bool

    def encode(self) -> bytes:
        after = None if self.after is None else self.after.hex()
        return json.dumps(
            {"started": self.started, "after": after, "finished": self.finished}
        ).encode()

    @classmethod
    def decode(cls, raw: bytes | None) -> Round | None:
        if raw is None:
            return None
        try:
            value = json.loads(raw)
            after = value["after"]
            return cls(
                float(value["started"]),
                None if after is None else ServerKeyId(bytes.fromhex(after)),
                bool(value["finished"]),
            )
        except (ValueError, KeyError, TypeError):
            log.warning("the refresh schedule's saved round does not read; starting afresh")
            return None


class RefreshSchedule:
    """Runs a refresh of every key every `interval` seconds on the node that leads."""

    def __init__(
        self,
        runner: Runner,
        store: MetaStore,
        *,
        self_id: NodeId,
        interval: float,
        batch_size: int,
        cluster: Callable[[], frozenset[NodeId]],
        connected: Callable[[], frozenset[NodeId]],
        clock: Callable[[], float] = time.time,
        retry: float = DEFAULT_RETRY,
    ) -> None:
        self._runner = runner
        self._store = store
        self._self_id = self_id
        self.interval = interval
        self.batch_size = batch_size
        self._cluster = cluster
        self._connected = connected
        self._clock = clock
        self._retry = retry
        self._task: asyncio.Task[None] | None = None

    def leads(self) -> bool:
        """Whether this node runs the schedule now: every configured node connected, and
        this node's id the lowest of them."""
        cluster = self._cluster()
        here = self._connected() | {self._self_id}
        return cluster <= here and self._self_id == min(cluster | {self._self_id})

    def due_in(self, now: float) -> float:
        """Seconds until the next batch should run (0: now)."""
        saved = Round.decode(self._store.get_meta(ROUND_META))
        if saved is None:  # the schedule's first start: the first round is an interval away
            saved = Round(now, None, True)
            self._store.put_meta(ROUND_META, saved.encode())
        if not saved.finished:
            return 0.0
        return max(0.0, saved.started + self.interval - now)

    async def run_round(self) -> RefreshReport:
        """One round (or the rest of one a crash cut short), saving its cursor after each
        batch."""
        now = self._clock()
        saved = Round.decode(self._store.get_meta(ROUND_META))
        if saved is None or saved.finished:
            saved = Round(now, None, False)
            self._store.put_meta(ROUND_META, saved.encode())
        else:
            log.info("refresh schedule: resuming the round started at %.0f", saved.started)
        started = saved.started

        def done(outcome: RefreshOutcome) -> None:
            cursor = Round(started, outcome.next_after, outcome.next_after is None)
            self._store.put_meta(ROUND_META, cursor.encode())

        report = await refresh_in_batches(
            self._runner, None, self.batch_size, after=saved.after, done=done
        )
        log.info(
            "refresh schedule: round done, %d keys refreshed in %d batches, %d skipped",
            report.refreshed,
            report.batches,
            len(report.skipped),
        )
        return report

    async def _loop(self) -> None:
        # leadership and the due time are looked at again at least every `retry` seconds
        # (and every `interval` when that is shorter)
        check = min(self._retry, self.interval)
        while True:
            wait = check
            if self.leads():
                wait = self.due_in(self._clock())
                if wait == 0:
                    try:
                        await self.run_round()
                        wait = self.due_in(self._clock())
                    except SecretStoreError as exc:
                        log.warning("refresh schedule: the round stopped (%s); retrying", exc)
                        wait = self._retry
            await asyncio.sleep(min(wait, check))

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._loop())

    async def stop(self) -> None:
        if self._task is not None:
            task, self._task = self._task, None
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
