"""A simulated network with one dishonest node: what it sends can be rewritten, and it can
send messages (or raw bytes) its own sessions never made; each node has its own policy."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

from secretstore.sessions.base import Send
from secretstore.types import NodeId
from secretstore.wire import codec
from secretstore.wire.common import ErrorKind, SessionError
from tests.sim.harness import Pending, SimNetwork, SimNode

#: (sender, receiver, message) -> the message that leaves the sender instead (None: nothing)
Tamper = Callable[[NodeId, NodeId, object], object | None]


class RogueNetwork(SimNetwork):
    """SimNetwork where node `rogue` (an index) lies through `tamper` and `inject`."""

    rogue_index: int = 0
    tamper: Tamper | None = None

    @property
    def rogue(self) -> SimNode:
        return self.node(self.rogue_index)

    @property
    def honest(self) -> list[SimNode]:
        return [node for i, node in enumerate(self.nodes.values()) if i != self.rogue_index]

    def set_policy(self, index: int, *, require_bound_requests: bool) -> None:
        """Node `index` checks requests with this policy from now on (its own config)."""
        core = self.node(index).core
        core.ctx = replace(core.ctx, require_bound_requests=require_bound_requests)

    def set_policy_of_all(self, *, require_bound_requests: bool) -> None:
        for index in range(len(self.order)):
            self.set_policy(index, require_bound_requests=require_bound_requests)

    def inject(self, to: NodeId, message: Any) -> None:
        """The rogue sends `message` (a wire message, or raw bytes) to `to`."""
        data = message if isinstance(message, bytes) else codec.encode(message)
        self.pending.append(Pending(self.rogue.node_id, to, data))

    def answers_to_rogue(self) -> dict[NodeId, list[object]]:
        """What each honest node sent the rogue."""
        out: dict[NodeId, list[object]] = {node.node_id: [] for node in self.honest}
        for sender, to, message in self.sent:
            if to == self.rogue.node_id and sender in out:
                out[sender].append(message)
        return out

    def refusals_to_rogue(self) -> dict[NodeId, set[ErrorKind]]:
        """The kinds of SessionError each honest node sent the rogue."""
        return {
            node: {m.kind for m in messages if isinstance(m, SessionError)}
            for node, messages in self.answers_to_rogue().items()
        }

    def _apply(self, node: SimNode, effects: Any) -> None:
        tamper = self.tamper
        if tamper is not None and node.node_id == self.rogue.node_id:
            changed = []
            for effect in effects:
                if not isinstance(effect, Send):
                    changed.append(effect)
                    continue
                message = tamper(node.node_id, effect.to, effect.message)
                if message is not None:
                    changed.append(Send(effect.to, message))
            effects = changed
        super()._apply(node, effects)
