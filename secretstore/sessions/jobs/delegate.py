"""The holder's side of a delegated request, and what both sides share: which requests can
be delegated, how each is served, and how a delegated request is rebuilt (see delegation.py
for the rule and the phase table)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from secretstore.audit.model import Operation
from secretstore.audit.receipts import ReleaseReceipts, encode_receipts
from secretstore.crypto.curve import Point
from secretstore.crypto.ecdsa import signers_needed
from secretstore.crypto.schnorr import SchnorrSignature
from secretstore.errors import ConsensusUnreachable, ProtocolViolation, SecretStoreError
from secretstore.sessions import decryption, signing_ecdsa, signing_schnorr
from secretstore.sessions.base import (
    Effect,
    Fail,
    Finish,
    Notice,
    Record,
    Send,
    Session,
    SessionContext,
    short,
)
from secretstore.sessions.broadcast import PersonalShare
from secretstore.sessions.core import MasterFactory, SlaveFactory
from secretstore.sessions.decryption import RetrieveDocumentKey, ShadowResult
from secretstore.sessions.signing_ecdsa import SignEcdsa
from secretstore.sessions.signing_schnorr import SignSchnorr
from secretstore.storage.model import KeyShare
from secretstore.types import NodeId
from secretstore.wire.common import SessionError
from secretstore.wire.delegation import (
    DelegatedDocumentKey,
    DelegatedPersonal,
    DelegatedRequest,
    DelegatedShadow,
    DelegatedSignature,
    DelegationKind,
)

ServedRequest = RetrieveDocumentKey | SignSchnorr | SignEcdsa


def _decryption_signers(threshold: int) -> int:
    return threshold + 1


@dataclass(frozen=True, slots=True)
class Served:
    """How one kind of request is served: its session's master factory and how many holders
    of a version it needs."""

    factory: MasterFactory
    signers: Callable[[int], int]
    #: how `signers` counts, for errors
    rule: str = "t+1"


SERVED: dict[type, Served] = {
    RetrieveDocumentKey: Served(decryption.start_decryption, _decryption_signers),
    SignSchnorr: Served(signing_schnorr.start_schnorr_signing, _decryption_signers),
    SignEcdsa: Served(signing_ecdsa.start_ecdsa_signing, signers_needed, "ECDSA needs 2t+1"),
}


def kind_of_request(request: ServedRequest) -> DelegationKind:
    if isinstance(request, RetrieveDocumentKey):
        if request.origin is not None:
            return DelegationKind.DOCUMENT_KEY_PERSONAL
        return DelegationKind.DOCUMENT_KEY_SHADOW if request.shadow else DelegationKind.DOCUMENT_KEY
    if isinstance(request, SignSchnorr):
        return DelegationKind.SCHNORR
    return DelegationKind.ECDSA


def operation_of(request: ServedRequest) -> Operation:
    """The audited operation of a request that can be delegated (what its receipts name)."""
    if isinstance(request, RetrieveDocumentKey):
        return Operation.SHADOW_RETRIEVAL if request.shadow else Operation.RETRIEVAL
    return Operation.SCHNORR if isinstance(request, SignSchnorr) else Operation.ECDSA


def request_of(message: DelegatedRequest) -> ServedRequest:
    """The request a delegate serves, pinned to the delegated version."""
    kind = message.kind
    if kind is DelegationKind.DOCUMENT_KEY_PERSONAL:
        if message.origin is None or message.requester_signature:
            raise ProtocolViolation(
                "origin", "delegated a service contract's retrieval without its origin"
            )
        return RetrieveDocumentKey(
            message.key_id, b"", True, message.version, origin=message.origin
        )
    if message.origin is not None:
        raise ProtocolViolation("origin", f"delegated a {kind.name} request with an origin")
    if kind in (DelegationKind.DOCUMENT_KEY, DelegationKind.DOCUMENT_KEY_SHADOW):
        shadow = kind is DelegationKind.DOCUMENT_KEY_SHADOW
        return RetrieveDocumentKey(
            message.key_id, message.requester_signature, shadow, message.version
        )
    if message.message_hash is None:
        raise ProtocolViolation("origin", "delegated a signing without a message hash")
    signing = SignSchnorr if kind is DelegationKind.SCHNORR else SignEcdsa
    return signing(
        message.key_id,
        message.requester_signature,
        message.message_hash,
        message.version,
        message.bound_signature,
    )


class DelegateSession(Session):
    """A holder serving a request another node delegated: the inner master session runs
    here (this node is its master); its result goes to the origin. A service contract's
    retrieval ends here with this node's PersonalShare (this node publishes it, as every
    member does); the origin is only told who the members are. Another holder that opens
    the same session as its master (the inner session's first message, which only a master
    sends) ends it naming that holder and the origin: the origin delegated the request twice,
    or the holder lies, and this node cannot tell which."""

    def __init__(
        self, ctx: SessionContext, origin: NodeId, message: DelegatedRequest, inner: Session
    ) -> None:
        super().__init__(ctx, message.session_id, ctx.self_id, message.key_id)
        self.origin = origin
        self.message = message
        self.inner = inner
        #: the type of the first message the inner session sent (its opening request)
        self._opening: type | None = None
        #: every participant's receipt of the release, from the inner master's Record
        self._receipts: ReleaseReceipts | None = None

    @property
    def participants(self) -> frozenset[NodeId]:
        # every holder the origin named: one the inner session has not asked (yet) may still
        # open the same session as its master, which is how a double delegation shows
        return self.inner.participants | {self.origin} | set(self.message.holders)

    def on_message(self, sender: NodeId, message: object) -> list[Effect]:
        if self.finished:
            return []
        if sender == self.origin:
            if message == self.message:
                return []
            return self.fail(ProtocolViolation(short(sender), f"sent {type(message).__name__}"))
        if type(message) is self._opening:
            return self.fail(
                ProtocolViolation(
                    f"{short(self.origin)}, {short(sender)}",
                    f"{short(sender)} opened this session as its master too (sent "
                    f"{type(message).__name__}): the origin {short(self.origin)} delegated it "
                    f"to both of us, or {short(sender)} lies",
                )
            )
        if sender not in self.inner.participants:
            return [Notice(f"node {short(sender)} is not in session {self.session_id[:4].hex()}")]
        return self.relay(self.inner.on_message(sender, message))

    def on_access_checked(self, allowed: bool) -> list[Effect]:
        if self.finished:
            return []
        return self.relay(self.inner.on_access_checked(allowed))

    def on_node_disconnected(self, node: NodeId) -> list[Effect]:
        if self.finished:
            return []
        if node == self.origin:
            return self.fail(ConsensusUnreachable(f"the origin {short(node)} disconnected"))
        return self.relay(self.inner.on_node_disconnected(node))

    def on_peer_error(self, sender: NodeId, reason: str) -> list[Effect]:
        if self.finished:
            return []
        if sender == self.origin:
            return self._origin_gave_up(reason)
        return self.relay(self.inner.on_peer_error(sender, reason))

    def on_peer_timeout(self, sender: NodeId, reason: str) -> list[Effect]:
        if self.finished:
            return []
        if sender == self.origin:
            return self._origin_gave_up(reason)
        return self.relay(self.inner.on_peer_timeout(sender, reason))

    def _origin_gave_up(self, reason: str) -> list[Effect]:
        """End quietly, and end the inner session on its other nodes too (they would wait
        for this node until their clocks ran out), naming the origin."""
        notice = SessionError(
            self.session_id, f"the origin {short(self.origin)} gave up: {reason[:200]}"
        )
        others = self.inner.participants - {self.ctx.self_id, self.origin}
        return [Send(node, notice) for node in sorted(others)] + self.finish()

    def on_peer_refusal(self, sender: NodeId, error: SecretStoreError) -> list[Effect]:
        if self.finished:
            return []
        return self.relay(self.inner.on_peer_refusal(sender, error))

    def on_timeout(self) -> list[Effect]:
        if self.finished:
            return []
        return self.relay(self.inner.on_timeout())

    def relay(self, effects: list[Effect]) -> list[Effect]:
        """The inner session's effects; its result goes to the origin."""
        out: list[Effect] = []
        for effect in effects:
            if isinstance(effect, Record) and effect.session_id == self.session_id:
                self._receipts = effect.receipts or self._receipts
            if isinstance(effect, Finish) and effect.session_id == self.session_id:
                out.append(Send(self.origin, self._result_message(effect.result)))
                mine = effect.result if isinstance(effect.result, PersonalShare) else None
                return out + self.finish(mine)
            if isinstance(effect, Fail) and effect.session_id == self.session_id:
                return out + self.fail(effect.error)
            if isinstance(effect, Send) and self._opening is None:
                self._opening = type(effect.message)
            out.append(effect)
        return out

    def _result_message(self, result: object) -> object:
        sid = self.session_id
        receipts = None if self._receipts is None else encode_receipts(self._receipts)
        if isinstance(result, PersonalShare):
            return DelegatedPersonal(sid, result.participants)
        if isinstance(result, ShadowResult):
            return DelegatedShadow(
                sid,
                result.decrypted_secret,
                result.common_point,
                tuple(result.decrypt_shadows),
                result.proofs,
                receipts,
            )
        if isinstance(result, Point):
            inner = self.inner
            proofs = inner.plain_proofs if isinstance(inner, decryption.DecryptionMaster) else None
            return DelegatedDocumentKey(sid, result, proofs, receipts)
        if isinstance(result, SchnorrSignature):
            return DelegatedSignature(sid, result.to_bytes(), receipts)
        assert isinstance(result, bytes)
        return DelegatedSignature(sid, result, receipts)


# --- factory -------------------------------------------------------------------------------


def join_delegated(
    ctx: SessionContext, sender: NodeId, message: DelegatedRequest, share: KeyShare | None
) -> tuple[Session, list[Effect]]:
    """Slave factory: serve a delegated request among the holders the origin found."""
    holders = frozenset(message.holders)
    if sender in holders or ctx.self_id not in holders:
        raise ProtocolViolation(short(sender), "delegated to a node outside the holders")
    request = request_of(message)
    inner, effects = SERVED[type(request)].factory(
        ctx, message.session_id, request, share, holders | {ctx.self_id}
    )
    session = DelegateSession(ctx, sender, message, inner)
    return session, session.relay(effects)


SLAVES: dict[type, SlaveFactory] = {DelegatedRequest: join_delegated}
