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
    _encoder(type(obj))(obj, out)


def _encode_value(value: Any, tp: Any, out: bytearray) -> None:
    _encoder(tp)(value, out)


Encoder = Callable[[Any, bytearray], None]
Decoder = Callable[["_Reader"], Any]
#: Each field type's encoder and decoder, made once (a closure per type, so that encoding a
#: message walks no type hints).
_ENCODERS: dict[Any, Encoder] = {}
_DECODERS: dict[Any, Decoder] = {}


def _encoder(tp: Any) -> Encoder:
    found = _ENCODERS.get(tp)
    if found is None:
        found = _ENCODERS[tp] = _make_encoder(tp)
    return found


def _encode_bool(value: Any, out: bytearray) -> None:
    out.append(1 if value else 0)


def _encode_int(value: Any, out: bytearray) -> None:
    if value < 0 or value >= 1 << 64:
        raise ValueError("int field out of range")
    out += value.to_bytes(8, "big")


def _encode_str(value: Any, out: bytearray) -> None:
    data = value.encode()
    out += len(data).to_bytes(4, "big")
    out += data


def _encode_bytes(value: Any, out: bytearray) -> None:
    out += len(value).to_bytes(4, "big")
    out += value


def _encode_curve(value: Any, out: bytearray) -> None:
    out += value.to_bytes()


def _encode_any(value: Any, out: bytearray) -> None:
    inner = bytearray()
    _encode_message(value, inner)
    out += len(inner).to_bytes(4, "big")
    out += inner


def _make_encoder(tp: Any) -> Encoder:
    simple: dict[Any, Encoder] = {
        bool: _encode_bool,
        int: _encode_int,
        str: _encode_str,
        bytes: _encode_bytes,
        Scalar: _encode_curve,
        Point: _encode_curve,
        AnyMessage: _encode_any,
    }
    if tp in simple:
        return simple[tp]
    if tp in _FIXED:
        size, name = _FIXED[tp], tp.__name__

        def fixed(value: Any, out: bytearray) -> None:
            if len(value) != size:
                raise ValueError(f"{name} must be {size} bytes")
            out += value

        return fixed
    if isinstance(tp, type) and issubclass(tp, enum.IntEnum):

        def member(value: Any, out: bytearray) -> None:
            out.append(int(value))

        return member
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        fields = [(name, _encoder(field_tp)) for name, field_tp in _plan(tp)]

        def record(value: Any, out: bytearray) -> None:
            for name, encode_field in fields:
                encode_field(getattr(value, name), out)

        return record
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
        item = _encoder(args[0])

        def sequence(value: Any, out: bytearray) -> None:
            out += len(value).to_bytes(4, "big")
            for element in value:
                item(element, out)

        return sequence
    if origin is tuple:
        items = [_encoder(arg) for arg in args]

        def fixed_tuple(value: Any, out: bytearray) -> None:
            for element, encode_item in zip(value, items, strict=True):
                encode_item(element, out)

        return fixed_tuple
    if origin in (typing.Union, types.UnionType) and type(None) in args:
        inner = _encoder(next(a for a in args if a is not type(None)))

        def optional(value: Any, out: bytearray) -> None:
            if value is None:
                out.append(0)
            else:
                out.append(1)
                inner(value, out)

        return optional
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
    return _decoder(cls)(reader)


def _decode_value(tp: Any, reader: _Reader) -> Any:
    return _decoder(tp)(reader)


def _decoder(tp: Any) -> Decoder:
    found = _DECODERS.get(tp)
    if found is None:
        found = _DECODERS[tp] = _make_decoder(tp)
    return found


def _decode_bool(reader: _Reader) -> bool:
    b = reader.take(1)[0]
    if b > 1:
        raise MalformedMessage("bool field is not 0 or 1")
    return b == 1


def _decode_int(reader: _Reader) -> int:
    return int.from_bytes(reader.take(8), "big")


def _decode_str(reader: _Reader) -> str:
    try:
        return reader.take(reader.length(MAX_BYTES)).decode()
    except UnicodeDecodeError:
        raise MalformedMessage("string field is not UTF-8") from None


def _decode_bytes(reader: _Reader) -> bytes:
    return reader.take(reader.length(MAX_BYTES))


def _decode_scalar(reader: _Reader) -> Scalar:
    try:
        return Scalar.from_bytes(reader.take(32))
    except CryptoError as exc:
        raise MalformedMessage(f"bad scalar: {exc}") from None


def _decode_point(reader: _Reader) -> Point:
    try:
        return Point.from_bytes(reader.take(64))
    except CryptoError as exc:
        raise MalformedMessage(f"bad point: {exc}") from None


def _decode_any(reader: _Reader) -> Any:
    inner = _Reader(reader.take(reader.length(MAX_BYTES)))
    msg = _decode_message(inner)
    if inner.pos != len(inner.data):
        raise MalformedMessage("trailing bytes in a nested message")
    return msg


def _make_decoder(tp: Any) -> Decoder:
    simple: dict[Any, Decoder] = {
        bool: _decode_bool,
        int: _decode_int,
        str: _decode_str,
        bytes: _decode_bytes,
        Scalar: _decode_scalar,
        Point: _decode_point,
        AnyMessage: _decode_any,
    }
    if tp in simple:
        return simple[tp]
    if tp in _FIXED:
        size = _FIXED[tp]

        def fixed(reader: _Reader) -> Any:
            return tp(reader.take(size))

        return fixed
    if isinstance(tp, type) and issubclass(tp, enum.IntEnum):

        def member(reader: _Reader) -> Any:
            raw = reader.take(1)[0]
            try:
                return tp(raw)
            except ValueError:
                raise MalformedMessage(f"bad {tp.__name__} value {raw}") from None

        return member
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        fields = [(name, _decoder(field_tp)) for name, field_tp in _plan(tp)]
        cls = tp

        def record(reader: _Reader) -> Any:
            values = {name: decode_field(reader) for name, decode_field in fields}
            try:
                return cls(**values)
            except (ValueError, TypeError, CryptoError) as exc:
                raise MalformedMessage(f"invalid {cls.__name__}: {exc}") from None

        return record
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
        item = _decoder(args[0])

        def sequence(reader: _Reader) -> tuple[Any, ...]:
            count = reader.length(MAX_ITEMS)
            return tuple(item(reader) for _ in range(count))

        return sequence
    if origin is tuple:
        items = [_decoder(arg) for arg in args]

        def fixed_tuple(reader: _Reader) -> tuple[Any, ...]:
            return tuple(decode_item(reader) for decode_item in items)

        return fixed_tuple
    if origin in (typing.Union, types.UnionType) and type(None) in args:
        inner = _decoder(next(a for a in args if a is not type(None)))

        def optional(reader: _Reader) -> Any:
            flag = reader.take(1)[0]
            if flag > 1:
                raise MalformedMessage("optional flag is not 0 or 1")
            return inner(reader) if flag else None

        return optional
    raise TypeError(f"unsupported field type {tp!r}")
