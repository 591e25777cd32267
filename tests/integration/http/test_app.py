"""The HTTP layer over real sockets: a real aiohttp server on 127.0.0.1, real HTTP requests.

Behind it is an in-memory KeyServerApi that records every call and answers canned values or
raises a chosen error; the real cluster behind the API is exercised by the end-to-end tests.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field, replace
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from yarl import URL

from secretstore.audit.receipts import ReleaseReceipts
from secretstore.config.model import CorsOrigins
from secretstore.crypto.curve import Point, Scalar
from secretstore.errors import (
    AccessDenied,
    ConsensusUnreachable,
    DocumentKeyAlreadyStored,
    DocumentKeyNotFound,
    InvalidRequest,
    ProtocolViolation,
    ServerKeyAlreadyGenerated,
    ServerKeyNotFound,
    SessionTimeout,
)
from secretstore.http.app import MAX_BODY_SIZE, HttpServer, start_http
from secretstore.http.errors import CAUSE_HEADER
from secretstore.http.port import EncryptedRelease, KeyDeletion, RefreshSummary, ShadowRetrieval
from secretstore.types import MessageHash, NodeId, ServerKeyId

K = "0000000000000000000000000000000000000000000000000000000000000001"
S = (
    "a199fb39e11eefb61c78a4074a53c0d4424600a3e74aad4fb9d93a26c30d067e"
    "1d4d29936de0c73f19827394a1dd049480a0d581aee7ae7546968da7d3d1c2fd01"
)
H = "281b6bf43cb86d0dc7b98e1b7def4a80f3ce16d28d2308f934f116767306f06c"
COMMON = Point.base_mul(Scalar(3))
ENCRYPTED = Point.base_mul(Scalar(4))
NODE1 = Point.base_mul(Scalar(7)).to_bytes()
NODE2 = Point.base_mul(Scalar(8)).to_bytes()

SERVER_PUBLIC = Point.base_mul(Scalar(12345))
ENCRYPTED_KEY = bytes(range(177))  # the size of ECIES(requester, 64-byte point)
SIGNATURE_CIPHER = bytes(range(200, 256)) * 3
SHADOW = ShadowRetrieval(Point.base_mul(Scalar(5)), Point.base_mul(Scalar(6)), (b"\x01" * 145,))
JSON = "application/json; charset=utf-8"
KEY_ID = ServerKeyId(bytes.fromhex(K))
SIG = bytes.fromhex(S)


@dataclass
class FakeKeyServer:
    """Records calls; answers canned values, or raises `error` when set."""

    calls: list[tuple[str, tuple[Any, ...]]] = field(default_factory=list)
    error: BaseException | None = None
    gate: asyncio.Event | None = None
    #: the receipts every release answers with
    receipts: ReleaseReceipts | None = None

    async def _call(self, name: str, *args: Any) -> None:
        self.calls.append((name, args))
        if self.gate is not None:
            await self.gate.wait()
        if self.error is not None:
            raise self.error

    async def generate_server_key(
        self,
        key_id: ServerKeyId,
        signature: bytes,
        threshold: int,
        bound_signature: bytes | None = None,
    ) -> Point:
        await self._call("generate_server_key", key_id, signature, threshold, bound_signature)
        return SERVER_PUBLIC

    async def store_document_key(
        self,
        key_id: ServerKeyId,
        signature: bytes,
        common_point: Point,
        encrypted_point: Point,
        bound_signature: bytes | None = None,
    ) -> None:
        await self._call(
            "store_document_key", key_id, signature, common_point, encrypted_point, bound_signature
        )

    async def generate_document_key(
        self, key_id: ServerKeyId, signature: bytes, threshold: int
    ) -> bytes:
        await self._call("generate_document_key", key_id, signature, threshold)
        return ENCRYPTED_KEY

    async def retrieve_server_key(self, key_id: ServerKeyId, signature: bytes) -> Point:
        await self._call("retrieve_server_key", key_id, signature)
        return SERVER_PUBLIC

    async def retrieve_document_key(
        self, key_id: ServerKeyId, signature: bytes
    ) -> EncryptedRelease:
        await self._call("retrieve_document_key", key_id, signature)
        return EncryptedRelease(ENCRYPTED_KEY, self.receipts)

    async def retrieve_document_key_shadow(
        self, key_id: ServerKeyId, signature: bytes
    ) -> ShadowRetrieval:
        await self._call("retrieve_document_key_shadow", key_id, signature)
        return replace(SHADOW, receipts=self.receipts)

    async def sign_schnorr(
        self,
        key_id: ServerKeyId,
        signature: bytes,
        message_hash: MessageHash,
        bound_signature: bytes | None = None,
    ) -> EncryptedRelease:
        await self._call("sign_schnorr", key_id, signature, message_hash, bound_signature)
        return EncryptedRelease(SIGNATURE_CIPHER, self.receipts)

    async def sign_ecdsa(
        self,
        key_id: ServerKeyId,
        signature: bytes,
        message_hash: MessageHash,
        bound_signature: bytes | None = None,
    ) -> EncryptedRelease:
        await self._call("sign_ecdsa", key_id, signature, message_hash, bound_signature)
        return EncryptedRelease(SIGNATURE_CIPHER, self.receipts)

    async def delete_key(
        self, key_id: ServerKeyId, signature: bytes, bound_signature: bytes | None = None
    ) -> KeyDeletion:
        await self._call("delete_key", key_id, signature, bound_signature)
        return KeyDeletion(key_id, (NodeId(NODE1),), (NodeId(NODE2),))

    async def refresh_keys(
        self, expires: int, signature: bytes, key_ids: tuple[ServerKeyId, ...] | None
    ) -> RefreshSummary:
        await self._call("refresh_keys", expires, signature, key_ids)
        return RefreshSummary(3, ((KEY_ID, "busy"),))

    async def change_servers_set(
        self, old_set_signature: bytes, new_set_signature: bytes, new_servers_set: frozenset[NodeId]
    ) -> None:
        await self._call(
            "change_servers_set", old_set_signature, new_set_signature, new_servers_set
        )


@dataclass
class Served:
    api: FakeKeyServer
    server: HttpServer
    session: aiohttp.ClientSession

    def url(self, path: str) -> URL:
        return URL(f"http://127.0.0.1:{self.server.port}{path}", encoded=True)

    async def call(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, bytes, Any]:
        async with self.session.request(
            method, self.url(path), data=body, headers=headers
        ) as response:
            return response.status, await response.read(), response.headers


Serve = Callable[[CorsOrigins], Awaitable[Served]]


@pytest.fixture
async def serve() -> AsyncIterator[Serve]:
    running: list[Served] = []

    async def start(cors: CorsOrigins) -> Served:
        api = FakeKeyServer()
        server = await start_http(api, "127.0.0.1", 0, cors)
        served = Served(api, server, aiohttp.ClientSession())
        running.append(served)
        return served

    yield start
    for served in running:
        await served.session.close()
        await served.server.stop()


@pytest.fixture
async def served(serve: Serve) -> Served:
    return await serve(CorsOrigins.none())


async def raw_exchange(port: int, data: bytes) -> bytes:
    """Send bytes on one TCP connection and read until the server closes it."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(data)
    await writer.drain()
    answer = await asyncio.wait_for(reader.read(), 5)
    writer.close()
    await writer.wait_closed()
    return answer


