"""The sessions of the Byzantine suite, each with the ground truth its oracle checks.

A `Scenario` is one session kind, one role of the rogue (a slave/member of an honest master's
session, or the master of its own, the honest nodes then its slaves) and a shape (n, t). Its
world is built the same way every time (seeded): the key, an earlier session of the same kind
(whose messages the rogue replays), then the target session, in which the rogue's messages
go through a fault plan.

Each session kind (`Kind`) knows its ground truth and checks an outcome against it:
- generation: the public the master returns is what every honest node stored, with the
  author and threshold asked for, and any t+1 honest shares give its secret; whatever the
  outcome, honest nodes that stored agree on one consistent key;
- store: every honest holder stores the points the author asked for, or nothing;
- negotiation and server key retrieval: the version, holders and key data (or public) of
  the dealt key;
- decryption (plain, shadow): the document key equals the stored one (shadow: as the
  requester combines it);
- Schnorr and ECDSA signing: the signature verifies (written-out Schnorr check; coincurve and
  eth-keys for ECDSA) under the server key for the hash asked for;
and no key share changes on an honest node in a session that writes nothing.
"""

from __future__ import annotations

import functools
import itertools
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar

from secretstore.client.receipts import check_receipts
from secretstore.client.verify import DocumentKeyShadow
from secretstore.crypto.admin import ALL_KEYS, sign_refresh
from secretstore.crypto.bound import (
    BoundOperation,
    delete_payload,
    generation_payload,
    sign_bound_request,
    signing_payload,
    store_payload,
)
from secretstore.crypto.curve import Point, Scalar
from secretstore.crypto.document import decrypt_with_shadow_coefficients, encrypt_secret
from secretstore.crypto.ecies import ecies_decrypt, ecies_encrypt
from secretstore.crypto.keys import KeyPair, sign_recoverable
from secretstore.crypto.rng import SeededRng, random_scalar
from secretstore.crypto.schnorr import SchnorrSignature
from secretstore.crypto.shadow import make_common_shadow_point
from secretstore.crypto.shadow_proofs import share_public
from secretstore.crypto.shamir import reconstruct_secret
from secretstore.errors import ShadowVerificationError
from secretstore.sessions.admin.authority import ConfiguredAdmin
from secretstore.sessions.admin.delete import (
    DeleteKey,
    DeleteResult,
    DeleteSettings,
    delete_tables,
    tombstone_fits,
    tombstone_pushes,
)
from secretstore.sessions.admin.factories import admin_tables, refresh_tables
from secretstore.sessions.admin.node_set_change import AdminSettings, ChangeNodeSet
from secretstore.sessions.admin.refresh import RefreshKeys, RefreshOutcome, RefreshSettings
from secretstore.sessions.base import Fail, Finish, Send, short
from secretstore.sessions.broadcast import PersonalShare, ServedByMembers
from secretstore.sessions.claims import KeyClaims
from secretstore.sessions.core import NodeCore
from secretstore.sessions.decryption import RetrieveDocumentKey, ShadowResult
from secretstore.sessions.encryption import StoreDocumentKey
from secretstore.sessions.generation import GenerateServerKey
from secretstore.sessions.jobs.delegate import operation_of
from secretstore.sessions.key_version import NegotiatedVersion, NegotiateKeyVersion
from secretstore.sessions.origin import OriginClaim
from secretstore.sessions.presign import Presignature
from secretstore.sessions.registry import MASTERS, SLAVES
from secretstore.sessions.retrieval import RetrieveServerKey
from secretstore.sessions.signing_ecdsa import SignEcdsa
from secretstore.sessions.signing_presign import Presign
from secretstore.sessions.signing_schnorr import SignSchnorr
from secretstore.sessions.signing_slave import SigningSlave
from secretstore.storage.model import KeyShare, Tombstone
from secretstore.types import (
    Address,
    BlockRef,
    Hash256,
    MessageHash,
    NodeId,
    ServerKeyId,
    SessionId,
)
from secretstore.wire.admin import KeyChangeFault, KeyMoved, KeySubshare
from secretstore.wire.decryption import (
    DecryptionJobRequest,
    DecryptionJobResponse,
    DecryptionJobResults,
    DecryptionRequest,
)
from secretstore.wire.delegation import DelegatedDocumentKey, DelegatedRequest, DelegatedSignature
from secretstore.wire.delete import DeleteKeyInit, TombstonePush
from secretstore.wire.negotiation import CommonKeyData
from secretstore.wire.refresh import RefreshGrant, RefreshScope
from secretstore.wire.requester import RequesterProof, ServiceOrigin
from secretstore.wire.signing import (
    EcdsaSignatureShare,
    EcdsaSigningRequest,
    PresignRequest,
    SchnorrSignatureShare,
    SchnorrSigningRequest,
    SigningFault,
    SigningNodeLost,
    SigningNonceMessage,
    SigningNonceRequest,
)
from tests.sim.admin_world import ADMIN, sign_set
from tests.sim.byzantine import mutate
from tests.sim.byzantine.network import ByzantineNetwork, Provocation
from tests.sim.dealer import DealtKey, deal_key
from tests.sim.key_sessions import reconstruct
from tests.sim.test_signing import ecdsa_recovers, schnorr_verifies

REQUESTER = KeyPair.generate(SeededRng(b"byzantine requester"))
KEY = ServerKeyId(b"\x42" * 32)
EARLIER_KEY = ServerKeyId(b"\x24" * 32)
HASH = MessageHash(b"\x11" * 32)
EARLIER_HASH = MessageHash(b"\x12" * 32)


def requester_only(node: NodeId, requester: Address, key_id: ServerKeyId) -> bool:
    """Every node's access policy: only the requester may use a key."""
    return requester == REQUESTER.address


def proof(key_id: ServerKeyId) -> RequesterProof:
    return RequesterProof.signature(sign_recoverable(REQUESTER.secret, key_id))


# --- the world of one case ----------------------------------------------------------------


@dataclass
class World:
    """A network with its ground truth, after the earlier session."""

    scenario: Scenario
    net: ByzantineNetwork
    keys: dict[ServerKeyId, DealtKey] = field(default_factory=dict)
    #: each honest node's share of KEY before the target session (None: none)
    before: dict[NodeId, KeyShare | None] = field(default_factory=dict)
    #: the sessions the earlier run left in each node's results
    earlier_results: dict[NodeId, frozenset[SessionId]] = field(default_factory=dict)
    earlier_sid: SessionId | None = None

    @property
    def rogue(self) -> NodeId:
        return self.net.rogue.node_id

    @property
    def master(self) -> NodeId:
        return self.net.order[self.scenario.master]

    @property
    def honest(self) -> list[NodeId]:
        return [node for node in self.net.order if node != self.rogue]

    @property
    def rogue_is_master(self) -> bool:
        return self.scenario.role == "master"

    def share(self, node: NodeId, key_id: ServerKeyId = KEY) -> KeyShare | None:
        return self.net.nodes[node].storage.get(key_id)

    def start_target(self) -> SessionId:
        return self.scenario.kind.start(self, earlier=False)


class RequesterRefused(AssertionError):
    """The requester's own check refused a result, naming the rogue: a failure the requester
    detects, not a wrong key (the oracle counts it as a failure naming the rogue)."""

    def __init__(self, error: ShadowVerificationError) -> None:
        super().__init__(str(error))
        self.error = error


