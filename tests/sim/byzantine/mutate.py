"""A type-directed mutator over wire messages: every way one field of a message can be wrong.

`faults_of(message, ctx)` walks a message's dataclass fields with their declared types (the
field kinds of wire/codec.py) and lists the faults each field admits; `apply(fault, message,
ctx)` returns what a dishonest sender puts on the wire instead: messages, raw bytes, or
nothing. The fault kinds:

- MALFORMED: bytes that do not decode (a scalar not below n, a point off the curve, a bool or
  optional flag of 2, an enum value out of range, a length or count over the codec's limit,
  invalid UTF-8, an unknown message type, a truncated message, a trailing byte), and values
  that decode into the field's type but break a structural rule (a tuple one item shorter,
  longer or with an item twice, bytes one byte shorter or longer, empty bytes);
- WRONG: well-formed values, changed by type (a scalar +1, random or zero; another valid
  point; a flipped bool; an int off by one, zero or huge; another node id of the cluster or
  a stranger's; another session id; a flipped bit in a hash, key id, address or bytes; another
  enum member; an optional dropped or filled in; two items of a tuple swapped; a nested
  message of another type), and whole-message substitutes (the sender's last message of
  another kind again, its next one or its last one early, the message twice, a
  SessionError of some kind instead);
- REPLAY: the corresponding message of an earlier session, with its own or the new session
  id, and each field that differs in it put into the new message (a value the sender saw
  elsewhere: an old signature, an old shadow point);
- DROP: the message dropped, or the sender silent from it on (to this receiver, or to all).

A scenario adds faults that need what only it knows (`Context.semantic`: e.g. a decrypt
shadow that is a valid encryption to the requester, of another scalar).

Mutated messages are built without running the dataclass checks (`__post_init__`): a value the
receiver's codec refuses reaches it as bytes that do not decode, exactly what a dishonest
node can send.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import types
import typing
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from secretstore.crypto.curve import N, Point, Scalar
from secretstore.crypto.rng import SeededRng, random_scalar
from secretstore.sessions.base import short
from secretstore.types import NodeId, SessionId
from secretstore.wire import codec
from secretstore.wire.common import ErrorKind, SessionError

Path = tuple[str | int, ...]
#: (the field's value, the context) -> the wrong value a scenario-specific fault puts there
Semantic = Callable[[Any, "Context"], Any]

MALFORMED: Final = "malformed"
WRONG: Final = "wrong"
REPLAY: Final = "replay"
DROP: Final = "drop"
KINDS: Final = (MALFORMED, WRONG, REPLAY, DROP)


@dataclass(frozen=True, slots=True)
class Fault:
    """One way to get one message wrong: `kind`, the field at `path` (() for the whole
    message) and the operation `op`."""

    kind: str
    path: Path
    op: str

    @property
    def where(self) -> str:
        return path_text(self.path)

    @property
    def id(self) -> str:
        return f"{self.kind}:{self.where}:{self.op}"


def path_text(path: Path) -> str:
    """`message.publics[1]` for ("message", "publics", 1); "*" for the whole message."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out or "*"


@dataclass
class Context:
    """What a fault needs to know beyond the message itself."""

    #: every node of the cluster, in the network's order
    nodes: tuple[NodeId, ...]
    #: the node the message goes to
    receiver: NodeId
    #: the session the message belongs to
    session_id: SessionId
    #: a source of values for random faults (seeded per case)
    rng: SeededRng
    #: one message of every type the sender sent in the session (nested ones included)
    samples: dict[type, object] = field(default_factory=dict)
    #: the sender's last message of the session of another kind (None if none)
    previous: object | None = None
    #: the sender's next message of another kind in an honest run (None if none): a step
    #: taken early
    later: object | None = None
    #: the sender's last message to the receiver in an honest run, if of another kind
    #: (None if none): the end of the session skipped to
    last: object | None = None
    #: the corresponding message of an earlier session (None if it had none)
    earlier: object | None = None
    #: faults only a scenario can make: (message type, path) -> {op: new value of the field}
    semantic: Mapping[tuple[type, Path], Mapping[str, Semantic]] = field(default_factory=dict)

    @property
    def stranger(self) -> NodeId:
        """A node id no cluster node has (a valid point all the same)."""
        return NodeId(Point.base_mul(Scalar(0x5EC2E7)).to_bytes())