def _quoted(text: str) -> bytes:
    return json.dumps(f'"{text}"').encode()


# --- the routes ------------------------------------------------------------------------------

ROUTES = [
    (
        "POST",
        f"/shadow/{K}/{S}/2",
        ("generate_server_key", (KEY_ID, SIG, 2, None)),
        f'"0x{SERVER_PUBLIC.to_bytes().hex()}"'.encode(),
    ),
    (
        "POST",
        f"/shadow/{K}/{S}/{COMMON.to_bytes().hex()}/{ENCRYPTED.to_bytes().hex()}",
        ("store_document_key", (KEY_ID, SIG, COMMON, ENCRYPTED, None)),
        b"",
    ),
    (
        "POST",
        f"/{K}/{S}/1",
        ("generate_document_key", (KEY_ID, SIG, 1)),
        f'"0x{ENCRYPTED_KEY.hex()}"'.encode(),
    ),
    (
        "GET",
        f"/server/{K}/{S}",
        ("retrieve_server_key", (KEY_ID, SIG)),
        f'"0x{SERVER_PUBLIC.to_bytes().hex()}"'.encode(),
    ),
    (
        "GET",
        f"/{K}/{S}",
        ("retrieve_document_key", (KEY_ID, SIG)),
        f'"0x{ENCRYPTED_KEY.hex()}"'.encode(),
    ),
    (
        "GET",
        f"/shadow/{K}/{S}",
        ("retrieve_document_key_shadow", (KEY_ID, SIG)),
        (
            '{"decrypted_secret":"0x' + SHADOW.decrypted_secret.to_bytes().hex() + '",'
            '"common_point":"0x' + SHADOW.common_point.to_bytes().hex() + '",'
            '"decrypt_shadows":["0x' + ("01" * 145) + '"]}'
        ).encode(),
    ),
    (
        "GET",
        f"/schnorr/{K}/{S}/{H}",
        ("sign_schnorr", (KEY_ID, SIG, bytes.fromhex(H), None)),
        f'"0x{SIGNATURE_CIPHER.hex()}"'.encode(),
    ),
    (
        "GET",
        f"/ecdsa/{K}/{S}/{H}",
        ("sign_ecdsa", (KEY_ID, SIG, bytes.fromhex(H), None)),
        f'"0x{SIGNATURE_CIPHER.hex()}"'.encode(),
    ),
    (
        "DELETE",
        f"/{K}/{S}",
        ("delete_key", (KEY_ID, SIG, None)),
        (
            '{"key_id":"0x' + K + '","confirmed":["0x' + NODE1.hex() + '"],'
            '"unconfirmed":["0x' + NODE2.hex() + '"]}'
        ).encode(),
    ),
]


