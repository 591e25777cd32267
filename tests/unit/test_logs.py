"""Node logs: one line per record, tagged with the node, with secrets redacted as a backstop."""

from __future__ import annotations

import asyncio
import io
import logging
import re
from collections.abc import Iterator

import pytest
from aiohttp.http_exceptions import BadHttpMessage
from hypothesis import given
from hypothesis import strategies as st

from secretstore.crypto.keys import KeyPair
from secretstore.crypto.rng import SeededRng
from secretstore.logs import (
    _SECRET_AFTER_WORD,
    _SECRET_WORDS,
    REDACTED,
    configure_logging,
    may_hold_secret,
    parse_level,
    redact,
    short_node,
)

LINE = re.compile(
    r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z (ERROR|WARN |INFO |DEBUG) node=(\S+) (\S+): (.*)$"
)
HEX64 = st.binary(min_size=32, max_size=32).map(bytes.hex)


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    root = logging.getLogger()
    level = root.level
    key = KeyPair.generate(SeededRng(7))
    handler = configure_logging("debug", node_id=key.node_id, stream=stream)
    try:
        yield stream
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


def lines(stream: io.StringIO) -> list[str]:
    return stream.getvalue().splitlines()


def test_a_record_is_one_structured_line(captured: io.StringIO) -> None:
    logging.getLogger("secretstore.test").warning("peer %s left\nsecond line", "ab12")
    [line] = lines(captured)
    match = LINE.match(line)
    assert match is not None, line
    level, node, logger, message = match.groups()
    key = KeyPair.generate(SeededRng(7))
    assert (level, node, logger) == ("WARN ", short_node(key.node_id), "secretstore.test")
    assert node == key.node_id.hex()[:8]
    assert message == "peer ab12 left\\nsecond line"


def test_a_traceback_stays_on_the_line(captured: io.StringIO) -> None:
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        logging.getLogger("secretstore.test").exception("failed")
    [line] = lines(captured)
    assert LINE.match(line)
    assert "Traceback" in line and "RuntimeError: boom" in line


def test_the_level_filters(captured: io.StringIO) -> None:
    configure_logging("warn", stream=captured)
    logging.getLogger("secretstore.test").info("hidden")
    logging.getLogger("secretstore.test").error("shown")
    assert [LINE.match(x).group(4) for x in lines(captured)] == ["shown"]  # type: ignore[union-attr]
    assert "node=- " in lines(captured)[0]  # no node id given this time


def test_configuring_again_replaces_the_handler(captured: io.StringIO) -> None:
    configure_logging("info", stream=captured)
    logging.getLogger("x").info("once")
    assert len(lines(captured)) == 1


@given(secret=HEX64, word=st.sampled_from(["secret", "Password", "share", "SECRET_KEY"]))
def test_a_secret_after_a_secret_word_is_redacted(secret: str, word: str) -> None:
    for text in (f"{word}={secret}", f"{word}: 0x{secret}", f"the {word} is {secret}, ok"):
        cleaned = redact(text)
        assert secret not in cleaned
        assert REDACTED in cleaned


def test_every_secret_in_a_line_is_redacted() -> None:
    a, b = "11" * 32, "22" * 32
    cleaned = redact(f"secret {a} and share {b}; password {a}")
    assert a not in cleaned and b not in cleaned
    assert cleaned.count(REDACTED) == 3


# Case variants the pattern's IGNORECASE accepts, including two non-ASCII ones.
_VARIANTS = {"s": "sSſ", "k": "kKK"}


@st.composite
def secret_word_variants(draw: st.DrawFn) -> str:
    word = draw(st.sampled_from(_SECRET_WORDS.split("|")))
    return "".join(draw(st.sampled_from(_VARIANTS.get(c, c + c.upper()))) for c in word)


@given(word=secret_word_variants(), secret=HEX64, before=st.text(max_size=20))
def test_the_quick_word_test_sees_every_spelling_the_pattern_sees(
    word: str, secret: str, before: str
) -> None:
    text = f"{before}{word} {secret}"
    assert may_hold_secret(text)
    assert secret not in redact(text)


@given(text=st.text(alphabet="secrtpaswodhivmnSECRTPAWODſK0123456789abcdef :=x", max_size=150))
def test_text_without_a_secret_word_has_nothing_the_pattern_would_redact(text: str) -> None:
    if not may_hold_secret(text):
        assert _SECRET_AFTER_WORD.search(text) is None
        assert redact(text) == text


@given(value=HEX64)
def test_public_values_are_left_alone(value: str) -> None:
    public = value * 2  # a 128-hex node id after "share" is not a secret
    for text in (f"key id {value}", f"share from node {public}", f"session {value}"):
        assert redact(text) == text


def test_the_filter_redacts_arguments_and_tracebacks(captured: io.StringIO) -> None:
    secret = "ab" * 32
    log = logging.getLogger("secretstore.test")
    log.info("loaded secret %s", secret)
    try:
        raise ValueError(f"bad password {secret}")
    except ValueError:
        log.exception("unlock failed")
    text = captured.getvalue()
    assert secret not in text
    assert text.count(REDACTED) == 2


@pytest.mark.parametrize(
    ("name", "level"),
    [
        ("error", logging.ERROR),
        ("WARN", logging.WARNING),
        ("warning", logging.WARNING),
        ("info", logging.INFO),
        ("debug", logging.DEBUG),
        ("trace", logging.DEBUG),
    ],
)
def test_level_names(name: str, level: int) -> None:
    assert parse_level(name) == level


def test_an_unknown_level_name_is_refused() -> None:
    with pytest.raises(ValueError, match="verbose"):
        parse_level("verbose")


@pytest.mark.parametrize(
    "error",
    [
        ConnectionResetError("Connection reset by peer"),
        BadHttpMessage("Invalid character in Content-Length"),
        asyncio.IncompleteReadError(b"ab", 6),
    ],
)
def test_an_expected_error_is_one_line_with_its_cause_and_no_traceback(
    captured: io.StringIO, error: BaseException
) -> None:
    try:
        raise error
    except BaseException:
        logging.getLogger("aiohttp.server").exception("Error handling %s", "request")
    [line] = lines(captured)
    assert "Traceback" not in line
    assert f"Error handling request: {type(error).__name__}: " in line
    assert (str(error).split() or [type(error).__name__])[0] in line
