"""One mesh connection over asyncio streams: handshake with a deadline, sealed frames, keep-alive.

After the handshake each side sends a sealed PING at once and waits for the peer's: receiving it
confirms that the peer accepted our proof and derived the same keys, and only then is the
connection handed to the transport. Any framing or authentication error closes the connection.

Liveness: an idle link sends a PING every `ping_interval` and is closed after `dead_after`
without a frame. A link that sessions wait on (`watch(True)`) or that was asked to prove
itself (`probe()`) owes a frame within `response_timeout`: it pings every quarter of that,
and a peer that sends nothing (hung, partitioned, a half-open socket) is closed with the
reason "did not answer for N s". A PONG comes from the peer's event loop, not from its
sessions, so a slow session never looks like a dead peer. When this node's own loop was
stalled, the verdict waits for one more round, so its own lag is never blamed on the peer.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Final

from secretstore.crypto.keys import KeyPair
from secretstore.crypto.rng import Rng
from secretstore.errors import SecretStoreError
from secretstore.mesh.framing import (
    DEFAULT_MAX_BODY,
    HEADER_SIZE,
    FrameError,
    FrameHeader,
    FrameKind,
    FrameOpener,
    FrameSealer,
    decode_header,
    encode_plain_frame,
)
from secretstore.mesh.handshake import MAX_HANDSHAKE_MESSAGE, Handshake, HandshakeRefused, Role
from secretstore.types import NodeId

log = logging.getLogger(__name__)

_MAX_REASON: Final = 200
#: Seconds a gracefully closed connection may take to flush before it is aborted.
_CLOSE_GRACE: Final = 2.0
#: A keep-alive round that wakes this much later than planned means this node's own event
#: loop was stalled (seconds): the liveness verdict waits a round.
_LOOP_LAG_GRACE: Final = 0.25
#: The stream buffer size: frames above it are still read whole, with more pauses.
STREAM_LIMIT: Final = 1024 * 1024


def short_id(node: NodeId) -> str:
    """The first 8 hex digits of a node id, for logs."""
    return node.hex()[:8]


@dataclass(frozen=True, slots=True)
class MeshTimings:
    """Deadlines and limits of mesh connections (seconds and bytes)."""

    handshake_timeout: float = 10.0
    ping_interval: float = 5.0
    dead_after: float = 15.0
    #: how long a watched or probed link may stay silent before it is closed as unresponsive
    response_timeout: float = 2.0
    max_body: int = DEFAULT_MAX_BODY
    #: Bytes queued for a peer that does not read; above this the connection is dropped.
    max_write_buffer: int = 64 * 1024 * 1024


class MeshConnectionError(SecretStoreError):
    """A connection failed below the protocol: refused, reset, timed out, or closed early."""


class PeerRefused(MeshConnectionError):
    """The peer closed the handshake and said why."""


def _reason_text(payload: bytes) -> str:
    return payload[:_MAX_REASON].decode("utf-8", errors="replace")


def _abort(writer: asyncio.StreamWriter) -> None:
    transport = writer.transport
    if not transport.is_closing():
        transport.abort()


async def _read_frame(reader: asyncio.StreamReader, max_body: int) -> tuple[FrameHeader, bytes]:
    """One frame's header and body; the body is not read when the header is bad or too large."""
    header = decode_header(await reader.readexactly(HEADER_SIZE), max_body)
    body = await reader.readexactly(header.length) if header.length else b""
    return header, body


