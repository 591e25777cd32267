"""Which Origin may call the HTTP API, as Parity's jsonrpc-server-utils decided it. Pure.

A request without an Origin header, or whose Origin names the host it was sent to, needs no
CORS answer. Otherwise the origin must be allowed by the configuration ("all", or a list whose
entries may be glob patterns such as `https://*.example.com`, matched without regard to case;
`null` must be listed to allow the `null` origin). An allowed origin is echoed back in
Access-Control-Allow-Origin.
"""

from __future__ import annotations

from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Final

from secretstore.config.model import CorsOrigins

NULL_ORIGIN: Final = "null"


@dataclass(frozen=True, slots=True)
class CorsDecision:
    """Whether to serve the request, and the Access-Control-Allow-Origin value to send."""

    allowed: bool
    allow_origin: str | None = None


NOT_REQUIRED: Final = CorsDecision(allowed=True)
REFUSED: Final = CorsDecision(allowed=False)


def normalize_origin(origin: str) -> str:
    """`scheme://host[:port]` with the scheme lower-cased ("http" when missing), no path."""
    scheme, separator, rest = origin.partition("://")
    if not separator:
        scheme, rest = "http", origin
    return f"{scheme.lower()}://{rest.split('/', 1)[0]}"


def _host_of(origin: str) -> str:
    return normalize_origin(origin).partition("://")[2]


def _matches(pattern: str, origin: str) -> bool:
    return fnmatchcase(origin.lower(), normalize_origin(pattern).lower())


def cors_decision(cors: CorsOrigins, origin: str | None, host: str | None) -> CorsDecision:
    """Decide for a request's Origin and Host headers (None when absent)."""
    if origin is None:
        return NOT_REQUIRED
    if host is not None and _host_of(origin).lower() == host.lower():
        return NOT_REQUIRED  # sent by a page of this very server
    if origin == NULL_ORIGIN:
        if cors.allow_all or NULL_ORIGIN in cors.origins:
            return CorsDecision(allowed=True, allow_origin=NULL_ORIGIN)
        return REFUSED
    if cors.allows(origin) or any(
        _matches(entry, origin) for entry in cors.origins if entry != NULL_ORIGIN
    ):
        return CorsDecision(allowed=True, allow_origin=normalize_origin(origin))
    return REFUSED