@pytest.mark.parametrize(("method", "path", "call", "body"), ROUTES, ids=lambda v: str(v)[:20])
async def test_each_route_calls_the_key_server_and_answers_parity_s_body(
    served: Served, method: str, path: str, call: tuple[str, tuple[Any, ...]], body: bytes
) -> None:
    status, answer, headers = await served.call(method, path)
    assert status == 200
    assert answer == body
    assert served.api.calls == [call]
    if body:
        assert headers["Content-Type"] == JSON
    else:
        assert "Content-Type" not in headers
    assert "Access-Control-Allow-Origin" not in headers


async def test_servers_set_change_reads_the_body(served: Served) -> None:
    body = json.dumps(["0x" + NODE1.hex(), NODE2.hex(), "0x" + NODE1.hex()]).encode()
    status, answer, headers = await served.call(
        "POST", f"/admin/servers_set_change/{S}/{S[:-2]}00", body
    )
    assert (status, answer) == (200, b"")
    assert "Content-Type" not in headers
    assert served.api.calls == [
        ("change_servers_set", (SIG, SIG[:-1] + b"\x00", frozenset({NODE1, NODE2})))
    ]


async def test_percent_encoded_path_and_query_string(served: Served) -> None:
    path = f"/server/{K}/{S}"
    encoded = "".join(c if c == "/" else f"%{ord(c):02x}" for c in path)
    status, answer, _ = await served.call("GET", encoded + "?ignored=1&x=%zz")
    assert status == 200
    assert answer == f'"0x{SERVER_PUBLIC.to_bytes().hex()}"'.encode()
    assert served.api.calls == [("retrieve_server_key", (KEY_ID, SIG))]


async def test_hex_with_0x_in_the_url(served: Served) -> None:
    status, _, _ = await served.call("GET", f"/ecdsa/0x{K}/0x{S}/0x{H}")
    assert status == 200
    assert served.api.calls == [("sign_ecdsa", (KEY_ID, SIG, bytes.fromhex(H), None))]


# --- the bound signature header (ours; Parity clients never send it) ----------------------------