async def establish(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    *,
    role: Role,
    node_key: KeyPair,
    allowed: Collection[NodeId],
    rng: Rng,
    timings: MeshTimings,
    expected_peer: NodeId | None = None,
) -> MeshConnection:
    """Run the handshake on fresh streams; closes them and raises on any failure.

    Raises HandshakeRefused (we refused the peer), PeerRefused (the peer refused us), FrameError
    (malformed frames) or MeshConnectionError (timeout, reset, early end of stream).
    """
    handshake = Handshake(role, node_key, allowed, rng, expected_peer)
    try:
        async with asyncio.timeout(timings.handshake_timeout):
            for message in handshake.start():
                writer.write(encode_plain_frame(FrameKind.HANDSHAKE, message))
            await writer.drain()
            while (result := handshake.result) is None:
                header, body = await _read_frame(reader, MAX_HANDSHAKE_MESSAGE)
                kind = header.kind
                if kind is FrameKind.CLOSE:
                    raise PeerRefused(f"peer refused the handshake: {_reason_text(body)!r}")
                if kind is not FrameKind.HANDSHAKE:
                    raise FrameError(f"{kind.name} frame during the handshake")
                for message in handshake.receive(body):
                    writer.write(encode_plain_frame(FrameKind.HANDSHAKE, message))
                await writer.drain()
            sealer = FrameSealer(result.send_key, timings.max_body)
            opener = FrameOpener(result.receive_key, timings.max_body)
            writer.write(sealer.seal(FrameKind.PING, b""))
            await writer.drain()
            header, body = await _read_frame(reader, timings.max_body)
            if header.kind is FrameKind.CLOSE and len(body) <= _MAX_REASON:
                # The peer may have refused our proof after we accepted its own: a plain CLOSE.
                try:
                    opener.open(header, body)
                except FrameError:
                    raise PeerRefused(
                        f"peer refused the handshake: {_reason_text(body)!r}"
                    ) from None
                raise PeerRefused("peer closed right after the handshake")
            opener.open(header, body)
            if header.kind is not FrameKind.PING:
                raise FrameError("the first sealed frame is not a ping")
    except HandshakeRefused as refusal:
        with contextlib.suppress(OSError):
            writer.write(encode_plain_frame(FrameKind.CLOSE, refusal.reason.value.encode()))
        writer.close()
        asyncio.get_running_loop().call_later(_CLOSE_GRACE, _abort, writer)
        raise
    except TimeoutError as exc:
        _abort(writer)
        raise MeshConnectionError("handshake timed out") from exc
    except (asyncio.IncompleteReadError, OSError) as exc:
        _abort(writer)
        raise MeshConnectionError(f"connection lost during the handshake: {exc}") from exc
    except BaseException:  # FrameError, MeshConnectionError, cancellation: drop the socket
        _abort(writer)
        raise
    return MeshConnection(
        peer=result.peer,
        role=role,
        reader=reader,
        writer=writer,
        sealer=sealer,
        opener=opener,
        timings=timings,
    )


