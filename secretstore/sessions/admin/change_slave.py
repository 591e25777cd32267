"""A slave's part of a node set change: accept (after the drain) with this node's
inventory, deal and receive the keys the master starts, erase everything at the end when this
node leaves the set (see node_set_change.py for the phase table)."""

from __future__ import annotations

from secretstore.errors import ProtocolViolation, SecretStoreError, SessionTimeout
from secretstore.sessions.admin.node_set_change import ChangePhase, NodeSetChange
from secretstore.sessions.admin.plan import inventory_messages
from secretstore.sessions.admin.plan import inventory_pages as read_inventory
from secretstore.sessions.base import Effect, Send, short, timed_out_waiting_for
from secretstore.types import NodeId
from secretstore.wire.admin import (
    KeyDeal,
    KeyMoved,
    KeySubshare,
    NodeSetChangeAccepted,
    NodeSetChangeCompleted,
    NodeSetChangeFinished,
    NodeSetChangeProgress,
)


class NodeSetChangeSlave(NodeSetChange):
    """Every other node of the old set."""

    def _running_phase(self) -> ChangePhase:
        return ChangePhase.RUNNING

    def _on_drained(self) -> list[Effect]:
        pages = inventory_messages(self.session_id, read_inventory(self.settings.keys))
        effects: list[Effect] = [Send(self.master, NodeSetChangeAccepted(self.session_id))]
        effects += [Send(self.master, page) for page in pages]
        return [*effects, self._touch()]

    def _dispatch(self, sender: NodeId, message: object) -> list[Effect]:
        if not self.drained:
            if sender == self.master and message == self.init:
                return []
            raise ProtocolViolation(short(sender), f"sent {type(message).__name__} too early")
        if isinstance(message, KeySubshare):
            return [self._touch(), *self._on_subshare(sender, message)]
        if isinstance(message, KeyMoved) and sender != self.master:
            self._on_confirmed(sender, message)
            return [self._touch(), *self._end_when_confirmed()]
        if sender != self.master:
            raise ProtocolViolation(short(sender), f"sent {type(message).__name__}")
        if isinstance(message, KeyDeal):
            return [self._touch(), *self._on_deal(message)]
        if isinstance(message, NodeSetChangeProgress):
            self.done, self.total = message.done, message.total
            return [self._touch()]
        if isinstance(message, NodeSetChangeCompleted):
            self.completed = True
            return [self._touch(), *self._end_when_confirmed()]
        if message == self.init:
            return []
        raise ProtocolViolation(short(sender), f"sent {type(message).__name__}")

    def on_peer_error(self, sender: NodeId, reason: str) -> list[Effect]:
        if self.finished or sender != self.master:
            return []
        return [self._notice(f"the master ended the change: {reason[:200]}"), *self.finish()]

    def on_peer_refusal(self, sender: NodeId, error: SecretStoreError) -> list[Effect]:
        return self.on_peer_error(sender, str(error))

    def waiting_for(self) -> frozenset[NodeId]:
        """The dealers whose subshares of a key this node has begun to receive are still
        missing; after the master's word that the change is complete, the new-set nodes
        that have not confirmed a key of this leaving node; else the master (its next key,
        or the end)."""
        if self.completed:
            return self._unconfirmed() or frozenset({self.master})
        return self._missing_dealers() or frozenset({self.master})

    def _end_when_confirmed(self, *, anyway: bool = False) -> list[Effect]:
        """Once the master said the change is complete: a node that stays ends at once; a
        leaving one once every new-set node but the master confirmed each of its keys (their
        KeyMoved may come after the master's word), or `anyway` (no progress for
        `stall_timeout`), then erases what was confirmed and keeps the rest."""
        if not self.completed:
            return []
        if not anyway and self.ctx.self_id not in self.new_set and self._unconfirmed():
            return []
        effects = self._erase_if_removed()
        effects.append(Send(self.master, NodeSetChangeFinished(self.session_id)))
        return effects + self.finish()

    def _stalled(self) -> list[Effect]:
        if self.completed:
            return self._end_when_confirmed(anyway=True)
        error = timed_out_waiting_for(self.waiting_for())
        what = f"{error.what} (the node set change made no progress)"
        return self.fail(SessionTimeout(what, error.node))

    def _moved_here(self, moved: KeyMoved) -> list[Effect]:
        return [Send(self.master, moved)]
