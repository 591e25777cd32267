"""The generic wire codec: every registered message round-trips; every malformed input raises
MalformedMessage and nothing else."""

from __future__ import annotations

import dataclasses
import enum
import importlib
import itertools
import pkgutil
import types
import typing
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import secretstore.wire
from secretstore.crypto.curve import N, Point, Scalar
from secretstore.errors import MalformedMessage, SecretStoreError
from secretstore.types import Hash256, NodeId, ServerKeyId, SessionId
from secretstore.wire import codec
from secretstore.wire.common import SessionError
from secretstore.wire.generation import ConfirmGenerationInitialization, GenerationKeyReady

# Import every wire module so that every registered message is covered.
for _module in pkgutil.iter_modules(secretstore.wire.__path__):
    importlib.import_module(f"secretstore.wire.{_module.name}")

MESSAGES = sorted(codec.registered().items())
POINTS = [Point.base_mul(Scalar(k)) for k in (1, 2, 3, 7, N - 1, 2**200 + 5)]


def strategy_for(tp: Any, depth: int = 0) -> st.SearchStrategy[Any]:
    """Values of a codec field type (the field kinds codec.py documents)."""
    if tp is bool:
        return st.booleans()
    if tp is int:
        return st.integers(0, 2**64 - 1)
    if tp is str:
        return st.text(max_size=20)
    if tp is bytes:
        return st.binary(max_size=40)
    if tp in codec._FIXED:
        return st.binary(min_size=codec._FIXED[tp], max_size=codec._FIXED[tp]).map(tp)
    if tp is Scalar:
        return st.integers(0, N - 1).map(Scalar)
    if tp is Point:
        return st.sampled_from(POINTS)
    if tp is codec.AnyMessage:
        inner = [cls for _, cls in MESSAGES if cls is not None]
        if depth > 0:
            inner = [SessionError]
        return st.sampled_from(inner).flatmap(lambda cls: message_strategy(cls, depth + 1))
    if isinstance(tp, type) and issubclass(tp, enum.IntEnum):
        return st.sampled_from(list(tp))
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        return message_strategy(tp, depth)
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
        return st.lists(strategy_for(args[0], depth), max_size=3).map(tuple)
    if origin is tuple:
        return st.tuples(*(strategy_for(a, depth) for a in args))
    if origin in (typing.Union, types.UnionType) and type(None) in args:
        inner_tp = next(a for a in args if a is not type(None))
        return st.none() | strategy_for(inner_tp, depth)
    raise AssertionError(f"no strategy for field type {tp!r}")


#: Lengths tried for `bytes` fields when a class checks their length in __post_init__.
LIKELY_LENGTHS = (32, 65, 64, 20, 33, 16, 0, 80)


def message_strategy(cls: type[Any], depth: int = 0) -> st.SearchStrategy[Any]:
    """Instances of a (message or nested) dataclass from its field types. A class that checks
    `bytes` field lengths in __post_init__ gets its drawn bytes resized to common lengths."""
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    fields = {name: strategy_for(hints[name], depth) for name in names}
    sized = [name for name in names if hints[name] in (bytes, bytes | None)]
    return st.fixed_dictionaries(fields).map(lambda values: build(cls, values, sized))


def build(cls: type[Any], values: dict[str, Any], sized: list[str]) -> Any:
    try:
        return cls(**values)
    except (ValueError, TypeError, SecretStoreError) as first_error:
        for lengths in itertools.product(LIKELY_LENGTHS, repeat=len(sized)):
            resized = dict(values)
            for name, length in zip(sized, lengths, strict=True):
                if values[name] is not None:
                    resized[name] = (values[name] * length + bytes(length))[:length]
            try:
                return cls(**resized)
            except (ValueError, TypeError, SecretStoreError):
                continue
        raise AssertionError(f"cannot build a {cls.__name__} from its field types") from (
            first_error
        )


any_message = st.sampled_from([cls for _, cls in MESSAGES]).flatmap(message_strategy)


def test_every_wire_module_registers_messages() -> None:
    assert len(MESSAGES) >= 10
    codes = [code for code, _ in MESSAGES]
    assert len(codes) == len(set(codes))


@pytest.mark.parametrize("cls", [cls for _, cls in MESSAGES], ids=lambda c: c.__name__)
def test_every_registered_message_is_a_frozen_dataclass(cls: type[Any]) -> None:
    params = cls.__dataclass_params__
    assert params.frozen
    assert hasattr(cls, "__slots__")