class MeshConnection:
    """An established, authenticated connection to one peer."""

    def __init__(
        self,
        *,
        peer: NodeId,
        role: Role,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        sealer: FrameSealer,
        opener: FrameOpener,
        timings: MeshTimings,
    ) -> None:
        self.peer = peer
        self.role = role
        self._reader = reader
        self._writer = writer
        self._sealer = sealer
        self._opener = opener
        self._timings = timings
        self._closed = asyncio.Event()
        self._close_reason = ""
        self._last_received = asyncio.get_running_loop().time()
        #: sessions wait on this peer: it owes a frame within response_timeout
        self._watched = False
        #: since when a frame is owed (watched or probed), or None
        self._owed_since: float | None = None
        #: a probe is outstanding (cleared by the next frame)
        self._probing = False
        #: wakes the keep-alive loop when the obligation changes
        self._wake = asyncio.Event()

    @property
    def is_closed(self) -> bool:
        return self._closed.is_set()

    @property
    def close_reason(self) -> str:
        return self._close_reason

    def send(self, payload: bytes) -> bool:
        """Queue one DATA frame; False if the connection is closed or the peer stopped reading.

        Raises OversizedFrame when the payload exceeds the frame limit (a caller's bug).
        """
        if self.is_closed or self._writer.transport.is_closing():
            return False
        if self._writer.transport.get_write_buffer_size() > self._timings.max_write_buffer:
            self.close("peer is not reading")
            return False
        self._writer.write(self._sealer.seal(FrameKind.DATA, payload))
        return True

    def close(self, reason: str = "closing") -> None:
        """Say goodbye (best effort) and close; idempotent."""
        if self.is_closed:
            return
        self._close_reason = reason
        self._closed.set()
        with contextlib.suppress(OSError, FrameError, RuntimeError):
            if not self._writer.transport.is_closing():
                goodbye = self._sealer.seal(FrameKind.CLOSE, reason.encode()[:_MAX_REASON])
                self._writer.write(goodbye)
        self._writer.close()
        asyncio.get_running_loop().call_later(_CLOSE_GRACE, _abort, self._writer)

    async def wait_closed(self) -> None:
        await self._closed.wait()

    # --- liveness -----------------------------------------------------------------------
    @property
    def watched(self) -> bool:
        return self._watched

    def watch(self, on: bool) -> None:
        """Sessions wait on the peer (`on`) or no longer do: a watched link owes a frame
        within `response_timeout` at all times."""
        if on == self._watched:
            return
        self._watched = on
        if on:
            self._owe()
        elif self._owed_since is not None and not self._probing:
            self._owed_since = None

    def probe(self) -> None:
        """Ask the peer to prove that it is there: a frame within `response_timeout`, or the
        connection is closed as unresponsive (e.g. a newer connection from the same peer
        suggests that this one is half-open)."""
        self._probing = True
        self._owe()

    def _owe(self) -> None:
        if self.is_closed:
            return
        if self._owed_since is None:
            self._owed_since = asyncio.get_running_loop().time()
            self._write_control(FrameKind.PING)
        self._wake.set()

    def _heard(self, now: float) -> None:
        self._last_received = now
        self._probing = False
        self._owed_since = now if self._watched else None

    def unanswered_for(self) -> float:
        """Seconds a frame has been owed and not come (0 when none is owed)."""
        if self._owed_since is None:
            return 0.0
        return asyncio.get_running_loop().time() - self._owed_since

    async def run(self, on_message: Callable[[bytes], None]) -> str:
        """Read frames until the connection ends, passing DATA payloads in order; the reason."""
        keepalive = asyncio.create_task(self._keep_alive())
        try:
            while not self.is_closed:
                header, body = await _read_frame(self._reader, self._timings.max_body)
                payload = self._opener.open(header, body)
                if self._closed.is_set():  # closed locally while the frame was in flight
                    break
                self._heard(asyncio.get_running_loop().time())
                kind = header.kind
                if kind is FrameKind.DATA:
                    on_message(payload)
                elif kind is FrameKind.PING:
                    self._write_control(FrameKind.PONG)
                elif kind is FrameKind.CLOSE:
                    self._finish(f"peer closed: {_reason_text(payload)!r}")
                elif kind is FrameKind.HANDSHAKE:
                    raise FrameError("handshake frame after the handshake")
        except FrameError as exc:
            log.warning("node %s: closing on a bad frame: %s", short_id(self.peer), exc)
            self._finish(f"bad frame: {exc}")
        except (asyncio.IncompleteReadError, OSError):
            self._finish(self._close_reason or "connection lost")
        finally:
            keepalive.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await keepalive
            if not self.is_closed:
                self._finish("stopped")
        return self._close_reason

    def _finish(self, reason: str) -> None:
        if not self.is_closed:
            self._close_reason = reason
            self._closed.set()
        _abort(self._writer)

    def _write_control(self, kind: FrameKind) -> None:
        if not self.is_closed and not self._writer.transport.is_closing():
            self._writer.write(self._sealer.seal(kind, b""))

    async def _keep_alive(self) -> None:
        loop = asyncio.get_running_loop()
        timings = self._timings
        probe_every = timings.response_timeout / 4
        last_ping = loop.time()
        judge_after = 0.0  # no verdict before this (set after this node's own loop stalled)
        while not self.is_closed:
            owed = self._owed_since
            if owed is None:
                wake_at = min(
                    last_ping + timings.ping_interval, self._last_received + timings.dead_after
                )
            else:
                wake_at = min(last_ping + probe_every, owed + timings.response_timeout)
            wake_at = max(wake_at, judge_after)
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout_at(wake_at):
                    await self._wake.wait()
            now = loop.time()
            if now - wake_at > _LOOP_LAG_GRACE:
                # This node's loop was stalled: frames may wait unread; judge a round later.
                judge_after = now + probe_every
            owed = self._owed_since
            if now >= judge_after:
                if owed is not None and now - owed >= timings.response_timeout:
                    self._unresponsive(f"did not answer for {timings.response_timeout:g} s")
                    return
                if owed is None and now - self._last_received > timings.dead_after:
                    self._unresponsive(f"sent nothing for {timings.dead_after:g} s")
                    return
            interval = timings.ping_interval if owed is None else probe_every
            if now - last_ping >= interval:
                self._write_control(FrameKind.PING)
                last_ping = now

    def _unresponsive(self, reason: str) -> None:
        log.info("node %s: %s; closing the link", short_id(self.peer), reason)
        self.close(reason)
        _abort(self._writer)