class Kind(ABC):
    """A session kind: its key material, its requests, and its oracle."""

    name: str
    #: the request must carry a bound signature (and honest nodes require one) when the
    #: rogue is the master: Parity's form leaves what it binds to the master (docs/PARITY.md)
    binds = False
    access = staticmethod(requester_only)
    #: the message a consensus session's master sends the group it selected (None: every
    #: node takes part)
    group_message: type | None = None
    #: the request that starts this kind of session (every request the key server serves
    #: has a kind: the suite's coverage check)
    request_type: type
    #: honest nodes refuse plain retrieval (`require_shadow_retrieval`) when the rogue is the
    #: master: a master of a plain retrieval learns the document key by design
    shadow_policy = False
    #: faults only this kind can make (mutate.Context.semantic)
    semantic: ClassVar[Mapping[tuple[type, mutate.Path], Mapping[str, mutate.Semantic]]] = {}

    #: the earlier session runs in every case (not only replays): the session changes the
    #: keys, so the target session runs on what the earlier one left
    earlier_always = False
    #: every node keeps an ECDSA presigning pool of this depth per key (0: none)
    presignatures = 0
    #: every node keeps an audit log: releases carry receipts, which the oracle checks
    audit = False

    def configure(self, world: World) -> None:
        """Install what the nodes need beyond the client sessions (default: nothing)."""
        return

    #: the seed is chosen so that the earlier session gives a member rogue its part too (its
    #: messages of the earlier session are the replays' source)
    selects_in_earlier = False

    def rogue_member(self, n: int) -> int:
        """The rogue's index as a member (default: the last node)."""
        return n - 1

    def selects_rogue(self, world: World, sid: SessionId) -> bool:
        """Whether an honest run of the target session `sid` gives a member rogue the part
        its cases need (default: the master sent it `group_message`, if any)."""
        if world.rogue_is_master or self.group_message is None:
            return True
        return any(
            sender == world.master and to == world.rogue and self.selects(m)
            for sender, to, m in world.net.sent
        )

    def selects(self, message: object) -> bool:
        """Whether `message` from the master puts its receiver in the group."""
        return self.group_message is not None and isinstance(message, self.group_message)

    def prepare(self, world: World) -> None:
        """Put the key material in place (default: a dealt key with a document key)."""
        deal(world, KEY, self.threshold(world), with_document_key=True)

    def threshold(self, world: World) -> int:
        return world.scenario.t

    @abstractmethod
    def request(self, world: World, *, earlier: bool) -> Any: ...

    def start(self, world: World, *, earlier: bool) -> SessionId:
        """Start the earlier or the target session (default: `request` on the master)."""
        request = self.request(world, earlier=earlier)
        return world.net.start_session(world.scenario.master, request)

    @abstractmethod
    def check_result(self, world: World, value: object) -> None:
        """The honest master's result is right (raise AssertionError otherwise)."""

    def check_receipts(self, world: World, outcome: Finish) -> None:
        """With audit logs: the receipts the honest master hands the requester (its Record's,
        or a delegate's it relays on its Finish) pass the requester's check. Only a relay may
        come without them: a delegate may keep no audit log, so dropping them is no lie the
        origin can see (a requester that requires receipts refuses the answer)."""
        if not self.audit:
            return
        records = world.net.nodes[world.master].records
        receipts = outcome.receipts or next(
            (r.receipts for r in records if r.session_id == outcome.session_id and r.receipts),
            None,
        )
        if receipts is None:
            assert isinstance(self, DelegatedKind), "an auditing master gave no receipts"
            return
        request = self.request(world, earlier=False)
        check_receipts(
            receipts,
            operation=operation_of(request),
            key_id=KEY,
            requester=REQUESTER.address,
            message_hash=getattr(request, "message_hash", None),
            nodes=world.net.order,
            min_participants=world.scenario.t + 1,
            session_id=outcome.session_id,
            require=True,
        )

    def check_storage(self, world: World, finished: bool) -> None:
        """What honest nodes hold of KEY afterwards (default: nothing changed)."""
        for node in world.honest:
            assert world.share(node) == world.before[node], f"node {short(node)}'s share changed"

    def check_released(self, world: World, sid: SessionId) -> None:
        """With a rogue master: what honest slaves gave it was asked for (default: they give
        it nothing but what the storage check covers)."""
        return


def deal(
    world: World,
    key_id: ServerKeyId,
    t: int,
    *,
    with_document_key: bool,
    commitments: bool = True,
) -> DealtKey:
    net = world.net
    dealt = deal_key(
        SeededRng(key_id + bytes([t])),
        net.order,
        t,
        with_document_key=with_document_key,
        author=REQUESTER.address,
        with_commitments=commitments,
    )
    for node, share in dealt.shares.items():
        net.nodes[node].storage.insert(key_id, share)
    world.keys[key_id] = dealt
    return dealt


class GenerationKind(Kind):
    name = "generation"
    binds = True
    request_type = GenerateServerKey

    def prepare(self, world: World) -> None:
        pass

    def request(self, world: World, *, earlier: bool) -> Any:
        key_id = EARLIER_KEY if earlier else KEY
        t = world.scenario.t
        bound = None
        if self.binds and world.rogue_is_master:
            bound = sign_bound_request(
                REQUESTER.secret,
                BoundOperation.GENERATE_SERVER_KEY,
                key_id,
                generation_payload(t),
            )
        return GenerateServerKey(key_id, proof(key_id), t, bound)

    def check_result(self, world: World, value: object) -> None:
        assert isinstance(value, Point)
        for node in world.honest:
            share = world.share(node)
            assert share is not None, f"honest node {short(node)} stored no share"
            assert share.public == value, "the public returned is not the one stored"

    def check_storage(self, world: World, finished: bool) -> None:
        stored = {node: world.share(node) for node in world.honest}
        shares = {node: s for node, s in stored.items() if s is not None}
        if not shares:
            return
        first = next(iter(shares.values()))
        for node, share in shares.items():
            assert share.author == REQUESTER.address, f"{short(node)} stored another author"
            assert share.threshold == world.scenario.t, f"{short(node)} stored another threshold"
            assert share.public == first.public, "honest nodes stored different publics"
            assert [v.hash for v in share.versions] == [v.hash for v in first.versions]
            assert share.last_version().id_numbers == first.last_version().id_numbers
            assert set(share.last_version().nodes) == set(world.net.order)
        t = first.threshold
        for subset in itertools.combinations(sorted(shares), t + 1):
            secret = reconstruct(shares, subset)  # type: ignore[arg-type]
            assert Point.base_mul(secret) == first.public, "honest shares do not fit the public"


class StoreKind(Kind):
    name = "store"
    binds = True
    request_type = StoreDocumentKey

    def prepare(self, world: World) -> None:
        for key_id in (KEY, EARLIER_KEY):
            deal(world, key_id, world.scenario.t, with_document_key=False)

    def points(self, world: World, key_id: ServerKeyId) -> tuple[Point, Point]:
        rng = SeededRng(b"document key" + key_id)
        secret = encrypt_secret(KeyPair.generate(rng).public, world.keys[key_id].public, rng)
        return secret.common_point, secret.encrypted_point

    def request(self, world: World, *, earlier: bool) -> Any:
        key_id = EARLIER_KEY if earlier else KEY
        common, encrypted = self.points(world, key_id)
        bound = None
        if self.binds and world.rogue_is_master:
            bound = sign_bound_request(
                REQUESTER.secret,
                BoundOperation.STORE_DOCUMENT_KEY,
                key_id,
                store_payload(common, encrypted),
            )
        return StoreDocumentKey(key_id, proof(key_id), common, encrypted, bound)

    def check_result(self, world: World, value: object) -> None:
        assert value is None
        asked = self.points(world, KEY)
        for node in world.honest:
            share = world.share(node)
            assert share is not None
            assert (share.common_point, share.encrypted_point) == asked, (
                f"honest node {short(node)} did not store the document key"
            )

    def check_storage(self, world: World, finished: bool) -> None:
        asked = self.points(world, KEY)
        for node in world.honest:
            share, before = world.share(node), world.before[node]
            assert share is not None and before is not None
            stored = (share.common_point, share.encrypted_point)
            assert stored in ((None, None), asked), (
                f"honest node {short(node)} stored a document key the author did not ask for"
            )
            assert share.versions == before.versions and share.author == before.author


