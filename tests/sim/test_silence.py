"""Silence is named: a node that sends nothing a session waits for, also when it is silent
only towards another slave, ends that session with an error that names it (simulated
network; sessions time out as the driver's clocks run: every slave's before its master's)."""

from __future__ import annotations

import pytest

from secretstore.crypto.keys import sign_recoverable
from secretstore.crypto.rng import SeededRng
from secretstore.errors import ConsensusUnreachable, SecretStoreError, SessionTimeout
from secretstore.sessions.base import Fail, short
from secretstore.sessions.decryption import RetrieveDocumentKey
from secretstore.sessions.generation import GenerateServerKey
from secretstore.sessions.registry import MASTERS as ALL_MASTERS
from secretstore.sessions.registry import SLAVES as ALL_SLAVES
from secretstore.sessions.signing_ecdsa import SignEcdsa
from secretstore.types import MessageHash, NodeId, SessionId
from secretstore.wire.common import SessionError
from secretstore.wire.decryption import (
    DecryptionJobResponse,
    DecryptionRequest,
)
from secretstore.wire.generation import ConfirmGenerationInitialization, GenerationDkg
from secretstore.wire.negotiation import KeyVersions
from secretstore.wire.signing import SigningNonceMessage, SigningNonceRequest
from tests.sim.dealer import DealtKey, deal_key
from tests.sim.key_sessions import (
    AUTHOR,
    AUTHOR_KEY,
    KEY,
    MASTERS,
    SLAVES,
    proof_of,
    stored_shares,
)
from tests.sim.rogue import RogueNetwork, Tamper
from tests.sim.test_signing import KEY_ID, requester_signature
from tests.sim.test_signing import MASTERS as SIGN_MASTERS
from tests.sim.test_signing import SLAVES as SIGN_SLAVES


def dropping(rogue: NodeId, kind: type, to: NodeId | None = None) -> Tamper:
    """Drops every `kind` message the rogue sends (to `to`, or to anyone)."""

    def tamper(sender: NodeId, receiver: NodeId, message: object) -> object | None:
        if sender == rogue and isinstance(message, kind) and to in (None, receiver):
            return None
        return message

    return tamper


def master_error(net: RogueNetwork, sid: SessionId) -> SecretStoreError:
    outcome = net.result(0, sid)
    assert isinstance(outcome, Fail), outcome
    return outcome.error


def generation_network(rogue: int) -> RogueNetwork:
    net = RogueNetwork(3, MASTERS, SLAVES, seed=4)
    net.rogue_index = rogue
    return net


def test_a_slave_silent_towards_another_slave_is_named_by_the_master() -> None:
    # node 2 deals its DKG keys to the master but not to node 1: node 1 waits for node 2,
    # the master for node 1's share proof; node 1's clock runs out first and names node 2
    net = generation_network(2)
    net.tamper = dropping(net.rogue.node_id, GenerationDkg, to=net.order[1])
    sid = net.start(0, GenerateServerKey(KEY, proof_of(), 1))
    net.run()
    assert net.result(0, sid) is None
    net.expire()
    error = master_error(net, sid)
    assert isinstance(error, SessionTimeout) and error.node == short(net.order[1])
    report = f"node {short(net.order[1])} timed out first: node {short(net.order[2])}: did not"
    assert report in str(error)
    assert not stored_shares(net) and net.open_sessions() == 0


def test_a_chain_of_waiting_slaves_is_followed_to_the_silent_node() -> None:
    # 4 nodes, t = 2: node 3 deals to everyone but node 2. Node 2 waits for node 3; node 1,
    # node 3 and the master wait for node 2's share proof. Node 1's report (naming node 2)
    # may reach the master first: the master keeps reports until node 2's own (naming node
    # 3) is in too, as it waits for node 2.
    net = RogueNetwork(4, MASTERS, SLAVES, seed=4)
    net.rogue_index = 3
    net.tamper = dropping(net.rogue.node_id, GenerationDkg, to=net.order[2])
    sid = net.start(0, GenerateServerKey(KEY, proof_of(), 2))
    net.run()
    net.expire()
    error = master_error(net, sid)
    assert isinstance(error, SessionTimeout) and error.node == short(net.order[2])
    assert f"node {short(net.order[2])} timed out first: node {short(net.order[3])}" in str(error)
    assert net.open_sessions() == 0


def test_a_slave_that_times_out_waiting_for_the_master_does_not_hide_the_silent_node() -> None:
    # node 2 never confirms; node 1 waits for the master's start and times out first, naming
    # the master: the master keeps that report and names the node it waits for itself
    net = generation_network(2)
    net.tamper = dropping(net.rogue.node_id, ConfirmGenerationInitialization)
    sid = net.start(0, GenerateServerKey(KEY, proof_of(), 1))
    net.run()
    net.expire()
    error = master_error(net, sid)
    assert isinstance(error, SessionTimeout) and error.node == short(net.order[2])
    assert f"node {short(net.order[1])} timed out first: node {short(net.order[0])}" in str(error)
    assert net.open_sessions() == 0


