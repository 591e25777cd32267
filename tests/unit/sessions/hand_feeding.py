"""Hand-feeding helpers for session unit tests: node contexts and a tiny message pump."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from secretstore.crypto.keys import KeyPair
from secretstore.crypto.rng import SeededRng
from secretstore.sessions.base import Effect, Send, Session, SessionContext
from secretstore.types import NodeId
from secretstore.wire import codec


def contexts(n: int, seed: int = 1) -> list[SessionContext]:
    """Contexts of n nodes (ascending node id), each with its own seeded rng."""
    rng = SeededRng(seed)
    ids = sorted(KeyPair.generate(rng).node_id for _ in range(n))
    nodes = frozenset(ids)
    return [SessionContext(node, SeededRng(seed * 1000 + i), nodes) for i, node in enumerate(ids)]


def sends(effects: Sequence[Effect]) -> list[Send]:
    return [e for e in effects if isinstance(e, Send)]


def others(effects: Sequence[Effect]) -> list[Effect]:
    return [e for e in effects if not isinstance(e, Send)]


SlaveMaker = Callable[[SessionContext, NodeId, Any], tuple[Session, list[Effect]]]


def pump(
    sessions: dict[NodeId, Session],
    pending: list[tuple[NodeId, Send]],
    contexts_by_node: dict[NodeId, SessionContext],
    make_slave: SlaveMaker,
    tamper: Callable[[NodeId, Send], Send] | None = None,
) -> dict[NodeId, list[Effect]]:
    """Deliver sends FIFO (through the codec) until none is left; create a slave session on
    the first message to a node without one; `tamper` may replace a send on its way.
    Returns every non-send effect per node."""
    produced: dict[NodeId, list[Effect]] = {node: [] for node in contexts_by_node}
    while pending:
        sender, send = pending.pop(0)
        if tamper is not None:
            send = tamper(sender, send)
        message = codec.decode(codec.encode(send.message))
        session = sessions.get(send.to)
        if session is None:
            session, effects = make_slave(contexts_by_node[send.to], sender, message)
            sessions[send.to] = session
        elif session.finished:
            continue
        else:
            effects = session.on_message(sender, message)
        produced[send.to] += others(effects)
        pending += [(send.to, s) for s in sends(effects)]
    return produced
