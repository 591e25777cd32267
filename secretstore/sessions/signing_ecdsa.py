"""Threshold ECDSA signing (Parity's scheme, with masked signature shares): access consensus
over 2t+1 key holders, four nonce generations among them, an inversion round, proven shares,
and a recoverable r‖s‖v.

Request `SignEcdsa(key_id, requester_signature, message_hash)`; result the 65 bytes
``r ‖ s ‖ v`` (low s, v ∈ {0, 1}) of a standard secp256k1 signature of the message hash by the
server key, checked to recover to the server key public before it is returned (the key server
encrypts it to the requester). For the math see crypto/ecdsa.py.

Flow, per attempt (a group of 2t+1 consenting nodes, the master among them):
1. every consenting candidate reports its share public ``Y_i = s_i·G`` (before any nonce);
2. the group runs four DKGs: the nonce ``k`` (threshold t, public ``R``), the blinding ``e``
   (threshold t) and two sharings of zero (threshold 2t), ``z`` for the inversion and ``z'``
   for the signature; member i holds ``k_i, e_i, z_i, z'_i`` and everyone the share publics
   ``K_i, E_i, Z_i, Z'_i``;
3. each member sends ``u_i = k_i·e_i + z_i`` with a proof that ``u_i·G - Z_i = e_i·K_i``;
   the master checks the proofs and sends ``w = (k·e)⁻¹`` (interpolated from the ``u_i``);
4. each member sends ``σ'_i = w·e_i·(h + s_i·r) + z'_i`` with a proof that
   ``σ'_i·G - Z'_i = e_i·w·(h·G + r·Y_i)``; the master checks them, interpolates ``s`` and
   checks that the signature recovers to the server key.
The mask ``z'`` keeps the master from learning the key: unmasked, the 2t+1 signature shares
are the points of ``w·e(x)·(h + r·s(x))``, which it could factor (docs/sessions/signing.md).
With t = 0 the master signs with its share directly (it is the key), as Parity does.

A member lost during an attempt makes the master select another group with fresh nonces; a
broken link between two members, one without both ends.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from secretstore.audit.model import Operation
from secretstore.crypto.bound import BoundOperation
from secretstore.crypto.curve import G, Point, Scalar
from secretstore.crypto.dleq import DleqProof, prove_equal_logs, verify_equal_logs
from secretstore.crypto.ecdsa import (
    combine_ecdsa_signature,
    compute_ecdsa_inversed_secret_coeff_from_shares,
    compute_ecdsa_inversed_secret_coeff_share,
    compute_ecdsa_partial_signature,
    compute_ecdsa_r,
    message_hash_scalar,
    signers_needed,
)
from secretstore.crypto.keys import recover_public, sign_recoverable
from secretstore.errors import ConsensusUnreachable, CryptoError, InvalidRequest, ProtocolViolation
from secretstore.sessions.base import Effect, Send, SessionContext, Wake, short
from secretstore.sessions.consensus import GroupSelected
from secretstore.sessions.core import MasterFactory, SlaveFactory
from secretstore.sessions.dkg import DkgResult
from secretstore.sessions.presign import Presignature, PresignedNonces, StoredNonce
from secretstore.sessions.signing_common import (
    NonceRuns,
    Nonces,
    NonceSpec,
    SigningHalf,
    SigningPhase,
    SigningRequest,
    names,
)
from secretstore.sessions.signing_master import SigningMaster
from secretstore.sessions.signing_slave import SigningSlave
from secretstore.storage.model import KeyShare
from secretstore.types import MessageHash, NodeId, ServerKeyId, SessionId
from secretstore.wire.consensus import AccessRequest, ConsensusResponse
from secretstore.wire.signing import (
    EcdsaInversedNonceShare,
    EcdsaSignatureRequest,
    EcdsaSignatureShare,
    EcdsaSigningRequest,
    NonceKind,
    PresignUse,
)

#: The attempt of a signing that uses a presignature (a later one runs fresh nonces).
PRESIGNED_ATTEMPT: Final = 1
#: Seconds after which a master whose presigned group has not answered in full asks the
#: other holders (a member may be silent; a lost member makes it ask them at once).
ASK_OTHERS_AFTER: Final = 1.0

#: Length of the result: r‖s‖v.
SIGNATURE_LENGTH = 65


@dataclass(frozen=True, slots=True)
class SignEcdsa(SigningRequest):
    """Request: sign `message_hash` (32 bytes, not zero mod n) with server key `key_id` (the
    fields as SigningRequest says). Result: 65 bytes r‖s‖v (bytes)."""


def ecdsa_nonce_specs(threshold: int) -> dict[NonceKind, NonceSpec]:
    """The four nonce generations of an ECDSA attempt (or presignature)."""
    return {
        NonceKind.SIGNATURE_NONCE: NonceSpec(threshold),
        NonceKind.INVERSION_NONCE: NonceSpec(threshold),
        NonceKind.INVERSION_ZERO: NonceSpec(2 * threshold, zero_secret=True),
        NonceKind.SIGNATURE_ZERO: NonceSpec(2 * threshold, zero_secret=True),
    }


class EcdsaSigning(SigningHalf):
    """What makes a signing half (master or slave) an ECDSA one: its name in the audit log
    and in a bound signature, groups of 2t+1, and the four nonce generations."""

    OPERATION = Operation.ECDSA
    BOUND_OPERATION = BoundOperation.SIGN_ECDSA

    @classmethod
    def _signers_needed(cls, share: KeyShare, key_id: ServerKeyId, holders: int) -> int:
        needed = signers_needed(share.threshold)
        if needed > holders:
            raise ConsensusUnreachable(
                f"ECDSA signing with threshold {share.threshold} needs {needed} holders of key "
                f"0x{key_id.hex()}; it has {holders}"
            )
        return needed

    def _nonce_specs(self) -> dict[NonceKind, NonceSpec]:
        return ecdsa_nonce_specs(self.threshold)


def signature_mask(nonces: Nonces) -> DkgResult | StoredNonce:
    """The sharing of zero that masks the signature shares of the attempt `nonces`: a member
    adds its share ``z'_i`` to its σ_i, the master takes the share public ``Z'_i`` off
    ``σ'_i·G`` to check the proof. Both read it here and only here (a test replaces it with
    a sharing whose every coefficient is zero, to show what unmasked shares give away)."""
    return nonces.result(NonceKind.SIGNATURE_ZERO)


def proof_context(step: bytes, session_id: SessionId, attempt: int, node: NodeId) -> bytes:
    """What a member's proof is bound to: the step, the session, the attempt and the member."""
    return b"ecdsa-" + step + session_id + attempt.to_bytes(8, "big") + node