@pytest.mark.parametrize("registry", ["signing", "key server"])
def test_a_member_silent_towards_another_member_is_named_in_the_consensus_error(
    registry: str,
) -> None:
    # ECDSA among 3 of 4 holders: the rogue member sends its nonce messages to the master
    # only. The master's own generations wait for the other member (which waits for the
    # rogue); every slave's clock runs out before the master's, and the master's error lists
    # each loss with its reason: the other member's report names the rogue, also when the
    # signing runs inside the key server's master that may delegate
    masters, slaves = (
        (SIGN_MASTERS, SIGN_SLAVES) if registry == "signing" else (ALL_MASTERS, ALL_SLAVES)
    )
    net = RogueNetwork(4, masters, slaves, seed=2)
    key = deal_key(SeededRng(2), net.order, 1, with_document_key=False)
    for node, share in key.shares.items():
        net.nodes[node].storage.insert(KEY_ID, share)
    _, signature = requester_signature()
    request = SignEcdsa(KEY_ID, signature, MessageHash(b"\x31" * 32))
    probe = RogueNetwork(4, masters, slaves, seed=2)
    for node, share in key.shares.items():
        probe.nodes[node].storage.insert(KEY_ID, share)
    probe.start(0, request)
    probe.run()
    (group,) = [m.nodes for _, _, m in probe.sent if isinstance(m, SigningNonceRequest)][:1]
    rogue, other = (node for node in group if node != net.order[0])
    net.rogue_index = net.order.index(rogue)
    net.tamper = dropping(rogue, SigningNonceMessage, to=other)
    sid = net.start(0, request)
    net.run()
    net.expire()
    error = master_error(net, sid)
    assert isinstance(error, ConsensusUnreachable)
    assert f"node {short(other)} timed out first: node {short(rogue)}" in str(error)
    assert net.open_sessions() == 0


# --- decryption and signing that negotiate the key version ---------------------------------


def holders_network(n: int, t: int, holders: range, rogue: int) -> tuple[RogueNetwork, DealtKey]:
    """Every session on n nodes; the key (with a document key) dealt to `holders`."""
    net = RogueNetwork(n, ALL_MASTERS, ALL_SLAVES, seed=6)
    net.rogue_index = rogue
    key = deal_key(SeededRng(6), [net.order[i] for i in holders], t, author=AUTHOR)
    for node, share in key.shares.items():
        net.nodes[node].storage.insert(KEY, share)
    return net, key


def retrieval() -> RetrieveDocumentKey:
    return RetrieveDocumentKey(KEY, sign_recoverable(AUTHOR_KEY.secret, KEY), True)


def test_a_job_member_silent_with_its_answer_is_named_when_no_other_version_can_serve() -> None:
    # 3 nodes, t = 1, the key on two of them: the master's group is itself and the other
    # holder, which never answers its job (no holder is left to ask instead); the master asks
    # every node for its versions, finds only the one that failed, and its error still names
    # the member that was silent
    probe, _ = holders_network(3, 1, range(2), rogue=0)
    probe.start(0, retrieval())
    probe.run()
    (member,) = {  # the job comes with the access request to the first group
        to for _, to, m in probe.sent if isinstance(m, DecryptionRequest) and m.job is not None
    }
    net, _ = holders_network(3, 1, range(2), rogue=probe.order.index(member))
    net.tamper = dropping(member, DecryptionJobResponse)
    sid = net.start(0, retrieval())
    net.run()
    net.expire()
    error = master_error(net, sid)
    assert isinstance(error, ConsensusUnreachable) and f"node {short(member)}" in str(error)
    assert "no other version" in str(error)
    assert net.open_sessions() == 0


def test_a_holder_silent_in_the_version_negotiation_is_named() -> None:
    # the master holds no share: it asks every node for its versions, and one holder
    # never answers
    net, _ = holders_network(4, 1, range(1, 4), rogue=3)
    net.tamper = dropping(net.rogue.node_id, KeyVersions)
    sid = net.start(0, retrieval())
    net.run()
    net.expire()
    error = master_error(net, sid)
    assert isinstance(error, SessionTimeout) and error.node == short(net.rogue.node_id)
    assert net.open_sessions() == 0


def test_a_holder_that_fails_the_version_negotiation_is_named_when_too_few_are_left() -> None:
    # t = 2 on 3 holders of 4 nodes, the master without a share: a holder that answers with
    # an error leaves 2 holders, too few, and the error says which node failed and how
    net, _ = holders_network(4, 2, range(1, 4), rogue=3)

    def fail(sender: NodeId, to: NodeId, message: object) -> object | None:
        if isinstance(message, KeyVersions):
            return SessionError(message.session_id, "disk on fire")
        return message

    net.tamper = fail
    sid = net.start(0, retrieval())
    net.run()
    error = master_error(net, sid)
    assert isinstance(error, ConsensusUnreachable)
    assert f"node {short(net.rogue.node_id)} failed: disk on fire" in str(error)
    assert net.open_sessions() == 0
