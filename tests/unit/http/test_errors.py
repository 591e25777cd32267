"""The error mapping: Parity's status codes and bodies, and nothing internal leaks."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from secretstore.client.http_client import error_from_response
from secretstore.errors import (
    AccessDenied,
    ChainUnavailable,
    ConfigError,
    ConsensusUnreachable,
    CorruptRecord,
    CryptoError,
    DecryptionError,
    DocumentKeyAlreadyStored,
    DocumentKeyNotFound,
    InvalidEncoding,
    InvalidPoint,
    InvalidRequest,
    InvalidScalar,
    InvalidSignature,
    MalformedMessage,
    PlainRetrievalRefused,
    ProtocolViolation,
    SecretStoreError,
    ServerKeyAlreadyGenerated,
    ServerKeyNotFound,
    SessionLimitReached,
    SessionTimeout,
    StorageError,
)
from secretstore.http.errors import ErrorResponse, error_response, parse_failure

SECRET = "5a39ed1020c04d4d84539975b893a4e7c53eab6c2965db8bc3468093a31bc5ae"


def _parity_body(text: str) -> bytes:
    # what Parity wrote: serde_json::to_vec(&format!("\"{}\"", err))
    return ('"\\"' + text + '\\""').encode()


@pytest.mark.parametrize(
    ("error", "status", "text"),
    [
        (AccessDenied(SECRET), 403, "Access denied"),
        (
            PlainRetrievalRefused(SECRET),
            403,
            "Access denied: plain document key retrieval is disabled on this key server; "
            "use shadow retrieval (GET /shadow/{key_id}/{signature})",
        ),
        (ConsensusUnreachable(SECRET), 403, "Consensus unreachable"),
        (ServerKeyNotFound(SECRET), 404, "Server key with this ID is not found"),
        (DocumentKeyNotFound(SECRET), 404, "Document key with this ID is not found"),
        (ServerKeyAlreadyGenerated(SECRET), 400, "Server key with this ID is already generated"),
        (DocumentKeyAlreadyStored(SECRET), 400, "Document key with this ID is already stored"),
        (InvalidSignature(SECRET), 400, "Insufficient requester data: bad signature"),
        (InvalidPoint(SECRET), 400, "cryptographic error: not a point on secp256k1"),
        (InvalidScalar(SECRET), 400, "cryptographic error: invalid scalar"),
        (InvalidEncoding(SECRET), 400, "cryptographic error: malformed input"),
        (DecryptionError(SECRET), 400, "cryptographic error: decryption failed"),
        (CryptoError(SECRET), 400, "cryptographic error"),
        (SessionTimeout(SECRET), 500, "Session timeout"),
        (SessionLimitReached(SECRET), 500, "Too many sessions: a key server is busy"),
        (TimeoutError(SECRET), 500, "Session timeout"),
        (ProtocolViolation("node-a", SECRET), 500, "invalid message is received"),
        (StorageError(SECRET), 500, "Database error"),
        (CorruptRecord(SECRET), 500, "Database error"),
        (ChainUnavailable(SECRET), 500, "Internal error: no trusted blockchain client"),
        (MalformedMessage(SECRET), 500, "Internal error"),
        (ConfigError("a.b", SECRET), 500, "Internal error"),
        (SecretStoreError(SECRET), 500, "Internal error"),
        (RuntimeError(SECRET), 500, "Internal error"),
        (KeyError(SECRET), 500, "Internal error"),
    ],
)
def test_fixed_texts_and_status(error: BaseException, status: int, text: str) -> None:
    answer = error_response(error)
    assert answer == ErrorResponse(status, text)
    assert answer.body == _parity_body(text)
    assert SECRET not in answer.body.decode()


def test_body_is_a_json_string_holding_the_quoted_text() -> None:
    body = error_response(AccessDenied()).body
    assert body == b'"\\"Access denied\\""'
    assert json.loads(body) == '"Access denied"'


def test_invalid_request_carries_its_own_message() -> None:
    answer = error_response(InvalidRequest("threshold 5 is not below the number of nodes (3)"))
    assert answer.status == 400
    assert json.loads(answer.body) == '"threshold 5 is not below the number of nodes (3)"'
    assert error_response(InvalidRequest()).text == "Invalid request"


def test_parse_failure_says_what_was_wrong() -> None:
    answer = parse_failure(InvalidRequest('segment 2 (key id): "x" not hex'))
    assert answer.status == 400
    assert answer.text == 'Failed to parse request: segment 2 (key id): "x" not hex'
    assert json.loads(answer.body) == '"' + answer.text + '"'


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (AccessDenied(), AccessDenied),
        (ConsensusUnreachable(), AccessDenied),
        (ServerKeyNotFound(), ServerKeyNotFound),
        (DocumentKeyNotFound(), DocumentKeyNotFound),
        (ServerKeyAlreadyGenerated(), ServerKeyAlreadyGenerated),
        (DocumentKeyAlreadyStored(), DocumentKeyAlreadyStored),
        (InvalidRequest("bad"), InvalidRequest),
    ],
)
def test_our_client_reads_our_answers_back(error: SecretStoreError, kind: type) -> None:
    answer = error_response(error)
    assert type(error_from_response(answer.status, answer.body)) is kind


_FIXED_TEXTS = {
    "Access denied",
    "Server key with this ID is not found",
    "Session timeout",
    "invalid message is received",
    "Internal error",
    "Insufficient requester data: bad signature",
}


@given(st.text(max_size=200))
def test_only_invalid_request_messages_reach_the_client(message: str) -> None:
    for error in (
        AccessDenied(message),
        ServerKeyNotFound(message),
        SessionTimeout(message),
        ProtocolViolation("n", message),
        RuntimeError(message),
        InvalidSignature(message),
    ):
        assert error_response(error).text in _FIXED_TEXTS
    assert error_response(InvalidRequest(message)).text == (message or "Invalid request")