class NegotiationKind(Kind):
    name = "negotiation"
    request_type = NegotiateKeyVersion

    def request(self, world: World, *, earlier: bool) -> Any:
        return NegotiateKeyVersion(KEY)

    def check_result(self, world: World, value: object) -> None:
        assert isinstance(value, NegotiatedVersion)
        dealt = world.keys[KEY]
        version = next(iter(dealt.shares.values())).last_version()
        assert value.version == version.hash
        assert value.common == CommonKeyData(REQUESTER.address, dealt.threshold, dealt.public)
        holders = set(dealt.shares)
        assert value.holders <= holders, "a node that does not hold the version is a holder"
        assert set(world.honest) & holders <= value.holders, "an honest holder was left out"


class RetrievalKind(Kind):
    """Server key retrieval at a master that holds no share (nodes 1.. hold the key)."""

    name = "retrieval"
    request_type = RetrieveServerKey

    def prepare(self, world: World) -> None:
        net = world.net
        holders = net.order[1:]
        dealt = deal_key(
            SeededRng(b"retrieval"),
            holders,
            world.scenario.t,
            with_document_key=False,
            author=REQUESTER.address,
        )
        for node, share in dealt.shares.items():
            net.nodes[node].storage.insert(KEY, share)
        world.keys[KEY] = dealt

    def request(self, world: World, *, earlier: bool) -> Any:
        return RetrieveServerKey(KEY, REQUESTER.address)

    def check_result(self, world: World, value: object) -> None:
        assert value == world.keys[KEY].public, "the master returned another public"


class DecryptionKind(Kind):
    #: the first group's job comes with the access request; a later group's alone
    group_message = DecryptionJobRequest
    request_type = RetrieveDocumentKey
    shadow_policy = True
    #: a well-formed decrypt shadow of a wrong d_i: only the requester can tell
    semantic: ClassVar[Mapping[tuple[type, mutate.Path], Mapping[str, mutate.Semantic]]] = {
        (DecryptionJobResponse, ("decrypt_shadow",)): {
            "encrypted-to-the-requester-another-scalar": lambda value, ctx: ecies_encrypt(
                REQUESTER.public, random_scalar(ctx.rng).to_bytes(), ctx.rng
            )
        }
    }

    def __init__(self, shadow: bool, *, commitments: bool = True, audit: bool = False) -> None:
        self.shadow = shadow
        self.commitments = commitments
        self.audit = audit
        name = "shadow-decryption" if shadow else "decryption"
        name = name if commitments else f"{name}-without-commitments"
        self.name = f"{name}-audited" if audit else name

    def selects(self, message: object) -> bool:
        if isinstance(message, DecryptionRequest):
            return message.job is not None
        return isinstance(message, DecryptionJobRequest)

    def prepare(self, world: World) -> None:
        deal(world, KEY, world.scenario.t, with_document_key=True, commitments=self.commitments)

    def request(self, world: World, *, earlier: bool) -> Any:
        return RetrieveDocumentKey(KEY, sign_recoverable(REQUESTER.secret, KEY), self.shadow)

    def check_result(self, world: World, value: object) -> None:
        expected = world.keys[KEY].document_key
        if not self.shadow:
            assert value == expected, "the master returned a wrong document key"
            return
        assert isinstance(value, ShadowResult)
        answer = DocumentKeyShadow(
            value.decrypted_secret, value.common_point, value.decrypt_shadows, value.proofs
        )
        try:  # the requester's own check (secretstore.client), anchored at the server key
            key = answer.document_key(
                KEY,
                REQUESTER,
                server_key_public=world.keys[KEY].public,
                require_proofs=self.commitments,
            )
        except ShadowVerificationError as error:
            # the requester sees which node's contribution fails: the rogue's, or none
            assert error.node == "0x" + world.rogue.hex(), f"the requester's check: {error}"
            raise RequesterRefused(error) from None
        assert key == expected, "the shadow result combines to a wrong document key"

    def check_released(self, world: World, sid: SessionId) -> None:
        for sender, _, message in world.net.sent:
            if sender == world.rogue or not isinstance(message, DecryptionJobResponse):
                continue
            assert message.decrypt_shadow is not None, (
                f"honest node {short(sender)} answered a plain job, against its policy"
            )


class AskingAgainKind(DecryptionKind):
    """A shadow retrieval on 4 nodes whose first group is refused: honest node 1's own policy
    refuses the requester, so when the master picked it for the first group (the seed is
    chosen for it), the master asks the holders it had not asked (DecryptionRequest without a
    job, ConsensusResponse) and sends the second group its job alone (DecryptionJobRequest).
    The rogue member is one of that second group."""

    def __init__(self) -> None:
        super().__init__(shadow=True)
        self.name = "shadow-decryption-asking-again"

    def configure(self, world: World) -> None:
        refusing = world.net.order[1]

        def access(node: NodeId, requester: Address, key_id: ServerKeyId) -> bool:
            return node != refusing and requester_only(node, requester, key_id)

        world.net.access = access

    #: the earlier session asks again too, of the same nodes (its job is the replays' source)
    selects_in_earlier = True

    def selects_rogue(self, world: World, sid: SessionId) -> bool:
        def second_group(session: SessionId | None) -> set[NodeId]:
            return {
                to
                for sender, to, m in world.net.sent
                if sender == world.master
                and isinstance(m, DecryptionJobRequest)
                and m.session_id == session
            }

        target = second_group(sid)
        if target != second_group(world.earlier_sid):
            return False
        return bool(target) if world.rogue_is_master else world.rogue in target


CONTRACT = Address(b"\xcc" * 20)
BLOCK = BlockRef(77, Hash256(b"\x77" * 32))
EARLIER_BLOCK = BlockRef(76, Hash256(b"\x76" * 32))


def service_requests(node: NodeId, claim: OriginClaim) -> str | None:
    """What every node reads from the service contract: the requester's shadow retrievals of
    KEY at BLOCK (the target) and EARLIER_BLOCK (the earlier session), nothing else."""
    origin = claim.origin
    if origin.contract != CONTRACT or origin.block not in (BLOCK, EARLIER_BLOCK):
        return "not pending there"
    if claim.key_id != KEY or origin.requester != REQUESTER.node_id:
        return "another request is pending there"
    return None


class BroadcastKind(DecryptionKind):
    """A service contract's shadow retrieval (broadcast): the master passes every member's
    answer on (DecryptionJobResults) and each member checks every proof itself, then ends with
    its own part (PersonalShare: the participants, the decrypted secret D and its own decrypt
    shadow), which it would publish on the contract. Ground truth: every honest node's part is
    one the requester combines, with the decrypt shadows the proofs bind, into the stored
    document key; honest nodes that end with a part agree on the participants and D."""

    def __init__(self) -> None:
        super().__init__(shadow=True)
        self.name = "broadcast-shadow-decryption"

    def configure(self, world: World) -> None:
        world.net.origins = service_requests

    def request(self, world: World, *, earlier: bool) -> Any:
        origin = ServiceOrigin(CONTRACT, EARLIER_BLOCK if earlier else BLOCK, REQUESTER.node_id)
        return RetrieveDocumentKey(KEY, b"", shadow=True, origin=origin)

    def check_result(self, world: World, value: object) -> None:
        assert isinstance(value, PersonalShare), f"the master's result: {value!r}"
        check_parts(world, world.net.target_sid)

    def check_released(self, world: World, sid: SessionId) -> None:
        super().check_released(world, sid)
        check_parts(world, sid)


