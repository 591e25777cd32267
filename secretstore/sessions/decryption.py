"""Document key retrieval, plain and shadow: access consensus, then t+1 shadow decryption jobs.

The master (the node the requester asked) must hold a share of the key and the stored
document key (C, E). It runs an `AccessConsensus` (needed = t+1) over the connected holders
of the key version; the selected group of t+1 nodes then each compute a shadow point
P_i = a·ν_i·C for a fresh access key a (crypto/shadow.py) and the master combines them:

- plain retrieval: the result is the document key point M = E - (-1)^t·a⁻¹·Σ P_i (the HTTP
  layer encrypts it to the requester);
- shadow retrieval: every member blinds its point with a random δ_i and returns
  d_i = (δ_i - 1)·ν_i encrypted to the requester (ECIES), so the master only gets
  D = E - (-1)^t·Σ δ_i·ν_i·C; the result is `ShadowResult(D, C', [ECIES(d_i)])` and only the
  requester can compute M = D + (Σ d_i)·C'.

A group member that is lost during the job (disconnects or reports an error) is replaced by
another consenting node when enough remain (a new attempt with a new access key); otherwise
the session fails with ConsensusUnreachable. A job answer that breaks the protocol fails it
with ProtocolViolation naming the node. Every node recovers the requester itself from the
requester's signature; the decrypt shadows are encrypted to that recovered key, never to a
key the master names.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

from secretstore.crypto.curve import Point, Scalar
from secretstore.crypto.ecies import OVERHEAD, ecies_encrypt
from secretstore.crypto.rng import random_scalar
from secretstore.crypto.shadow import (
    compute_joint_shadow_point,
    compute_node_shadow,
    compute_node_shadow_point,
    decrypt_with_joint_shadow,
    make_common_shadow_point,
)
from secretstore.errors import DocumentKeyNotFound, InvalidRequest, ProtocolViolation
from secretstore.sessions.base import Effect, Send, Session, SessionContext, short
from secretstore.sessions.consensus import (
    AccessCheck,
    AccessConsensus,
    ConsensusFailed,
    Decision,
    GroupSelected,
    Requester,
    recover_requester_of,
    require_share,
    select_version,
)
from secretstore.sessions.core import MasterFactory, SlaveFactory
from secretstore.storage.model import KeyShare, KeyShareVersion
from secretstore.types import NodeId, ServerKeyId, SessionId
from secretstore.wire.consensus import AccessRequest, ConsensusCompleted, ConsensusResponse
from secretstore.wire.decryption import (
    DecryptionJobRequest,
    DecryptionJobResponse,
    DecryptionRequest,
)

#: Length of an encrypted decrypt shadow: ECIES of a 32-byte scalar.
DECRYPT_SHADOW_LENGTH = OVERHEAD + 32


@dataclass(frozen=True, slots=True)
class RetrieveDocumentKey:
    """Request: the document key stored with server key `key_id`.

    `requester_signature`: 65 bytes r‖s‖v over `key_id` (the requester is recovered from it);
    `shadow`: shadow retrieval (result ShadowResult) instead of plain (result Point);
    `version`: the key version hash to use, None for the master's newest.
    """

    key_id: ServerKeyId
    requester_signature: bytes
    shadow: bool = False
    version: bytes | None = None


@dataclass(frozen=True, slots=True)
class ShadowResult:
    """Result of a shadow retrieval: M = decrypted_secret + (Σ d_i)·common_point, where each
    d_i is the 32-byte scalar in ECIES(requester, d_i) = decrypt_shadows[i]."""

    decrypted_secret: Point
    common_point: Point
    decrypt_shadows: tuple[bytes, ...]


class DecryptionPhase(Enum):
    # master
    WAITING_FOR_ACCESS = "waiting for access answers"
    WAITING_FOR_JOB_RESPONSES = "waiting for job responses"
    # slave
    WAITING_FOR_ACCESS_CHECK = "waiting for the access check"
    WAITING_FOR_JOB = "waiting for a job or the end"
    ENDED = "ended"


def compute_job_response(
    ctx: SessionContext,
    share: KeyShare,
    version: KeyShareVersion,
    *,
    nodes: tuple[NodeId, ...],
    access_key: Scalar,
    shadow: bool,
    requester: Point,
) -> tuple[Point, bytes | None]:
    """This node's part of a job over `nodes`: P_i, and ECIES(requester, d_i) when `shadow`.

    The caller has checked that every node of `nodes` holds `version`, self included."""
    common_point = share.common_point
    if common_point is None:
        raise DocumentKeyNotFound("no document key is stored with this server key")
    numbers = version.id_numbers_map()
    if ctx.self_id not in nodes or any(node not in numbers for node in nodes):
        raise InvalidRequest("a job group must hold the key version and include this node")
    others = [numbers[node] for node in nodes if node != ctx.self_id]
    node_shadow = compute_node_shadow(version.secret_share, numbers[ctx.self_id], others)
    blinding = random_scalar(ctx.rng) if shadow else None
    computed = compute_node_shadow_point(access_key, common_point, node_shadow, blinding)
    encrypted = None
    if computed.decrypt_shadow is not None:
        encrypted = ecies_encrypt(requester, computed.decrypt_shadow.to_bytes(), ctx.rng)
    return computed.shadow_point, encrypted


@dataclass(slots=True)
class _Job:
    attempt: int
    access_key: Scalar
    nodes: tuple[NodeId, ...]
    responses: dict[NodeId, tuple[Point, bytes | None]] = field(default_factory=dict)


class DecryptionMaster(Session):
    """The master of a retrieval.

    | phase (waits for)           | on                             | next                      |
    |-----------------------------|--------------------------------|---------------------------|
    | WAITING_FOR_ACCESS          | t+1 allowed, self among them   | WAITING_FOR_JOB_RESPONSES |
    | (own check, ConsensusResp.) | too many refused / self refused| ENDED: AccessDenied       |
    |                             | too few left to reach t+1      | ENDED: ConsensusUnreachable|
    | WAITING_FOR_JOB_RESPONSES   | all t+1 responses in           | ENDED: result             |
    | (DecryptionJobResponse)     | member lost, t+1 allowed remain| WAITING_FOR_JOB_RESPONSES |
    |                             | member lost, answers pending   | WAITING_FOR_ACCESS        |
    |                             | member lost, too few left      | ENDED: ConsensusUnreachable|
    |                             | a response breaks the protocol | ENDED: ProtocolViolation  |
    """

    def __init__(
        self,
        ctx: SessionContext,
        session_id: SessionId,
        request: RetrieveDocumentKey,
        *,
        share: KeyShare,
        version: KeyShareVersion,
        requester: Requester,
        connected: frozenset[NodeId],
    ) -> None:
        super().__init__(ctx, session_id, ctx.self_id, request.key_id)
        self.shadow = request.shadow
        self._share = share
        self._version = version
        self._requester = requester
        self._signature = request.requester_signature
        self.consensus = AccessConsensus(
            ctx,
            session_id,
            request.key_id,
            requester=requester.address,
            version=version,
            connected=connected,
            needed=share.threshold + 1,
        )
        self._job: _Job | None = None

    @property
    def phase(self) -> DecryptionPhase:
        if self.finished:
            return DecryptionPhase.ENDED
        if self._job is not None:
            return DecryptionPhase.WAITING_FOR_JOB_RESPONSES
        return DecryptionPhase.WAITING_FOR_ACCESS

    @property
    def participants(self) -> frozenset[NodeId]:
        return self.consensus.in_play | {self.ctx.self_id}

    @property
    def awaiting(self) -> tuple[NodeId, ...]:
        """Members of the running job whose response has not come (empty without a job)."""
        job = self._job
        if job is None:
            return ()
        return tuple(node for node in job.nodes if node not in job.responses)

    def start(self) -> list[Effect]:
        access = AccessRequest(self._signature, self._version.hash)
        return self.consensus.start(DecryptionRequest(self.session_id, self.key_id, access))

    # --- events -------------------------------------------------------------------------------
    def on_message(self, sender: NodeId, message: object) -> list[Effect]:
        if self.finished:
            return []
        if isinstance(message, ConsensusResponse):
            return self._follow(self.consensus.on_response(sender, message))
        if isinstance(message, DecryptionJobResponse):
            return self._on_job_response(sender, message)
        return self.fail(ProtocolViolation(short(sender), f"sent {type(message).__name__}"))

    def on_access_checked(self, allowed: bool) -> list[Effect]:
        if self.finished:
            return []
        return self._follow(self.consensus.on_own_access(allowed))

    def on_node_disconnected(self, node: NodeId) -> list[Effect]:
        return self._lose(node, "disconnected")

    def on_peer_error(self, sender: NodeId, reason: str) -> list[Effect]:
        return self._lose(sender, f"failed: {reason[:200]}{self.still_waiting(sender)}")

    def waiting_for(self) -> frozenset[NodeId]:
        """The candidates yet to answer, then the members whose job response is due."""
        if self._job is None:
            return self.consensus.pending - {self.ctx.self_id}
        return frozenset(self.awaiting) - {self.ctx.self_id}

    def on_timeout(self) -> list[Effect]:
        if self.finished:
            return []
        if self._job is None:
            return self.fail(self.consensus.timeout_error())
        names = ", ".join(short(node) for node in self.awaiting)
        return self.fail(ProtocolViolation(names, "no job response before the session timed out"))

    # --- internals ----------------------------------------------------------------------------
    def _lose(self, node: NodeId, why: str) -> list[Effect]:
        if self.finished:
            return []
        job = self._job
        answered = job is not None and node in job.responses
        if job is not None and node in job.nodes and not answered:
            self._job = None
        return self._follow(self.consensus.on_node_lost(node, why, keep_group=answered))

    def _follow(self, decision: Decision) -> list[Effect]:
        if isinstance(decision, ConsensusFailed):
            return self.fail(decision.error)
        if isinstance(decision, GroupSelected):
            return self._start_job(decision)
        return []

    def _start_job(self, group: GroupSelected) -> list[Effect]:
        job = _Job(group.attempt, random_scalar(self.ctx.rng), group.nodes)
        self._job = job
        request = DecryptionJobRequest(
            self.session_id, job.attempt, job.access_key, job.nodes, self.shadow
        )
        effects: list[Effect] = self.broadcast(request, job.nodes)
        job.responses[self.ctx.self_id] = compute_job_response(
            self.ctx,
            self._share,
            self._version,
            nodes=job.nodes,
            access_key=job.access_key,
            shadow=self.shadow,
            requester=self._requester.public,
        )
        return effects + self._complete_if_ready()

    def _on_job_response(self, sender: NodeId, message: DecryptionJobResponse) -> list[Effect]:
        job = self._job
        if message.attempt > self.consensus.attempt:
            return self._violation(sender, "answered a job it was not given")
        if job is None or message.attempt < job.attempt:
            return []  # an answer to an abandoned group
        if sender not in job.nodes:
            return self._violation(sender, "answered a job it was not given")
        answer = (message.shadow_point, message.decrypt_shadow)
        if sender in job.responses:
            if job.responses[sender] == answer:
                return []  # the same answer again
            return self._violation(sender, "answered its job twice, differently")
        if message.shadow_point.is_identity():
            return self._violation(sender, "sent the identity as its shadow point")
        if self.shadow and message.decrypt_shadow is None:
            return self._violation(sender, "sent no decrypt shadow for a shadow retrieval")
        if not self.shadow and message.decrypt_shadow is not None:
            return self._violation(sender, "sent a decrypt shadow for a plain retrieval")
        if message.decrypt_shadow is not None and len(message.decrypt_shadow) != (
            DECRYPT_SHADOW_LENGTH
        ):
            return self._violation(
                sender,
                f"sent a decrypt shadow of {len(message.decrypt_shadow)} bytes, "
                f"not {DECRYPT_SHADOW_LENGTH}",
            )
        job.responses[sender] = answer
        return self._complete_if_ready()

    def _complete_if_ready(self) -> list[Effect]:
        job = self._job
        if job is None or len(job.responses) < len(job.nodes):
            return []
        share = self._share
        common_point = share.common_point
        encrypted_point = share.encrypted_point
        if common_point is None or encrypted_point is None:  # checked by the factory
            return self.fail(DocumentKeyNotFound("no document key is stored with this key"))
        joint = compute_joint_shadow_point(job.responses[node][0] for node in job.nodes)
        decrypted = decrypt_with_joint_shadow(
            share.threshold, job.access_key, encrypted_point, joint
        )
        if decrypted.is_identity():
            others = [node for node in job.nodes if node != self.ctx.self_id]
            names = ", ".join(short(node) for node in others) or short(self.ctx.self_id)
            return self.fail(
                ProtocolViolation(names, "the job responses do not combine to a document key")
            )
        result: Point | ShadowResult = decrypted
        if self.shadow:
            shadows = tuple(job.responses[node][1] or b"" for node in job.nodes)
            result = ShadowResult(
                decrypted, make_common_shadow_point(share.threshold, common_point), shadows
            )
        return self.consensus.completion() + self.finish(result)

    def _violation(self, node: NodeId, what: str) -> list[Effect]:
        return self.fail(ProtocolViolation(short(node), what))


class DecryptionSlave(Session):
    """A candidate of someone else's retrieval.

    | phase (waits for)          | on                          | next                     |
    |----------------------------|-----------------------------|--------------------------|
    | WAITING_FOR_ACCESS_CHECK   | allowed (answer sent)       | WAITING_FOR_JOB          |
    | (own access check)         | refused (answer sent)       | ENDED                    |
    |                            | ConsensusCompleted          | ENDED                    |
    | WAITING_FOR_JOB            | valid job (response sent)   | WAITING_FOR_JOB          |
    | (DecryptionJobRequest,     | ConsensusCompleted          | ENDED                    |
    |  ConsensusCompleted)       | invalid job                 | ENDED: ProtocolViolation |
    A job request before this node allowed access is a violation by the master; so is a job
    for an older attempt. The master reporting an error ends the session quietly.
    """

    def __init__(
        self,
        ctx: SessionContext,
        master: NodeId,
        init: DecryptionRequest,
        share: KeyShare,
        check: AccessCheck,
    ) -> None:
        super().__init__(ctx, init.session_id, master, init.key_id)
        self._init = init
        self._share = share
        self.check = check
        self._last_job: DecryptionJobRequest | None = None

    @property
    def phase(self) -> DecryptionPhase:
        if self.finished:
            return DecryptionPhase.ENDED
        if self.check.allowed is None:
            return DecryptionPhase.WAITING_FOR_ACCESS_CHECK
        return DecryptionPhase.WAITING_FOR_JOB

    @property
    def participants(self) -> frozenset[NodeId]:
        return frozenset({self.master, self.ctx.self_id})

    def waiting_for(self) -> frozenset[NodeId]:
        """Its own access policy, then the master (a job, or the end)."""
        if self.check.allowed is None:
            return frozenset({self.ctx.self_id})
        return frozenset({self.master})

    def on_access_checked(self, allowed: bool) -> list[Effect]:
        if self.finished:
            return []
        effects = self.check.on_access_checked(allowed)
        if not allowed:
            effects += self.finish()
        return effects

    def on_message(self, sender: NodeId, message: object) -> list[Effect]:
        if self.finished:
            return []
        if sender != self.master:
            return self.fail(ProtocolViolation(short(sender), "is not the master"))
        if isinstance(message, ConsensusCompleted):
            return self.finish()
        if isinstance(message, DecryptionJobRequest):
            return self._on_job(message)
        if message == self._init:
            return []  # the initialising message again
        return self._violation(f"sent {type(message).__name__}")

    def on_peer_error(self, sender: NodeId, reason: str) -> list[Effect]:
        return self.finish()  # the master gave up; nothing is left to do here

    def _on_job(self, job: DecryptionJobRequest) -> list[Effect]:
        if self.check.allowed is not True:
            return self._violation("sent a job to a node that did not allow access")
        last = self._last_job
        if last is not None and job.attempt <= last.attempt:
            if job == last:
                return []  # the same request again
            return self._violation(f"sent a job for attempt {job.attempt} after {last.attempt}")
        problem = self._job_problem(job)
        if problem is not None:
            return self._violation(problem)
        self._last_job = job
        point, encrypted = compute_job_response(
            self.ctx,
            self._share,
            self.check.version,
            nodes=job.nodes,
            access_key=job.access_key,
            shadow=job.shadow,
            requester=self.check.requester.public,
        )
        response = DecryptionJobResponse(self.session_id, job.attempt, point, encrypted)
        return [Send(self.master, response)]

    def _job_problem(self, job: DecryptionJobRequest) -> str | None:
        needed = self._share.threshold + 1
        if job.access_key.is_zero():
            return "sent a zero access key"
        if len(job.nodes) != needed:
            return f"sent a job for {len(job.nodes)} nodes, not {needed}"
        if any(a >= b for a, b in zip(job.nodes, job.nodes[1:], strict=False)):
            return "sent a job group that is not in ascending order"
        if any(self.check.version.id_number(node) is None for node in job.nodes):
            return "sent a job group with a node outside the key version"
        if self.ctx.self_id not in job.nodes or self.master not in job.nodes:
            return "sent a job group without this node or itself"
        return None

    def _violation(self, what: str) -> list[Effect]:
        return self.fail(ProtocolViolation(short(self.master), what))


# --- factories ---------------------------------------------------------------------------


def start_decryption(
    ctx: SessionContext,
    session_id: SessionId,
    request: RetrieveDocumentKey,
    share: KeyShare | None,
    connected: frozenset[NodeId],
) -> tuple[Session, list[Effect]]:
    """Master factory. Raises InvalidRequest (signature), ServerKeyNotFound (no share here:
    Parity would delegate to a holder; we answer 404), DocumentKeyNotFound, or
    ConsensusUnreachable (fewer than t+1 holders connected)."""
    requester = recover_requester_of(request.requester_signature, request.key_id)
    held = require_share(share, request.key_id)
    if not held.has_document_key():
        raise DocumentKeyNotFound(f"no document key is stored with key 0x{request.key_id.hex()}")
    version = select_version(held, request.key_id, ctx.self_id, request.version)
    session = DecryptionMaster(
        ctx,
        session_id,
        request,
        share=held,
        version=version,
        requester=requester,
        connected=connected,
    )
    return session, session.start()


def join_decryption(
    ctx: SessionContext, sender: NodeId, message: DecryptionRequest, share: KeyShare | None
) -> tuple[Session, list[Effect]]:
    """Slave factory; the errors it raises reach the master as a SessionError."""
    held = require_share(share, message.key_id)
    if not held.has_document_key():
        raise DocumentKeyNotFound("no document key is stored with this key")
    check = AccessCheck.of(ctx, sender, message, held)
    session = DecryptionSlave(ctx, sender, message, held, check)
    return session, check.start()


MASTERS: dict[type, MasterFactory] = {RetrieveDocumentKey: start_decryption}
SLAVES: dict[type, SlaveFactory] = {DecryptionRequest: join_decryption}