# --- the types of fields ------------------------------------------------------------------


@functools.cache
def field_types(cls: type) -> tuple[tuple[str, Any], ...]:
    """(name, declared type) of every field of a dataclass, in declaration order."""
    hints = typing.get_type_hints(cls)
    return tuple((f.name, hints[f.name]) for f in dataclasses.fields(cls))


def optional_inner(tp: Any) -> Any | None:
    """X for `X | None`, else None."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (typing.Union, types.UnionType) and type(None) in args:
        return next(a for a in args if a is not type(None))
    return None


def var_item(tp: Any) -> Any | None:
    """X for `tuple[X, ...]`, else None."""
    if typing.get_origin(tp) is tuple:
        args = typing.get_args(tp)
        if len(args) == 2 and args[1] is Ellipsis:
            return args[0]
    return None


def is_enum(tp: Any) -> bool:
    return isinstance(tp, type) and issubclass(tp, enum.IntEnum)


def is_record(tp: Any) -> bool:
    """A nested dataclass that is not a message of its own (e.g. AccessRequest)."""
    return isinstance(tp, type) and dataclasses.is_dataclass(tp)


def walk(value: Any, tp: Any, path: Path = ()) -> Iterator[tuple[Path, Any, Any]]:
    """(path, declared type, value) of every node of a value, outermost first. An optional's
    value has the optional's path; a nested message (`AnyMessage`) is walked into."""
    yield path, tp, value
    inner = optional_inner(tp)
    if inner is not None:
        if value is not None:
            yield from _children(value, inner, path)
        return
    yield from _children(value, tp, path)


def _children(value: Any, tp: Any, path: Path) -> Iterator[tuple[Path, Any, Any]]:
    if tp is codec.AnyMessage:
        tp = type(value)
    if is_record(tp):
        for name, ftp in field_types(tp):
            yield from walk(getattr(value, name), ftp, (*path, name))
        return
    item = var_item(tp)
    if item is not None:
        for i, element in enumerate(value):
            yield from walk(element, item, (*path, i))
        return
    if typing.get_origin(tp) is tuple:
        for i, (element, element_tp) in enumerate(zip(value, typing.get_args(tp), strict=True)):
            yield from walk(element, element_tp, (*path, i))


def value_at(message: Any, path: Path) -> Any:
    value = message
    for part in path:
        value = value[part] if isinstance(part, int) else getattr(value, part)
    return value


def type_at(message: Any, path: Path) -> Any:
    for node_path, tp, _ in walk(message, type(message)):
        if node_path == path:
            return tp
    raise KeyError(path)


def clone(obj: Any, **changes: Any) -> Any:
    """A copy of a frozen dataclass with some fields changed, without running its checks."""
    cls = type(obj)
    new = object.__new__(cls)
    for f in dataclasses.fields(cls):
        object.__setattr__(new, f.name, changes.get(f.name, getattr(obj, f.name)))
    return new


def replace_at(value: Any, path: Path, new: Any) -> Any:
    """`value` with the node at `path` replaced by `new` (dataclasses cloned unchecked)."""
    if not path:
        return new
    head, rest = path[0], path[1:]
    if isinstance(head, int):
        items = list(value)
        items[head] = replace_at(items[head], rest, new)
        return tuple(items)
    return clone(value, **{head: replace_at(getattr(value, head), rest, new)})


# --- which faults a field admits ----------------------------------------------------------

_FIXED_IDS: Final = tuple(codec._FIXED)


def faults_of(message: Any, ctx: Context) -> list[Fault]:
    """Every fault of every field of `message`, then those of the message as a whole."""
    out: list[Fault] = []
    earlier = earlier_values(message, ctx.earlier)
    for path, tp, value in walk(message, type(message)):
        if not path:
            continue
        out += [Fault(kind, path, op) for kind, op in _ops(tp, value, ctx)]
        out += [Fault(WRONG, path, op) for op in ctx.semantic.get((type(message), path), {})]
        if path in earlier and earlier[path] != value and path != ("session_id",):
            out.append(Fault(REPLAY, path, "earlier-session-value"))
    out += whole_message_faults(message, ctx)
    return out


