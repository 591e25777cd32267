"""`secretstore encrypt|decrypt|delete|sign-hash|servers-set-hash`: a user's operations on a
cluster."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, BinaryIO

from secretstore.cli.account import UsageError, obtain_password, read_secret_file
from secretstore.client.files import (
    ProgressCallback,
    decrypt_stream,
    encrypt_stream,
    write_atomically,
)
from secretstore.client.helpers import servers_set_hash, sign_raw_hash
from secretstore.client.http_client import KeyDeleted, KeyServerClient
from secretstore.crypto.curve import Point
from secretstore.crypto.keys import KeyPair
from secretstore.crypto.rng import OsRng, Rng
from secretstore.encoding import parse_hex, to_hex
from secretstore.errors import InvalidEncoding, SecretStoreError
from secretstore.keystore import Keystore
from secretstore.types import NodeId

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


# --- arguments -----------------------------------------------------------------------------


def _add_requester(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group(
        "requester", "the key that signs the key id: --secret-file, or a keystore account"
    )
    group.add_argument("--secret-file", help="file holding the requester's secret as hex")
    group.add_argument("--keystore", help="keystore directory of --account")
    group.add_argument("--account", help="address of the requester's keystore account")
    group.add_argument("--password-file", help="file whose first line is the account password")


def _add_node(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--node", required=True, help="a key server's HTTP API base URL")
    parser.add_argument("--key-id", required=True, help="the 32-byte server key id, hex")


def _parser(verb: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=f"secretstore {verb}")
    if verb == "encrypt":
        parser.description = (
            "Generate a server key, make a document key here, store it with the cluster, "
            "and encrypt a file with it (output: ciphertext followed by its 16-byte IV)."
        )
        _add_node(parser)
        parser.add_argument("--threshold", type=int, required=True, help="t: t+1 nodes decrypt")
    elif verb == "decrypt":
        parser.description = "Retrieve a document key from the cluster and decrypt a file."
        _add_node(parser)
        parser.add_argument(
            "--shadow",
            action=argparse.BooleanOptionalAction,
            default=True,
            help="retrieve the key as shadows so no node learns it (default: on)",
        )
    elif verb == "delete":
        parser.description = (
            "Delete a server key and its document key on every node (the key's author only): "
            "afterwards no node can use it, and nodes that were away erase it when they return."
        )
        _add_node(parser)
    elif verb == "sign-hash":
        parser.description = "Sign a 32-byte hash (no prefix) with the requester key."
        parser.add_argument("--hash", required=True, help="the 32-byte hash, hex")
    else:
        parser.description = "keccak256 of the sorted node ids, as the administrator signs it."
        parser.add_argument("node_ids", nargs="+", help="64-byte node ids, hex")
    if verb in ("encrypt", "decrypt"):
        parser.add_argument("--in", dest="in_path", required=True, help="input file (- stdin)")
        parser.add_argument("--out", dest="out_path", required=True, help="output file (- stdout)")
    if verb != "servers-set-hash":
        _add_requester(parser)
    return parser


def _hex_argument(text: str, length: int, what: str) -> bytes:
    try:
        return parse_hex(text.strip(), length, what=what)
    except InvalidEncoding as exc:
        raise UsageError(str(exc)) from exc


def _requester(args: argparse.Namespace) -> KeyPair:
    if args.secret_file is not None:
        if args.keystore is not None or args.account is not None:
            raise UsageError("give --secret-file or --keystore/--account, not both")
        return KeyPair.from_secret(read_secret_file(args.secret_file))
    if args.keystore is None or args.account is None:
        raise UsageError("a requester is needed: --secret-file, or --keystore and --account")
    address = _hex_argument(args.account, 20, "--account")
    password = obtain_password(args.password_file, confirm=False)
    return Keystore(Path(args.keystore)).unlock(address, password)


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
        return open(path, "rb")
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc}") from exc


def _write_output(path: str, write: Callable[[BinaryIO], int]) -> None:
    if path == "-":
        write(sys.stdout.buffer)
        sys.stdout.buffer.flush()
    else:
        write_atomically(Path(path), write)


# --- the verbs -----------------------------------------------------------------------------


async def _create_key(node: str, key_id: bytes, requester: KeyPair, threshold: int) -> Point:
    async with KeyServerClient(node) as client:
        return await client.create_document_key(key_id, requester, threshold)


async def _retrieve_key(node: str, key_id: bytes, requester: KeyPair, shadow: bool) -> Point:
    async with KeyServerClient(node) as client:
        return await client.retrieve_key(key_id, requester, shadow)


def _encrypt(args: argparse.Namespace, rng: Rng) -> int:
    key_id = _hex_argument(args.key_id, 32, "--key-id")
    requester = _requester(args)
    with _open_input(args.in_path) as source:
        key = asyncio.run(_create_key(args.node, key_id, requester, args.threshold))
        progress = _progress_bar(sys.stderr)
        _write_output(
            args.out_path, lambda sink: encrypt_stream(key, source, sink, rng, progress=progress)
        )
    return EXIT_OK


def _decrypt(args: argparse.Namespace) -> int:
    key_id = _hex_argument(args.key_id, 32, "--key-id")
    requester = _requester(args)
    with _open_input(args.in_path) as source:
        key = asyncio.run(_retrieve_key(args.node, key_id, requester, args.shadow))
        progress = _progress_bar(sys.stderr)
        _write_output(
            args.out_path, lambda sink: decrypt_stream(key, source, sink, progress=progress)
        )
    return EXIT_OK


async def _delete_key(node: str, key_id: bytes, requester: KeyPair) -> KeyDeleted:
    async with KeyServerClient(node) as client:
        return await client.delete_key(key_id, requester)


def _delete(args: argparse.Namespace) -> int:
    key_id = _hex_argument(args.key_id, 32, "--key-id")
    deleted = asyncio.run(_delete_key(args.node, key_id, _requester(args)))
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
    raw_hash = _hex_argument(args.hash, 32, "--hash")
    print(to_hex(sign_raw_hash(_requester(args), raw_hash)))
    return EXIT_OK


def _servers_set_hash(args: argparse.Namespace) -> int:
    ids = [NodeId(_hex_argument(text, 64, "node id")) for text in args.node_ids]
    print(to_hex(servers_set_hash(ids)))
    return EXIT_OK


VERBS = ("encrypt", "decrypt", "delete", "sign-hash", "servers-set-hash")


def main(argv: list[str], rng: Rng | None = None) -> int:
    """argv[0] is the verb; the exit status is 0 ok, 1 server/crypto failure, 2 usage."""
    if not argv or argv[0] not in VERBS:
        print(f"secretstore: expected one of {', '.join(VERBS)}", file=sys.stderr)
        return EXIT_USAGE
    verb = argv[0]
    try:
        args = _parser(verb).parse_args(argv[1:])
    except SystemExit as exit_:
        return int(exit_.code or 0)
    try:
        if verb == "encrypt":
            return _encrypt(args, rng if rng is not None else OsRng())
        if verb == "decrypt":
            return _decrypt(args)
        if verb == "delete":
            return _delete(args)
        if verb == "sign-hash":
            return _sign_hash(args)
        return _servers_set_hash(args)
    except UsageError as exc:
        print(f"secretstore {verb}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except (SecretStoreError, OSError) as exc:
        print(f"secretstore {verb}: error: {exc}", file=sys.stderr)
        return EXIT_FAILED
