"""Messages every session shares."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from secretstore.errors import (
    AccessDenied,
    ConsensusUnreachable,
    DocumentKeyAlreadyStored,
    DocumentKeyNotFound,
    ExclusiveSessionActive,
    HasActiveSessions,
    InvalidRequest,
    NodeDisconnected,
    SecretStoreError,
    ServerKeyAlreadyGenerated,
    ServerKeyNotFound,
    SessionLimitReached,
    SessionTimeout,
)
from secretstore.types import SessionId
from secretstore.wire.codec import message


class ErrorKind(enum.IntEnum):
    """What kind of failure a SessionError reports, so a master can answer its client with the
    right status instead of a generic failure. GENERIC is a fault of the node itself."""

    GENERIC = 0
    INVALID_REQUEST = 1
    ACCESS_DENIED = 2
    CONSENSUS_UNREACHABLE = 3
    SERVER_KEY_NOT_FOUND = 4
    DOCUMENT_KEY_NOT_FOUND = 5
    SERVER_KEY_ALREADY_GENERATED = 6
    DOCUMENT_KEY_ALREADY_STORED = 7
    #: the node has as many sessions of this master open as it allows (the master treats the
    #: node as lost for this session)
    SESSION_LIMIT = 8
    EXCLUSIVE_SESSION_ACTIVE = 9
    HAS_ACTIVE_SESSIONS = 10
    #: a node the sender's side needs is disconnected or did not answer (the reason names it)
    NODE_DISCONNECTED = 11
    #: the sender's clock ran out first (a slave's is the shorter); `reason` names whom it
    #: was waiting for, which its master may still be waiting to hear of
    TIMED_OUT = 12


# Most specific first: ServerKeyAlreadyGenerated and DocumentKeyAlreadyStored are InvalidRequests.
_KINDS: tuple[tuple[type[SecretStoreError], ErrorKind], ...] = (
    (ServerKeyAlreadyGenerated, ErrorKind.SERVER_KEY_ALREADY_GENERATED),
    (DocumentKeyAlreadyStored, ErrorKind.DOCUMENT_KEY_ALREADY_STORED),
    (InvalidRequest, ErrorKind.INVALID_REQUEST),
    (AccessDenied, ErrorKind.ACCESS_DENIED),
    (ConsensusUnreachable, ErrorKind.CONSENSUS_UNREACHABLE),
    (ServerKeyNotFound, ErrorKind.SERVER_KEY_NOT_FOUND),
    (DocumentKeyNotFound, ErrorKind.DOCUMENT_KEY_NOT_FOUND),
    (SessionLimitReached, ErrorKind.SESSION_LIMIT),
    (ExclusiveSessionActive, ErrorKind.EXCLUSIVE_SESSION_ACTIVE),
    (HasActiveSessions, ErrorKind.HAS_ACTIVE_SESSIONS),
    (NodeDisconnected, ErrorKind.NODE_DISCONNECTED),
)


def kind_of(error: SecretStoreError) -> ErrorKind:
    if isinstance(error, SessionTimeout):
        return ErrorKind.TIMED_OUT
    for cls, kind in _KINDS:
        if isinstance(error, cls):
            return kind
    return ErrorKind.GENERIC


def error_of(kind: ErrorKind, reason: str) -> SecretStoreError | None:
    """The client-facing error a refusal of this kind stands for; None for GENERIC and
    TIMED_OUT (failures of the sender, not refusals)."""
    for cls, known in _KINDS:
        if known == kind:
            return cls(reason)
    return None


@message(0x0001)
@dataclass(frozen=True, slots=True)
class SessionError:
    """The sender's side of a session failed; `reason` is for logs (never secret), `kind`
    says whether it refused the request (and why) or failed itself."""

    session_id: SessionId
    reason: str
    kind: ErrorKind = ErrorKind.GENERIC
