"""The node's own HTTP routes beside Parity's API: GET /health, /metrics and /status.

Each is a single path segment, which no Parity route can be, so they never shadow the API.
None of them shows a secret: ids, addresses, counts, session kinds, latencies and error texts.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from typing import Final

from aiohttp import web
from prometheus_client.aiohttp import make_aiohttp_handler

from secretstore.logs import redact
from secretstore.observe.health import Health
from secretstore.observe.observer import NodeObserver
from secretstore.observe.recent import EndedSession
from secretstore.observe.status_page import (
    SHOWN_ERRORS,
    SHOWN_SESSIONS,
    StatusView,
    render_status,
)

HEALTH_PATH: Final = "/health"
METRICS_PATH: Final = "/metrics"
STATUS_PATH: Final = "/status"


def _clean(session: EndedSession) -> EndedSession:
    """The session with its error text passed through the log redaction (a backstop)."""
    return replace(session, detail=redact(session.detail))


def status_view(health: Health, observer: NodeObserver, now: float) -> StatusView:
    recent = observer.recent
    return StatusView(
        health=health,
        running=observer.running,
        latencies=tuple(recent.latencies()),
        errors=tuple(_clean(s) for s in recent.errors(SHOWN_ERRORS)),
        sessions=tuple(_clean(s) for s in recent.latest(SHOWN_SESSIONS)),
        now=now,
    )


def observe_routes(
    health: Callable[[], Health],
    observer: NodeObserver,
    *,
    wall: Callable[[], float] = time.time,
) -> list[web.RouteDef]:
    """The three routes, reading the node's state when asked."""

    async def health_route(request: web.Request) -> web.Response:
        return web.json_response(health().to_json())

    async def status_route(request: web.Request) -> web.Response:
        page = render_status(status_view(health(), observer, wall()))
        return web.Response(
            text=page,
            content_type="text/html",
            charset="utf-8",
            headers={"Cache-Control": "no-store"},
        )

    return [
        web.get(HEALTH_PATH, health_route),
        web.get(METRICS_PATH, make_aiohttp_handler(observer.metrics.registry)),
        web.get(STATUS_PATH, status_route),
    ]
