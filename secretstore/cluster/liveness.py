"""Liveness of the peers that sessions wait on: where this node decides that a peer is lost.

Every rule ends in the same event for the sessions that need the peer, a loss with its
reason, so that the client's error and the log name the node and why (`NodeCore` adds
"node 1a2b3c4d: did not answer for 2 s" to the error of every session that fails for it):

1. Watched links. After every change of the session table the peers that live sessions take
   part with are handed to the transport (`Transport.watch`, at most once per turn of the
   event loop). The mesh pings a watched link and closes it when it stays silent for the
   response deadline (mesh/connection.py); the driver hears a disconnection, whose reason
   the transport keeps (`Transport.close_reason`). Idle links are not watched: they cost
   nothing beyond the keep-alive.
2. Held messages. A message for a configured node that is not connected (its link is
   re-forming: it restarted, or a partition healed) is held for up to the response deadline
   and sent, in order, as soon as the link is up; if none comes up in time, the session that
   sent it loses the node ("was not connected for 2 s"), and only that session.

The session timeout stays the backstop for a session that waits on a live peer which never
answers it (a peer that breaks the protocol by silence).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Final

from secretstore.mesh.port import Transport
from secretstore.types import NodeId, SessionId

log = logging.getLogger(__name__)

#: Seconds a peer that a session waits on may stay silent or unconnected (`peer_timeout`).
DEFAULT_RESPONSE_TIMEOUT: Final = 2.0
#: Messages held for one unconnected node at most; beyond that the oldest sessions lose it.
MAX_HELD_PER_NODE: Final = 4096

#: (session id, the node it lost, why)
LossHandler = Callable[[SessionId, NodeId, str], None]


class PeerLiveness:
    """Watches the links that sessions wait on and holds messages for re-forming links."""

    def __init__(
        self,
        transport: Transport,
        peers_in_sessions: Callable[[], frozenset[NodeId]],
        on_lost: LossHandler,
        response_timeout: float = DEFAULT_RESPONSE_TIMEOUT,
    ) -> None:
        if response_timeout <= 0:
            raise ValueError("the response timeout must be positive")
        self.response_timeout = response_timeout
        self._transport = transport
        self._peers_in_sessions = peers_in_sessions
        self._on_lost = on_lost
        self._watched: frozenset[NodeId] = frozenset()
        self._refresh: asyncio.Handle | None = None
        self._held: dict[NodeId, list[tuple[SessionId, bytes]]] = {}
        self._expiry: dict[NodeId, asyncio.TimerHandle] = {}

    @property
    def watched(self) -> frozenset[NodeId]:
        """The peers whose links are watched now."""
        return self._watched

    def held_for(self, node: NodeId) -> int:
        """How many messages wait for `node`'s link."""
        return len(self._held.get(node, ()))

    # --- rule 1: watched links --------------------------------------------------------------
    def sessions_changed(self) -> None:
        """The session table may have changed: refresh the watched links this loop turn."""
        if self._refresh is None:
            self._refresh = asyncio.get_running_loop().call_soon(self._update_watch)

    def _update_watch(self) -> None:
        self._refresh = None
        peers = self._peers_in_sessions()
        if peers != self._watched:
            self._watched = peers
            self._transport.watch(peers)

    # --- rule 2: held messages --------------------------------------------------------------
    def hold(self, node: NodeId, session_id: SessionId, payload: bytes) -> None:
        """Keep a message for `node`, which is not connected, until its link comes up."""
        held = self._held.setdefault(node, [])
        if len(held) >= MAX_HELD_PER_NODE:
            old_session, _ = held.pop(0)
            self._lose(old_session, node, "was not connected and too many messages waited")
        held.append((session_id, payload))
        if node not in self._expiry:
            loop = asyncio.get_running_loop()
            self._expiry[node] = loop.call_later(self.response_timeout, self._expire, node)

    def on_connected(self, node: NodeId) -> None:
        """`node`'s link is up: send what waited for it, in order."""
        timer = self._expiry.pop(node, None)
        if timer is not None:
            timer.cancel()
        held = self._held.pop(node, [])
        for index, (_session, payload) in enumerate(held):
            if not self._transport.send(node, payload):
                # the link went down again at once: keep the rest waiting
                for session_id, rest in held[index:]:
                    self.hold(node, session_id, rest)
                return

    def _expire(self, node: NodeId) -> None:
        self._expiry.pop(node, None)
        held = self._held.pop(node, [])
        why = f"was not connected for {self.response_timeout:g} s"
        for session_id in dict.fromkeys(session for session, _ in held):
            self._lose(session_id, node, why)

    def _lose(self, session_id: SessionId, node: NodeId, why: str) -> None:
        try:
            self._on_lost(session_id, node, why)
        except Exception:
            log.exception("session %s: handling the loss of a node failed", session_id[:4].hex())

    def close(self) -> None:
        """Stop every timer; held messages are dropped."""
        if self._refresh is not None:
            self._refresh.cancel()
            self._refresh = None
        for timer in self._expiry.values():
            timer.cancel()
        self._expiry.clear()
        self._held.clear()
