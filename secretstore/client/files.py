"""Streamed document encryption of files of any size, byte-identical to encrypt_document."""

from __future__ import annotations

import os
import stat
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO, Final

from secretstore.crypto.curve import Point
from secretstore.crypto.document import DOCUMENT_IV_LENGTH, DocumentDecryptor, DocumentEncryptor
from secretstore.crypto.rng import Rng
from secretstore.errors import DecryptionError

#: (bytes done, total bytes or None when unknown), called after every chunk.
ProgressCallback = Callable[[int, int | None], None]

IV_LENGTH: Final = DOCUMENT_IV_LENGTH
CHUNK_SIZE: Final = 1 << 20
_SPOOL_LIMIT: Final = 64 << 20


def size_of(stream: BinaryIO) -> int | None:
    """The size of a regular file; None for pipes, terminals and in-memory streams."""
    try:
        status = os.fstat(stream.fileno())
    except (OSError, ValueError, AttributeError):
        return None
    return status.st_size if stat.S_ISREG(status.st_mode) else None


def encrypt_stream(
    key: Point,
    source: BinaryIO,
    sink: BinaryIO,
    rng: Rng,
    *,
    progress: ProgressCallback | None = None,
    chunk_size: int = CHUNK_SIZE,
) -> int:
    """Write AES-128-CTR(key, iv, source) ‖ iv to sink; returns the bytes of plaintext read."""
    total = size_of(source)
    encryptor = DocumentEncryptor(key, rng)
    done = 0
    while chunk := source.read(chunk_size):
        sink.write(encryptor.update(chunk))
        done += len(chunk)
        if progress is not None:
            progress(done, total)
    sink.write(encryptor.finish())
    return done


def seekable_copy(source: BinaryIO) -> BinaryIO:
    """`source` itself when it can seek, else a spooled copy of the rest of it (in memory up
    to 64 MiB, then in a temporary file); the caller closes a copy."""
    if source.seekable():
        return source
    spool = tempfile.SpooledTemporaryFile(max_size=_SPOOL_LIMIT)  # noqa: SIM115 - caller closes
    while chunk := source.read(CHUNK_SIZE):
        spool.write(chunk)
    spool.seek(0)
    return spool  # type: ignore[return-value]


def decrypt_stream(
    key: Point,
    source: BinaryIO,
    sink: BinaryIO,
    *,
    progress: ProgressCallback | None = None,
    chunk_size: int = CHUNK_SIZE,
) -> int:
    """Inverse of encrypt_stream; returns the bytes of plaintext written.

    The IV sits at the end, so a non-seekable source is spooled first. Raises DecryptionError
    when the input is shorter than the IV.
    """
    readable = seekable_copy(source)
    try:
        return _decrypt_seekable(key, readable, sink, progress, chunk_size)
    finally:
        if readable is not source:
            readable.close()


def _decrypt_seekable(
    key: Point,
    readable: BinaryIO,
    sink: BinaryIO,
    progress: ProgressCallback | None,
    chunk_size: int,
) -> int:
    start = readable.tell()
    end = readable.seek(0, os.SEEK_END)
    length = end - start - IV_LENGTH
    if length < 0:
        raise DecryptionError(
            f"encrypted document: {end - start} bytes is shorter than its {IV_LENGTH}-byte IV"
        )
    return decrypt_body(
        key, readable, start, length, sink, progress=progress, chunk_size=chunk_size
    )


def decrypt_body(
    key: Point,
    readable: BinaryIO,
    start: int,
    length: int,
    sink: BinaryIO,
    *,
    progress: ProgressCallback | None = None,
    chunk_size: int = CHUNK_SIZE,
) -> int:
    """Decrypt the `length` bytes of ciphertext at `start` of a seekable input, whose IV
    follows them, into sink; returns the bytes written."""
    readable.seek(start + length)
    iv = readable.read(IV_LENGTH)
    readable.seek(start)
    decryptor = DocumentDecryptor(key, iv)
    done = 0
    while done < length:
        chunk = readable.read(min(chunk_size, length - done))
        if not chunk:
            raise DecryptionError("encrypted document: the input ended early (did it change?)")
        sink.write(decryptor.update(chunk))
        done += len(chunk)
        if progress is not None:
            progress(done, length)
    return done


class AtomicOutput:
    """A file written in full or not at all: a temporary file beside the target, created at
    once (so a path that cannot be written fails before any work), renamed over the target
    by `commit`, removed by `discard` (or by leaving a `with` block with an exception)."""

    def __init__(self, out_path: Path) -> None:
        self.path = Path(out_path)
        if self.path.is_dir():
            raise IsADirectoryError(21, "is a directory", str(self.path))
        fd, self._tmp_name = tempfile.mkstemp(
            prefix=f".{self.path.name}.", dir=self.path.parent or "."
        )
        self.stream: BinaryIO = os.fdopen(fd, "wb")

    def commit(self) -> None:
        self.stream.close()
        os.replace(self._tmp_name, self.path)

    def discard(self) -> None:
        self.stream.close()
        Path(self._tmp_name).unlink(missing_ok=True)

    def __enter__(self) -> AtomicOutput:
        return self

    def __exit__(self, kind: type[BaseException] | None, *rest: object) -> None:
        if kind is not None or not self.stream.closed:
            self.discard()


def write_atomically(out_path: Path, write: Callable[[BinaryIO], int]) -> int:
    """Write to a temporary file beside out_path, then rename it over out_path."""
    with AtomicOutput(out_path) as output:
        count = write(output.stream)
        output.commit()
    return count


def encrypt_file(
    key: Point,
    in_path: str | Path,
    out_path: str | Path,
    rng: Rng,
    progress: ProgressCallback | None = None,
) -> int:
    """Encrypt a file into out_path (replaced atomically); returns the plaintext size."""
    with open(in_path, "rb") as source:
        return write_atomically(
            Path(out_path), lambda sink: encrypt_stream(key, source, sink, rng, progress=progress)
        )


def decrypt_file(
    key: Point,
    in_path: str | Path,
    out_path: str | Path,
    progress: ProgressCallback | None = None,
) -> int:
    """Decrypt a file into out_path (replaced atomically); returns the plaintext size."""
    with open(in_path, "rb") as source:
        return write_atomically(
            Path(out_path), lambda sink: decrypt_stream(key, source, sink, progress=progress)
        )
