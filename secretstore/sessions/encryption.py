"""Document key store: every node holding a server key stores the encrypted document key.

Request: `StoreDocumentKey(key_id, requester, common_point, encrypted_point,
bound_signature)`. Result: None (on the master, once every holder of the key stored it).

Every holder, the master included, recovers the requester from the requester proof itself,
checks the optional bound signature (and refuses its absence when its own policy requires
one), and compares the requester with the author it stored: a master cannot name an author.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from secretstore.audit.model import Operation, facts_of
from secretstore.crypto.bound import BoundOperation, store_payload
from secretstore.crypto.curve import Point
from secretstore.errors import (
    AccessDenied,
    ConsensusUnreachable,
    DocumentKeyAlreadyStored,
    ProtocolViolation,
    SecretStoreError,
    ServerKeyNotFound,
)
from secretstore.sessions.audit import record
from secretstore.sessions.base import Effect, Persist, Send, Session, SessionContext, short
from secretstore.sessions.core import MasterFactory, SlaveFactory
from secretstore.sessions.requester import check_binding, requester_of
from secretstore.storage.model import KeyShare
from secretstore.types import Address, NodeId, ServerKeyId, SessionId
from secretstore.wire.encryption import (
    CommitEncryption,
    ConfirmEncryption,
    EncryptionStored,
    InitializeEncryption,
)
from secretstore.wire.requester import RequesterProof


@dataclass(frozen=True, slots=True)
class StoreDocumentKey:
    """Store a document key, encrypted with server key `key_id` (`common_point` C = k·G,
    `encrypted_point` E = M + k·Y), for the requester that `requester` proves (its signature
    over the key id). `bound_signature`: its signature over this very store, or None for
    Parity's form. Only the key's author may store, once. Result: None."""

    key_id: ServerKeyId
    requester: RequesterProof
    common_point: Point
    encrypted_point: Point
    bound_signature: bytes | None = None


class EncryptionPhase(enum.Enum):
    WAITING_FOR_CONFIRMATIONS = "waiting for confirmations"
    WAITING_FOR_COMMIT = "waiting for commit"
    WAITING_FOR_STORED = "waiting for stored confirmations"
    FINISHED = "finished"


def updated_share(
    share: KeyShare | None, key_id: ServerKeyId, requester: Address, common: Point, encrypted: Point
) -> KeyShare:
    """`share` with the document key stored. ServerKeyNotFound without a share,
    DocumentKeyAlreadyStored if one is stored (checked first, whoever asks, as Parity does),
    AccessDenied unless `requester` is the key's author."""
    if share is None:
        raise ServerKeyNotFound(f"no server key 0x{key_id.hex()}")
    if share.has_document_key():
        raise DocumentKeyAlreadyStored("a document key is stored with this server key already")
    if share.author != requester:
        raise AccessDenied("only the author of the server key may store its document key")
    return share.with_document_key(common, encrypted)


def checked_requester(
    ctx: SessionContext, request: StoreDocumentKey | InitializeEncryption
) -> Address:
    """The requester of a store, as this node recovers it, once the request's binding passed
    this node's checks (InvalidRequest, UnboundRequest)."""
    requester = requester_of(request.requester, request.key_id)
    check_binding(
        ctx,
        requester,
        request.bound_signature,
        operation=BoundOperation.STORE_DOCUMENT_KEY,
        key_id=request.key_id,
        payload=store_payload(request.common_point, request.encrypted_point),
    )
    return requester.address


