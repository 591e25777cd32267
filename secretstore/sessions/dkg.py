"""One ECDKG run among given participants, as a pure object a session embeds (not a Session).

Usage (the embedding session owns the session id, the transport and the failure handling)::

    run = DkgRun(ctx.self_id, ctx.rng, id_numbers, threshold, derived_point)
    out = run.start()                     # when this node should deal
    out = run.on_message(sender, inner)   # for every DKG message a peer sent (any time)
    # `out` is list[tuple[NodeId, DkgMessage]]: wrap each message in the session's own
    # message (session id + AnyMessage field) and send it to that node.
    if run.result is not None: ...        # DkgResult: secret share, joint public, ...

`start` and `on_message` raise ProtocolViolation naming the peer at fault (a bad dealing, a
duplicate, a message from a non-participant, different commitments than this node saw);
the embedding session should then fail. Messages may arrive before `start` or before this
node reached their round: they are kept and used when it does (never dropped).

Rounds (each node sends one message of each round to every other participant):

| phase                    | waits for                  | then                                     |
|--------------------------|----------------------------|------------------------------------------|
| NOT_STARTED              | `start()`                  | deal → WAITING_FOR_KEYS                  |
| WAITING_FOR_KEYS         | DkgKeys from every other   | secret share; without publics → DONE;    |
|                          |                            | else send DkgShareProof →                |
|                          |                            | WAITING_FOR_SHARE_PROOFS                 |
| WAITING_FOR_SHARE_PROOFS | DkgShareProof from every   | send DkgAgreement → WAITING_FOR_AGREEMENT|
| WAITING_FOR_AGREEMENT    | DkgAgreement from every    | joint public → DONE                      |

Checks (each over every dealer at once, then dealer by dealer only to name the one at fault:
crypto/dkg.py, "Checking every dealer at once"): every DkgKeys against its sender's Pedersen
commitments (`keys_verification`, once every dealing is in); every share proof against the value its
sender dealt to this node, against the sender's Pedersen commitments (the revealed blinding
coefficients open them, so a dealer's Feldman commitments are fixed before it sees anyone else's)
and the footprint of the Pedersen commitments every node received; every node's footprint of all
share proofs, so that all nodes end with the same public shares and joint public. In a zero-secret
run the share proof omits the free term, so each receiver checks that the dealer's free term is zero
(Parity did not verify zero sharings, nor bind the Feldman commitments).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass

from secretstore.crypto import dkg
from secretstore.crypto.curve import Point, Scalar
from secretstore.crypto.rng import Rng
from secretstore.crypto.shamir import check_id_numbers, check_threshold, evaluate_point_polynomial
from secretstore.errors import InvalidRequest, ProtocolViolation
from secretstore.sessions.base import short
from secretstore.types import Hash256, NodeId
from secretstore.wire.dkg import DkgAgreement, DkgKeys, DkgShareProof

DkgMessage = DkgKeys | DkgShareProof | DkgAgreement
#: A message to send: (receiver, DKG message). The embedding session wraps and sends it.
Outgoing = tuple[NodeId, DkgMessage]


class DkgPhase(enum.Enum):
    NOT_STARTED = "not started"
    WAITING_FOR_KEYS = "waiting for keys"
    WAITING_FOR_SHARE_PROOFS = "waiting for share proofs"
    WAITING_FOR_AGREEMENT = "waiting for agreement"
    DONE = "done"


@dataclass(frozen=True, slots=True, repr=False)
class DkgResult:
    """What one node holds after a run. repr() hides the secret share.

    `secret_share`: this node's share ``s_j = Σ_i f_i(x_j)`` of the joint secret.
    `id_numbers`: (node, id number) of every participant, ascending node id.
    `joint_public`: ``Y = Σ_i f_i(0)·G``; None in a zero-secret run or without publics.
    `share_proofs`: (node, Feldman commitments ``F_i0..F_it``) of every dealer, ascending node
    id (in a zero-secret run ``F_i0`` is the identity); None without publics.
    """

    threshold: int
    secret_share: Scalar
    id_numbers: tuple[tuple[NodeId, Scalar], ...]
    joint_public: Point | None
    share_proofs: tuple[tuple[NodeId, tuple[Point, ...]], ...] | None

    def public_share(self, node: NodeId) -> Point:
        """``f_i(0)·G`` of dealer `node` (InvalidRequest without publics or for a stranger)."""
        return self._proofs_of(node)[0]

    def share_public(self, node: NodeId) -> Point:
        """``s_j·G`` of participant `node`'s secret share, from every dealer's commitments
        (lets a session check a peer's contribution, e.g. a signature share)."""
        id_number = dict(self.id_numbers).get(node)
        if id_number is None or self.share_proofs is None:
            raise InvalidRequest("share publics need a run with publics and a participant")
        return dkg.secret_share_public(id_number, [proof for _, proof in self.share_proofs])

    def key_commitments(self, node: NodeId) -> tuple[Point, ...]:
        """The Feldman commitments ``C_k = Σ_i F_ik`` of the joint polynomial, as participant
        `node` (this node) stores them with its share, after checking ``C_0`` is the joint
        public and ``s_j·G = Σ_k C_k·x_j^k`` for its own share (InvalidRequest otherwise, or
        for a run without publics or of a zero secret)."""
        if self.share_proofs is None or self.joint_public is None:
            raise InvalidRequest("key commitments need a run with publics of a nonzero secret")
        commitments = dkg.joint_commitments(proof for _, proof in self.share_proofs)
        id_number = dict(self.id_numbers).get(node)
        if id_number is None or commitments[0] != self.joint_public:
            raise InvalidRequest("the joint commitments do not commit to the joint public")
        if evaluate_point_polynomial(commitments, id_number) != Point.base_mul(self.secret_share):
            raise InvalidRequest("the joint commitments do not match this node's share")
        if any(point.is_identity() for point in commitments):
            raise InvalidRequest("a joint commitment is the identity")
        return commitments

    def _proofs_of(self, node: NodeId) -> tuple[Point, ...]:
        proofs = dict(self.share_proofs or ())
        if node not in proofs:
            raise InvalidRequest("public shares need a run with publics and a participant")
        return proofs[node]

    def __repr__(self) -> str:
        return f"DkgResult(threshold={self.threshold}, nodes={len(self.id_numbers)})"


class DkgRun:
    """One node's part in an ECDKG run (Pedersen-committed dealing, Feldman share proofs).

    Arguments:
    - `self_id`: this node; must be among `id_numbers`.
    - `rng`: the source of this node's polynomials.
    - `id_numbers`: every participant's id number (nonzero, distinct); all must take part.
    - `threshold`: the polynomial degree t, 0 ≤ t < number of participants (a zero sharing
      for threshold ECDSA uses degree 2t among at least 2t+1 nodes: pass 2t).
    - `derived_point`: H for the Pedersen commitments, the same on every node, with a discrete
      log nobody knows (e.g. `hash_to_point(session_id + key_id)`).
    - `zero_secret`: every dealer's free term is zero, so the joint secret is zero (Parity's
      `is_zero`); the joint public is then None.
    - `with_publics`: run the share-proof and agreement rounds (public shares, joint public,
      verified zero free terms). False ends after the keys round: only the secret share.

    Raises InvalidRequest (bad threshold, self not a participant, repeated id numbers),
    InvalidScalar (a zero id number), InvalidPoint (an identity derived point).
    """

    def __init__(
        self,
        self_id: NodeId,
        rng: Rng,
        id_numbers: Mapping[NodeId, Scalar],
        threshold: int,
        derived_point: Point,
        *,
        zero_secret: bool = False,
        with_publics: bool = True,
    ) -> None:
        check_threshold(threshold)
        if self_id not in id_numbers:
            raise InvalidRequest("this node is not a participant of the DKG")
        if threshold >= len(id_numbers):
            raise InvalidRequest(
                f"threshold {threshold} needs more than {threshold} nodes, got {len(id_numbers)}"
            )
        check_id_numbers(id_numbers.values())
        derived_point.require_not_identity("derived point")
        self.self_id = self_id
        self.threshold = threshold
        self.zero_secret = zero_secret
        self.with_publics = with_publics
        self._rng = rng
        self._derived_point = derived_point
        self._id_numbers = dict(sorted(id_numbers.items()))
        self._x = self._id_numbers[self_id]
        self.phase = DkgPhase.NOT_STARTED
        self._dealing: dkg.Dealing | None = None
        self._keys: dict[NodeId, DkgKeys] = {}
        self._proofs: dict[NodeId, DkgShareProof] = {}
        self._agreements: dict[NodeId, DkgAgreement] = {}
        self._secret_share: Scalar | None = None
        self._full_proofs: dict[NodeId, tuple[Point, ...]] = {}
        self.result: DkgResult | None = None

    # --- queries --------------------------------------------------------------------------
    @property
    def participants(self) -> frozenset[NodeId]:
        return frozenset(self._id_numbers)

    @property
    def done(self) -> bool:
        return self.phase is DkgPhase.DONE

    def waiting_for(self) -> frozenset[NodeId]:
        """The participants whose message of this node's current round has not come (none
        before `start` and once done)."""
        received: dict[DkgPhase, dict[NodeId, object]] = {
            DkgPhase.WAITING_FOR_KEYS: dict(self._keys),
            DkgPhase.WAITING_FOR_SHARE_PROOFS: dict(self._proofs),
            DkgPhase.WAITING_FOR_AGREEMENT: dict(self._agreements),
        }
        have = received.get(self.phase)
        if have is None:
            return frozenset()
        return frozenset(node for node in self._others() if node not in have)

    def _others(self) -> list[NodeId]:
        return [node for node in self._id_numbers if node != self.self_id]

    # --- events ---------------------------------------------------------------------------
    def start(self) -> list[Outgoing]:
        """Deal: this node's keys for every other participant (then whatever follows from
        messages received before). InvalidRequest if started already."""
        if self.phase is not DkgPhase.NOT_STARTED:
            raise InvalidRequest("the DKG has started already")
        dealing = dkg.deal(self.threshold, self._derived_point, self._rng, is_zero=self.zero_secret)
        self._dealing = dealing
        out: list[Outgoing] = []
        for node, id_number in self._id_numbers.items():
            values = dealing.values_for(id_number)
            keys = DkgKeys(values.secret1, values.secret2, dealing.publics)
            if node == self.self_id:
                self._keys[node] = keys
            else:
                out.append((node, keys))
        self.phase = DkgPhase.WAITING_FOR_KEYS
        return out + self._advance()

    def on_message(self, sender: NodeId, message: object) -> list[Outgoing]:
        """A DKG message from `sender`; returns what to send next. ProtocolViolation names
        `sender` (or, for a footprint mismatch, the peer whose view differs); InvalidPoint if
        the joint public of a normal run sums to the identity (only colluding dealers can)."""
        if sender == self.self_id or sender not in self._id_numbers:
            raise ProtocolViolation(short(sender), "is not a participant of this DKG")
        if isinstance(message, DkgKeys):
            self._accept_keys(sender, message)
        elif isinstance(message, DkgShareProof):
            self._require_publics_round(sender)
            if sender in self._proofs:
                raise ProtocolViolation(short(sender), "sent its share proof twice")
            expected = self.threshold if self.zero_secret else self.threshold + 1
            if len(message.share_proof) != expected:
                raise ProtocolViolation(
                    short(sender), f"sent {len(message.share_proof)} share proof points"
                )
            if len(message.blinding) != self.threshold + 1:
                raise ProtocolViolation(
                    short(sender), f"sent {len(message.blinding)} blinding coefficients"
                )
            self._proofs[sender] = message
        elif isinstance(message, DkgAgreement):
            self._require_publics_round(sender)
            if sender in self._agreements:
                raise ProtocolViolation(short(sender), "sent its agreement twice")
            self._agreements[sender] = message
        else:
            raise ProtocolViolation(short(sender), f"sent {type(message).__name__} to a DKG")
        return self._advance()

    # --- internals ------------------------------------------------------------------------
    def _require_publics_round(self, sender: NodeId) -> None:
        if not self.with_publics:
            raise ProtocolViolation(short(sender), "sent a public round in a run without it")

    def _accept_keys(self, sender: NodeId, keys: DkgKeys) -> None:
        if sender in self._keys:
            raise ProtocolViolation(short(sender), "sent its keys twice")
        if len(keys.publics) != self.threshold + 1:
            raise ProtocolViolation(
                short(sender),
                f"sent {len(keys.publics)} commitments for threshold {self.threshold}",
            )
        self._keys[sender] = keys

    def _check_keys(self) -> None:
        """Every dealing against its dealer's Pedersen commitments, all at once (one dealer's
        work, crypto/dkg.py); when they fail, each alone, to name the dealer at fault."""
        received = {
            node: dkg.ReceivedKeys(keys.secret1, keys.secret2, keys.publics)
            for node, keys in self._keys.items()
        }
        point, x = self._derived_point, self._x
        if dkg.keys_verification_batch(self.threshold, point, x, received.values()):
            return
        for node, keys in received.items():
            if not dkg.keys_verification(self.threshold, point, x, keys):
                raise ProtocolViolation(short(node), "dealt keys that do not match its commitments")
        # unreachable: sums of values that each hold hold too
        raise ProtocolViolation(
            short(self.self_id), "the dealings do not add up"
        )  # pragma: no cover

    def _advance(self) -> list[Outgoing]:
        out: list[Outgoing] = []
        count = len(self._id_numbers)
        if self.phase is DkgPhase.WAITING_FOR_KEYS and len(self._keys) == count:
            self._check_keys()
            self._secret_share = dkg.compute_secret_share(k.secret1 for k in self._keys.values())
            if not self.with_publics:
                self._finish(None)
                return out
            out += self._send_share_proof()
        if self.phase is DkgPhase.WAITING_FOR_SHARE_PROOFS and len(self._proofs) == count:
            out += self._send_agreement()
        if self.phase is DkgPhase.WAITING_FOR_AGREEMENT and len(self._agreements) == count:
            own = self._agreements[self.self_id].share_proofs_footprint
            for node in self._others():
                if self._agreements[node].share_proofs_footprint != own:
                    raise ProtocolViolation(
                        short(node), "received other share proofs than this node"
                    )
            joint_public = None
            if not self.zero_secret:
                joint_public = dkg.compute_joint_public(p[0] for p in self._full_proofs.values())
            self._finish(joint_public)
        return out

    def _send_share_proof(self) -> list[Outgoing]:
        assert self._dealing is not None
        footprint = Hash256(dkg.publics_footprint({n: k.publics for n, k in self._keys.items()}))
        proof = self._dealing.share_proof[1:] if self.zero_secret else self._dealing.share_proof
        message = DkgShareProof(footprint, proof, self._dealing.polynomial2)
        self._proofs[self.self_id] = message
        self.phase = DkgPhase.WAITING_FOR_SHARE_PROOFS
        return [(node, message) for node in self._others()]

    def _send_agreement(self) -> list[Outgoing]:
        own_footprint = self._proofs[self.self_id].publics_footprint
        for node in self._others():
            if self._proofs[node].publics_footprint != own_footprint:
                raise ProtocolViolation(short(node), "received other commitments than this node")
        self._full_proofs = {
            node: self._full_proof(self._proofs[node]) for node in sorted(self._proofs)
        }
        self._check_share_proofs()
        footprint = Hash256(dkg.publics_footprint({n: p for n, p in self._full_proofs.items()}))
        message = DkgAgreement(footprint)
        self._agreements[self.self_id] = message
        self.phase = DkgPhase.WAITING_FOR_AGREEMENT
        return [(node, message) for node in self._others()]

    def _check_share_proofs(self) -> None:
        """Every dealer's Feldman commitments against its Pedersen commitments and against
        the value it dealt this node, all at once; when they fail, each dealer alone."""
        point, x, t = self._derived_point, self._x, self.threshold
        dealings = [
            (self._keys[node].secret1, self._keys[node].publics, full, self._proofs[node].blinding)
            for node, full in self._full_proofs.items()
        ]
        if dkg.share_proofs_verification_batch(t, point, x, dealings):
            return
        for node, full in self._full_proofs.items():
            keys, blinding = self._keys[node], self._proofs[node].blinding
            if not dkg.share_proof_opens_commitments(t, point, keys.publics, full, blinding):
                raise ProtocolViolation(
                    short(node), "share proof does not open its Pedersen commitments"
                )
            if not dkg.share_proof_verification(t, x, keys.secret1, full):
                raise ProtocolViolation(short(node), "share proof does not match its dealt keys")
        # unreachable: sums of checks that each hold hold too
        raise ProtocolViolation(
            short(self.self_id), "the share proofs do not add up"
        )  # pragma: no cover

    def _full_proof(self, proof: DkgShareProof) -> tuple[Point, ...]:
        if self.zero_secret:
            return (Point.identity(), *proof.share_proof)
        return proof.share_proof

    def _finish(self, joint_public: Point | None) -> None:
        assert self._secret_share is not None
        self.phase = DkgPhase.DONE
        self.result = DkgResult(
            threshold=self.threshold,
            secret_share=self._secret_share,
            id_numbers=tuple(self._id_numbers.items()),
            joint_public=joint_public,
            share_proofs=tuple(self._full_proofs.items()) if self.with_publics else None,
        )
