"""The refresh schedule and the batch loop (cluster/refresh.py), against a stand-in runner and
a real in-memory key storage: who leads, when a round is due, a round resumed from its saved
cursor after a crash, a failed batch keeps the cursor of the batches before it."""

from __future__ import annotations

from typing import Any

import pytest

from secretstore.cluster.refresh import ROUND_META, RefreshSchedule, Round, refresh_in_batches
from secretstore.crypto.curve import Point, Scalar
from secretstore.errors import NodeDisconnected
from secretstore.sessions.admin.refresh import RefreshKeys, RefreshOutcome
from secretstore.storage.memory import MemoryKeyStorage
from secretstore.types import NodeId, ServerKeyId

A, B, C = sorted(NodeId(Point.base_mul(Scalar(i)).to_bytes()) for i in (2, 3, 4))
KEYS = [ServerKeyId(bytes([i]) * 32) for i in range(1, 8)]


class Runner:
    """Answers each batch with the next keys (3 a batch); fails at batch `fail_at`."""

    def __init__(self, fail_at: int | None = None) -> None:
        self.requests: list[RefreshKeys] = []
        self.fail_at = fail_at

    async def request(self, request: Any) -> Any:
        assert isinstance(request, RefreshKeys)
        self.requests.append(request)
        if self.fail_at is not None and len(self.requests) == self.fail_at:
            raise NodeDisconnected("a node left")
        after = request.scope.after
        rest = [k for k in KEYS if after is None or k > after]
        batch = rest[: request.scope.limit]
        more = batch[-1] if len(rest) > len(batch) else None
        return RefreshOutcome(tuple(batch), (), more)


def schedule(
    runner: Runner, store: MemoryKeyStorage, now: list[float], **kw: Any
) -> RefreshSchedule:
    return RefreshSchedule(
        runner,
        store,
        self_id=kw.get("self_id", A),
        interval=100.0,
        batch_size=3,
        cluster=lambda: frozenset({A, B, C}),
        connected=kw.get("connected", lambda: frozenset({B, C})),
        clock=lambda: now[0],
    )


async def test_batches_follow_each_other_to_the_end() -> None:
    runner = Runner()
    report = await refresh_in_batches(runner, None, 3)
    assert report.refreshed == 7 and report.batches == 3
    assert [r.scope.after for r in runner.requests] == [None, KEYS[2], KEYS[5]]


def test_the_lowest_connected_node_leads_when_every_node_is_there() -> None:
    store, now = MemoryKeyStorage(), [0.0]
    assert schedule(Runner(), store, now).leads()
    assert not schedule(
        Runner(), store, now, self_id=B, connected=lambda: frozenset({A, C})
    ).leads()
    assert not schedule(Runner(), store, now, connected=lambda: frozenset({B})).leads()


async def test_a_round_is_due_an_interval_after_the_last_one_started() -> None:
    store, now = MemoryKeyStorage(), [1000.0]
    plan = schedule(Runner(), store, now)
    assert plan.due_in(now[0]) == 100.0  # first start: an interval from now
    now[0] = 1100.0
    assert plan.due_in(now[0]) == 0.0
    await plan.run_round()
    saved = Round.decode(store.get_meta(ROUND_META))
    assert saved == Round(1100.0, None, True)
    now[0] = 1150.0
    assert plan.due_in(now[0]) == 50.0


async def test_a_round_cut_short_resumes_from_its_cursor() -> None:
    store, now = MemoryKeyStorage(), [500.0]
    failing = Runner(fail_at=2)
    with pytest.raises(NodeDisconnected):
        await schedule(failing, store, now).run_round()
    saved = Round.decode(store.get_meta(ROUND_META))
    assert saved == Round(500.0, KEYS[2], False)  # the first batch is done
    now[0] = 520.0
    resumed = schedule(Runner(), store, now)  # e.g. after a restart
    assert resumed.due_in(now[0]) == 0.0
    report = await resumed.run_round()
    assert report.refreshed == 4  # the keys after the first batch
    assert Round.decode(store.get_meta(ROUND_META)) == Round(500.0, None, True)


def test_a_saved_round_that_does_not_read_starts_afresh() -> None:
    store = MemoryKeyStorage()
    store.put_meta(ROUND_META, b"not json")
    assert Round.decode(store.get_meta(ROUND_META)) is None
