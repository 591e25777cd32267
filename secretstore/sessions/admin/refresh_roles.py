"""The master's and a slave's part of a refresh (see refresh.py for the phase table)."""

from __future__ import annotations

from secretstore.crypto.rng import Rng
from secretstore.errors import (
    NodeDisconnected,
    ProtocolViolation,
    SecretStoreError,
    SessionTimeout,
)
from secretstore.sessions.admin.moving import KeyMovingMaster
from secretstore.sessions.admin.plan import Inventory, KeyPlan, plan_refresh_key
from secretstore.sessions.admin.redistribute import KeyInFlight, check_new_version
from secretstore.sessions.admin.refresh import (
    RefreshOutcome,
    RefreshPhase,
    RefreshSession,
    RefreshSettings,
)
from secretstore.sessions.base import (
    Deadline,
    Effect,
    Send,
    SessionContext,
    TimeoutReports,
    short,
    timed_out_waiting_for,
)
from secretstore.sessions.signing_common import names
from secretstore.types import NodeId, ServerKeyId, SessionId
from secretstore.wire.admin import (
    InventoryEntry,
    InventoryPage,
    KeyChangeFault,
    KeyDeal,
    KeyMoved,
    KeySubshare,
)
from secretstore.wire.refresh import (
    RefreshCommit,
    RefreshFinished,
    RefreshInit,
    RefreshScope,
    RefreshSkip,
)


def plan_batch(
    inventory: Inventory,
    counts: dict[NodeId, int],
    last: dict[NodeId, ServerKeyId],
    scope: RefreshScope,
    rng: Rng,
) -> tuple[list[KeyPlan], list[tuple[ServerKeyId, str]], ServerKeyId | None]:
    """The batch: the keys to refresh, those skipped (with why), and where the next batch of
    a refresh of every key starts. In a batch of at most `limit` keys per node, a node that
    reported `limit` keys may hold more: the batch ends at the smallest last key of those, so
    every key in it was reported by every node that holds it."""
    boundary: ServerKeyId | None = None
    if not scope.keys:
        full = [last[node] for node, count in counts.items() if count >= scope.limit]
        boundary = min(full) if full else None
    plans: list[KeyPlan] = []
    skipped: list[tuple[ServerKeyId, str]] = []
    for key_id in inventory.key_ids():
        if boundary is not None and key_id > boundary:
            break
        reports = inventory.reports(key_id)
        outcome = plan_refresh_key(key_id, reports, rng, frozenset(counts))
        if isinstance(outcome, str):
            skipped.append((key_id, outcome))
        elif outcome.threshold == 0:
            skipped.append(
                (key_id, f"key 0x{key_id.hex()}: threshold 0, every share is the whole key")
            )
        else:
            plans.append(outcome)
    if scope.keys:
        found = {plan.key_id for plan in plans} | {key for key, _ in skipped}
        skipped += [
            (key, f"key 0x{key.hex()}: no node holds it") for key in scope.keys if key not in found
        ]
        skipped.sort()
    return plans, skipped, boundary


