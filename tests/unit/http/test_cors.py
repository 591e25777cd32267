"""Origin checks as Parity's jsonrpc-server-utils made them (its cors.rs tests as cases)."""

from __future__ import annotations

import pytest

from secretstore.config.model import CorsOrigins
from secretstore.http.cors import (
    NOT_REQUIRED,
    REFUSED,
    CorsDecision,
    cors_decision,
    normalize_origin,
)


def _listed(*origins: str) -> CorsOrigins:
    return CorsOrigins(allow_all=False, origins=origins)


def _ok(origin: str) -> CorsDecision:
    return CorsDecision(allowed=True, allow_origin=origin)


@pytest.mark.parametrize(
    ("cors", "origin", "host", "expected"),
    [
        # no Origin header: nothing to decide, whatever the configuration
        (CorsOrigins.none(), None, None, NOT_REQUIRED),
        (_listed("http://ethereum.org"), None, None, NOT_REQUIRED),
        # a page of this very server
        (CorsOrigins.none(), "http://127.0.0.1:8082", "127.0.0.1:8082", NOT_REQUIRED),
        # a different port or a sub-domain is another origin
        (CorsOrigins.none(), "http://somedomain.io:8080", "somedomain.io", REFUSED),
        (CorsOrigins.none(), "http://subdomain.somedomain.io", "somedomain.io", REFUSED),
        # "all" echoes any origin, "none" refuses every foreign one
        (CorsOrigins.all(), "parity.io", None, _ok("http://parity.io")),
        (CorsOrigins.all(), "https://parity.io", None, _ok("https://parity.io")),
        (CorsOrigins.none(), "http://parity.io", None, REFUSED),
        # a list
        (_listed("http://ethereum.org"), "http://parity.io", None, REFUSED),
        (
            _listed("http://ethereum.org", "http://parity.io"),
            "http://parity.io",
            None,
            _ok("http://parity.io"),
        ),
        (_listed("HTTP://Parity.IO"), "http://parity.io", None, _ok("http://parity.io")),
        (_listed("parity.io"), "http://parity.io", None, _ok("http://parity.io")),
        # wildcards
        (
            _listed("http://*.io", "chrome-extension://*"),
            "http://parity.io",
            None,
            _ok("http://parity.io"),
        ),
        (_listed("http://*.io", "chrome-extension://*"), "http://parity.iot", None, REFUSED),
        (
            _listed("http://*.io", "chrome-extension://*"),
            "chrome-extension://test",
            None,
            _ok("chrome-extension://test"),
        ),
        # the null origin must be listed (or everything allowed)
        (_listed("null"), "null", None, _ok("null")),
        (CorsOrigins.all(), "null", None, _ok("null")),
        (_listed("http://parity.io"), "null", None, REFUSED),
        (CorsOrigins.none(), "null", None, REFUSED),
    ],
)
def test_decisions(
    cors: CorsOrigins, origin: str | None, host: str | None, expected: CorsDecision
) -> None:
    assert cors_decision(cors, origin, host) == expected


def test_normalize_origin() -> None:
    assert normalize_origin("https://parity.io:8443") == "https://parity.io:8443"
    assert normalize_origin("parity.io/somepath") == "http://parity.io"
    assert normalize_origin("127.0.0.1:8545/somepath") == "http://127.0.0.1:8545"
    assert normalize_origin("HTTPS://a.b") == "https://a.b"
