"""The slave half both signing sessions build on: the access check, the share public, the
nonce generations of each attempt the master starts, and reports of faults and losses.

A loss report (SigningNodeLost) is about this node's own link only: sent when a member of the
running attempt disconnects, or at once instead of starting an attempt whose group holds a
peer this node lost earlier in the session.

A subclass adds its signing steps through the hooks `_reset_job`, `_on_nonces_done`,
`_on_job_message`, `_job_phase` and `_check_hash` (see SchnorrSigningSlave and
EcdsaSigningSlave); what tells the schemes apart comes from its scheme's class, as for the
master (signing_master.py). `join` is the slave factory of every scheme.
"""

from __future__ import annotations

from abc import abstractmethod
from dataclasses import replace
from itertools import pairwise
from typing import Any

from secretstore.crypto.bound import signing_payload
from secretstore.crypto.curve import Point
from secretstore.errors import ProtocolViolation, SecretStoreError
from secretstore.sessions.audit import record
from secretstore.sessions.base import Effect, Send, Session, SessionContext, lost_node, short
from secretstore.sessions.consensus import AccessCheck, max_attempts, require_share
from secretstore.sessions.requester import check_binding
from secretstore.sessions.signing_common import (
    Nonces,
    SigningHalf,
    SigningInit,
    SigningPhase,
    culprit_of,
    feed_nonce_message,
    signing_facts,
    what_of,
)
from secretstore.storage.model import KeyShare
from secretstore.types import MessageHash, NodeId
from secretstore.wire.consensus import ConsensusCompleted
from secretstore.wire.signing import (
    SigningFault,
    SigningNodeLost,
    SigningNonceMessage,
    SigningNonceRequest,
    SigningSharePublic,
)

#: DKG messages a node sends per generation (keys, share proof, agreement): the bound of
#: what a slave keeps from one peer for an attempt it has not started yet.
MESSAGES_PER_GENERATION = 3