def signature_base(
    inversed_nonce_coeff: Scalar, nonce_public: Point, message_hash: bytes, share_public: Point
) -> Point:
    """``B_i = w·(h·G + r·Y_i)``: ``σ'_i·G - Z'_i = e_i·B_i`` for an honest member."""
    r = compute_ecdsa_r(nonce_public)
    h = message_hash_scalar(message_hash)
    return (Point.base_mul(h) + share_public * r) * inversed_nonce_coeff


def inverse_share_holds(
    nonces: Nonces, session_id: SessionId, node: NodeId, share: Scalar, proof: DleqProof
) -> bool:
    """Whether member `node`'s ``u_j`` of the ended generations `nonces` carries its proof
    that ``u_j·G - Z_j = e_j·K_j`` (bound to `session_id`, the attempt and the member)."""
    nonce_public = nonces.result(NonceKind.SIGNATURE_NONCE).share_public(node)
    blinding_public = nonces.result(NonceKind.INVERSION_NONCE).share_public(node)
    zero_public = nonces.result(NonceKind.INVERSION_ZERO).share_public(node)
    product = Point.base_mul(share) - zero_public
    context = proof_context(b"u", session_id, nonces.attempt, node)
    return verify_equal_logs(proof, G, blinding_public, nonce_public, product, context=context)