BOUND = bytes(range(1, 65)) + b"\x1b"  # v = 27: the Ethereum tooling form is accepted too
BOUND_ROUTES = [
    ("POST", ROUTES[0][1], ("generate_server_key", (KEY_ID, SIG, 2, BOUND))),
    ("POST", ROUTES[1][1], ("store_document_key", (KEY_ID, SIG, COMMON, ENCRYPTED, BOUND))),
    ("GET", ROUTES[6][1], ("sign_schnorr", (KEY_ID, SIG, bytes.fromhex(H), BOUND))),
    ("GET", ROUTES[7][1], ("sign_ecdsa", (KEY_ID, SIG, bytes.fromhex(H), BOUND))),
    ("DELETE", ROUTES[8][1], ("delete_key", (KEY_ID, SIG, BOUND))),
]


@pytest.mark.parametrize(("method", "path", "call"), BOUND_ROUTES, ids=lambda v: str(v)[:20])
@pytest.mark.parametrize("prefix", ["", "0x", "0X"])
async def test_the_bound_signature_header_reaches_the_key_server(
    served: Served, method: str, path: str, call: tuple[str, tuple[Any, ...]], prefix: str
) -> None:
    headers = {"X-Secretstore-Bound-Signature": prefix + BOUND.hex()}
    status, _, _ = await served.call(method, path, headers=headers)
    assert status == 200
    assert served.api.calls == [call]


@pytest.mark.parametrize(
    ("value", "hint"),
    [
        ("zz" * 65, "X-Secretstore-Bound-Signature"),
        (BOUND.hex()[:-2], "65 bytes"),
        (BOUND[:64].hex() + "05", "v must be 0, 1, 27 or 28"),
        ("", "X-Secretstore-Bound-Signature"),
    ],
)
async def test_a_malformed_bound_signature_header_is_400_saying_why(
    served: Served, value: str, hint: str
) -> None:
    headers = {"X-Secretstore-Bound-Signature": value}
    status, body, _ = await served.call("GET", ROUTES[6][1], headers=headers)
    assert status == 400
    text = json.loads(body)
    assert text.startswith('"Failed to parse request: ') and hint in text, text
    assert served.api.calls == []


@pytest.mark.parametrize(
    ("method", "path"),
    [(r[0], r[1]) for r in ROUTES if r[0:2] not in [(b[0], b[1]) for b in BOUND_ROUTES]],
)
async def test_the_bound_signature_header_on_another_route_is_400(
    served: Served, method: str, path: str
) -> None:
    headers = {"X-Secretstore-Bound-Signature": BOUND.hex()}
    status, body, _ = await served.call(method, path, headers=headers)
    assert status == 400
    assert "store, signing and delete routes only" in json.loads(body)
    assert served.api.calls == []


async def test_the_bound_signature_header_twice_is_400(served: Served) -> None:
    url = served.url(ROUTES[6][1])
    headers = [("X-Secretstore-Bound-Signature", BOUND.hex())] * 2
    async with served.session.get(url, headers=headers) as response:
        assert response.status == 400
        assert "given 2 times" in json.loads(await response.read())
    assert served.api.calls == []


async def test_absolute_form_target_and_leading_slashes(served: Served) -> None:
    port = served.server.port
    for target in (f"http://127.0.0.1:{port}/{K}/{S}", f"///{K}/{S}"):
        answer = await raw_exchange(
            port, f"GET {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode()
        )
        assert answer.startswith(b"HTTP/1.1 200 OK\r\n")
        assert answer.endswith(f'"0x{ENCRYPTED_KEY.hex()}"'.encode())
    assert [name for name, _ in served.api.calls] == ["retrieve_document_key"] * 2


# --- errors ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("error", "status", "text"),
    [
        (AccessDenied("requester 0xabc is not allowed"), 403, "Access denied"),
        (ConsensusUnreachable("2 of 5 agreed"), 403, "Consensus unreachable"),
        (ServerKeyNotFound("no key"), 404, "Server key with this ID is not found"),
        (DocumentKeyNotFound("no doc"), 404, "Document key with this ID is not found"),
        (ServerKeyAlreadyGenerated("x"), 400, "Server key with this ID is already generated"),
        (DocumentKeyAlreadyStored("x"), 400, "Document key with this ID is already stored"),
        (InvalidRequest("threshold 9 is not below 3"), 400, "threshold 9 is not below 3"),
        (SessionTimeout("session 0x12 after 30 s"), 500, "Session timeout"),
        (
            ProtocolViolation("node 0x99", "share 0xdeadbeef fails"),
            500,
            "invalid message is received",
        ),
        (ZeroDivisionError("secret 0x5a39"), 500, "Internal error"),
    ],
)
async def test_key_server_errors_map_to_parity_status_and_body(
    served: Served, error: BaseException, status: int, text: str
) -> None:
    served.api.error = error
    got_status, body, headers = await served.call("GET", f"/{K}/{S}")
    assert got_status == status
    assert body == _quoted(text)
    assert headers["Content-Type"] == JSON


