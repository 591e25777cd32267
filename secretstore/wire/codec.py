"""A strict binary codec for cluster messages: frozen dataclasses with registered type codes.

Encoding of a message: u16 type code, then its fields in declaration order:
- bool: 1 byte (0 or 1); int: 8 bytes big-endian, unsigned; str: u32 length + UTF-8;
- bytes: u32 length + data; NodeId/ServerKeyId/SessionId/MessageHash/Hash256/Address: fixed
  length;
- Scalar: 32 bytes (below n); Point: 64 bytes x‖y (on the curve, never the identity);
- tuple[X, ...]: u32 count + items; X | None: 1 flag byte + X; a nested dataclass: its fields;
- an IntEnum: 1 byte; `AnyMessage`: u32 length + a whole encoded message (for nesting).
Decoding rejects unknown codes, short input, trailing bytes, out-of-range values and invalid
points with MalformedMessage, and nothing else.
"""

from __future__ import annotations

import dataclasses
import enum
import types
import typing
from collections.abc import Callable
from typing import Any, NewType, TypeVar

from secretstore.crypto.curve import Point, Scalar
from secretstore.errors import CryptoError, MalformedMessage
from secretstore.types import Address, Hash256, MessageHash, NodeId, ServerKeyId, SessionId

#: A field holding any registered message (encoded whole, length-prefixed).
AnyMessage = NewType("AnyMessage", object)

MAX_BYTES = 16 * 1024 * 1024
MAX_ITEMS = 1 << 16

_FIXED: dict[object, int] = {
    NodeId: 64,
    ServerKeyId: 32,
    SessionId: 32,
    MessageHash: 32,
    Hash256: 32,
    Address: 20,
}

_BY_CODE: dict[int, type[Any]] = {}
_CODE_OF: dict[type[Any], int] = {}
_PLANS: dict[type[Any], tuple[tuple[str, Any], ...]] = {}

T = TypeVar("T")


def message(code: int) -> Callable[[type[T]], type[T]]:
    """Register a frozen dataclass as a wire message with a unique 16-bit type code."""

    def register(cls: type[T]) -> type[T]:
        if not dataclasses.is_dataclass(cls):
            raise TypeError(f"{cls.__name__} is not a dataclass")
        if not 0 < code < 0x10000:
            raise ValueError(f"type code {code} out of range")
        if code in _BY_CODE and _BY_CODE[code] is not cls:
            raise ValueError(f"type code {code:#06x} used by {_BY_CODE[code].__name__} already")
        _BY_CODE[code] = cls
        _CODE_OF[cls] = code
        return cls

    return register


def code_of(cls: type[Any]) -> int:
    return _CODE_OF[cls]


def registered() -> dict[int, type[Any]]:
    return dict(_BY_CODE)


def _plan(cls: type[Any]) -> tuple[tuple[str, Any], ...]:
    plan = _PLANS.get(cls)
    if plan is None:
        hints = typing.get_type_hints(cls)
        plan = tuple((f.name, hints[f.name]) for f in dataclasses.fields(cls))
        _PLANS[cls] = plan
    return plan


# --- encoding ----------------------------------------------------------------------------


def encode(msg: object) -> bytes:
    """The bytes of a registered message."""
    out = bytearray()
    _encode_message(msg, out)
    return bytes(out)


def _encode_message(msg: object, out: bytearray) -> None:
    code = _CODE_OF.get(type(msg))
    if code is None:
        raise TypeError(f"{type(msg).__name__} is not a registered message")
    out += code.to_bytes(2, "big")
    _encode_fields(msg, out)


def _encode_fields(obj: object, out: bytearray) -> None:
    for name, tp in _plan(type(obj)):
        _encode_value(getattr(obj, name), tp, out)