def inverse_share(nonces: Nonces) -> Scalar:
    """This node's ``u = k·e + z`` of the ended generations `nonces`."""
    k = nonces.result(NonceKind.SIGNATURE_NONCE).secret_share
    e = nonces.result(NonceKind.INVERSION_NONCE).secret_share
    z = nonces.result(NonceKind.INVERSION_ZERO).secret_share
    return compute_ecdsa_inversed_secret_coeff_share(k, e, z)


def prove_inverse_share(
    ctx: SessionContext, nonces: NonceRuns, session_id: SessionId
) -> EcdsaInversedNonceShare:
    """This member's ``u = k·e + z`` of the ended generations, with its proof."""
    k = nonces.result(NonceKind.SIGNATURE_NONCE).secret_share
    e = nonces.result(NonceKind.INVERSION_NONCE).secret_share
    context = proof_context(b"u", session_id, nonces.attempt, ctx.self_id)
    proof = prove_equal_logs(e, G, Point.base_mul(k), ctx.rng, context=context)
    return EcdsaInversedNonceShare(session_id, nonces.attempt, inverse_share(nonces), proof)


def masked_signature_share(
    nonces: Nonces, inversed_nonce_coeff: Scalar, secret_share: Scalar, message_hash: bytes
) -> Scalar:
    """This node's ``σ'_i = w·e_i·(h + s_i·r) + z'_i`` of the ended generations `nonces`."""
    return compute_ecdsa_partial_signature(
        inversed_nonce_coeff,
        nonces.result(NonceKind.INVERSION_NONCE).secret_share,
        secret_share,
        _nonce_public(nonces),
        message_hash,
        signature_zero_share=signature_mask(nonces).secret_share,
    )


def signature_share(
    ctx: SessionContext,
    nonces: Nonces,
    session_id: SessionId,
    *,
    inversed_nonce_coeff: Scalar,
    secret_share: Scalar,
    message_hash: bytes,
) -> tuple[Scalar, DleqProof]:
    """This member's ``σ'_i = w·e_i·(h + s_i·r) + z'_i`` and its proof."""
    e = nonces.result(NonceKind.INVERSION_NONCE).secret_share
    nonce_public = _nonce_public(nonces)
    share = masked_signature_share(nonces, inversed_nonce_coeff, secret_share, message_hash)
    own_public = Point.base_mul(secret_share)
    base = signature_base(inversed_nonce_coeff, nonce_public, message_hash, own_public)
    context = proof_context(b"s", session_id, nonces.attempt, ctx.self_id)
    proof = prove_equal_logs(e, G, base, ctx.rng, context=context)
    return share, proof


def _nonce_public(nonces: Nonces) -> Point:
    public = nonces.result(NonceKind.SIGNATURE_NONCE).joint_public
    assert public is not None  # a run with publics of a nonzero secret
    return public


