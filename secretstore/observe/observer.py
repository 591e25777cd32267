"""The node's ClusterObserver: turns the driver's events into metrics and recent sessions."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from secretstore.cluster.observer import error_kind
from secretstore.observe.metrics import NodeMetrics
from secretstore.observe.recent import MAX_ERROR_TEXT, EndedSession, RecentSessions
from secretstore.types import NodeId, SessionId

#: Sessions tracked at once at most; beyond, the oldest start is forgotten (its end is then
#: not counted). The driver's own session limits keep the real number far below this.
MAX_TRACKED: Final = 100_000


@dataclass(frozen=True, slots=True)
class _Started:
    kind: str
    master: bool
    at: float


class NodeObserver:
    """Implements cluster.observer.ClusterObserver for one node."""

    def __init__(
        self,
        metrics: NodeMetrics,
        recent: RecentSessions,
        *,
        keys: int = 0,
        monotonic: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.metrics = metrics
        self.recent = recent
        #: server keys held (set from the storage at start, then counted up and down)
        self.keys = keys
        self._monotonic = monotonic
        self._wall = wall
        self._running: dict[SessionId, _Started] = {}

    @property
    def running(self) -> int:
        """Sessions started and not ended."""
        return len(self._running)

    def session_started(self, session_id: SessionId, kind: str, master: bool) -> None:
        if len(self._running) >= MAX_TRACKED:
            self._running.pop(next(iter(self._running)))
        self._running[session_id] = _Started(kind, master, self._monotonic())
        self.metrics.session_started(kind, master)

    def session_ended(self, session_id: SessionId, error: BaseException | None) -> None:
        started = self._running.pop(session_id, None)
        if started is None:  # not started here, or its end was counted already
            return
        seconds = max(0.0, self._monotonic() - started.at)
        label = None if error is None else error_kind(error)
        self.metrics.session_ended(started.kind, started.master, label, seconds)
        detail = "" if error is None else (str(error) or type(error).__name__)
        self.recent.add(
            EndedSession(
                kind=started.kind,
                master=started.master,
                seconds=seconds,
                outcome=error_kind(error),
                detail=detail[:MAX_ERROR_TEXT],
                ended_at=self._wall(),
            )
        )

    def key_created(self) -> None:
        self.keys += 1

    def key_removed(self) -> None:
        self.keys = max(0, self.keys - 1)

    def frame_received(self, node: NodeId, size: int) -> None:
        self.metrics.frame("in", size)

    def frame_sent(self, node: NodeId, size: int) -> None:
        self.metrics.frame("out", size)
