"""Streamed file encryption on real files: the same bytes as encrypt_document, any size."""

from __future__ import annotations

import io
import itertools
import os
import threading
from pathlib import Path

import pytest

from secretstore.client import files
from secretstore.crypto.curve import Point
from secretstore.crypto.document import decrypt_document, encrypt_document
from secretstore.crypto.rng import SeededRng, random_scalar
from secretstore.errors import DecryptionError

KEY = Point.base_mul(random_scalar(SeededRng(1)))
SIZE = 5 * 1024 * 1024 + 12345  # several chunks and a ragged end


@pytest.fixture(scope="module")
def document() -> bytes:
    return SeededRng(2).random_bytes(SIZE)


@pytest.fixture
def plain_file(tmp_path: Path, document: bytes) -> Path:
    path = tmp_path / "plain.bin"
    path.write_bytes(document)
    return path


def test_streamed_file_equals_encrypt_document(
    tmp_path: Path, plain_file: Path, document: bytes
) -> None:
    encrypted_path = tmp_path / "encrypted.bin"
    seen: list[tuple[int, int | None]] = []
    count = files.encrypt_file(
        KEY, plain_file, encrypted_path, SeededRng(3), lambda d, t: seen.append((d, t))
    )
    assert count == SIZE
    encrypted = encrypted_path.read_bytes()
    assert encrypted == encrypt_document(KEY, document, SeededRng(3))
    assert seen[-1] == (SIZE, SIZE) and len(seen) == SIZE // files.CHUNK_SIZE + 1
    assert all(a[0] < b[0] for a, b in itertools.pairwise(seen))


def test_streamed_decryption_equals_decrypt_document(tmp_path: Path, document: bytes) -> None:
    encrypted_path = tmp_path / "encrypted.bin"
    encrypted_path.write_bytes(encrypt_document(KEY, document, SeededRng(4)))
    out = tmp_path / "decrypted.bin"
    seen: list[int] = []
    assert files.decrypt_file(KEY, encrypted_path, out, lambda d, t: seen.append(d)) == SIZE
    assert out.read_bytes() == document
    assert seen[-1] == SIZE


@pytest.mark.parametrize("chunk_size", [1, 15, 16, 17, 1000003])
def test_chunk_boundaries_do_not_matter(chunk_size: int) -> None:
    document = SeededRng(5).random_bytes(3000 if chunk_size < 100 else 2_500_000)
    sink = io.BytesIO()
    files.encrypt_stream(KEY, io.BytesIO(document), sink, SeededRng(6), chunk_size=chunk_size)
    assert sink.getvalue() == encrypt_document(KEY, document, SeededRng(6))
    back = io.BytesIO()
    files.decrypt_stream(KEY, io.BytesIO(sink.getvalue()), back, chunk_size=chunk_size)
    assert back.getvalue() == document == decrypt_document(KEY, sink.getvalue())


def test_decrypt_from_a_pipe(tmp_path: Path) -> None:
    document = SeededRng(7).random_bytes(300_000)
    encrypted = encrypt_document(KEY, document, SeededRng(8))
    read_fd, write_fd = os.pipe()

    def feed() -> None:
        with os.fdopen(write_fd, "wb") as writer:
            writer.write(encrypted)

    feeder = threading.Thread(target=feed)
    feeder.start()
    with os.fdopen(read_fd, "rb") as reader:
        assert not reader.seekable()
        out = io.BytesIO()
        files.decrypt_stream(KEY, reader, out)
    feeder.join(10)
    assert out.getvalue() == document


def test_short_input_fails_and_leaves_no_output(tmp_path: Path) -> None:
    short = tmp_path / "short.bin"
    short.write_bytes(bytes(15))
    out = tmp_path / "out.bin"
    with pytest.raises(DecryptionError):
        files.decrypt_file(KEY, short, out)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["short.bin"]


def test_output_is_replaced_only_when_complete(tmp_path: Path) -> None:
    out = tmp_path / "out.bin"
    out.write_bytes(b"previous")
    with pytest.raises(FileNotFoundError):
        files.encrypt_file(KEY, tmp_path / "missing.bin", out, SeededRng(9))
    assert out.read_bytes() == b"previous"
    empty = tmp_path / "empty.bin"
    empty.write_bytes(b"")
    files.encrypt_file(KEY, empty, out, SeededRng(9))
    assert out.read_bytes() == encrypt_document(KEY, b"", SeededRng(9))
    assert len(out.read_bytes()) == 16