def parts_of(world: World, sid: SessionId | None) -> dict[NodeId, PersonalShare]:
    """The part every honest node ended session `sid` with (its OriginOutcome's)."""
    out = {}
    for node in world.honest:
        for outcome in world.net.nodes[node].outcomes:
            if outcome.session_id == sid and isinstance(outcome.result, PersonalShare):
                out[node] = outcome.result
    return out


def check_parts(world: World, sid: SessionId | None) -> None:
    """Every honest node's part of the broadcast retrieval `sid` gives the document key: its
    decrypted secret, with the decrypt shadows of the results it sent or checked (each
    member's sealed for the requester, its own from its part), opens to the stored key."""
    parts = parts_of(world, sid)
    dealt = world.keys[KEY]
    common = make_common_shadow_point(
        dealt.threshold, next(iter(dealt.shares.values())).common_point
    )
    for node, part in parts.items():
        results = [
            m
            for sender, to, m in world.net.sent
            if isinstance(m, DecryptionJobResults)
            and m.session_id == sid
            and (to == node or sender == node)
        ]
        assert results, f"honest node {short(node)} ended with a part without the results"
        answers = {a.node: a for a in results[-1].answers}
        assert tuple(answers) == part.participants, f"{short(node)}'s part names other members"
        sealed = [
            part.decrypt_shadow if member == node else answers[member].sealed_shadow
            for member in part.participants
        ]
        assert all(item is not None for item in sealed)
        coefficients = [
            Scalar.from_bytes(ecies_decrypt(REQUESTER.secret, item))  # type: ignore[arg-type]
            for item in sealed
        ]
        key = decrypt_with_shadow_coefficients(part.decrypted_secret, common, coefficients)
        assert key == dealt.document_key, f"honest node {short(node)}'s part gives a wrong key"
    agreed = {(part.participants, part.decrypted_secret) for part in parts.values()}
    assert len(agreed) <= 1, "honest nodes ended with parts of different retrievals"


class PresignKind(Kind):
    """ECDSA presigning on 3 nodes (t = 1: the group is every node). Ground truth: the honest
    master's presignature, alone in its pool, serves a signing of HASH at once (its group
    answers with signature shares, no nonce generation runs) and the signature verifies."""

    name = "presign"
    request_type = Presign
    group_message = PresignRequest
    presignatures = 4

    def prepare(self, world: World) -> None:
        deal(world, KEY, world.scenario.t, with_document_key=False)

    def request(self, world: World, *, earlier: bool) -> Any:
        return Presign(KEY)

    def check_result(self, world: World, value: object) -> None:
        assert isinstance(value, Presignature) and value.inversed_nonce_coeff is not None
        net = world.net
        pool = net.nodes[world.master].core.ctx.presigns
        assert pool is not None
        pool.forget(KEY)
        pool.put(value)
        signature = sign_recoverable(REQUESTER.secret, KEY)
        sid = net.start_session(world.scenario.master, SignEcdsa(KEY, signature, HASH))
        net.run()
        net.expire()
        outcome = net.nodes[world.master].results.get(sid)
        assert isinstance(outcome, Finish), f"a signing with the presignature: {outcome}"
        public = world.keys[KEY].public.to_bytes()
        assert isinstance(outcome.result, bytes) and ecdsa_recovers(public, outcome.result, HASH)
        used = [
            m for _, _, m in net.sent if isinstance(m, EcdsaSigningRequest) and m.session_id == sid
        ]
        assert used and all(m.presigned is not None for m in used), "the presignature was not used"
        assert not any(
            isinstance(m, SigningNonceRequest) and m.session_id == sid for _, _, m in net.sent
        ), "the signing ran nonce generations: the presignature did not serve"


class SigningKind(Kind):
    binds = True
    group_message = SigningNonceRequest

    def __init__(self, scheme: str) -> None:
        self.scheme = scheme
        self.name = scheme
        self.request_type = SignSchnorr if scheme == "schnorr" else SignEcdsa

    def prepare(self, world: World) -> None:
        deal(world, KEY, world.scenario.t, with_document_key=False)

    def request(self, world: World, *, earlier: bool) -> Any:
        message = EARLIER_HASH if earlier else HASH
        signature = sign_recoverable(REQUESTER.secret, KEY)
        bound = None
        operation = (
            BoundOperation.SIGN_SCHNORR if self.scheme == "schnorr" else (BoundOperation.SIGN_ECDSA)
        )
        if self.binds and world.rogue_is_master:
            bound = sign_bound_request(REQUESTER.secret, operation, KEY, signing_payload(message))
        cls = SignSchnorr if self.scheme == "schnorr" else SignEcdsa
        return cls(KEY, signature, message, bound_signature=bound)

    def check_result(self, world: World, value: object) -> None:
        public = world.keys[KEY].public.to_bytes()
        if self.scheme == "schnorr":
            assert isinstance(value, SchnorrSignature)
            assert schnorr_verifies(public, value.to_bytes(), HASH), "a bad Schnorr signature"
        else:
            assert isinstance(value, bytes)
            assert ecdsa_recovers(public, value, HASH), "a bad ECDSA signature"

    def check_released(self, world: World, sid: SessionId) -> None:
        inits = {
            node: init
            for node, init in world.net.inits
            if isinstance(init, SchnorrSigningRequest | EcdsaSigningRequest)
            and init.session_id == sid
        }
        for sender, _, message in world.net.sent:
            if sender == world.rogue or not isinstance(
                message, SchnorrSignatureShare | EcdsaSignatureShare
            ):
                continue
            if message.session_id != sid:
                continue
            init = inits.get(sender)
            # the requester bound both hashes (HASH now, EARLIER_HASH in the earlier session):
            # a replayed bound request signs a hash it asked for again, nothing else
            assert init is not None and init.message_hash in (HASH, EARLIER_HASH), (
                f"honest node {short(sender)} signed a hash the requester did not ask for"
            )


