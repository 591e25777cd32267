"""The session table of one node: routes events to sessions, creates slaves, ends sessions.

Pure: the async driver (cluster/) and the simulated network (tests/sim) both run it. It reads
key shares through a synchronous port and returns effects; it never writes, sends or sleeps.

Exclusive sessions (the node set change): while one is in the table no other session starts
here (a master fails, a slave's master is told, both with ExclusiveSessionActive); sessions
already running go on, and the exclusive session hears `on_drained` once it is alone.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any, Protocol

from secretstore.errors import ExclusiveSessionActive, InvalidRequest, SecretStoreError
from secretstore.sessions.base import (
    Effect,
    Fail,
    Finish,
    Notice,
    Send,
    Session,
    SessionContext,
    short,
)
from secretstore.storage.model import KeyShare
from secretstore.types import NodeId, ServerKeyId, SessionId
from secretstore.wire.common import SessionError, error_of, kind_of


class ShareReader(Protocol):
    """Read access to this node's key shares."""

    def get(self, key_id: ServerKeyId) -> KeyShare | None: ...


#: (ctx, session id, request, this node's share of the key or None, connected nodes incl. self)
MasterFactory = Callable[
    [SessionContext, SessionId, Any, KeyShare | None, frozenset[NodeId]],
    tuple[Session, list[Effect]],
]
#: (ctx, sender = master, the initialising message, this node's share of the key or None)
SlaveFactory = Callable[
    [SessionContext, NodeId, Any, KeyShare | None], tuple[Session, list[Effect]]
]


@dataclass(frozen=True, slots=True)
class Admitted:
    """A session joined the table: the driver starts its timeout clock."""

    session_id: SessionId


CoreEffect = Effect | Notice | Admitted


