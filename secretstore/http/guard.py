"""What one HTTP client can make the API hold: read deadlines and a bound on requests at once.

- Headers: a connection must deliver a whole request head within `read_timeout` of opening (or
  of the previous answer); the server's keep-alive timer is that deadline (aiohttp closes a
  connection whose request is still incomplete when it fires), so a client that sends its
  headers a byte at a time is closed.
- Body: `read_body` reads it within `read_timeout`, or the answer is 408 and the connection
  closes.
- At most `max_requests` requests are served at once; one more is answered at once with 503
  (`Too many requests: the key server is busy`, the cause in X-Secretstore-Cause) instead of
  waiting. Extra routes (/health) count too: they are cheap and never wait on the cluster.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Final

from aiohttp import web

from secretstore.http.errors import CAUSE_HEADER, ErrorResponse

log = logging.getLogger(__name__)

SERVICE_UNAVAILABLE: Final = 503
REQUEST_TIMEOUT: Final = 408
BUSY_TEXT: Final = "Too many requests: the key server is busy"
SLOW_BODY_TEXT: Final = "Request body not received in time"
DEFAULT_READ_TIMEOUT: Final = 10.0
DEFAULT_MAX_REQUESTS: Final = 256

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True, slots=True)
class GuardLimits:
    """The deadlines and bound of one HTTP server (docs/CONFIG.md, "Deadlines")."""

    read_timeout: float = DEFAULT_READ_TIMEOUT
    max_requests: int = DEFAULT_MAX_REQUESTS


_LIMITS_KEY: Final = web.AppKey("guard_limits", GuardLimits)


class RequestGuard:
    """The middleware that counts requests in flight and refuses those beyond the bound."""

    def __init__(self, limits: GuardLimits) -> None:
        self.limits = limits
        self.in_flight = 0
        self.refused = 0

    def install(self, app: web.Application) -> None:
        app[_LIMITS_KEY] = self.limits
        app.middlewares.append(self.middleware)

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if self.in_flight >= self.limits.max_requests:
            self.refused += 1
            if self.refused == 1:
                log.warning(
                    "refusing HTTP requests: %d are being served (http_max_requests)",
                    self.in_flight,
                )
            return _answer(
                SERVICE_UNAVAILABLE,
                BUSY_TEXT,
                f"{self.in_flight} requests are being served, the limit is "
                f"{self.limits.max_requests}",
            )
        if self.refused:
            log.info("serving HTTP requests again; %d were refused meanwhile", self.refused)
            self.refused = 0
        self.in_flight += 1
        try:
            return await handler(request)
        finally:
            self.in_flight -= 1


class SlowBody(Exception):
    """The request body did not arrive within the read deadline."""


async def read_body(request: web.Request) -> bytes:
    """The whole body within the app's read deadline; SlowBody when it does not come."""
    limits = request.app.get(_LIMITS_KEY) or GuardLimits()
    try:
        async with asyncio.timeout(limits.read_timeout):
            return await request.read()
    except TimeoutError:
        raise SlowBody(f"no whole body within {limits.read_timeout:g} s") from None


def slow_body_answer(error: SlowBody) -> web.Response:
    response = _answer(REQUEST_TIMEOUT, SLOW_BODY_TEXT, str(error))
    response.force_close()
    return response


def _answer(status: int, text: str, cause: str) -> web.Response:
    answer = ErrorResponse(status, text)
    return web.Response(
        status=status,
        body=answer.body,
        headers={"Content-Type": "application/json; charset=utf-8", CAUSE_HEADER: cause},
    )
