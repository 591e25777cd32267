"""The node set change session behind auto-migration: what `ContractNodeSet` drives, and who
may run such a change.

- `SessionNodeSetChange` implements the `NodeSetChange` seam with the admin session
  (sessions/admin/). `start(id, nodes)` runs it as master with `ChangeNodeSet(nodes, sig, sig,
  migration_id=id, admin_public=<this node's key>)`, where `sig` is this node's signature of
  the set's hash: as Parity, the old set and the new set are both the migration set.
  `state()` is the change running on this node, as master or slave (the session table's
  exclusive session), else how the last one ended (the table's exclusive-session hook; on the
  master also the request's outcome): finished only when the whole change was done, failed
  otherwise, with its migration id. `leave(id, master)` erases every key of a node that the
  completed migration left out, each after its DELETE entry in the node's audit log.
- `MigrationAdmin` is the `AdminAuthority` of a node with auto-migration: a change is
  authorised by the node key of the contract's migration master, and only for a change that
  master started, with the contract's migration id and migration set; anything else is
  refused with AccessDenied naming why, an administrator's change included (Parity's nodes
  with auto-migration had no administrator key either).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Protocol

from secretstore.audit.model import Operation, facts_of
from secretstore.audit.recorder import AuditRecorder
from secretstore.chain.migration import NO_SESSION, SessionPhase, SessionState
from secretstore.cluster.observer import ClusterObserver, NullObserver
from secretstore.crypto.curve import Point
from secretstore.crypto.keys import KeyPair, address_of, servers_set_hash, sign_recoverable
from secretstore.errors import AccessDenied, SecretStoreError
from secretstore.logs import short_node
from secretstore.sessions.admin.node_set_change import ChangeNodeSet
from secretstore.sessions.admin.node_set_change import NodeSetChange as ChangeSession
from secretstore.sessions.base import Session
from secretstore.sessions.core import NodeCore
from secretstore.storage.port import KeyStorage
from secretstore.types import Hash256, NodeId, SessionId

log = logging.getLogger(__name__)


class MigrationView(Protocol):
    """The contract's migration as this node last read it (`ContractNodeSet`)."""

    def admin_for(self, migration_id: Hash256 | None, nodes: frozenset[NodeId]) -> NodeId | None:
        """The migration's master when `migration_id` and `nodes` are the contract's."""
        ...


def _short_id(migration_id: Hash256) -> str:
    return "0x" + migration_id.hex()[:16]


class MigrationAdmin:
    """Who may change the node set of a node with auto-migration (see the module docstring).

    `view()`: the key server set as this node follows it, None until the chain side is built."""

    def __init__(self, self_id: NodeId, view: Callable[[], MigrationView | None]) -> None:
        self._self_id = self_id
        self._view = view

    def admin_key(
        self,
        master: NodeId,
        migration_id: Hash256 | None,
        new_set: frozenset[NodeId],
    ) -> Point | None:
        me = short_node(self._self_id)
        if migration_id is None:
            raise AccessDenied(
                f"node {me} follows the key server set contract with auto-migration: it takes "
                "no administrator's node set change (set disable_auto_migrate = true and "
                "admin_public to change the node set by hand)"
            )
        view = self._view()
        admin = view.admin_for(migration_id, new_set) if view is not None else None
        if admin is None:
            raise AccessDenied(
                f"node {me}: migration {_short_id(migration_id)} to {len(new_set)} nodes is not "
                "the key server set contract's migration (its id or its node set differ, or "
                "none runs, at the block this node read last)"
            )
        if admin != master:
            raise AccessDenied(
                f"node {me}: node {short_node(master)} is not the master of migration "
                f"{_short_id(migration_id)} (the contract names node {short_node(admin)})"
            )
        return Point.from_bytes(admin)


#: Runs a session as master on this node and returns its result (ClusterDriver.request).
RunSession = Callable[[ChangeNodeSet], Awaitable[object]]