async def test_an_unexpected_error_is_logged_with_its_traceback_but_not_sent(
    served: Served, caplog: pytest.LogCaptureFixture
) -> None:
    served.api.error = ZeroDivisionError("internal detail 0x5a39")
    with caplog.at_level(logging.INFO):
        _, body, _ = await served.call("GET", f"/server/{K}/{S}")
    assert b"0x5a39" not in body
    records = [r for r in caplog.records if r.name == "secretstore.http.app"]
    assert any(r.exc_info and r.levelno == logging.ERROR for r in records)


@pytest.mark.parametrize(
    ("method", "path", "hint"),
    [
        ("GET", "/", "empty path"),
        ("GET", "/foo/bar", "neither a key id nor a route prefix"),
        ("GET", f"/{K}/{S[:-2]}", "segment 2 (signature): expected 65 bytes, got 64"),
        ("PUT", f"/{K}/{S}", "method PUT"),
        ("DELETE", f"/{K}/{S}/2", "expected DELETE /{key_id}/{signature}"),
        ("POST", f"/server/{K}/{S}", "method POST"),
        ("GET", f"/{K}/{S}/2", "got 3 segments"),
        ("POST", f"/{K}/{S}/-1", "segment 3 (threshold)"),
        ("POST", f"/admin/servers_set_change/{S}/{S}", "body"),
        ("OPTIONS", f"/{K}/{S}", "method OPTIONS"),
    ],
)
async def test_unparsable_requests_get_400_saying_why(
    served: Served, method: str, path: str, hint: str
) -> None:
    status, body, headers = await served.call(method, path)
    assert status == 400
    assert headers["Content-Type"] == JSON
    text = json.loads(body)
    assert text.startswith('"Failed to parse request: ') and text.endswith('"')
    assert hint in text
    assert served.api.calls == []


async def test_head_is_refused_like_any_other_method(served: Served) -> None:
    status, body, _ = await served.call("HEAD", f"/{K}/{S}")
    assert (status, body) == (400, b"")
    assert served.api.calls == []


async def test_body_larger_than_the_limit_is_refused(served: Served) -> None:
    status, _, _ = await served.call(
        "POST", f"/admin/servers_set_change/{S}/{S}", b" " * (MAX_BODY_SIZE + 1)
    )
    assert status == 413
    assert served.api.calls == []


# --- CORS ------------------------------------------------------------------------------------


async def test_a_refused_origin_gets_404_with_an_empty_body(served: Served) -> None:
    status, body, headers = await served.call(
        "GET", f"/{K}/{S}", headers={"Origin": "http://evil.example"}
    )
    assert (status, body) == (404, b"")
    assert "Content-Type" not in headers and "Access-Control-Allow-Origin" not in headers
    assert served.api.calls == []


async def test_a_same_host_origin_needs_no_cors(served: Served) -> None:
    host = f"127.0.0.1:{served.server.port}"
    status, _, headers = await served.call("GET", f"/{K}/{S}", headers={"Origin": f"http://{host}"})
    assert status == 200
    assert "Access-Control-Allow-Origin" not in headers


