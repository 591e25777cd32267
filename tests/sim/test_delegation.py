"""Delegation and version choice on a simulated network: a master without the key, or whose
newest version has too few holders taking part, still serves decryption and signing, with the
access policy of every node in force and relayed signatures checked."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from secretstore.audit.model import Operation
from secretstore.audit.receipts import ReleaseReceipts, decode_receipts, encode_receipts
from secretstore.client.receipts import check_receipts
from secretstore.crypto.curve import ONE, G, Scalar
from secretstore.crypto.document import decrypt_with_shadow_coefficients
from secretstore.crypto.ecies import ecies_decrypt
from secretstore.crypto.keys import KeyPair, address_of, recover_public, sign_recoverable
from secretstore.crypto.rng import SeededRng
from secretstore.crypto.schnorr import SchnorrSignature, verify_schnorr_signature
from secretstore.crypto.shadow import make_common_shadow_point
from secretstore.errors import (
    AccessDenied,
    ConsensusUnreachable,
    ProtocolViolation,
    ServerKeyNotFound,
)
from secretstore.sessions.base import Fail, Finish, short
from secretstore.sessions.broadcast import PersonalShare, ServedByMembers
from secretstore.sessions.decryption import RetrieveDocumentKey
from secretstore.sessions.jobs.delegation import ResolvingMaster
from secretstore.sessions.origin import OriginClaim
from secretstore.sessions.registry import MASTERS as REGISTRY_MASTERS
from secretstore.sessions.registry import SLAVES as REGISTRY_SLAVES
from secretstore.sessions.signing_ecdsa import SignEcdsa
from secretstore.sessions.signing_schnorr import SignSchnorr
from secretstore.types import Address, BlockRef, Hash256, NodeId, ServerKeyId
from secretstore.wire.common import SessionError
from secretstore.wire.delegation import (
    DelegatedDocumentKey,
    DelegatedPersonal,
    DelegatedRequest,
    DelegatedShadow,
    DelegatedSignature,
)
from secretstore.wire.requester import ServiceOrigin
from tests.sim.admin_world import MESSAGE, REQUESTER, AdminWorld, document_key, key_id, make_world
from tests.sim.dealer import deal_key
from tests.sim.rogue import RogueNetwork

seeds = st.integers(0, 2**32)
KEY = key_id(0)


def world(
    seed: int, schedule: int, holders: list[int], n: int = 5, t: int = 1, audit: bool = False
) -> AdminWorld:
    return make_world(
        n, seed=seed, schedule=schedule, holders=holders, threshold=t, keys=1, audit=audit
    )


def ask(world: AdminWorld, master: NodeId, request: object) -> Finish | Fail:
    sid = world._start(master, request)
    world.net.run()
    outcome = world.net.nodes[master].results[sid]
    assert world.sessions_left() == 0
    return outcome


def value(outcome: Finish | Fail) -> object:
    if isinstance(outcome, Fail):
        raise outcome.error
    return outcome.result


def signature() -> bytes:
    return sign_recoverable(REQUESTER.secret, KEY)


@given(seed=seeds, schedule=seeds, kind=st.sampled_from(["plain", "shadow", "schnorr", "ecdsa"]))
def test_a_node_without_the_key_is_served_by_a_holder(seed: int, schedule: int, kind: str) -> None:
    w = world(seed, schedule, holders=[0, 1, 2])
    newcomer = w.ids[4]
    dealt = w.keys[KEY]
    if kind in ("plain", "shadow"):
        result = value(ask(w, newcomer, RetrieveDocumentKey(KEY, signature(), kind == "shadow")))
        assert document_key(result) == dealt.document_key
    elif kind == "schnorr":
        result = value(ask(w, newcomer, SignSchnorr(KEY, signature(), MESSAGE)))
        assert isinstance(result, SchnorrSignature)
        assert verify_schnorr_signature(dealt.public, result, MESSAGE)
    else:
        result = value(ask(w, newcomer, SignEcdsa(KEY, signature(), MESSAGE)))
        assert isinstance(result, bytes) and recover_public(result, MESSAGE) == dealt.public


def test_an_unknown_key_is_not_found_from_any_node() -> None:
    w = world(1, 2, holders=[0, 1, 2])
    missing = ServerKeyId(b"\x99" * 32)
    request = RetrieveDocumentKey(missing, sign_recoverable(REQUESTER.secret, missing), False)
    for node in (w.ids[0], w.ids[4]):
        with pytest.raises(ServerKeyNotFound):
            value(ask(w, node, request))


def test_the_holders_access_policy_decides_a_delegated_request() -> None:
    w = world(3, 4, holders=[0, 1, 2])
    w.net.access = lambda node, requester, key: node == w.ids[4]  # only the newcomer allows
    outcome = ask(w, w.ids[4], RetrieveDocumentKey(KEY, signature(), True))
    assert isinstance(outcome, Fail) and isinstance(outcome.error, AccessDenied)


def test_a_relayed_signature_that_does_not_verify_names_the_delegate() -> None:
    w = world(5, 6, holders=[0, 1, 2])
    liar: list[NodeId] = []

    def tamper(sender: NodeId, to: NodeId, message: object) -> object:
        if isinstance(message, DelegatedSignature):
            liar.append(sender)
            forged = SchnorrSignature.from_bytes(message.signature)
            return replace(message, signature=SchnorrSignature(forged.c, forged.s + ONE).to_bytes())
        return message

    w.net.tamper = tamper
    outcome = ask(w, w.ids[4], SignSchnorr(KEY, signature(), MESSAGE))
    assert isinstance(outcome, Fail) and isinstance(outcome.error, ProtocolViolation)
    assert outcome.error.node == short(liar[0])


def test_the_fast_path_neither_negotiates_nor_delegates() -> None:
    w = world(7, 8, holders=[0, 1, 2], n=3)
    seen: list[type] = []

    def watch(sender: NodeId, to: NodeId, message: object) -> object:
        seen.append(type(message))
        return message

    w.net.tamper = watch
    value(ask(w, w.ids[0], RetrieveDocumentKey(KEY, signature(), True)))
    names = {kind.__name__ for kind in seen}
    assert "RequestKeyVersions" not in names and "DelegatedRequest" not in names


@given(seed=seeds, schedule=seeds)
def test_too_few_holders_of_the_newest_version_fall_back_to_one_enough_nodes_hold(
    seed: int, schedule: int
) -> None:
    # a change that failed half-way: the first holder has a newer version that only it holds
    w = world(seed, schedule, holders=[0, 1, 2], n=3)
    first = w.ids[0]
    share = w.net.nodes[first].storage.get(KEY)
    assert share is not None
    lone = replace(
        share.versions[0],
        hash=b"\x01" * 32,
        secret_share=share.versions[0].secret_share + Scalar(1),
    )
    w.net.nodes[first].storage.update(KEY, share.with_version(lone))
    seen: list[str] = []

    def watch(sender: NodeId, to: NodeId, message: object) -> object:
        seen.append(type(message).__name__)
        return message

    w.net.tamper = watch
    for request in (
        RetrieveDocumentKey(KEY, signature(), False),
        SignSchnorr(KEY, signature(), MESSAGE),
    ):
        result = value(ask(w, first, request))
        if isinstance(result, SchnorrSignature):
            assert verify_schnorr_signature(w.keys[KEY].public, result, MESSAGE)
        else:
            assert result == w.keys[KEY].document_key
    assert "RequestKeyVersions" in seen and "DelegatedRequest" not in seen


def test_a_resolving_master_reports_its_phase() -> None:
    w = world(9, 10, holders=[0, 1, 2])
    node = w.net.nodes[w.ids[4]]
    connected = w.connected_of(w.ids[4]) | {w.ids[4]}
    sid, _ = node.core.start(RetrieveDocumentKey(KEY, signature(), True), connected)
    session = node.core.session(sid)
    assert isinstance(session, ResolvingMaster)
    assert session.phase.name == "NEGOTIATING"


def test_a_delegate_whose_origin_gives_up_ends_its_session_on_every_node() -> None:
    # the origin fails while its delegate's signing runs: the delegate ends, and so do the
    # other holders' sides of its signing at once (they would otherwise wait for the delegate
    # until their clocks ran out), naming the origin
    net = RogueNetwork(4, REGISTRY_MASTERS, REGISTRY_SLAVES, seed=3)
    dealt = deal_key(SeededRng(3), net.order[1:], 1, with_document_key=False)
    for node, share in dealt.shares.items():
        net.nodes[node].storage.insert(KEY, share)
    origin = net.order[0]
    sid = net.start(0, SignSchnorr(KEY, signature(), MESSAGE))
    while not any(isinstance(m, DelegatedRequest) for _, _, m in net.sent):
        net.run(max_steps=1)
    (delegate,) = {to for _, to, m in net.sent if isinstance(m, DelegatedRequest)}
    while not any(sender == delegate for sender, _, _ in net.sent):
        net.run(max_steps=1)
    net.inject(delegate, SessionError(sid, "gave up"))
    net.run()

    others = {node for node in net.order[1:] if node != delegate}
    notices = [(to, m) for s, to, m in net.sent if s == delegate and isinstance(m, SessionError)]
    assert {to for to, _ in notices} == others
    assert all(f"the origin {short(origin)} gave up" in m.reason for _, m in notices)


@pytest.mark.parametrize(
    "lie",
    [
        "another key",
        "no proofs",
        "a shadow point off its proof",
        "another decrypted secret",
        "two decrypt shadows swapped",
    ],
)
def test_the_origin_names_a_delegate_whose_answer_does_not_verify(lie: str) -> None:
    # the origin holds no share, but knows the server key (the holders' common data) and
    # which holders keep the version's commitments: it checks every participant's proof in
    # the relayed answer, and a plain answer's key against them, before it relays anything
    w = world(11, 12, holders=[0, 1, 2])
    shadow = lie in (
        "a shadow point off its proof",
        "another decrypted secret",
        "two decrypt shadows swapped",
    )
    liar: list[NodeId] = []

    def tamper(sender: NodeId, to: NodeId, message: object) -> object:
        if isinstance(message, DelegatedDocumentKey):
            liar.append(sender)
            if lie == "another key":
                return replace(message, document_key=message.document_key + G)
            return replace(message, proofs=None)
        if isinstance(message, DelegatedShadow) and message.proofs is not None:
            liar.append(sender)
            if lie == "another decrypted secret":
                return replace(message, decrypted_secret=message.decrypted_secret + G)
            if lie == "two decrypt shadows swapped":  # each proof binds its node's shadow
                first_shadow, second_shadow, *others = message.decrypt_shadows
                shadows = (second_shadow, first_shadow, *others)
                return replace(message, decrypt_shadows=shadows)
            first, *rest = message.proofs.participants
            moved = replace(first, shadow_point=first.shadow_point + G)
            return replace(message, proofs=replace(message.proofs, participants=(moved, *rest)))
        return message

    w.net.tamper = tamper
    outcome = ask(w, w.ids[4], RetrieveDocumentKey(KEY, signature(), shadow))
    assert isinstance(outcome, Fail) and isinstance(outcome.error, ProtocolViolation)
    assert outcome.error.node == short(liar[0]), outcome.error


#: a release kind -> its request and its audited operation
RELEASES: dict[str, tuple[Callable[[], object], Operation]] = {
    "plain": (lambda: RetrieveDocumentKey(KEY, signature(), False), Operation.RETRIEVAL),
    "shadow": (lambda: RetrieveDocumentKey(KEY, signature(), True), Operation.SHADOW_RETRIEVAL),
    "schnorr": (lambda: SignSchnorr(KEY, signature(), MESSAGE), Operation.SCHNORR),
    "ecdsa": (lambda: SignEcdsa(KEY, signature(), MESSAGE), Operation.ECDSA),
}


@pytest.mark.parametrize("kind", sorted(RELEASES))
def test_a_delegated_release_hands_the_requester_every_participants_receipt(kind: str) -> None:
    # the origin takes no part, yet the requester gets the receipts of those who did, as if
    # it had asked the delegate: they name the delegate as master and only holders
    w = world(13, 14, holders=[0, 1, 2], audit=True)
    newcomer = w.ids[4]
    request, operation = RELEASES[kind]
    outcome = ask(w, newcomer, request())
    assert isinstance(outcome, Finish), outcome
    receipts = check_receipts(
        outcome.receipts,
        operation=operation,
        key_id=KEY,
        requester=address_of(REQUESTER.public),
        message_hash=MESSAGE if kind in ("schnorr", "ecdsa") else None,
        nodes=w.ids,
        min_participants=3 if kind == "ecdsa" else 2,
        require=True,
    )
    assert receipts is not None
    holders = set(w.ids[:3])
    assert receipts.facts.master in holders and set(receipts.facts.participants) <= holders
    # and the delegate's own audit log has the release, the origin's has nothing of it
    assert any(
        r.facts.session_id == receipts.facts.session_id
        for r in w.net.nodes[receipts.facts.master].records
    )
    assert not w.net.nodes[newcomer].records


@pytest.mark.parametrize(
    "lie",
    [
        "a member's receipt forged",
        "a participant dropped",
        "an earlier release's",
        "bytes that do not decode",
    ],
)
def test_the_origin_names_a_delegate_whose_receipts_do_not_verify(lie: str) -> None:
    w = world(15, 16, holders=[0, 1, 2], audit=True)
    newcomer = w.ids[4]
    earlier: list[bytes] = []
    liar: list[NodeId] = []

    def tamper(sender: NodeId, to: NodeId, message: object) -> object:
        if not isinstance(message, DelegatedShadow) or message.receipts is None:
            return message
        if not earlier:  # the first release goes through as it is
            earlier.append(message.receipts)
            return message
        liar.append(sender)
        receipts = decode_receipts(message.receipts)
        facts, signatures = receipts.facts, receipts.signatures
        if lie == "an earlier release's":
            return replace(message, receipts=earlier[0])
        if lie == "bytes that do not decode":
            return replace(message, receipts=message.receipts[:-1])
        if lie == "a participant dropped":
            dropped = ReleaseReceipts(
                replace(facts, participants=facts.participants[1:]), signatures[1:]
            )
            return replace(message, receipts=encode_receipts(dropped))
        member = next(i for i, node in enumerate(facts.participants) if node != sender)
        forged = list(signatures)
        forged[member] = sign_recoverable(KeyPair.generate(SeededRng(b"forger")).secret, KEY)
        return replace(message, receipts=encode_receipts(ReleaseReceipts(facts, tuple(forged))))

    w.net.tamper = tamper
    first = ask(w, newcomer, RetrieveDocumentKey(KEY, signature(), True))
    assert isinstance(first, Finish) and first.receipts is not None
    assert encode_receipts(first.receipts) == earlier[0]
    outcome = ask(w, newcomer, RetrieveDocumentKey(KEY, signature(), True))
    assert isinstance(outcome, Fail) and isinstance(outcome.error, ProtocolViolation)
    assert outcome.error.node == short(liar[0]), outcome.error
    assert "relayed receipts that do not" in str(outcome.error)


@pytest.mark.parametrize("kind", ["schnorr", "shadow"])
def test_an_origin_that_delegates_one_request_to_two_holders_is_named_by_both(kind: str) -> None:
    # each holder runs the session as its master; one that sees the other open it too cannot
    # tell whether the origin delegated twice or the other holder lies, so it names both. A
    # signing needs all three holders, so both see it; a retrieval's first group is t+1 of
    # them, so a holder refused by the other may finish with a group of its own: its answer
    # to the origin is a proven one, as any delegate's
    net = RogueNetwork(4, REGISTRY_MASTERS, REGISTRY_SLAVES, seed=5)
    dealt = deal_key(SeededRng(5), net.order[1:], 1, with_document_key=kind == "shadow")
    for node, share in dealt.shares.items():
        net.nodes[node].storage.insert(KEY, share)
    origin = net.order[0]
    request = (
        SignSchnorr(KEY, signature(), MESSAGE)
        if kind == "schnorr"
        else RetrieveDocumentKey(KEY, signature(), True)
    )
    sid = net.start(0, request)
    while not any(isinstance(m, DelegatedRequest) for _, _, m in net.sent):
        net.run(max_steps=1)
    ((delegate, delegated),) = [(to, m) for _, to, m in net.sent if isinstance(m, DelegatedRequest)]
    other = next(node for node in net.order[1:] if node != delegate)
    net.inject(other, delegated)
    net.run()
    failed = []
    for holder in (delegate, other):
        outcome = net.nodes[holder].results.get(sid)
        if isinstance(outcome, Fail):
            assert short(origin) in str(outcome.error), outcome.error
            failed.append(holder)
        else:
            assert kind == "shadow", (short(holder), outcome)
            [answer] = [m for s, _, m in net.sent if s == holder and isinstance(m, DelegatedShadow)]
            assert answer.proofs is not None
    assert len(failed) == (2 if kind == "schnorr" else 1)
    assert net.open_sessions() == 0


def test_a_slow_first_group_is_left_through_the_resolving_master() -> None:
    """The master's session in the table is the ResolvingMaster: the Wake of its retrieval
    reaches the inner session, which asks the holders it had not asked."""
    w = world(3, 3, holders=[0, 1, 2, 3, 4])
    master = w.ids[0]
    sid = w._start(master, RetrieveDocumentKey(KEY, signature(), True))
    session = w.net.nodes[master].core.session(sid)
    assert isinstance(session, ResolvingMaster)
    asked = {p.to for p in w.net.pending}
    silent = sorted(asked)[0]
    w.net.pending = [p for p in w.net.pending if p.to != silent]
    w.net.access_checks = [c for c in w.net.access_checks if c[0] != silent]
    before = len(w.net.sent)
    assert w.net.nodes[master].wakes
    w.net.wake_all()
    newly = {to for sender, to, _ in w.net.sent[before:] if sender == master}
    assert newly and not newly & asked  # the holders not asked before


# --- a service contract's broadcast retrieval on a node without the key ----------------------

CONTRACT = Address(b"\xcc" * 20)
BLOCK = BlockRef(77, Hash256(b"\x77" * 32))


def pending(requester: bytes | None) -> Callable[[NodeId, OriginClaim], str | None]:
    """What every node reads from the contract: a shadow retrieval of KEY for `requester`."""

    def check(node: NodeId, claim: OriginClaim) -> str | None:
        origin = claim.origin
        if (origin.contract, origin.block, claim.key_id) != (CONTRACT, BLOCK, KEY):
            return "not pending there"
        return None if origin.requester == requester else "another request is pending there"

    return check


def personal() -> RetrieveDocumentKey:
    origin = ServiceOrigin(CONTRACT, BLOCK, REQUESTER.node_id)
    return RetrieveDocumentKey(KEY, b"", shadow=True, origin=origin)


@given(seed=seeds, schedule=seeds, t=st.integers(0, 2))
def test_a_range_owner_without_the_key_has_a_holder_serve_the_broadcast_retrieval(
    seed: int, schedule: int, t: int
) -> None:
    w = make_world(
        5, seed=seed, schedule=schedule, holders=[0, 1, 2, 3], threshold=t, keys=1, audit=True
    )
    w.net.origins = pending(REQUESTER.node_id)
    newcomer = w.ids[4]
    sid = w._start(newcomer, personal())
    w.net.run()
    assert w.sessions_left() == 0
    served = value(w.net.nodes[newcomer].results[sid])
    assert isinstance(served, ServedByMembers)
    members = served.participants
    assert len(members) == t + 1 and served.delegate in members
    assert set(members) <= set(w.ids[:4])
    assert w.net.nodes[newcomer].outcomes == []  # it holds nothing and publishes nothing
    assert any(node == served.delegate for node, _ in w.net.origin_checks)  # read it itself
    parts = {}
    for node in members:
        [outcome] = [o for o in w.net.nodes[node].outcomes if o.result is not None]
        assert isinstance(outcome.result, PersonalShare)
        assert outcome.result.participants == members
        parts[node] = outcome.result
        # every member logged its release to the requester the contract names, before it
        # answered; the delegate (the master) logged the whole release with the receipts
        [entry] = [r for r in w.net.nodes[node].records if r.session_id == sid]
        assert entry.facts.requester == REQUESTER.address
        assert entry.facts.participants == members
        assert (entry.receipts is not None) == (node == served.delegate)
    assert [r for r in w.net.nodes[newcomer].records if r.session_id == sid] == []
    secrets = {part.decrypted_secret for part in parts.values()}
    assert len(secrets) == 1
    # what the requester does with the t+1 events: the document key
    dealt = w.keys[KEY]
    common = make_common_shadow_point(t, dealt.shares[w.ids[0]].common_point)
    coefficients = [
        Scalar.from_bytes(ecies_decrypt(REQUESTER.secret, part.decrypt_shadow))
        for part in parts.values()
    ]
    recovered = decrypt_with_shadow_coefficients(secrets.pop(), common, coefficients)
    assert recovered == dealt.document_key


def test_a_delegate_that_cannot_find_the_request_serves_nothing() -> None:
    w = world(11, 12, holders=[0, 1, 2])
    w.net.origins = pending(KeyPair.generate(SeededRng(b"someone else")).node_id)
    outcome = ask(w, w.ids[4], personal())
    assert isinstance(outcome, Fail) and isinstance(outcome.error, ConsensusUnreachable)
    assert "cannot confirm the request on the contract" in str(outcome.error)
    assert all(node.outcomes == [] for node in w.net.nodes.values())


def test_a_delegated_service_retrieval_without_its_origin_is_refused() -> None:
    w = world(13, 14, holders=[0, 1, 2])
    w.net.origins = pending(REQUESTER.node_id)

    def strip(sender: NodeId, to: NodeId, message: object) -> object:
        if isinstance(message, DelegatedRequest):
            return replace(message, origin=None)
        return message

    w.net.tamper = strip
    outcome = ask(w, w.ids[4], personal())
    assert isinstance(outcome, Fail) and isinstance(outcome.error, ProtocolViolation)
    assert "without its origin" in str(outcome.error)
    assert all(node.outcomes == [] for node in w.net.nodes.values())


def test_a_delegate_that_misnames_the_members_is_caught() -> None:
    w = world(15, 16, holders=[0, 1, 2])
    w.net.origins = pending(REQUESTER.node_id)
    outsider = w.ids[3]

    def misname(sender: NodeId, to: NodeId, message: object) -> object:
        if isinstance(message, DelegatedPersonal):
            return replace(message, participants=tuple(sorted({outsider, *message.participants})))
        return message

    w.net.tamper = misname
    outcome = ask(w, w.ids[4], personal())
    assert isinstance(outcome, Fail) and isinstance(outcome.error, ProtocolViolation)
    assert "cannot be its group" in str(outcome.error)
