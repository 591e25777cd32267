"""The transport port the cluster driver uses: send to a node, learn of messages and links."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Protocol

from secretstore.types import NodeId


class TransportHandler(Protocol):
    """Receives a transport's events, synchronously and in order per peer.

    For one peer: `on_connected` comes first, then its messages in the order they were sent,
    then `on_disconnected`. A reconnection repeats the cycle. Handlers must not block.
    """

    def on_message(self, node: NodeId, payload: bytes) -> None: ...

    def on_connected(self, node: NodeId) -> None: ...

    def on_disconnected(self, node: NodeId) -> None: ...


class Transport(Protocol):
    """A mesh of authenticated, ordered, reliable-while-connected links to known nodes."""

    @property
    def self_id(self) -> NodeId: ...

    def set_handler(self, handler: TransportHandler) -> None:
        """Where events go; set it before start()."""

    async def start(self) -> None: ...

    async def stop(self) -> None:
        """Close every link (each gets on_disconnected) and stop reconnecting."""

    def send(self, node: NodeId, payload: bytes) -> bool:
        """Queue one message to a connected node; False (nothing sent) when not connected.

        True means queued, not delivered: a link that drops later loses what is in flight,
        and the handler hears on_disconnected.
        """

    def connected(self) -> frozenset[NodeId]: ...

    def watch(self, nodes: frozenset[NodeId]) -> None:
        """The nodes that sessions wait on now (replacing the last set): a link to one of
        them that shows no sign of life within the transport's response deadline is closed
        (on_disconnected, with `close_reason` saying so)."""

    def close_reason(self, node: NodeId) -> str:
        """Why the last link to `node` ended ("" when none has)."""


class NullHandler:
    """Drops every event (the default until a handler is set)."""

    def on_message(self, node: NodeId, payload: bytes) -> None:
        pass

    def on_connected(self, node: NodeId) -> None:
        pass

    def on_disconnected(self, node: NodeId) -> None:
        pass


@dataclass(frozen=True, slots=True)
class MessageEvent:
    node: NodeId
    payload: bytes


@dataclass(frozen=True, slots=True)
class ConnectedEvent:
    node: NodeId


@dataclass(frozen=True, slots=True)
class DisconnectedEvent:
    node: NodeId


TransportEvent = MessageEvent | ConnectedEvent | DisconnectedEvent


class EventQueue:
    """A handler that turns events into an asyncio queue, for consumers that prefer to await."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[TransportEvent] = asyncio.Queue()

    def on_message(self, node: NodeId, payload: bytes) -> None:
        self.queue.put_nowait(MessageEvent(node, payload))

    def on_connected(self, node: NodeId) -> None:
        self.queue.put_nowait(ConnectedEvent(node))

    def on_disconnected(self, node: NodeId) -> None:
        self.queue.put_nowait(DisconnectedEvent(node))

    async def get(self) -> TransportEvent:
        return await self.queue.get()