async def test_a_listed_origin_is_echoed_on_answers_and_errors(serve: Serve) -> None:
    served = await serve(CorsOrigins(allow_all=False, origins=("https://app.example",)))
    origin = {"Origin": "https://app.example"}
    status, _, headers = await served.call("GET", f"/{K}/{S}", headers=origin)
    assert status == 200 and headers["Access-Control-Allow-Origin"] == "https://app.example"
    served.api.error = AccessDenied()
    status, _, headers = await served.call("GET", f"/{K}/{S}", headers=origin)
    assert status == 403 and headers["Access-Control-Allow-Origin"] == "https://app.example"
    status, _, headers = await served.call("GET", "/nothing", headers=origin)
    assert status == 400 and headers["Access-Control-Allow-Origin"] == "https://app.example"
    status, body, _ = await served.call(
        "GET", f"/{K}/{S}", headers={"Origin": "https://other.example"}
    )
    assert (status, body) == (404, b"")


async def test_all_origins_allowed(serve: Serve) -> None:
    served = await serve(CorsOrigins.all())
    status, _, headers = await served.call(
        "POST", f"/shadow/{K}/{S}/1", headers={"Origin": "http://anything.example:3000"}
    )
    assert status == 200
    assert headers["Access-Control-Allow-Origin"] == "http://anything.example:3000"


async def test_preflight_of_an_allowed_origin(serve: Serve) -> None:
    served = await serve(CorsOrigins(allow_all=False, origins=("https://app.example",)))
    status, body, headers = await served.call(
        "OPTIONS",
        f"/admin/servers_set_change/{S}/{S}",
        headers={
            "Origin": "https://app.example",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type",
        },
    )
    assert (status, body) == (200, b"")
    assert headers["Access-Control-Allow-Origin"] == "https://app.example"
    assert headers["Access-Control-Allow-Methods"] == "GET, POST, DELETE"
    assert headers["Access-Control-Allow-Headers"] == "content-type"
    assert served.api.calls == []
    status, _, _ = await served.call(
        "OPTIONS",
        f"/{K}/{S}",
        headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "GET"},
    )
    assert status == 404


# --- connection handling, logging, lifecycle -------------------------------------------------


async def test_keep_alive_serves_several_requests_on_one_connection(served: Served) -> None:
    one = f"GET /server/{K}/{S} HTTP/1.1\r\nHost: x\r\n\r\n"
    last = f"GET /{K}/{S} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    answer = await raw_exchange(served.server.port, (one + one + last).encode())
    assert answer.count(b"HTTP/1.1 200 OK\r\n") == 3
    assert len(served.api.calls) == 3


async def test_requests_are_served_concurrently(served: Served) -> None:
    served.api.gate = asyncio.Event()
    pending = [asyncio.create_task(served.call("GET", f"/{K}/{S}")) for _ in range(5)]
    for _ in range(100):
        if len(served.api.calls) == 5:
            break
        await asyncio.sleep(0.01)
    assert len(served.api.calls) == 5  # all five are inside the key server at once
    served.api.gate.set()
    assert [status for status, _, _ in await asyncio.gather(*pending)] == [200] * 5


async def test_logs_hold_the_request_line_but_never_the_body(
    served: Served, caplog: pytest.LogCaptureFixture
) -> None:
    body = json.dumps(["0x" + NODE1.hex()]).encode()
    with caplog.at_level(logging.DEBUG):
        await served.call("POST", f"/admin/servers_set_change/{S}/{S}", body)
        served.api.error = InvalidRequest("rejected")
        await served.call("POST", f"/admin/servers_set_change/{S}/{S}", body)
        await served.call("POST", "/admin/servers_set_change/x/y", body)
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert "/admin/servers_set_change/" in text
    assert NODE1.hex() not in text


async def test_start_on_port_zero_and_stop(serve: Serve) -> None:
    served = await serve(CorsOrigins.none())
    assert served.server.host == "127.0.0.1" and served.server.port > 0
    status, _, _ = await served.call("GET", f"/{K}/{S}")
    assert status == 200
    await served.session.close()
    await served.server.stop()
    with pytest.raises(OSError):
        await asyncio.open_connection("127.0.0.1", served.server.port)


