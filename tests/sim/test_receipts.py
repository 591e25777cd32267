"""Audit records and release receipts on a simulated network of auditing nodes.

Every node that takes part in a release records it (once per job it answers), before the
message that releases its part; the master collects every participant's signed receipt and
the requester's check accepts them. A participant whose receipt is missing or forged is named
by the master; a master that forges or drops a receipt is caught by the requester's check.
Nothing secret is in a record."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from secretstore.audit.model import AuditFacts, Operation, encode_facts
from secretstore.audit.receipts import NodeSigner, ReleaseReceipts, receipt_holds
from secretstore.client.receipts import check_receipts
from secretstore.crypto.curve import Point
from secretstore.crypto.document import encrypt_secret
from secretstore.crypto.ecies import ecies_decrypt
from secretstore.crypto.keys import KeyPair, sign_recoverable
from secretstore.crypto.rng import SeededRng
from secretstore.crypto.schnorr import SchnorrSignature
from secretstore.errors import ProtocolViolation, ReceiptVerificationError
from secretstore.sessions import decryption, registry, signing_ecdsa, signing_schnorr
from secretstore.sessions.admin.node_set_change import ChangeNodeSet
from secretstore.sessions.base import Record, Send
from secretstore.sessions.decryption import RetrieveDocumentKey, ShadowResult
from secretstore.sessions.encryption import StoreDocumentKey
from secretstore.sessions.generation import GenerateServerKey
from secretstore.sessions.signing_ecdsa import SignEcdsa
from secretstore.sessions.signing_schnorr import SignSchnorr
from secretstore.types import BlockRef, Hash256, MessageHash, NodeId, ServerKeyId, SessionId
from secretstore.wire.decryption import DecryptionJobResponse
from secretstore.wire.signing import EcdsaSignatureShare, SchnorrSignatureShare
from tests.sim.admin_world import ADMIN, make_world, sign_set
from tests.sim.dealer import DealtKey, deal_key
from tests.sim.harness import RandomScheduler, SimNetwork, SimNode
from tests.sim.key_sessions import AUTHOR, AUTHOR_KEY, proof_of

KEY_ID = ServerKeyId(b"\x42" * 32)
MESSAGE = MessageHash(b"\x24" * 32)
REQUESTER = KeyPair.generate(SeededRng(b"receipt requester"))
MASTERS = {**decryption.MASTERS, **signing_schnorr.MASTERS, **signing_ecdsa.MASTERS}
SLAVES = {**decryption.SLAVES, **signing_schnorr.SLAVES, **signing_ecdsa.SLAVES}
#: a release kind -> (its request, its operation)
KINDS: dict[str, tuple[Callable[[bytes], object], Operation]] = {
    "retrieval": (lambda s: RetrieveDocumentKey(KEY_ID, s, shadow=False), Operation.RETRIEVAL),
    "shadow": (lambda s: RetrieveDocumentKey(KEY_ID, s, shadow=True), Operation.SHADOW_RETRIEVAL),
    "schnorr": (lambda s: SignSchnorr(KEY_ID, s, MESSAGE), Operation.SCHNORR),
    "ecdsa": (lambda s: SignEcdsa(KEY_ID, s, MESSAGE), Operation.ECDSA),
}
SIGNATURE = sign_recoverable(REQUESTER.secret, KEY_ID)


class Network(SimNetwork):
    """SimNetwork that checks, for every batch of effects, that a node's Record comes before
    the message that releases its part; `tamper` may alter outgoing messages (a bad node)."""

    tamper: Callable[[NodeId, object], object] | None = None
    released_before_recorded: list[NodeId]

    def _apply(self, node: SimNode, effects: Any) -> None:
        if not hasattr(self, "released_before_recorded"):
            self.released_before_recorded = []
        recorded = False
        out = []
        for effect in effects:
            if isinstance(effect, Record):
                recorded = True
            if isinstance(effect, Send):
                kinds = (DecryptionJobResponse, SchnorrSignatureShare, EcdsaSignatureShare)
                if isinstance(effect.message, kinds) and not recorded:
                    self.released_before_recorded.append(node.node_id)
                if self.tamper is not None:
                    out.append(Send(effect.to, self.tamper(node.node_id, effect.message)))
                    continue
            out.append(effect)
        super()._apply(node, out)


def network(n: int, t: int, seed: int, schedule: int = 0) -> tuple[Network, DealtKey]:
    net = Network(n, MASTERS, SLAVES, seed=seed, scheduler=RandomScheduler(schedule), audit=True)
    key = deal_key(SeededRng(seed + 7), net.order, t)
    for node_id, share in key.shares.items():
        net.nodes[node_id].storage.insert(KEY_ID, share)
    return net, key


def master_receipts(net: SimNetwork, index: int, sid: SessionId) -> ReleaseReceipts:
    records = [r for r in net.node(index).records if r.session_id == sid]
    assert len(records) == 1
    receipts = records[0].receipts
    assert receipts is not None
    return receipts


def participants_of(receipts: ReleaseReceipts) -> tuple[NodeId, ...]:
    return receipts.facts.participants


SHAPES = [(3, 1), (4, 1), (5, 2)]


@settings(max_examples=30, deadline=None)
@given(
    kind=st.sampled_from(sorted(KINDS)),
    shape=st.sampled_from(SHAPES),
    seed=st.integers(0, 2**16),
    schedule=st.integers(0, 2**32),
    master=st.integers(0, 4),
)
def test_every_participant_records_the_release_and_the_requester_checks_the_receipts(
    kind: str, shape: tuple[int, int], seed: int, schedule: int, master: int
) -> None:
    n, t = shape
    master %= n
    net, key = network(n, t, seed, schedule)
    make, operation = KINDS[kind]
    sid = net.start(master, make(SIGNATURE))
    net.run()
    value = net.value(master, sid)
    receipts = master_receipts(net, master, sid)
    facts = receipts.facts
    group = participants_of(receipts)
    needed = 2 * t + 1 if kind == "ecdsa" else t + 1
    assert len(group) == needed and net.order[master] in group
    assert facts.operation is operation and facts.key_id == KEY_ID
    assert facts.session_id == sid and facts.master == net.order[master]
    assert facts.requester == REQUESTER.address
    assert facts.key_version == key.shares[net.order[master]].last_version().hash
    assert facts.message_hash == (MESSAGE if kind in ("schnorr", "ecdsa") else None)
    # every member of the group recorded exactly these facts, every other node nothing
    for node_id, node in net.nodes.items():
        mine = [r for r in node.records if r.session_id == sid]
        if node_id in group:
            assert [r.facts for r in mine] == [facts]
            assert receipt_holds(node_id, facts, mine[0].receipt)
            assert receipts.receipt_of(node_id) == mine[0].receipt
        else:
            assert mine == []
    assert net.released_before_recorded == []
    nodes = list(net.order)
    extra: dict[str, Any] = {}
    if kind == "shadow":
        assert isinstance(value, ShadowResult) and value.proofs is not None
        extra = {
            "participants": [p.node for p in value.proofs.participants],
            "min_participants": len(value.decrypt_shadows),
            "session_id": value.proofs.session_id,
        }
    checked = check_receipts(
        receipts,
        operation=operation,
        key_id=KEY_ID,
        requester=REQUESTER.address,
        message_hash=MESSAGE if kind in ("schnorr", "ecdsa") else None,
        nodes=nodes,
        require=True,
        **extra,
    )
    assert checked == receipts


def _client_check(receipts: ReleaseReceipts, nodes: list[NodeId]) -> None:
    check_receipts(
        receipts,
        operation=Operation.SCHNORR,
        key_id=KEY_ID,
        requester=REQUESTER.address,
        message_hash=MESSAGE,
        nodes=nodes,
        require=True,
    )


def test_a_master_that_forges_a_receipt_is_caught_by_the_requester() -> None:
    net, _ = network(4, 1, seed=3)
    sid = net.start(0, SignSchnorr(KEY_ID, SIGNATURE, MESSAGE))
    net.run()
    receipts = master_receipts(net, 0, sid)
    other = next(node for node in participants_of(receipts) if node != net.order[0])
    signatures = list(receipts.signatures)
    index = participants_of(receipts).index(other)
    signatures[index] = NodeSigner(net.node(0).key).receipt(receipts.facts)  # its own key
    with pytest.raises(ReceiptVerificationError, match=other.hex()):
        _client_check(replace(receipts, signatures=tuple(signatures)), list(net.order))


def test_a_master_that_drops_a_receipt_is_caught_by_the_requester() -> None:
    net, _ = network(5, 2, seed=4)
    sid = net.start(1, SignSchnorr(KEY_ID, SIGNATURE, MESSAGE))
    net.run()
    receipts = master_receipts(net, 1, sid)
    facts = receipts.facts
    dropped = next(node for node in facts.participants if node != net.order[1])
    keep = [i for i, node in enumerate(facts.participants) if node != dropped]
    fewer = ReleaseReceipts(
        replace(facts, participants=tuple(facts.participants[i] for i in keep)),
        tuple(receipts.signatures[i] for i in keep),
    )
    with pytest.raises(ReceiptVerificationError, match="not its signature"):
        _client_check(fewer, list(net.order))
    with pytest.raises(ReceiptVerificationError, match="no receipts"):
        check_receipts(
            None,
            operation=Operation.SCHNORR,
            key_id=KEY_ID,
            requester=REQUESTER.address,
            message_hash=MESSAGE,
            require=True,
        )


def test_a_master_that_drops_a_shadow_participant_s_receipt_is_named() -> None:
    net, _ = network(4, 2, seed=5)
    sid = net.start(0, RetrieveDocumentKey(KEY_ID, SIGNATURE, shadow=True))
    net.run()
    value = net.value(0, sid)
    assert isinstance(value, ShadowResult) and value.proofs is not None
    receipts = master_receipts(net, 0, sid)
    facts = receipts.facts
    dropped = facts.participants[-1]
    fewer = ReleaseReceipts(
        replace(facts, participants=facts.participants[:-1]), receipts.signatures[:-1]
    )
    with pytest.raises(ReceiptVerificationError, match=f"{dropped.hex()}: took part"):
        check_receipts(
            fewer,
            operation=Operation.SHADOW_RETRIEVAL,
            key_id=KEY_ID,
            requester=REQUESTER.address,
            participants=[p.node for p in value.proofs.participants],
            min_participants=len(value.decrypt_shadows),
        )


def _forge_receipt(bad: NodeId) -> Callable[[NodeId, object], object]:
    def tamper(sender: NodeId, message: object) -> object:
        kinds = (DecryptionJobResponse, SchnorrSignatureShare, EcdsaSignatureShare)
        if sender == bad and isinstance(message, kinds):
            return replace(message, receipt=b"\x01" * 64 + b"\x00")
        return message

    return tamper


def _drop_receipt(bad: NodeId) -> Callable[[NodeId, object], object]:
    def tamper(sender: NodeId, message: object) -> object:
        kinds = (DecryptionJobResponse, SchnorrSignatureShare, EcdsaSignatureShare)
        if sender == bad and isinstance(message, kinds):
            return replace(message, receipt=None)
        return message

    return tamper


@pytest.mark.parametrize("tamper", [_forge_receipt, _drop_receipt])
def test_a_member_whose_receipt_is_bad_is_replaced_in_a_retrieval(
    tamper: Callable[[NodeId], Callable[[NodeId, object], object]],
) -> None:
    net, key = network(4, 1, seed=6)
    bad = net.order[1]
    net.tamper = tamper(bad)
    sid = net.start(0, RetrieveDocumentKey(KEY_ID, SIGNATURE, shadow=False))
    net.run()
    assert net.value(0, sid) == key.document_key
    receipts = master_receipts(net, 0, sid)
    assert bad not in receipts.facts.participants
    master = net.nodes[net.order[0]].core
    assert master.session(sid) is None


@pytest.mark.parametrize("tamper", [_forge_receipt, _drop_receipt])
@pytest.mark.parametrize("kind", ["schnorr", "ecdsa"])
def test_a_signer_whose_receipt_is_bad_is_named(
    kind: str, tamper: Callable[[NodeId], Callable[[NodeId, object], object]]
) -> None:
    net, _ = network(2 if kind == "schnorr" else 3, 1, seed=8)  # every node signs
    bad = net.order[-1]
    net.tamper = tamper(bad)
    make, _ = KINDS[kind]
    sid = net.start(0, make(SIGNATURE))
    net.run()
    with pytest.raises(ProtocolViolation, match=f"node {bad[:4].hex()}: sent "):
        net.value(0, sid)
    assert [r for r in net.node(0).records if r.session_id == sid] == []


def test_generation_and_store_are_recorded_by_every_node() -> None:
    net = SimNetwork(4, registry.MASTERS, registry.SLAVES, seed=9, audit=True)
    gen = net.start(1, GenerateServerKey(KEY_ID, proof_of(key_id=KEY_ID), 2))
    net.run()
    public = net.value(1, gen)
    assert isinstance(public, Point)
    document_key = KeyPair.generate(SeededRng(b"m")).public
    encrypted = encrypt_secret(document_key, public, SeededRng(b"e"))
    store = net.start(
        2,
        StoreDocumentKey(
            KEY_ID, proof_of(key_id=KEY_ID), encrypted.common_point, encrypted.encrypted_point
        ),
    )
    net.run()
    assert net.value(2, store) is None
    everyone = tuple(sorted(net.order))
    for node_id, node in net.nodes.items():
        operations = [(r.facts.operation, r.facts.session_id) for r in node.records]
        assert operations == [(Operation.GENERATION, gen), (Operation.STORE, store)]
        for r in node.records:
            assert r.facts.requester == AUTHOR and r.facts.participants == everyone
            assert r.facts.key_id == KEY_ID and r.receipts is None
            assert receipt_holds(node_id, r.facts, r.receipt)
        assert node.records[0].facts.master == net.order[1]
        assert node.records[1].facts.master == net.order[2]
    assert AUTHOR_KEY.address == AUTHOR


def _secrets_of(net: SimNetwork, key: DealtKey, values: list[object]) -> list[bytes]:
    """Every secret a release handles: the key, every share, the document key, what the
    requester got (decrypt shadows and their plaintext, signatures)."""
    secrets = [key.secret.to_bytes()]
    secrets += [share.last_version().secret_share.to_bytes() for share in key.shares.values()]
    assert key.document_key is not None
    secrets.append(key.document_key.to_bytes())
    for value in values:
        if isinstance(value, ShadowResult):
            secrets += list(value.decrypt_shadows)
            secrets += [ecies_decrypt(REQUESTER.secret, c) for c in value.decrypt_shadows]
            secrets.append(value.decrypted_secret.to_bytes())
        elif isinstance(value, SchnorrSignature):
            secrets += [value.to_bytes()[:32], value.to_bytes()[32:]]
        elif isinstance(value, bytes):
            secrets += [value[:32], value[32:64]]
    return secrets


def test_no_record_holds_a_secret() -> None:
    net, key = network(3, 1, seed=10)
    values = []
    for kind in sorted(KINDS):
        make, _ = KINDS[kind]
        sid = net.start(0, make(SIGNATURE))
        net.run()
        values.append(net.value(0, sid))
    recorded: list[AuditFacts] = []
    stored = b""
    for node in net.nodes.values():
        for r in node.records:
            recorded.append(r.facts)
            stored += encode_facts(r.facts) + r.receipt
    assert len(recorded) == 3 * 2 + 3 * 1  # retrievals and Schnorr: t+1; ECDSA: 2t+1
    for secret in _secrets_of(net, key, values):
        assert len(secret) >= 32 and secret not in stored


@pytest.mark.parametrize("kind", ["shadow", "schnorr", "ecdsa"])
def test_every_record_names_the_pinned_block(kind: str) -> None:
    net, _ = network(3, 1, seed=11)
    block = BlockRef(1234, Hash256(b"\x77" * 32))
    requests = {
        "shadow": RetrieveDocumentKey(KEY_ID, SIGNATURE, shadow=True, block=block),
        "schnorr": SignSchnorr(KEY_ID, SIGNATURE, MESSAGE, block=block),
        "ecdsa": SignEcdsa(KEY_ID, SIGNATURE, MESSAGE, block=block),
    }
    sid = net.start(0, requests[kind])
    net.run()
    net.value(0, sid)
    records = [r for node in net.nodes.values() for r in node.records if r.session_id == sid]
    assert records and all(r.facts.block == block for r in records)
    assert master_receipts(net, 0, sid).facts.block == block


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 2**16), schedule=st.integers(0, 2**32))
def test_a_node_set_change_is_recorded_per_key_and_a_leaving_node_records_its_erasures(
    seed: int, schedule: int
) -> None:
    world = make_world(4, seed=seed, schedule=schedule, holders=[0, 1, 2], threshold=1, audit=True)
    ids = world.ids
    new_set = [ids[0], ids[1], ids[3]]  # node 2 leaves, node 3 joins
    master = ids[0]
    node = world.net.nodes[master]
    request = ChangeNodeSet(frozenset(new_set), sign_set(ids), sign_set(new_set))
    sid, effects = node.core.start(request, frozenset(ids))
    world.net._apply(node, effects)
    world.net.run()
    assert world.net.value(0, sid) is None
    for node_id in ids:
        records = [r for r in world.net.nodes[node_id].records if r.session_id == sid]
        moved = [r.facts for r in records if r.facts.operation is Operation.NODE_SET_CHANGE]
        erased = [r.facts for r in records if r.facts.operation is Operation.DELETE]
        assert all(r.facts.requester == ADMIN.address for r in records)
        assert all(r.facts.master == master for r in records)
        assert all(receipt_holds(node_id, r.facts, r.receipt) for r in records)
        if node_id in new_set:  # every key moved to it: one entry per key
            assert sorted(f.key_id for f in moved) == sorted(world.keys)
            assert all(set(new_set) <= set(f.participants) for f in moved)
        if node_id == ids[2]:  # left: every key it held erased, after what it dealt
            assert sorted(f.key_id for f in erased) == sorted(world.keys)
            assert all(f.participants == (node_id,) for f in erased)
            assert records[-len(erased) :] == [r for r in records if r.facts in erased]
        else:
            assert erased == []
