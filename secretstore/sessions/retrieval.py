"""Server key retrieval: the public of a server key, for its author only (as Parity).

Request: `RetrieveServerKey(key_id, requester)`. Result: the server key public (`Point`).
The master negotiates the key version with every connected node (key_version.py), so it
answers even when it does not hold the key; slaves answer with the negotiation's reply
(`key_version.SLAVES`), so this module registers no slave factory.
"""

from __future__ import annotations

from dataclasses import dataclass

from secretstore.errors import AccessDenied
from secretstore.sessions.base import Effect, Session, SessionContext
from secretstore.sessions.core import MasterFactory, SlaveFactory
from secretstore.sessions.key_version import (
    KeyVersionSession,
    NegotiatedVersion,
    VersionNegotiation,
    open_session,
)
from secretstore.storage.model import KeyShare
from secretstore.types import Address, NodeId, ServerKeyId, SessionId


@dataclass(frozen=True, slots=True)
class RetrieveServerKey:
    """The public of server key `key_id`, for `requester` (the address recovered from the
    signature of the key id). Only the key's author may retrieve it (Parity's
    `restore_key_public`; the ACL contract is not consulted). Result: Point."""

    key_id: ServerKeyId
    requester: Address


class RetrievalSession(KeyVersionSession):
    """A key version negotiation whose result is the key's public, checked against the
    requester. Phases as KeyVersionSession; the check happens once a version is chosen:

    | phase                | waits for                     | next                           |
    |----------------------|-------------------------------|--------------------------------|
    | WAITING_FOR_VERSIONS | KeyVersions from every asked  | author == requester → FINISHED |
    |                      | node                          | (public), else AccessDenied    |
    """

    def __init__(
        self,
        ctx: SessionContext,
        session_id: SessionId,
        key_id: ServerKeyId,
        negotiation: VersionNegotiation,
        *,
        requester: Address,
    ) -> None:
        super().__init__(ctx, session_id, key_id, negotiation)
        self.requester = requester

    def conclude(self, outcome: NegotiatedVersion) -> list[Effect]:
        if outcome.common.author != self.requester:
            return self.fail(AccessDenied("only the author of a server key may retrieve it"))
        return self.finish(outcome.common.public)


def start_retrieval(
    ctx: SessionContext,
    session_id: SessionId,
    request: RetrieveServerKey,
    share: KeyShare | None,
    connected: frozenset[NodeId],
) -> tuple[Session, list[Effect]]:
    """Master: negotiate the key version, then check the requester against the author."""
    negotiation = VersionNegotiation(ctx.self_id, share, connected)
    return open_session(
        RetrievalSession(ctx, session_id, request.key_id, negotiation, requester=request.requester)
    )


MASTERS: dict[type, MasterFactory] = {RetrieveServerKey: start_retrieval}
SLAVES: dict[type, SlaveFactory] = {}
