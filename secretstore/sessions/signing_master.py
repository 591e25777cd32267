"""The master half both signing sessions build on: access consensus, share publics, one
attempt of nonce generations per selected group, re-selection on loss, blame reports.

A member's SigningNodeLost says only that its own link to another member broke: the master
records the broken link and selects a group without both ends (AccessConsensus), so a member
that reports everyone lost excludes itself, never an honest node.

A subclass adds its signing steps through the hooks `_init_message`, `_reset_job`,
`_on_nonces_done`, `_on_job_message`, `_job_phase`, `_missing` and `_check_hash` (see
SchnorrSigningMaster and EcdsaSigningMaster); what tells the schemes apart on both halves
(`OPERATION`, `BOUND_OPERATION`, `_signers_needed`, `_nonce_specs`) comes from its scheme's
class (SchnorrSigning, EcdsaSigning). `open` is the master factory of every scheme.
"""

from __future__ import annotations

from abc import abstractmethod

from secretstore.audit.model import AuditFacts
from secretstore.crypto.bound import signing_payload
from secretstore.crypto.curve import Point
from secretstore.errors import ProtocolViolation, SecretStoreError
from secretstore.sessions.audit import master_record, receipt_problem
from secretstore.sessions.base import (
    Effect,
    Send,
    Session,
    SessionContext,
    TimeoutReports,
    short,
)
from secretstore.sessions.consensus import (
    AccessConsensus,
    AskOthers,
    ConsensusFailed,
    Decision,
    GroupSelected,
    Requester,
    recover_requester_of,
    require_share,
    select_version,
)
from secretstore.sessions.requester import check_binding
from secretstore.sessions.signing_common import (
    Nonces,
    SigningHalf,
    SigningPhase,
    SigningRequest,
    check_message_hash,
    feed_nonce_message,
    misfit_error,
    names,
    signing_facts,
)
from secretstore.storage.model import KeyShare, KeyShareVersion
from secretstore.types import BlockRef, MessageHash, NodeId, ServerKeyId, SessionId
from secretstore.wire.consensus import AccessRequest, ConsensusResponse
from secretstore.wire.signing import (
    SigningFault,
    SigningNodeLost,
    SigningNonceMessage,
    SigningNonceRequest,
    SigningSharePublic,
)


