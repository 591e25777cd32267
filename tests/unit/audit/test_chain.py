"""Verifying a log: a whole log passes; a changed, removed or reordered entry, a log of
another node, a receipt swapped in and a clock turned back are each found at their position."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from secretstore.audit.chain import EntryFilter, chosen, verify_log
from secretstore.audit.model import Operation, decode_entry
from secretstore.audit.receipts import NodeSigner
from secretstore.audit.recorder import AuditRecorder
from secretstore.audit.store import MemoryAuditStore
from secretstore.errors import AuditLogError
from tests.unit.audit.logs import NODE, NODES, REQUESTER, facts, node_log


def test_a_whole_log_verifies_and_names_its_node() -> None:
    store, recorder = node_log(12)
    report = verify_log(store.records())
    assert report.ok, report.problems
    assert report.node == NODE.node_id
    assert [item.position for item in report.entries] == list(range(12))
    assert report.head is not None and report.head.hash == recorder.head
    assert verify_log(store.records(), NODE.node_id).ok


def test_an_empty_log_verifies() -> None:
    report = verify_log(iter(()))
    assert report.ok and report.head is None


@given(st.integers(0, 9), st.integers(0, 200), st.integers(1, 255))
def test_any_changed_byte_is_found_at_its_entry(position: int, offset: int, flip: int) -> None:
    store, _ = node_log(10)
    record = bytearray(dict(store.records())[position])
    offset %= len(record)
    record[offset] ^= flip
    store.replace(position, bytes(record))
    report = verify_log(store.records(), NODE.node_id)
    assert not report.ok
    assert report.problems[0].position == position


def test_a_changed_entry_is_named_and_so_is_the_break_after_it() -> None:
    store, _ = node_log(6)
    record = bytearray(dict(store.records())[3])
    record[60] ^= 0xFF  # inside the key id
    store.replace(3, bytes(record))
    problems = verify_log(store.records(), NODE.node_id).problems
    assert [p.position for p in problems] == [3, 4]
    assert "signature" in problems[0].what
    assert "previous hash" in problems[1].what


def test_a_removed_entry_is_named() -> None:
    store, _ = node_log(6)
    store.remove(2)
    problems = verify_log(store.records(), NODE.node_id).problems
    assert [(p.position, p.what) for p in problems] == [(2, "entry 2 is missing (removed)")]
    store.remove(3)
    problems = verify_log(store.records(), NODE.node_id).problems
    assert [(p.position, p.what) for p in problems] == [(2, "entries 2 to 3 are missing (removed)")]


def test_two_reordered_entries_are_named() -> None:
    store, _ = node_log(6)
    records = dict(store.records())
    store.replace(1, records[4])
    store.replace(4, records[1])
    problems = verify_log(store.records(), NODE.node_id).problems
    moved = [p for p in problems if "holds entry" in p.what]
    assert [(p.position, p.what) for p in moved] == [
        (1, "holds entry 4 (moved or reordered)"),
        (4, "holds entry 1 (moved or reordered)"),
    ]
    assert problems[0].position == 1


def test_a_log_of_another_node_or_an_entry_signed_by_another_is_found() -> None:
    store, _ = node_log(3)
    assert not verify_log(store.records(), NODES[1].node_id).ok
    other, _ = node_log(3, key=NODES[2])
    store.replace(1, dict(other.records())[1])
    problems = verify_log(store.records(), NODE.node_id).problems
    assert {p.position for p in problems} == {1, 2}
    assert any(p.position == 1 and "signature" in p.what for p in problems)


def test_a_receipt_that_is_not_the_node_s_is_found() -> None:
    store = MemoryAuditStore()
    recorder = AuditRecorder(store, NodeSigner(NODE))
    recorder.record(facts(0))
    recorder.append(facts(1), NodeSigner(NODES[1]).receipt(facts(1)))  # someone else's
    problems = verify_log(store.records(), NODE.node_id).problems
    assert [(p.position, "receipt" in p.what) for p in problems] == [(1, True)]


def test_time_going_back_is_found() -> None:
    store = MemoryAuditStore()
    times = iter([5000, 9000])
    recorder = AuditRecorder(store, NodeSigner(NODE), clock=lambda: next(times))
    recorder.record(facts(0))
    recorder.record(facts(1))
    assert verify_log(store.records()).ok
    # the recorder never goes back (a clock turned back keeps the last time) ...
    later = AuditRecorder(store, NodeSigner(NODE), clock=lambda: 1000)
    assert later.record(facts(2)).time_ms == 9000
    assert verify_log(store.records()).ok


def test_filters_choose_entries() -> None:
    store, _ = node_log(18)
    report = verify_log(store.records())
    shadows = list(chosen(report, EntryFilter(operation=Operation.SHADOW_RETRIEVAL)))
    assert [item.entry.facts.operation for item in shadows] == [Operation.SHADOW_RETRIEVAL] * 2
    key = facts(5).key_id
    assert [item.position for item in chosen(report, EntryFilter(key_id=key))] == [5]
    assert len(list(chosen(report, EntryFilter(requester=REQUESTER)))) == 18
    first = report.entries[0].entry.time_ms
    window = EntryFilter(since_ms=first + 2000, until_ms=first + 4000)
    assert [item.position for item in chosen(report, window)] == [2, 3, 4]


def test_the_recorder_continues_a_log_and_refuses_another_node_s() -> None:
    store, recorder = node_log(4)
    again = AuditRecorder(store, NodeSigner(NODE))
    assert again.entries == 4 and again.head == recorder.head
    entry = again.record(facts(9))
    assert entry.index == 4 and entry.previous == recorder.head
    assert verify_log(store.records()).ok
    with pytest.raises(AuditLogError, match="another node"):
        AuditRecorder(store, NodeSigner(NODES[1]))
    store.replace(4, b"\x01garbage")
    with pytest.raises(AuditLogError, match="does not decode"):
        AuditRecorder(store, NodeSigner(NODE))


def test_a_failed_append_leaves_the_head_and_says_nothing_was_released() -> None:
    store, recorder = node_log(2)
    head = recorder.head
    store.fail = "No space left on device"
    with pytest.raises(AuditLogError, match="nothing was released") as caught:
        recorder.record(facts(7))
    assert "No space left on device" in str(caught.value)
    assert "entry 2" in str(caught.value)
    assert recorder.head == head and recorder.entries == 2
    store.fail = None
    assert recorder.record(facts(7)).index == 2
    assert verify_log(store.records()).ok
    assert decode_entry(dict(store.records())[2]).previous == head