class EcdsaSigningMaster(EcdsaSigning, SigningMaster):
    """The master of an ECDSA signing (phases by what they wait for).

    | phase                    | on                                | next                       |
    |--------------------------|-----------------------------------|----------------------------|
    | WAITING_FOR_ACCESS       | 2t+1 allowed, self among them     | WAITING_FOR_NONCES;        |
    | (own check, Consensus-   |                                   | t = 0: ENDED: r‖s‖v        |
    |  Response, SharePublic)  | too many refused / self refused   | ENDED: AccessDenied        |
    |                          | too few left to reach 2t+1        | ENDED: ConsensusUnreachable|
    | WAITING_FOR_NONCES       | own four generations ended        | ..._INVERSED_NONCE_SHARES  |
    | (SigningNonceMessage)    | bad DKG message, SigningFault     | ENDED: ProtocolViolation   |
    | WAITING_FOR_INVERSED_    | all u_i in, proven (w sent)       | ..._SIGNATURE_SHARES       |
    |  NONCE_SHARES            | a proof fails                     | ENDED: ProtocolViolation   |
    | WAITING_FOR_SIGNATURE_   | all σ'_i in, proven, recovers to Y| ENDED: r‖s‖v               |
    |  SHARES                  | a proof fails / recovers to other | ENDED: ProtocolViolation   |
    | any of the three above   | member lost, 2t+1 allowed remain  | WAITING_FOR_NONCES (new)   |
    |                          | member lost, answers pending      | WAITING_FOR_ACCESS         |
    |                          | member lost, too few left         | ENDED: ConsensusUnreachable|
    |                          | SigningNodeLost: link A–B broken, | WAITING_FOR_NONCES (new,   |
    |                          |  a group without both remains     |  not both A and B)         |
    |                          | link broken, no such group left   | ENDED: ConsensusUnreachable|
    |                          |                                   |  naming the broken links   |
    """

    #: the group of the presignature this signing tried first (empty without one)
    _presigned_group: frozenset[NodeId] = frozenset()
    _inverse_shares: dict[NodeId, tuple[Scalar, DleqProof | None]]
    _signature_shares: dict[NodeId, tuple[Scalar, DleqProof | None]]
    _inversed_nonce_coeff: Scalar | None

    def _init_message(self, access: AccessRequest) -> object:
        return EcdsaSigningRequest(self.session_id, self.key_id, access, self.message_hash)

    def _reset_job(self) -> None:
        self._inverse_shares = {}
        self._signature_shares = {}
        self._inversed_nonce_coeff = None

    @classmethod
    def _check_hash(cls, message_hash: MessageHash) -> None:
        try:
            message_hash_scalar(message_hash)
        except CryptoError:
            raise InvalidRequest(
                "an ECDSA message hash cannot be zero modulo the curve order"
            ) from None

    def _job_phase(self) -> SigningPhase:
        if self._inversed_nonce_coeff is None:
            return SigningPhase.WAITING_FOR_INVERSED_NONCE_SHARES
        return SigningPhase.WAITING_FOR_SIGNATURE_SHARES

    def _on_access_answer(self, sender: NodeId, message: ConsensusResponse) -> list[Effect] | None:
        if message.allowed:
            return self._on_presigned_answer(sender, allowed=True)
        return None

    def _missing(self, nonces: Nonces) -> list[NodeId]:
        inverting = self._inversed_nonce_coeff is None
        waiting = self._inverse_shares if inverting else self._signature_shares
        return [node for node in nonces.nodes if node not in waiting]

    def _begin(self, group: GroupSelected) -> list[Effect]:
        if self.threshold > 0:
            return super()._begin(group)
        # t = 0: every share is the key itself; sign here, as Parity does
        signature = sign_recoverable(self.version.secret_share, self.message_hash)
        if recover_public(signature, self.message_hash) != self.share.public:
            return self.misfit(group.nodes)
        return self.complete(signature, group.nodes, group.attempt)

    def _on_nonces_done(self, nonces: Nonces) -> list[Effect]:
        self._inverse_shares[self.ctx.self_id] = (inverse_share(nonces), None)
        return self._try_invert(nonces)

    def _on_job_message(self, sender: NodeId, message: object) -> list[Effect] | None:
        if isinstance(message, EcdsaInversedNonceShare):
            nonces = self.current(sender, message.attempt)
            if nonces is None:
                return []
            self._keep(self._inverse_shares, sender, message.share, message.proof)
            return self._try_invert(nonces)
        if isinstance(message, EcdsaSignatureShare):
            if message.attempt == PRESIGNED_ATTEMPT:
                answered = self._on_presigned_answer(sender, allowed=False)
                if answered is not None:
                    return answered
            nonces = self.current(sender, message.attempt)
            if nonces is None:
                return []
            if self._inversed_nonce_coeff is None:
                raise ProtocolViolation(short(sender), "sent a signature share unasked")
            self._keep(self._signature_shares, sender, message.share, message.proof)
            self.take_receipt(sender, nonces, message.receipt)
            return self._try_sign(nonces)
        return None

    def _keep(
        self,
        shares: dict[NodeId, tuple[Scalar, DleqProof | None]],
        sender: NodeId,
        share: Scalar,
        proof: DleqProof,
    ) -> None:
        known = shares.get(sender)
        if known is not None and known != (share, proof):
            raise ProtocolViolation(short(sender), "sent two different shares for one step")
        shares[sender] = (share, proof)

    def _try_invert(self, nonces: Nonces) -> list[Effect]:
        shares = self._inverse_shares
        if not nonces.done or self._inversed_nonce_coeff is not None:
            return []
        if len(shares) < len(nonces.nodes):
            return []
        bad = [node for node in nonces.nodes if not self._inverse_share_holds(nonces, node)]
        if bad:
            return self.fail(
                ProtocolViolation(names(bad), "sent an inversed nonce share that is not proven")
            )
        numbers = [self.id_numbers[node] for node in nonces.nodes]
        coeff = compute_ecdsa_inversed_secret_coeff_from_shares(
            self.threshold, numbers, [shares[node][0] for node in nonces.nodes]
        )
        self._inversed_nonce_coeff = coeff
        request = EcdsaSignatureRequest(self.session_id, nonces.attempt, coeff)
        effects: list[Effect] = self.broadcast(request, nonces.nodes)
        return effects + self._sign_own(nonces, coeff)

    def _inverse_share_holds(self, nonces: Nonces, node: NodeId) -> bool:
        share, proof = self._inverse_shares[node]
        if proof is None:
            return node == self.ctx.self_id
        return inverse_share_holds(nonces, self.session_id, node, share, proof)

    # --- a presigned attempt -------------------------------------------------------------
    def _start_presigned(self, access: AccessRequest) -> list[Effect] | None:
        """With a presignature of this key version whose group can take part: ask its
        members only, with the presignature named (their answer is their signature share);
        it is out of the pool from now on, whatever happens."""
        pool = self.ctx.presigns
        if pool is None or self.threshold == 0:
            return None
        candidates = self.consensus.candidates
        presignature = pool.take(
            self.key_id, self.version.hash, lambda nodes: set(nodes) <= candidates
        )
        coeff = None if presignature is None else presignature.inversed_nonce_coeff
        if presignature is None or coeff is None:
            return None
        group = self.consensus.preselect(presignature.nodes)
        self._presigned_group = frozenset(group.nodes)
        nonces = PresignedNonces(presignature, group.attempt)
        nonces.handled = True
        self.nonces = nonces
        self._inversed_nonce_coeff = coeff
        for node, public in presignature.share_publics:
            self.share_publics.setdefault(node, public)
        use = PresignUse(presignature.presign_id, coeff)
        init = EcdsaSigningRequest(self.session_id, self.key_id, access, self.message_hash, use)
        effects = self.consensus.start(init, to=group.nodes)
        if self.consensus.unasked:
            effects.append(Wake(self.session_id, ASK_OTHERS_AFTER))
        return effects

    def _presigned_running(self) -> PresignedNonces | None:
        nonces = self.nonces
        return nonces if isinstance(nonces, PresignedNonces) else None

    def on_access_checked(self, allowed: bool) -> list[Effect]:
        """Its own policy's answer; in a presigned attempt its own share follows."""
        effects = super().on_access_checked(allowed)
        nonces = self._presigned_running()
        if self.finished or nonces is None or self.ctx.self_id not in self.consensus.allowed:
            return effects
        return effects + self._guarded(lambda: self._own_signature_share(nonces))

    def _own_signature_share(self, nonces: Nonces) -> list[Effect]:
        coeff = self._inversed_nonce_coeff
        if coeff is None or self.ctx.self_id in self._signature_shares:
            return []
        return self._sign_own(nonces, coeff)

    def _sign_own(self, nonces: Nonces, coeff: Scalar) -> list[Effect]:
        """Keep this node's own σ'_i (it needs no proof), then sign if every share is in."""
        own = masked_signature_share(nonces, coeff, self.version.secret_share, self.message_hash)
        self._signature_shares[self.ctx.self_id] = (own, None)
        return self._try_sign(nonces)

    def _on_presigned_answer(self, sender: NodeId, allowed: bool) -> list[Effect] | None:
        """A member of the presigned group answered access: a signature share says it
        allowed (None: handle the share as usual); a plain "allowed" says it lacks its part,
        so the presigned attempt cannot be done and the next group runs fresh nonces."""
        if sender not in self._presigned_group or sender in self.consensus.allowed:
            return None
        decision = self.consensus.on_response(sender, ConsensusResponse(self.session_id, True))
        effects = self._follow(decision)
        if self.finished or effects or self._presigned_running() is None:
            return effects  # ended, or the presigned attempt was given up already
        if not allowed:
            return None  # its share is for the running presigned attempt: handle it
        return self._follow(self.consensus.drop_group())

    def _try_sign(self, nonces: Nonces) -> list[Effect]:
        shares = self._signature_shares
        if len(shares) < len(nonces.nodes):
            return []
        bad = [node for node in nonces.nodes if not self._signature_share_holds(nonces, node)]
        if bad:
            return self.fail(
                ProtocolViolation(names(bad), "sent a signature share that is not proven")
            )
        numbers = [self.id_numbers[node] for node in nonces.nodes]
        signature = combine_ecdsa_signature(
            self.threshold, _nonce_public(nonces), [shares[n][0] for n in nonces.nodes], numbers
        )
        try:
            recovered = recover_public(signature, self.message_hash)
        except CryptoError:
            return self.misfit(nonces.nodes)
        if recovered != self.share.public:
            return self.misfit(nonces.nodes)
        return self.complete(signature, nonces.nodes, nonces.attempt)

    def _signature_share_holds(self, nonces: Nonces, node: NodeId) -> bool:
        share, proof = self._signature_shares[node]
        if proof is None:
            return node == self.ctx.self_id
        assert self._inversed_nonce_coeff is not None
        base = signature_base(
            self._inversed_nonce_coeff,
            _nonce_public(nonces),
            self.message_hash,
            self.share_public_of(node),
        )
        blinding_public = nonces.result(NonceKind.INVERSION_NONCE).share_public(node)
        unmasked = Point.base_mul(share) - signature_mask(nonces).share_public(node)
        context = proof_context(b"s", self.session_id, nonces.attempt, node)
        return verify_equal_logs(proof, G, blinding_public, base, unmasked, context=context)