def earlier_values(message: Any, earlier: object | None) -> dict[Path, Any]:
    """path -> value of the earlier session's message of the same type, for its leaves and
    tuples (records are covered by their fields)."""
    if earlier is None or type(earlier) is not type(message):
        return {}
    return {
        path: value
        for path, tp, value in walk(earlier, type(earlier))
        if path and not (is_record(optional_inner(tp) or tp) and not is_enum(tp))
    }


def whole_message_faults(message: Any, ctx: Context) -> list[Fault]:
    out = [
        Fault(MALFORMED, (), "truncated"),
        Fault(MALFORMED, (), "trailing-byte"),
        Fault(MALFORMED, (), "unknown-type"),
        Fault(WRONG, (), "duplicated"),
    ]
    if ctx.previous is not None:
        out.append(Fault(WRONG, (), "previous-message"))
    if ctx.later is not None:
        out.append(Fault(WRONG, (), "later-message"))
    if ctx.last is not None:
        out.append(Fault(WRONG, (), "last-message"))
    if not isinstance(message, SessionError):
        out += [Fault(WRONG, (), f"refusal-{kind.name}") for kind in ErrorKind]
        out.append(Fault(WRONG, (), "error-framing-another-node"))
    if ctx.earlier is not None:
        out += [Fault(REPLAY, (), "earlier-session-own-id"), Fault(REPLAY, (), "earlier-session")]
    out += [
        Fault(DROP, (), "dropped"),
        Fault(DROP, (), "silent-to-receiver"),
        Fault(DROP, (), "silent"),
    ]
    return out


def _ops(tp: Any, value: Any, ctx: Context) -> list[tuple[str, str]]:
    inner = optional_inner(tp)
    if inner is not None:
        ops = [(MALFORMED, "optional-flag-2")]
        if value is None:
            return [*ops, (WRONG, "filled-in")]
        return [*ops, (WRONG, "none"), *_ops(inner, value, ctx)]
    if tp is bool:
        return [(MALFORMED, "bool-2"), (WRONG, "flipped")]
    if tp is int:
        ops = [(WRONG, "plus-one"), (WRONG, "huge")]
        if value > 0:
            ops += [(WRONG, "minus-one"), (WRONG, "zero")]
        return ops
    if tp is str:
        ops = [(MALFORMED, "length-over-limit"), (WRONG, "other-text")]
        return [*ops, (MALFORMED, "not-utf8")] if value else ops
    if tp is bytes:
        ops = [
            (MALFORMED, "length-over-limit"),
            (MALFORMED, "one-byte-longer"),
            (WRONG, "random-same-length"),
        ]
        if value:
            ops += [(MALFORMED, "one-byte-shorter"), (MALFORMED, "empty"), (WRONG, "bit-flipped")]
        return ops
    if tp is NodeId:
        others = [f"node-{i}" for i, node in enumerate(ctx.nodes) if node != value]
        return [(WRONG, op) for op in [*others, "stranger"]]
    if tp is SessionId:
        return [(WRONG, "other-session")]
    if tp in _FIXED_IDS:
        return [(WRONG, "bit-flipped")]
    if tp is Scalar:
        ops = [(MALFORMED, "scalar-not-below-n"), (WRONG, "plus-one"), (WRONG, "random")]
        return ops if value.is_zero() else [*ops, (WRONG, "zero")]
    if tp is Point:
        return [
            (MALFORMED, "point-off-curve"),
            (WRONG, "plus-generator"),
            (WRONG, "negated"),
            (WRONG, "random"),
        ]
    if is_enum(tp):
        ops = [(WRONG, f"other-{m.name}") for m in tp if m != value]
        return [(MALFORMED, "enum-out-of-range"), *ops]
    if tp is codec.AnyMessage:
        ops = [(MALFORMED, "length-over-limit"), (MALFORMED, "unknown-inner-type")]
        others = sorted(c.__name__ for c in ctx.samples if c is not type(value) and _is_inner(c))
        return [*ops, *((WRONG, f"inner-{name}") for name in others)]
    item = var_item(tp)
    if item is not None:
        ops = [(MALFORMED, "count-over-limit"), (MALFORMED, "extra-item")]
        if value:
            ops += [
                (MALFORMED, "first-dropped"),
                (MALFORMED, "last-dropped"),
                (MALFORMED, "last-twice"),
            ]
        if len(value) >= 2 and value[0] != value[1]:
            ops.append((WRONG, "first-two-swapped"))
        return ops
    if is_record(tp) or typing.get_origin(tp) is tuple:
        return []  # records and fixed tuples: their fields carry the faults
    raise TypeError(f"the mutator has no faults for a field of type {tp!r}: teach _ops it")