class SigningSlave(SigningHalf):
    """Slave half: a candidate of someone else's signing session, which `init` (the master's
    initialising message) names with its key and message hash."""

    def __init__(
        self,
        ctx: SessionContext,
        master: NodeId,
        init: SigningInit,
        *,
        share: KeyShare,
        check: AccessCheck,
        needed: int,
    ) -> None:
        super().__init__(ctx, init.session_id, master, init.key_id)
        self._init = init
        self.share = share
        self.check = check
        self.version = check.version
        self.threshold = share.threshold
        self.message_hash = init.message_hash
        self.needed = needed
        self.id_numbers = self.version.id_numbers_map()
        self.nonces = None
        self._request: SigningNonceRequest | None = None
        self._early: dict[int, list[tuple[NodeId, SigningNonceMessage]]] = {}
        #: peers this node lost its link to during the session (reported when grouped with)
        self._unreachable: set[NodeId] = set()
        self._reset_job()

    @classmethod
    def join(
        cls, ctx: SessionContext, sender: NodeId, message: SigningInit, share: KeyShare | None
    ) -> tuple[Session, list[Effect]]:
        """The slave factory: this node's session for the master `sender`'s initialising
        `message`, its access check started; the errors it raises reach the master as a
        SessionError."""
        held = require_share(share, message.key_id)
        check = AccessCheck.of(ctx, sender, message, held)
        check_binding(
            ctx,
            check.requester,
            message.access.bound_signature,
            operation=cls.BOUND_OPERATION,
            key_id=message.key_id,
            payload=signing_payload(message.message_hash),
        )
        cls._check_hash(sender, message.message_hash)
        needed = cls._signers_needed(held, message.key_id, len(check.version.nodes))
        session = cls(ctx, sender, message, share=held, check=check, needed=needed)
        return session, check.start()

    # --- hooks --------------------------------------------------------------------------
    @classmethod
    def _check_hash(cls, master: NodeId, message_hash: MessageHash) -> None:
        """Raise ProtocolViolation naming `master` for a message hash this scheme cannot
        sign (any by default)."""

    @abstractmethod
    def _reset_job(self) -> None: ...

    @abstractmethod
    def _on_job_message(self, message: object) -> list[Effect] | None:
        """A session-specific message from the master; None when the type is not one."""

    # --- state ----------------------------------------------------------------------------
    @property
    def attempt(self) -> int:
        """The attempt of the latest nonce request (0 before the first)."""
        return 0 if self._request is None else self._request.attempt

    def _phase_before_nonces(self) -> SigningPhase:
        if self.check.allowed is None:
            return SigningPhase.WAITING_FOR_ACCESS_CHECK
        return SigningPhase.WAITING_FOR_NONCE_REQUEST

    @property
    def participants(self) -> frozenset[NodeId]:
        # any holder of the version may be in a group with this node
        return frozenset(self.version.nodes) | {self.master, self.ctx.self_id}

    def waiting_for(self) -> frozenset[NodeId]:
        """Its own access policy, then the members whose nonce messages are due, else the
        master's next step."""
        if self.check.allowed is None:
            return frozenset({self.ctx.self_id})
        nonces = self.nonces
        if nonces is not None and not nonces.done:
            waiting = nonces.waiting_for()
            if waiting:
                return waiting
        return frozenset({self.master})

    # --- events ---------------------------------------------------------------------------
    def on_access_checked(self, allowed: bool) -> list[Effect]:
        if self.finished:
            return []
        effects = self.check.on_access_checked(allowed)
        if not allowed:
            return effects + self.finish()
        if effects:
            public = Point.base_mul(self.version.secret_share)
            effects.append(Send(self.master, SigningSharePublic(self.session_id, public)))
        return effects

    def on_node_disconnected(self, node: NodeId) -> list[Effect]:
        if self.finished:
            return []
        if node == self.master:
            return self.fail(lost_node(node))
        self._unreachable.add(node)
        nonces = self.nonces
        if nonces is None or node not in nonces.nodes:
            return []
        self.nonces = None
        self._reset_job()
        return [Send(self.master, SigningNodeLost(self.session_id, nonces.attempt, node))]

    def on_peer_error(self, sender: NodeId, reason: str) -> list[Effect]:
        if sender == self.master and not self.finished:
            return self.finish()  # the master gave up; nothing is left to do here
        return []

    # --- for subclasses -------------------------------------------------------------------
    def mark_attempt(self, attempt: int, nodes: tuple[NodeId, ...]) -> None:
        """Record an attempt this node took part in without a nonce request (a presigned
        one): later requests must be for newer attempts."""
        self._request = SigningNonceRequest(self.session_id, attempt, nodes)

    def violation(self, what: str) -> ProtocolViolation:
        return ProtocolViolation(short(self.master), what)

    def release(self, nonces: Nonces, share_message: Any) -> list[Effect]:
        """Send this node's signature share (a message with a `receipt` field) to the
        master, recorded in the audit log first, with this node's receipt in it."""
        facts = signing_facts(
            self.OPERATION,
            self.key_id,
            session_id=self.session_id,
            master=self.master,
            requester=self.check.requester.address,
            group=nonces.nodes,
            version=self.version,
            message_hash=self.message_hash,
            block=self.check.block,
        )
        recorded, receipt = record(self.ctx, facts)
        return [*recorded, Send(self.master, replace(share_message, receipt=receipt))]

    # --- internals ------------------------------------------------------------------------
    def _dispatch(self, sender: NodeId, message: object) -> list[Effect]:
        if isinstance(message, SigningNonceMessage):
            return self._on_nonce_message(sender, message)
        if sender != self.master:
            return self._report(sender, f"sent {type(message).__name__} to a member")
        if isinstance(message, ConsensusCompleted):
            return self.finish()
        if isinstance(message, SigningNonceRequest):
            return self._on_nonce_request(message)
        if message == self._init:
            return []  # the initialising message again
        effects = self._on_job_message(message)
        if effects is None:
            raise self.violation(f"sent {type(message).__name__}")
        return effects

    def _on_nonce_request(self, request: SigningNonceRequest) -> list[Effect]:
        if self.check.allowed is not True:
            raise self.violation("sent a nonce request to a node that did not allow access")
        last = self._request
        if last is not None and request.attempt <= last.attempt:
            if request == last:
                return []  # the same request again
            raise self.violation(f"sent attempt {request.attempt} after {last.attempt}")
        problem = self._group_problem(request.nodes)
        if problem is not None:
            raise self.violation(problem)
        self._request = request
        self._reset_job()
        self.nonces = None
        early = self._early.pop(request.attempt, [])
        for number in [n for n in self._early if n < request.attempt]:
            del self._early[number]
        lost = [node for node in request.nodes if node in self._unreachable]
        if lost:  # this node cannot take part with them: say so instead of starting
            return [
                Send(self.master, SigningNodeLost(self.session_id, request.attempt, node))
                for node in lost
            ]
        self.nonces = self._nonce_runs(request.attempt, request.nodes)
        effects: list[Effect] = []
        effects += self.nonces.start()
        for sender, message in early:
            effects += self._feed(sender, message)
        return effects + self._progress()

    def _group_problem(self, nodes: tuple[NodeId, ...]) -> str | None:
        if len(nodes) != self.needed:
            return f"sent a group of {len(nodes)} nodes, not {self.needed}"
        if any(a >= b for a, b in pairwise(nodes)):
            return "sent a group that is not in ascending order"
        if self.ctx.self_id not in nodes or self.master not in nodes:
            return "sent a group without this node or itself"
        if any(node not in self.id_numbers for node in nodes):
            return "sent a group with a node outside the key version"
        return None

    def _on_nonce_message(self, sender: NodeId, message: SigningNonceMessage) -> list[Effect]:
        if message.attempt < self.attempt:
            return []  # an abandoned attempt
        if message.attempt == self.attempt:
            return self._feed(sender, message)
        # a peer that got its nonce request before this node did: keep it for later
        kept = self._early.get(message.attempt, [])
        from_sender = sum(1 for node, _ in kept if node == sender)
        limit = MESSAGES_PER_GENERATION * len(self._nonce_specs())
        if message.attempt > max_attempts(len(self.version.nodes)) or from_sender >= limit:
            return self._report(sender, f"sent too many nonce messages for {message.attempt}")
        self._early[message.attempt] = [*kept, (sender, message)]
        return []

    def _report(self, culprit: NodeId, what: str) -> list[Effect]:
        """Tell the master that `culprit` misbehaved in the running attempt (if any)."""
        if self.attempt == 0:
            return []  # no attempt the master could end for it
        return [Send(self.master, SigningFault(self.session_id, self.attempt, culprit, what))]

    def _feed(self, sender: NodeId, message: SigningNonceMessage) -> list[Effect]:
        nonces = self.nonces
        if nonces is None:
            return []  # this node gave the attempt up
        try:
            effects = feed_nonce_message(nonces, sender, message)
        except SecretStoreError as exc:
            self.nonces = None
            self._reset_job()
            culprit = culprit_of(exc, nonces.nodes, sender)
            fault = SigningFault(self.session_id, nonces.attempt, culprit, what_of(exc))
            return [Send(self.master, fault)]
        return effects + self._progress()