class DelegatedKind(Kind):
    """A decryption or signing asked of a node without the key (node 0): it negotiates the
    version and delegates to a holder, which runs the session among the holders and sends
    the result back (the origin checks a signature; the requester, a shadow answer)."""

    group_message = DelegatedRequest
    selects_in_earlier = True  # the origin picks a holder at random for each request

    def __init__(self, inner: DecryptionKind | SigningKind, *, audit: bool = False) -> None:
        self.inner = inner
        self.audit = audit
        self.name = f"delegated-{inner.name}" + ("-audited" if audit else "")
        self.binds = inner.binds
        self.shadow_policy = inner.shadow_policy
        self.request_type = inner.request_type
        self.semantic = inner.semantic

    def prepare(self, world: World) -> None:
        net = world.net
        holders = net.order[1:]
        dealt = deal_key(
            SeededRng(b"delegated" + self.name.encode()),
            holders,
            world.scenario.t,
            with_document_key=isinstance(self.inner, DecryptionKind),
            author=REQUESTER.address,
        )
        for node, share in dealt.shares.items():
            net.nodes[node].storage.insert(KEY, share)
        world.keys[KEY] = dealt

    def request(self, world: World, *, earlier: bool) -> Any:
        return self.inner.request(world, earlier=earlier)

    def selects_rogue(self, world: World, sid: SessionId) -> bool:
        """A member rogue is the delegate of the target session and of the earlier one."""
        if world.rogue_is_master:
            return True
        delegated = {
            m.session_id
            for sender, to, m in world.net.sent
            if sender == world.master and to == world.rogue and isinstance(m, DelegatedRequest)
        }
        return {sid, world.earlier_sid} <= delegated

    def configure(self, world: World) -> None:
        self.inner.configure(world)

    def check_result(self, world: World, value: object) -> None:
        if isinstance(self.inner, BroadcastKind):
            # the origin holds no share and publishes nothing: it is told who the members are
            # (the delegate's word, checked to be a group of the holders with the delegate in
            # it, and only logged: the members publish their parts themselves, which is what
            # is judged here; a rogue delegate can name another such group, e.g. the earlier
            # session's, and the origin cannot tell)
            assert isinstance(value, ServedByMembers), f"the origin's result: {value!r}"
            holders = set(world.keys[KEY].shares)
            assert value.delegate in value.participants and set(value.participants) <= holders
            assert len(value.participants) == world.keys[KEY].threshold + 1
            assert world.master not in parts_of(world, world.net.target_sid)
            check_parts(world, world.net.target_sid)
            return
        self.inner.check_result(world, value)

    def check_released(self, world: World, sid: SessionId) -> None:
        self.inner.check_released(world, sid)
        for sender, to, message in world.net.sent:
            if sender == world.rogue or to != world.rogue:
                continue
            assert not isinstance(message, DelegatedDocumentKey), (
                f"honest node {short(sender)} served a plain retrieval, against its policy"
            )
            if isinstance(message, DelegatedSignature):
                public = world.keys[KEY].public.to_bytes()
                signed = [
                    h
                    for h in (HASH, EARLIER_HASH)
                    if (
                        schnorr_verifies(public, message.signature, h)
                        if len(message.signature) == 64
                        else ecdsa_recovers(public, message.signature, h)
                    )
                ]
                assert signed, f"honest node {short(sender)} signed a hash nobody asked for"


class NodeSetChangeKind(Kind):
    """A node set change on n nodes: the key on nodes 0..n-2 (node n-1 holds nothing); the
    earlier change adds node n-1, the target change removes it again (or, if the earlier
    change failed, adds it: the same change run again). The rogue member is node n-2, a
    dealer of the key in both changes (the seed is chosen for it)."""

    name = "node-set-change"
    request_type = ChangeNodeSet
    earlier_always = True

    def configure(self, world: World) -> None:
        net = world.net
        for node_id, node in net.nodes.items():
            settings = AdminSettings(
                ConfiguredAdmin(ADMIN.public),
                node.storage,
                lambda node_id=node_id: net.connected() - {node_id},  # type: ignore[misc]
            )
            masters, slaves = admin_tables(settings)
            node.core = NodeCore(
                node.core.ctx,
                node.storage,
                {**MASTERS, **masters},
                net.recording({**SLAVES, **slaves}),
            )

    def rogue_member(self, n: int) -> int:
        return n - 2

    def selects_rogue(self, world: World, sid: SessionId) -> bool:
        earlier = world.earlier_sid
        dealt = {
            m.session_id
            for to, m in world.net.rogue_log
            if isinstance(m, KeySubshare) and m.session_id in (sid, earlier)
        }
        return dealt == {sid, earlier}

    def prepare(self, world: World) -> None:
        net = world.net
        dealt = deal_key(
            SeededRng(b"node set change"),
            net.order[:-1],
            world.scenario.t,
            with_document_key=True,
            author=REQUESTER.address,
        )
        for node, share in dealt.shares.items():
            net.nodes[node].storage.insert(KEY, share)
        world.keys[KEY] = dealt

    def new_set(self, world: World, *, earlier: bool) -> frozenset[NodeId]:
        nodes = world.net.order
        added = world.before.get(nodes[-1]) is not None
        return frozenset(nodes[:-1] if not earlier and added else nodes)

    def request(self, world: World, *, earlier: bool) -> Any:
        new = self.new_set(world, earlier=earlier)
        old = frozenset(world.net.order)
        return ChangeNodeSet(new, sign_set(old), sign_set(new))

    def check_result(self, world: World, value: object) -> None:
        assert value is None
        new = self.new_set(world, earlier=False)
        shares = {node: world.share(node) for node in world.honest}
        for node, share in shares.items():
            if node not in new and share is not None:
                # a leaving node keeps, as it was, a key some new-set node did not confirm to
                # it: only a rogue new-set node (not the master) can withhold that
                withheld = world.rogue in new and not world.rogue_is_master
                assert withheld and share == world.before.get(node), (
                    f"honest node {short(node)} left the set and kept a share"
                )
        held = {node: s for node, s in shares.items() if s is not None and node in new}
        newest = {s.last_version().hash for s in held.values()}
        assert len(newest) == 1, "honest new holders disagree on the newest version"
        version = next(iter(held.values())).last_version()
        assert set(version.nodes) == new, "the new version is not on the new set"
        assert all(node in held for node in world.honest if node in new), "a new holder lacks it"

    def check_storage(self, world: World, finished: bool) -> None:
        """Whatever the outcome: every honest share keeps the key's data; each version honest
        nodes hold is one sharing (the same record, shares on its commitments, any t+1 honest
        holders give the secret); some version t+1 honest nodes hold gives the key."""
        dealt = world.keys[KEY]
        shares = {node: s for node in world.honest if (s := world.share(node)) is not None}
        before = {node: s for node, s in world.before.items() if s is not None}
        recoverable = False
        by_version: dict[bytes, dict[NodeId, Any]] = {}
        for node, share in shares.items():
            assert (share.public, share.threshold, share.author) == (
                dealt.public,
                dealt.threshold,
                REQUESTER.address,
            ), f"honest node {short(node)} holds other key data"
            first = before.get(node)
            if first is not None:
                assert (share.common_point, share.encrypted_point) == (
                    first.common_point,
                    first.encrypted_point,
                ), f"honest node {short(node)} holds another document key"
                kept = {v.hash: v for v in share.versions}
                for old in first.versions:
                    assert kept.get(old.hash) == old, f"{short(node)} lost or changed a version"
            for version in share.versions:
                by_version.setdefault(version.hash, {})[node] = version
        for hash_, versions in by_version.items():
            records = {(v.id_numbers, v.commitments) for v in versions.values()}
            assert len(records) == 1, f"honest nodes hold version {hash_.hex()[:8]} differently"
            for node, version in versions.items():
                if version.commitments is not None:
                    number = version.id_number(node)
                    assert number is not None
                    assert share_public(version.commitments, number) == Point.base_mul(
                        version.secret_share
                    ), f"honest node {short(node)} holds a share off its version's commitments"
            if len(versions) > dealt.threshold:
                subset = sorted(versions)[: dealt.threshold + 1]
                secret = reconstruct_secret(
                    dealt.threshold,
                    [versions[node].secret_share for node in subset],
                    [versions[node].id_number(node) for node in subset],  # type: ignore[misc]
                )
                assert secret == dealt.secret, "honest shares of one version give another key"
                recoverable = True
        assert recoverable, "no version of the key is held by t+1 honest nodes: it is lost"

    def check_released(self, world: World, sid: SessionId) -> None:
        # the administrator's signatures cover the sets, not the session (as Parity's): a rogue
        # master can start the earlier change again (docs/THREAT_MODEL.md), so a node of
        # either signed new set may get subshares, and no other node
        new = self.new_set(world, earlier=False) | self.new_set(world, earlier=True)
        for sender, to, message in world.net.sent:
            if sender != world.rogue and isinstance(message, KeySubshare):
                assert to in new, f"honest node {short(sender)} dealt to a node outside the set"


