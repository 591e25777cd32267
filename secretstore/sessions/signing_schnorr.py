"""Threshold Schnorr signing (Parity's variant): access consensus over t+1 key holders, a nonce
generation among them, per-signer shares checked one by one, and a verified (c, s).

Request `SignSchnorr(key_id, requester_signature, message_hash)`; result a
`SchnorrSignature` (c, s) of the server key over the message hash (the key server encrypts
the 64 bytes c‖s to the requester). For the math see crypto/schnorr.py.

Flow, per attempt (a group of t+1 consenting nodes, the master among them):
1. every consenting candidate reports its share public ``Y_i = s_i·G`` (before any nonce);
2. the group runs one DKG (threshold t) for the nonce: node i gets its nonce share ``k_i``
   and everyone the same ``R = k·G`` and nonce share publics ``K_i``;
3. each member sends ``σ_i = λ_i·k_i - c·λ_i·s_i`` (``c = keccak256(m ‖ R.x)``, ``λ_i`` its
   Lagrange coefficient in the group);
4. the master checks every ``σ_i·G == λ_i·K_i - c·λ_i·Y_i``, adds them up to ``s``, and
   verifies ``(c, s)`` against the server key before it answers.

A member lost during an attempt (disconnect, error) makes the master select another group of
consenting nodes, with a fresh nonce; a member that reports its link to another broken makes
it select a group without both ends; answers to the old attempt are ignored. A nonce is
never used for two groups: with the same ``k_i`` and two different ``λ_i`` a share would
leak.
"""

from __future__ import annotations

from dataclasses import dataclass

from secretstore.audit.model import Operation
from secretstore.crypto.bound import BoundOperation
from secretstore.crypto.curve import Point, Scalar
from secretstore.crypto.schnorr import (
    SchnorrSignature,
    check_schnorr_signature_share,
    combine_message_hash_with_public,
    compute_schnorr_signature,
    compute_schnorr_signature_share,
    verify_schnorr_signature,
)
from secretstore.crypto.shamir import lagrange_coefficient
from secretstore.errors import ProtocolViolation
from secretstore.sessions.base import Effect, SessionContext, short
from secretstore.sessions.core import MasterFactory, SlaveFactory
from secretstore.sessions.signing_common import (
    Nonces,
    NonceSpec,
    SigningHalf,
    SigningPhase,
    SigningRequest,
    names,
)
from secretstore.sessions.signing_master import SigningMaster
from secretstore.sessions.signing_slave import SigningSlave
from secretstore.storage.model import KeyShare, KeyShareVersion
from secretstore.types import MessageHash, NodeId, ServerKeyId
from secretstore.wire.consensus import AccessRequest
from secretstore.wire.signing import NonceKind, SchnorrSignatureShare, SchnorrSigningRequest

__all__ = ["MASTERS", "SLAVES", "SchnorrSignature", "SignSchnorr"]


@dataclass(frozen=True, slots=True)
class SignSchnorr(SigningRequest):
    """Request: sign `message_hash` (32 bytes) with server key `key_id` (the fields as
    SigningRequest says). Result: SchnorrSignature."""


class SchnorrSigning(SigningHalf):
    """What makes a signing half (master or slave) a Schnorr one: its name in the audit log
    and in a bound signature, groups of t+1, and one nonce generation (threshold t)."""

    OPERATION = Operation.SCHNORR
    BOUND_OPERATION = BoundOperation.SIGN_SCHNORR

    @classmethod
    def _signers_needed(cls, share: KeyShare, key_id: ServerKeyId, holders: int) -> int:
        return share.threshold + 1

    def _nonce_specs(self) -> dict[NonceKind, NonceSpec]:
        return {NonceKind.SIGNATURE_NONCE: NonceSpec(self.threshold)}


def _weight(version: KeyShareVersion, node: NodeId, nodes: tuple[NodeId, ...]) -> Scalar:
    numbers = version.id_numbers_map()
    return lagrange_coefficient(numbers[node], [numbers[n] for n in nodes if n != node])


