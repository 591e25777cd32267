"""The master's part of a node set change: the init, every node's inventory, the plan,
keys in flight, the checks of every key's new holders, the completion (see node_set_change.py
for the phase table)."""

from __future__ import annotations

from secretstore.errors import InvalidRequest, ProtocolViolation, SecretStoreError, SessionTimeout
from secretstore.sessions.admin.moving import KeyMovingMaster
from secretstore.sessions.admin.node_set_change import (
    PROGRESS_EVERY,
    AdminSettings,
    ChangePhase,
    NodeSetChange,
)
from secretstore.sessions.admin.plan import ChangePlan, Inventory, KeyPlan, inventory_messages
from secretstore.sessions.admin.plan import inventory_pages as read_inventory
from secretstore.sessions.admin.redistribute import KeyInFlight, check_new_version
from secretstore.sessions.base import (
    Deadline,
    Effect,
    SessionContext,
    TimeoutReports,
    short,
    timed_out_waiting_for,
)
from secretstore.types import NodeId, ServerKeyId, SessionId
from secretstore.wire.admin import (
    InventoryPage,
    KeyChangeFault,
    KeyMoved,
    KeySubshare,
    NodeSetChangeAccepted,
    NodeSetChangeCompleted,
    NodeSetChangeFinished,
    NodeSetChangeInit,
    NodeSetChangeProgress,
)


