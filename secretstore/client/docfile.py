"""The file format `secretstore encrypt` writes: its key id, Parity's document, a MAC.

    offset   size  field
    0        8     magic  b"SSDOCv1\\n"
    8        32    the server key id the document key is stored under
    40       16    key check: HMAC-SHA256(check key, magic ‖ key id), first 16 bytes
    56       n+16  Parity's encrypted document: AES-128-CTR(M[0:16], iv, data) ‖ iv
    72+n     32    tag: HMAC-SHA256(MAC key, every byte before it)

The check and MAC keys come from the document key M (its 64-byte encoding) by HKDF-SHA256
with distinct `info` strings, so only a holder of M can make or check them. The key check
tells a wrong key ("not the key of this file") apart from a damaged file (the tag fails);
the tag makes any change, truncation or extension of the file fail before a byte of
plaintext is written. Bytes 56..56+n+16 are exactly what Parity's `encrypt_document` (and
`secretstore_encrypt`) produce, so a file can be handed to any Parity client by cutting off
the 56-byte header and the 32-byte tag.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from dataclasses import dataclass
from typing import BinaryIO, Final

from Crypto.Hash import SHA256
from Crypto.Protocol.KDF import HKDF

from secretstore.client.files import (
    CHUNK_SIZE,
    IV_LENGTH,
    ProgressCallback,
    decrypt_body,
    encrypt_stream,
    seekable_copy,
)
from secretstore.crypto.curve import Point
from secretstore.crypto.rng import Rng
from secretstore.errors import DecryptionError, InvalidEncoding

MAGIC: Final = b"SSDOCv1\n"
KEY_ID_LENGTH: Final = 32
CHECK_LENGTH: Final = 16
TAG_LENGTH: Final = 32
HEADER_LENGTH: Final = len(MAGIC) + KEY_ID_LENGTH + CHECK_LENGTH
#: The smallest file: a header, an empty document (its IV) and a tag.
MIN_LENGTH: Final = HEADER_LENGTH + IV_LENGTH + TAG_LENGTH
_CHECK_INFO: Final = b"secretstore encrypted file v1: key check"
_MAC_INFO: Final = b"secretstore encrypted file v1: mac"


class WrongDocumentKey(DecryptionError):
    """The document key does not belong to this file."""


class DamagedFile(DecryptionError):
    """The file was changed, cut short or extended after it was written."""


@dataclass(frozen=True, slots=True)
class FileHeader:
    key_id: bytes
    key_check: bytes


def _derive(key: Point, info: bytes) -> bytes:
    derived = HKDF(key.to_bytes(), 32, b"", SHA256, context=info)
    assert isinstance(derived, bytes)  # one key asked for
    return derived


def key_check(key: Point, key_id: bytes) -> bytes:
    """The 16-byte value that shows `key` is the document key of a file under `key_id`."""
    return hmac.new(_derive(key, _CHECK_INFO), MAGIC + key_id, hashlib.sha256).digest()[
        :CHECK_LENGTH
    ]


def encode_header(key: Point, key_id: bytes) -> bytes:
    if len(key_id) != KEY_ID_LENGTH:
        raise InvalidEncoding(f"a key id is {KEY_ID_LENGTH} bytes, got {len(key_id)}")
    return MAGIC + key_id + key_check(key, key_id)


def read_header(source: BinaryIO) -> FileHeader:
    """The header at the start of `source` (blocks until it is there, e.g. on a pipe).

    Raises InvalidEncoding for input that is not a file written by `secretstore encrypt`."""
    header = _read_exactly(source, HEADER_LENGTH)
    if not header.startswith(MAGIC):
        raise InvalidEncoding(
            "not a file written by `secretstore encrypt` (no SSDOCv1 header); "
            "for a bare Parity encrypted document use --raw"
        )
    if len(header) < HEADER_LENGTH:
        raise DamagedFile(f"the file ends inside its {HEADER_LENGTH}-byte header")
    key_id = header[len(MAGIC) : len(MAGIC) + KEY_ID_LENGTH]
    return FileHeader(key_id, header[len(MAGIC) + KEY_ID_LENGTH :])


def _read_exactly(source: BinaryIO, count: int) -> bytes:
    data = b""
    while len(data) < count:
        chunk = source.read(count - len(data))
        if not chunk:
            break
        data += chunk
    return data


class _Authenticated:
    """A sink that also feeds everything written to it into a MAC."""

    def __init__(self, sink: BinaryIO, mac: hmac.HMAC) -> None:
        self._sink = sink
        self._mac = mac

    def write(self, data: bytes) -> int:
        self._mac.update(data)
        return self._sink.write(data)


def encrypt_file_stream(
    key: Point,
    key_id: bytes,
    source: BinaryIO,
    sink: BinaryIO,
    rng: Rng,
    *,
    progress: ProgressCallback | None = None,
    chunk_size: int = CHUNK_SIZE,
) -> int:
    """Write the whole file (header, document, tag) to sink; returns the plaintext size."""
    header = encode_header(key, key_id)
    mac = hmac.new(_derive(key, _MAC_INFO), b"", hashlib.sha256)
    authenticated = _Authenticated(sink, mac)
    authenticated.write(header)
    done = encrypt_stream(
        key,
        source,
        authenticated,  # type: ignore[arg-type]  # only write() is used
        rng,
        progress=progress,
        chunk_size=chunk_size,
    )
    sink.write(mac.digest())
    return done


def decrypt_file_stream(
    key: Point,
    header: FileHeader,
    rest: BinaryIO,
    sink: BinaryIO,
    *,
    progress: ProgressCallback | None = None,
    chunk_size: int = CHUNK_SIZE,
) -> int:
    """Check the key and the tag of the whole file, then write its plaintext to sink.

    `rest` is the input after the header (read by `read_header`). Nothing reaches `sink`
    unless the key is this file's (else WrongDocumentKey) and the tag verifies (else
    DamagedFile). Returns the plaintext size."""
    if not hmac.compare_digest(key_check(key, header.key_id), header.key_check):
        raise WrongDocumentKey(
            f"the document key from the cluster is not the key of this file (key id "
            f"0x{header.key_id.hex()}); nothing was written"
        )
    readable = seekable_copy(rest)
    try:
        start = readable.tell()
        end = readable.seek(0, os.SEEK_END)
        length = end - start - IV_LENGTH - TAG_LENGTH
        if length < 0:
            raise DamagedFile("the file is cut short: it ends before its IV and tag")
        readable.seek(start)
        _verify_tag(key, header, readable, length + IV_LENGTH, chunk_size)
        return decrypt_body(
            key, readable, start, length, sink, progress=progress, chunk_size=chunk_size
        )
    finally:
        if readable is not rest:
            readable.close()


def _verify_tag(
    key: Point, header: FileHeader, readable: BinaryIO, body_length: int, chunk_size: int
) -> None:
    mac = hmac.new(
        _derive(key, _MAC_INFO), MAGIC + header.key_id + header.key_check, hashlib.sha256
    )
    left = body_length
    while left:
        chunk = readable.read(min(chunk_size, left))
        if not chunk:
            raise DamagedFile("the file changed while it was read")
        mac.update(chunk)
        left -= len(chunk)
    tag = readable.read(TAG_LENGTH)
    if not hmac.compare_digest(mac.digest(), tag):
        raise DamagedFile(
            "the file does not authenticate: it was changed, cut short or extended after "
            "it was written; nothing was written"
        )