def compute_share(
    ctx: SessionContext,
    threshold: int,
    version: KeyShareVersion,
    nonces: Nonces,
    message_hash: MessageHash,
) -> Scalar:
    """This node's σ_i for the finished attempt `nonces`."""
    nonce = nonces.result(NonceKind.SIGNATURE_NONCE)
    assert nonce.joint_public is not None  # a run with publics of a nonzero secret
    numbers = version.id_numbers_map()
    own = numbers[ctx.self_id]
    others = [numbers[n] for n in nonces.nodes if n != ctx.self_id]
    combined = combine_message_hash_with_public(message_hash, nonce.joint_public)
    weight = lagrange_coefficient(own, others)
    return compute_schnorr_signature_share(
        threshold,
        combined,
        one_time_secret_coeff=weight * nonce.secret_share,
        secret_share=version.secret_share,
        id_number=own,
        other_id_numbers=others,
    )


class SchnorrSigningMaster(SchnorrSigning, SigningMaster):
    """The master of a Schnorr signing.

    | phase (waits for)            | on                             | next                         |
    |------------------------------|--------------------------------|------------------------------|
    | WAITING_FOR_ACCESS           | t+1 allowed, self among them   | WAITING_FOR_NONCES           |
    | (own check, ConsensusResp.,  | too many refused/self refused  | ENDED: AccessDenied          |
    |  SigningSharePublic)         | too few left to reach t+1      | ENDED: ConsensusUnreachable  |
    | WAITING_FOR_NONCES           | own nonce generation ended     | WAITING_FOR_SIGNATURE_SHARES |
    | (SigningNonceMessage)        | bad DKG message, SigningFault  | ENDED: ProtocolViolation     |
    | WAITING_FOR_SIGNATURE_SHARES | t+1 shares in, checked, valid  | ENDED: SchnorrSignature      |
    | (SchnorrSignatureShare)      | a share fails its check        | ENDED: ProtocolViolation     |
    |                              | shares fit, (c, s) does not    | ENDED: ProtocolViolation     |
    | either of the two above      | member lost, t+1 allowed left  | WAITING_FOR_NONCES (new)     |
    |                              | member lost, answers pending   | WAITING_FOR_ACCESS           |
    |                              | member lost, too few left      | ENDED: ConsensusUnreachable  |
    |                              | SigningNodeLost: link A–B      | WAITING_FOR_NONCES (new, not |
    |                              |  broken, a group avoids it     |  both A and B)               |
    |                              | link broken, no group avoids it| ENDED: ConsensusUnreachable  |
    Shares may arrive before the master's own generation ended; they are kept.
    """

    _shares: dict[NodeId, Scalar]

    def _init_message(self, access: AccessRequest) -> object:
        return SchnorrSigningRequest(self.session_id, self.key_id, access, self.message_hash)

    def _reset_job(self) -> None:
        self._shares = {}

    def _job_phase(self) -> SigningPhase:
        return SigningPhase.WAITING_FOR_SIGNATURE_SHARES

    def _missing(self, nonces: Nonces) -> list[NodeId]:
        return [node for node in nonces.nodes if node not in self._shares]

    def _on_nonces_done(self, nonces: Nonces) -> list[Effect]:
        own = compute_share(self.ctx, self.threshold, self.version, nonces, self.message_hash)
        self._shares[self.ctx.self_id] = own
        return self._try_complete(nonces)

    def _on_job_message(self, sender: NodeId, message: object) -> list[Effect] | None:
        if not isinstance(message, SchnorrSignatureShare):
            return None
        nonces = self.current(sender, message.attempt)
        if nonces is None:
            return []
        known = self._shares.get(sender)
        if known is not None:
            if known == message.share:
                return []  # the same share again
            raise ProtocolViolation(short(sender), "sent two different signature shares")
        self.take_receipt(sender, nonces, message.receipt)
        self._shares[sender] = message.share
        return self._try_complete(nonces)

    def _try_complete(self, nonces: Nonces) -> list[Effect]:
        if not nonces.done or len(self._shares) < len(nonces.nodes):
            return []
        nonce = nonces.result(NonceKind.SIGNATURE_NONCE)
        assert nonce.joint_public is not None
        combined = combine_message_hash_with_public(self.message_hash, nonce.joint_public)
        bad = [
            node
            for node in nonces.nodes
            if not self._share_fits(node, nonces, nonce.share_public(node), combined)
        ]
        if bad:
            return self.fail(
                ProtocolViolation(
                    names(bad), "sent a signature share that does not match its publics"
                )
            )
        signature = SchnorrSignature(combined, compute_schnorr_signature(self._shares.values()))
        if not verify_schnorr_signature(self.share.public, signature, self.message_hash):
            return self.misfit(nonces.nodes)
        return self.complete(signature, nonces.nodes, nonces.attempt)

    def _share_fits(
        self, node: NodeId, nonces: Nonces, nonce_public: Point, combined: Scalar
    ) -> bool:
        weight = _weight(self.version, node, nonces.nodes)
        others = [self.id_numbers[n] for n in nonces.nodes if n != node]
        return check_schnorr_signature_share(
            combined,
            self._shares[node],
            share_public=self.share_public_of(node),
            one_time_public=nonce_public * weight,
            id_number=self.id_numbers[node],
            other_id_numbers=others,
        )