class RefreshMaster(KeyMovingMaster, RefreshSession):
    """The node asked: it plans the batch, drives every key, commits."""

    def __init__(
        self,
        ctx: SessionContext,
        session_id: SessionId,
        settings: RefreshSettings,
        init: RefreshInit,
        inventory: tuple[InventoryEntry, ...],
    ) -> None:
        super().__init__(ctx, session_id, ctx.self_id, settings, init)
        self._inventory = Inventory()
        self._counts: dict[NodeId, int] = {}
        self._last: dict[NodeId, ServerKeyId] = {}
        self._inventory.add(ctx.self_id, inventory, last=True)
        self._count(ctx.self_id, inventory)
        self._plans: list[KeyPlan] | None = None
        self._next = 0
        self._moving: dict[ServerKeyId, KeyInFlight] = {}
        self._refreshed: list[ServerKeyId] = []
        self._skipped: list[tuple[ServerKeyId, str]] = []
        self._next_after: ServerKeyId | None = None
        self._committed = False
        self._finished_nodes: set[NodeId] = set()
        self._launching = False
        #: what the slaves whose clocks ran out first reported
        self._timeouts = TimeoutReports()

    @property
    def phase(self) -> RefreshPhase:
        if self.finished:
            return RefreshPhase.ENDED
        if self._committed:
            return RefreshPhase.WAITING_FOR_FINISH
        if self._plans is None:
            return RefreshPhase.WAITING_FOR_NODES
        return RefreshPhase.REFRESHING

    def start(self) -> list[Effect]:
        effects: list[Effect] = [self._touch(), *self.broadcast(self.init, self.others)]
        return effects + self._maybe_plan()

    # --- events ---------------------------------------------------------------------------
    def on_node_disconnected(self, node: NodeId) -> list[Effect]:
        if self.finished:
            return []
        if self._committed:
            self._finished_nodes.add(node)
            return self._maybe_finish()
        return self.fail(
            NodeDisconnected(f"node {short(node)} disconnected during the refresh ({self._text()})")
        )

    def on_peer_timeout(self, sender: NodeId, reason: str) -> list[Effect]:
        """A slave's clock ran out first (it names whom it waited for): its report is kept
        until every node this one waits for has reported, then the refresh fails with all of
        them; after the commit the slave is noted as finished."""
        if self.finished:
            return []
        if self._committed:
            self._finished_nodes.add(sender)
            notice = self._notice(f"node {short(sender)} timed out: {reason[:200]}")
            return [notice, *self._maybe_finish()]
        self._timeouts.add(sender, reason)
        if self._timeouts.cover(self.waiting_for() - {sender}):
            return self._stalled()
        return []

    def waiting_for(self) -> frozenset[NodeId]:
        """The nodes whose answer the refresh waits for now: inventories, then the holders of
        each key in flight that have not reported it (and the dealers of this node's own
        subshares), then every node's RefreshFinished."""
        if self._committed:
            waiting = set(self.others - self._finished_nodes)
        elif self._plans is None:
            waiting = set(self.cluster - self._inventory.complete())
        else:
            waiting = set(self._waiting_for_keys())
        return frozenset(waiting) - {self.ctx.self_id}

    def _new_holders(self, plan: KeyPlan) -> frozenset[NodeId]:
        return frozenset(dict(plan.fresh))

    def _stalled(self) -> list[Effect]:
        error = timed_out_waiting_for(self.waiting_for(), self._timeouts)
        what = f"{error.what}; the refresh made no progress in time ({self._text()})"
        return self.fail(SessionTimeout(what, error.node))

    def on_peer_refusal(self, sender: NodeId, error: SecretStoreError) -> list[Effect]:
        if self.finished:
            return []
        return self.fail(type(error)(f"node {short(sender)}: {error}"))

    def on_timeout(self) -> list[Effect]:
        if self.finished:
            return []
        if self._committed:  # the keys are refreshed; a node that did not answer is noted
            silent = sorted(self.others - self._finished_nodes)
            self._finished_nodes |= set(silent)
            notice = self._notice(f"no RefreshFinished from {names(silent)}")
            return [notice, *self._maybe_finish()]
        return self._stalled()

    def _skip(self, key_id: ServerKeyId, reason: str) -> list[Effect]:
        self._skip_here(key_id)
        return self._on_skip(self.ctx.self_id, key_id, reason)

    def _dispatch(self, sender: NodeId, message: object) -> list[Effect]:
        if isinstance(message, InventoryPage):
            return [self._touch(), *self._on_page(sender, message)]
        if isinstance(message, KeySubshare):
            return self._on_subshare(sender, message)
        if isinstance(message, KeyMoved):
            return [self._touch(), *self._moved(sender, message)]
        if isinstance(message, RefreshSkip):
            return [self._touch(), *self._on_skip(sender, message.key_id, message.reason)]
        if isinstance(message, KeyChangeFault):
            return self._reported_fault(sender, message)
        if isinstance(message, RefreshFinished) and self._committed:
            self._finished_nodes.add(sender)
            return self._maybe_finish()
        raise ProtocolViolation(short(sender), f"sent {type(message).__name__} out of turn")

    # --- the inventory and the plan -------------------------------------------------------
    def _count(self, node: NodeId, entries: tuple[InventoryEntry, ...]) -> None:
        """How many keys `node` reported, and its last (where a batch must end)."""
        self._counts[node] = self._counts.get(node, 0) + len(entries)
        if entries:
            self._last[node] = entries[-1].key_id

    def _on_page(self, sender: NodeId, page: InventoryPage) -> list[Effect]:
        if self._plans is not None:
            raise ProtocolViolation(short(sender), "sent an inventory out of turn")
        if not self._inventory.add_page(sender, page):
            return []  # the same page again
        self._count(sender, page.entries)
        return self._maybe_plan()

    def _maybe_plan(self) -> list[Effect]:
        if self._inventory.complete() != self.cluster:
            return []
        plans, skipped, boundary = plan_batch(
            self._inventory, self._counts, self._last, self.init.scope, self.ctx.rng
        )
        self._plans, self._skipped, self._next_after = plans, skipped, boundary
        self.total = len(plans) + len(skipped)
        self.done = len(skipped)
        effects: list[Effect] = [
            self._notice(
                f"{len(plans)} keys to refresh, {len(skipped)} skipped "
                f"(at most {self.settings.keys_in_flight} at once)"
            )
        ]
        return effects + self._launch()

    def _launch(self) -> list[Effect]:
        plans = self._plans
        assert plans is not None
        if self._launching:
            return []  # a key that ended while its deal went out: the loop below goes on
        self._launching = True
        try:
            effects = self._fill(plans)
        finally:
            self._launching = False
        if self.finished:
            return effects
        if not self._moving and self._next == len(plans) and not self._committed:
            effects += self._commit()
        return effects

    def _fill(self, plans: list[KeyPlan]) -> list[Effect]:
        effects: list[Effect] = []
        while len(self._moving) < max(1, self.settings.keys_in_flight) and self._next < len(plans):
            plan = plans[self._next]
            self._next += 1
            effects += self._deal_key(plan)
            if self.finished:
                return effects
        return effects

    # --- keys -----------------------------------------------------------------------------
    def _moved(self, sender: NodeId, moved: KeyMoved) -> list[Effect]:
        effects = super()._moved(sender, moved)
        refreshing = self._moving.get(moved.key_id)
        if refreshing is None:
            return effects
        plan = refreshing.plan
        if sender not in dict(plan.fresh):
            raise ProtocolViolation(short(sender), "reported refreshing a key it does not hold")
        refreshing.moved[sender] = moved
        if len(refreshing.moved) < len(plan.fresh):
            return effects
        check_new_version(plan.key_id, plan.threshold, plan.public, refreshing.moved, plan.fresh)
        del self._moving[plan.key_id]
        self._refreshed.append(plan.key_id)
        return effects + self._key_done()

    def _on_skip(self, sender: NodeId, key_id: ServerKeyId, reason: str) -> list[Effect]:
        refreshing = self._moving.pop(key_id, None)
        if refreshing is None:
            return []
        self._skip_here(key_id)
        self._skipped.append((key_id, f"key 0x{key_id.hex()}: node {short(sender)} {reason}"))
        return self._key_done()

    def _key_done(self) -> list[Effect]:
        self.done += 1
        effects: list[Effect] = []
        assert self.total is not None
        tenth = max(1, self.total // 10)
        if self.done % tenth == 0 or self.done == self.total:
            effects.append(self._notice(f"{self.done} of {self.total} keys done"))
        return effects + self._launch()

    # --- the end --------------------------------------------------------------------------
    def _commit(self) -> list[Effect]:
        self._committed = True
        commit = RefreshCommit(self.session_id, tuple(sorted(self._refreshed)))
        effects: list[Effect] = self.broadcast(commit, self.others)
        effects += self._erase()
        return effects + self._maybe_finish()

    def _maybe_finish(self) -> list[Effect]:
        if not self._committed or not self._finished_nodes >= self.others:
            return []
        self._skipped.sort()
        outcome = RefreshOutcome(
            tuple(sorted(self._refreshed)), tuple(self._skipped), self._next_after
        )
        effects: list[Effect] = [
            self._notice(
                f"{len(self._refreshed)} keys refreshed, {len(self._skipped)} skipped; "
                "old versions erased"
            )
        ]
        return effects + self.finish(outcome)

    def _text(self) -> str:
        if self.total is None:
            return "no key was refreshed"
        return f"{self.done} of {self.total} keys done"


class RefreshSlave(RefreshSession):
    """Every other node of the cluster."""

    #: after the commit: the refreshed keys whose reports this node still waits for
    _committing: set[ServerKeyId] | None = None

    @property
    def phase(self) -> RefreshPhase:
        return RefreshPhase.ENDED if self.finished else RefreshPhase.RUNNING

    def _skip(self, key_id: ServerKeyId, reason: str) -> list[Effect]:
        self._skip_here(key_id)
        return [Send(self.master, RefreshSkip(self.session_id, key_id, reason[:300]))]

    def _dispatch(self, sender: NodeId, message: object) -> list[Effect]:
        if isinstance(message, KeySubshare):
            return self._on_subshare(sender, message)
        if isinstance(message, KeyMoved):
            effects = [self._touch(), *self._moved(sender, message)]
            if self._committing is not None and message.key_id in self._committing:
                if not self._waiting_for_reports([message.key_id]):
                    self._committing.discard(message.key_id)
                effects += self._maybe_commit()
            return effects
        if sender != self.master:
            raise ProtocolViolation(short(sender), f"sent {type(message).__name__}")
        if isinstance(message, KeyDeal):
            return self._on_deal(message)
        if isinstance(message, RefreshCommit) and self._committing is None:
            self._committing = self._waiting_for_reports(message.refreshed)
            # answer well before the master gives up waiting
            wait = Deadline(self.session_id, self.settings.stall_timeout / 2)
            return [wait, *self._maybe_commit()]
        if message == self.init:
            return []
        raise ProtocolViolation(short(sender), f"sent {type(message).__name__}")

    def _maybe_commit(self, *, anyway: bool = False) -> list[Effect]:
        """Erase once the reports of every refreshed key are here (or `anyway`, keeping the
        old versions of the keys whose reports did not come), answer, end."""
        if self._committing is None or (self._committing and not anyway):
            return []
        effects: list[Effect] = []
        if self._committing:
            first = min(self._committing)
            effects.append(
                self._notice(
                    f"{len(self._committing)} refreshed keys keep their old version here: not "
                    f"every new holder's report came (first: 0x{first.hex()})"
                )
            )
        effects += self._erase()
        effects.append(Send(self.master, RefreshFinished(self.session_id, self.erased)))
        return effects + self.finish()

    def on_node_disconnected(self, node: NodeId) -> list[Effect]:
        if self.finished:
            return []
        if self._committing is not None:
            return self._maybe_commit(anyway=True)
        if node != self.master:
            return []  # the master ends the refresh if it must
        return [self._notice("the master left: nothing erased"), *self.finish()]

    def on_peer_error(self, sender: NodeId, reason: str) -> list[Effect]:
        if self.finished or sender != self.master:
            return []
        # nothing erased; the failure names the master, which may have given up for a cause
        # it names itself
        return self.fail(ProtocolViolation(short(sender), f"ended the refresh: {reason[:200]}"))

    def on_peer_refusal(self, sender: NodeId, error: SecretStoreError) -> list[Effect]:
        return self.on_peer_error(sender, str(error))

    def on_timeout(self) -> list[Effect]:
        if self.finished:
            return []
        if self._committing is not None:
            return self._maybe_commit(anyway=True)
        error = timed_out_waiting_for(self.waiting_for())
        what = f"{error.what}; the refresh made no progress in time"
        return self.fail(SessionTimeout(what, error.node))

    def waiting_for(self) -> frozenset[NodeId]:
        """The master (its next deal, or the commit), and the dealers whose subshares of a
        key this node has begun to receive are still missing (a dealer the master never
        asked to deal is the master's doing)."""
        return (self._keys.missing_dealers() | {self.master}) - {self.ctx.self_id}
