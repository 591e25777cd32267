"""Frames round-trip; a tampered, replayed, reordered, truncated or oversized frame fails."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from secretstore.mesh.framing import (
    HEADER_SIZE,
    TAG_SIZE,
    FrameAuthenticationError,
    FrameError,
    FrameHeader,
    FrameKind,
    FrameOpener,
    FrameSealer,
    OversizedFrame,
    decode_header,
    encode_plain_frame,
)

KEY = bytes(range(32))
OTHER_KEY = bytes(range(1, 33))
kinds = st.sampled_from([FrameKind.DATA, FrameKind.PING, FrameKind.PONG, FrameKind.CLOSE])


@given(frames=st.lists(st.tuples(kinds, st.binary(max_size=300)), min_size=1, max_size=8))
def test_sealed_frames_round_trip_in_order(frames: list[tuple[FrameKind, bytes]]) -> None:
    sealer, opener = FrameSealer(KEY), FrameOpener(KEY)
    for kind, payload in frames:
        wire = sealer.seal(kind, payload)
        assert len(wire) == HEADER_SIZE + len(payload) + TAG_SIZE
        assert opener.open_frame(wire) == (kind, payload)


def test_ciphertext_hides_the_payload_and_changes_per_frame() -> None:
    sealer = FrameSealer(KEY)
    payload = b"the same secret payload"
    first, second = sealer.seal(FrameKind.DATA, payload), sealer.seal(FrameKind.DATA, payload)
    assert payload not in first
    assert first != second


@given(
    payload=st.binary(max_size=64),
    position=st.integers(min_value=0),
    mask=st.integers(min_value=1, max_value=255),
)
def test_any_flipped_byte_fails(payload: bytes, position: int, mask: int) -> None:
    wire = bytearray(FrameSealer(KEY).seal(FrameKind.DATA, payload))
    wire[position % len(wire)] ^= mask
    with pytest.raises(FrameError):
        FrameOpener(KEY).open_frame(bytes(wire))


def test_replayed_frame_fails() -> None:
    sealer, opener = FrameSealer(KEY), FrameOpener(KEY)
    wire = sealer.seal(FrameKind.DATA, b"pay me once")
    assert opener.open_frame(wire) == (FrameKind.DATA, b"pay me once")
    with pytest.raises(FrameAuthenticationError):
        opener.open_frame(wire)


def test_reordered_frames_fail() -> None:
    sealer, opener = FrameSealer(KEY), FrameOpener(KEY)
    first = sealer.seal(FrameKind.DATA, b"1")
    second = sealer.seal(FrameKind.DATA, b"2")
    with pytest.raises(FrameAuthenticationError):
        opener.open_frame(second)
    in_order = FrameOpener(KEY)
    assert in_order.open_frame(first) == (FrameKind.DATA, b"1")
    assert in_order.open_frame(second) == (FrameKind.DATA, b"2")


def test_dropped_frame_makes_the_next_fail() -> None:
    sealer, opener = FrameSealer(KEY), FrameOpener(KEY)
    sealer.seal(FrameKind.DATA, b"lost")
    with pytest.raises(FrameAuthenticationError):
        opener.open_frame(sealer.seal(FrameKind.DATA, b"next"))


@given(cut=st.integers(min_value=1, max_value=40))
def test_truncated_frame_fails(cut: int) -> None:
    wire = FrameSealer(KEY).seal(FrameKind.DATA, b"x" * 24)
    with pytest.raises(FrameError):
        FrameOpener(KEY).open_frame(wire[:-cut])


def test_truncated_body_with_a_matching_forged_length_fails() -> None:
    wire = FrameSealer(KEY).seal(FrameKind.DATA, b"y" * 24)
    body = wire[HEADER_SIZE:-4]
    with pytest.raises(FrameAuthenticationError):
        FrameOpener(KEY).open(FrameHeader(FrameKind.DATA, len(body)), body)


def test_frame_of_the_other_direction_or_key_fails() -> None:
    wire = FrameSealer(KEY).seal(FrameKind.DATA, b"to the left")
    with pytest.raises(FrameAuthenticationError):
        FrameOpener(OTHER_KEY).open_frame(wire)


def test_kind_is_authenticated() -> None:
    wire = bytearray(FrameSealer(KEY).seal(FrameKind.PING, b""))
    wire[1] = FrameKind.PONG
    with pytest.raises(FrameAuthenticationError):
        FrameOpener(KEY).open_frame(bytes(wire))


def test_opener_stays_broken_after_a_failure() -> None:
    sealer, opener = FrameSealer(KEY), FrameOpener(KEY)
    good = sealer.seal(FrameKind.DATA, b"ok")
    bad = bytearray(good)
    bad[-1] ^= 1
    with pytest.raises(FrameAuthenticationError):
        opener.open_frame(bytes(bad))
    with pytest.raises(FrameAuthenticationError):
        opener.open_frame(good)


def test_oversized_header_is_refused_before_the_body() -> None:
    header = FrameHeader(FrameKind.DATA, 1025).to_bytes()
    with pytest.raises(OversizedFrame):
        decode_header(header, max_body=1024)
    assert decode_header(FrameHeader(FrameKind.DATA, 1024).to_bytes(), 1024).length == 1024
    huge = bytes([1, FrameKind.DATA]) + (2**32 - 1).to_bytes(4, "big")
    with pytest.raises(OversizedFrame):
        decode_header(huge)


def test_oversized_payload_is_refused_when_sealing_and_opening() -> None:
    with pytest.raises(OversizedFrame):
        FrameSealer(KEY, max_body=100).seal(FrameKind.DATA, b"z" * (100 - TAG_SIZE + 1))
    wire = FrameSealer(KEY).seal(FrameKind.DATA, b"z" * 200)
    with pytest.raises(OversizedFrame):
        FrameOpener(KEY, max_body=100).open_frame(wire)
    with pytest.raises(OversizedFrame):
        encode_plain_frame(FrameKind.HANDSHAKE, b"h" * 11, max_body=10)


def test_unknown_version_kind_and_short_header_are_refused() -> None:
    with pytest.raises(FrameError, match="version"):
        decode_header(bytes([2, FrameKind.DATA, 0, 0, 0, 0]))
    with pytest.raises(FrameError, match="kind"):
        decode_header(bytes([1, 99, 0, 0, 0, 0]))
    with pytest.raises(FrameError, match="6 bytes"):
        decode_header(b"\x01\x02")


def test_plain_frames_carry_handshake_messages() -> None:
    wire = encode_plain_frame(FrameKind.HANDSHAKE, b"hello")
    header = decode_header(wire[:HEADER_SIZE])
    assert header == FrameHeader(FrameKind.HANDSHAKE, 5)
    assert wire[HEADER_SIZE:] == b"hello"


def test_keys_must_be_32_bytes_and_never_shown() -> None:
    with pytest.raises(FrameError):
        FrameSealer(b"short")
    assert KEY.hex() not in repr(FrameSealer(KEY)) + repr(FrameOpener(KEY))


@given(data=st.binary(max_size=64))
def test_arbitrary_bytes_raise_only_frame_errors(data: bytes) -> None:
    with pytest.raises(FrameError):
        FrameOpener(KEY).open_frame(data)
