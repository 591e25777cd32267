"""The key server's operations as verbs, for what users otherwise do with curl.

`server-key-generate`, `server-key-retrieve`, `document-key-store`, `document-key-shadow`,
`sign-schnorr`, `sign-ecdsa`. Each signs the key id with the requester key, makes one or two
HTTP calls (client/http_client.py) and prints the answer decrypted and checked here: a
signature is verified against the server key before it is printed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Awaitable, Callable
from typing import Final

from secretstore.cli.common import (
    EXIT_OK,
    EXIT_USAGE,
    UsageError,
    add_node,
    add_requester,
    hex_argument,
    parse_args,
    parser,
    requester,
    run,
    verb_of,
)
from secretstore.client.helpers import key_from_shadow
from secretstore.client.http_client import KeyServerClient
from secretstore.crypto.curve import Point
from secretstore.crypto.document import generate_document_key
from secretstore.crypto.keys import KeyPair, recover_public
from secretstore.crypto.rng import OsRng, Rng
from secretstore.crypto.schnorr import SchnorrSignature, verify_schnorr_signature
from secretstore.encoding import to_hex
from secretstore.errors import CryptoError, InvalidSignature

DESCRIPTIONS: Final = {
    "server-key-generate": "Generate a server key on the cluster; prints its public key.",
    "server-key-retrieve": "Print the public key of an existing server key.",
    "document-key-store": (
        "Store a document key with a server key: one made here (printed ECIES-encrypted to "
        "the requester, as secretstore_generateDocumentKey does), or given as its two points."
    ),
    "document-key-shadow": (
        "Retrieve a document key as shadows (no node learns it); prints Parity's JSON after "
        "checking here that the shadows open and combine to a key."
    ),
    "sign-schnorr": (
        "Sign a 32-byte hash with a server key (Parity's Schnorr); the signature is decrypted "
        "here and verified against the server key before it is printed."
    ),
    "sign-ecdsa": (
        "Sign a 32-byte hash with a server key (ECDSA, needs 2t+1 nodes); the signature is "
        "decrypted here and must recover to the server key before it is printed."
    ),
}


def _parser(verb: str) -> argparse.ArgumentParser:
    p = parser(verb, DESCRIPTIONS[verb])
    add_node(p)
    if verb == "server-key-generate":
        p.add_argument("--threshold", type=int, required=True, help="t: t+1 nodes use the key")
    elif verb == "document-key-store":
        p.add_argument("--common-point", help="C of a document key made elsewhere (64 bytes)")
        p.add_argument("--encrypted-point", help="E of a document key made elsewhere (64 bytes)")
    elif verb in ("sign-schnorr", "sign-ecdsa"):
        p.add_argument("--hash", required=True, help="the 32-byte message hash, hex")
    add_requester(p)
    return p


def _point(text: str, what: str) -> Point:
    return Point.from_bytes(hex_argument(text, 64, what))


async def _with_client(node: str, call: Callable[[KeyServerClient], Awaitable[int]]) -> int:
    async with KeyServerClient(node) as client:
        return await call(client)


def _run_async(node: str, call: Callable[[KeyServerClient], Awaitable[int]]) -> int:
    return asyncio.run(_with_client(node, call))


def _generate(args: argparse.Namespace, account: KeyPair, key_id: bytes) -> int:
    async def call(client: KeyServerClient) -> int:
        public = await client.generate_server_key(key_id, account, args.threshold)
        print(to_hex(public.to_bytes()))
        return EXIT_OK

    return _run_async(args.node, call)


def _retrieve(args: argparse.Namespace, account: KeyPair, key_id: bytes) -> int:
    async def call(client: KeyServerClient) -> int:
        public = await client.retrieve_server_key(key_id, account)
        print(to_hex(public.to_bytes()))
        return EXIT_OK

    return _run_async(args.node, call)


def _store(args: argparse.Namespace, account: KeyPair, key_id: bytes, rng: Rng) -> int:
    given = (args.common_point, args.encrypted_point)
    if (given[0] is None) != (given[1] is None):
        raise UsageError("give both --common-point and --encrypted-point, or neither")
    points = (
        (_point(given[0], "--common-point"), _point(given[1], "--encrypted-point"))
        if given[0] is not None
        else None
    )

    async def call(client: KeyServerClient) -> int:
        if points is not None:
            await client.store_document_key(key_id, account, *points)
            print(f"document key stored with server key 0x{key_id.hex()}", file=sys.stderr)
            return EXIT_OK
        server_key = await client.retrieve_server_key(key_id, account)
        _, generated = generate_document_key(account.public, server_key, rng)
        await client.store_document_key(
            key_id, account, generated.common_point, generated.encrypted_point
        )
        print(
            json.dumps(
                {
                    "common_point": to_hex(generated.common_point.to_bytes()),
                    "encrypted_point": to_hex(generated.encrypted_point.to_bytes()),
                    "encrypted_key": to_hex(generated.encrypted_key),
                },
                indent=2,
            )
        )
        return EXIT_OK

    return _run_async(args.node, call)


def _shadow(args: argparse.Namespace, account: KeyPair, key_id: bytes) -> int:
    async def call(client: KeyServerClient) -> int:
        shadow = await client.retrieve_document_key_shadow_raw(key_id, account)
        try:
            key_from_shadow(
                account, shadow.decrypted_secret, shadow.common_point, shadow.decrypt_shadows
            )
        except CryptoError as exc:
            raise CryptoError(
                f"the shadows do not open to a key for this requester: {exc}"
            ) from exc
        print(
            json.dumps(
                {
                    "decrypted_secret": to_hex(shadow.decrypted_secret.to_bytes()),
                    "common_point": to_hex(shadow.common_point.to_bytes()),
                    "decrypt_shadows": [to_hex(s) for s in shadow.decrypt_shadows],
                },
                indent=2,
            )
        )
        return EXIT_OK

    return _run_async(args.node, call)


def _sign(args: argparse.Namespace, account: KeyPair, key_id: bytes, ecdsa: bool) -> int:
    message_hash = hex_argument(args.hash, 32, "--hash")

    async def call(client: KeyServerClient) -> int:
        server_key = await client.retrieve_server_key(key_id, account)
        if ecdsa:
            signature = await client.sign_ecdsa(key_id, account, message_hash)
            try:
                signer = recover_public(signature, message_hash)
            except CryptoError as exc:
                raise InvalidSignature(f"the ECDSA signature does not recover: {exc}") from exc
            if signer != server_key:
                raise InvalidSignature(
                    "the ECDSA signature does not recover to the server key "
                    f"{to_hex(server_key.to_bytes())}"
                )
            print(f"signature: {to_hex(signature)}")
            print(f"verified:  recovers to the server key {to_hex(server_key.to_bytes())}")
            return EXIT_OK
        c, s = await client.sign_schnorr(key_id, account, message_hash)
        if not verify_schnorr_signature(server_key, SchnorrSignature(c, s), message_hash):
            raise InvalidSignature(
                "the Schnorr signature does not verify against the server key "
                f"{to_hex(server_key.to_bytes())}"
            )
        print(f"c: {to_hex(c.to_bytes())}")
        print(f"s: {to_hex(s.to_bytes())}")
        print(f"verified: against the server key {to_hex(server_key.to_bytes())}")
        return EXIT_OK

    return _run_async(args.node, call)


VERBS: Final = tuple(DESCRIPTIONS)


def main(argv: list[str], rng: Rng | None = None) -> int:
    """argv[0] is the verb."""
    verb = verb_of(argv, VERBS)
    if verb is None:
        return EXIT_USAGE
    args = parse_args(_parser(verb), argv[1:])
    if isinstance(args, int):
        return args

    def action() -> int:
        key_id = hex_argument(args.key_id, 32, "--key-id")
        account = requester(args)
        if verb == "server-key-generate":
            return _generate(args, account, key_id)
        if verb == "server-key-retrieve":
            return _retrieve(args, account, key_id)
        if verb == "document-key-store":
            return _store(args, account, key_id, rng if rng is not None else OsRng())
        if verb == "document-key-shadow":
            return _shadow(args, account, key_id)
        return _sign(args, account, key_id, ecdsa=verb == "sign-ecdsa")

    return run(verb, action)