class NodeSetChangeMaster(KeyMovingMaster, NodeSetChange):
    """The node the administrator asked: it plans the change and drives every key."""

    def __init__(
        self,
        ctx: SessionContext,
        session_id: SessionId,
        settings: AdminSettings,
        init: NodeSetChangeInit,
    ) -> None:
        super().__init__(ctx, session_id, ctx.self_id, settings, init)
        self.ending = False
        self._accepted: set[NodeId] = set()
        self._inventory = Inventory()
        self._plan: ChangePlan | None = None
        self._next = 0
        self._moving: dict[ServerKeyId, KeyInFlight] = {}
        self._finished_nodes: set[NodeId] = set()
        self._timeouts = TimeoutReports()
        self._launching = False

    def _running_phase(self) -> ChangePhase:
        if self.ending:
            return ChangePhase.WAITING_FOR_FINISH
        if self._plan is None:
            return ChangePhase.WAITING_FOR_NODES
        return ChangePhase.MOVING_KEYS

    def start(self) -> list[Effect]:
        """The first effects: the init to every other node, the drain deadline."""
        effects: list[Effect] = [self._notice(self._summary())]
        effects += self.broadcast(self.init, self.others)
        return [*effects, Deadline(self.session_id, self.settings.drain_timeout)]

    # --- events ---------------------------------------------------------------------------
    def _on_drained(self) -> list[Effect]:
        for page in inventory_messages(self.session_id, read_inventory(self.settings.keys)):
            self._inventory.add(self.ctx.self_id, page.entries, last=page.last)
        return [self._touch(), *self._maybe_plan()]

    def on_node_disconnected(self, node: NodeId) -> list[Effect]:
        if self.finished:
            return []
        if self.ending:
            self._finished_nodes.add(node)
            effects: list[Effect] = [self._notice(f"node {short(node)} left before it finished")]
            return effects + self._maybe_finish()
        return super().on_node_disconnected(node)

    def on_peer_timeout(self, sender: NodeId, reason: str) -> list[Effect]:
        """A slave's clock ran out first: its report is kept until every node this one waits
        for has reported (a slave that waited for a dealer names it), then the change fails
        with all of them."""
        if self.finished:
            return []
        self._timeouts.add(sender, reason)
        waiting = self.waiting_for() - {sender}
        if self._timeouts.cover(waiting):
            return self._stalled()
        return []

    def waiting_for(self) -> frozenset[NodeId]:
        """The nodes whose answer the change waits for now: acceptances and inventories, then
        the new holders of each key in flight (and the dealers of this node's own subshares),
        then every node's Finished."""
        if self.ending:
            waiting = self.others - self._finished_nodes
        elif self._plan is None:
            waiting = (self.others - self._accepted) | (self.old_set - self._inventory.complete())
        else:
            waiting = self._waiting_for_keys()
        return frozenset(waiting) - {self.ctx.self_id}

    def _new_holders(self, plan: KeyPlan) -> frozenset[NodeId]:
        return self.new_set

    def on_peer_refusal(self, sender: NodeId, error: SecretStoreError) -> list[Effect]:
        if self.finished:
            return []
        return self.fail(error)  # in the sender's name already (sessions/core.py)

    def _stalled(self) -> list[Effect]:
        error = timed_out_waiting_for(self.waiting_for(), self._timeouts)
        what = f"{error.what}; the change made no progress in time ({self._progress_text()})"
        return self.fail(SessionTimeout(what, error.node))

    def _moved_here(self, moved: KeyMoved) -> list[Effect]:
        return self._on_moved(self.ctx.self_id, moved)

    def _dispatch(self, sender: NodeId, message: object) -> list[Effect]:
        if isinstance(message, KeyMoved):
            return [self._touch(), *self._on_moved(sender, message)]
        if isinstance(message, KeySubshare):
            return self._on_subshare(sender, message)
        if isinstance(message, NodeSetChangeAccepted):
            self._accepted.add(sender)
            return [self._touch()]
        if isinstance(message, InventoryPage):
            return [self._touch(), *self._on_page(sender, message)]
        if isinstance(message, KeyChangeFault):
            return self._reported_fault(sender, message)
        if isinstance(message, NodeSetChangeFinished) and self.ending:
            self._finished_nodes.add(sender)
            return self._maybe_finish()
        raise ProtocolViolation(short(sender), f"sent {type(message).__name__} out of turn")

    def _on_page(self, sender: NodeId, page: InventoryPage) -> list[Effect]:
        if sender not in self._accepted or self._plan is not None:
            raise ProtocolViolation(short(sender), "sent an inventory out of turn")
        if not self._inventory.add_page(sender, page):
            return []  # the same page again
        return self._maybe_plan()

    def _maybe_plan(self) -> list[Effect]:
        complete = self._inventory.complete() == self.old_set
        if not self.drained or self._accepted != self.others or not complete:
            return []
        plan = self._inventory.plan(self.new_set, self.ctx.rng)
        if plan.problems:
            return self.fail(InvalidRequest(plan.refusal()))
        self._plan = plan
        self.total = plan.total
        self.done = plan.in_place
        effects: list[Effect] = [
            self._notice(
                f"{len(plan.moves)} keys to move, {plan.in_place} already on the new set "
                f"(at most {self.settings.keys_in_flight} at once)"
            )
        ]
        effects += self._progress_messages()
        return effects + self._launch()

    def _launch(self) -> list[Effect]:
        plan = self._plan
        assert plan is not None
        effects: list[Effect] = []
        limit = max(1, self.settings.keys_in_flight)
        self._launching = True  # keys that complete at once do not launch again (recursion)
        try:
            effects += self._fill(plan, limit)
        finally:
            self._launching = False
        if not self._moving and self._next == len(plan.moves) and not self.ending:
            effects += self._complete()
        return effects

    def _fill(self, plan: ChangePlan, limit: int) -> list[Effect]:
        effects: list[Effect] = []
        while len(self._moving) < limit and self._next < len(plan.moves):
            key = plan.moves[self._next]
            self._next += 1
            effects += self._deal_key(key)
        return effects

    def _on_moved(self, sender: NodeId, moved: KeyMoved) -> list[Effect]:
        move = self._moving.get(moved.key_id)
        if move is None:
            if self._keys.received(moved.key_id):
                return []  # an answer about a key that is done already
            raise ProtocolViolation(short(sender), "reported moving a key that is not moving")
        if sender not in self.new_set:
            raise ProtocolViolation(short(sender), "reported a key moved to a node not in the set")
        known = move.moved.setdefault(sender, moved)
        if known != moved:
            raise ProtocolViolation(short(sender), "reported a key moved twice, differently")
        if len(move.moved) < len(self.new_set):
            return []
        self._check_moved(move)
        del self._moving[moved.key_id]
        self._keys.mark_received(moved.key_id)
        self.done += 1
        effects: list[Effect] = []
        assert self.total is not None
        step = max(1, min(PROGRESS_EVERY, self.total // 20))
        if self.done % step == 0 or self.done == self.total:
            effects += self._progress_messages()
        tenth = max(1, self.total // 10)
        if self.done % tenth == 0 or self.done == self.total:
            effects.append(self._notice(f"{self.done} of {self.total} keys on the new set"))
        if self._launching:
            return effects
        return effects + self._launch()

    def _check_moved(self, move: KeyInFlight) -> None:
        """Every new holder reports the same new version, with the id numbers the plan gave,
        and the new share publics lie on one polynomial of degree t through the key."""
        plan = move.plan
        check_new_version(plan.key_id, plan.threshold, plan.public, move.moved, plan.fresh)

    def _complete(self) -> list[Effect]:
        self.ending = True
        left = len(self.removed)
        effects: list[Effect] = [
            self._notice(
                f"every key is on the new set ({self.done} keys); "
                f"{left} {'node leaves' if left == 1 else 'nodes leave'} the set"
            )
        ]
        effects += self.broadcast(NodeSetChangeCompleted(self.session_id), self.others)
        effects += self._erase_if_removed()
        return effects + self._maybe_finish()

    def _maybe_finish(self) -> list[Effect]:
        if self.ending and self._finished_nodes >= self.others:
            self.completed = True
            return self.finish(None)
        return []

    def _progress_messages(self) -> list[Effect]:
        total = self.total or 0
        return self.broadcast(NodeSetChangeProgress(self.session_id, self.done, total), self.others)