@pytest.mark.parametrize("code_and_cls", MESSAGES, ids=lambda c: c[1].__name__)
@given(data=st.data())
def test_round_trip_of_every_registered_message(
    code_and_cls: tuple[int, type[Any]], data: st.DataObject
) -> None:
    code, cls = code_and_cls
    msg = data.draw(message_strategy(cls))
    encoded = codec.encode(msg)
    assert int.from_bytes(encoded[:2], "big") == code
    assert codec.decode(encoded) == msg


@given(any_message)
def test_every_truncation_is_malformed(msg: Any) -> None:
    encoded = codec.encode(msg)
    for end in range(len(encoded)):
        with pytest.raises(MalformedMessage):
            codec.decode(encoded[:end])


@given(any_message, st.binary(min_size=1, max_size=8))
def test_trailing_bytes_are_malformed(msg: Any, extra: bytes) -> None:
    with pytest.raises(MalformedMessage):
        codec.decode(codec.encode(msg) + extra)


@given(st.integers(0, 0xFFFF).filter(lambda c: c not in codec.registered()))
def test_unknown_type_codes_are_malformed(code: int) -> None:
    with pytest.raises(MalformedMessage, match="unknown message type"):
        codec.decode(code.to_bytes(2, "big") + bytes(40))


SID = SessionId(b"\x01" * 32)


@pytest.mark.parametrize(
    "bad",
    [
        bytes(64),  # the identity has no encoding
        b"\x00" * 63 + b"\x01",  # not on the curve
        b"\xff" * 64,  # coordinates above the field prime
    ],
)
def test_a_bad_point_is_malformed(bad: bytes) -> None:
    good = codec.encode(GenerationKeyReady(SID, POINTS[0]))
    assert codec.decode(good[:34] + POINTS[1].to_bytes()) == GenerationKeyReady(SID, POINTS[1])
    with pytest.raises(MalformedMessage, match="point"):
        codec.decode(good[:34] + bad)


@pytest.mark.parametrize("flag", [2, 7, 255])
def test_a_bool_other_than_0_or_1_is_malformed(flag: int) -> None:
    good = codec.encode(ConfirmGenerationInitialization(SID, True))
    assert good[-1] == 1
    with pytest.raises(MalformedMessage, match="bool"):
        codec.decode(good[:-1] + bytes([flag]))


def test_a_scalar_not_below_n_is_malformed() -> None:
    from secretstore.wire.dkg import DkgKeys

    good = codec.encode(DkgKeys(Scalar(1), Scalar(2), (POINTS[0],)))
    bad = good[:2] + N.to_bytes(32, "big") + good[34:]
    with pytest.raises(MalformedMessage, match="scalar"):
        codec.decode(bad)


def test_an_optional_flag_other_than_0_or_1_is_malformed() -> None:
    from secretstore.wire.negotiation import CommonKeyData, KeyVersions, KeyVersionsHeld

    held = KeyVersionsHeld(CommonKeyData(b"\x02" * 20, 1, POINTS[0]), (Hash256(bytes(32)),))  # type: ignore[arg-type]
    good = codec.encode(KeyVersions(SID, held))
    assert good[34] == 1
    with pytest.raises(MalformedMessage, match="optional"):
        codec.decode(good[:34] + b"\x02" + good[35:])


def test_a_nested_message_with_trailing_bytes_is_malformed() -> None:
    from secretstore.wire.generation import GenerationDkg

    inner = codec.encode(SessionError(SID, "x"))
    context = Hash256(b"\x01" * 32)
    outer = codec.encode(GenerationDkg(SID, context, codec.AnyMessage(SessionError(SID, "x"))))
    assert outer.endswith(inner)
    length = len(inner) + 1
    bad = outer[:66] + length.to_bytes(4, "big") + inner + b"\x00"
    with pytest.raises(MalformedMessage, match="nested"):
        codec.decode(bad)


def test_an_oversized_length_is_malformed() -> None:
    bad = codec.encode(SessionError(SID, ""))[:34] + (codec.MAX_BYTES + 1).to_bytes(4, "big")
    with pytest.raises(MalformedMessage, match="exceeds"):
        codec.decode(bad)


def test_invalid_utf8_is_malformed() -> None:
    bad = codec.encode(SessionError(SID, ""))[:34] + (2).to_bytes(4, "big") + b"\xff\xfe"
    with pytest.raises(MalformedMessage, match="UTF-8"):
        codec.decode(bad)


def test_fixed_length_ids_are_enforced_on_encoding() -> None:
    with pytest.raises(ValueError):
        codec.encode(SessionError(SessionId(b"\x01" * 31), ""))
    assert codec._FIXED[Hash256] == 32 and codec._FIXED[NodeId] == 64
    assert codec._FIXED[ServerKeyId] == 32
