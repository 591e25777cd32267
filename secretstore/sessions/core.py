"""The session table of one node: routes events to sessions, creates slaves, ends sessions.

Pure: the async driver (cluster/) and the simulated network (tests/sim) both run it. It reads
key shares through a synchronous port and returns effects; it never writes, sends or sleeps.

Exclusive sessions (the node set change): while one is in the table no other session starts
here (a master fails, a slave's master is told, both with ExclusiveSessionActive); sessions
already running go on, and the exclusive session hears `on_drained` once it is alone. When it
leaves the table (finished or failed) every `on_exclusive_end` listener is called with it.

Session limit: a peer may have at most `max_sessions_per_peer` sessions open here as their
master. An initialising message beyond that is refused before its slave factory runs, with a
SessionError of kind SESSION_LIMIT naming this node, the count and the limit; the master then
treats this node as lost for that session. A slot is freed whenever a session leaves the table
(finished, failed, aborted, timed out, or failed by a disconnection). The first refusal of a
burst is noticed; the burst ends when the peer is down to half the limit again.

Service contract requests (sessions/origin.py): an initialising message with an origin claim
is held (it counts against its master's limit) until the driver answers its CheckOrigin; the
slave is created only for a request the contract holds (otherwise the master is answered
ConsensusUnreachable: not confirmed here, perhaps not yet), and its end is reported as an
OriginOutcome. A held message is dropped when its master disconnects or sends anything else
for that session (it ended, or went on without this node).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any, Final, Protocol

from secretstore.errors import (
    ConsensusUnreachable,
    ExclusiveSessionActive,
    InvalidRequest,
    SecretStoreError,
    SessionLimitReached,
    describe,
)
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
from secretstore.sessions.claims import KeyClaims
from secretstore.sessions.origin import CheckOrigin, OriginClaim, OriginOutcome, claim_of
from secretstore.storage.model import KeyShare
from secretstore.types import NodeId, ServerKeyId, SessionId
from secretstore.wire.common import ErrorKind, SessionError, error_of, kind_of


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
    """A session joined the table: the driver starts its timeout clock (`master`: this node
    is the session's master; a slave's clock is the shorter, cluster/driver.py)."""

    session_id: SessionId
    master: bool


CoreEffect = Effect | Notice | Admitted | CheckOrigin | OriginOutcome

#: How many sessions one peer may have open here as their master (`max_sessions_per_peer`).
DEFAULT_MAX_SESSIONS_PER_PEER: Final = 256


def attributed(node: NodeId, reason: str) -> str:
    """A peer's refusal as this node passes it on: its text, prefixed with the peer's id
    unless it names the peer first already (a peer cannot put its refusal in another's
    name)."""
    prefix = f"node {short(node)}: "
    return reason if reason.startswith(prefix) else prefix + reason


class NodeCore:
    """Every session of one node, keyed by session id."""

    def __init__(
        self,
        ctx: SessionContext,
        shares: ShareReader,
        masters: Mapping[type[Any], MasterFactory],
        slaves: Mapping[type[Any], SlaveFactory],
        *,
        max_sessions_per_peer: int = DEFAULT_MAX_SESSIONS_PER_PEER,
        claims: KeyClaims | None = None,
    ) -> None:
        """`claims`: the node's key claims, shared with sessions that claim keys themselves
        (sessions/claims.py); a fresh table by default."""
        if max_sessions_per_peer < 1:
            raise ValueError("max_sessions_per_peer must be at least 1")
        self.ctx = ctx
        self._shares = shares
        self._masters = dict(masters)
        self._slaves = dict(slaves)
        self._sessions: dict[SessionId, Session] = {}
        self.claims = claims if claims is not None else KeyClaims()
        self._exclusive: SessionId | None = None
        self.max_sessions_per_peer = max_sessions_per_peer
        #: open sessions per master, for masters other than this node
        self._by_master: dict[NodeId, int] = {}
        #: masters refused in the current burst → how many sessions were refused
        self._refused: dict[NodeId, int] = {}
        #: initialising messages waiting for their origin check: session id → (master, message)
        self._held: dict[SessionId, tuple[NodeId, Any, OriginClaim]] = {}
        #: sessions serving a contract's request → the claim their origin check confirmed
        self._origins: dict[SessionId, OriginClaim] = {}
        self._exclusive_ended: list[Callable[[Session], None]] = []

    # --- queries --------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._sessions)

    def session(self, session_id: SessionId) -> Session | None:
        return self._sessions.get(session_id)

    @property
    def exclusive_session(self) -> Session | None:
        """The exclusive session in the table (a node set change), if one is."""
        return None if self._exclusive is None else self._sessions.get(self._exclusive)

    def sessions(self) -> list[Session]:
        """Every session in the table."""
        return list(self._sessions.values())

    def sessions_of(self, master: NodeId) -> int:
        """How many sessions the peer `master` has open here as their master (counting the
        requests of theirs whose origin check is under way)."""
        held = sum(1 for node, _, _ in self._held.values() if node == master)
        return self._by_master.get(master, 0) + held

    def is_writing(self, key_id: ServerKeyId) -> bool:
        """Whether a session that writes `key_id` (generation, store, a refresh or delete of
        it) holds its claim here now."""
        return self.claims.holder(key_id) is not None

    def on_exclusive_end(self, listener: Callable[[Session], None]) -> None:
        """Call `listener(session)` whenever an exclusive session (a node set change) leaves
        the table, finished or failed (the session says which); it must not raise."""
        self._exclusive_ended.append(listener)

    def set_cluster_nodes(self, nodes: frozenset[NodeId]) -> None:
        """The cluster's node set changed (the key server set contract, or `nodes` re-read on
        SIGHUP): sessions created from now on see `nodes`; running sessions keep theirs."""
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
        held = self._held.get(sid)
        if held is not None and held[0] == sender and message != held[1]:
            # the master went on without this node (it ended or failed the session)
            del self._held[sid]
            return [Notice(f"{type(message).__name__} ends held session {sid[:4].hex()}")]
        if isinstance(message, SessionError):
            if session is None or sender not in session.participants:
                return []
            if message.kind == ErrorKind.TIMED_OUT:
                return self._settle(session, session.on_peer_timeout(sender, message.reason))
            refusal = error_of(message.kind, attributed(sender, message.reason))
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
        if sid in self._held:
            return []  # the same request again while its origin is checked
        if self.sessions_of(sender) >= self.max_sessions_per_peer:
            return self._refuse_over_limit(sender, sid)
        claim = claim_of(message)
        if claim is not None:
            self._held[sid] = (sender, message, claim)
            return [CheckOrigin(sid, sender, claim)]
        return self._create_slave(sender, message, None)

    def on_origin_checked(self, session_id: SessionId, problem: str | None) -> list[CoreEffect]:
        """The driver read a held request's origin from its contract: create the slave (None:
        the request is there), or refuse the master (`problem`: why not)."""
        held = self._held.pop(session_id, None)
        if held is None:
            return []
        sender, message, claim = held
        if problem is not None:
            # not proven here (yet): the master may find the request confirmed on a retry
            error = ConsensusUnreachable(
                f"node {short(self.ctx.self_id)} cannot confirm the request on the contract: "
                f"{claim.describe()}: {problem}"
            )
            return [
                Notice(f"refused node {short(sender)}'s session {session_id[:4].hex()}: {error}"),
                Send(sender, SessionError(session_id, str(error), kind_of(error))),
            ]
        return self._create_slave(sender, message, claim)

    def _create_slave(
        self, sender: NodeId, message: Any, claim: OriginClaim | None
    ) -> list[CoreEffect]:
        sid: SessionId = message.session_id
        factory = self._slaves[type(message)]
        key_id: ServerKeyId = message.key_id
        if self._exclusive is not None:
            error = ExclusiveSessionActive("Exclusive session active")
            return [Send(sender, SessionError(sid, str(error), kind_of(error)))]
        try:
            session, effects = factory(self.ctx, sender, message, self._shares.get(key_id))
        except SecretStoreError as exc:
            return [Send(sender, SessionError(sid, str(exc), kind_of(exc)))]
        if claim is None or session.session_id in self._sessions:
            return self._admit(session, effects)
        self._origins[sid] = claim
        out = self._admit(session, effects)
        if self._sessions.get(sid) is not session and not session.finished:
            self._origins.pop(sid, None)  # refused (another session writes the key)
        return out

    def on_access_checked(self, session_id: SessionId, allowed: bool) -> list[CoreEffect]:
        session = self._sessions.get(session_id)
        if session is None:
            return []
        return self._settle(session, session.on_access_checked(allowed))

    def on_node_disconnected(self, node: NodeId, why: str = "") -> list[CoreEffect]:
        """`node` went away; `why` (e.g. "did not answer for 2.0 s") is added to the errors of
        the sessions that fail for it, so the client and the log learn which node and why."""
        for sid in [sid for sid, (master, _, _) in self._held.items() if master == node]:
            del self._held[sid]
        effects: list[CoreEffect] = []
        for session in list(self._sessions.values()):
            if node in session.participants and node != self.ctx.self_id:
                effects += self._lose(session, node, why)
        return effects

    def on_node_unreachable(
        self, session_id: SessionId, node: NodeId, why: str
    ) -> list[CoreEffect]:
        """A message of one session could not reach `node` (no link came up in time): that
        session loses the node as if it had disconnected; other sessions are not told."""
        session = self._sessions.get(session_id)
        if session is None or node not in session.participants or node == self.ctx.self_id:
            return []
        return self._lose(session, node, why)

    def peers_in_sessions(self) -> frozenset[NodeId]:
        """The other nodes that live sessions here take part with (whose silence matters)."""
        peers: set[NodeId] = set()
        for session in self._sessions.values():
            peers |= session.participants
        peers.discard(self.ctx.self_id)
        return frozenset(peers)

    def abort(self, session_id: SessionId, error: SecretStoreError) -> list[CoreEffect]:
        """End a live session with `error` (e.g. its key share could not be written): it fails
        and the other side is told. Nothing for a session that has ended already."""
        session = self._sessions.get(session_id)
        if session is None:
            return []
        return self._settle(session, session.fail(error))

    def on_wake(self, session_id: SessionId) -> list[CoreEffect]:
        session = self._sessions.get(session_id)
        if session is None:
            return []
        return self._settle(session, session.on_wake())

    def on_timeout(self, session_id: SessionId) -> list[CoreEffect]:
        session = self._sessions.get(session_id)
        if session is None:
            return []
        return self._settle(session, session.on_timeout())

    # --- internals ------------------------------------------------------------------------
    def _lose(self, session: Session, node: NodeId, why: str) -> list[CoreEffect]:
        effects = session.on_node_disconnected(node)
        if why:
            for effect in effects:
                if isinstance(effect, Fail):
                    effect.error.add_note(f"node {short(node)}: {why}")
        return self._settle(session, effects)

    def _admit(self, session: Session, effects: list[Effect]) -> list[CoreEffect]:
        sid = session.session_id
        if sid in self._sessions:
            error = InvalidRequest("duplicate session id")
            if session.is_master:
                return [Fail(sid, error)]
            return [Send(session.master, SessionError(sid, str(error), kind_of(error)))]
        writes = session.WRITES_KEY and not session.finished
        if writes and not self.claims.claim(session.key_id, sid):
            error = InvalidRequest("another session is writing this key")
            if session.is_master:
                return [Fail(sid, error)]
            return [Send(session.master, SessionError(sid, str(error), kind_of(error)))]
        self._sessions[sid] = session
        if not session.is_master:
            self._by_master[session.master] = self.sessions_of(session.master) + 1
        admitted: list[CoreEffect] = [Admitted(sid, session.is_master)]
        admitted += self._settle(session, effects)
        if session.EXCLUSIVE and not session.finished:
            self._exclusive = sid
            admitted += self._drained()
        return admitted

    def _refuse_over_limit(self, master: NodeId, sid: SessionId) -> list[CoreEffect]:
        count, limit = self.sessions_of(master), self.max_sessions_per_peer
        error = SessionLimitReached(
            f"node {short(self.ctx.self_id)}: {count} sessions of node {short(master)} are "
            f"open here, the limit is {limit}"
        )
        out: list[CoreEffect] = [Send(master, SessionError(sid, str(error), kind_of(error)))]
        refused = self._refused.get(master, 0)
        self._refused[master] = refused + 1
        if refused == 0:
            text = (
                f"refusing new sessions from node {short(master)}: {count} are open here, "
                f"the limit is {limit} (max_sessions_per_peer)"
            )
            out.insert(0, Notice(text))
        return out

    def _forget(self, session: Session) -> list[CoreEffect]:
        """Drop an ended session from the table and free its master's slot."""
        if self._sessions.pop(session.session_id, None) is None:
            return []
        self.claims.release_all(session.session_id)
        if session.is_master:
            return []
        master = session.master
        count = self.sessions_of(master) - 1
        if count > 0:
            self._by_master[master] = count
        else:
            self._by_master.pop(master, None)
        refused = self._refused.get(master)
        if refused is None or count > self.max_sessions_per_peer // 2:
            return []
        del self._refused[master]
        return [
            Notice(
                f"node {short(master)} is below the session limit again; "
                f"{refused} of its sessions were refused"
            )
        ]

    def _settle(self, session: Session, effects: list[Effect]) -> list[CoreEffect]:
        """Pass a session's effects on; when it has ended, drop it and tell the others."""
        out: list[CoreEffect] = list(effects)
        if not session.finished:
            return out
        sid = session.session_id
        out += self._forget(session)
        if self._exclusive == sid:
            self._exclusive = None
            for listener in self._exclusive_ended:
                listener(session)
        failure = next((e for e in effects if isinstance(e, Fail)), None)
        claim = self._origins.pop(sid, None)
        if claim is not None:
            done = next((e for e in effects if isinstance(e, Finish)), None)
            result = done.result if done is not None else None
            out.append(OriginOutcome(sid, claim, result, failure.error if failure else None))
        if failure is not None:
            notify = session.participants if session.is_master else frozenset({session.master})
            reason, kind = describe(failure.error), kind_of(failure.error)
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
