"""The one mapping from secretstore errors to Parity's HTTP status codes and error bodies.

Parity's key server answered a failed request with the status below and a body that is a JSON
string holding the error's text wrapped in quotes (`format!("\\"{}\\"", err)` serialized by
serde_json): `"\\"Access denied\\""`. The texts of the errors clients can act on are Parity's
own (types/error.rs Display). Internal failures get a fixed text: no exception message, stack
trace or internal detail reaches the client.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from secretstore.errors import (
    AccessDenied,
    AuditLogError,
    ChainUnavailable,
    ConsensusUnreachable,
    CryptoError,
    DecryptionError,
    DocumentKeyAlreadyStored,
    DocumentKeyNotFound,
    ExclusiveSessionActive,
    HasActiveSessions,
    InvalidEncoding,
    InvalidPoint,
    InvalidRequest,
    InvalidScalar,
    InvalidSignature,
    NodeDisconnected,
    PlainRetrievalRefused,
    ProtocolViolation,
    ServerKeyAlreadyGenerated,
    ServerKeyNotFound,
    SessionLimitReached,
    SessionTimeout,
    StorageError,
    describe,
)
from secretstore.http.format import json_string

BAD_REQUEST: Final = 400
FORBIDDEN: Final = 403
NOT_FOUND: Final = 404
INTERNAL_SERVER_ERROR: Final = 500

#: Parity (HEAD)'s text for a request it cannot parse; we append what was wrong.
PARSE_FAILURE_TEXT: Final = "Failed to parse request"
#: The text of any failure not listed below.
INTERNAL_ERROR_TEXT: Final = "Internal error"
#: Ours: a release (or key write) this key server could not write to its audit log (500).
AUDIT_LOG_FAILURE_TEXT: Final = (
    "Database error: this key server could not write its audit log; nothing was released"
)
#: Ours: plain retrieval refused by the cluster's `require_shadow_retrieval` policy (403).
PLAIN_RETRIEVAL_REFUSED_TEXT: Final = (
    "Access denied: plain document key retrieval is disabled on this key server; "
    "use shadow retrieval (GET /shadow/{key_id}/{signature})"
)


@dataclass(frozen=True, slots=True)
class ErrorResponse:
    """The status and text of a failed request; `body` is what goes on the wire."""

    status: int
    text: str

    @property
    def body(self) -> bytes:
        """Parity's form: a JSON string whose content is the text in double quotes."""
        return json_string(f'"{self.text}"')


# Checked in order: subclasses before their bases. A None text means "the exception's own
# message", used only for InvalidRequest, whose messages describe the client's input.
_MAPPING: Final[tuple[tuple[type[BaseException], int, str | None], ...]] = (
    (PlainRetrievalRefused, FORBIDDEN, PLAIN_RETRIEVAL_REFUSED_TEXT),
    (AccessDenied, FORBIDDEN, "Access denied"),
    (ConsensusUnreachable, FORBIDDEN, "Consensus unreachable"),
    (ServerKeyNotFound, NOT_FOUND, "Server key with this ID is not found"),
    (DocumentKeyNotFound, NOT_FOUND, "Document key with this ID is not found"),
    (ServerKeyAlreadyGenerated, BAD_REQUEST, "Server key with this ID is already generated"),
    (DocumentKeyAlreadyStored, BAD_REQUEST, "Document key with this ID is already stored"),
    (InvalidRequest, BAD_REQUEST, None),
    (InvalidSignature, BAD_REQUEST, "Insufficient requester data: bad signature"),
    (InvalidPoint, BAD_REQUEST, "cryptographic error: not a point on secp256k1"),
    (InvalidScalar, BAD_REQUEST, "cryptographic error: invalid scalar"),
    (InvalidEncoding, BAD_REQUEST, "cryptographic error: malformed input"),
    (DecryptionError, BAD_REQUEST, "cryptographic error: decryption failed"),
    (CryptoError, BAD_REQUEST, "cryptographic error"),
    (ExclusiveSessionActive, INTERNAL_SERVER_ERROR, "Exclusive session active"),
    (HasActiveSessions, INTERNAL_SERVER_ERROR, "Unable to start exclusive session"),
    (
        NodeDisconnected,
        INTERNAL_SERVER_ERROR,
        "node required for this operation is currently disconnected",
    ),
    (SessionTimeout, INTERNAL_SERVER_ERROR, "Session timeout"),
    (SessionLimitReached, INTERNAL_SERVER_ERROR, "Too many sessions: a key server is busy"),
    (TimeoutError, INTERNAL_SERVER_ERROR, "Session timeout"),
    (ProtocolViolation, INTERNAL_SERVER_ERROR, "invalid message is received"),
    (AuditLogError, INTERNAL_SERVER_ERROR, AUDIT_LOG_FAILURE_TEXT),
    (StorageError, INTERNAL_SERVER_ERROR, "Database error"),
    (ChainUnavailable, INTERNAL_SERVER_ERROR, "Internal error: no trusted blockchain client"),
)


def error_response(error: BaseException) -> ErrorResponse:
    """The status and text for an error raised while serving a request."""
    for kind, status, text in _MAPPING:
        if isinstance(error, kind):
            return ErrorResponse(status, text if text is not None else _own_text(error))
    return ErrorResponse(INTERNAL_SERVER_ERROR, INTERNAL_ERROR_TEXT)


#: A response header of ours (Parity clients ignore it): why a request failed, where the
#: body keeps Parity's fixed text (e.g. which nodes are missing for "Consensus unreachable").
CAUSE_HEADER: Final = "X-Secretstore-Cause"
#: The longest cause sent in the cause header.
MAX_CAUSE_LENGTH: Final = 300
#: Errors whose body keeps Parity's fixed text but whose own message tells the client why
#: (which nodes are missing, "ECDSA needs 2t+1 holders"). It names nodes by their public ids
#: and counts, nothing else. Access and decryption failures stay opaque: never listed here.
_CAUSE_TOLD: Final = (ConsensusUnreachable,)
#: Failures of the cluster whose message names the node(s) and the reason (a peer that is
#: disconnected, did not answer, is busy, broke the protocol, or a session that timed out).
_CAUSE_TOLD_CLUSTER: Final = (
    NodeDisconnected,
    SessionTimeout,
    SessionLimitReached,
    ProtocolViolation,
)
#: The cause of a failure whose details stay in the node's log (storage, bugs).
LOGGED_CAUSE: Final = "see the key server's log"


def error_cause(error: BaseException) -> str | None:
    """What goes in the cause header for `error`: its message as one line of printable ASCII
    (at most MAX_CAUSE_LENGTH characters), or None when the cause is not told."""
    if not isinstance(error, _CAUSE_TOLD + _CAUSE_TOLD_CLUSTER):
        if error_response(error).status >= INTERNAL_SERVER_ERROR:
            return LOGGED_CAUSE  # every 5xx says where its cause is
        return None
    text = " ".join(describe(error).split())
    text = "".join(c if " " <= c <= "~" else "?" for c in text)
    if len(text) > MAX_CAUSE_LENGTH:
        text = text[: MAX_CAUSE_LENGTH - 3] + "..."
    return text or None


def parse_failure(error: InvalidRequest) -> ErrorResponse:
    """400 for a request that does not parse (Parity 1.0 sent an empty body; we say why)."""
    return ErrorResponse(BAD_REQUEST, f"{PARSE_FAILURE_TEXT}: {_own_text(error)}")


def _own_text(error: BaseException) -> str:
    return str(error) or "Invalid request"
