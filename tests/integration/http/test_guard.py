"""What a slow or greedy HTTP client can make the API hold, over real sockets: a request head
sent a byte at a time is cut off at the read deadline, a body that does not come is answered
408, requests beyond the bound are answered 503 at once, and every 5xx carries its cause."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import aiohttp
import pytest

from secretstore.config.model import CorsOrigins
from secretstore.errors import NodeDisconnected, StorageError
from secretstore.http.app import HttpServer, start_http
from secretstore.http.errors import CAUSE_HEADER
from secretstore.http.guard import BUSY_TEXT, GuardLimits
from tests.integration.http.test_app import FakeKeyServer, K, S

LIMITS = GuardLimits(read_timeout=0.5, max_requests=2)
GENERATE = f"/shadow/{K}/{S}/1"


@pytest.fixture
async def served() -> AsyncIterator[tuple[FakeKeyServer, HttpServer]]:
    api = FakeKeyServer()
    server = await start_http(api, "127.0.0.1", 0, CorsOrigins.none(), limits=LIMITS)
    yield api, server
    if api.gate is not None:
        api.gate.set()
    await server.stop()


async def test_a_head_sent_a_byte_at_a_time_is_cut_off_at_the_deadline(
    served: tuple[FakeKeyServer, HttpServer],
) -> None:
    _, server = served
    reader, writer = await asyncio.open_connection(server.host, server.port)
    head = f"POST {GENERATE} HTTP/1.1\r\nHost: x\r\nX-Filler: {'a' * 200}\r\n\r\n".encode()
    started = time.monotonic()
    closed_after = None
    for byte in head:
        try:
            writer.write(bytes([byte]))
            await writer.drain()
        except ConnectionError:
            closed_after = time.monotonic() - started
            break
        await asyncio.sleep(0.02)
        if reader.at_eof() or writer.transport.is_closing():
            closed_after = time.monotonic() - started
            break
        try:
            async with asyncio.timeout(0.001):
                if await reader.read(1) == b"":
                    closed_after = time.monotonic() - started
                    break
        except TimeoutError:
            pass
    writer.close()
    assert closed_after is not None, "the server never closed the slow client"
    assert closed_after < LIMITS.read_timeout * 6, closed_after


async def test_a_body_that_does_not_come_is_answered_408(
    served: tuple[FakeKeyServer, HttpServer],
) -> None:
    api, server = served
    reader, writer = await asyncio.open_connection(server.host, server.port)
    writer.write(
        b"POST /admin/servers_set_change/" + S.encode() + b"/" + S.encode() + b" HTTP/1.1\r\n"
        b'Host: x\r\nContent-Length: 100\r\n\r\n["0x'
    )
    await writer.drain()
    async with asyncio.timeout(5):
        answer = await reader.read(4096)
    writer.close()
    assert answer.startswith(b"HTTP/1.1 408"), answer
    assert CAUSE_HEADER.encode() in answer
    assert api.calls == []


async def test_requests_beyond_the_bound_are_answered_503_at_once(
    served: tuple[FakeKeyServer, HttpServer],
) -> None:
    api, server = served
    api.gate = asyncio.Event()  # the first requests wait inside the key server
    url = f"http://{server.host}:{server.port}{GENERATE}"
    async with aiohttp.ClientSession() as session:
        waiting = [asyncio.create_task(session.post(url)) for _ in range(LIMITS.max_requests)]
        while len(api.calls) < LIMITS.max_requests:
            await asyncio.sleep(0.01)
        started = time.monotonic()
        async with session.post(url) as refused:
            body = await refused.text()
            assert refused.status == 503
            assert body == f'"\\"{BUSY_TEXT}\\""'
            assert "the limit is 2" in refused.headers[CAUSE_HEADER]
        assert time.monotonic() - started < 1.0
        api.gate.set()
        for task in waiting:
            response = await task
            assert response.status == 200
            response.release()
        async with session.post(url) as again:
            assert again.status == 200


@pytest.mark.parametrize(
    ("error", "cause"),
    [
        (NodeDisconnected("node 1a2b3c4d disconnected during the session"), "1a2b3c4d"),
        (StorageError("disk /secret/path full"), "see the key server's log"),
        (RuntimeError("a bug"), "see the key server's log"),
    ],
)
async def test_every_5xx_names_its_cause(
    served: tuple[FakeKeyServer, HttpServer], error: BaseException, cause: str
) -> None:
    api, server = served
    api.error = error
    if isinstance(error, NodeDisconnected):
        error.add_note("node 1a2b3c4d: did not answer for 2 s")
    url = f"http://{server.host}:{server.port}{GENERATE}"
    async with aiohttp.ClientSession() as session, session.post(url) as response:
        assert response.status == 500
        assert cause in response.headers[CAUSE_HEADER]
        if isinstance(error, NodeDisconnected):
            text = await response.text()
            assert text == '"\\"node required for this operation is currently disconnected\\""'
            assert "did not answer for 2 s" in response.headers[CAUSE_HEADER]
        assert "/secret/path" not in response.headers[CAUSE_HEADER]