class SchnorrSigningSlave(SchnorrSigning, SigningSlave):
    """A candidate of someone else's Schnorr signing.

    | phase (waits for)         | on                                  | next                      |
    |---------------------------|-------------------------------------|---------------------------|
    | WAITING_FOR_ACCESS_CHECK  | allowed (answer, share public sent) | WAITING_FOR_NONCE_REQUEST |
    | (own access check)        | refused (answer sent)               | ENDED                     |
    | WAITING_FOR_NONCE_REQUEST | valid SigningNonceRequest           | WAITING_FOR_NONCES        |
    | WAITING_FOR_NONCES        | generation ended (share sent)       | WAITING_FOR_END           |
    | (SigningNonceMessage)     | a peer breaks it (SigningFault sent)| WAITING_FOR_NONCE_REQUEST |
    |                           | a member disconnects (reported)     | WAITING_FOR_NONCE_REQUEST |
    | WAITING_FOR_NONCE_REQUEST | a group with a peer lost earlier    | WAITING_FOR_NONCE_REQUEST |
    |                           | (SigningNodeLost sent, no DKG)      |                           |
    | WAITING_FOR_END           | a newer SigningNonceRequest         | WAITING_FOR_NONCES        |
    | any                       | ConsensusCompleted, master's error  | ENDED                     |
    |                           | the master breaks the protocol      | ENDED: ProtocolViolation  |
    Nonce messages of an attempt this node has not been asked for yet are kept until it is.
    """

    def _reset_job(self) -> None:
        pass

    def _job_phase(self) -> SigningPhase:
        return SigningPhase.WAITING_FOR_END

    def _on_nonces_done(self, nonces: Nonces) -> list[Effect]:
        share = compute_share(self.ctx, self.threshold, self.version, nonces, self.message_hash)
        return self.release(nonces, SchnorrSignatureShare(self.session_id, nonces.attempt, share))

    def _on_job_message(self, message: object) -> list[Effect] | None:
        return None


# --- factories ---------------------------------------------------------------------------


#: The master factory (SigningMaster.open) and the slave factory (SigningSlave.join).
start_schnorr_signing = SchnorrSigningMaster.open
join_schnorr_signing = SchnorrSigningSlave.join

MASTERS: dict[type, MasterFactory] = {SignSchnorr: start_schnorr_signing}
SLAVES: dict[type, SlaveFactory] = {SchnorrSigningRequest: join_schnorr_signing}
