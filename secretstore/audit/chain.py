"""Verifying a node's audit log, and choosing entries from it (pure).

A log is read as (position, record) pairs in position order. `verify_log` checks, at every
position p: the record decodes; it says it is entry p (a moved or reordered entry says
another index); no position is skipped (a removed entry leaves a gap); its `previous` is the
hash of the record at p-1 (any change to, removal of or reordering of an earlier entry breaks
this); its signature and its receipt are the node's; the node is the same throughout (and
the expected one, when given); time does not go back. Every problem names its position.

What a chain cannot show by itself: entries cut off the end (compare with a head you noted,
an export, or the receipts requesters hold), and a log rewritten whole by someone holding the
node key (compare with the other participants' logs: each session appears in every
participant's log).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from secretstore.audit.model import (
    GENESIS,
    AuditEntry,
    Operation,
    body_of,
    decode_entry,
    entry_digest,
    entry_hash,
)
from secretstore.audit.receipts import receipt_holds, signer_of
from secretstore.errors import CorruptRecord
from secretstore.types import Address, NodeId, ServerKeyId


@dataclass(frozen=True, slots=True)
class Problem:
    """What is wrong at one position of a log."""

    position: int
    what: str

    def __str__(self) -> str:
        return f"entry {self.position}: {self.what}"


@dataclass(frozen=True, slots=True)
class VerifiedEntry:
    """An entry that decoded, at its position, with its hash."""

    position: int
    entry: AuditEntry
    hash: bytes


@dataclass(slots=True)
class LogReport:
    """The outcome of `verify_log`: the node, the entries that decoded, every problem."""

    node: NodeId | None = None
    entries: list[VerifiedEntry] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    positions: int = 0

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def head(self) -> VerifiedEntry | None:
        return self.entries[-1] if self.entries else None


def verify_log(records: Iterable[tuple[int, bytes]], node: NodeId | None = None) -> LogReport:
    """Check a whole log (see the module docstring). `node`: the node whose log it must be;
    None takes the node the first entry's signature recovers to."""
    report = LogReport(node=node)
    expected_position = 0
    previous_hash: bytes | None = GENESIS
    previous_time = 0
    for position, record in records:
        report.positions += 1
        problems = report.problems
        if position < expected_position:
            problems.append(Problem(position, "appears out of order in the log"))
            continue
        if position > expected_position:
            missing = (
                f"entry {expected_position} is missing"
                if position == expected_position + 1
                else f"entries {expected_position} to {position - 1} are missing"
            )
            problems.append(Problem(expected_position, f"{missing} (removed)"))
            previous_hash = None  # the link to whatever came before cannot be checked
        expected_position = position + 1
        try:
            entry = decode_entry(record)
        except CorruptRecord as exc:
            problems.append(Problem(position, f"does not decode: {exc}"))
            previous_hash = None
            continue
        record_hash = entry_hash(record)
        if entry.index != position:
            problems.append(Problem(position, f"holds entry {entry.index} (moved or reordered)"))
        if previous_hash is not None and entry.previous != previous_hash:
            problems.append(
                Problem(
                    position,
                    "does not follow the entry before it (its previous hash differs): an "
                    "earlier entry was changed, removed or reordered",
                )
            )
        signer = signer_of(entry.signature, entry_digest(body_of(record)))
        if report.node is None and signer is not None:
            report.node = signer
        if signer is None or signer != report.node:
            problems.append(Problem(position, "its signature is not the node's (changed?)"))
        elif not receipt_holds(signer, entry.facts, entry.receipt):
            problems.append(Problem(position, "its receipt is not the node's of its facts"))
        if entry.time_ms < previous_time:
            problems.append(Problem(position, "its time is before the previous entry's"))
        previous_time = max(previous_time, entry.time_ms)
        previous_hash = record_hash
        report.entries.append(VerifiedEntry(position, entry, record_hash))
    return report


@dataclass(frozen=True, slots=True)
class EntryFilter:
    """Which entries to show: every given condition must hold (times in ms, inclusive)."""

    key_id: ServerKeyId | None = None
    requester: Address | None = None
    operation: Operation | None = None
    since_ms: int | None = None
    until_ms: int | None = None

    def matches(self, entry: AuditEntry) -> bool:
        facts = entry.facts
        return (
            (self.key_id is None or facts.key_id == self.key_id)
            and (self.requester is None or facts.requester == self.requester)
            and (self.operation is None or facts.operation == self.operation)
            and (self.since_ms is None or entry.time_ms >= self.since_ms)
            and (self.until_ms is None or entry.time_ms <= self.until_ms)
        )


def chosen(report: LogReport, choice: EntryFilter) -> Iterator[VerifiedEntry]:
    return (item for item in report.entries if choice.matches(item.entry))
