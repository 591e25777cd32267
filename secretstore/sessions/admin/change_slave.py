"""A slave's part of a node set change: accept (after the drain) with this node's
inventory, deal and receive the keys the master starts, erase everything at the end when this
node leaves the set (see node_set_change.py for the phase table)."""

from __future__ import annotations

from secretstore.errors import ProtocolViolation, SecretStoreError, SessionTimeout
from secretstore.sessions.admin.node_set_change import ChangePhase, NodeSetChange
from secretstore.sessions.admin.plan import inventory_pages as read_inventory
from secretstore.sessions.admin.share_change import KeyFault
from secretstore.sessions.base import Effect, Send, short
from secretstore.types import NodeId
from secretstore.wire.admin import (
    InventoryPage,
    KeyChangeFault,
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

    @property
    def phase(self) -> ChangePhase:
        if self.finished:
            return ChangePhase.ENDED
        if not self.drained:
            return ChangePhase.DRAINING
        return ChangePhase.RUNNING

    def _on_drained(self) -> list[Effect]:
        pages = read_inventory(self.settings.keys)
        effects: list[Effect] = [Send(self.master, NodeSetChangeAccepted(self.session_id))]
        effects += [
            Send(self.master, InventoryPage(self.session_id, i, page, i == len(pages) - 1))
            for i, page in enumerate(pages)
        ]
        return [*effects, self._touch()]

    def _dispatch(self, sender: NodeId, message: object) -> list[Effect]:
        if not self.drained:
            if sender == self.master and message == self.init:
                return []
            raise ProtocolViolation(short(sender), f"sent {type(message).__name__} too early")
        if isinstance(message, KeySubshare):
            return [self._touch(), *self._on_subshare(sender, message)]
        if sender != self.master:
            raise ProtocolViolation(short(sender), f"sent {type(message).__name__}")
        if isinstance(message, KeyDeal):
            return [self._touch(), *self._on_deal(sender, message)]
        if isinstance(message, NodeSetChangeProgress):
            self.done, self.total = message.done, message.total
            return [self._touch()]
        if isinstance(message, NodeSetChangeCompleted):
            self.completed = True
            effects = self._erase_if_removed()
            effects.append(Send(self.master, NodeSetChangeFinished(self.session_id)))
            return effects + self.finish()
        if message == self.init:
            return []
        raise ProtocolViolation(short(sender), f"sent {type(message).__name__}")

    def on_peer_error(self, sender: NodeId, reason: str) -> list[Effect]:
        if self.finished or sender != self.master:
            return []
        return [self._notice(f"the master ended the change: {reason[:200]}"), *self.finish()]

    def on_peer_refusal(self, sender: NodeId, error: SecretStoreError) -> list[Effect]:
        return self.on_peer_error(sender, str(error))

    def _stalled(self) -> list[Effect]:
        return self.fail(SessionTimeout("the node set change made no progress in time"))

    def _moved_here(self, moved: KeyMoved) -> list[Effect]:
        return [Send(self.master, moved)]

    def _fault(self, fault: KeyFault) -> list[Effect]:
        report = KeyChangeFault(self.session_id, fault.key_id, fault.culprits, fault.what)
        return [Send(self.master, report), *self.fail(fault.violation())]