class ReplacingChangeKind(NodeSetChangeKind):
    """A node set change that moves the key off the nodes that hold it: on 5 nodes, the key on
    nodes 1..3; the new set is nodes 0, 3 and 4 (nodes 1 and 2 leave, 0 and 4 get shares).
    The earlier change moves nothing (its new set is the holders: it only runs the messages
    around a change, for replays). The rogue member is node 1, a dealer that leaves."""

    name = "node-set-change-replacing"
    earlier_always = False

    def rogue_member(self, n: int) -> int:
        return 1

    def selects_rogue(self, world: World, sid: SessionId) -> bool:
        if world.rogue_is_master:
            return True
        return any(
            isinstance(m, KeySubshare) and m.session_id == sid for _, m in world.net.rogue_log
        )

    def prepare(self, world: World) -> None:
        net = world.net
        dealt = deal_key(
            SeededRng(b"node set change, replacing"),
            net.order[1:4],
            world.scenario.t,
            with_document_key=True,
            author=REQUESTER.address,
        )
        for node, share in dealt.shares.items():
            net.nodes[node].storage.insert(KEY, share)
        world.keys[KEY] = dealt

    def new_set(self, world: World, *, earlier: bool) -> frozenset[NodeId]:
        nodes = world.net.order
        return frozenset(nodes[1:4] if earlier else (nodes[0], nodes[3], nodes[4]))


# --- the key lifecycle: refresh, delete, tombstones -------------------------------------------

#: a key the rogue holds while another session writes it there: it skips the key in a refresh
BUSY_KEY = ServerKeyId(b"\x43" * 32)
#: a key nobody deletes: no session of a delete may touch it
KEPT_KEY = ServerKeyId(b"\x44" * 32)
#: the unix time every node reads (a refresh grant's expiry is checked against it)
NOW = 1_800_000_000.0
EVERY_KEY = RefreshScope((), None, 256)


def lifecycle_nodes(world: World, *, busy: bool = False) -> None:
    """Every node runs the refresh, the delete and the tombstone push beside the client
    sessions, with one table of key claims; `busy`: another session writes BUSY_KEY on the
    rogue (it skips that key in a refresh)."""
    net = world.net
    for node_id, node in net.nodes.items():
        claims = KeyClaims()
        refresh = RefreshSettings(
            ConfiguredAdmin(ADMIN.public),
            node.storage,
            claims,
            lambda node_id=node_id: net.connected() - {node_id},  # type: ignore[misc]
            lambda: NOW,
        )
        refresh_masters, refresh_slaves = refresh_tables(refresh)
        delete_masters, delete_slaves = delete_tables(DeleteSettings(node.storage, claims))
        node.core = NodeCore(
            node.core.ctx,
            node.storage,
            {**MASTERS, **refresh_masters, **delete_masters},
            net.recording({**SLAVES, **refresh_slaves, **delete_slaves}),
            claims=claims,
        )
        if busy and node_id == world.rogue:
            assert claims.claim(BUSY_KEY, SessionId(b"\x07" * 32))


def refresh_grant(world: World) -> RefreshGrant:
    expires = int(NOW + 600)
    signature = sign_refresh(ADMIN.secret, sorted(world.net.order), expires, ALL_KEYS)
    return RefreshGrant(expires, Hash256(ALL_KEYS), signature)


def check_sharings(world: World, key_id: ServerKeyId) -> dict[bytes, dict[NodeId, Any]]:
    """Each version of `key_id` honest nodes hold is one sharing of the dealt key (one record,
    shares on its commitments, any t+1 honest holders give the secret), and some version t+1
    honest nodes hold gives the key; returns the versions by hash and honest holder."""
    dealt = world.keys[key_id]
    by_version: dict[bytes, dict[NodeId, Any]] = {}
    for node in world.honest:
        share = world.share(node, key_id)
        if share is not None:
            for version in share.versions:
                by_version.setdefault(version.hash, {})[node] = version
    recoverable = False
    for hash_, versions in by_version.items():
        records = {(v.id_numbers, v.commitments) for v in versions.values()}
        assert len(records) == 1, f"honest nodes hold version {hash_.hex()[:8]} differently"
        for node, version in versions.items():
            number = version.id_number(node)
            assert number is not None, f"{short(node)} holds a version that does not list it"
            if version.commitments is not None:
                assert share_public(version.commitments, number) == Point.base_mul(
                    version.secret_share
                ), f"honest node {short(node)} holds a share off its version's commitments"
        if len(versions) > dealt.threshold:
            subset = sorted(versions)[: dealt.threshold + 1]
            secret = reconstruct_secret(
                dealt.threshold,
                [versions[node].secret_share for node in subset],
                [versions[node].id_number(node) for node in subset],  # type: ignore[misc]
            )
            assert secret == dealt.secret, "honest shares of one version give another key"
            recoverable = True
    assert recoverable, f"key {key_id.hex()[:8]}: no version t+1 honest nodes hold: it is lost"
    return by_version


class RefreshKind(Kind):
    """A proactive refresh of every key on n nodes, all of which hold KEY and BUSY_KEY; the
    earlier refresh re-deals both once, the target refresh again. Another session writes
    BUSY_KEY on the rogue, so the rogue (a member) skips it (RefreshSkip) and the key keeps
    its version. The rogue member is node n-1, a dealer of KEY in both refreshes (the seed is
    chosen for it). Ground truth: a finished refresh names KEY refreshed and BUSY_KEY skipped,
    and every honest holder holds a new version of KEY listing every holder; whatever the
    outcome, every honest node keeps its record of each key with the same key data, each
    version honest nodes hold is one sharing of the key, t+1 honest nodes hold one, and an
    honest node that erased a version keeps only versions every honest node they list holds
    (it erased on a new version confirmed to it)."""

    name = "refresh"
    request_type = RefreshKeys
    earlier_always = True

    def configure(self, world: World) -> None:
        lifecycle_nodes(world, busy=True)

    def prepare(self, world: World) -> None:
        for key_id in (KEY, BUSY_KEY):
            deal(world, key_id, world.scenario.t, with_document_key=key_id == KEY)

    def request(self, world: World, *, earlier: bool) -> Any:
        return RefreshKeys(EVERY_KEY, refresh_grant(world))

    def selects_rogue(self, world: World, sid: SessionId) -> bool:
        if world.rogue_is_master:
            return True
        dealt = {
            m.session_id
            for _, m in world.net.rogue_log
            if isinstance(m, KeySubshare) and m.key_id == KEY
        }
        return {sid, world.earlier_sid} <= dealt

    def check_result(self, world: World, value: object) -> None:
        assert isinstance(value, RefreshOutcome), f"the master's result: {value!r}"
        skipped = dict(value.skipped)
        # (a key only the rogue reports is skipped too: it holds nothing honest nodes hold)
        assert set(value.refreshed) <= {KEY, BUSY_KEY}, f"refreshed: {value.refreshed}"
        assert not set(value.refreshed) & set(skipped), f"refreshed and skipped: {value}"
        assert {KEY, BUSY_KEY} <= {*value.refreshed, *skipped}, f"a key left out: {value}"
        if KEY in skipped:  # the rogue made it skip: the reason must say who
            assert short(world.rogue) in skipped[KEY], f"a skip naming no rogue: {skipped[KEY]}"
        for key_id in value.refreshed:
            old = {v.hash for v in world.keys[key_id].shares[world.honest[0]].versions}
            if key_id == KEY:
                old |= {v.hash for n in world.honest for v in world.before[n].versions}  # type: ignore[union-attr]
            newest = set()
            for node in world.honest:
                share = world.share(node, key_id)
                assert share is not None, f"honest node {short(node)} lost a refreshed key"
                newest.add(share.last_version().hash)
                assert set(share.last_version().nodes) == set(world.net.order)
            assert len(newest) == 1, "honest holders are on different newest versions"
            assert not newest & old, "a refreshed key has no new version"

    def check_storage(self, world: World, finished: bool) -> None:
        for key_id in (KEY, BUSY_KEY):
            dealt = world.keys[key_id]
            versions = check_sharings(world, key_id)
            for node in world.honest:
                share = world.share(node, key_id)
                assert share is not None, f"honest node {short(node)} lost its record of a key"
                assert (share.public, share.threshold, share.author) == (
                    dealt.public,
                    dealt.threshold,
                    REQUESTER.address,
                ), f"honest node {short(node)} holds other key data"
                first = dealt.shares[node]
                assert (share.common_point, share.encrypted_point) == (
                    first.common_point,
                    first.encrypted_point,
                ), f"honest node {short(node)} holds another document key"
                before = world.before[node] if key_id == KEY else None
                if before is None:
                    continue
                kept = {v.hash for v in share.versions}
                if {v.hash for v in before.versions} <= kept:
                    continue
                for version in share.versions:  # it erased: on a confirmed new version only
                    holders = set(version.nodes) & set(world.honest)
                    assert holders <= set(versions[version.hash]), (
                        f"honest node {short(node)} erased an old version of a key on a new "
                        "version not every honest holder of it holds"
                    )


