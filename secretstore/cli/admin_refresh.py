"""`secretstore admin refresh`: sign a proactive refresh, run it on a node, show its progress.

The grant is the administrator's signature (raw, as Parity's `secretstore_signRawHash`) over
the cluster the node sees (itself and every node it is connected to), an expiry `--valid-for`
seconds from now, and the keys (every key, or the `--key` ones): crypto/admin.py. The call is
`POST /admin/refresh/{expires}/{signature}` with the JSON list of the keys, or no body for
every key; it answers when every key is done (docs/LIFECYCLE.md).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import time
from typing import IO

import aiohttp

from secretstore.cli.account import UsageError
from secretstore.cli.admin import (
    EXIT_FAILED,
    EXIT_OK,
    call_showing_progress,
    fetch_view,
    short,
)
from secretstore.client.http_client import connection_problem
from secretstore.crypto.admin import keys_digest, sign_refresh
from secretstore.crypto.keys import KeyPair
from secretstore.encoding import parse_hex, to_hex
from secretstore.errors import InvalidEncoding

#: The longest a grant may be valid for (every node refuses longer).
MAX_VALID_FOR = 86400.0


def parse_key_ids(texts: list[str] | None) -> list[bytes] | None:
    if not texts:
        return None
    try:
        return sorted({parse_hex(text.strip(), 32, what="--key") for text in texts})
    except InvalidEncoding as exc:
        raise UsageError(str(exc)) from exc


async def refresh_keys(
    url: str,
    key_ids: list[bytes] | None,
    valid_for: float,
    admin: KeyPair,
    out: IO[str],
) -> int:
    """The whole flow against the node at `url`: prints progress and the result; the exit
    status."""
    if not 0 < valid_for <= MAX_VALID_FOR:
        raise UsageError(f"--valid-for is more than 0 and at most {MAX_VALID_FOR:.0f} seconds")
    base = url.rstrip("/")
    async with aiohttp.ClientSession() as session:
        view = await fetch_view(session, url)
        cluster = view.nodes
        expires = int(time.time() + valid_for)
        signature = sign_refresh(admin.secret, cluster, expires, keys_digest(key_ids))
        what = "every key" if key_ids is None else f"{len(key_ids)} keys"
        print(
            f"refreshing {what} on {len(cluster)} nodes ({', '.join(map(short, sorted(cluster)))})",
            file=out,
        )
        out.flush()
        body = None if key_ids is None else json.dumps([to_hex(k) for k in key_ids]).encode()

        async def call() -> tuple[int, bytes]:
            async with session.post(
                f"{base}/admin/refresh/{expires}/{signature.hex()}",
                data=body,
                headers={"Content-Type": "application/json; charset=utf-8"} if body else None,
                timeout=aiohttp.ClientTimeout(total=None),
            ) as response:
                return response.status, await response.read()

        try:
            status, answer = await call_showing_progress(
                session, url, call(), lambda view: view.refresh, out
            )
        except aiohttp.ClientError as exc:
            print(f"the node did not answer: {connection_problem(exc)}", file=out)
            return EXIT_FAILED
    text = answer.decode("utf-8", "replace")
    if status != 200:
        with contextlib.suppress(ValueError):
            text = json.loads(text).strip('"')
        print(f"refused or failed (HTTP {status}): {text}", file=out)
        return EXIT_FAILED
    result = json.loads(text)
    skipped = result.get("skipped", [])
    print(f"done: {result.get('refreshed')} keys refreshed, {len(skipped)} skipped", file=out)
    for item in skipped:
        print(f"  skipped {item.get('key_id')}: {item.get('reason')}", file=out)
    return EXIT_OK


def run_refresh(args: argparse.Namespace, admin: KeyPair, out: IO[str]) -> int:
    return asyncio.run(refresh_keys(args.node, parse_key_ids(args.key), args.valid_for, admin, out))