#: The leaf types `_ops` has faults for (besides enums, optionals and tuples of them).
LEAVES: Final = (bool, int, str, bytes, NodeId, SessionId, Scalar, Point, *_FIXED_IDS)


def unknown_types(tp: Any) -> set[str]:
    """The field types inside `tp` (a message class, a record, a field's declared type) that
    the mutator has no faults for: none, or a message type would get no field faults."""
    inner = optional_inner(tp)
    if inner is not None:
        return unknown_types(inner)
    if tp in LEAVES or is_enum(tp) or tp is codec.AnyMessage:
        return set()
    item = var_item(tp)
    if item is not None:
        return unknown_types(item)
    if typing.get_origin(tp) is tuple:
        return set().union(*(unknown_types(arg) for arg in typing.get_args(tp)))
    if is_record(tp):
        return set().union(*(unknown_types(ftp) for _, ftp in field_types(tp)))
    return {repr(tp)}


def _is_inner(cls: type) -> bool:
    """A registered message without a session id: one that travels inside another."""
    return cls in codec.registered().values() and "session_id" not in dict(field_types(cls))


# --- applying a fault ---------------------------------------------------------------------

#: What the sender puts on the wire: messages (encoded by the network) or raw bytes.
Outgoing = list[object]


def apply(fault: Fault, message: Any, ctx: Context) -> Outgoing:
    """What is sent instead of `message` (an empty list: nothing)."""
    if fault.kind == DROP:
        return []
    if fault.kind == REPLAY:
        assert ctx.earlier is not None
        if fault.path:
            return [replace_at(message, fault.path, value_at(ctx.earlier, fault.path))]
        if fault.op == "earlier-session":
            return [_with_session(ctx.earlier, ctx.session_id)]
        return [ctx.earlier]
    if not fault.path:
        return _whole(fault.op, message, ctx)
    tp = type_at(message, fault.path)
    value = value_at(message, fault.path)
    semantic = ctx.semantic.get((type(message), fault.path), {})
    if fault.op in semantic:
        return [replace_at(message, fault.path, semantic[fault.op](value, ctx))]
    if fault.op in BYTE_OPS:
        return [patch_bytes(message, fault.path, fault.op)]
    return [replace_at(message, fault.path, _new_value(fault.op, tp, value, ctx))]


def _with_session(message: Any, session_id: SessionId) -> Any:
    if "session_id" in dict(field_types(type(message))):
        return clone(message, session_id=session_id)
    return message


def _whole(op: str, message: Any, ctx: Context) -> Outgoing:
    if op in BYTE_OPS:
        return [patch_bytes(message, (), op)]
    if op == "duplicated":
        return [message, message]
    # a fault of every message of a kind to every receiver was listed for the first one:
    # where another has no such substitute, its message goes as it is
    substitutes = {
        "previous-message": ctx.previous,
        "later-message": ctx.later,
        "last-message": ctx.last,
    }
    if op in substitutes:
        substitute = substitutes[op]
        return [message if substitute is None else substitute]
    sid = message.session_id
    if op == "error-framing-another-node":
        framed = next(node for node in ctx.nodes if node != ctx.receiver)
        return [SessionError(sid, f"node {short(framed)}: sent garbage", ErrorKind.GENERIC)]
    if op.startswith("refusal-"):
        kind = ErrorKind[op.removeprefix("refusal-")]
        return [SessionError(sid, "refused", kind)]
    raise AssertionError(f"unknown whole-message fault {op}")


