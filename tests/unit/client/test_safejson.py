"""JSON from peers: deep nesting is refused before the parser recurses into it."""

from __future__ import annotations

import sys

import pytest

from secretstore.client import safejson
from secretstore.errors import InvalidEncoding


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


def test_depth_up_to_the_limit_parses() -> None:
    assert safejson.loads(nested(safejson.MAX_DEPTH)) is not None
    with pytest.raises(InvalidEncoding, match="nested deeper"):
        safejson.loads(nested(safejson.MAX_DEPTH + 1))


def test_brackets_inside_strings_do_not_count() -> None:
    text = '["' + "[{" * 500 + '", "\\"' + "[" * 100 + '"]'
    assert safejson.loads(text) == ["[{" * 500, '"' + "[" * 100]
    assert safejson.loads(text.encode()) == safejson.loads(text)


def test_deep_nesting_is_refused_with_a_raised_recursion_limit() -> None:
    # eth-account's dependencies raise the limit far above what the C stack holds; json.loads
    # alone would then crash the process on this body.
    previous = sys.getrecursionlimit()
    sys.setrecursionlimit(max(previous, 100_000))
    try:
        with pytest.raises(InvalidEncoding):
            safejson.loads("[" * 300_000)
        with pytest.raises(InvalidEncoding):
            safejson.loads(b'{"a":' * 300_000)
    finally:
        sys.setrecursionlimit(previous)


@pytest.mark.parametrize("data", [b"\xff\xfe[]", b"", "{", "[1,]", b'"unterminated'])
def test_not_json(data: bytes | str) -> None:
    with pytest.raises(InvalidEncoding):
        safejson.loads(data)