def delete_request(world: World, key_id: ServerKeyId) -> DeleteKey:
    public = world.keys[key_id].public
    bound = sign_bound_request(
        REQUESTER.secret, BoundOperation.DELETE_KEY, key_id, delete_payload(public)
    )
    return DeleteKey(key_id, proof(key_id), bound)


def check_deleted_or_kept(world: World, deleted: tuple[ServerKeyId, ...]) -> None:
    """On every honest node: KEPT_KEY as dealt and never buried; each key of `deleted` (the
    author's) as it was before the session, or erased with the author's tombstone of it."""
    for node in world.honest:
        storage = world.net.nodes[node].storage
        assert world.share(node, KEPT_KEY) == world.keys[KEPT_KEY].shares[node], (
            f"honest node {short(node)} changed a key the author did not delete"
        )
        assert storage.tombstone(KEPT_KEY) is None, (
            f"honest node {short(node)} buried a key the author did not delete"
        )
        for key_id in deleted:
            share = world.share(node, key_id)
            tombstone = storage.tombstone(key_id)
            if share is not None:
                assert share == world.keys[key_id].shares[node], f"{short(node)}'s share changed"
                continue
            dealt = world.keys[key_id]
            assert tombstone is not None, f"honest node {short(node)} erased a key, no tombstone"
            assert (tombstone.public, tombstone.author) == (dealt.public, REQUESTER.address)
            assert tombstone_fits(tombstone, dealt.shares[node]), (
                f"honest node {short(node)} erased a key on a tombstone that is not the author's"
            )


#: a delete's or a push's key swapped for one the author did not delete
_ANOTHER_KEY: Mapping[str, mutate.Semantic] = {
    "a-key-the-author-did-not-delete": lambda value, ctx: KEPT_KEY
}


class DeleteKind(Kind):
    """A threshold delete on n nodes, all of which hold KEY, EARLIER_KEY and KEPT_KEY: the
    earlier session deletes EARLIER_KEY, the target KEY (both at the author's request).
    Ground truth: a delete the honest master reports done has every honest node confirmed
    and holding no share of KEY, so that at most the rogue's share is left (the key is dead);
    a failed one erased nothing on an honest node; whatever the outcome, no honest node
    touches KEPT_KEY, and an honest node that erased a key keeps the author's tombstone of it."""

    name = "delete"
    request_type = DeleteKey
    semantic: ClassVar[Mapping[tuple[type, mutate.Path], Mapping[str, mutate.Semantic]]] = {
        (DeleteKeyInit, ("key_id",)): _ANOTHER_KEY
    }

    def configure(self, world: World) -> None:
        lifecycle_nodes(world)

    def prepare(self, world: World) -> None:
        for key_id in (KEY, EARLIER_KEY, KEPT_KEY):
            deal(world, key_id, world.scenario.t, with_document_key=False)

    def request(self, world: World, *, earlier: bool) -> Any:
        return delete_request(world, EARLIER_KEY if earlier else KEY)

    def check_result(self, world: World, value: object) -> None:
        assert isinstance(value, DeleteResult), f"the master's result: {value!r}"
        assert value.key_id == KEY
        for node in world.honest:
            assert node in value.confirmed, f"honest node {short(node)} is not confirmed"
            assert world.share(node) is None, f"honest node {short(node)} kept a deleted key"

    def check_storage(self, world: World, finished: bool) -> None:
        check_deleted_or_kept(world, (KEY, EARLIER_KEY))
        if not world.rogue_is_master and not finished:
            for node in world.honest:
                assert world.share(node) is not None, (
                    f"a delete that failed erased the key on honest node {short(node)}"
                )


class TombstonePushKind(Kind):
    """The rogue (node 0) pushes its tombstones to every other node, as a node does when a
    link comes up: it erased KEY and EARLIER_KEY at the author's request while the others were
    away (they still hold both, and KEPT_KEY). The earlier push carries EARLIER_KEY's
    tombstone, the target push KEY's. A push has no other role: its receivers answer nothing.
    Ground truth: an honest node erases a key only on the author's tombstone of it, keeping
    that tombstone, and never touches KEPT_KEY; an honest push erases KEY everywhere."""

    name = "tombstone-push"
    request_type = DeleteKey
    semantic: ClassVar[Mapping[tuple[type, mutate.Path], Mapping[str, mutate.Semantic]]] = {
        (TombstonePush, ("tombstones", 0, "key_id")): _ANOTHER_KEY
    }

    def configure(self, world: World) -> None:
        lifecycle_nodes(world)

    def prepare(self, world: World) -> None:
        for key_id in (KEY, EARLIER_KEY, KEPT_KEY):
            dealt = deal(world, key_id, world.scenario.t, with_document_key=False)
            if key_id != KEPT_KEY:
                tombstone = self.tombstone(world, key_id)
                assert world.net.rogue.storage.bury(key_id, tombstone)
                assert tombstone_fits(tombstone, dealt.shares[world.rogue])

    def tombstone(self, world: World, key_id: ServerKeyId) -> Tombstone:
        request = delete_request(world, key_id)
        public = world.keys[key_id].public
        return Tombstone(key_id, public, REQUESTER.address, request.bound_signature)

    def request(self, world: World, *, earlier: bool) -> Any:
        raise NotImplementedError("a push starts no session on its sender")

    def start(self, world: World, *, earlier: bool) -> SessionId:
        net = world.net
        rogue = net.rogue
        sid = rogue.core.new_session_id()
        net.target_sid = sid
        if net.plan is not None:
            net.plan.session_id = sid
        tombstone = self.tombstone(world, EARLIER_KEY if earlier else KEY)
        (push,) = tombstone_pushes([tombstone], lambda: sid)
        net._apply(rogue, [Send(node, push) for node in world.honest])
        return sid

    def check_result(self, world: World, value: object) -> None:
        raise AssertionError("the rogue pushes: no honest master")

    def check_storage(self, world: World, finished: bool) -> None:
        check_deleted_or_kept(world, (KEY, EARLIER_KEY))