class NodeCore:
    """Every session of one node, keyed by session id."""

    def __init__(
        self,
        ctx: SessionContext,
        shares: ShareReader,
        masters: Mapping[type[Any], MasterFactory],
        slaves: Mapping[type[Any], SlaveFactory],
    ) -> None:
        self.ctx = ctx
        self._shares = shares
        self._masters = dict(masters)
        self._slaves = dict(slaves)
        self._sessions: dict[SessionId, Session] = {}
        self._writing: dict[ServerKeyId, SessionId] = {}
        self._exclusive: SessionId | None = None

    # --- queries --------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._sessions)

    def session(self, session_id: SessionId) -> Session | None:
        return self._sessions.get(session_id)

    @property
    def exclusive_session(self) -> Session | None:
        """The exclusive session in the table (a node set change), if one is."""
        return None if self._exclusive is None else self._sessions.get(self._exclusive)

    def set_cluster_nodes(self, nodes: frozenset[NodeId]) -> None:
        """The cluster's node set changed: sessions created from now on see `nodes`; running
        sessions keep the set they started with."""
        self.ctx = replace(self.ctx, cluster_nodes=frozenset(nodes))

    def new_session_id(self) -> SessionId:
        while True:
            sid = SessionId(self.ctx.rng.random_bytes(32))
            if sid not in self._sessions:
                return sid

    # --- events ---------------------------------------------------------------------------
    def start(
        self, request: Any, connected: frozenset[NodeId], session_id: SessionId | None = None
    ) -> tuple[SessionId, list[CoreEffect]]:
        """Start a session as master for a user request (which has a `key_id`)."""
        sid = session_id if session_id is not None else self.new_session_id()
        factory = self._masters.get(type(request))
        if factory is None:
            raise TypeError(f"no session serves {type(request).__name__}")
        key_id: ServerKeyId = request.key_id
        if self._exclusive is not None:
            return sid, [Fail(sid, ExclusiveSessionActive("Exclusive session active"))]
        try:
            session, effects = factory(
                self.ctx, sid, request, self._shares.get(key_id), connected | {self.ctx.self_id}
            )
        except SecretStoreError as exc:
            return sid, [Fail(sid, exc)]
        return sid, self._admit(session, effects)

    def on_message(self, sender: NodeId, message: Any) -> list[CoreEffect]:
        sid: SessionId = message.session_id
        session = self._sessions.get(sid)
        if isinstance(message, SessionError):
            if session is None or sender not in session.participants:
                return []
            refusal = error_of(message.kind, message.reason)
            if refusal is not None:
                return self._settle(session, session.on_peer_refusal(sender, refusal))
            return self._settle(session, session.on_peer_error(sender, message.reason))
        if session is not None:
            if sender not in session.participants:
                return [Notice(f"node {short(sender)} is not in session {sid[:4].hex()}")]
            return self._settle(session, session.on_message(sender, message))
        factory = self._slaves.get(type(message))
        if factory is None:
            # A late message of a session that has ended here: nothing to do.
            return [Notice(f"{type(message).__name__} for no session from {short(sender)}")]
        key_id: ServerKeyId = message.key_id
        if self._exclusive is not None:
            error = ExclusiveSessionActive("Exclusive session active")
            return [Send(sender, SessionError(sid, str(error), kind_of(error)))]
        try:
            session, effects = factory(self.ctx, sender, message, self._shares.get(key_id))
        except SecretStoreError as exc:
            return [Send(sender, SessionError(sid, str(exc), kind_of(exc)))]
        return self._admit(session, effects)

    def on_access_checked(self, session_id: SessionId, allowed: bool) -> list[CoreEffect]:
        session = self._sessions.get(session_id)
        if session is None:
            return []
        return self._settle(session, session.on_access_checked(allowed))

    def on_node_disconnected(self, node: NodeId) -> list[CoreEffect]:
        effects: list[CoreEffect] = []
        for session in list(self._sessions.values()):
            if node in session.participants and node != self.ctx.self_id:
                effects += self._settle(session, session.on_node_disconnected(node))
        return effects

    def abort(self, session_id: SessionId, error: SecretStoreError) -> list[CoreEffect]:
        """End a live session with `error` (e.g. its key share could not be written): it fails
        and the other side is told. Nothing for a session that has ended already."""
        session = self._sessions.get(session_id)
        if session is None:
            return []
        return self._settle(session, session.fail(error))

    def on_timeout(self, session_id: SessionId) -> list[CoreEffect]:
        session = self._sessions.get(session_id)
        if session is None:
            return []
        return self._settle(session, session.on_timeout())

    # --- internals ------------------------------------------------------------------------
    def _admit(self, session: Session, effects: list[Effect]) -> list[CoreEffect]:
        sid = session.session_id
        if sid in self._sessions:
            error = InvalidRequest("duplicate session id")
            if session.is_master:
                return [Fail(sid, error)]
            return [Send(session.master, SessionError(sid, str(error), kind_of(error)))]
        if session.WRITES_KEY and not session.finished:
            other = self._writing.get(session.key_id)
            if other is not None:
                error = InvalidRequest("another session is writing this key")
                if session.is_master:
                    return [Fail(sid, error)]
                return [Send(session.master, SessionError(sid, str(error), kind_of(error)))]
            self._writing[session.key_id] = sid
        self._sessions[sid] = session
        admitted: list[CoreEffect] = [Admitted(sid), *self._settle(session, effects)]
        if session.EXCLUSIVE and not session.finished:
            self._exclusive = sid
            admitted += self._drained()
        return admitted

    def _settle(self, session: Session, effects: list[Effect]) -> list[CoreEffect]:
        """Pass a session's effects on; when it has ended, drop it and tell the others."""
        out: list[CoreEffect] = list(effects)
        if not session.finished:
            return out
        sid = session.session_id
        self._sessions.pop(sid, None)
        if self._writing.get(session.key_id) == sid:
            del self._writing[session.key_id]
        if self._exclusive == sid:
            self._exclusive = None
        failure = next((e for e in effects if isinstance(e, Fail)), None)
        if failure is not None:
            notify = session.participants if session.is_master else frozenset({session.master})
            reason, kind = str(failure.error), kind_of(failure.error)
            out += [
                Send(node, SessionError(sid, reason, kind))
                for node in sorted(notify)
                if node != self.ctx.self_id
            ]
        elif not any(isinstance(e, Finish) for e in effects):
            out.append(Finish(sid, None))
        if self._exclusive is not None and self._exclusive != sid:
            out += self._drained()
        return out

    def _drained(self) -> list[CoreEffect]:
        """`on_drained` for the exclusive session once no other session is left."""
        exclusive = self.exclusive_session
        if exclusive is None or len(self._sessions) != 1:
            return []
        return self._settle(exclusive, exclusive.on_drained())
