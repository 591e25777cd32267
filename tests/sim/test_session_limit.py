"""The per-peer session limit on a simulated network: a flooding peer hits it while the other
masters' sessions run; a refused node is re-planned around (retrieval, signing) or named
(generation)."""

from __future__ import annotations

from secretstore.crypto.keys import KeyPair, sign_recoverable
from secretstore.crypto.rng import SeededRng
from secretstore.crypto.schnorr import SchnorrSignature
from secretstore.errors import SessionLimitReached
from secretstore.sessions import decryption, generation, signing_schnorr
from secretstore.sessions.base import Fail, short
from secretstore.sessions.decryption import RetrieveDocumentKey
from secretstore.sessions.signing_schnorr import SignSchnorr
from secretstore.types import MessageHash, NodeId, ServerKeyId, SessionId
from secretstore.wire import codec
from secretstore.wire.common import ErrorKind, SessionError
from tests.sim.dealer import DealtKey, deal_key
from tests.sim.harness import Pending, SimNetwork
from tests.sim.key_sessions import proof_of

KEY_ID = ServerKeyId(b"\x5a" * 32)
MASTERS = {**generation.MASTERS, **decryption.MASTERS, **signing_schnorr.MASTERS}
SLAVES = {**generation.SLAVES, **decryption.SLAVES, **signing_schnorr.SLAVES}
REQUESTER = KeyPair.generate(SeededRng(77))
SIGNATURE = sign_recoverable(REQUESTER.secret, KEY_ID)


def network(n: int, t: int, limit: int) -> tuple[SimNetwork, DealtKey]:
    net = SimNetwork(n, MASTERS, SLAVES, seed=11, max_sessions_per_peer=limit)
    key = deal_key(SeededRng(12), net.order, t)
    for node in net.nodes.values():
        node.storage.insert(KEY_ID, key.shares[node.node_id])
    return net, key


def new_key(n: int) -> ServerKeyId:
    return ServerKeyId(n.to_bytes(32, "big"))


def deliver_from(net: SimNetwork, sender: NodeId) -> None:
    """Deliver everything `sender` has queued, and nothing else."""
    mine = [p for p in net.pending if p.sender == sender]
    net.pending = [p for p in net.pending if p.sender != sender]
    for item in mine:
        net._deliver(item)


def run_with_silent(net: SimNetwork, silent: NodeId) -> list[SessionError]:
    """Deliver until quiet while `silent` reads nothing; returns the SessionErrors it was sent."""
    dropped: list[SessionError] = []
    while True:
        for item in [p for p in net.pending if p.to == silent]:
            message = codec.decode(item.data)
            if isinstance(message, SessionError):
                dropped.append(message)
        net.pending = [p for p in net.pending if p.to != silent]
        if not (net.pending or net.access_checks):
            if not any(node.wakes for node in net.nodes.values()):
                return dropped
            net.wake_all()  # masters waiting on the silent node ask the others
            continue
        net.run(max_steps=1)


def limit_refusals(errors: list[SessionError]) -> list[SessionError]:
    return [e for e in errors if e.kind is ErrorKind.SESSION_LIMIT]


def test_a_flooding_peer_hits_the_limit_while_the_other_masters_run() -> None:
    net, key = network(4, 1, limit=3)
    rogue = net.order[3]
    # The rogue starts 20 generations and never answers anything: each honest node keeps 3
    # of them open and refuses the other 17.
    for n in range(20):
        net.start(3, generation.GenerateServerKey(new_key(n), proof_of(key_id=new_key(n)), 1))
    deliver_from(net, rogue)
    refused = run_with_silent(net, rogue)
    honest = [net.node(i) for i in range(3)]
    for node in honest:
        assert node.core.sessions_of(rogue) == 3
        assert len(node.core) == 3
    assert len(limit_refusals(refused)) == 3 * 17
    for error in limit_refusals(refused):
        assert f"sessions of node {short(rogue)}" in error.reason and "limit is 3" in error.reason
    # Each honest node noticed the burst once.
    for node in honest:
        assert sum("refusing new sessions" in text for text in node.notices) == 1
    # Meanwhile every honest master retrieves and signs, several sessions at once.
    retrievals = [
        (i, net.start(i, RetrieveDocumentKey(KEY_ID, SIGNATURE, shadow=False)))
        for i in (0, 1, 2, 0, 1, 2)
    ]
    message = MessageHash(b"\x01" * 32)
    signings = [(i, net.start(i, SignSchnorr(KEY_ID, SIGNATURE, message))) for i in (0, 1, 2)]
    run_with_silent(net, rogue)
    for index, sid in retrievals:
        assert net.value(index, sid) == key.document_key
    for index, sid in signings:
        assert isinstance(net.value(index, sid), SchnorrSignature)
    # The rogue's sessions are still held at the limit, no more.
    for node in honest:
        assert node.core.sessions_of(rogue) == 3