class EcdsaSigningSlave(EcdsaSigning, SigningSlave):
    """A candidate of someone else's ECDSA signing.

    | phase                    | on                                   | next                      |
    |--------------------------|--------------------------------------|---------------------------|
    | WAITING_FOR_ACCESS_CHECK | allowed (answer, share public sent)  | WAITING_FOR_NONCE_REQUEST |
    |                          | refused (answer sent)                | ENDED                     |
    | WAITING_FOR_NONCE_REQ.   | valid SigningNonceRequest            | WAITING_FOR_NONCES        |
    | WAITING_FOR_NONCES       | four generations ended (u_i sent)    | ..._SIGNATURE_REQUEST     |
    | (SigningNonceMessage)    | a peer breaks one (SigningFault sent)| WAITING_FOR_NONCE_REQUEST |
    |                          | a member disconnects (reported)      | WAITING_FOR_NONCE_REQUEST |
    | WAITING_FOR_NONCE_REQ.   | a group with a peer lost earlier     | WAITING_FOR_NONCE_REQUEST |
    |                          | (SigningNodeLost sent, no DKG)       |                           |
    | WAITING_FOR_SIGNATURE_   | EcdsaSignatureRequest (σ'_i sent)    | WAITING_FOR_END           |
    |  REQUEST                 |                                      |                           |
    | WAITING_FOR_END          | a newer SigningNonceRequest          | WAITING_FOR_NONCES        |
    | any                      | ConsensusCompleted, master's error   | ENDED                     |
    |                          | the master breaks the protocol       | ENDED: ProtocolViolation  |
    """

    _signature_request: EcdsaSignatureRequest | None

    @classmethod
    def _check_hash(cls, master: NodeId, message_hash: MessageHash) -> None:
        try:
            message_hash_scalar(message_hash)
        except CryptoError:
            raise ProtocolViolation(short(master), "asked to sign a zero message hash") from None

    def _reset_job(self) -> None:
        self._signature_request = None

    def _job_phase(self) -> SigningPhase:
        if self._signature_request is None:
            return SigningPhase.WAITING_FOR_SIGNATURE_REQUEST
        return SigningPhase.WAITING_FOR_END

    def _on_nonces_done(self, nonces: Nonces) -> list[Effect]:
        assert isinstance(nonces, NonceRuns)  # a presigned attempt ends here already
        return [Send(self.master, prove_inverse_share(self.ctx, nonces, self.session_id))]

    def _on_job_message(self, message: object) -> list[Effect] | None:
        if not isinstance(message, EcdsaSignatureRequest):
            return None
        if message.attempt < self.attempt:
            return []  # a request of an abandoned attempt
        if message.attempt > self.attempt:
            raise self.violation(f"sent a signature request for attempt {message.attempt}")
        nonces = self.nonces
        if nonces is None:
            return []  # this node gave the attempt up and told the master
        if not nonces.handled:
            raise self.violation("sent a signature request before this node's inversed share")
        last = self._signature_request
        if last is not None:
            if last == message:
                return []
            raise self.violation("sent two different signature requests")
        if message.inversed_nonce_coeff.is_zero():
            raise self.violation("sent a zero inversed nonce coefficient")
        self._signature_request = message
        return self._sign(nonces, message.inversed_nonce_coeff)

    def _sign(self, nonces: Nonces, coeff: Scalar) -> list[Effect]:
        share, proof = signature_share(
            self.ctx,
            nonces,
            self.session_id,
            inversed_nonce_coeff=coeff,
            secret_share=self.version.secret_share,
            message_hash=self.message_hash,
        )
        reply = EcdsaSignatureShare(self.session_id, nonces.attempt, share, proof)
        return self.release(nonces, reply)

    def on_access_checked(self, allowed: bool) -> list[Effect]:
        """With a presignature named in the request: sign with it at once (its part taken
        out of the pool first, so it is never used again), which is this node's "allowed";
        without its part (used, dropped, lost in a restart) or one that does not fit this
        signing, answer as without a presignature."""
        presigned = self.presigned
        pool = self.ctx.presigns
        if self.finished or not allowed or presigned is None or pool is None:
            return super().on_access_checked(allowed)
        if self.check.allowed is not None:
            return []
        part = pool.claim(presigned.presign_id, self.master)
        if part is None or not self._fits(part) or presigned.inversed_nonce_coeff.is_zero():
            return super().on_access_checked(allowed)
        self.check.decide(True)
        nonces = PresignedNonces(part, PRESIGNED_ATTEMPT)
        nonces.handled = True
        self.nonces = nonces
        self.mark_attempt(PRESIGNED_ATTEMPT, part.nodes)
        self._signature_request = EcdsaSignatureRequest(
            self.session_id, PRESIGNED_ATTEMPT, presigned.inversed_nonce_coeff
        )
        return self._sign(nonces, presigned.inversed_nonce_coeff)

    @property
    def presigned(self) -> PresignUse | None:
        init = self._init
        return init.presigned if isinstance(init, EcdsaSigningRequest) else None

    def _fits(self, part: Presignature) -> bool:
        """Whether the part was made for this key, version and master, with this node."""
        return (
            part.key_id == self.key_id
            and part.version == self.version.hash
            and part.master == self.master
            and len(part.nodes) == self.needed
            and self.ctx.self_id in part.nodes
            and self.master in part.nodes
        )


# --- factories ---------------------------------------------------------------------------


#: The master factory (SigningMaster.open) and the slave factory (SigningSlave.join).
start_ecdsa_signing = EcdsaSigningMaster.open
join_ecdsa_signing = EcdsaSigningSlave.join

MASTERS: dict[type, MasterFactory] = {SignEcdsa: start_ecdsa_signing}
SLAVES: dict[type, SlaveFactory] = {EcdsaSigningRequest: join_ecdsa_signing}