async def test_refresh_reads_its_optional_body(served: Served) -> None:
    status, body, _ = await served.call("POST", f"/admin/refresh/1800000000/{S}")
    assert status == 200
    assert json.loads(body) == {
        "refreshed": 3,
        "skipped": [{"key_id": "0x" + K, "reason": "busy"}],
    }
    status, _, _ = await served.call(
        "POST", f"/admin/refresh/1800000000/{S}", body=json.dumps([K, "0x" + K]).encode()
    )
    assert status == 200
    assert served.api.calls == [
        ("refresh_keys", (1800000000, SIG, None)),
        ("refresh_keys", (1800000000, SIG, (KEY_ID,))),
    ]
    for bad in (b"[]", b'["00"]', b"{}", b"[[1]]"):
        status, _, _ = await served.call("POST", f"/admin/refresh/1800000000/{S}", body=bad)
        assert status == 400
    status, _, _ = await served.call("GET", f"/admin/refresh/1800000000/{S}")
    assert status == 400


# --- the cause header and the request hook ---------------------------------------------------


async def test_consensus_unreachable_tells_its_cause_in_a_header(served: Served) -> None:
    served.api.error = ConsensusUnreachable(
        "key generation needs every key server; not connected: 1a2b3c4d (10.0.0.2:12000)"
    )
    status, body, headers = await served.call("POST", f"/shadow/{K}/{S}/1")
    assert (status, body) == (403, _quoted("Consensus unreachable"))  # Parity's body
    assert headers[CAUSE_HEADER] == (
        "key generation needs every key server; not connected: 1a2b3c4d (10.0.0.2:12000)"
    )


@pytest.mark.parametrize(
    "error",
    [
        AccessDenied("requester 0xabc is not on the list"),
        ServerKeyNotFound("key 0x77 is not here"),
    ],
)
async def test_other_failures_tell_no_cause(served: Served, error: BaseException) -> None:
    # access stays opaque; the cluster's failures (naming nodes) and the 5xx's pointer to the
    # log are tested in test_guard.py
    served.api.error = error
    _, _, headers = await served.call("GET", f"/{K}/{S}")
    assert CAUSE_HEADER not in headers


async def test_a_cause_header_is_one_line_of_printable_ascii(serve: Serve) -> None:
    served = await serve(CorsOrigins(allow_all=False, origins=("https://app.example",)))
    served.api.error = ConsensusUnreachable("line one\r\nX-Injected: yes\x00 é" + "x" * 400)
    _, _, headers = await served.call("GET", f"/{K}/{S}", headers={"Origin": "https://app.example"})
    cause = headers[CAUSE_HEADER]
    assert "X-Injected" not in headers
    assert cause.startswith("line one X-Injected: yes? ?")
    assert len(cause) == 300 and cause.endswith("...")
    assert headers["Access-Control-Expose-Headers"] == CAUSE_HEADER  # browsers may read it


async def test_the_request_hook_hears_every_route_and_status() -> None:
    heard: list[tuple[str, int]] = []
    api = FakeKeyServer()

    async def ping(request: web.Request) -> web.Response:
        return web.Response(text="pong")

    server = await start_http(
        api,
        "127.0.0.1",
        0,
        CorsOrigins(allow_all=False, origins=("https://ok.example",)),
        [web.get("/ping", ping)],
        on_request=lambda route, status, seconds: heard.append((route, status)),
    )
    served = Served(api, server, aiohttp.ClientSession())
    try:
        await served.call("POST", f"/shadow/{K}/{S}/2")
        await served.call("GET", f"/server/{K}/{S}")
        await served.call("GET", f"/ecdsa/{K}/{S}/{H}")
        api.error = ServerKeyNotFound("none")
        await served.call("GET", f"/shadow/{K}/{S}")
        await served.call("GET", "/not/a/route")
        await served.call("GET", "/ping")
        await served.call("GET", f"/{K}/{S}", headers={"Origin": "https://evil.example"})
        await served.call(
            "OPTIONS",
            f"/{K}/{S}",
            headers={"Origin": "https://ok.example", "Access-Control-Request-Method": "GET"},
        )
    finally:
        await served.session.close()
        await server.stop()
    assert heard == [
        ("generate_server_key", 200),
        ("retrieve_server_key", 200),
        ("sign_ecdsa", 200),
        ("retrieve_document_key_shadow", 404),
        ("invalid", 400),
        ("/ping", 200),
        ("refused_origin", 404),
        ("preflight", 200),
    ]
