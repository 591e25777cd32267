"""Recent sessions: bounded, newest first, latency figures by kind."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from secretstore.observe.recent import EndedSession, RecentSessions


def ended(kind: str, seconds: float, outcome: str = "ok") -> EndedSession:
    return EndedSession(kind, True, seconds, outcome, "" if outcome == "ok" else "why", 0.0)


def test_it_keeps_the_last_sessions_newest_first() -> None:
    recent = RecentSessions(capacity=3)
    for i in range(5):
        recent.add(ended("a", float(i), "ok" if i % 2 else "SessionTimeout"))
    assert len(recent) == 3
    assert [s.seconds for s in recent.latest(10)] == [4.0, 3.0, 2.0]
    assert [s.seconds for s in recent.errors(10)] == [4.0, 2.0]
    assert [s.seconds for s in recent.latest(1)] == [4.0]


def test_latency_figures_by_kind() -> None:
    recent = RecentSessions()
    for i in range(1, 101):
        recent.add(ended("generation", i / 100, "ok" if i <= 90 else "ConsensusUnreachable"))
    recent.add(ended("decryption", 0.5))
    decryption, generation = recent.latencies()
    assert (decryption.kind, decryption.count, decryption.median, decryption.maximum) == (
        "decryption",
        1,
        0.5,
        0.5,
    )
    assert (generation.count, generation.failed) == (100, 10)
    assert generation.median == 0.5 and generation.p95 == 0.95 and generation.maximum == 1.0


@given(st.lists(st.floats(0, 100, allow_nan=False), min_size=1, max_size=50))
def test_quantiles_lie_within_the_samples(values: list[float]) -> None:
    recent = RecentSessions()
    for value in values:
        recent.add(ended("k", value))
    [figures] = recent.latencies()
    assert min(values) <= figures.median <= figures.p95 <= figures.maximum == max(values)
    assert figures.median in values and figures.p95 in values
