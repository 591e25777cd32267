"""The decoded-share LRU: hits, least-recently-used eviction, discard, clear, capacity 0."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from secretstore.storage.cache import DEFAULT_CAPACITY, ShareCache
from tests.unit.storage.strategies import sample_share

A, B, C = b"a", b"b", b"c"
SA, SB, SC = sample_share(1), sample_share(2), sample_share(3)


def test_keeps_what_was_put_and_forgets_what_was_discarded() -> None:
    cache = ShareCache(4)
    assert cache.get(A) is None
    cache.put(A, SA)
    cache.put(B, SB)
    assert cache.get(A) is SA
    cache.discard(A)
    cache.discard(A)  # twice is fine
    assert cache.get(A) is None
    assert cache.get(B) is SB
    cache.clear()
    assert len(cache) == 0
    assert cache.get(B) is None


def test_drops_the_least_recently_used_first() -> None:
    cache = ShareCache(2)
    cache.put(A, SA)
    cache.put(B, SB)
    assert cache.get(A) is SA  # A is now more recent than B
    cache.put(C, SC)
    assert cache.get(B) is None
    assert cache.get(A) is SA
    assert cache.get(C) is SC
    assert len(cache) == 2


def test_putting_again_replaces_the_entry() -> None:
    cache = ShareCache(2)
    cache.put(A, SA)
    cache.put(A, SB)
    assert cache.get(A) is SB
    assert len(cache) == 1


def test_capacity_zero_keeps_nothing_and_negative_is_refused() -> None:
    cache = ShareCache(0)
    cache.put(A, SA)
    assert cache.get(A) is None
    assert len(cache) == 0
    with pytest.raises(ValueError, match="negative"):
        ShareCache(-1)
    assert ShareCache().capacity == DEFAULT_CAPACITY


def test_repr_shows_no_share() -> None:
    cache = ShareCache(3)
    cache.put(A, SA)
    assert repr(cache) == "ShareCache(1/3)"


@given(
    capacity=st.integers(min_value=1, max_value=4),
    ops=st.lists(st.tuples(st.sampled_from(["put", "get", "discard"]), st.integers(0, 5))),
)
def test_never_holds_more_than_its_capacity_nor_a_discarded_key(
    capacity: int, ops: list[tuple[str, int]]
) -> None:
    cache = ShareCache(capacity)
    present: set[bytes] = set()
    for op, index in ops:
        key = bytes([index])
        if op == "put":
            cache.put(key, SA)
            present.add(key)
        elif op == "discard":
            cache.discard(key)
            present.discard(key)
        else:
            got = cache.get(key)
            assert got is None or key in present
        assert len(cache) <= capacity
