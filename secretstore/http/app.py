"""The aiohttp server of Parity's key server API: CORS, parse, call the key server, format.

Every request goes through one handler, in Parity's order: the Origin check (a refused origin
gets 404 with an empty body before anything else is looked at), then the path (and the admin
body) is parsed, then the key server is called and its answer or error formatted. Request
bodies are never logged; the access log holds the request line, which carries signatures and
ids but no secret.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Awaitable, Callable, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Final

from aiohttp import hdrs, web

from secretstore.audit.jsonform import receipts_header
from secretstore.config.model import CorsOrigins
from secretstore.errors import InvalidRequest, SecretStoreError, describe
from secretstore.http import format as fmt
from secretstore.http.cors import CorsDecision, cors_decision
from secretstore.http.errors import (
    CAUSE_HEADER,
    ErrorResponse,
    error_cause,
    error_response,
    parse_failure,
)
from secretstore.http.guard import GuardLimits, RequestGuard, SlowBody, read_body, slow_body_answer
from secretstore.http.parse import (
    BOUND_SIGNATURE_HEADER,
    ApiRequest,
    ChangeServersSet,
    DeleteKey,
    GenerateDocumentKey,
    GenerateServerKey,
    RefreshKeys,
    RetrieveDocumentKey,
    RetrieveDocumentKeyShadow,
    RetrieveServerKey,
    SignEcdsa,
    SignSchnorr,
    StoreDocumentKey,
    parse_request,
)
from secretstore.http.port import EncryptedRelease, KeyServerApi

log = logging.getLogger(__name__)

#: The largest request body read (only the admin route has one: a JSON list of node ids).
MAX_BODY_SIZE: Final = 1024 * 1024
#: Remote address, request line, status, response size, seconds taken.
ACCESS_LOG_FORMAT: Final = '%a "%r" %s %b %Tf'
#: What a CORS preflight may ask for.
PREFLIGHT_METHODS: Final = "GET, POST, DELETE"

#: (route, status, seconds) of every answered request, e.g. for metrics. The route is the
#: Parity operation (`generate_server_key`, …), an extra route's path, or one of
#: `invalid` (did not parse), `refused_origin`, `preflight`.
RequestHook = Callable[[str, int, float], None]

_CORS_KEY: Final = web.AppKey("cors", CorsOrigins)
_API_KEY: Final = web.AppKey("api", KeyServerApi)
#: The route label of the request being answered: set by the handler, read by the observing
#: middleware (both run in the request's task, so they share the context).
_ROUTE: Final[ContextVar[str | None]] = ContextVar("secretstore_http_route", default=None)
#: Status recorded for a request whose client went away before the answer (nginx's 499).
CLIENT_CLOSED: Final = 499
_CAMEL: Final = re.compile(r"(?<!^)(?=[A-Z])")


def make_app(
    api: KeyServerApi,
    cors: CorsOrigins,
    extra_routes: Sequence[web.RouteDef] = (),
    limits: GuardLimits | None = None,
    *,
    on_request: RequestHook | None = None,
) -> web.Application:
    """The application serving every path and method through Parity's routing.

    `extra_routes` (e.g. the node's GET /health) are matched before Parity's routing; each
    must use a path that no Parity route can have (a single segment does not parse).
    `limits`: the body deadline and the bound on requests at once (http/guard.py).
    `on_request` hears of every request once it is answered.
    """
    middlewares = [_observing(on_request)] if on_request is not None else []
    app = web.Application(client_max_size=MAX_BODY_SIZE, middlewares=middlewares)
    RequestGuard(limits or GuardLimits()).install(app)
    app[_API_KEY] = api
    app[_CORS_KEY] = cors
    app.router.add_routes(extra_routes)
    app.router.add_route("*", "/{tail:.*}", _handle)
    return app


def _observing(hook: RequestHook) -> Callable[..., Awaitable[web.StreamResponse]]:
    @web.middleware
    async def observe(
        request: web.Request,
        handler: Callable[[web.Request], Awaitable[web.StreamResponse]],
    ) -> web.StreamResponse:
        started = time.monotonic()
        status = 500
        _ROUTE.set(None)
        try:
            response = await handler(request)
            status = response.status
            return response
        except web.HTTPException as exc:
            status = exc.status
            raise
        except asyncio.CancelledError:
            status = CLIENT_CLOSED
            raise
        finally:
            route = _ROUTE.get()
            if route is None:
                resource = request.match_info.route.resource
                route = resource.canonical if resource is not None else "unknown"
            hook(str(route), status, time.monotonic() - started)

    return observe


@dataclass(frozen=True, slots=True)
class HttpServer:
    """A running HTTP API: where it listens, and how to stop it."""

    runner: web.AppRunner
    host: str
    port: int

    async def stop(self) -> None:
        """Stop listening, finish requests in flight (briefly), release the socket."""
        await self.runner.cleanup()


async def start_http(
    api: KeyServerApi,
    host: str,
    port: int,
    cors: CorsOrigins,
    extra_routes: Sequence[web.RouteDef] = (),
    *,
    limits: GuardLimits | None = None,
    on_request: RequestHook | None = None,
) -> HttpServer:
    """Serve the API on host:port (port 0 picks a free one; see HttpServer.port). A request
    head must arrive within `limits.read_timeout` (the keep-alive timer: http/guard.py)."""
    chosen = limits or GuardLimits()
    runner = web.AppRunner(
        make_app(api, cors, extra_routes, chosen, on_request=on_request),
        access_log_format=ACCESS_LOG_FORMAT,
        keepalive_timeout=chosen.read_timeout,
        shutdown_timeout=5.0,
    )
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    try:
        await site.start()
    except BaseException:
        await runner.cleanup()
        raise
    bound_host, bound_port = runner.addresses[0][:2]
    log.info("HTTP API listening on %s:%d", bound_host, bound_port)
    return HttpServer(runner, str(bound_host), int(bound_port))


async def stop_http(server: HttpServer) -> None:
    await server.stop()


# --- the handler ---------------------------------------------------------------------------


async def _handle(request: web.Request) -> web.StreamResponse:
    method, raw_path = request.method, request.rel_url.raw_path
    _ROUTE.set("invalid")  # until the path parses
    decision = cors_decision(
        request.app[_CORS_KEY],
        request.headers.get(hdrs.ORIGIN),
        request.headers.get(hdrs.HOST),
    )
    if not decision.allowed:
        _ROUTE.set("refused_origin")
        log.warning("ignoring %s %s with an unauthorized Origin header", method, raw_path)
        return web.Response(status=404)
    if method == hdrs.METH_OPTIONS and hdrs.ACCESS_CONTROL_REQUEST_METHOD in request.headers:
        _ROUTE.set("preflight")
        return _preflight(request, decision)

    try:
        body = await read_body(request)
    except SlowBody as exc:
        log.info("%s %s: %s", method, raw_path, exc)
        return slow_body_answer(exc)
    try:
        api_request = parse_request(
            method, raw_path, body, request.headers.getall(BOUND_SIGNATURE_HEADER, [])
        )
    except InvalidRequest as exc:
        _ROUTE.set("invalid")
        log.info("ignoring invalid %s %s: %s", method, raw_path, exc)
        return _error(parse_failure(exc), decision)

    _ROUTE.set(_CAMEL.sub("_", type(api_request).__name__).lower())
    wants_receipts = fmt.RECEIPTS_HEADER in request.headers
    try:
        response = await _serve(request.app[_API_KEY], api_request, wants_receipts)
    except Exception as exc:
        answer = error_response(exc)
        _log_failure(method, raw_path, answer, exc)
        return _error(answer, decision, error_cause(exc))
    _allow_origin(response, decision)
    return response


async def _serve(api: KeyServerApi, request: ApiRequest, wants_receipts: bool) -> web.Response:
    """Call the key server for a parsed request; the 200 response with Parity's body (and,
    when asked for, the receipts header of a release answered with a bare string)."""
    match request:
        case GenerateServerKey(key_id, signature, threshold, bound):
            public = await api.generate_server_key(
                key_id, signature, threshold, bound_signature=bound
            )
            return _json(fmt.public_body(public))
        case StoreDocumentKey(key_id, signature, common_point, encrypted_point, bound):
            await api.store_document_key(
                key_id, signature, common_point, encrypted_point, bound_signature=bound
            )
            return _empty()
        case GenerateDocumentKey(key_id, signature, threshold):
            encrypted = await api.generate_document_key(key_id, signature, threshold)
            return _json(fmt.bytes_body(encrypted))
        case RetrieveServerKey(key_id, signature):
            public = await api.retrieve_server_key(key_id, signature)
            return _json(fmt.public_body(public))
        case RetrieveDocumentKey(key_id, signature):
            released = await api.retrieve_document_key(key_id, signature)
            return _released(released, wants_receipts)
        case RetrieveDocumentKeyShadow(key_id, signature):
            shadow = await api.retrieve_document_key_shadow(key_id, signature)
            return _json(fmt.shadow_body(shadow))
        case SignSchnorr(key_id, signature, message_hash, bound):
            released = await api.sign_schnorr(
                key_id, signature, message_hash, bound_signature=bound
            )
            return _released(released, wants_receipts)
        case SignEcdsa(key_id, signature, message_hash, bound):
            released = await api.sign_ecdsa(key_id, signature, message_hash, bound_signature=bound)
            return _released(released, wants_receipts)
        case RefreshKeys(expires, signature, key_ids):
            summary = await api.refresh_keys(expires, signature, key_ids)
            return _json(fmt.refresh_body(summary))
        case DeleteKey(key_id, signature, bound):
            deletion = await api.delete_key(key_id, signature, bound_signature=bound)
            return _json(fmt.deletion_body(deletion))
        case ChangeServersSet(old_signature, new_signature, new_servers_set):
            await api.change_servers_set(old_signature, new_signature, new_servers_set)
            return _empty()


# --- responses -----------------------------------------------------------------------------


def _json(body: bytes, status: int = 200) -> web.Response:
    return web.Response(
        status=status, body=body, headers={hdrs.CONTENT_TYPE: fmt.JSON_CONTENT_TYPE}
    )


def _released(released: EncryptedRelease, wants_receipts: bool) -> web.Response:
    """Parity's `"0x…"` body; the receipts in our header when the request asked for them
    (a header, not the body, which must stay Parity's exact string)."""
    response = _json(fmt.bytes_body(released.encrypted))
    if wants_receipts and released.receipts is not None:
        response.headers[fmt.RECEIPTS_HEADER] = receipts_header(released.receipts)
        response.headers[hdrs.ACCESS_CONTROL_EXPOSE_HEADERS] = fmt.RECEIPTS_HEADER
    return response


def _empty() -> web.Response:
    return web.Response(status=200)


def _error(answer: ErrorResponse, decision: CorsDecision, cause: str | None = None) -> web.Response:
    response = _json(answer.body, answer.status)
    _allow_origin(response, decision)
    if cause is not None:
        response.headers[CAUSE_HEADER] = cause
        if decision.allow_origin is not None:
            response.headers[hdrs.ACCESS_CONTROL_EXPOSE_HEADERS] = CAUSE_HEADER
    return response


def _allow_origin(response: web.StreamResponse, decision: CorsDecision) -> None:
    if decision.allow_origin is not None:
        response.headers[hdrs.ACCESS_CONTROL_ALLOW_ORIGIN] = decision.allow_origin


def _preflight(request: web.Request, decision: CorsDecision) -> web.Response:
    """A CORS preflight from an allowed origin (Parity had none: it answered 400)."""
    response = web.Response(status=200)
    _allow_origin(response, decision)
    response.headers[hdrs.ACCESS_CONTROL_ALLOW_METHODS] = PREFLIGHT_METHODS
    requested = request.headers.get(hdrs.ACCESS_CONTROL_REQUEST_HEADERS)
    if requested:
        response.headers[hdrs.ACCESS_CONTROL_ALLOW_HEADERS] = requested
    return response


def _log_failure(method: str, path: str, answer: ErrorResponse, exc: Exception) -> None:
    """One line for an expected failure (its cause included); a traceback only for a bug."""
    if answer.status < 500:
        log.info("%s %s failed (%d): %s", method, path, answer.status, describe(exc))
    elif isinstance(exc, SecretStoreError):
        log.warning(
            "%s %s failed (%d): %s: %s",
            method,
            path,
            answer.status,
            type(exc).__name__,
            describe(exc),
        )
    else:
        log.error("%s %s failed with an unexpected error", method, path, exc_info=exc)
