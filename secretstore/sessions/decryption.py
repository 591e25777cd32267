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

Verifiable answers: when the key version has commitments (crypto/shadow_proofs.py), every
member also sends a DLEQ proof bound to the job (plain: P_i was made with its share; shadow:
P_i and the published Q_i = δ_i·ν_i·G share their log), and the master checks every other
member's. A member whose answer fails a check (its proof, a missing or extra decrypt shadow,
an identity point) is named and treated as lost: another consenting node replaces it when
enough remain (a new attempt with a new access key); otherwise the session fails with
ProtocolViolation naming it. A shadow result then carries everything the requester needs to
check every contribution itself (`ShadowResult.proofs`). A key without commitments (a record
of schema 1) is served as before, without proofs.

A group member that is lost during the job (disconnects or reports an error) is replaced the
same way; otherwise the session fails with ConsensusUnreachable. Every node recovers the
requester itself from the requester's signature; the decrypt shadows are encrypted to that
recovered key, never to a key the master names. A node whose context has
`require_shadow_retrieval` computes no plain-mode job: as master it refuses the request
(PlainRetrievalRefused), as slave it refuses the job, whatever the master says.

Broadcast (a service contract's request, `RetrieveDocumentKey.origin`): shadow only; the
requester is the public the contract names; the master passes every accepted answer on to the
other group members before it ends the consensus (sessions/broadcast.py), and every member,
the master included, finishes with its `PersonalShare` to publish on the contract.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from enum import Enum
from typing import Final

from secretstore.audit.model import AuditFacts, Operation, facts_of
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
from secretstore.crypto.shadow_proofs import (
    JobStatement,
    ParticipantProof,
    PlainParticipant,
    PlainRetrievalProofs,
    ShadowRetrievalProofs,
    answer_job,
    verify_job_answer,
)
from secretstore.errors import (
    AccessDenied,
    ConsensusUnreachable,
    DocumentKeyNotFound,
    InvalidRequest,
    PlainRetrievalRefused,
    ProtocolViolation,
    SecretStoreError,
)
from secretstore.sessions.audit import master_record, receipt_problem, record
from secretstore.sessions.base import Effect, Send, Session, SessionContext, Wake, short
from secretstore.sessions.broadcast import (
    PersonalShare,
    answers_problem,
    broadcast_secret,
    member_answers,
)
from secretstore.sessions.consensus import (
    AccessCheck,
    AccessConsensus,
    AskOthers,
    ConsensusFailed,
    Decision,
    GroupSelected,
    Requester,
    origin_requester,
    recover_requester_of,
    require_share,
    select_version,
)
from secretstore.sessions.core import MasterFactory, SlaveFactory
from secretstore.storage.model import KeyShare, KeyShareVersion
from secretstore.types import Address, BlockRef, NodeId, ServerKeyId, SessionId
from secretstore.wire.common import SessionError
from secretstore.wire.consensus import AccessRequest, ConsensusCompleted, ConsensusResponse
from secretstore.wire.decryption import (
    DecryptionJob,
    DecryptionJobRequest,
    DecryptionJobResponse,
    DecryptionJobResults,
    DecryptionRequest,
)
from secretstore.wire.requester import ServiceOrigin

#: Seconds after which a master whose first group has not answered in full asks the holders
#: it did not ask (a member may be silent; a lost member makes it ask them at once).
ASK_OTHERS_AFTER: Final = 1.0

#: Length of an encrypted decrypt shadow: ECIES of a 32-byte scalar.
DECRYPT_SHADOW_LENGTH = OVERHEAD + 32


@dataclass(frozen=True, slots=True)
class RetrieveDocumentKey:
    """Request: the document key stored with server key `key_id`.

    `requester_signature`: 65 bytes r‖s‖v over `key_id` (the requester is recovered from it);
    `shadow`: shadow retrieval (result ShadowResult) instead of plain (result Point);
    `version`: the key version hash to use, None for the master's newest;
    `block`: the chain block the access decisions are pinned to (None without a chain ACL);
    `origin`: a service contract's request (naming the requester's public;
    `requester_signature` empty, `shadow` true): a broadcast retrieval whose result is
    this node's PersonalShare.
    """

    key_id: ServerKeyId
    requester_signature: bytes
    shadow: bool = False
    version: bytes | None = None
    block: BlockRef | None = None
    origin: ServiceOrigin | None = None


#: The text of a plain retrieval refused by a node's policy.
PLAIN_REFUSED = (
    "plain document key retrieval is refused by this key server's policy "
    "(require_shadow_retrieval): use shadow retrieval"
)


@dataclass(frozen=True, slots=True)
class ShadowResult:
    """Result of a shadow retrieval: M = decrypted_secret + (Σ d_i)·common_point, where each
    d_i is the 32-byte scalar in ECIES(requester, d_i) = decrypt_shadows[i]. `proofs`: what
    the requester needs to check every participant's contribution (None for a key without
    commitments)."""

    decrypted_secret: Point
    common_point: Point
    decrypt_shadows: tuple[bytes, ...]
    proofs: ShadowRetrievalProofs | None = None


class DecryptionPhase(Enum):
    # master
    WAITING_FOR_ACCESS = "waiting for access answers"
    WAITING_FOR_JOB_RESPONSES = "waiting for job responses"
    # slave
    WAITING_FOR_ACCESS_CHECK = "waiting for the access check"
    WAITING_FOR_JOB = "waiting for a job or the end"
    ENDED = "ended"


def job_statement(
    share: KeyShare,
    version: KeyShareVersion,
    key_id: ServerKeyId,
    job: DecryptionJobRequest,
    requester: Point,
) -> JobStatement | None:
    """What the proofs of `job` are bound to, as this node sees it (its own stored C, E and
    commitments, the requester it recovered); None for a version without commitments.
    InvalidRequest when the group does not hold the version."""
    commitments = version.commitments
    if commitments is None:
        return None
    common_point, encrypted_point = share.common_point, share.encrypted_point
    if common_point is None or encrypted_point is None:
        raise DocumentKeyNotFound("no document key is stored with this server key")
    numbers = version.id_numbers_map()
    if any(node not in numbers for node in job.nodes):
        raise InvalidRequest("a job group must hold the key version")
    return JobStatement(
        key_id=key_id,
        session_id=job.session_id,
        attempt=job.attempt,
        requester=requester,
        common_point=common_point,
        encrypted_point=encrypted_point,
        access_key=job.access_key,
        commitments=commitments,
        group=tuple((node, numbers[node]) for node in job.nodes),
        shadow=job.shadow,
    )


def compute_job_response(
    ctx: SessionContext,
    share: KeyShare,
    version: KeyShareVersion,
    key_id: ServerKeyId,
    job: DecryptionJobRequest,
    *,
    requester: Point,
    statement: JobStatement | None = None,
) -> DecryptionJobResponse:
    """This node's part of `job`: P_i, ECIES(requester, d_i) when shadow, and with
    commitments Q_i (shadow) and the proof. `statement`: the job's statement when the
    caller made it already (`job_statement`), else it is made here.

    Raises PlainRetrievalRefused for a plain job when this node's policy requires shadow
    retrieval; DocumentKeyNotFound; InvalidRequest unless every node of the group holds
    `version`, self included."""
    if not job.shadow and ctx.require_shadow_retrieval:
        raise PlainRetrievalRefused(PLAIN_REFUSED)
    common_point = share.common_point
    if common_point is None:
        raise DocumentKeyNotFound("no document key is stored with this server key")
    numbers = version.id_numbers_map()
    if ctx.self_id not in job.nodes or any(node not in numbers for node in job.nodes):
        raise InvalidRequest("a job group must hold the key version and include this node")
    if statement is None:
        statement = job_statement(share, version, key_id, job, requester)
    blinded_public, proof = None, None

    def seal(decrypt_shadow: Scalar) -> bytes:
        return ecies_encrypt(requester, decrypt_shadow.to_bytes(), ctx.rng)

    encrypted = None
    if statement is not None:
        answer = answer_job(statement, ctx.self_id, version.secret_share, ctx.rng, seal)
        point, encrypted = answer.shadow_point, answer.sealed_shadow
        blinded_public, proof = answer.blinded_public, answer.proof
    else:
        others = [numbers[node] for node in job.nodes if node != ctx.self_id]
        node_shadow = compute_node_shadow(version.secret_share, numbers[ctx.self_id], others)
        blinding = random_scalar(ctx.rng) if job.shadow else None
        computed = compute_node_shadow_point(job.access_key, common_point, node_shadow, blinding)
        point = computed.shadow_point
        if computed.decrypt_shadow is not None:
            encrypted = seal(computed.decrypt_shadow)
    return DecryptionJobResponse(
        job.session_id, job.attempt, point, encrypted, blinded_public, proof
    )


def release_facts(
    key_id: ServerKeyId,
    job: DecryptionJobRequest,
    *,
    master: NodeId,
    requester: Address,
    version: KeyShareVersion,
    block: BlockRef | None,
) -> AuditFacts:
    """What every member of `job` records and signs: its group released a document key (or
    its shadows) of `key_id` to `requester` through `master`, access decided at `block`."""
    operation = Operation.SHADOW_RETRIEVAL if job.shadow else Operation.RETRIEVAL
    return facts_of(
        operation,
        key_id,
        session_id=job.session_id,
        master=master,
        requester=requester,
        participants=job.nodes,
        key_version=version.hash,
        block=block,
    )


@dataclass(slots=True)
class _Job:
    request: DecryptionJobRequest
    #: what the members' proofs are bound to; None for a key without commitments
    statement: JobStatement | None
    responses: dict[NodeId, DecryptionJobResponse] = field(default_factory=dict)

    @property
    def attempt(self) -> int:
        return self.request.attempt

    @property
    def nodes(self) -> tuple[NodeId, ...]:
        return self.request.nodes


class DecryptionMaster(Session):
    """The master of a retrieval.

    It picks the first group at once among the connected holders (the master and t others at
    random) and sends each other member the access request with the job: the member decides
    access itself and answers with its proven part (or a refusal). When a member refuses, is
    lost, or its answer is rejected, the consensus asks the holders not asked yet and selects
    another group among those that allow, as if they had been asked from the start.

    | phase (waits for)           | on                             | next                      |
    |-----------------------------|--------------------------------|---------------------------|
    | WAITING_FOR_JOB_RESPONSES   | all t+1 responses in (its own  | ENDED: result             |
    | (own check, job responses,  |  once its own policy allowed)  |                           |
    |  refusals)                  | self refused / too many refused| ENDED: AccessDenied       |
    |                             | member refused, lost or its    | WAITING_FOR_JOB_RESPONSES |
    |                             |  answer rejected; t+1 allowed  |  (a new group, attempt+1) |
    |                             |  remain                        |                           |
    |                             | the same, too few asked can    | WAITING_FOR_ACCESS (the   |
    |                             |  still allow                   |  holders not asked, asked)|
    |                             | the same, answers pending      | WAITING_FOR_ACCESS        |
    |                             | member lost, too few left      | ENDED: ConsensusUnreachable|
    |                             | answer rejected, too few left  | ENDED: ProtocolViolation  |
    |                             | an answer out of turn          | ENDED: ProtocolViolation  |
    |                             | a member refuses plain by policy| ENDED: PlainRetrievalRefused|
    | WAITING_FOR_ACCESS          | t+1 allowed, self among them   | WAITING_FOR_JOB_RESPONSES |
    | (ConsensusResponse)         | too many refused               | ENDED: AccessDenied       |
    |                             | too few left to reach t+1      | ENDED: ConsensusUnreachable|
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
        self._origin = request.origin
        self.consensus = AccessConsensus(
            ctx,
            session_id,
            request.key_id,
            requester=requester.address,
            version=version,
            connected=connected,
            needed=share.threshold + 1,
            block=request.block,
        )
        self._job: _Job | None = None
        #: the group of every attempt started (an answer names its attempt)
        self._groups: dict[int, tuple[NodeId, ...]] = {}
        #: members whose job answer was rejected, and why (they are out of the session)
        self.rejected: dict[NodeId, str] = {}
        #: a finished plain retrieval's job with every member's proof (None without
        #: commitments): what a delegate shows its origin (sessions/jobs/delegate.py)
        self.plain_proofs: PlainRetrievalProofs | None = None

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

    def _access(self) -> AccessRequest:
        return AccessRequest(
            self._signature, self._version.hash, block=self.consensus.block, origin=self._origin
        )

    def start(self) -> list[Effect]:
        """The first group's job to its members inside the access request; the master's own
        part follows its own access check (so it is computed while the others work)."""
        group = self.consensus.preselect()
        request = self._new_job(group)
        job = DecryptionJob(request.attempt, request.access_key, request.nodes, request.shadow)
        init = DecryptionRequest(self.session_id, self.key_id, self._access(), job)
        effects = self.consensus.start(init, to=group.nodes)
        if self.consensus.unasked:
            effects.append(Wake(self.session_id, ASK_OTHERS_AFTER))
        return effects

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
        effects = self._follow(self.consensus.on_own_access(allowed))
        return effects + self._own_part()

    def on_node_disconnected(self, node: NodeId) -> list[Effect]:
        return self._lose(node, "disconnected")

    def on_peer_error(self, sender: NodeId, reason: str) -> list[Effect]:
        return self._lose(sender, f"failed: {reason[:200]}{self.still_waiting(sender)}")

    def waiting_for(self) -> frozenset[NodeId]:
        """The candidates yet to answer, then the members whose job response is due."""
        if self._job is None:
            return self.consensus.pending - {self.ctx.self_id}
        return frozenset(self.awaiting) - {self.ctx.self_id}

    def on_peer_refusal(self, sender: NodeId, error: SecretStoreError) -> list[Effect]:
        """A group member refusing a plain job by its policy ends the retrieval with that
        refusal (no other node is asked to compute the document key instead)."""
        job = self._job
        if (
            not self.finished
            and not self.shadow
            and isinstance(error, AccessDenied)
            and job is not None
            and sender in job.nodes
        ):
            return self.fail(PlainRetrievalRefused(f"node {short(sender)}: {error}"))
        return super().on_peer_refusal(sender, error)

    def on_wake(self) -> list[Effect]:
        """The first group is slow: ask the holders not asked yet (`ASK_OTHERS_AFTER`)."""
        if self.finished or self._job is None or not self.awaiting:
            return []
        return self._follow(self.consensus.on_slow())

    def on_timeout(self) -> list[Effect]:
        if self.finished:
            return []
        if self._job is None:
            return self.fail(self._named(self.consensus.timeout_error()))
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

    def _reject(self, node: NodeId, what: str) -> list[Effect]:
        """`node`'s answer to the running job is wrong: it is out of the session (and told
        so), and another consenting node takes its place if enough remain."""
        self.rejected[node] = what
        self._job = None
        notice = SessionError(self.session_id, f"the master rejected its job answer: {what}")
        effects: list[Effect] = [Send(node, notice)]
        decision = self.consensus.on_node_lost(node, what)
        if isinstance(decision, ConsensusFailed) and isinstance(
            decision.error, ConsensusUnreachable
        ):
            return effects + self.fail(
                ProtocolViolation(
                    short(node), f"{what}; too few other consenting nodes remain to replace it"
                )
            )
        return effects + self._follow(decision)

    def _named(self, error: SecretStoreError) -> SecretStoreError:
        """A consensus failure after rejected answers names the nodes rejected."""
        if not self.rejected or not isinstance(error, ConsensusUnreachable):
            return error
        names = ", ".join(short(node) for node in self.rejected)
        whys = "; ".join(self.rejected.values())
        return ProtocolViolation(names, f"{whys}; and then: {error}")

    def _follow(self, decision: Decision) -> list[Effect]:
        job = self._job
        if job is not None and (
            self.consensus.group is None or self.consensus.attempt != job.attempt
        ):
            self._job = None  # the consensus gave the running group up (a member refused)
        if isinstance(decision, ConsensusFailed):
            return self.fail(self._named(decision.error))
        if isinstance(decision, GroupSelected):
            return self._start_job(decision)
        if isinstance(decision, AskOthers):
            init = DecryptionRequest(self.session_id, self.key_id, self._access())
            return [Send(node, init) for node in decision.nodes]
        return []

    def _new_job(self, group: GroupSelected) -> DecryptionJobRequest:
        """The job of `group`'s attempt, with a fresh access key (now the running job)."""
        request = DecryptionJobRequest(
            self.session_id, group.attempt, random_scalar(self.ctx.rng), group.nodes, self.shadow
        )
        requester = self._requester.public
        statement = job_statement(self._share, self._version, self.key_id, request, requester)
        self._job = _Job(request, statement)
        self._groups[group.attempt] = group.nodes
        return request

    def _start_job(self, group: GroupSelected) -> list[Effect]:
        """A group selected among nodes that allowed access: the job to each, then this
        node's own part (it allowed already)."""
        request = self._new_job(group)
        return self.broadcast(request, request.nodes) + self._own_part()

    def _own_part(self) -> list[Effect]:
        """This node's part of the running job, once its own policy allowed access."""
        job = self._job
        self_id = self.ctx.self_id
        if self.finished or job is None or self_id in job.responses:
            return []
        if self_id not in self.consensus.allowed:
            return []
        job.responses[self_id] = compute_job_response(
            self.ctx,
            self._share,
            self._version,
            self.key_id,
            job.request,
            requester=self._requester.public,
            statement=job.statement,
        )
        return self._complete_if_ready()

    def _on_job_response(self, sender: NodeId, message: DecryptionJobResponse) -> list[Effect]:
        group = self._groups.get(message.attempt)
        if group is None or sender not in group:
            return self._violation(sender, "answered a job it was not given")
        if sender not in self.consensus.allowed:
            # the answer to a job that came with the access request says the sender allowed
            # (a node that refused, or one lost, answers out of turn)
            decision = self.consensus.on_response(sender, ConsensusResponse(self.session_id, True))
            effects = self._follow(decision)
            if self.finished or effects or sender not in self.consensus.allowed:
                return effects  # ended, or the answer belongs to an attempt given up since
        job = self._job
        if job is None or message.attempt != job.attempt:
            return []  # an answer to an abandoned group
        if sender in job.responses:
            if job.responses[sender] == message:
                return []  # the same answer again
            return self._violation(sender, "answered its job twice, differently")
        problem = self._answer_problem(job, sender, message)
        if problem is not None:
            return self._reject(sender, problem)
        job.responses[sender] = message
        return self._complete_if_ready()

    def _answer_problem(
        self, job: _Job, sender: NodeId, message: DecryptionJobResponse
    ) -> str | None:
        """What is wrong with a group member's answer to the running job, or None."""
        if message.shadow_point.is_identity():
            return "sent the identity as its shadow point"
        if self.shadow and message.decrypt_shadow is None:
            return "sent no decrypt shadow for a shadow retrieval"
        if not self.shadow and message.decrypt_shadow is not None:
            return "sent a decrypt shadow for a plain retrieval"
        if message.decrypt_shadow is not None and len(message.decrypt_shadow) != (
            DECRYPT_SHADOW_LENGTH
        ):
            return (
                f"sent a decrypt shadow of {len(message.decrypt_shadow)} bytes, "
                f"not {DECRYPT_SHADOW_LENGTH}"
            )
        receipt = receipt_problem(self.ctx, sender, self._facts(job), message.receipt)
        if receipt is not None:
            return receipt
        statement = job.statement
        if statement is None:
            return None  # a key without commitments: nothing to check the point against
        if message.proof is None:
            return "sent no proof of its shadow point"
        if self.shadow != (message.blinded_public is not None):
            return "sent a blinded public only a shadow retrieval has, or none in one"
        if not verify_job_answer(
            statement,
            sender,
            message.shadow_point,
            message.blinded_public,
            message.proof,
            sealed=message.decrypt_shadow,
        ):
            return "sent a shadow point whose proof does not verify"
        return None

    def _complete_if_ready(self) -> list[Effect]:
        job = self._job
        if job is None or len(job.responses) < len(job.nodes):
            return []
        share = self._share
        common_point = share.common_point
        encrypted_point = share.encrypted_point
        if common_point is None or encrypted_point is None:  # checked by the factory
            return self.fail(DocumentKeyNotFound("no document key is stored with this key"))
        joint = compute_joint_shadow_point(job.responses[node].shadow_point for node in job.nodes)
        decrypted = decrypt_with_joint_shadow(
            share.threshold, job.request.access_key, encrypted_point, joint
        )
        if decrypted.is_identity():
            others = [node for node in job.nodes if node != self.ctx.self_id]
            names = ", ".join(short(node) for node in others) or short(self.ctx.self_id)
            return self.fail(
                ProtocolViolation(names, "the job responses do not combine to a document key")
            )
        result: Point | ShadowResult | PersonalShare = decrypted
        passed_on: list[Effect] = []
        if self._origin is not None:  # broadcast: every member learns the answers
            own = job.responses[self.ctx.self_id].decrypt_shadow or b""
            result = PersonalShare(job.nodes, decrypted, own)
            answers = member_answers(job.nodes, job.responses)
            passed_on = self.broadcast(
                DecryptionJobResults(self.session_id, job.attempt, answers), job.nodes
            )
        elif not self.shadow:
            self.plain_proofs = self._plain_proofs(job)
        else:
            shadows = tuple(job.responses[node].decrypt_shadow or b"" for node in job.nodes)
            result = ShadowResult(
                decrypted,
                make_common_shadow_point(share.threshold, common_point),
                shadows,
                self._proofs(job),
            )
        receipts = {node: job.responses[node].receipt for node in job.nodes}
        effects = master_record(self.ctx, self._facts(job), receipts)
        return effects + passed_on + self.consensus.completion() + self.finish(result)

    def _facts(self, job: _Job) -> AuditFacts:
        return release_facts(
            self.key_id,
            job.request,
            master=self.ctx.self_id,
            requester=self._requester.address,
            version=self._version,
            block=self.consensus.block,
        )

    def _proofs(self, job: _Job) -> ShadowRetrievalProofs | None:
        statement = job.statement
        if statement is None:
            return None
        participants = []
        for node in job.nodes:
            response = job.responses[node]
            if response.blinded_public is None or response.proof is None:  # checked on receipt
                return None
            participants.append(
                ParticipantProof(
                    node,
                    statement.id_number(node),
                    response.shadow_point,
                    response.blinded_public,
                    response.proof,
                )
            )
        return ShadowRetrievalProofs(
            threshold=statement.threshold,
            session_id=self.session_id,
            attempt=job.attempt,
            commitments=statement.commitments,
            encrypted_point=statement.encrypted_point,
            access_key=statement.access_key,
            participants=tuple(participants),
        )

    def _plain_proofs(self, job: _Job) -> PlainRetrievalProofs | None:
        statement = job.statement
        if statement is None:
            return None
        participants = []
        for node in job.nodes:
            response = job.responses[node]
            if response.proof is None:  # checked on receipt
                return None
            participants.append(
                PlainParticipant(
                    node, statement.id_number(node), response.shadow_point, response.proof
                )
            )
        return PlainRetrievalProofs(
            threshold=statement.threshold,
            session_id=self.session_id,
            attempt=job.attempt,
            commitments=statement.commitments,
            common_point=statement.common_point,
            encrypted_point=statement.encrypted_point,
            access_key=statement.access_key,
            participants=tuple(participants),
        )

    def _violation(self, node: NodeId, what: str) -> list[Effect]:
        return self.fail(ProtocolViolation(short(node), what))


