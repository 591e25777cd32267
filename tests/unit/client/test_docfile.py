"""The file format of `secretstore encrypt`: round trips of any size, and any change to the
file, a truncation, an extension or a wrong key refused before a byte is written."""

from __future__ import annotations

import io

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from secretstore.client import docfile
from secretstore.crypto.curve import Point, Scalar
from secretstore.crypto.document import decrypt_document
from secretstore.crypto.rng import SeededRng
from secretstore.errors import InvalidEncoding

KEY = Point.base_mul(Scalar(0xC0FFEE))
OTHER = Point.base_mul(Scalar(0xBEEF))
KEY_ID = bytes(range(32))


def written(data: bytes, key: Point = KEY, chunk: int = 7) -> bytes:
    sink = io.BytesIO()
    count = docfile.encrypt_file_stream(
        key, KEY_ID, io.BytesIO(data), sink, SeededRng(1), chunk_size=chunk
    )
    assert count == len(data)
    return sink.getvalue()


def read(blob: bytes, key: Point = KEY, chunk: int = 5) -> bytes:
    source = io.BytesIO(blob)
    header = docfile.read_header(source)
    sink = io.BytesIO()
    docfile.decrypt_file_stream(key, header, source, sink, chunk_size=chunk)
    return sink.getvalue()


class Unseekable(io.RawIOBase):
    """A pipe: readable, not seekable."""

    def __init__(self, data: bytes) -> None:
        self._data = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray) -> int:  # type: ignore[override]
        chunk = self._data.read(min(len(buffer), 3))
        buffer[: len(chunk)] = chunk
        return len(chunk)


@given(st.binary(max_size=300))
def test_round_trip_and_layout(data: bytes) -> None:
    blob = written(data)
    assert len(blob) == docfile.HEADER_LENGTH + len(data) + 16 + docfile.TAG_LENGTH
    assert blob[:8] == docfile.MAGIC and blob[8:40] == KEY_ID
    assert read(blob) == data
    # the middle is Parity's encrypted document
    assert decrypt_document(KEY, blob[docfile.HEADER_LENGTH : -docfile.TAG_LENGTH]) == data


def test_a_pipe_is_read_to_the_end_first() -> None:
    data = SeededRng(2).random_bytes(10_000)
    blob = written(data, chunk=1000)
    pipe = io.BufferedReader(Unseekable(blob))
    header = docfile.read_header(pipe)
    assert header.key_id == KEY_ID
    sink = io.BytesIO()
    docfile.decrypt_file_stream(KEY, header, pipe, sink)  # type: ignore[arg-type]
    assert sink.getvalue() == data


@settings(max_examples=60)
@given(st.data())
def test_any_changed_byte_is_refused_and_nothing_written(data: st.DataObject) -> None:
    blob = bytearray(written(b"the quarterly figures, in confidence"))
    index = data.draw(st.integers(docfile.HEADER_LENGTH - docfile.CHECK_LENGTH, len(blob) - 1))
    blob[index] ^= data.draw(st.integers(1, 255))
    source = io.BytesIO(bytes(blob))
    header = docfile.read_header(source)
    sink = io.BytesIO()
    with pytest.raises((docfile.DamagedFile, docfile.WrongDocumentKey)):
        docfile.decrypt_file_stream(KEY, header, source, sink)
    assert sink.getvalue() == b""


@pytest.mark.parametrize("cut", [1, 16, 32, 48])
def test_a_truncated_or_extended_file_is_refused(cut: int) -> None:
    blob = written(b"x" * 40)
    with pytest.raises(docfile.DamagedFile):
        read(blob[:-cut])
    with pytest.raises(docfile.DamagedFile):
        read(blob + b"\x00" * cut)


def test_the_wrong_key_is_told_apart_from_damage() -> None:
    blob = written(b"secret")
    with pytest.raises(docfile.WrongDocumentKey, match="not the key of this file"):
        read(blob, key=OTHER)
    # another file's key id put in the header: the key check no longer matches either key
    forged = bytearray(blob)
    forged[8:40] = bytes(32)
    with pytest.raises(docfile.WrongDocumentKey):
        read(bytes(forged))


def test_what_is_not_such_a_file() -> None:
    with pytest.raises(InvalidEncoding, match="use --raw"):
        docfile.read_header(io.BytesIO(b"just some bytes that are long enough" * 3))
    with pytest.raises(InvalidEncoding, match="use --raw"):
        docfile.read_header(io.BytesIO(b""))
    with pytest.raises(docfile.DamagedFile, match="header"):
        docfile.read_header(io.BytesIO(docfile.MAGIC + b"\x01" * 10))
