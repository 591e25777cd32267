"""Messages of the document key retrieval (decryption) session (0x0400–0x04ff)."""

from __future__ import annotations

from dataclasses import dataclass

from secretstore.crypto.curve import Point, Scalar
from secretstore.crypto.dleq import DleqProof
from secretstore.types import NodeId, ServerKeyId, SessionId
from secretstore.wire.codec import message
from secretstore.wire.consensus import AccessRequest


@dataclass(frozen=True, slots=True)
class DecryptionJob:
    """The job of one attempt inside a request (a field, not a message): the fields of a
    DecryptionJobRequest without the session id."""

    attempt: int
    access_key: Scalar
    nodes: tuple[NodeId, ...]
    shadow: bool

    def request(self, session_id: SessionId) -> DecryptionJobRequest:
        return DecryptionJobRequest(
            session_id, self.attempt, self.access_key, self.nodes, self.shadow
        )


@message(0x0400)
@dataclass(frozen=True, slots=True)
class DecryptionRequest:
    """Master -> a candidate: may this requester use this key? (initialising message).

    Without `job` (a candidate asked after the first group could not serve): answered with a
    ConsensusResponse. With `job` (a member of the group the master picked at once): the
    receiver decides access itself and, if it allows, answers with its DecryptionJobResponse
    (which says it allowed); if it refuses, with ConsensusResponse(allowed=False)."""

    session_id: SessionId
    key_id: ServerKeyId
    access: AccessRequest
    job: DecryptionJob | None = None


@message(0x0401)
@dataclass(frozen=True, slots=True)
class DecryptionJobRequest:
    """Master -> each other member of the selected group: compute your shadow point.

    `attempt`: which group of the session this is (a new group after a member was lost);
    `access_key`: a fresh random nonzero scalar of this attempt; `nodes`: the group, t+1
    node ids in ascending order, the receiver among them; `shadow`: shadow retrieval (the
    receiver also returns a decrypt shadow, encrypted to the requester it recovered itself).
    """

    session_id: SessionId
    attempt: int
    access_key: Scalar
    nodes: tuple[NodeId, ...]
    shadow: bool


@message(0x0402)
@dataclass(frozen=True, slots=True)
class DecryptionJobResponse:
    """Group member -> master: `shadow_point` P_i and, for shadow retrieval only,
    `decrypt_shadow`: ECIES(requester, d_i) of the 32-byte scalar d_i.

    When the key version has commitments (crypto/shadow_proofs.py): `proof`, the DLEQ proof
    that P_i was made with the sender's share (plain: log_G(ν_i·G) = log_{a·C}(P_i)) or with
    the blinding it publishes (shadow: log_G(Q_i) = log_{a·C}(P_i)), bound to this job; and,
    for shadow retrieval, `blinded_public` Q_i = δ_i·ν_i·G. Both None for a key without
    commitments. `receipt`: the member's signed receipt of this release
    (secretstore/audit/receipts.py), None from a node without an audit log."""

    session_id: SessionId
    attempt: int
    shadow_point: Point
    decrypt_shadow: bytes | None
    blinded_public: Point | None = None
    proof: DleqProof | None = None
    receipt: bytes | None = None


@dataclass(frozen=True, slots=True)
class MemberAnswer:
    """One group member's accepted answer to a job, as the master passes it on: its shadow
    point and, with commitments, its blinded public and proof, and its decrypt shadow sealed
    for the requester (which the proof binds; the member publishes it on the contract too)."""

    node: NodeId
    shadow_point: Point
    blinded_public: Point | None
    proof: DleqProof | None
    sealed_shadow: bytes | None


@message(0x0403)
@dataclass(frozen=True, slots=True)
class DecryptionJobResults:
    """Master -> every other group member of a broadcast (service contract) shadow retrieval,
    before its ConsensusCompleted: every member's answer to job `attempt`, in the group's
    order. Each member checks every proof itself and computes the decrypted secret, so that it
    can publish its own part (the contract's `documentKeyPersonalRetrieved`)."""

    session_id: SessionId
    attempt: int
    answers: tuple[MemberAnswer, ...]
