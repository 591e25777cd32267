"""The last sessions of a node, for the status page: outcomes, latencies by kind, errors."""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from typing import Final

#: How many ended sessions are remembered (the latency figures are over these).
DEFAULT_CAPACITY: Final = 200
#: The longest error text kept (session errors are short; a peer's reason is cut here).
MAX_ERROR_TEXT: Final = 200


@dataclass(frozen=True, slots=True)
class EndedSession:
    """One session as the status page shows it; no key material, ids or requester."""

    kind: str
    master: bool
    seconds: float
    #: "ok", or the error's class name
    outcome: str
    #: the error's text ("" for success), cut to MAX_ERROR_TEXT
    detail: str
    #: wall-clock end time, seconds since the Unix epoch
    ended_at: float


@dataclass(frozen=True, slots=True)
class KindLatency:
    """Latency figures of one session kind over the remembered sessions."""

    kind: str
    count: int
    failed: int
    median: float
    p95: float
    maximum: float


def _quantile(ordered: list[float], q: float) -> float:
    """The nearest-rank quantile of a sorted, non-empty list."""
    rank = math.ceil(q * len(ordered))
    return ordered[min(len(ordered), max(1, rank)) - 1]


class RecentSessions:
    """A bounded memory of ended sessions."""

    def __init__(self, capacity: int = DEFAULT_CAPACITY) -> None:
        self._ended: deque[EndedSession] = deque(maxlen=capacity)

    def add(self, session: EndedSession) -> None:
        self._ended.append(session)

    def __len__(self) -> int:
        return len(self._ended)

    def latest(self, count: int) -> list[EndedSession]:
        """The last `count` ended sessions, newest first."""
        return list(reversed(self._ended))[:count]

    def errors(self, count: int) -> list[EndedSession]:
        """The last `count` failed sessions, newest first."""
        return [s for s in reversed(self._ended) if s.outcome != "ok"][:count]

    def latencies(self) -> list[KindLatency]:
        """Per kind (sorted by name): how many, how many failed, median, p95 and max."""
        by_kind: dict[str, list[EndedSession]] = {}
        for session in self._ended:
            by_kind.setdefault(session.kind, []).append(session)
        figures = []
        for kind in sorted(by_kind):
            sessions = by_kind[kind]
            ordered = sorted(s.seconds for s in sessions)
            figures.append(
                KindLatency(
                    kind=kind,
                    count=len(sessions),
                    failed=sum(s.outcome != "ok" for s in sessions),
                    median=_quantile(ordered, 0.5),
                    p95=_quantile(ordered, 0.95),
                    maximum=ordered[-1],
                )
            )
        return figures
