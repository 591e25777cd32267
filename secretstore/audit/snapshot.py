"""Opening a node's audit log for reading: its database when the node is stopped, or a
private copy of it while the node runs (storage/snapshot.py)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from secretstore.audit.store import LevelDbAuditStore
from secretstore.storage.snapshot import DatabaseInUse, database_in_use, open_database

__all__ = ["DatabaseInUse", "database_in_use", "open_audit_log"]


@contextmanager
def open_audit_log(path: Path, *, snapshot: bool = False) -> Iterator[LevelDbAuditStore]:
    """The audit log of the key database at `path`, for reading. DatabaseInUse when its node
    runs and `snapshot` is False; StorageError when there is no database or it cannot be
    read."""
    with open_database(path, snapshot=snapshot) as storage:
        yield LevelDbAuditStore(storage)