KINDS: Mapping[str, Kind] = {
    kind.name: kind
    for kind in (
        GenerationKind(),
        StoreKind(),
        NegotiationKind(),
        RetrievalKind(),
        DecryptionKind(shadow=False),
        DecryptionKind(shadow=True),
        DecryptionKind(shadow=False, commitments=False),
        DecryptionKind(shadow=True, commitments=False),
        SigningKind("schnorr"),
        SigningKind("ecdsa"),
        DelegatedKind(DecryptionKind(shadow=False)),
        DelegatedKind(DecryptionKind(shadow=True)),
        DelegatedKind(SigningKind("schnorr")),
        DelegatedKind(SigningKind("ecdsa")),
        DecryptionKind(shadow=True, audit=True),
        DelegatedKind(DecryptionKind(shadow=True), audit=True),
        DelegatedKind(SigningKind("schnorr"), audit=True),
        AskingAgainKind(),
        BroadcastKind(),
        DelegatedKind(BroadcastKind()),
        PresignKind(),
        NodeSetChangeKind(),
        ReplacingChangeKind(),
        RefreshKind(),
        DeleteKind(),
        TombstonePushKind(),
    )
}


# --- scenarios ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Scenario:
    session: str
    role: str  # "member" (of an honest master's session) or "master"
    n: int
    t: int
    slow: bool = False
    #: what the rogue sends of its own accord (PROVOCATIONS), "" for nothing: the cases are
    #: then those of the provoked messages only (the rest are the plain scenario's)
    provocation: str = ""

    @property
    def kind(self) -> Kind:
        return KINDS[self.session]

    @property
    def name(self) -> str:
        suffix = f"-{self.provocation}" if self.provocation else ""
        return f"{self.session}-n{self.n}t{self.t}-{self.role}{suffix}"

    @property
    def master(self) -> int:
        return 0

    @property
    def seed(self) -> int:
        return seed_of(self)

    @property
    def rogue(self) -> int:
        return rogue_of(self, self.seed)

    def build(self, *, earlier: bool = True) -> World:
        """The world up to the target session: the key, and (if `earlier`) an earlier session
        of the same kind, run honestly. Every node's randomness is then reseeded, so the
        target session runs the same way with or without the earlier one."""
        return _build(self, self.seed, self.rogue, earlier=earlier)


def _build(scenario: Scenario, seed: int, rogue: int, *, earlier: bool = True) -> World:
    kind = scenario.kind
    net = ByzantineNetwork(
        scenario.n,
        MASTERS,
        SLAVES,
        seed=seed,
        rogue=rogue,
        access=kind.access,
        presignatures=kind.presignatures,
        audit=kind.audit,
    )
    world = World(scenario, net)
    if scenario.provocation:
        net.provoke = PROVOCATIONS[scenario.provocation]
    kind.configure(world)
    kind.prepare(world)
    if world.rogue_is_master:
        for index in range(scenario.n):
            if index != rogue:
                core = net.node(index).core
                core.ctx = replace(
                    core.ctx,
                    require_bound_requests=kind.binds,
                    require_shadow_retrieval=kind.shadow_policy,
                )
    if earlier or kind.earlier_always:
        world.earlier_sid = kind.start(world, earlier=True)
        net.run()
        net.expire()
    for index, node in enumerate(net.nodes.values()):
        node.core.ctx = replace(node.core.ctx, rng=SeededRng(f"target {seed} {index}".encode()))
    world.before = {node: world.share(node) for node in world.honest}
    world.earlier_results = {node: frozenset(sim.results) for node, sim in net.nodes.items()}
    return world


def _report(make: Callable[[SessionId, int, NodeId], object]) -> Provocation:
    """Before its first nonce message of a session, the rogue (a member) sends the master
    `make(session, attempt, another member)`: a report no honest member would make."""

    def provoke(net: ByzantineNetwork, send: Send) -> list[Send]:
        message = send.message
        if not isinstance(message, SigningNonceMessage):
            return []
        if any(
            isinstance(m, SigningFault | SigningNodeLost) and m.session_id == message.session_id
            for _, m in net.rogue_log
        ):
            return []
        session = net.rogue.core.session(message.session_id)
        assert isinstance(session, SigningSlave) and session.nonces is not None
        others = [n for n in session.nonces.nodes if n not in (session.master, net.rogue.node_id)]
        report = make(message.session_id, message.attempt, others[0])
        return [Send(session.master, report)]

    return provoke


def _blaming_a_dealer(net: ByzantineNetwork, send: Send) -> list[Send]:
    """Before its first KeyMoved of a change, the rogue (a target) reports that another dealer
    sent it a subshare off its commitments: a report no honest target would make."""
    message = send.message
    if not isinstance(message, KeyMoved) or any(
        isinstance(m, KeyChangeFault) and m.session_id == message.session_id
        for _, m in net.rogue_log
    ):
        return []
    dealers = {
        sender
        for sender, to, m in net.sent
        if to == net.rogue.node_id
        and isinstance(m, KeySubshare)
        and m.session_id == message.session_id
    }
    (accused, *_) = sorted(dealers - {net.rogue.node_id})
    report = KeyChangeFault(
        message.session_id, message.key_id, (accused,), "sent a subshare off its commitments"
    )
    return [Send(send.to, report)]


PROVOCATIONS: Mapping[str, Provocation] = {
    # a false blame: "another member dealt me bad keys"
    "accusing": _report(
        lambda sid, attempt, node: SigningFault(
            sid, attempt, node, "dealt keys that do not match its commitments"
        )
    ),
    # a false loss report: "my link to another member broke"
    "losing-a-link": _report(SigningNodeLost),
    # a false blame in a node set change: "another dealer sent me a bad subshare"
    "blaming-a-dealer": _blaming_a_dealer,
}
#: the message types each provocation makes the rogue send
PROVOKED: Mapping[str, tuple[type, ...]] = {
    "accusing": (SigningFault,),
    "losing-a-link": (SigningNodeLost,),
    "blaming-a-dealer": (KeyChangeFault,),
}


def rogue_of(scenario: Scenario, seed: int) -> int:
    """The node the rogue is: the master itself, or (a member) the last node, except for a
    retrieval at a master without the key, where it is the holder whose answer the master
    reads first (the one with the lowest node id)."""
    if scenario.role == "master":
        return 0
    if scenario.session.startswith("node-set-change"):
        return scenario.kind.rogue_member(scenario.n)
    if scenario.session == "retrieval":
        order = ByzantineNetwork(scenario.n, MASTERS, SLAVES, seed=seed, rogue=0).order
        return order.index(min(order[1:]))
    return scenario.n - 1


@functools.cache
def seed_of(scenario: Scenario) -> int:
    """Seed 1, or the first seed whose honest run gives the rogue the part its cases need
    (`Kind.selects_rogue`: e.g. a member of a consensus session selected for the group, so
    that its job messages exist)."""
    kind = scenario.kind
    for seed in range(1, 65):
        earlier = kind.earlier_always or kind.selects_in_earlier
        world = _build(scenario, seed, rogue_of(scenario, seed), earlier=earlier)
        sid = world.start_target()
        world.net.run()
        if kind.selects_rogue(world, sid):
            return seed
    raise AssertionError(f"{scenario.name}: no seed gives the rogue its part")


def outcome(world: World, sid: SessionId) -> Finish | Fail | None:
    return world.net.nodes[world.master].results.get(sid)
