"""Logging of the node process: one structured line per record, tagged with the node, redacted.

A line reads `<UTC time> <LEVEL> node=<first 8 hex of the node id> <logger>: <message>`; a
newline inside a message or a traceback is written as `\\n`, so every record is one line that
grep and log shippers can take as it is. `RedactSecrets` is a backstop: the code never logs a
secret, and if a 64-hex value ever follows a word like "secret", "password" or "share" in a
record, it is replaced before the line is written.
"""

from __future__ import annotations

import asyncio
import logging
import re
import sys
import time
from typing import Final, TextIO

from aiohttp.http_exceptions import HttpProcessingError

from secretstore.types import NodeId

#: Level names accepted from the config and the command line (Parity's and Python's).
LEVELS: Final = {
    "error": logging.ERROR,
    "warn": logging.WARNING,
    "warning": logging.WARNING,
    "info": logging.INFO,
    "debug": logging.DEBUG,
    "trace": logging.DEBUG,
}
#: Shown in place of the node id before the node's key is known.
NO_NODE: Final = "-"
REDACTED: Final = "<redacted>"

# A secret-ish word, then (within the same few words) a 64-hex value standing alone: a 128-hex
# public key or a longer hex run does not match, since the value must end at a word boundary.
_SECRET_WORDS = r"secret|password|passphrase|passwd|share|private|mnemonic|seed"  # noqa: S105
#: The same words, for a quick test whether a text can hold anything to redact at all (a
#: case-insensitive regex search is ~10x slower than these substring tests on a request line).
_WORDS_FOLDED: Final = tuple(word.casefold() for word in _SECRET_WORDS.split("|"))
_SECRET_AFTER_WORD = re.compile(
    rf"(?i)((?:{_SECRET_WORDS})[^\n]{{0,48}}?)(?<![0-9a-f])(?:0x)?[0-9a-f]{{64}}(?![0-9a-f])"
)
_MAX_REDACTIONS: Final = 32

_HANDLER_NAME: Final = "secretstore"


def parse_level(name: str) -> int:
    """The logging level of a level name (any case); ValueError for an unknown one."""
    try:
        return LEVELS[name.strip().lower()]
    except KeyError:
        raise ValueError(f"unknown log level {name!r}; known: {', '.join(LEVELS)}") from None


def may_hold_secret(text: str) -> bool:
    """Whether `text` contains a secret-ish word (in any case); if not, `redact` leaves it
    as it is."""
    folded = text.casefold()
    return any(word in folded for word in _WORDS_FOLDED)


def redact(text: str) -> str:
    """`text` with every 64-hex value that follows a secret-ish word replaced."""
    if not may_hold_secret(text):
        return text
    for _ in range(_MAX_REDACTIONS):
        replaced = _SECRET_AFTER_WORD.sub(lambda m: m.group(1) + REDACTED, text)
        if replaced == text:
            break
        text = replaced
    return text


class RedactSecrets(logging.Filter):
    """Rewrites a record's message (and traceback text) through `redact`; drops nothing."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


class NodeTag(logging.Filter):
    """Puts the node's short id on every record (as `record.node`)."""

    def __init__(self, node: str = NO_NODE) -> None:
        super().__init__()
        self.node = node

    def filter(self, record: logging.LogRecord) -> bool:
        record.node = self.node
        return True


#: Exceptions that come from outside and are expected (a client's malformed HTTP, a peer or
#: client that went away): logged as one line with their cause, never with a traceback.
EXPECTED_ERRORS: tuple[type[BaseException], ...] = (
    HttpProcessingError,
    ConnectionError,
    asyncio.IncompleteReadError,
    TimeoutError,
)


class ExpectedErrorsOneLine(logging.Filter):
    """A record carrying an expected exception keeps its message and the exception's text on
    one line, without the traceback; tracebacks stay for bugs."""

    def filter(self, record: logging.LogRecord) -> bool:
        info = record.exc_info
        if info and isinstance(info[1], EXPECTED_ERRORS):
            error = info[1]
            detail = " ".join(str(error).split()) or type(error).__name__
            record.msg = f"{record.getMessage()}: {type(error).__name__}: {detail}"
            record.args = ()
            record.exc_info = None
            record.exc_text = None
        return True


class OneLineFormatter(logging.Formatter):
    """`<time> <LEVEL> node=<id> <logger>: <message>` with newlines escaped."""

    def __init__(self) -> None:
        super().__init__("%(message)s")

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
        return f"{stamp}.{int(record.msecs):03d}Z"

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)  # the message, then any traceback and stack on new lines
        node = getattr(record, "node", NO_NODE)
        level = "WARN" if record.levelname == "WARNING" else record.levelname
        line = f"{self.formatTime(record)} {level:<5} node={node} {record.name}: {text}"
        return line.replace("\r", "\\r").replace("\n", "\\n")


def short_node(node_id: NodeId) -> str:
    """The first 8 hex digits of a node id, as every log line shows it."""
    return bytes(node_id)[:4].hex()


def configure_logging(
    level: int | str = logging.INFO,
    *,
    node_id: NodeId | None = None,
    stream: TextIO | None = None,
) -> logging.Handler:
    """Send every record at `level` or above to `stream` (stderr) as one redacted line.

    Replaces a handler installed by an earlier call, so the node can log before its config is
    read and again, tagged with its id and at the configured level, once it is.
    """
    numeric = parse_level(level) if isinstance(level, str) else level
    root = logging.getLogger()
    for old in [h for h in root.handlers if h.get_name() == _HANDLER_NAME]:
        root.removeHandler(old)
        old.close()
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.set_name(_HANDLER_NAME)
    handler.addFilter(NodeTag(short_node(node_id) if node_id is not None else NO_NODE))
    handler.addFilter(ExpectedErrorsOneLine())
    handler.addFilter(RedactSecrets())
    handler.setFormatter(OneLineFormatter())
    root.addHandler(handler)
    root.setLevel(numeric)
    # aiohttp's access log is useful at info; its internals are not, below warning.
    logging.getLogger("aiohttp.server").setLevel(max(numeric, logging.WARNING))
    logging.getLogger("asyncio").setLevel(max(numeric, logging.WARNING))
    return handler
