"""`secretstore encrypt|decrypt|delete|sign-hash|servers-set-hash`: a user's files, keys and
signatures.

`encrypt` writes the file format of client/docfile.py (the key id, Parity's encrypted
document, a MAC); `--raw` reads and writes Parity's bare encrypted document instead.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
import time
from collections.abc import Iterator
from typing import IO, BinaryIO

from secretstore.cli.common import (
    EXIT_OK,
    EXIT_USAGE,
    UsageError,
    add_node,
    add_requester,
    expand,
    hex_argument,
    parse_args,
    parser,
    requester,
    run,
    verb_of,
)
from secretstore.client import docfile
from secretstore.client.files import (
    AtomicOutput,
    ProgressCallback,
    decrypt_stream,
    encrypt_stream,
)
from secretstore.client.helpers import servers_set_hash, sign_raw_hash
from secretstore.client.http_client import KeyDeleted, KeyServerClient
from secretstore.crypto.curve import Point
from secretstore.crypto.keys import KeyPair
from secretstore.crypto.rng import OsRng, Rng
from secretstore.encoding import to_hex
from secretstore.errors import InvalidEncoding
from secretstore.types import NodeId

DESCRIPTIONS = {
    "encrypt": "Encrypt a file with a new document key held by the cluster.",
    "decrypt": "Decrypt a file written by `secretstore encrypt` with its key from the cluster.",
    "delete": (
        "Delete a server key and its document key on every node (the key's author only): "
        "afterwards no node can use it, and nodes that were away erase it when they return."
    ),
    "sign-hash": "Sign a 32-byte hash (no prefix) with the requester key, locally.",
    "servers-set-hash": "keccak256 of the sorted node ids, as the administrator signs it.",
}

_ENCRYPT_EPILOG = """\
A new server key is generated for --key-id (threshold t: t+1 nodes are needed to get the key
back), a document key is made here and stored with the cluster, and the file is encrypted
with it in a stream (any size). The output records the key id and is authenticated, so
`decrypt` needs no --key-id and refuses a wrong key or a damaged file without writing
anything. The output path is checked before the cluster is asked anything. `--in -` and
`--out -` are stdin and stdout, so `secretstore encrypt ... --out - | secretstore decrypt
... --in -` works in one pipeline.
"""
_DECRYPT_EPILOG = """\
The key id is read from the file (give --key-id to insist on one). The key comes back as
shadows by default, so no node learns it (--no-shadow: ECIES-encrypted, the answering node
learns it). Nothing is written unless the key is the file's and the file authenticates; an
output file appears only when complete. --raw reads a bare Parity encrypted document
(ciphertext followed by its 16-byte IV), which has no key id and no authentication.
"""


def _parser(verb: str) -> argparse.ArgumentParser:
    epilog = {"encrypt": _ENCRYPT_EPILOG, "decrypt": _DECRYPT_EPILOG}.get(verb)
    p = parser(verb, DESCRIPTIONS[verb], epilog)
    if verb == "encrypt":
        add_node(p)
        p.add_argument("--threshold", type=int, required=True, help="t: t+1 nodes decrypt")
    elif verb == "decrypt":
        add_node(p, key_id_required=False)
        p.add_argument(
            "--shadow",
            action=argparse.BooleanOptionalAction,
            default=True,
            help="retrieve the key as shadows so no node learns it (default: on)",
        )
    elif verb == "delete":
        add_node(p)
    elif verb == "sign-hash":
        p.add_argument("--hash", required=True, help="the 32-byte hash, hex")
    else:
        p.add_argument("node_ids", nargs="+", help="64-byte node ids, hex")
    if verb in ("encrypt", "decrypt"):
        p.add_argument("--in", dest="in_path", required=True, help="input file (- stdin)")
        p.add_argument("--out", dest="out_path", required=True, help="output file (- stdout)")
        p.add_argument(
            "--raw",
            action="store_true",
            help="Parity's bare encrypted document (no key id, no authentication)",
        )
    if verb != "servers-set-hash":
        add_requester(p)
    return p


# --- progress ------------------------------------------------------------------------------


def _progress_bar(stream: IO[str]) -> ProgressCallback | None:
    """A one-line bar redrawn at most ten times a second; None when stream is not a terminal."""
    if not stream.isatty():
        return None
    last = [0.0]

    def show(done: int, total: int | None) -> None:
        now = time.monotonic()
        finished = total is not None and done >= total
        if now - last[0] < 0.1 and not finished:
            return
        last[0] = now
        if total:
            filled = int(30 * done / total)
            bar = "#" * filled + "." * (30 - filled)
            line = f"\r[{bar}] {100 * done // total:3d}% {done / 1e6:.1f}/{total / 1e6:.1f} MB"
        else:
            line = f"\r{done / 1e6:.1f} MB"
        stream.write(line + ("\n" if finished else ""))
        stream.flush()

    return show


# --- files: "-" is stdin / stdout; an output file is replaced only when complete ---------


def _open_input(path: str) -> BinaryIO:
    """The input, opened before the cluster is asked anything (a typo costs no server key)."""
    if path == "-":
        return os.fdopen(os.dup(sys.stdin.fileno()), "rb")
    try:
        return open(expand(path), "rb")
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror or exc}") from exc


class _Output:
    """Where a verb writes: stdout, or a file that appears only when complete. Made before
    anything is asked of the cluster, so an unwritable --out costs no key."""

    def __init__(self, path: str, in_path: str) -> None:
        self._file: AtomicOutput | None = None
        if path == "-":
            if sys.stdout.isatty():
                raise UsageError("refusing to write binary data to a terminal; use --out FILE")
            self.stream: BinaryIO = sys.stdout.buffer
            return
        target = expand(path)
        if in_path != "-" and target.exists() and target.samefile(expand(in_path)):
            raise UsageError(f"--out {path} is the input file")
        try:
            self._file = AtomicOutput(target)
        except OSError as exc:
            raise UsageError(f"cannot write {path}: {exc.strerror or exc}") from exc
        self.stream = self._file.stream

    def commit(self) -> None:
        if self._file is None:
            self.stream.flush()
        else:
            self._file.commit()

    def discard(self) -> None:
        if self._file is not None:
            self._file.discard()


@contextlib.contextmanager
def _output(path: str, in_path: str) -> Iterator[_Output]:
    output = _Output(path, in_path)
    try:
        yield output
    except BaseException:
        output.discard()
        raise
    output.commit()


# --- the verbs -----------------------------------------------------------------------------


async def _create_key(node: str, key_id: bytes, account: KeyPair, threshold: int) -> Point:
    async with KeyServerClient(node) as client:
        return await client.create_document_key(key_id, account, threshold)


async def _retrieve_key(node: str, key_id: bytes, account: KeyPair, shadow: bool) -> Point:
    async with KeyServerClient(node) as client:
        return await client.retrieve_key(key_id, account, shadow)


def _encrypt(args: argparse.Namespace, rng: Rng) -> int:
    key_id = hex_argument(args.key_id, 32, "--key-id")
    account = requester(args)
    with _open_input(args.in_path) as source, _output(args.out_path, args.in_path) as output:
        key = asyncio.run(_create_key(args.node, key_id, account, args.threshold))
        progress = _progress_bar(sys.stderr)
        if args.raw:
            encrypt_stream(key, source, output.stream, rng, progress=progress)
        else:
            docfile.encrypt_file_stream(key, key_id, source, output.stream, rng, progress=progress)
    return EXIT_OK


def _decrypt(args: argparse.Namespace) -> int:
    wanted = hex_argument(args.key_id, 32, "--key-id") if args.key_id is not None else None
    if args.raw and wanted is None:
        raise UsageError("--raw needs --key-id: a bare Parity document does not record it")
    account = requester(args)
    with _open_input(args.in_path) as source, _output(args.out_path, args.in_path) as output:
        progress = _progress_bar(sys.stderr)
        if args.raw:
            assert wanted is not None
            key = asyncio.run(_retrieve_key(args.node, wanted, account, args.shadow))
            decrypt_stream(key, source, output.stream, progress=progress)
            return EXIT_OK
        try:
            header = docfile.read_header(source)  # on a pipe: waits for the writer's header
        except InvalidEncoding as exc:
            if isinstance(exc, docfile.DamagedFile):
                raise
            raise UsageError(f"{args.in_path}: {exc}") from exc
        if wanted is not None and wanted != header.key_id:
            raise UsageError(
                f"{args.in_path} was encrypted under key id 0x{header.key_id.hex()}, "
                f"not --key-id 0x{wanted.hex()}"
            )
        key = asyncio.run(_retrieve_key(args.node, header.key_id, account, args.shadow))
        docfile.decrypt_file_stream(key, header, source, output.stream, progress=progress)
    return EXIT_OK


async def _delete_key(node: str, key_id: bytes, requester: KeyPair) -> KeyDeleted:
    async with KeyServerClient(node) as client:
        return await client.delete_key(key_id, requester)


def _delete(args: argparse.Namespace) -> int:
    key_id = hex_argument(args.key_id, 32, "--key-id")
    deleted = asyncio.run(_delete_key(args.node, key_id, requester(args)))
    print(f"deleted key {to_hex(deleted.key_id)}")
    print(f"confirmed by {len(deleted.confirmed)} nodes:")
    for node in deleted.confirmed:
        print(f"  {to_hex(node)}")
    if deleted.unconfirmed:
        print(f"not confirmed by {len(deleted.unconfirmed)} (they erase it when they return):")
        for node in deleted.unconfirmed:
            print(f"  {to_hex(node)}")
    return EXIT_OK


def _sign_hash(args: argparse.Namespace) -> int:
    raw_hash = hex_argument(args.hash, 32, "--hash")
    print(to_hex(sign_raw_hash(requester(args), raw_hash)))
    return EXIT_OK


def _servers_set_hash(args: argparse.Namespace) -> int:
    ids = [NodeId(hex_argument(text, 64, "node id")) for text in args.node_ids]
    print(to_hex(servers_set_hash(ids)))
    return EXIT_OK


VERBS = tuple(DESCRIPTIONS)


def main(argv: list[str], rng: Rng | None = None) -> int:
    """argv[0] is the verb; the exit status is 0 ok, 1 server/crypto failure, 2 usage."""
    verb = verb_of(argv, VERBS)
    if verb is None:
        return EXIT_USAGE
    args = parse_args(_parser(verb), argv[1:])
    if isinstance(args, int):
        return args
    actions = {
        "encrypt": lambda: _encrypt(args, rng if rng is not None else OsRng()),
        "decrypt": lambda: _decrypt(args),
        "delete": lambda: _delete(args),
        "sign-hash": lambda: _sign_hash(args),
        "servers-set-hash": lambda: _servers_set_hash(args),
    }
    return run(verb, actions[verb])
