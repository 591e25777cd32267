"""Serving decryption and signing on any node: another key version, or a holder that serves.

A client may ask any node. The master of a document key retrieval (plain or shadow) or of a
Schnorr/ECDSA signing usually holds the key's newest version and enough holders of it take
part: then its session runs as it always did, with no extra round trip (`ResolvingMaster`
only passes events through). Otherwise — the master holds no share of the key (a newly added
node, an isolated one), its newest version has too few connected holders, or too few of them
take part (the session fails with ConsensusUnreachable) — the master negotiates the version
(key_version.py: the newest version that t+1, for ECDSA 2t+1, answering nodes hold), then

- runs its session again on that version when it holds it, or
- delegates: sends `DelegatedRequest` to one holder of that version (chosen at random), which
  runs the session as master among the holders (`DelegateSession`, delegate.py) and sends the
  result back; signatures are verified against the key before they are relayed.

| phase (ResolvingMaster)   | on                                   | next                        |
|---------------------------|--------------------------------------|-----------------------------|
| RUNNING (inner session)   | the inner session's events           | its result → ENDED          |
|                           | inner fails ConsensusUnreachable     | NEGOTIATING (once)          |
|                           | (before the session timed out)       |                             |
| NEGOTIATING               | KeyVersions from every asked node    | holds the version: RUNNING; |
|                           |                                      | else DELEGATED; no version: |
|                           |                                      | ENDED (its error)           |
| DELEGATED                 | the delegate's result (checked)      | ENDED (result)              |
|                           | the delegate's error / disconnect    | ENDED (that error)          |

A failure names its nodes: no version that can serve ends with the first session's error (it
lists the nodes lost) and why no other version helps; a timeout names whom the master waited for.

A service contract's (broadcast) shadow retrieval is delegated too (DOCUMENT_KEY_PERSONAL, with
its origin, which the delegate reads from the contract itself like every member): the delegate
and the other members each publish their own part, and the origin, holding no share, only
learns who the members are (`DelegatedPersonal`; its result is ServedByMembers).

Every node of the delegated session still recovers the requester from the requester's own
signature and asks its own access policy; the origin learns what a master learns (a plain
retrieval's document key, which it encrypts to the requester as ever).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from enum import Enum
from typing import Any, TypeVar

from secretstore.audit.receipts import (
    ReleaseReceipts,
    decode_receipts,
    verify_release_receipts,
)
from secretstore.crypto.curve import Point
from secretstore.crypto.keys import address_of, recover_public
from secretstore.crypto.schnorr import SchnorrSignature, verify_schnorr_signature
from secretstore.crypto.shadow_proofs import verify_plain_retrieval, verify_shadow_answer
from secretstore.errors import (
    ConsensusUnreachable,
    CorruptRecord,
    CryptoError,
    InvalidRequest,
    ProtocolViolation,
    ReceiptVerificationError,
    SecretStoreError,
    ServerKeyNotFound,
    SessionTimeout,
    ShadowVerificationError,
)
from secretstore.sessions import signing_ecdsa
from secretstore.sessions.base import (
    CheckAccess,
    Effect,
    Fail,
    Finish,
    Send,
    Session,
    SessionContext,
    short,
    timed_out_waiting_for,
)
from secretstore.sessions.broadcast import ServedByMembers
from secretstore.sessions.core import MasterFactory, SlaveFactory
from secretstore.sessions.decryption import RetrieveDocumentKey, ShadowResult
from secretstore.sessions.jobs import delegate
from secretstore.sessions.jobs.delegate import (
    SERVED,
    ServedRequest,
    kind_of_request,
    operation_of,
)
from secretstore.sessions.key_version import NegotiatedVersion, VersionNegotiation
from secretstore.sessions.signing_common import names
from secretstore.sessions.signing_ecdsa import SignEcdsa
from secretstore.sessions.signing_schnorr import SignSchnorr
from secretstore.storage.model import KeyShare
from secretstore.types import Hash256, MessageHash, NodeId, SessionId
from secretstore.wire.common import SessionError
from secretstore.wire.delegation import (
    DelegatedDocumentKey,
    DelegatedPersonal,
    DelegatedRequest,
    DelegatedShadow,
    DelegatedSignature,
    DelegationKind,
)
from secretstore.wire.negotiation import KeyVersions, RequestKeyVersions
from secretstore.wire.requester import ServiceOrigin

T = TypeVar("T")


class ResolvePhase(Enum):
    RUNNING = "running the session here"
    NEGOTIATING = "negotiating the key version"
    DELEGATED = "waiting for the delegate's result"
    ENDED = "ended"


class ResolvingMaster(Session):
    """The master of a decryption or signing that may negotiate, retry or delegate."""

    def __init__(
        self,
        ctx: SessionContext,
        session_id: SessionId,
        request: ServedRequest,
        *,
        share: KeyShare | None,
        connected: frozenset[NodeId],
    ) -> None:
        super().__init__(ctx, session_id, ctx.self_id, request.key_id)
        self.request = request
        self.served = SERVED[type(request)]
        self._share = share
        self._connected = connected
        self.inner: Session | None = None
        self._failed_version: bytes | None = None
        #: why the first session could not serve (kept for the error if no version can)
        self._abandoned: SecretStoreError | None = None
        self._retry = True
        self._negotiation: VersionNegotiation | None = None
        self._delegate: NodeId | None = None
        self._public: Point | None = share.public if share is not None else None
        #: the holders that keep the delegated version's commitments (its answers are proven)
        self._proven_by: frozenset[NodeId] = frozenset()
        self._threshold: int | None = share.threshold if share is not None else None
        self._holders: frozenset[NodeId] = frozenset()
        #: the version the delegate serves (its receipts must name it)
        self._delegated_version: bytes | None = None
        #: the requester's public key, once recovered (`_requester_public`)
        self._requester: Point | None = None
        self._checks = 0  # access checks the running inner session is owed
        self._stale = 0  # answers still to come for an abandoned inner session

    @property
    def phase(self) -> ResolvePhase:
        if self.finished:
            return ResolvePhase.ENDED
        if self._delegate is not None:
            return ResolvePhase.DELEGATED
        if self._negotiation is not None:
            return ResolvePhase.NEGOTIATING
        return ResolvePhase.RUNNING

    @property
    def participants(self) -> frozenset[NodeId]:
        nodes = {self.ctx.self_id}
        if self.inner is not None:
            nodes |= self.inner.participants
        if self._negotiation is not None:
            nodes |= self._negotiation.asked
        if self._delegate is not None:
            nodes.add(self._delegate)
        return frozenset(nodes)

    # --- starting -------------------------------------------------------------------------
    def start(self) -> list[Effect]:
        share = self._share
        if share is None:
            return self._negotiate()
        version = share.last_version()
        online = self._connected | {self.ctx.self_id}
        holders = sum(1 for node in version.nodes if node in online)
        if holders < self.served.signers(share.threshold):
            return self._negotiate()
        try:
            return self._run(None)
        except (ServerKeyNotFound, ConsensusUnreachable) as exc:
            self._abandoned = exc
            return self._negotiate()

    def _run(self, version: bytes | None) -> list[Effect]:
        """Start the inner session (on `version`, else the newest); raises its factory's
        errors."""
        request = self.request if version is None else replace(self.request, version=version)
        self._failed_version = version if version is not None else self._newest_hash()
        inner, effects = self.served.factory(
            self.ctx, self.session_id, request, self._share, self._connected
        )
        self.inner = inner
        return self._pass(effects)

    def _newest_hash(self) -> bytes | None:
        return self._share.last_version().hash if self._share is not None else None

    def _negotiate(self) -> list[Effect]:
        self._retry = False
        self.inner = None
        self._stale += self._checks
        self._checks = 0
        negotiation = VersionNegotiation(self.ctx.self_id, self._share, self._connected)
        self._negotiation = negotiation
        effects: list[Effect] = self.broadcast(
            RequestKeyVersions(self.session_id, self.key_id), negotiation.asked
        )
        return effects + self._maybe_chosen()

    # --- events ---------------------------------------------------------------------------
    def on_message(self, sender: NodeId, message: object) -> list[Effect]:
        if self.finished:
            return []
        if self._delegate is not None:
            return self._on_delegate_message(sender, message)
        if self._negotiation is not None:
            if isinstance(message, KeyVersions) and sender in self._negotiation.waiting:
                try:
                    self._negotiation.on_versions(sender, message.held)
                except SecretStoreError as exc:
                    return self.fail(exc)
                return self._maybe_chosen()
            return []  # a late message of the abandoned session
        assert self.inner is not None
        return self._pass(self.inner.on_message(sender, message))

    def on_access_checked(self, allowed: bool) -> list[Effect]:
        if self.finished:
            return []
        if self._stale:
            self._stale -= 1
            return []
        if self.inner is None or self._negotiation is not None or self._delegate is not None:
            return []
        self._checks -= 1
        return self._pass(self.inner.on_access_checked(allowed))

    def on_node_disconnected(self, node: NodeId) -> list[Effect]:
        if self.finished:
            return []
        if self._delegate is not None:
            if node != self._delegate:
                return []
            return self.fail(ConsensusUnreachable(f"the delegate {short(node)} disconnected"))
        if self._negotiation is not None:
            self._negotiation.on_node_gone(node, "disconnected")
            return self._maybe_chosen()
        assert self.inner is not None
        return self._pass(self.inner.on_node_disconnected(node))

    def on_peer_error(self, sender: NodeId, reason: str) -> list[Effect]:
        if self.finished:
            return []
        if self._delegate is not None:
            if sender != self._delegate:
                return []
            return self.fail(ProtocolViolation(short(sender), f"failed: {reason[:200]}"))
        if self._negotiation is not None:
            self._negotiation.on_node_gone(sender, f"failed: {reason}")
            return self._maybe_chosen()
        assert self.inner is not None
        return self._pass(self.inner.on_peer_error(sender, reason))

    def on_peer_timeout(self, sender: NodeId, reason: str) -> list[Effect]:
        if self.finished:
            return []
        if self.inner is not None and self._negotiation is None and self._delegate is None:
            return self._pass(self.inner.on_peer_timeout(sender, reason))
        return self.on_peer_error(sender, reason)

    def on_peer_refusal(self, sender: NodeId, error: SecretStoreError) -> list[Effect]:
        if self.finished:
            return []
        if self._delegate is not None:
            if sender != self._delegate:
                return []
            return self.fail(error)
        if self._negotiation is not None:
            self._negotiation.on_node_gone(sender, f"refused: {error}")
            return self._maybe_chosen()
        assert self.inner is not None
        return self._pass(self.inner.on_peer_refusal(sender, error))

    def waiting_for(self) -> frozenset[NodeId]:
        if self._delegate is not None:
            return frozenset({self._delegate})
        if self._negotiation is not None:
            return self._negotiation.waiting
        if self.inner is not None:
            return self.inner.waiting_for()
        return frozenset()

    def on_wake(self) -> list[Effect]:
        if self.finished:
            return []
        if self.inner is not None and self._negotiation is None and self._delegate is None:
            return self._pass(self.inner.on_wake())
        return []

    def on_timeout(self) -> list[Effect]:
        if self.finished:
            return []
        if self.inner is not None and self._negotiation is None and self._delegate is None:
            # No retry once the time is up (the clock has run out: a negotiation started now
            # would never time out); the inner session's own error says what it lacks.
            self._retry = False
            return self._pass(self.inner.on_timeout())
        error = timed_out_waiting_for(self.waiting_for())
        if self._delegate is None:
            error = SessionTimeout(f"no version was agreed: {error.what}", error.node)
        return self.fail(error)

    # --- internals ------------------------------------------------------------------------
    def _pass(self, effects: list[Effect]) -> list[Effect]:
        """The inner session's effects, its end turned into this session's end (or a retry
        on another version)."""
        out: list[Effect] = []
        for index, effect in enumerate(effects):
            if isinstance(effect, CheckAccess):
                self._checks += 1
            if isinstance(effect, Fail) and effect.session_id == self.session_id:
                if self._retry and isinstance(effect.error, ConsensusUnreachable):
                    self._abandoned = effect.error
                    return out + self._abandon_and_negotiate()
                self.finished = True
                return out + effects[index:]
            if isinstance(effect, Finish) and effect.session_id == self.session_id:
                self.finished = True
                return out + effects[index:]
            out.append(effect)
        return out

    def _abandon_and_negotiate(self) -> list[Effect]:
        """End the inner session on the other nodes (their side ends quietly), then ask every
        node which versions it holds."""
        inner = self.inner
        others = inner.participants - {self.ctx.self_id} if inner is not None else frozenset()
        notice = SessionError(self.session_id, "retrying with another key version")
        effects: list[Effect] = [Send(node, notice) for node in sorted(others)]
        return effects + self._negotiate()

    def _maybe_chosen(self) -> list[Effect]:
        negotiation = self._negotiation
        if negotiation is None or not negotiation.done:
            return []
        try:
            chosen = negotiation.result(self.served.signers, self.served.rule)
        except ConsensusUnreachable as exc:
            return self.fail(self._unreachable(str(exc)))
        except SecretStoreError as exc:
            return self.fail(exc)
        self._negotiation = None
        self._public = chosen.common.public
        self._threshold = chosen.common.threshold
        if self.ctx.self_id in chosen.holders:
            if chosen.version == self._failed_version:
                return self.fail(self._unreachable("no other version has enough holders"))
            try:
                return self._run(chosen.version)
            except SecretStoreError as exc:
                return self.fail(exc)
        return self._delegate_to(chosen)

    def _unreachable(self, why: str) -> ConsensusUnreachable:
        """No version can serve: the first session's failure (which names the nodes it lost),
        then `why`."""
        if self._abandoned is None:
            return ConsensusUnreachable(why)
        return ConsensusUnreachable(f"{self._abandoned}; {why}")

    def _delegate_to(self, chosen: NegotiatedVersion) -> list[Effect]:
        self._proven_by = chosen.proven_by
        holders = sorted(chosen.holders)
        index = int.from_bytes(self.ctx.rng.random_bytes(4), "big") % len(holders)
        delegate = holders[index]
        self._delegate = delegate
        request = self.request
        message_hash: MessageHash | None = None
        bound: bytes | None = None
        origin: ServiceOrigin | None = None
        if isinstance(request, RetrieveDocumentKey):
            origin = request.origin
        else:
            message_hash, bound = request.message_hash, request.bound_signature
        self._holders = frozenset(holders)
        self._delegated_version = chosen.version
        message = DelegatedRequest(
            self.session_id,
            self.key_id,
            kind_of_request(request),
            request.requester_signature,
            message_hash,
            Hash256(chosen.version),
            tuple(holders),
            bound,
            origin,
        )
        return [Send(delegate, message)]

    def _on_delegate_message(self, sender: NodeId, message: object) -> list[Effect]:
        if sender != self._delegate:
            return []  # a late message of the abandoned session or negotiation
        request = self.request
        try:
            result = self._relayed(request, message)
            receipts = self._relayed_receipts(request, message)
        except SecretStoreError as exc:
            return self.fail(exc)
        return self.finish(result, receipts)

    def _relayed(self, request: ServedRequest, message: object) -> Any:
        delegate = self._delegate or self.ctx.self_id
        kind = kind_of_request(request)
        if isinstance(message, DelegatedDocumentKey) and kind is DelegationKind.DOCUMENT_KEY:
            plain = message.proofs
            if plain is None:
                self._unproven(delegate, "a document key")
                return message.document_key
            key = self._checked(
                delegate,
                lambda requester, public: verify_plain_retrieval(
                    key_id=self.key_id, requester=requester, server_key_public=public, proofs=plain
                ),
            )
            if key != message.document_key:
                raise ProtocolViolation(
                    short(delegate), "relayed a document key its job's shadow points do not give"
                )
            return key
        if isinstance(message, DelegatedPersonal) and kind is DelegationKind.DOCUMENT_KEY_PERSONAL:
            members = message.participants
            threshold = self._threshold
            if (
                delegate not in members
                or not set(members) <= self._holders
                or list(members) != sorted(set(members))
                or (threshold is not None and len(members) != threshold + 1)
            ):
                raise ProtocolViolation(
                    short(delegate), "named members of its retrieval that cannot be its group"
                )
            return ServedByMembers(delegate, members)
        if isinstance(message, DelegatedShadow) and kind is DelegationKind.DOCUMENT_KEY_SHADOW:
            proofs = message.proofs
            if proofs is None:
                self._unproven(delegate, "a shadow answer")
            else:
                self._checked(
                    delegate,
                    lambda requester, public: verify_shadow_answer(
                        key_id=self.key_id,
                        requester=requester,
                        server_key_public=public,
                        decrypted_secret=message.decrypted_secret,
                        common_point=message.common_point,
                        sealed_shadows=message.decrypt_shadows,
                        proofs=proofs,
                    ),
                )
            return ShadowResult(
                message.decrypted_secret,
                message.common_point,
                message.decrypt_shadows,
                message.proofs,
            )
        if isinstance(message, DelegatedSignature) and isinstance(request, SignSchnorr | SignEcdsa):
            public = self._public
            assert public is not None
            if isinstance(request, SignSchnorr):
                try:
                    signature = SchnorrSignature.from_bytes(message.signature)
                except CryptoError:
                    signature = None
                if signature is None or not verify_schnorr_signature(
                    public, signature, request.message_hash
                ):
                    raise ProtocolViolation(short(delegate), "relayed a signature that fails")
                return signature
            try:
                recovered = recover_public(message.signature, request.message_hash)
            except CryptoError:
                recovered = None
            if recovered != public or len(message.signature) != signing_ecdsa.SIGNATURE_LENGTH:
                raise ProtocolViolation(short(delegate), "relayed a signature that fails")
            return message.signature
        raise ProtocolViolation(short(delegate), f"sent {type(message).__name__}")

    def _relayed_receipts(self, request: ServedRequest, message: object) -> ReleaseReceipts | None:
        """The receipts of a relayed release (None when the delegate sent none: it keeps no
        audit log), checked as the requester will check them, and more: the delegate must be
        their master, of this session and version, among the holders it was sent to and,
        with proofs, exactly the nodes the proofs name. Receipts that fail are the
        delegate's fault: it checked every participant's receipt (or should have)."""
        encoded: bytes | None = getattr(message, "receipts", None)
        if encoded is None:
            return None
        delegate = self._delegate or self.ctx.self_id
        try:
            receipts = decode_receipts(encoded)
        except CorruptRecord as exc:
            raise ProtocolViolation(
                short(delegate), f"relayed receipts that do not decode: {exc}"
            ) from None
        threshold = self._threshold
        assert threshold is not None
        proofs = getattr(message, "proofs", None)
        participants = None if proofs is None else [p.node for p in proofs.participants]
        facts = receipts.facts
        requester = address_of(self._requester_public())
        try:
            if facts.session_id != self.session_id:
                raise ReceiptVerificationError(None, "the receipts are of another session")
            if facts.key_version not in (None, self._delegated_version):
                raise ReceiptVerificationError(None, "the receipts name another key version")
            verify_release_receipts(
                receipts,
                operation=operation_of(request),
                key_id=self.key_id,
                requester=requester,
                message_hash=getattr(request, "message_hash", None),
                nodes=self._holders,
                master=delegate,
                participants=participants,
                min_participants=self.served.signers(threshold),
            )
        except ReceiptVerificationError as exc:
            whose = "" if exc.node is None else f"node {exc.node[:10]}…: "
            raise ProtocolViolation(
                short(delegate), f"relayed receipts that do not verify ({whose}{exc.what})"
            ) from None
        return receipts

    def _unproven(self, delegate: NodeId, what: str) -> None:
        """A delegated answer without proofs is relayed only for a version no holder keeps
        the commitments of (a key record written before records kept them)."""
        if self._proven_by:
            raise ProtocolViolation(
                short(delegate),
                f"relayed {what} without the proofs of its key version, whose commitments "
                f"{names(sorted(self._proven_by))} keep",
            )

    def _requester_public(self) -> Point:
        """The requester, recovered from its own signature over the key id (once: a relayed
        answer and its receipts are both checked against it)."""
        if self._requester is None:
            try:
                self._requester = recover_public(self.request.requester_signature, self.key_id)
            except CryptoError as exc:
                raise InvalidRequest(f"the requester signature does not recover: {exc}") from None
        return self._requester

    def _checked(self, delegate: NodeId, check: Callable[[Point, Point], T]) -> T:
        """`check(requester public, server key public)` of a delegated answer, its failure
        the delegate's: it checked every participant's answer (or should have)."""
        public = self._public
        assert public is not None
        requester = self._requester_public()
        try:
            return check(requester, public)
        except ShadowVerificationError as exc:
            raise ProtocolViolation(
                short(delegate), f"relayed an answer that does not verify: {exc}"
            ) from None


# --- factories -------------------------------------------------------------------------------


def start_resolving(
    ctx: SessionContext,
    session_id: SessionId,
    request: ServedRequest,
    share: KeyShare | None,
    connected: frozenset[NodeId],
) -> tuple[Session, list[Effect]]:
    """Master factory of decryption and signing: as their own factories when the request
    names a version; else a ResolvingMaster."""
    if request.version is not None:
        return SERVED[type(request)].factory(ctx, session_id, request, share, connected)
    session = ResolvingMaster(ctx, session_id, request, share=share, connected=connected)
    return session, session.start()


MASTERS: dict[type, MasterFactory] = {kind: start_resolving for kind in SERVED}
SLAVES: dict[type, SlaveFactory] = delegate.SLAVES
