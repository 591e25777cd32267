"""The simulated network of the Byzantine suite: one node (the rogue) sends what a fault plan
makes of its messages, and every slave session a node opens is recorded (sessions time out as
the driver's clocks run out: `SimNetwork.expire`)."""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from secretstore.crypto.rng import SeededRng
from secretstore.sessions.base import Send, SessionContext
from secretstore.sessions.core import MasterFactory, SlaveFactory
from secretstore.storage.model import KeyShare
from secretstore.types import NodeId, SessionId
from secretstore.wire import codec
from tests.sim.byzantine import mutate
from tests.sim.harness import AccessPolicy, Pending, SimNode, allow_all
from tests.sim.rogue import RogueNetwork


def label(message: Any) -> str:
    """What kind of message this is, finer than its type: the nonce kind of a signing nonce
    message and the type of a nested message count (e.g. `SigningNonceMessage[SIGNATURE_ZERO]
    /DkgShareProof`)."""
    name = type(message).__name__
    kinds, nested_fields = _label_fields(type(message))
    for field_name in kinds:
        name += f"[{getattr(message, field_name).name}]"
    nested = "".join("/" + label(getattr(message, f)) for f in nested_fields)
    return name + nested


@functools.cache
def _label_fields(cls: type) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """A message type's nonce-kind fields and nested-message fields."""
    types = mutate.field_types(cls)
    kinds = tuple(n for n, tp in types if mutate.is_enum(tp) and tp.__name__ == "NonceKind")
    return kinds, tuple(n for n, tp in types if tp is codec.AnyMessage)


def message_types(message: Any) -> set[type]:
    """The type of a message and of every message nested in it."""
    return {
        type(value) for _, tp, value in mutate.walk(message, type(message)) if _is_message(value)
    }


def _is_message(value: object) -> bool:
    return type(value) in codec.registered().values()


#: (network, a message the rogue's session sends) -> messages the rogue sends before it
Provocation = Callable[["ByzantineNetwork", Send], list[Send]]


def previous_of(sent: Sequence[object], message: object) -> object | None:
    """The last message in `sent` of another kind than `message` (None if none)."""
    name = label(message)
    return next((m for m in reversed(sent) if label(m) != name), None)


def later_of(sent: Sequence[tuple[NodeId, object]], name: str, to: NodeId) -> object | None:
    """In an honest run's `sent` (receiver, message), the first message of another kind than
    `name` after the first one of kind `name` to `to`: to `to` if there is one, else to
    anyone (None if none)."""
    index = next((i for i, (r, m) in enumerate(sent) if r == to and label(m) == name), None)
    if index is None:
        return None
    after = [(r, m) for r, m in sent[index + 1 :] if label(m) != name]
    return next((m for r, m in after if r == to), after[0][1] if after else None)


def last_of(sent: Sequence[tuple[NodeId, object]], name: str, to: NodeId) -> object | None:
    """In an honest run's `sent`, the last message to `to`, if it is of another kind than
    `name` and comes after the first one of kind `name` to `to` (None otherwise)."""
    mine = [m for r, m in sent if r == to]
    names = [label(m) for m in mine]
    if name not in names or names[-1] == name or names.index(name) == len(mine) - 1:
        return None
    return mine[-1]


@dataclass(frozen=True, slots=True)
class Target:
    """Which of the rogue's messages of session `session_id` the fault hits: those of `label`
    to `receiver` (None: to anyone); only the first, unless `every`."""

    label: str
    receiver: NodeId | None
    every: bool = False


@dataclass
class FaultPlan:
    """A fault applied to the rogue's messages of one session."""

    session_id: SessionId
    target: Target
    fault: mutate.Fault
    nodes: tuple[NodeId, ...]
    rng: SeededRng
    samples: dict[type, object]
    #: the rogue's messages of an earlier session of the same kind: (receiver, message)
    earlier: Sequence[tuple[NodeId, object]] = ()
    #: the scenario's own faults (mutate.Context.semantic)
    semantic: Mapping[tuple[type, mutate.Path], Mapping[str, mutate.Semantic]] = field(
        default_factory=dict
    )
    applied: int = 0
    silent_to: set[NodeId] = field(default_factory=set)
    silent: bool = False
    #: the rogue's messages of the session so far (before faults)
    sent: list[object] = field(default_factory=list)
    #: what the rogue sent in an honest run of the session: (receiver, message)
    baseline: Sequence[tuple[NodeId, object]] = ()

    def outgoing(self, to: NodeId, message: object) -> list[object]:
        if getattr(message, "session_id", None) != self.session_id:
            return [message]
        if self.silent or to in self.silent_to:
            return []
        hit = (
            label(message) == self.target.label
            and self.target.receiver in (None, to)
            and (self.target.every or self.applied == 0)
        )
        if hit and self.fault.path and not _has_path(message, self.fault.path):
            hit = False  # e.g. a field of an optional part this message of the kind lacks
        if not hit:
            self.sent.append(message)
            return [message]
        self.applied += 1
        ctx = mutate.Context(
            nodes=self.nodes,
            receiver=to,
            session_id=self.session_id,
            rng=self.rng,
            samples=self.samples,
            previous=previous_of(self.sent, message),
            later=later_of(self.baseline, self.target.label, to),
            last=last_of(self.baseline, self.target.label, to),
            earlier=self.replay_source(to),
            semantic=self.semantic,
        )
        out = mutate.apply(self.fault, message, ctx)
        if self.fault.op == "silent":
            self.silent = True
        elif self.fault.op == "silent-to-receiver":
            self.silent_to.add(to)
        self.sent.append(message)
        return out

    def replay_source(self, to: NodeId) -> object | None:
        """The earlier session's message of the target's label, to the same receiver if it
        had one, else to anyone."""
        return replay_source(self.earlier, self.target.label, to)


