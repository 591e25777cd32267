"""The mesh's event handler on a node: passes every event on and says who is missing.

At start-up it names the other nodes that are not connected yet, and keeps naming them (at
growing intervals, up to REMIND_MAX seconds) until the mesh is complete; it says when the mesh
becomes complete and when it stops being so, and then reminds again. The node set is read
afresh each time (it changes at run time: SIGHUP, a key server set contract).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping
from typing import Final, Protocol

from secretstore.logs import short_node
from secretstore.observe.health import plural
from secretstore.types import NodeId

log = logging.getLogger("secretstore.mesh.peers")

#: Seconds between the first reminders of missing peers; doubled each time up to REMIND_MAX.
REMIND_FIRST: Final = 5.0
REMIND_MAX: Final = 60.0


class EventSink(Protocol):
    """Where the transport's events go on (the cluster driver)."""

    def on_message(self, node: NodeId, payload: bytes) -> None: ...

    def on_connected(self, node: NodeId) -> None: ...

    def on_disconnected(self, node: NodeId) -> None: ...


def describe(nodes: list[NodeId], addresses: Mapping[NodeId, str]) -> str:
    """`1a2b3c4d (10.0.0.2:12000), 5e6f7a8b (10.0.0.3:12000)`."""
    return ", ".join(f"{short_node(n)} ({addresses.get(n, '?')})" for n in sorted(nodes))


class PeerWatch:
    """The TransportHandler of a node: forwards to `sink`, logs the mesh's completeness."""

    def __init__(
        self,
        sink: EventSink,
        connected: Callable[[], frozenset[NodeId]],
        peers: Callable[[], Mapping[NodeId, str]],
        *,
        remind_first: float = REMIND_FIRST,
        remind_max: float = REMIND_MAX,
    ) -> None:
        """`peers`: every other node the mesh should be connected to now, and its address
        ("host:port")."""
        self._sink = sink
        self._connected = connected
        self._peers = peers
        self._remind_first = remind_first
        self._remind_max = remind_max
        self._complete = False
        self._changed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        #: set when the node shuts down: the links it closes itself are not news
        self.quiet = False

    # --- the TransportHandler ---------------------------------------------------------
    def on_message(self, node: NodeId, payload: bytes) -> None:
        self._sink.on_message(node, payload)

    def on_connected(self, node: NodeId) -> None:
        self._sink.on_connected(node)
        self._update()

    def on_disconnected(self, node: NodeId) -> None:
        self._sink.on_disconnected(node)
        self._update()

    # --- what is missing --------------------------------------------------------------
    def missing(self) -> list[NodeId]:
        connected = self._connected()
        return sorted(node for node in self._peers() if node not in connected)

    def nodes_changed(self) -> None:
        """The node set changed: say whether the mesh is still complete."""
        self._update()

    def _update(self) -> None:
        if self.quiet:
            return
        peers = self._peers()
        missing = self.missing()
        complete = not missing
        others = len(peers)
        if complete and not self._complete and others:
            everyone = "the other node" if others == 1 else f"all {others} other nodes"
            log.info("mesh complete: %s connected", everyone)
        elif self._complete and not complete:
            log.info(
                "mesh incomplete: %d of %s connected; not connected: %s",
                others - len(missing),
                plural(others, "other node"),
                describe(missing, peers),
            )
        self._complete = complete
        self._changed.set()

    # --- reminders --------------------------------------------------------------------
    def start(self, *, alone: bool = False) -> None:
        """Log who is missing now, then keep reminding until the mesh is complete (`alone`:
        this node is the whole cluster, and says so)."""
        if alone:
            log.info("mesh complete: this node is the only one")
        missing = self.missing()
        self._complete = bool(self._peers()) and not missing
        if missing:
            log.info(
                "waiting for %s to connect: %s",
                plural(len(missing), "other node"),
                describe(missing, self._peers()),
            )
        self._task = asyncio.get_running_loop().create_task(self._remind())

    async def _remind(self) -> None:
        delay = self._remind_first
        while not self.quiet:
            self._changed.clear()
            try:
                async with asyncio.timeout(delay):
                    await self._changed.wait()
            except TimeoutError:
                missing = self.missing()
                if missing and not self.quiet:
                    peers = self._peers()
                    log.info(
                        "still not connected to %d of %s: %s",
                        len(missing),
                        plural(len(peers), "other node"),
                        describe(missing, peers),
                    )
                    delay = min(self._remind_max, delay * 2)
                continue
            if self._complete:  # start over once the mesh is incomplete again
                delay = self._remind_first

    async def stop(self) -> None:
        self.quiet = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