def _encode_value(value: Any, tp: Any, out: bytearray) -> None:
    if tp is bool:
        out.append(1 if value else 0)
    elif tp is int:
        if value < 0 or value >= 1 << 64:
            raise ValueError("int field out of range")
        out += value.to_bytes(8, "big")
    elif tp is str:
        data = value.encode()
        out += len(data).to_bytes(4, "big") + data
    elif tp is bytes:
        out += len(value).to_bytes(4, "big") + value
    elif tp in _FIXED:
        if len(value) != _FIXED[tp]:
            raise ValueError(f"{tp.__name__} must be {_FIXED[tp]} bytes")
        out += value
    elif tp is Scalar or tp is Point:
        out += value.to_bytes()
    elif tp is AnyMessage:
        inner = bytearray()
        _encode_message(value, inner)
        out += len(inner).to_bytes(4, "big") + inner
    elif isinstance(tp, type) and issubclass(tp, enum.IntEnum):
        out.append(int(value))
    elif isinstance(tp, type) and dataclasses.is_dataclass(tp):
        _encode_fields(value, out)
    else:
        origin = typing.get_origin(tp)
        args = typing.get_args(tp)
        if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
            out += len(value).to_bytes(4, "big")
            for item in value:
                _encode_value(item, args[0], out)
        elif origin is tuple:
            for item, item_tp in zip(value, args, strict=True):
                _encode_value(item, item_tp, out)
        elif origin in (typing.Union, types.UnionType) and type(None) in args:
            inner_tp = next(a for a in args if a is not type(None))
            if value is None:
                out.append(0)
            else:
                out.append(1)
                _encode_value(value, inner_tp, out)
        else:
            raise TypeError(f"unsupported field type {tp!r}")


# --- decoding ----------------------------------------------------------------------------


class _Reader:
    __slots__ = ("data", "pos")

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def take(self, n: int) -> bytes:
        end = self.pos + n
        if end > len(self.data):
            raise MalformedMessage("message is truncated")
        chunk = self.data[self.pos : end]
        self.pos = end
        return chunk

    def length(self, limit: int) -> int:
        n = int.from_bytes(self.take(4), "big")
        if n > limit:
            raise MalformedMessage(f"length {n} exceeds the limit {limit}")
        return n


def decode(data: bytes) -> Any:
    """The message these bytes encode; raises MalformedMessage on anything else."""
    reader = _Reader(data)
    msg = _decode_message(reader)
    if reader.pos != len(data):
        raise MalformedMessage("trailing bytes after the message")
    return msg


def _decode_message(reader: _Reader) -> Any:
    code = int.from_bytes(reader.take(2), "big")
    cls = _BY_CODE.get(code)
    if cls is None:
        raise MalformedMessage(f"unknown message type {code:#06x}")
    return _decode_fields(cls, reader)


def _decode_fields(cls: type[Any], reader: _Reader) -> Any:
    values = {name: _decode_value(tp, reader) for name, tp in _plan(cls)}
    try:
        return cls(**values)
    except (ValueError, TypeError, CryptoError) as exc:
        raise MalformedMessage(f"invalid {cls.__name__}: {exc}") from None


def _decode_value(tp: Any, reader: _Reader) -> Any:
    if tp is bool:
        b = reader.take(1)[0]
        if b > 1:
            raise MalformedMessage("bool field is not 0 or 1")
        return b == 1
    if tp is int:
        return int.from_bytes(reader.take(8), "big")
    if tp is str:
        try:
            return reader.take(reader.length(MAX_BYTES)).decode()
        except UnicodeDecodeError:
            raise MalformedMessage("string field is not UTF-8") from None
    if tp is bytes:
        return reader.take(reader.length(MAX_BYTES))
    if tp in _FIXED:
        return tp(reader.take(_FIXED[tp]))
    if tp is Scalar:
        try:
            return Scalar.from_bytes(reader.take(32))
        except CryptoError as exc:
            raise MalformedMessage(f"bad scalar: {exc}") from None
    if tp is Point:
        try:
            return Point.from_bytes(reader.take(64))
        except CryptoError as exc:
            raise MalformedMessage(f"bad point: {exc}") from None
    if tp is AnyMessage:
        inner = _Reader(reader.take(reader.length(MAX_BYTES)))
        msg = _decode_message(inner)
        if inner.pos != len(inner.data):
            raise MalformedMessage("trailing bytes in a nested message")
        return msg
    if isinstance(tp, type) and issubclass(tp, enum.IntEnum):
        raw = reader.take(1)[0]
        try:
            return tp(raw)
        except ValueError:
            raise MalformedMessage(f"bad {tp.__name__} value {raw}") from None
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        return _decode_fields(tp, reader)
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
        count = reader.length(MAX_ITEMS)
        return tuple(_decode_value(args[0], reader) for _ in range(count))
    if origin is tuple:
        return tuple(_decode_value(a, reader) for a in args)
    if origin in (typing.Union, types.UnionType) and type(None) in args:
        flag = reader.take(1)[0]
        if flag > 1:
            raise MalformedMessage("optional flag is not 0 or 1")
        inner_tp = next(a for a in args if a is not type(None))
        return _decode_value(inner_tp, reader) if flag else None
    raise TypeError(f"unsupported field type {tp!r}")