class SigningMaster(SigningHalf):
    """Master half. `needed` nodes (the master among them) run each attempt."""

    def __init__(
        self,
        ctx: SessionContext,
        session_id: SessionId,
        key_id: ServerKeyId,
        *,
        share: KeyShare,
        version: KeyShareVersion,
        requester: Requester,
        requester_signature: bytes,
        message_hash: MessageHash,
        needed: int,
        connected: frozenset[NodeId],
        bound_signature: bytes | None = None,
        block: BlockRef | None = None,
    ) -> None:
        super().__init__(ctx, session_id, ctx.self_id, key_id)
        self.share = share
        self.version = version
        self.threshold = share.threshold
        self.message_hash = message_hash
        self.id_numbers = version.id_numbers_map()
        self.requester = requester
        #: (attempt, member) -> the member's receipt of that attempt's signing
        self.receipts: dict[tuple[int, NodeId], bytes | None] = {}
        self._signature = requester_signature
        #: forwarded to every candidate, which checks it itself (sessions/requester.py)
        self._bound_signature = bound_signature
        self.consensus = AccessConsensus(
            ctx,
            session_id,
            key_id,
            requester=requester.address,
            version=version,
            connected=connected,
            needed=needed,
            block=block,
        )
        #: Y_i = s_i·G of every candidate that reported it (this node's own included)
        self.share_publics: dict[NodeId, Point] = {
            ctx.self_id: Point.base_mul(version.secret_share)
        }
        self.nonces = None
        #: what members that timed out first reported
        self._timeouts = TimeoutReports()
        #: the consensus failed on a member's timeout; the session ends once every node it
        #: waits for has reported, or at its own timeout
        self._doomed: SecretStoreError | None = None
        self._reset_job()

    @classmethod
    def open(
        cls,
        ctx: SessionContext,
        session_id: SessionId,
        request: SigningRequest,
        share: KeyShare | None,
        connected: frozenset[NodeId],
    ) -> tuple[Session, list[Effect]]:
        """The master factory: the session for a client's `request`, started. Raises
        InvalidRequest (signature, message hash, binding), ServerKeyNotFound (no share of the
        key or version here), ConsensusUnreachable (too few holders connected, or as
        `_signers_needed` says)."""
        requester = recover_requester_of(request.requester_signature, request.key_id)
        message_hash = check_message_hash(request.message_hash)
        check_binding(
            ctx,
            requester,
            request.bound_signature,
            operation=cls.BOUND_OPERATION,
            key_id=request.key_id,
            payload=signing_payload(message_hash),
        )
        cls._check_hash(message_hash)
        held = require_share(share, request.key_id)
        version = select_version(held, request.key_id, ctx.self_id, request.version)
        session = cls(
            ctx,
            session_id,
            request.key_id,
            share=held,
            version=version,
            requester=requester,
            requester_signature=request.requester_signature,
            message_hash=message_hash,
            needed=cls._signers_needed(held, request.key_id, len(version.nodes)),
            connected=connected,
            bound_signature=request.bound_signature,
            block=request.block,
        )
        return session, session.start()

    # --- hooks --------------------------------------------------------------------------
    @classmethod
    def _check_hash(cls, message_hash: MessageHash) -> None:
        """Raise InvalidRequest for a message hash this scheme cannot sign (any by default)."""

    @abstractmethod
    def _init_message(self, access: AccessRequest) -> object:
        """The initialising message sent to every candidate."""

    @abstractmethod
    def _reset_job(self) -> None:
        """Set up (forget) the signing state of an attempt; also called on construction."""

    @abstractmethod
    def _on_job_message(self, sender: NodeId, message: object) -> list[Effect] | None:
        """A session-specific message; None when the type is not one."""

    @abstractmethod
    def _missing(self, nonces: Nonces) -> list[NodeId]:
        """Members whose next answer has not come (for a timeout)."""

    # --- state ----------------------------------------------------------------------------
    def _phase_before_nonces(self) -> SigningPhase:
        return SigningPhase.WAITING_FOR_ACCESS

    @property
    def participants(self) -> frozenset[NodeId]:
        return self.consensus.in_play | {self.ctx.self_id}

    def access_request(self) -> AccessRequest:
        return AccessRequest(
            self._signature,
            self.version.hash,
            bound_signature=self._bound_signature,
            block=self.consensus.block,
        )

    def start(self) -> list[Effect]:
        access = self.access_request()
        return self._start_presigned(access) or self.consensus.start(self._init_message(access))

    def _start_presigned(self, access: AccessRequest) -> list[Effect] | None:
        """Hook: start with a job made ahead (ECDSA's presignatures); None when there is
        none (the consensus then asks every candidate)."""
        return None

    def on_wake(self) -> list[Effect]:
        """The group asked first is slow: ask the candidates not asked yet."""
        if self.finished:
            return []
        return self._guarded(lambda: self._follow(self.consensus.on_slow()))

    # --- events ---------------------------------------------------------------------------
    def on_access_checked(self, allowed: bool) -> list[Effect]:
        if self.finished:
            return []
        return self._guarded(lambda: self._follow(self.consensus.on_own_access(allowed)))

    def on_node_disconnected(self, node: NodeId) -> list[Effect]:
        return self._guarded(lambda: self._lose(node, "disconnected"))

    def on_peer_timeout(self, sender: NodeId, reason: str) -> list[Effect]:
        """A member's clock ran out first: it is lost, and another group is selected when one
        can be. When none can, the master keeps the members' timeout reports until every node
        it waits for has reported (a member that waited for another names it), then fails
        with all of them."""
        if self.finished:
            return []
        self._timeouts.add(sender, reason)
        if self._doomed is None:
            why = f"timed out first: {reason[:200]}{self.still_waiting(sender)}"
            decision = self.consensus.on_node_lost(sender, why)
            if not isinstance(decision, ConsensusFailed):
                if self.nonces is not None and sender in self.nonces.nodes:
                    self.nonces = None
                    self._reset_job()
                return self._guarded(lambda: self._follow(decision))
            self._doomed = decision.error
        if self._timeouts.cover(self.waiting_for()):
            return self.fail(self._doomed_error())
        return []

    def _doomed_error(self) -> SecretStoreError:
        assert self._doomed is not None
        return type(self._doomed)(f"{self._doomed} ({self._timeouts.text()})")

    def on_peer_error(self, sender: NodeId, reason: str) -> list[Effect]:
        why = f"failed: {reason[:200]}{self.still_waiting(sender)}"
        return self._guarded(lambda: self._lose(sender, why))

    def waiting_for(self) -> frozenset[NodeId]:
        """The candidates yet to answer, then the members whose nonce generation messages or
        next answer are due."""
        nonces = self.nonces
        if nonces is None:
            return self.consensus.pending - {self.ctx.self_id}
        if not nonces.done:
            return nonces.waiting_for()
        return frozenset(self._missing(nonces)) - {self.ctx.self_id}

    def on_timeout(self) -> list[Effect]:
        if self.finished:
            return []
        if self._doomed is not None:
            return self.fail(self._doomed_error())
        nonces = self.nonces
        if nonces is None:
            return self.fail(self.consensus.timeout_error())
        if not nonces.done:
            what = "did not send its nonce generation messages before the session timed out"
        else:
            what = "did not answer before the session timed out"
        if self._timeouts:
            what += f" ({self._timeouts.text()})"
        silent = sorted(self.waiting_for())
        return self.fail(ProtocolViolation(names(silent) or short(self.ctx.self_id), what))

    # --- for subclasses -------------------------------------------------------------------
    def current(self, sender: NodeId, attempt: int) -> Nonces | None:
        """The running attempt if `attempt` names it (and `sender` is in its group); None
        for an abandoned attempt; ProtocolViolation for one never started or a stranger."""
        if not 1 <= attempt <= self.consensus.attempt:
            raise ProtocolViolation(short(sender), f"sent a message of attempt {attempt}")
        nonces = self.nonces
        if nonces is None or attempt != nonces.attempt:
            return None
        if sender not in nonces.nodes:
            raise ProtocolViolation(short(sender), f"is not in the group of attempt {attempt}")
        return nonces

    def release_facts(self, group: tuple[NodeId, ...]) -> AuditFacts:
        return signing_facts(
            self.OPERATION,
            self.key_id,
            session_id=self.session_id,
            master=self.ctx.self_id,
            requester=self.requester.address,
            group=group,
            version=self.version,
            message_hash=self.message_hash,
            block=self.consensus.block,
        )

    def take_receipt(self, sender: NodeId, nonces: Nonces, receipt: bytes | None) -> None:
        """Keep a member's receipt of the running attempt; ProtocolViolation naming it when
        the receipt is missing or not its signature of this signing."""
        problem = receipt_problem(self.ctx, sender, self.release_facts(nonces.nodes), receipt)
        if problem is not None:
            raise ProtocolViolation(short(sender), problem)
        self.receipts[(nonces.attempt, sender)] = receipt

    def complete(self, result: object, group: tuple[NodeId, ...], attempt: int) -> list[Effect]:
        """End well: record the release (with every member's receipt), tell the candidates,
        then hand `result` to the caller."""
        receipts = {node: self.receipts.get((attempt, node)) for node in group}
        recorded = master_record(self.ctx, self.release_facts(group), receipts)
        return recorded + self.consensus.completion() + self.finish(result)

    def misfit(self, group: tuple[NodeId, ...]) -> list[Effect]:
        """Fail: the checked shares of `group` do not combine to a valid signature."""
        return self.fail(
            misfit_error(
                threshold=self.threshold,
                key_public=self.share.public,
                share_publics=self.share_publics,
                id_numbers=self.id_numbers,
                group=group,
                self_id=self.ctx.self_id,
            )
        )

    def share_public_of(self, node: NodeId) -> Point:
        """The share public `node` reported; ProtocolViolation if it has not."""
        public = self.share_publics.get(node)
        if public is None:
            raise ProtocolViolation(short(node), "sent a signature share before its share public")
        return public

    # --- internals ------------------------------------------------------------------------
    def _on_access_answer(self, sender: NodeId, message: ConsensusResponse) -> list[Effect] | None:
        """Hook: a candidate's access answer, seen first by the subclass (ECDSA, when it is
        from a member of a presigned group); None to handle it as usual."""
        return None

    def _dispatch(self, sender: NodeId, message: object) -> list[Effect]:
        if isinstance(message, ConsensusResponse):
            handled = self._on_access_answer(sender, message)
            if handled is not None:
                return handled
            return self._follow(self.consensus.on_response(sender, message))
        if isinstance(message, SigningSharePublic):
            known = self.share_publics.setdefault(sender, message.share_public)
            if known != message.share_public:
                raise ProtocolViolation(short(sender), "sent two different share publics")
            return []
        if isinstance(message, SigningNonceMessage):
            nonces = self.current(sender, message.attempt)
            if nonces is None:
                return []
            return feed_nonce_message(nonces, sender, message) + self._progress()
        if isinstance(message, SigningFault):
            if self.current(sender, message.attempt) is None:
                return []
            what = message.what[:200]
            return self.fail(
                ProtocolViolation(short(message.culprit), f"{what} (seen by {short(sender)})")
            )
        if isinstance(message, SigningNodeLost):
            return self._on_link_lost(sender, message)
        effects_or_none = self._on_job_message(sender, message)
        if effects_or_none is None:
            raise ProtocolViolation(short(sender), f"sent {type(message).__name__}")
        return effects_or_none

    def _on_link_lost(self, sender: NodeId, report: SigningNodeLost) -> list[Effect]:
        """A member can only know its own links: its report breaks the link sender–node (the
        next group holds not both), and a report naming the master is the sender's own loss.
        It never loses the named node by itself."""
        nonces = self.current(sender, report.attempt)
        if nonces is None:
            return []  # a report of an abandoned attempt
        node = report.node
        if node == sender:
            raise ProtocolViolation(short(sender), "reported losing its link to itself")
        if node not in nonces.nodes:
            raise ProtocolViolation(short(sender), "reported losing a node outside its group")
        if node == self.ctx.self_id:
            return self._lose(sender, "lost its link to the master")
        self.nonces = None
        self._reset_job()
        why = f"lost its link to {short(node)}"
        return self._follow(self.consensus.on_link_broken(sender, node, why))

    def _lose(self, node: NodeId, why: str) -> list[Effect]:
        if self.nonces is not None and node in self.nonces.nodes and node != self.ctx.self_id:
            self.nonces = None
            self._reset_job()
        return self._follow(self.consensus.on_node_lost(node, why))

    def _follow(self, decision: Decision) -> list[Effect]:
        nonces = self.nonces
        if nonces is not None and (
            self.consensus.group != nonces.nodes or self.consensus.attempt != nonces.attempt
        ):
            self.nonces = None  # the consensus gave the running group up
            self._reset_job()
        if isinstance(decision, ConsensusFailed):
            return self.fail(decision.error)
        if isinstance(decision, GroupSelected):
            return self._begin(decision)
        if isinstance(decision, AskOthers):
            init = self._init_message(self.access_request())
            return [Send(node, init) for node in decision.nodes]
        return []

    def _begin(self, group: GroupSelected) -> list[Effect]:
        self._reset_job()
        nonces = self._nonce_runs(group.attempt, group.nodes)
        self.nonces = nonces
        request = SigningNonceRequest(self.session_id, group.attempt, group.nodes)
        effects: list[Effect] = self.broadcast(request, group.nodes)
        effects += nonces.start()
        return effects + self._progress()