def _new_value(op: str, tp: Any, value: Any, ctx: Context) -> Any:
    inner = optional_inner(tp)
    if inner is not None:
        if op == "none":
            return None
        if op == "filled-in":
            return generate(inner, ctx)
        tp = inner
    if op == "flipped":
        return not value
    if tp is int:
        return {"plus-one": value + 1, "minus-one": value - 1, "zero": 0, "huge": 2**64 - 1}[op]
    if tp is str:
        return value + " (changed)"
    if tp is bytes:
        if op == "one-byte-shorter":
            return value[:-1]
        if op == "one-byte-longer":
            return value + b"\x00"
        if op == "empty":
            return b""
        if op == "random-same-length":
            return ctx.rng.random_bytes(len(value))
        return _flip(value)
    if tp is NodeId:
        if op == "stranger":
            return ctx.stranger
        return ctx.nodes[int(op.removeprefix("node-"))]
    if tp is SessionId:
        return SessionId(ctx.rng.random_bytes(32))
    if tp in _FIXED_IDS:
        return tp(_flip(value))
    if tp is Scalar:
        return {"plus-one": lambda: value + Scalar(1), "zero": lambda: Scalar(0)}.get(
            op, lambda: random_scalar(ctx.rng)
        )()
    if tp is Point:
        if op == "plus-generator":
            return value + Point.generator()
        if op == "negated":
            return -value
        return Point.base_mul(random_scalar(ctx.rng))
    if is_enum(tp):
        return tp[op.removeprefix("other-")]
    if tp is codec.AnyMessage:
        name = op.removeprefix("inner-")
        return next(sample for cls, sample in ctx.samples.items() if cls.__name__ == name)
    item = var_item(tp)
    if item is not None:
        items = list(value)
        if op == "extra-item":
            return (*items, generate(item, ctx))
        if op == "first-dropped":
            return tuple(items[1:])
        if op == "last-dropped":
            return tuple(items[:-1])
        if op == "last-twice":
            return (*items, items[-1])
        if op == "first-two-swapped":
            return (items[1], items[0], *items[2:])
    raise AssertionError(f"no fault {op} for {tp!r}")


def _flip(data: bytes) -> bytes:
    return bytes([data[0] ^ 0x01]) + data[1:]


def generate(tp: Any, ctx: Context) -> Any:
    """Some well-formed value of a field type (for an optional filled in, an extra item)."""
    if optional_inner(tp) is not None:
        return None
    if tp is bool:
        return True
    if tp is int:
        return 1
    if tp is str:
        return "made up"
    if tp is bytes:
        return ctx.rng.random_bytes(65)
    if tp is NodeId:
        return ctx.stranger
    if tp in _FIXED_IDS:
        return tp(ctx.rng.random_bytes(codec._FIXED[tp]))
    if tp is Scalar:
        return random_scalar(ctx.rng)
    if tp is Point:
        return Point.base_mul(random_scalar(ctx.rng))
    if is_enum(tp):
        return next(iter(tp))
    if tp is codec.AnyMessage:
        return next(iter(ctx.samples.values()))
    if var_item(tp) is not None:
        return ()
    if typing.get_origin(tp) is tuple:
        return tuple(generate(a, ctx) for a in typing.get_args(tp))
    if is_record(tp):
        new = object.__new__(tp)
        for name, ftp in field_types(tp):
            object.__setattr__(new, name, generate(ftp, ctx))
        return new
    raise AssertionError(f"cannot generate a {tp!r}")


# --- bytes that do not decode -------------------------------------------------------------