def _has_path(message: object, path: mutate.Path) -> bool:
    return any(node_path == path for node_path, _, _ in mutate.walk(message, type(message)))


def replay_source(earlier: Sequence[tuple[NodeId, object]], name: str, to: NodeId) -> object | None:
    """The first message of kind `name` in `earlier`, to `to` if there is one, else to anyone."""
    same = [(r, m) for r, m in earlier if label(m) == name]
    return next((m for r, m in same if r == to), same[0][1] if same else None)


class ByzantineNetwork(RogueNetwork):
    """A RogueNetwork driven by a FaultPlan, which records what the rogue sent (before the
    faults) and every slave session the nodes opened."""

    def __init__(
        self,
        n: int,
        masters: Mapping[type[Any], MasterFactory],
        slaves: Mapping[type[Any], SlaveFactory],
        *,
        seed: int,
        rogue: int,
        access: AccessPolicy = allow_all,
        presignatures: int = 0,
        audit: bool = False,
    ) -> None:
        #: (node, the initialising message) of every slave session opened, in order
        self.inits: list[tuple[NodeId, object]] = []
        super().__init__(
            n,
            masters,
            self.recording(slaves),
            seed=seed,
            access=access,
            presignatures=presignatures,
            audit=audit,
        )
        self.rogue_index = rogue
        self.plan: FaultPlan | None = None
        #: what the rogue's sessions sent, before any fault: (receiver, message)
        self.rogue_log: list[tuple[NodeId, object]] = []
        #: the session started last (`start_session`)
        self.target_sid: SessionId | None = None
        #: messages the rogue sends of its own accord, before one its session sends: what no
        #: honest run makes it send (e.g. a false blame report)
        self.provoke: Provocation | None = None

    def recording(self, slaves: Mapping[type[Any], SlaveFactory]) -> dict[type[Any], SlaveFactory]:
        """`slaves` with every session they open recorded in `inits`."""

        def wrap(factory: SlaveFactory) -> SlaveFactory:
            def join(
                ctx: SessionContext, sender: NodeId, message: Any, share: KeyShare | None
            ) -> Any:
                self.inits.append((ctx.self_id, message))
                return factory(ctx, sender, message, share)

            return join

        return {cls: wrap(factory) for cls, factory in slaves.items()}

    # --- running --------------------------------------------------------------------------
    def start_session(self, index: int, request: Any) -> SessionId:
        """Start a master session on node `index`; its id is known before any message."""
        node = self.node(index)
        sid = node.core.new_session_id()
        self.target_sid = sid
        if self.plan is not None:
            self.plan.session_id = sid
        _, effects = node.core.start(request, self.connected(), sid)
        self._apply(node, effects)
        return sid

    def sent_by_rogue(self, session_id: SessionId) -> list[tuple[NodeId, object]]:
        return [(to, m) for to, m in self.rogue_log if getattr(m, "session_id", None) == session_id]

    # --- internals ------------------------------------------------------------------------
    def _apply(self, node: SimNode, effects: Any) -> None:
        if node.node_id != self.rogue.node_id:
            super()._apply(node, effects)
            return
        sends: list[Any] = []
        for effect in effects:
            if isinstance(effect, Send) and self.provoke is not None:
                sends += self.provoke(self, effect)
            sends.append(effect)
        for effect in sends:
            if not isinstance(effect, Send):
                super()._apply(node, [effect])
                continue
            self.rogue_log.append((effect.to, effect.message))
            out = (
                [effect.message]
                if self.plan is None
                else self.plan.outgoing(effect.to, effect.message)
            )
            for item in out:
                if isinstance(item, bytes):
                    self.sent.append((node.node_id, effect.to, item))
                    if effect.to not in self.down:
                        self.pending.append(Pending(node.node_id, effect.to, item))
                else:
                    super()._apply(node, [Send(effect.to, item)])
