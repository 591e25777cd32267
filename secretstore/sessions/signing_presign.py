"""ECDSA presigning: the four nonce generations and the inversion of one ECDSA attempt, run
ahead of any request among 2t+1 holders of a key version, kept in each node's pool
(sessions/presign.py) until one signing uses them.

Request `Presign(key_id)` on the master (its newest version of the key; a random group of
2t+1 connected holders, the master among them); result the master's `Presignature` (also put
in its pool). Flow:

```
master                                        member j (each other node of the group)
  | PresignRequest(sid, key_id, version, group) -->   checks; SigningSharePublic(Y_j) back
  | every Y_j in (each checked against the key's commitments when it has them):
  | SigningNonceRequest(sid, 1, group) -->            the four generations start
  | <==> SigningNonceMessage (kinds 0–3: k, e, z, z'; the same verified DKGs as a signing)
  | <-- EcdsaInversedNonceShare(sid, 1, u_j, proof)   u_j = k_j·e_j + z_j, proven as in signing
  | every proof checked; w = (Σ λ_j·u_j)⁻¹; the master's part in its pool
  | PresignKept(sid) -->                              the member's part (e_j, z'_j, R) held
```

| phase (master)             | on                                   | next                        |
|----------------------------|--------------------------------------|-----------------------------|
| WAITING_FOR_SHARE_PUBLICS  | every member's Y_j (fitting the key) | WAITING_FOR_NONCES          |
| WAITING_FOR_NONCES         | own generations ended (own u kept)   | WAITING_FOR_INVERSED_SHARES |
| WAITING_FOR_INVERSED_SHARES| every u_j in and proven              | ENDED: kept, PresignKept    |
| any                        | a bad message, a SigningFault, a     | ENDED: ProtocolViolation    |
|                            |  member lost, a proof that fails     |  naming the node            |

| phase (member)             | on                                   | next                        |
|----------------------------|--------------------------------------|-----------------------------|
| WAITING_FOR_NONCE_REQUEST  | SigningNonceRequest for the group    | WAITING_FOR_NONCES          |
|                            | (peers' nonce messages kept for it)  |                             |
| WAITING_FOR_NONCES         | generations ended (u_j sent)         | WAITING_FOR_KEPT            |
|                            | a peer breaks one (SigningFault sent)| ENDED                       |
| WAITING_FOR_KEPT           | PresignKept                          | ENDED: part held            |
| any                        | the master's SessionError, a member  | ENDED (nothing held)        |
|                            |  lost                                |                             |

Nothing about a requester or a message exists yet, so no access is checked here: each
member checks access itself when a signing asks it to use its part (signing_ecdsa.py). What
the master learns here is what it learns in the first steps of a signing, before the
message: R, u and w (docs/sessions/signing.md, "Presigning").
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from itertools import pairwise

from secretstore.crypto.curve import ZERO, Point, Scalar
from secretstore.crypto.dleq import DleqProof
from secretstore.crypto.ecdsa import compute_ecdsa_inversed_secret_coeff_from_shares, signers_needed
from secretstore.crypto.shadow_proofs import share_public
from secretstore.errors import (
    ConsensusUnreachable,
    InvalidRequest,
    ProtocolViolation,
    SecretStoreError,
)
from secretstore.sessions.base import Effect, Send, Session, SessionContext, short
from secretstore.sessions.consensus import random_sample, require_share, select_version
from secretstore.sessions.core import MasterFactory, SlaveFactory
from secretstore.sessions.presign import Presignature, StoredNonce
from secretstore.sessions.signing_common import (
    GuardedSession,
    NonceRuns,
    culprit_of,
    feed_nonce_message,
    names,
    what_of,
)
from secretstore.sessions.signing_ecdsa import (
    ecdsa_nonce_specs,
    inverse_share,
    inverse_share_holds,
    prove_inverse_share,
)
from secretstore.sessions.signing_slave import MESSAGES_PER_GENERATION
from secretstore.storage.model import KeyShare, KeyShareVersion
from secretstore.types import Hash256, NodeId, ServerKeyId, SessionId
from secretstore.wire.signing import (
    EcdsaInversedNonceShare,
    NonceKind,
    PresignKept,
    PresignRequest,
    SigningFault,
    SigningNonceMessage,
    SigningNonceRequest,
    SigningSharePublic,
)

#: The attempt number every message of a presigning carries.
ATTEMPT = 1


@dataclass(frozen=True, slots=True)
class Presign:
    """Request: make one presignature of server key `key_id` (the master's newest version)."""

    key_id: ServerKeyId


class PresignPhase(Enum):
    WAITING_FOR_SHARE_PUBLICS = "waiting for the share publics"
    WAITING_FOR_NONCE_REQUEST = "waiting for the nonce request"
    WAITING_FOR_NONCES = "waiting for the nonce generations"
    WAITING_FOR_INVERSED_SHARES = "waiting for the inversed nonce shares"
    WAITING_FOR_KEPT = "waiting for the master to keep the presignature"
    ENDED = "ended"


def _nonces(session: PresignMaster | PresignSlave, group: tuple[NodeId, ...]) -> NonceRuns:
    return NonceRuns(
        session.ctx,
        session.session_id,
        session.key_id,
        attempt=ATTEMPT,
        nodes=group,
        id_numbers=session.version.id_numbers_map(),
        specs=ecdsa_nonce_specs(session.share.threshold),
    )


def _kept(nonces: NonceRuns, kind: NonceKind, *, secret: bool, publics: bool) -> StoredNonce:
    """What a node keeps of one generation: its share (or zero) and the members' publics."""
    result = nonces.result(kind)
    kept = tuple((node, result.share_public(node)) for node in nonces.nodes) if publics else ()
    return StoredNonce(result.secret_share if secret else ZERO, result.joint_public, kept)


def presignature_of(
    nonces: NonceRuns,
    *,
    master: NodeId,
    key_id: ServerKeyId,
    version: bytes,
    inversed_nonce_coeff: Scalar | None = None,
    share_publics: tuple[tuple[NodeId, Point], ...] = (),
) -> Presignature:
    """This node's part of the presignature the ended generations `nonces` make: the nonce
    public R, its blinding share e and signature mask z' (k and z are not kept); on the master
    (with `inversed_nonce_coeff`) also every member's E_j and Z'_j."""
    on_master = inversed_nonce_coeff is not None
    kept = (
        (NonceKind.SIGNATURE_NONCE, _kept(nonces, NonceKind.SIGNATURE_NONCE, secret=False,
                                          publics=False)),
        (NonceKind.INVERSION_NONCE, _kept(nonces, NonceKind.INVERSION_NONCE, secret=True,
                                          publics=on_master)),
        (NonceKind.SIGNATURE_ZERO, _kept(nonces, NonceKind.SIGNATURE_ZERO, secret=True,
                                         publics=on_master)),
    )  # fmt: skip
    return Presignature(
        presign_id=nonces.session_id,
        master=master,
        key_id=key_id,
        version=version,
        nodes=nonces.nodes,
        nonces=kept,
        inversed_nonce_coeff=inversed_nonce_coeff,
        share_publics=share_publics,
    )


class PresignMaster(GuardedSession):
    """The master of one presigning (phase table in the module docstring)."""

    def __init__(
        self,
        ctx: SessionContext,
        session_id: SessionId,
        key_id: ServerKeyId,
        *,
        share: KeyShare,
        version: KeyShareVersion,
        group: tuple[NodeId, ...],
    ) -> None:
        super().__init__(ctx, session_id, ctx.self_id, key_id)
        self.share = share
        self.version = version
        self.group = group
        self.threshold = share.threshold
        self.share_publics: dict[NodeId, Point] = {
            ctx.self_id: Point.base_mul(version.secret_share)
        }
        self.nonces: NonceRuns | None = None
        self.inverse_shares: dict[NodeId, tuple[Scalar, DleqProof | None]] = {}

    @property
    def phase(self) -> PresignPhase:
        if self.finished:
            return PresignPhase.ENDED
        if self.nonces is None:
            return PresignPhase.WAITING_FOR_SHARE_PUBLICS
        if not self.nonces.done:
            return PresignPhase.WAITING_FOR_NONCES
        return PresignPhase.WAITING_FOR_INVERSED_SHARES

    @property
    def participants(self) -> frozenset[NodeId]:
        return frozenset(self.group)

    def start(self) -> list[Effect]:
        request = PresignRequest(
            self.session_id, self.key_id, Hash256(self.version.hash), self.group
        )
        return self.broadcast(request, self.group)

    def on_node_disconnected(self, node: NodeId) -> list[Effect]:
        return self.fail(ConsensusUnreachable(f"node {short(node)} of the group disconnected"))

    def on_timeout(self) -> list[Effect]:
        silent = [n for n in self.group if n != self.ctx.self_id and self._silent(n)]
        return self.fail(
            ProtocolViolation(names(silent) or short(self.ctx.self_id), "did not presign in time")
        )

    def _silent(self, node: NodeId) -> bool:
        if self.nonces is None:
            return node not in self.share_publics
        return node not in self.inverse_shares

    def _dispatch(self, sender: NodeId, message: object) -> list[Effect]:
        if isinstance(message, SigningSharePublic):
            return self._on_share_public(sender, message)
        nonces = self.nonces
        if isinstance(message, SigningNonceMessage) and nonces is not None:
            if message.attempt != ATTEMPT:
                raise ProtocolViolation(short(sender), f"sent attempt {message.attempt}")
            return feed_nonce_message(nonces, sender, message) + self._progress(nonces)
        if isinstance(message, EcdsaInversedNonceShare) and nonces is not None:
            known = self.inverse_shares.get(sender)
            if message.attempt != ATTEMPT or (
                known is not None and known != (message.share, message.proof)
            ):
                raise ProtocolViolation(short(sender), "sent another inversed nonce share")
            self.inverse_shares[sender] = (message.share, message.proof)
            return self._try_keep(nonces)
        if isinstance(message, SigningFault) and nonces is not None:
            culprit = message.culprit if message.culprit in self.group else sender
            what = f"{message.what[:200]} (seen by {short(sender)})"
            raise ProtocolViolation(short(culprit), what)
        raise ProtocolViolation(short(sender), f"sent {type(message).__name__}")

    def _on_share_public(self, sender: NodeId, message: SigningSharePublic) -> list[Effect]:
        known = self.share_publics.get(sender)
        if known is not None:
            if known != message.share_public:
                raise ProtocolViolation(short(sender), "sent two different share publics")
            return []
        commitments = self.version.commitments
        number = self.version.id_number(sender)
        expected = None
        if commitments is not None and number is not None:
            expected = share_public(commitments, number)
        if expected is not None and expected != message.share_public:
            raise ProtocolViolation(
                short(sender), "reported a share public that does not fit the key"
            )
        self.share_publics[sender] = message.share_public
        if len(self.share_publics) < len(self.group) or self.nonces is not None:
            return []
        nonces = _nonces(self, self.group)
        self.nonces = nonces
        request = SigningNonceRequest(self.session_id, ATTEMPT, self.group)
        effects: list[Effect] = self.broadcast(request, self.group)
        effects += nonces.start()
        return effects + self._progress(nonces)

    def _progress(self, nonces: NonceRuns) -> list[Effect]:
        if nonces.handled or not nonces.done:
            return []
        nonces.handled = True
        self.inverse_shares[self.ctx.self_id] = (inverse_share(nonces), None)
        return self._try_keep(nonces)

    def _try_keep(self, nonces: NonceRuns) -> list[Effect]:
        if not nonces.handled or len(self.inverse_shares) < len(self.group):
            return []
        bad = [
            node
            for node in self.group
            if node != self.ctx.self_id and not self._holds(nonces, node)
        ]
        if bad:
            raise ProtocolViolation(names(bad), "sent an inversed nonce share that is not proven")
        numbers = self.version.id_numbers_map()
        coeff = compute_ecdsa_inversed_secret_coeff_from_shares(
            self.threshold,
            [numbers[node] for node in self.group],
            [self.inverse_shares[node][0] for node in self.group],
        )
        presignature = presignature_of(
            nonces,
            master=self.ctx.self_id,
            key_id=self.key_id,
            version=self.version.hash,
            inversed_nonce_coeff=coeff,
            share_publics=tuple(sorted(self.share_publics.items())),
        )
        pool = self.ctx.presigns
        if pool is not None:
            pool.put(presignature)
        effects = self.broadcast(PresignKept(self.session_id), self.group)
        return effects + self.finish(presignature)

    def _holds(self, nonces: NonceRuns, node: NodeId) -> bool:
        share, proof = self.inverse_shares[node]
        return proof is not None and inverse_share_holds(
            nonces, self.session_id, node, share, proof
        )


class PresignSlave(GuardedSession):
    """A member of another node's presigning (phase table in the module docstring)."""

    def __init__(
        self,
        ctx: SessionContext,
        master: NodeId,
        request: PresignRequest,
        *,
        share: KeyShare,
        version: KeyShareVersion,
    ) -> None:
        super().__init__(ctx, request.session_id, master, request.key_id)
        self.request = request
        self.share = share
        self.version = version
        self.nonces: NonceRuns | None = None
        self._early: list[tuple[NodeId, SigningNonceMessage]] = []
        self._part: Presignature | None = None

    @property
    def phase(self) -> PresignPhase:
        if self.finished:
            return PresignPhase.ENDED
        if self.nonces is None:
            return PresignPhase.WAITING_FOR_NONCE_REQUEST
        if not self.nonces.done:
            return PresignPhase.WAITING_FOR_NONCES
        return PresignPhase.WAITING_FOR_KEPT

    @property
    def participants(self) -> frozenset[NodeId]:
        return frozenset(self.request.nodes)

    def on_node_disconnected(self, node: NodeId) -> list[Effect]:
        if self.finished:
            return []
        if node == self.master:
            return self.finish()  # nothing is held: the master never said to keep it
        return self.fail(ConsensusUnreachable(f"lost its link to node {short(node)}"))

    def on_peer_error(self, sender: NodeId, reason: str) -> list[Effect]:
        return [] if self.finished else self.finish()  # nothing is held

    def _dispatch(self, sender: NodeId, message: object) -> list[Effect]:
        if isinstance(message, SigningNonceMessage):
            return self._on_nonce_message(sender, message)
        if sender != self.master:
            raise ProtocolViolation(short(sender), f"sent {type(message).__name__} to a member")
        if message == self.request:
            return []
        if isinstance(message, SigningNonceRequest):
            return self._on_nonce_request(message)
        if isinstance(message, PresignKept) and self._part is not None:
            pool = self.ctx.presigns
            if pool is not None:
                pool.hold(self._part)
            return self.finish()
        raise ProtocolViolation(short(sender), f"sent {type(message).__name__}")

    def _on_nonce_request(self, message: SigningNonceRequest) -> list[Effect]:
        if self.nonces is not None:
            if message.attempt == ATTEMPT and message.nodes == self.request.nodes:
                return []  # the same request again
            raise ProtocolViolation(short(self.master), "sent a second nonce request")
        if message.attempt != ATTEMPT or message.nodes != self.request.nodes:
            raise ProtocolViolation(short(self.master), "sent a nonce request for another group")
        nonces = _nonces(self, self.request.nodes)
        self.nonces = nonces
        effects: list[Effect] = []
        effects += nonces.start()
        early, self._early = self._early, []
        for sender, kept in early:
            effects += self._feed(nonces, sender, kept)
            if self.finished:
                return effects
        return effects + self._progress(nonces)

    def _on_nonce_message(self, sender: NodeId, message: SigningNonceMessage) -> list[Effect]:
        if message.attempt != ATTEMPT:
            raise ProtocolViolation(short(sender), f"sent attempt {message.attempt}")
        nonces = self.nonces
        if nonces is None:  # a peer that got its nonce request before this node did
            limit = MESSAGES_PER_GENERATION * len(NonceKind)
            if sum(1 for node, _ in self._early if node == sender) >= limit:
                raise ProtocolViolation(short(sender), "sent too many early nonce messages")
            self._early.append((sender, message))
            return []
        return self._feed(nonces, sender, message) + self._progress(nonces)

    def _feed(
        self, nonces: NonceRuns, sender: NodeId, message: SigningNonceMessage
    ) -> list[Effect]:
        try:
            return feed_nonce_message(nonces, sender, message)
        except SecretStoreError as exc:
            culprit = culprit_of(exc, nonces.nodes, sender)
            fault = SigningFault(self.session_id, ATTEMPT, culprit, what_of(exc))
            return [Send(self.master, fault), *self.finish()]

    def _progress(self, nonces: NonceRuns) -> list[Effect]:
        if self.finished or nonces.handled or not nonces.done:
            return []
        nonces.handled = True
        self._part = presignature_of(
            nonces, master=self.master, key_id=self.key_id, version=self.version.hash
        )
        return [Send(self.master, prove_inverse_share(self.ctx, nonces, self.session_id))]


# --- factories ---------------------------------------------------------------------------


def start_presign(
    ctx: SessionContext,
    session_id: SessionId,
    request: Presign,
    share: KeyShare | None,
    connected: frozenset[NodeId],
) -> tuple[Session, list[Effect]]:
    """Master factory. Raises ServerKeyNotFound (no share here), InvalidRequest (threshold 0:
    nothing to presign; no pool on this node), ConsensusUnreachable (fewer than 2t+1
    holders of the newest version connected)."""
    held = require_share(share, request.key_id)
    if ctx.presigns is None:
        raise InvalidRequest("this node keeps no presignatures")
    if held.threshold == 0:
        raise InvalidRequest("an ECDSA key of threshold 0 is signed without nonces")
    version = select_version(held, request.key_id, ctx.self_id, None)
    needed = signers_needed(held.threshold)
    others = [n for n in version.nodes if n in connected and n != ctx.self_id]
    if len(others) + 1 < needed:
        raise ConsensusUnreachable(
            f"presigning needs {needed} holders of key 0x{request.key_id.hex()} connected"
        )
    group = tuple(sorted([ctx.self_id, *random_sample(ctx.rng, others, needed - 1)]))
    session = PresignMaster(
        ctx, session_id, request.key_id, share=held, version=version, group=group
    )
    return session, session.start()


def join_presign(
    ctx: SessionContext, sender: NodeId, message: PresignRequest, share: KeyShare | None
) -> tuple[Session, list[Effect]]:
    """Slave factory; the errors it raises reach the master as a SessionError."""
    held = require_share(share, message.key_id)
    if ctx.presigns is None:
        raise InvalidRequest("this node keeps no presignatures")
    version = select_version(held, message.key_id, ctx.self_id, message.version)
    needed = signers_needed(held.threshold)
    nodes = message.nodes
    if held.threshold == 0 or len(nodes) != needed:
        raise ProtocolViolation(short(sender), f"sent a group of {len(nodes)}, not {needed}")
    if any(a >= b for a, b in pairwise(nodes)):
        raise ProtocolViolation(short(sender), "sent a group that is not in ascending order")
    if ctx.self_id not in nodes or sender not in nodes:
        raise ProtocolViolation(short(sender), "sent a group without this node or itself")
    if any(version.id_number(node) is None for node in nodes):
        raise ProtocolViolation(short(sender), "sent a group with a node outside the version")
    session = PresignSlave(ctx, sender, message, share=held, version=version)
    public = Point.base_mul(version.secret_share)
    return session, [Send(sender, SigningSharePublic(message.session_id, public))]


MASTERS: dict[type, MasterFactory] = {Presign: start_presign}
SLAVES: dict[type, SlaveFactory] = {PresignRequest: join_presign}