BYTE_OPS: Final = frozenset(
    {
        "truncated",
        "trailing-byte",
        "unknown-type",
        "unknown-inner-type",
        "scalar-not-below-n",
        "point-off-curve",
        "bool-2",
        "optional-flag-2",
        "enum-out-of-range",
        "length-over-limit",
        "count-over-limit",
        "not-utf8",
    }
)
#: A type code no message has.
UNKNOWN_CODE: Final = 0xFFFF


def patch_bytes(message: Any, path: Path, op: str) -> bytes:
    """The encoding of `message` with the node at `path` made undecodable by `op`."""
    data, spans = encode_with_spans(message)
    out = bytearray(data)
    start, end = spans[path]
    if path and op != "optional-flag-2" and optional_inner(type_at(message, path)) is not None:
        start += 1  # the fault is in the value, after the optional's flag
    if op == "truncated":
        return bytes(out[:-1])
    if op == "trailing-byte":
        return bytes(out) + b"\x00"
    if op == "unknown-type":
        out[start : start + 2] = UNKNOWN_CODE.to_bytes(2, "big")
    elif op == "unknown-inner-type":
        out[start + 4 : start + 6] = UNKNOWN_CODE.to_bytes(2, "big")
    elif op == "scalar-not-below-n":
        out[start:end] = N.to_bytes(32, "big")
    elif op == "point-off-curve":
        out[end - 1] ^= 0x01  # (x, y ± 1) is not on the curve
    elif op in ("bool-2", "optional-flag-2"):
        out[start] = 2
    elif op == "enum-out-of-range":
        out[start] = 0xFF
    elif op in ("length-over-limit", "count-over-limit"):
        out[start : start + 4] = b"\xff\xff\xff\xff"
    elif op == "not-utf8":
        out[start + 4] = 0xFF
    else:
        raise AssertionError(f"unknown byte fault {op}")
    return bytes(out)


def encode_with_spans(message: Any) -> tuple[bytes, dict[Path, tuple[int, int]]]:
    """The codec's encoding of `message` and where each node of it lies: (start, end), the
    start at its length prefix, optional flag or type code. Checked against codec.encode."""
    out = bytearray()
    spans: dict[Path, tuple[int, int]] = {}
    _encode_message(message, (), out, spans)
    data = bytes(out)
    assert data == codec.encode(message), "the span encoder drifted from wire/codec.py"
    return data, spans


def _encode_message(
    msg: Any, path: Path, out: bytearray, spans: dict[Path, tuple[int, int]]
) -> None:
    start = len(out)
    out += codec.code_of(type(msg)).to_bytes(2, "big")
    for name, ftp in field_types(type(msg)):
        _encode_value(getattr(msg, name), ftp, (*path, name), out, spans)
    spans[path] = (start, len(out))


def _encode_value(
    value: Any, tp: Any, path: Path, out: bytearray, spans: dict[Path, tuple[int, int]]
) -> None:
    start = len(out)
    inner = optional_inner(tp)
    if inner is not None:
        if value is None:
            out.append(0)
        else:
            out.append(1)
            _encode_value(value, inner, path, out, spans)
    elif tp is codec.AnyMessage:
        nested = bytearray()
        nested_spans: dict[Path, tuple[int, int]] = {}
        _encode_message(value, (), nested, nested_spans)
        out += len(nested).to_bytes(4, "big")
        offset = len(out)
        out += nested
        for sub, (a, b) in nested_spans.items():
            if sub:
                spans[(*path, *sub)] = (a + offset, b + offset)
    elif is_record(tp) and not is_enum(tp):
        for name, ftp in field_types(tp):
            _encode_value(getattr(value, name), ftp, (*path, name), out, spans)
    elif var_item(tp) is not None:
        out += len(value).to_bytes(4, "big")
        for i, item in enumerate(value):
            _encode_value(item, var_item(tp), (*path, i), out, spans)
    elif typing.get_origin(tp) is tuple:
        for i, (item, item_tp) in enumerate(zip(value, typing.get_args(tp), strict=True)):
            _encode_value(item, item_tp, (*path, i), out, spans)
    else:
        scratch = bytearray()
        codec._encode_value(value, tp, scratch)
        out += scratch
    spans[path] = (start, len(out))
