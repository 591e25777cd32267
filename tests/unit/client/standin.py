"""A stand-in key server for client tests: Parity's API answered from in-memory keys.

It serves canned Parity-format bodies (made with our crypto) over real HTTP on 127.0.0.1 so
that the client's parsing and flows can be exercised before, and apart from, the real server.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
from aiohttp import web

from secretstore.crypto.curve import Point, Scalar
from secretstore.crypto.document import encrypt_secret
from secretstore.crypto.ecies import ecies_encrypt
from secretstore.crypto.keys import recover_requester, sign_recoverable
from secretstore.crypto.rng import SeededRng, random_scalar
from secretstore.crypto.schnorr import local_compute_schnorr_signature


def parity_error_body(text: str) -> bytes:
    """Parity's error body: the text in quotes, serialized as a JSON string."""
    return json.dumps(f'"{text}"').encode()


NOT_FOUND_SERVER = "Server key with this ID is not found"
NOT_FOUND_DOCUMENT = "Document key with this ID is not found"


@dataclass
class StandIn:
    """Answers Parity's API from in-memory keys; records every request it saw."""

    url: str = ""
    seen: list[tuple[str, str, bytes]] = field(default_factory=list)
    #: the X-Secretstore-Bound-Signature header of every request seen (None when absent)
    bound_headers: list[str | None] = field(default_factory=list)
    server_keys: dict[bytes, Scalar] = field(default_factory=dict)
    documents: dict[bytes, tuple[Point, Point]] = field(default_factory=dict)
    rng: SeededRng = field(default_factory=lambda: SeededRng(1234))
    #: sign ECDSA with this key instead of the server key (a lying node)
    ecdsa_key: Scalar | None = None
    #: answer Schnorr with a real signature by the server key (else c‖s = hash‖hash)
    real_schnorr: bool = False

    def answer(self, method: str, parts: list[str], body: bytes) -> web.Response:
        prefix = parts[0] if parts[0] in ("shadow", "server", "schnorr", "ecdsa", "admin") else ""
        args = parts[1:] if prefix else parts
        if prefix == "admin":
            return web.Response(status=200)
        key_id = bytes.fromhex(args[0])
        requester = recover_requester(bytes.fromhex(args[1]), key_id)
        if method == "POST" and len(args) == 3:
            if key_id in self.server_keys:
                return error(400, "Server key with this ID is already generated")
            secret = self.server_keys[key_id] = random_scalar(self.rng)
            if prefix == "shadow":
                return hex_json(Point.base_mul(secret).to_bytes())
            document_key = Point.base_mul(random_scalar(self.rng))
            stored = encrypt_secret(document_key, Point.base_mul(secret), self.rng)
            self.documents[key_id] = (stored.common_point, stored.encrypted_point)
            return hex_json(ecies_encrypt(requester, document_key.to_bytes(), self.rng))
        if method == "POST" and len(args) == 4:
            common, encrypted = (Point.from_bytes(bytes.fromhex(a)) for a in args[2:])
            self.documents[key_id] = (common, encrypted)
            return web.Response(status=200)
        secret = self.server_keys.get(key_id)
        if secret is None:
            return error(404, NOT_FOUND_SERVER)
        if prefix == "server":
            return hex_json(Point.base_mul(secret).to_bytes())
        if prefix in ("schnorr", "ecdsa"):
            message = bytes.fromhex(args[2])
            if prefix == "ecdsa":
                signed = sign_recoverable(self.ecdsa_key or secret, message)
            elif self.real_schnorr:
                nonce = random_scalar(self.rng)
                signed = local_compute_schnorr_signature(nonce, secret, message).to_bytes()
            else:
                signed = message * 2
            return hex_json(ecies_encrypt(requester, signed, self.rng))
        if key_id not in self.documents:
            return error(404, NOT_FOUND_DOCUMENT)
        common, encrypted = self.documents[key_id]
        document_key = encrypted - common * secret
        if prefix == "":
            return hex_json(ecies_encrypt(requester, document_key.to_bytes(), self.rng))
        shadow_common = Point.base_mul(random_scalar(self.rng))
        coefficients = [random_scalar(self.rng) for _ in range(3)]
        total = Scalar(sum(c.to_int() for c in coefficients))
        body_json = {
            "decrypted_secret": "0x" + (document_key - shadow_common * total).to_bytes().hex(),
            "common_point": "0x" + shadow_common.to_bytes().hex(),
            "decrypt_shadows": [
                "0x" + ecies_encrypt(requester, c.to_bytes(), self.rng).hex() for c in coefficients
            ],
        }
        return web.json_response(body_json, content_type="application/json")


def hex_json(data: bytes) -> web.Response:
    return web.Response(text=json.dumps("0x" + data.hex()), content_type="application/json")


def error(status: int, text: str) -> web.Response:
    return web.Response(
        status=status, body=parity_error_body(text), content_type="application/json"
    )


@pytest.fixture
def stand_in() -> Iterator[StandIn]:
    """The stand-in on 127.0.0.1 (a free port) in its own thread, so sync clients work too."""
    state = StandIn()

    async def handle(request: web.Request) -> web.Response:
        body = await request.read()
        state.seen.append((request.method, request.path, body))
        state.bound_headers.append(request.headers.get("X-Secretstore-Bound-Signature"))
        return state.answer(request.method, request.path.strip("/").split("/"), body)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    loop = asyncio.new_event_loop()
    runner = web.AppRunner(app)
    started = threading.Event()

    def run() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(runner.setup())
        site = web.TCPSite(runner, "127.0.0.1", 0)
        loop.run_until_complete(site.start())
        state.url = f"http://127.0.0.1:{runner.addresses[0][1]}"
        started.set()
        loop.run_forever()
        loop.run_until_complete(runner.cleanup())
        loop.close()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    assert started.wait(10)
    yield state
    loop.call_soon_threadsafe(loop.stop)
    thread.join(10)
