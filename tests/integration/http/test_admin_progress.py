"""The admin commands' progress loop against a real aiohttp server: a /health read that fails
while the node works on the request shows nothing that time and does not end the command."""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web

from secretstore.cli import admin

NODE_ID = "0x" + "ab" * 64


class StandInNode:
    """/health answers 503 with a non-JSON body for its first reads, then a refresh under way;
    POST /admin answers once `done` is set."""

    def __init__(self, failing_reads: int) -> None:
        self.failing_reads = failing_reads
        self.reads = 0
        self.done = asyncio.Event()

    async def health(self, request: web.Request) -> web.Response:
        self.reads += 1
        if self.reads <= self.failing_reads:
            return web.Response(status=503, text="<html>starting</html>")
        if self.reads >= self.failing_reads + 2:
            self.done.set()
        refresh = {"phase": "moving keys", "keys_total": 4, "keys_done": 2}
        body = {"node_id": NODE_ID, "connected": [], "refresh": refresh}
        return web.Response(text=json.dumps(body), content_type="application/json")

    async def admin(self, request: web.Request) -> web.Response:
        await self.done.wait()
        return web.Response(text="done")


@pytest.fixture
async def node(unused_tcp_port: int) -> AsyncIterator[tuple[StandInNode, str]]:
    stand_in = StandInNode(failing_reads=2)
    app = web.Application()
    app.router.add_get("/health", stand_in.health)
    app.router.add_post("/admin", stand_in.admin)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", unused_tcp_port)
    await site.start()
    try:
        yield stand_in, f"http://127.0.0.1:{unused_tcp_port}"
    finally:
        stand_in.done.set()  # a request still waiting is answered before the server stops
        await runner.cleanup()


async def test_failed_health_reads_do_not_end_the_command(
    node: tuple[StandInNode, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    stand_in, url = node
    monkeypatch.setattr(admin, "POLL_INTERVAL", 0.02)
    out = io.StringIO()
    async with aiohttp.ClientSession() as session:

        async def call() -> tuple[int, bytes]:
            async with session.post(f"{url}/admin") as response:
                return response.status, await response.read()

        answer = await asyncio.wait_for(
            admin.call_showing_progress(session, url, call(), lambda v: v.refresh, out), 10
        )
    assert answer == (200, b"done")
    assert stand_in.reads >= 4  # two failed reads, then the ones that showed progress
    assert "2 of 4 keys" in out.getvalue()


async def test_a_failed_call_ends_the_progress_line_and_raises(
    unused_tcp_port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(admin, "POLL_INTERVAL", 0.02)
    url = f"http://127.0.0.1:{unused_tcp_port}"  # nothing listens
    out = io.StringIO()
    async with aiohttp.ClientSession() as session:

        async def call() -> tuple[int, bytes]:
            async with session.post(f"{url}/admin") as response:
                return response.status, await response.read()

        with pytest.raises(aiohttp.ClientError):
            await admin.call_showing_progress(session, url, call(), lambda v: v.refresh, out)
