"""Broadcast shadow retrieval: every member of the job learns the result and its own part.

A service contract's shadow retrieval is answered by each participant itself
(`documentKeyPersonalRetrieved`: the participants, the decrypted secret D, its own decrypt
shadow encrypted to the requester). So the master passes every accepted answer on to the other
members (`DecryptionJobResults`), and each member checks them itself: the group is the job's,
its own answer is the one it sent, and, for a key with commitments, every other member's proof
verifies against the member's share public, bound to the decrypt shadow that member sealed
for the requester (crypto/shadow_proofs.py), before it computes
D = E − (−1)^t·a⁻¹·Σ P_i. A master cannot make a member publish a D the answers do not give.
For a key without commitments the points cannot be checked (as Parity).

A master that holds no share of the version the holders agree on delegates the retrieval to a
holder (sessions/jobs/delegation.py); its result is then `ServedByMembers`: it is no member
and publishes nothing. Pure.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from secretstore.crypto.curve import Point
from secretstore.crypto.shadow import compute_joint_shadow_point, decrypt_with_joint_shadow
from secretstore.crypto.shadow_proofs import JobStatement, verify_job_answer
from secretstore.sessions.base import short
from secretstore.types import NodeId
from secretstore.wire.decryption import DecryptionJobRequest, DecryptionJobResponse, MemberAnswer


@dataclass(frozen=True, slots=True)
class PersonalShare:
    """This node's part of a broadcast shadow retrieval: the job's `participants` (ascending
    node ids), the decrypted secret D they give, and this node's decrypt shadow (ECIES to the
    requester, 145 bytes)."""

    participants: tuple[NodeId, ...]
    decrypted_secret: Point
    decrypt_shadow: bytes


@dataclass(frozen=True, slots=True)
class ServedByMembers:
    """The end of a broadcast retrieval on a master that delegated it: `delegate` ran it among
    `participants` (ascending node ids, the delegate among them), who publish their parts."""

    delegate: NodeId
    participants: tuple[NodeId, ...]


def member_answers(
    nodes: tuple[NodeId, ...], responses: Mapping[NodeId, DecryptionJobResponse]
) -> tuple[MemberAnswer, ...]:
    """The answers of a completed job to pass on, in the group's order."""
    return tuple(
        MemberAnswer(
            node,
            responses[node].shadow_point,
            responses[node].blinded_public,
            responses[node].proof,
            responses[node].decrypt_shadow,
        )
        for node in nodes
    )


def answers_problem(
    statement: JobStatement | None,
    job: DecryptionJobRequest,
    own_id: NodeId,
    own: DecryptionJobResponse,
    answers: tuple[MemberAnswer, ...],
) -> str | None:
    """What is wrong with the answers a master passed on for `job` (None: nothing)."""
    if tuple(answer.node for answer in answers) != job.nodes:
        return "passed on answers of another group than the job's"
    for answer in answers:
        if answer.shadow_point.is_identity():
            return f"passed on the identity as node {short(answer.node)}'s shadow point"
        if answer.node == own_id:
            mine = (own.shadow_point, own.blinded_public, own.proof, own.decrypt_shadow)
            theirs = (
                answer.shadow_point,
                answer.blinded_public,
                answer.proof,
                answer.sealed_shadow,
            )
            if theirs != mine:
                return "passed on another answer than this node's own"
            continue
        if statement is None:
            continue
        if answer.proof is None or answer.blinded_public is None:
            return f"passed on node {short(answer.node)}'s answer without its proof"
        if not verify_job_answer(
            statement,
            answer.node,
            answer.shadow_point,
            answer.blinded_public,
            answer.proof,
            sealed=answer.sealed_shadow,
        ):
            return f"passed on node {short(answer.node)}'s answer whose proof does not verify"
    return None


def broadcast_secret(
    threshold: int,
    job: DecryptionJobRequest,
    encrypted_point: Point,
    answers: tuple[MemberAnswer, ...],
) -> Point:
    """D from the (checked) answers of `job`."""
    joint = compute_joint_shadow_point(answer.shadow_point for answer in answers)
    return decrypt_with_joint_shadow(threshold, job.access_key, encrypted_point, joint)
