"""The driver's side of the audit log: time, chain link, signature and a synced append.

The driver hands every `Record` effect of a session to `AuditRecorder.append` before it
carries out the session's next effect, so a release is in the log before anything it
releases leaves the node (a slave's share, a master's answer). An append that fails raises
AuditLogError and leaves the head where it was; the driver then ends the session.
`record` is the same for code outside the sessions (it signs the receipt itself).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from secretstore.audit.model import (
    GENESIS,
    AuditEntry,
    AuditFacts,
    body_of,
    decode_entry,
    entry_body,
    entry_digest,
    entry_hash,
)
from secretstore.audit.receipts import NodeSigner, signer_of
from secretstore.audit.store import AuditStore
from secretstore.errors import AuditLogError, CorruptRecord


def wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000


class AuditRecorder:
    """Appends this node's entries to its log. Not thread-safe: one driver calls it."""

    def __init__(
        self,
        store: AuditStore,
        signer: NodeSigner,
        *,
        clock: Callable[[], int] = wall_clock_ms,
    ) -> None:
        """Reads the head of the log: AuditLogError when its last entry does not decode or
        is not this node's (a database of another node, or a damaged log)."""
        self._store = store
        self._signer = signer
        self._clock = clock
        self._next = 0
        self._previous = GENESIS
        self._time = 0
        last = store.last()
        if last is not None:
            position, record = last
            try:
                entry = decode_entry(record)
            except CorruptRecord as exc:
                raise AuditLogError(
                    f"the last audit entry ({position}) does not decode: {exc}; "
                    "check the log with `secretstore audit verify`"
                ) from None
            signer_id = signer_of(entry.signature, entry_digest(body_of(record)))
            if signer_id != signer.node_id or entry.index != position:
                raise AuditLogError(
                    f"the last audit entry ({position}) is not this node's entry {position}: "
                    "the database belongs to another node, or its log was changed; check it "
                    "with `secretstore audit verify`"
                )
            self._next = position + 1
            self._previous = entry_hash(record)
            self._time = entry.time_ms

    @property
    def entries(self) -> int:
        """How many entries the log has (the position of the next one)."""
        return self._next

    @property
    def head(self) -> bytes:
        """The hash of the last entry (32 zero bytes for an empty log)."""
        return self._previous

    def append(self, facts: AuditFacts, receipt: bytes) -> AuditEntry:
        """Write the entry of `facts` with this node's `receipt` of them, synced."""
        position, previous = self._next, self._previous
        moment = max(self._clock(), self._time)
        body = entry_body(position, previous, moment, facts, receipt)
        signature = self._signer.entry(body)
        record = body + signature
        try:
            self._store.append(position, record)
        except AuditLogError as exc:
            raise AuditLogError(
                f"node {self._signer.node_id[:4].hex()} could not write audit entry "
                f"{position}: {exc}; nothing was released"
            ) from exc
        self._next = position + 1
        self._previous = entry_hash(record)
        self._time = moment
        return AuditEntry(position, previous, moment, facts, receipt, signature)

    def record(self, facts: AuditFacts) -> AuditEntry:
        """Append `facts` with a receipt signed here (for operations outside the sessions)."""
        return self.append(facts, self._signer.receipt(facts))