class SessionNodeSetChange:
    """The `NodeSetChange` of a node: its admin session, started and watched for
    auto-migration (see the module docstring)."""

    available = True

    def __init__(
        self,
        key: KeyPair,
        core: NodeCore,
        storage: KeyStorage,
        run_session: RunSession,
        *,
        audit: AuditRecorder | None = None,
        observer: ClusterObserver | None = None,
    ) -> None:
        """`audit`: the node's audit log, where `leave` records each share it erases;
        `observer` hears of each erased share (the node's key count)."""
        self._key = key
        self._core = core
        self._storage = storage
        self._run_session = run_session
        self._audit = audit
        self._observer: ClusterObserver = observer if observer is not None else NullObserver()
        #: the migration this node started a change for, until the request has ended
        self._starting: Hash256 | None = None
        self._ended: SessionState = NO_SESSION
        self._task: asyncio.Task[None] | None = None
        core.on_exclusive_end(self._on_end)

    def state(self) -> SessionState:
        running = self._core.exclusive_session
        if isinstance(running, ChangeSession):
            return SessionState(SessionPhase.RUNNING, running.migration_id)
        if self._starting is not None:
            return SessionState(SessionPhase.RUNNING, self._starting)
        return self._ended

    async def start(self, migration_id: Hash256, nodes: frozenset[NodeId]) -> None:
        if self.state().phase is SessionPhase.RUNNING:
            raise SecretStoreError("a node set change runs on this node already")
        signature = sign_recoverable(self._key.secret, servers_set_hash(nodes))
        request = ChangeNodeSet(
            frozenset(nodes),
            signature,
            signature,
            migration_id=migration_id,
            admin_public=self._key.public,
        )
        self._ended = NO_SESSION
        self._starting = migration_id
        self._task = asyncio.get_running_loop().create_task(self._run(request, migration_id))

    def drop(self) -> None:
        self._ended = NO_SESSION

    async def leave(self, migration_id: Hash256, master: NodeId) -> None:
        if self._core.exclusive_session is not None:
            log.warning("a node set change runs on this node: its keys are not erased now")
            return
        try:
            erased = self._erase_all(migration_id, master)
        except SecretStoreError as exc:
            log.error(
                "this node left the key server set with migration %s, but erasing its keys "
                "failed: %s",
                _short_id(migration_id),
                exc,
            )
            return
        log.warning(
            "this node left the key server set with migration %s: %d keys erased",
            _short_id(migration_id),
            erased,
        )

    # --- internals --------------------------------------------------------------------------
    async def _run(self, request: ChangeNodeSet, migration_id: Hash256) -> None:
        try:
            await self._run_session(request)
        except SecretStoreError as exc:
            log.warning(
                "the node set change of migration %s failed: %s", _short_id(migration_id), exc
            )
            self._ended = SessionState(SessionPhase.FAILED, migration_id)
        except Exception:
            log.exception("the node set change of migration %s failed", _short_id(migration_id))
            self._ended = SessionState(SessionPhase.FAILED, migration_id)
        else:
            log.info("the node set change of migration %s is done", _short_id(migration_id))
            self._ended = SessionState(SessionPhase.FINISHED, migration_id)
        finally:
            self._starting = None

    def _on_end(self, session: Session) -> None:
        if not isinstance(session, ChangeSession):
            return
        phase = SessionPhase.FINISHED if session.completed else SessionPhase.FAILED
        self._ended = SessionState(phase, session.migration_id)

    def _erase_all(self, migration_id: Hash256, master: NodeId) -> int:
        """Erase every key, each after its audit entry (the migration as the session, its
        master's key, which authorised it, as the requester); a failed entry stops it."""
        requester = address_of(Point.from_bytes(master))
        erased = 0
        for key_id in list(self._storage.ids()):
            if self._audit is not None:
                self._audit.record(
                    facts_of(
                        Operation.DELETE,
                        key_id,
                        session_id=SessionId(migration_id),
                        master=master,
                        requester=requester,
                        participants=(self._key.node_id,),
                    )
                )
            if self._storage.remove(key_id):
                erased += 1
                self._observer.key_removed()
        return erased