class EncryptionSession(Session):
    """One node's part in storing a document key with every holder of the server key.

    | phase (role)                       | waits for                     | next               |
    |------------------------------------|-------------------------------|--------------------|
    | WAITING_FOR_CONFIRMATIONS (master) | ConfirmEncryption from every  | Persist, send      |
    |                                    | other holder                  | Commit: WAITING_   |
    |                                    |                               | FOR_STORED         |
    | WAITING_FOR_COMMIT (slave)         | CommitEncryption (master)     | Persist, send      |
    |                                    |                               | Stored: FINISHED   |
    | WAITING_FOR_STORED (master)        | EncryptionStored from every   | FINISHED (None)    |
    |                                    | other holder                  |                    |

    Every holder checks the request (the requester it recovers itself, the bound signature
    and its own policy, the author, nothing stored yet) before anyone stores: a refusal, a
    disconnect or any other message before the commit leaves nothing stored.
    """

    WRITES_KEY = True

    def __init__(
        self,
        ctx: SessionContext,
        session_id: SessionId,
        master: NodeId,
        key_id: ServerKeyId,
        *,
        share: KeyShare,
        holders: frozenset[NodeId],
    ) -> None:
        super().__init__(ctx, session_id, master, key_id)
        self.share = share
        self.holders = holders
        self.phase = (
            EncryptionPhase.WAITING_FOR_CONFIRMATIONS
            if self.is_master
            else EncryptionPhase.WAITING_FOR_COMMIT
        )
        self._confirmed: set[NodeId] = {ctx.self_id}
        self._stored: set[NodeId] = {ctx.self_id}

    @property
    def participants(self) -> frozenset[NodeId]:
        return self.holders

    def waiting_for(self) -> frozenset[NodeId]:
        """A master waits for the holders that have not confirmed (then stored), a slave for
        the master's commit."""
        if not self.is_master:
            return frozenset({self.master})
        if self.phase is EncryptionPhase.WAITING_FOR_CONFIRMATIONS:
            return self.holders - self._confirmed
        return self.holders - self._stored

    def on_peer_refusal(self, sender: NodeId, error: SecretStoreError) -> list[Effect]:
        """Every node must agree: the master passes a node's refusal on to its client."""
        if self.is_master:
            return self.fail(error)
        return super().on_peer_refusal(sender, error)

    def on_message(self, sender: NodeId, message: object) -> list[Effect]:
        phase = self.phase
        if (
            isinstance(message, ConfirmEncryption)
            and phase is EncryptionPhase.WAITING_FOR_CONFIRMATIONS
            and sender not in self._confirmed
        ):
            self._confirmed.add(sender)
            return self._try_commit()
        if (
            isinstance(message, CommitEncryption)
            and phase is EncryptionPhase.WAITING_FOR_COMMIT
            and sender == self.master
        ):
            self.phase = EncryptionPhase.FINISHED
            return [
                *self._record(),
                Persist(self.session_id, self.key_id, self.share, create=False),
                Send(self.master, EncryptionStored(self.session_id)),
                *self.finish(),
            ]
        if (
            isinstance(message, EncryptionStored)
            and phase is EncryptionPhase.WAITING_FOR_STORED
            and sender not in self._stored
        ):
            self._stored.add(sender)
            return self._try_finish()
        return self.fail(
            ProtocolViolation(short(sender), f"sent {type(message).__name__} out of turn")
        )

    def _try_commit(self) -> list[Effect]:
        if self._confirmed != self.holders:
            return []
        self.phase = EncryptionPhase.WAITING_FOR_STORED
        effects = self._record()
        effects.append(Persist(self.session_id, self.key_id, self.share, create=False))
        effects += self.broadcast(CommitEncryption(self.session_id), self.holders)
        return effects + self._try_finish()

    def _record(self) -> list[Effect]:
        """The audit entry of this store, before the document key is stored (the requester
        is the key's author: only the author may store)."""
        facts = facts_of(
            Operation.STORE,
            self.key_id,
            session_id=self.session_id,
            master=self.master,
            requester=self.share.author,
            participants=self.holders,
            key_version=self.share.last_version().hash,
        )
        return record(self.ctx, facts)[0]

    def _try_finish(self) -> list[Effect]:
        if self._stored != self.holders:
            return []
        self.phase = EncryptionPhase.FINISHED
        return self.finish(None)


# --- factories -----------------------------------------------------------------------------


def start_encryption(
    ctx: SessionContext,
    session_id: SessionId,
    request: StoreDocumentKey,
    share: KeyShare | None,
    connected: frozenset[NodeId],
) -> tuple[Session, list[Effect]]:
    """Master: check locally, then ask every other holder of the key's newest version."""
    requester = checked_requester(ctx, request)
    stored = updated_share(
        share, request.key_id, requester, request.common_point, request.encrypted_point
    )
    holders = frozenset(stored.last_version().nodes)
    if ctx.self_id not in holders:
        raise ConsensusUnreachable("this key server does not hold the newest version of the key")
    missing = holders - connected
    if missing:
        raise ConsensusUnreachable(
            f"storing a document key needs every holder of the key; {len(missing)} of "
            f"{len(holders)} are not connected: "
            f"{', '.join(short(node) for node in sorted(missing))}"
        )
    session = EncryptionSession(
        ctx, session_id, ctx.self_id, request.key_id, share=stored, holders=holders
    )
    init = InitializeEncryption(
        session_id,
        request.key_id,
        request.requester,
        request.common_point,
        request.encrypted_point,
        request.bound_signature,
    )
    return session, session.broadcast(init, holders) + session._try_commit()


def join_encryption(
    ctx: SessionContext, sender: NodeId, message: InitializeEncryption, share: KeyShare | None
) -> tuple[Session, list[Effect]]:
    """Slave: recover the requester itself, check the request against this node's policy and
    share; confirm and wait for the commit."""
    requester = checked_requester(ctx, message)
    stored = updated_share(
        share, message.key_id, requester, message.common_point, message.encrypted_point
    )
    holders = frozenset(stored.last_version().nodes)
    if sender not in holders or ctx.self_id not in holders:
        raise ProtocolViolation(short(sender), "asked a node outside the key's newest version")
    session = EncryptionSession(
        ctx, message.session_id, sender, message.key_id, share=stored, holders=holders
    )
    return session, [Send(sender, ConfirmEncryption(message.session_id))]


MASTERS: dict[type, MasterFactory] = {StoreDocumentKey: start_encryption}
SLAVES: dict[type, SlaveFactory] = {InitializeEncryption: join_encryption}
