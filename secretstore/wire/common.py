"""Messages every session shares."""

from __future__ import annotations

from dataclasses import dataclass

from secretstore.types import SessionId
from secretstore.wire.codec import message


@message(0x0001)
@dataclass(frozen=True, slots=True)
class SessionError:
    """The sender's side of a session failed; `reason` is for logs (never secret)."""

    session_id: SessionId
    reason: str