class DecryptionSlave(Session):
    """A candidate of someone else's retrieval.

    | phase (waits for)          | on                          | next                     |
    |----------------------------|-----------------------------|--------------------------|
    | WAITING_FOR_ACCESS_CHECK   | allowed, a job came with the| WAITING_FOR_JOB          |
    | (own access check)         |  request (its response sent)|                          |
    |                            | allowed, no job (answer     | WAITING_FOR_JOB          |
    |                            |  sent)                      |                          |
    |                            | refused (answer sent)       | ENDED                    |
    |                            | ConsensusCompleted          | ENDED                    |
    | WAITING_FOR_JOB            | valid job (response sent)   | WAITING_FOR_JOB          |
    | (DecryptionJobRequest,     | ConsensusCompleted          | ENDED                    |
    |  ConsensusCompleted)       | invalid job                 | ENDED: ProtocolViolation |
    |                            | plain job, this node has    | ENDED:                   |
    |                            | require_shadow_retrieval    | PlainRetrievalRefused    |
    | (broadcast) WAITING_FOR_JOB| DecryptionJobResults of the  | WAITING_FOR_JOB (its     |
    |                            | job it answered, all checked| PersonalShare kept)      |
    |                            | results that do not check   | ENDED: ProtocolViolation |
    |                            | ConsensusCompleted          | ENDED: the PersonalShare |
    |                            |                             | (None when not a member) |
    A job that comes with the request is checked by the factory (a bad one, or a plain job
    under require_shadow_retrieval, is refused before access is even checked) and answered
    once this node's own policy allowed; its response is this node's "allowed". A job request
    before this node allowed access is a violation by the master; so is a job for an older
    attempt. The master reporting an error (e.g. rejecting this node's answer) ends the
    session quietly.
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
        self._last_response: DecryptionJobResponse | None = None
        #: a broadcast (service contract) retrieval: this node's part once the results came
        self._broadcast = init.access.origin is not None
        self.personal: PersonalShare | None = None

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
        job = self._init.job
        if allowed and job is not None:
            if not self.check.decide(True):
                return []
            return self._on_job(job.request(self.session_id))
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
            return self.finish(self.personal)
        if isinstance(message, DecryptionJobRequest):
            return self._on_job(message)
        if isinstance(message, DecryptionJobResults) and self._broadcast:
            return self._on_results(message)
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
        try:
            response = compute_job_response(
                self.ctx,
                self._share,
                self.check.version,
                self.key_id,
                job,
                requester=self.check.requester.public,
            )
        except SecretStoreError as exc:  # e.g. this node's policy refuses plain retrieval
            return self.fail(exc)
        check = self.check
        facts = release_facts(
            self.key_id,
            job,
            master=self.master,
            requester=check.requester.address,
            version=check.version,
            block=check.block,
        )
        recorded, receipt = record(self.ctx, facts)
        sent = replace(response, receipt=receipt)
        self._last_response = sent
        return [*recorded, Send(self.master, sent)]

    def _on_results(self, results: DecryptionJobResults) -> list[Effect]:
        job, own = self._last_job, self._last_response
        if job is None or own is None or results.attempt != job.attempt:
            return self._violation("sent the results of a job this node did not answer")
        if self.personal is not None:
            return self._violation("sent the results of its job twice")
        share = self._share
        if share.encrypted_point is None or own.decrypt_shadow is None:
            return self._violation("sent broadcast results of a retrieval that is not shadow")
        requester = self.check.requester.public
        statement = job_statement(share, self.check.version, self.key_id, job, requester)
        problem = answers_problem(statement, job, self.ctx.self_id, own, results.answers)
        if problem is not None:
            return self._violation(problem)
        decrypted = broadcast_secret(share.threshold, job, share.encrypted_point, results.answers)
        if decrypted.is_identity():
            return self._violation("sent answers that do not combine to a decrypted secret")
        self.personal = PersonalShare(job.nodes, decrypted, own.decrypt_shadow)
        return []

    def _job_problem(self, job: DecryptionJobRequest) -> str | None:
        return job_problem(self.ctx, self.master, self._share, self.check.version, job)

    def _violation(self, what: str) -> list[Effect]:
        return self.fail(ProtocolViolation(short(self.master), what))


def job_problem(
    ctx: SessionContext,
    master: NodeId,
    share: KeyShare,
    version: KeyShareVersion,
    job: DecryptionJobRequest,
) -> str | None:
    """What is wrong with the job `master` sent this node, or None (a slave's checks)."""
    needed = share.threshold + 1
    if job.access_key.is_zero():
        return "sent a zero access key"
    if len(job.nodes) != needed:
        return f"sent a job for {len(job.nodes)} nodes, not {needed}"
    if any(a >= b for a, b in zip(job.nodes, job.nodes[1:], strict=False)):
        return "sent a job group that is not in ascending order"
    if any(version.id_number(node) is None for node in job.nodes):
        return "sent a job group with a node outside the key version"
    if ctx.self_id not in job.nodes or master not in job.nodes:
        return "sent a job group without this node or itself"
    return None


# --- factories ---------------------------------------------------------------------------


def start_decryption(
    ctx: SessionContext,
    session_id: SessionId,
    request: RetrieveDocumentKey,
    share: KeyShare | None,
    connected: frozenset[NodeId],
) -> tuple[Session, list[Effect]]:
    """Master factory. Raises PlainRetrievalRefused (a plain request on a node whose policy
    requires shadow retrieval), InvalidRequest (signature), ServerKeyNotFound (no share here:
    Parity would delegate to a holder; we answer 404), DocumentKeyNotFound, or
    ConsensusUnreachable (fewer than t+1 holders connected)."""
    if not request.shadow and ctx.require_shadow_retrieval:
        raise PlainRetrievalRefused(PLAIN_REFUSED)
    origin = request.origin
    if origin is not None and not request.shadow:
        raise InvalidRequest("a service contract's retrieval is a shadow retrieval")
    requester = (
        origin_requester(origin)
        if origin is not None
        else recover_requester_of(request.requester_signature, request.key_id)
    )
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
    if message.job is not None:
        job = message.job.request(message.session_id)
        if not job.shadow and ctx.require_shadow_retrieval:
            raise PlainRetrievalRefused(PLAIN_REFUSED)
        problem = job_problem(ctx, sender, held, check.version, job)
        if problem is not None:
            raise ProtocolViolation(short(sender), problem)
    session = DecryptionSlave(ctx, sender, message, held, check)
    return session, check.start()


MASTERS: dict[type, MasterFactory] = {RetrieveDocumentKey: start_decryption}
SLAVES: dict[type, SlaveFactory] = {DecryptionRequest: join_decryption}
