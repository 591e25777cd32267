"""aiohttp server for the `secretstore_*` JSON-RPC helpers: POST / with a JSON-RPC body."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from aiohttp import web

from secretstore.client.jsonrpc import AccountStore, handle_body
from secretstore.crypto.rng import OsRng, Rng

log = logging.getLogger(__name__)

#: Requests larger than this are refused (documents travel hex-encoded inside the JSON).
MAX_BODY_BYTES = 64 << 20

_ACCOUNTS: web.AppKey[AccountStore] = web.AppKey("accounts")
_RNG: web.AppKey[Rng] = web.AppKey("rng")
_JSON = "application/json; charset=utf-8"


async def _handle_post(request: web.Request) -> web.Response:
    body = await request.read()
    accounts, rng = request.app[_ACCOUNTS], request.app[_RNG]
    # Unlocking a keystore account runs a deliberately slow KDF: keep it off the event loop.
    answer = await asyncio.get_running_loop().run_in_executor(
        None, handle_body, body, accounts, rng
    )
    if answer is None:
        return web.Response(status=200, body=b"", content_type="application/json")
    return web.Response(status=200, text=answer, headers={"Content-Type": _JSON})


def make_app(accounts: AccountStore, rng: Rng | None = None) -> web.Application:
    """The JSON-RPC application over an account store."""
    app = web.Application(client_max_size=MAX_BODY_BYTES)
    app[_ACCOUNTS] = accounts
    app[_RNG] = rng if rng is not None else OsRng()
    app.router.add_post("/", _handle_post)
    return app


@dataclass(frozen=True, slots=True)
class RunningRpcServer:
    """A started server: where it listens, and how to stop it."""

    runner: web.AppRunner
    host: str
    port: int

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/"

    async def stop(self) -> None:
        await self.runner.cleanup()


async def start_rpc_server(
    accounts: AccountStore, host: str = "127.0.0.1", port: int = 8545, rng: Rng | None = None
) -> RunningRpcServer:
    """Start listening on host:port (port 0 picks a free one) and return the running server."""
    runner = web.AppRunner(make_app(accounts, rng), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    bound = int(runner.addresses[0][1]) if runner.addresses else port
    log.info("secretstore JSON-RPC listening on %s:%d", host, bound)
    return RunningRpcServer(runner, host, bound)
