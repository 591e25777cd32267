"""JSON from untrusted peers, with the nesting depth bounded before the parser recurses."""

from __future__ import annotations

import json
import re
from typing import Any, Final

from secretstore.errors import InvalidEncoding

#: Deeper than any request or answer of the API (a batch of calls with nested params is 4).
MAX_DEPTH: Final = 32

# A JSON string (its brackets do not count), or one bracket.
_TOKENS: Final = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{}]', re.DOTALL)


def nesting_depth_exceeds(text: str, limit: int) -> bool:
    """Whether brackets outside strings nest deeper than `limit` (a cheap pre-parse scan)."""
    if text.count("[") + text.count("{") <= limit:
        return False
    depth = 0
    for token in _TOKENS.finditer(text):
        first = token.group()[0]
        if first in "[{":
            depth += 1
            if depth > limit:
                return True
        elif first in "]}":
            depth -= 1
    return False


def loads(data: bytes | str, max_depth: int = MAX_DEPTH) -> Any:
    """json.loads that refuses deep nesting instead of recursing into it.

    Some imported libraries raise the interpreter's recursion limit far above what the C
    stack holds, so a body of a hundred thousand `[` would crash the process inside
    json.loads. Bytes must be UTF-8 (RFC 8259). Raises InvalidEncoding for deep nesting and
    for anything that is not JSON.
    """
    try:
        text = data.decode("utf-8") if isinstance(data, bytes | bytearray) else data
    except UnicodeDecodeError as exc:
        raise InvalidEncoding(f"not UTF-8: {exc}") from exc
    if nesting_depth_exceeds(text, max_depth):
        raise InvalidEncoding(f"JSON nested deeper than {max_depth} levels")
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise InvalidEncoding(f"not JSON: {exc}") from exc
