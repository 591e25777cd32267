"""Hex in and out as Parity clients write it: lower-case, 0x optional on input, 0x on output."""

from __future__ import annotations

from secretstore.errors import InvalidEncoding

_HEX_DIGITS = frozenset("0123456789abcdefABCDEF")


def parse_hex(text: str, length: int | None = None, what: str = "value") -> bytes:
    """Bytes from hex with or without 0x; `length` in bytes when fixed. Raises InvalidEncoding."""
    raw = text[2:] if text[:2] in ("0x", "0X") else text
    if not _HEX_DIGITS.issuperset(raw):
        raise InvalidEncoding(f"{what}: not hex")
    if len(raw) % 2:
        raise InvalidEncoding(f"{what}: odd number of hex digits")
    data = bytes.fromhex(raw)
    if length is not None and len(data) != length:
        raise InvalidEncoding(f"{what}: expected {length} bytes, got {len(data)}")
    return data


def to_hex(data: bytes) -> str:
    """0x-prefixed lower-case hex."""
    return "0x" + data.hex()
