"""The async driver: feeds transport events to the session table and carries out its effects.

Effects of one event are carried out in order; a Persist is written (synced) before any later
effect of the same event, so nothing is sent that depends on a write that could still be lost.
A Record goes to the audit log the same way: a release is logged before what it releases leaves
the node, and a release that cannot be logged does not happen. A peer that sessions wait on and
that goes silent or cannot be reached is lost for them within the response deadline
(cluster/liveness.py); the session timeout is only the backstop.
A service contract's session (sessions/origin.py) is checked by the node's `OriginVerifier`
(none: every such session is refused), and its end goes to the node's outcome handler.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Final, Protocol

from secretstore.audit.receipts import ReleaseReceipts
from secretstore.audit.recorder import AuditRecorder
from secretstore.cluster.access import AccessPolicy
from secretstore.cluster.liveness import DEFAULT_RESPONSE_TIMEOUT, PeerLiveness
from secretstore.cluster.observer import ClusterObserver, NullObserver, session_kind
from secretstore.errors import (
    AuditLogError,
    MalformedMessage,
    SecretStoreError,
    SessionTimeout,
    describe,
)
from secretstore.mesh.port import Transport
from secretstore.sessions.admin.delete import tombstone_pushes
from secretstore.sessions.base import (
    CheckAccess,
    Deadline,
    Fail,
    Finish,
    Notice,
    Persist,
    Record,
    Remove,
    Send,
    Wake,
)
from secretstore.sessions.core import Admitted, CoreEffect, NodeCore
from secretstore.sessions.origin import CheckOrigin, OriginClaim, OriginOutcome
from secretstore.storage.model import Tombstone
from secretstore.storage.port import KeyStorage
from secretstore.types import NodeId, SessionId
from secretstore.wire import codec
from secretstore.wire.common import SessionError, kind_of

log = logging.getLogger(__name__)

DEFAULT_SESSION_TIMEOUT = 30.0
#: A slave's session times out after this share of the session timeout, its master's after
#: the whole of it: a slave that waits for another node fails first and names that node, and
#: its error reaches the master (whose own error then carries it) before the master's clock
#: ends the session.
SLAVE_TIMEOUT_SHARE: Final = 0.8


@dataclass(frozen=True, slots=True)
class Released:
    """A master's result and, for a release, every participant's receipt of it."""

    value: Any
    receipts: ReleaseReceipts | None


class OriginVerifier(Protocol):
    """Reads a claimed service contract request from the contract (chain/services/origin.py)."""

    async def verify(self, claim: OriginClaim) -> str | None:
        """None when the contract holds exactly the claimed request, else why not."""
        ...


class ClusterDriver:
    """Runs one node's sessions over a transport, a key storage and an access policy."""

    def __init__(
        self,
        core: NodeCore,
        transport: Transport,
        storage: KeyStorage,
        access: AccessPolicy,
        session_timeout: float = DEFAULT_SESSION_TIMEOUT,
        *,
        response_timeout: float = DEFAULT_RESPONSE_TIMEOUT,
        audit: AuditRecorder | None = None,
        observer: ClusterObserver | None = None,
    ) -> None:
        """`audit`: this node's audit log; a session's Record fails its session without."""
        self.core = core
        self.transport = transport
        self.storage = storage
        self.access = access
        self.session_timeout = session_timeout
        self.audit = audit
        self.observer: ClusterObserver = observer if observer is not None else NullObserver()
        self._results: dict[SessionId, asyncio.Future[Any]] = {}
        self._receipts: dict[SessionId, ReleaseReceipts] = {}
        self._timers: dict[SessionId, asyncio.TimerHandle] = {}
        self._wakes: dict[SessionId, asyncio.TimerHandle] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        #: access answers the policy knew at once, fed back once the effects in hand are done
        self._answers: deque[tuple[SessionId, bool]] = deque()
        self._depth = 0
        self._closed = False
        self._short_self = core.ctx.self_id[:4].hex()
        self.liveness = PeerLiveness(
            transport, core.peers_in_sessions, self._on_node_lost, response_timeout
        )
        self._origins: OriginVerifier | None = None
        self._on_outcome: Callable[[OriginOutcome], None] = lambda outcome: None

    @property
    def clocks_running(self) -> int:
        """How many session timeout clocks run (each is stopped when its session ends)."""
        return len(self._timers)

    @property
    def requests_waiting(self) -> int:
        """How many `request`/`release` calls wait for their session here."""
        return len(self._results)

    def serve_origins(
        self, verifier: OriginVerifier, on_outcome: Callable[[OriginOutcome], None]
    ) -> None:
        """Take part in service contract sessions: `verifier` checks each one's request on its
        contract, `on_outcome` gets each one's end (it must not block or raise)."""
        self._origins = verifier
        self._on_outcome = on_outcome

    # --- the API the key server calls --------------------------------------------------------
    async def request(self, request: Any) -> Any:
        """Run a session as master for `request` and return its result (or raise its error)."""
        return (await self.release(request)).value

    async def release(self, request: Any) -> Released:
        """As `request`, with the receipts of the release when the session recorded one."""
        loop = asyncio.get_running_loop()
        sid = self.core.new_session_id()
        future: asyncio.Future[Any] = loop.create_future()
        self._results[sid] = future
        self.observer.session_started(sid, session_kind(request), True)
        error: BaseException | None = None
        try:
            _, effects = self.core.start(request, self.transport.connected(), sid)
            self._apply(effects)
            value = await future
            return Released(value, self._receipts.pop(sid, None))
        except BaseException as exc:
            error = exc
            raise
        finally:
            self._results.pop(sid, None)
            self._receipts.pop(sid, None)
            self.observer.session_ended(sid, error)

    # --- transport events (the Transport's handler) -------------------------------------------
    def on_message(self, node: NodeId, payload: bytes) -> None:
        try:
            message = codec.decode(payload)
        except MalformedMessage as exc:
            log.warning("node %s: undecodable message dropped: %s", node[:4].hex(), exc)
            return
        self.observer.frame_received(node, len(payload))
        effects = self.core.on_message(node, message)
        for effect in effects:  # a session this message started here (as a slave)
            if isinstance(effect, Admitted) and effect.session_id == message.session_id:
                self.observer.session_started(effect.session_id, session_kind(message), False)
        self._apply(effects)

    def on_connected(self, node: NodeId) -> None:
        """A link came up: push every tombstone this node keeps, so a node that was away
        when a key was deleted erases it now."""
        log.debug("node %s connected", node[:4].hex())
        self.liveness.on_connected(node)
        try:
            self._push_tombstones(node, self.storage.tombstones())
        except SecretStoreError as exc:
            log.error("cannot read the tombstones to push to node %s: %s", node[:4].hex(), exc)

    def on_disconnected(self, node: NodeId) -> None:
        reason = self.transport.close_reason(node) or "disconnected"
        self._apply(self.core.on_node_disconnected(node, reason))

    def _on_node_lost(self, sid: SessionId, node: NodeId, why: str) -> None:
        """One session's message could not reach `node` in time (liveness rule 2)."""
        self._apply(self.core.on_node_unreachable(sid, node, why))

    # --- effects ------------------------------------------------------------------------------
    def _apply(self, effects: Iterable[CoreEffect]) -> None:
        self._depth += 1
        try:
            self._carry_out(effects)
        finally:
            self._depth -= 1
        if self._depth == 0:
            self._feed_known_answers()

    def _feed_known_answers(self) -> None:
        """Access answers the policy knew at once, each after every effect that came with its
        CheckAccess (so a master's requests are out before its own part is computed)."""
        self._depth += 1
        try:
            while self._answers:
                sid, allowed = self._answers.popleft()
                self._carry_out(self.core.on_access_checked(sid, allowed))
        finally:
            self._depth -= 1

    def _carry_out(self, effects: Iterable[CoreEffect]) -> None:
        effects = list(effects)
        failed: dict[SessionId, SecretStoreError] = {}  # sessions whose write failed
        # Messages of a session that ends here with a result someone here waits for (a
        # master's closing messages) go out after that caller has run: its HTTP answer
        # does not wait for them. In order, in the next turn of the loop.
        answering = {
            effect.session_id
            for effect in effects
            if isinstance(effect, Finish) and effect.session_id in self._results
        }
        later: list[Send] = []
        for effect in effects:
            if failed and self._replace_after_failure(effect, failed):
                continue
            if isinstance(effect, Send):
                if answering and _session_of(effect) in answering:
                    later.append(effect)
                else:
                    self._send(effect)
            elif isinstance(effect, Persist):
                try:
                    self._persist(effect)
                except SecretStoreError as exc:
                    failed[effect.session_id] = exc
                    self._storage_failed(effect, exc)
            elif isinstance(effect, Record):
                try:
                    self._record(effect)
                except SecretStoreError as exc:
                    failed[effect.session_id] = exc
                    self._storage_failed(effect, exc)
            elif isinstance(effect, Remove):
                try:
                    self._remove(effect)
                except SecretStoreError as exc:
                    failed[effect.session_id] = exc
                    self._storage_failed(effect, exc)
            elif isinstance(effect, CheckAccess):
                known = self.access.known(effect.requester, effect.key_id, effect.block)
                if known is None:
                    self._spawn(self._check_access(effect))
                else:
                    self._answers.append((effect.session_id, known))
            elif isinstance(effect, Finish):
                if effect.receipts is not None and effect.session_id in self._results:
                    self._receipts[effect.session_id] = effect.receipts
                self._settle(effect.session_id, result=effect.result)
            elif isinstance(effect, Fail):
                self._settle(effect.session_id, error=effect.error)
            elif isinstance(effect, Admitted):
                self._start_clock(effect.session_id, effect.master)
            elif isinstance(effect, Deadline):
                self._restart_clock(effect.session_id, effect.seconds)
            elif isinstance(effect, Wake):
                self._set_wake(effect.session_id, effect.seconds)
            elif isinstance(effect, Notice):
                log.info("%s", effect.text)
            elif isinstance(effect, CheckOrigin):
                self._spawn(self._check_origin(effect))
            elif isinstance(effect, OriginOutcome):
                self._on_outcome(effect)
        if later:
            asyncio.get_running_loop().call_soon(self._send_all, later)
        self.liveness.sessions_changed()

    def _send_all(self, sends: list[Send]) -> None:
        if self._closed:
            return
        for effect in sends:
            self._send(effect)

    def _persist(self, effect: Persist) -> None:
        if effect.create:
            self.storage.insert(effect.key_id, effect.share)
            self.observer.key_created()
        else:
            self.storage.update(effect.key_id, effect.share)

    def _remove(self, effect: Remove) -> None:
        if effect.tombstone is None:
            if self.storage.remove(effect.key_id):
                self.observer.key_removed()
            return
        if self.storage.bury(effect.key_id, effect.tombstone):
            self.observer.key_removed()
        for node in sorted(self.transport.connected()):
            self._push_tombstones(node, [effect.tombstone])

    def _push_tombstones(self, node: NodeId, tombstones: Iterable[Tombstone]) -> None:
        """Tell `node` of keys this node erased because their author deleted them."""
        for push in tombstone_pushes(tombstones, self.core.new_session_id):
            self._send(Send(node, push))

    def _record(self, effect: Record) -> None:
        if self.audit is None:
            raise AuditLogError("this node keeps no audit log; nothing was released")
        self.audit.append(effect.facts, effect.receipt)
        if effect.receipts is not None and effect.session_id in self._results:
            self._receipts[effect.session_id] = effect.receipts

    def _storage_failed(self, effect: Persist | Remove | Record, error: SecretStoreError) -> None:
        """A key share could not be written or removed, or an audit entry written: end its
        session now instead of at its timeout."""
        sid = effect.session_id
        key_id = effect.facts.key_id if isinstance(effect, Record) else effect.key_id
        what = {Persist: "writing key", Remove: "removing key"}.get(
            type(effect), "logging the release of key"
        )
        log.error("session %s: %s 0x%s failed: %s", sid[:4].hex(), what, key_id.hex(), error)
        self._settle(sid, error=error)
        self._apply(self.core.abort(sid, error))

    def _replace_after_failure(
        self, effect: CoreEffect, failed: dict[SessionId, SecretStoreError]
    ) -> bool:
        """Effects of a session whose write failed are not carried out; a message it was about
        to send (which may announce the write) becomes a SessionError. True if handled."""
        if isinstance(effect, Send):
            sid = _session_of(effect)
            error = failed.get(sid)
            if error is not None:
                self._send(Send(effect.to, SessionError(sid, str(error), kind_of(error))))
                return True
            return False
        if isinstance(effect, Persist | Remove | Record | Finish | Fail | Deadline | Wake):
            return effect.session_id in failed
        return False

    def _send(self, effect: Send) -> None:
        payload = codec.encode(effect.message)
        if self.transport.send(effect.to, payload):
            self.observer.frame_sent(effect.to, len(payload))
            return
        if effect.to in self.core.ctx.cluster_nodes:
            # Not connected (yet): held until the link comes up or the deadline passes.
            self.liveness.hold(effect.to, _session_of(effect), payload)
        else:
            log.debug("node %s is not in the node set; message dropped", effect.to[:4].hex())

    async def _check_access(self, effect: CheckAccess) -> None:
        try:
            allowed = await self.access.check(effect.requester, effect.key_id, effect.block)
        except SecretStoreError as exc:
            # The policy cannot decide (no trusted chain, the pinned block is not here): the
            # session ends with that error, here and (through the core) on the other side.
            sid = effect.session_id
            log.warning("session %s: access check failed: %s", sid[:4].hex(), exc)
            self._settle(sid, error=exc)
            self._apply(self.core.abort(sid, exc))
            return
        except Exception as exc:  # an unexpected failure: one line, no traceback
            log.warning(
                "access check of key 0x%s failed, taken as denied: %s: %s",
                effect.key_id.hex(),
                type(exc).__name__,
                exc,
            )
            allowed = False
        self._apply(self.core.on_access_checked(effect.session_id, allowed))

    async def _check_origin(self, effect: CheckOrigin) -> None:
        problem: str | None = "this node serves no service contracts"
        try:
            if self._origins is not None:
                problem = await self._origins.verify(effect.claim)
        except Exception as exc:  # the chain did not answer: not proven, so refused
            problem = f"the contract could not be read: {exc}"
        if problem is not None:
            log.warning(
                "session %s of node %s: %s refused: %s",
                effect.session_id[:4].hex(),
                effect.master[:4].hex(),
                effect.claim.describe(),
                problem,
            )
        self._apply(self.core.on_origin_checked(effect.session_id, problem))

    def _settle(
        self, sid: SessionId, result: Any = None, error: SecretStoreError | None = None
    ) -> None:
        timer = self._timers.pop(sid, None)
        if timer is not None:
            timer.cancel()
        wake = self._wakes.pop(sid, None)
        if wake is not None:
            wake.cancel()
        self.observer.session_ended(sid, error)
        future = self._results.get(sid)
        if future is None or future.done():
            if error is not None:
                log.info("session %s failed: %s", sid[:4].hex(), describe(error))
            return
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)

    def _start_clock(self, sid: SessionId, master: bool) -> None:
        loop = asyncio.get_running_loop()
        delay = self.session_timeout if master else self.session_timeout * SLAVE_TIMEOUT_SHARE
        self._timers[sid] = loop.call_later(delay, self._time_out, sid)

    def _restart_clock(self, sid: SessionId, seconds: float) -> None:
        if self.core.session(sid) is None:
            return  # ended already: nothing to time
        timer = self._timers.pop(sid, None)
        if timer is not None:
            timer.cancel()
        loop = asyncio.get_running_loop()
        self._timers[sid] = loop.call_later(seconds, self._time_out, sid)

    def _set_wake(self, sid: SessionId, seconds: float) -> None:
        if self.core.session(sid) is None:
            return  # ended already
        old = self._wakes.pop(sid, None)
        if old is not None:
            old.cancel()
        loop = asyncio.get_running_loop()
        self._wakes[sid] = loop.call_later(seconds, self._wake, sid)

    def _wake(self, sid: SessionId) -> None:
        self._wakes.pop(sid, None)
        self._apply(self.core.on_wake(sid))

    def _time_out(self, sid: SessionId) -> None:
        self._timers.pop(sid, None)
        effects = self.core.on_timeout(sid)
        if not effects:
            self._settle(sid, error=SessionTimeout("the session did not finish in time"))
        self._apply(effects)
        if self.core.session(sid) is not None and sid not in self._timers:
            # The session went on past its timeout without a new deadline: it would never
            # end, so the backstop ends it here (here and on the other side).
            error = SessionTimeout("the session did not finish in time")
            log.warning("session %s: still running at its timeout; ended", sid[:4].hex())
            self._settle(sid, error=error)
            self._apply(self.core.abort(sid, error))

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        self._closed = True
        self.liveness.close()
        for timer in [*self._timers.values(), *self._wakes.values()]:
            timer.cancel()
        self._timers.clear()
        self._wakes.clear()
        for task in list(self._tasks):
            task.cancel()
        for future in self._results.values():
            if not future.done():
                future.set_exception(SessionTimeout("the node is shutting down"))


def _session_of(effect: Send) -> SessionId:
    """The session a message belongs to (an empty id for one outside the sessions)."""
    sid: SessionId = getattr(effect.message, "session_id", SessionId(b""))
    return sid
