"""Mesh frames: a versioned 6-byte header, a strict size limit, and AEAD sealing per direction.

    frame = version (1) ‖ kind (1) ‖ body length (4, big-endian) ‖ body

Handshake frames carry their message in clear. Every later frame's body is
ChaCha20-Poly1305(key of the direction, nonce = 0 (4) ‖ frame counter (8), payload) with the
header as associated data, so a frame that is tampered with, replayed, reordered, truncated or
moved to the other direction fails to open. The length limit applies to the body as it is on the
wire and is checked on the header alone, before any body byte is read.
"""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass
from typing import Final

from secretstore.errors import DecryptionError, SecretStoreError
from secretstore.mesh import aead

FRAME_VERSION: Final = 1
HEADER_SIZE: Final = 6
TAG_SIZE: Final = aead.TAG_SIZE
DEFAULT_MAX_BODY: Final = 16 * 1024 * 1024
_HEADER: Final = struct.Struct(">BBI")
_MAX_COUNTER: Final = 2**64 - 1


class FrameKind(enum.IntEnum):
    HANDSHAKE = 1
    DATA = 2
    PING = 3
    PONG = 4
    CLOSE = 5


class FrameError(SecretStoreError):
    """A frame is malformed, of an unknown version or kind, too large, or does not open."""


class OversizedFrame(FrameError):
    """A frame header announces a body above the limit (the body is never read)."""


class FrameAuthenticationError(FrameError):
    """A sealed frame fails authentication: tampered, replayed, reordered or truncated."""


@dataclass(frozen=True, slots=True)
class FrameHeader:
    kind: FrameKind
    length: int

    def to_bytes(self) -> bytes:
        return _HEADER.pack(FRAME_VERSION, self.kind, self.length)


def decode_header(data: bytes, max_body: int = DEFAULT_MAX_BODY) -> FrameHeader:
    """Parse and check a 6-byte header; raises FrameError / OversizedFrame."""
    if len(data) != HEADER_SIZE:
        raise FrameError(f"a frame header is {HEADER_SIZE} bytes, got {len(data)}")
    version, kind, length = _HEADER.unpack(data)
    if version != FRAME_VERSION:
        raise FrameError(f"unsupported frame version {version}")
    try:
        frame_kind = FrameKind(kind)
    except ValueError as exc:
        raise FrameError(f"unknown frame kind {kind}") from exc
    if length > max_body:
        raise OversizedFrame(f"frame body of {length} bytes exceeds the limit of {max_body}")
    return FrameHeader(frame_kind, length)


def encode_plain_frame(kind: FrameKind, payload: bytes, max_body: int = DEFAULT_MAX_BODY) -> bytes:
    """A frame whose body is the payload in clear (handshake messages only)."""
    if len(payload) > max_body:
        raise OversizedFrame(f"payload of {len(payload)} bytes exceeds the limit of {max_body}")
    return FrameHeader(kind, len(payload)).to_bytes() + payload


def _nonce(counter: int) -> bytes:
    return b"\x00\x00\x00\x00" + counter.to_bytes(8, "big")


def _check_key(key: bytes) -> None:
    if len(key) != 32:
        raise FrameError("a frame key is 32 bytes")


class FrameSealer:
    """Seals outgoing frames of one direction; the nonce counter advances with every frame."""

    __slots__ = ("_aead", "_counter", "_max_body")

    def __init__(self, key: bytes, max_body: int = DEFAULT_MAX_BODY) -> None:
        _check_key(key)
        self._aead = aead.Aead(key)
        self._max_body = max_body
        self._counter = 0

    def seal(self, kind: FrameKind, payload: bytes) -> bytes:
        """The whole frame (header ‖ ciphertext ‖ tag) to write."""
        length = len(payload) + TAG_SIZE
        if length > self._max_body:
            raise OversizedFrame(f"frame body of {length} bytes exceeds the limit")
        if self._counter > _MAX_COUNTER:
            raise FrameError("frame counter exhausted; reconnect")
        header = FrameHeader(kind, length).to_bytes()
        sealed = self._aead.seal(_nonce(self._counter), header, payload)
        self._counter += 1
        return header + sealed

    def __repr__(self) -> str:
        return f"FrameSealer(counter={self._counter})"


class FrameOpener:
    """Opens incoming frames of one direction, strictly in order; broken after one failure."""

    __slots__ = ("_aead", "_broken", "_counter", "_max_body")

    def __init__(self, key: bytes, max_body: int = DEFAULT_MAX_BODY) -> None:
        _check_key(key)
        self._aead = aead.Aead(key)
        self._max_body = max_body
        self._counter = 0
        self._broken = False

    @property
    def max_body(self) -> int:
        return self._max_body

    def open(self, header: FrameHeader, body: bytes) -> bytes:
        """The payload of the next frame; raises FrameAuthenticationError on any mismatch."""
        if self._broken:
            raise FrameAuthenticationError("the receiving direction failed before")
        if header.length > self._max_body:
            self._broken = True
            raise OversizedFrame(f"frame body of {header.length} bytes exceeds the limit")
        if len(body) != header.length or len(body) < TAG_SIZE:
            self._broken = True
            raise FrameAuthenticationError("frame body does not match its header")
        try:
            payload = self._aead.open(_nonce(self._counter), header.to_bytes(), body)
        except DecryptionError as exc:
            self._broken = True
            raise FrameAuthenticationError("frame does not authenticate") from exc
        self._counter += 1
        return payload

    def open_frame(self, frame: bytes) -> tuple[FrameKind, bytes]:
        """Open one whole frame given as bytes (header ‖ body)."""
        try:
            header = decode_header(bytes(frame[:HEADER_SIZE]), self._max_body)
        except FrameError:
            self._broken = True
            raise
        return header.kind, self.open(header, bytes(frame[HEADER_SIZE:]))

    def __repr__(self) -> str:
        return f"FrameOpener(counter={self._counter})"