def fill_slot(net: SimNetwork, master: int, victim: int) -> tuple[SessionId, list[Pending]]:
    """Start a signing at `master` (it asks every holder) whose request reaches only `victim`
    for now: it holds the master's one slot there. Its requests to the other nodes are
    returned, held back."""
    sid = net.start(master, SignSchnorr(KEY_ID, SIGNATURE, MessageHash(b"\x09" * 32)))
    victim_id = net.order[victim]
    held = [p for p in net.pending if p.to != victim_id]
    to_victim = [p for p in net.pending if p.to == victim_id]
    net.pending = []
    for item in to_victim:
        net._deliver(item)
    assert net.node(victim).core.sessions_of(net.order[master]) == 1
    return sid, held


def run_apart_from(net: SimNetwork, node: NodeId) -> None:
    """Deliver (and answer access checks) until quiet, leaving whatever `node` sends,
    receives or checks where it is."""
    while True:
        mine = [p for p in net.pending if node in (p.sender, p.to)]
        checks = [c for c in net.access_checks if c[0] == node]
        net.pending = [p for p in net.pending if node not in (p.sender, p.to)]
        net.access_checks = [c for c in net.access_checks if c[0] != node]
        if not (net.pending or net.access_checks):
            net.pending, net.access_checks = mine, checks
            return
        net.run(max_steps=1)
        net.pending += mine
        net.access_checks += checks


def refusals_by(net: SimNetwork, node: int) -> list[SessionError]:
    found = []
    sender = net.order[node]
    for item in net.pending:
        if item.sender == sender:
            message = codec.decode(item.data)
            if isinstance(message, SessionError) and message.kind is ErrorKind.SESSION_LIMIT:
                found.append(message)
    return found


def test_retrieval_replans_around_a_node_that_refuses() -> None:
    net, key = network(3, 1, limit=1)
    first, held = fill_slot(net, 0, 2)
    victim = net.order[2]
    checks, net.access_checks = net.access_checks, []  # node 2 keeps the signing open
    for _ in range(20):  # until the master picks node 2 for a retrieval's first group
        second = net.start(0, RetrieveDocumentKey(KEY_ID, SIGNATURE, shadow=False))
        if any(p.to == victim for p in net.pending):
            break
        run_apart_from(net, victim)  # node 1 serves it at once; node 2 still holds the slot
        assert net.value(0, second) == key.document_key
    deliver_from(net, net.order[0])
    assert len(refusals_by(net, 2)) == 1
    net.run()  # the master asks node 1 for the retrieval instead, which serves it
    assert net.value(0, second) == key.document_key
    net.pending += held  # the signing's request now reaches node 1
    net.access_checks += checks
    net.run()
    assert net.value(0, first) is not None
    assert all(len(node.core) == 0 for node in net.nodes.values())


def test_signing_replans_around_a_node_that_refuses() -> None:
    net, _key = network(3, 1, limit=1)
    first, held = fill_slot(net, 0, 1)
    sid = net.start(0, SignSchnorr(KEY_ID, SIGNATURE, MessageHash(b"\x02" * 32)))
    deliver_from(net, net.order[0])
    assert len(refusals_by(net, 1)) == 1
    net.pending += held
    net.run()
    assert net.value(0, first) is not None
    assert isinstance(net.value(0, sid), SchnorrSignature)


def test_generation_fails_naming_the_node_that_refuses() -> None:
    net, _key = network(3, 1, limit=1)
    first, held = fill_slot(net, 0, 1)
    sid = net.start(0, generation.GenerateServerKey(new_key(1), proof_of(key_id=new_key(1)), 1))
    net.pending += held
    net.run()
    assert net.value(0, first) is not None
    outcome = net.result(0, sid)
    assert isinstance(outcome, Fail)
    assert isinstance(outcome.error, SessionLimitReached)
    assert f"node {short(net.order[1])}" in str(outcome.error)
    assert "the limit is 1" in str(outcome.error)
    # nothing was stored anywhere, and no session is left
    assert all(node.storage.get(new_key(1)) is None for node in net.nodes.values())
    assert all(len(node.core) == 0 for node in net.nodes.values())
