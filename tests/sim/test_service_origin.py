"""Sessions a service contract asked for, on a simulated network: every node reads the request
from the contract itself before it takes part, every participant learns its own outcome, and a
broadcast shadow retrieval gives every member the same checked result."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from secretstore.crypto.curve import Point, Scalar
from secretstore.crypto.document import decrypt_with_shadow_coefficients
from secretstore.crypto.ecies import ecies_decrypt
from secretstore.crypto.keys import KeyPair, sign_recoverable
from secretstore.crypto.rng import SeededRng
from secretstore.crypto.shadow import make_common_shadow_point
from secretstore.errors import ConsensusUnreachable, InvalidRequest, ProtocolViolation
from secretstore.sessions.base import Fail, Finish, Send, short
from secretstore.sessions.broadcast import PersonalShare
from secretstore.sessions.decryption import RetrieveDocumentKey
from secretstore.sessions.generation import GenerateServerKey
from secretstore.sessions.origin import OriginClaim, OriginKind
from secretstore.sessions.registry import MASTERS, SLAVES
from secretstore.types import Address, BlockRef, Hash256, NodeId, ServerKeyId
from secretstore.wire.decryption import DecryptionJobResults, DecryptionRequest
from secretstore.wire.generation import InitializeGeneration
from secretstore.wire.requester import ServiceOrigin
from tests.sim.dealer import deal_key
from tests.sim.harness import RandomScheduler, SimNetwork

KEY_ID = ServerKeyId(b"\x42" * 32)
CONTRACT = Address(b"\xcc" * 20)
BLOCK = BlockRef(77, Hash256(b"\x77" * 32))
AUTHOR = Address(b"\xaa" * 20)
REQUESTER = KeyPair.generate(SeededRng(b"service requester"))


@dataclass
class Contract:
    """What the nodes read from the contract: the pending requests at BLOCK."""

    generations: dict[ServerKeyId, tuple[Address, int]]
    retrievals: dict[ServerKeyId, bytes]
    #: nodes that cannot see the request (their chain lags, or they are lied to)
    blind: frozenset[NodeId] = frozenset()

    def check(self, node: NodeId, claim: OriginClaim) -> str | None:
        origin = claim.origin
        if node in self.blind or origin.contract != CONTRACT or origin.block != BLOCK:
            return "not pending there"
        if claim.kind is OriginKind.SERVER_KEY_GENERATION:
            wanted = self.generations.get(claim.key_id)
            if wanted != (Address(origin.requester), claim.threshold):
                return "another request is pending there"
            return None
        if self.retrievals.get(claim.key_id) != origin.requester:
            return "another request is pending there"
        return None


def network(n: int, contract: Contract, schedule: int = 0) -> SimNetwork:
    return SimNetwork(
        n, MASTERS, SLAVES, seed=5, origins=contract.check, scheduler=RandomScheduler(schedule)
    )


def generation_origin(author: Address = AUTHOR) -> ServiceOrigin:
    return ServiceOrigin(CONTRACT, BLOCK, author)


# --- generation -------------------------------------------------------------------------------


@given(n=st.integers(1, 5), schedule=st.integers(0, 2**32))
def test_every_node_checks_the_contract_then_learns_the_public(n: int, schedule: int) -> None:
    contract = Contract({KEY_ID: (AUTHOR, n - 1)}, {})
    net = network(n, contract, schedule)
    sid = net.start(0, GenerateServerKey(KEY_ID, generation_origin().to_proof(), n - 1))
    net.run()
    public = net.value(0, sid)
    assert isinstance(public, Point)
    checked = sorted(node for node, _ in net.origin_checks)
    assert checked == sorted(net.order[1:])  # every slave read the contract, once
    for index in range(1, n):
        node = net.node(index)
        assert [(o.result, o.error) for o in node.outcomes] == [(public, None)]
        assert node.outcomes[0].claim.origin.contract == CONTRACT
        share = node.storage.get(KEY_ID)
        assert share is not None and share.author == AUTHOR and share.threshold == n - 1
    assert net.node(0).outcomes == []  # the master's caller has its result
    assert all(len(node.core) == 0 for node in net.nodes.values())


@pytest.mark.parametrize(
    "lie",
    [
        "author",
        "threshold",
        "contract",
        "block",
    ],
)
def test_a_master_that_misstates_the_request_gets_no_key_anywhere(lie: str) -> None:
    contract = Contract({KEY_ID: (AUTHOR, 1)}, {})
    origin, threshold = generation_origin(), 1
    if lie == "author":
        origin = generation_origin(Address(b"\xbb" * 20))
    elif lie == "threshold":
        threshold = 2
    elif lie == "contract":
        origin = replace(origin, contract=Address(b"\xdd" * 20))
    else:
        origin = replace(origin, block=BlockRef(78, Hash256(b"\x78" * 32)))
    net = network(3, contract)
    sid = net.start(0, GenerateServerKey(KEY_ID, origin.to_proof(), threshold))
    net.run()
    with pytest.raises(ConsensusUnreachable, match="cannot confirm the request on the contract"):
        net.value(0, sid)
    assert all(node.storage.get(KEY_ID) is None for node in net.nodes.values())
    assert all(node.outcomes == [] for node in net.nodes.values())


def test_one_node_that_cannot_see_the_request_stops_the_generation() -> None:
    net0 = network(3, Contract({}, {}))
    blind = frozenset({net0.order[2]})
    net = network(3, Contract({KEY_ID: (AUTHOR, 1)}, {}, blind))
    sid = net.start(0, GenerateServerKey(KEY_ID, generation_origin().to_proof(), 1))
    net.run()
    with pytest.raises(ConsensusUnreachable):
        net.value(0, sid)
    assert all(node.storage.get(KEY_ID) is None for node in net.nodes.values())


def test_a_service_generation_carries_no_bound_signature() -> None:
    net = network(2, Contract({KEY_ID: (AUTHOR, 1)}, {}))
    request = GenerateServerKey(KEY_ID, generation_origin().to_proof(), 1, b"\x01" * 65)
    sid = net.start(0, request)
    with pytest.raises(InvalidRequest, match="no bound signature"):
        net.value(0, sid)


def test_a_held_request_is_not_created_twice_and_is_dropped_with_its_master() -> None:
    net = network(3, Contract({KEY_ID: (AUTHOR, 1)}, {}))
    master, slave = net.node(0), net.node(1)
    init = InitializeGeneration(
        b"\x01" * 32,  # type: ignore[arg-type]
        KEY_ID,
        generation_origin().to_proof(),
        1,
        (),
    )
    first = slave.core.on_message(master.node_id, init)
    assert [type(e).__name__ for e in first] == ["CheckOrigin"]
    assert slave.core.on_message(master.node_id, init) == []  # the same again: held once
    assert slave.core.sessions_of(master.node_id) == 1  # a held request counts
    slave.core.on_node_disconnected(master.node_id)
    assert slave.core.sessions_of(master.node_id) == 0
    assert slave.core.on_origin_checked(init.session_id, None) == []  # nothing left to create


# --- broadcast shadow retrieval ---------------------------------------------------------------


def retrieval_world(t: int, n: int, schedule: int, contract: Contract | None = None) -> SimNetwork:
    contract = contract or Contract({}, {KEY_ID: REQUESTER.node_id})
    net = network(n, contract, schedule)
    key = deal_key(SeededRng(b"dealer"), net.order, t)
    for node in net.nodes.values():
        node.storage.insert(KEY_ID, key.shares[node.node_id])
    net.key = key  # type: ignore[attr-defined]
    return net


def personal_request() -> RetrieveDocumentKey:
    origin = ServiceOrigin(CONTRACT, BLOCK, REQUESTER.node_id)
    return RetrieveDocumentKey(KEY_ID, b"", shadow=True, origin=origin)


@given(
    case=st.sampled_from([(0, 1), (1, 2), (1, 3), (2, 3), (2, 5)]),
    schedule=st.integers(0, 2**32),
)
def test_every_member_of_a_broadcast_retrieval_gets_the_same_checked_result(
    case: tuple[int, int], schedule: int
) -> None:
    t, n = case
    net = retrieval_world(t, n, schedule)
    sid = net.start(0, personal_request())
    net.run()
    mine = net.value(0, sid)
    assert isinstance(mine, PersonalShare)
    assert len(mine.participants) == t + 1 and net.order[0] in mine.participants
    shares = {net.order[0]: mine}
    for index in range(1, n):
        node = net.node(index)
        if node.node_id not in mine.participants and not node.outcomes:
            continue  # the consensus ended before this node's reading of the contract
        [outcome] = node.outcomes
        assert outcome.error is None
        if node.node_id in mine.participants:
            assert isinstance(outcome.result, PersonalShare)
            assert outcome.result.participants == mine.participants
            assert outcome.result.decrypted_secret == mine.decrypted_secret
            shares[node.node_id] = outcome.result
        else:
            assert outcome.result is None  # asked, not a member: nothing to publish
    assert sorted(shares) == list(mine.participants)
    assert all(len(node.core) == 0 for node in net.nodes.values())  # nothing left running
    # what the requester does with the contract's events: its document key
    key = net.key  # type: ignore[attr-defined]
    common = make_common_shadow_point(t, key.shares[net.order[0]].common_point)
    coefficients = [
        Scalar.from_bytes(ecies_decrypt(REQUESTER.secret, share.decrypt_shadow))
        for share in shares.values()
    ]
    assert decrypt_with_shadow_coefficients(mine.decrypted_secret, common, coefficients) == (
        key.document_key
    )


def test_a_master_that_alters_an_answer_it_passes_on_is_caught_by_every_member() -> None:
    net = retrieval_world(2, 3, 0)
    master = net.node(0)

    def tamper(message: object) -> object:
        if isinstance(message, DecryptionJobResults):
            first = message.answers[0]
            bent = replace(first, shadow_point=first.shadow_point + Point.base_mul(Scalar(1)))
            return replace(message, answers=(bent, *message.answers[1:]))
        return message

    original = master.core.on_message

    def lying(sender: NodeId, message: object) -> list[object]:
        effects = original(sender, message)
        return [
            replace(e, message=tamper(e.message)) if type(e).__name__ == "Send" else e
            for e in effects
        ]

    master.core.on_message = lying  # type: ignore[method-assign]
    net.start(0, personal_request())
    net.run()
    for index in (1, 2):
        [outcome] = net.node(index).outcomes
        assert isinstance(outcome.error, ProtocolViolation)
        assert outcome.result is None


def test_nodes_that_cannot_find_the_retrieval_refuse_it() -> None:
    net0 = network(3, Contract({}, {}))
    contract = Contract({}, {KEY_ID: REQUESTER.node_id}, frozenset(net0.order[1:]))
    net = retrieval_world(1, 3, 0, contract)
    sid = net.start(0, personal_request())
    net.run()
    outcome = net.result(0, sid)
    assert isinstance(outcome, Fail)
    assert all(node.outcomes == [] for node in net.nodes.values())


def test_a_service_retrieval_names_its_requester_by_public_and_is_shadow() -> None:
    net = retrieval_world(1, 3, 0)
    by_account = ServiceOrigin(CONTRACT, BLOCK, REQUESTER.address)
    sid = net.start(0, RetrieveDocumentKey(KEY_ID, b"", shadow=True, origin=by_account))
    assert isinstance(net.result(0, sid), Fail)
    plain = replace(personal_request(), shadow=False)
    sid = net.start(0, plain)
    outcome = net.result(0, sid)
    assert isinstance(outcome, Fail) and isinstance(outcome.error, InvalidRequest)


def test_the_origin_travels_in_the_access_request() -> None:
    net = retrieval_world(1, 3, 0)
    net.start(0, personal_request())
    inits = [m for _, _, m in net.sent if isinstance(m, DecryptionRequest)]
    assert inits and all(m.access.origin == personal_request().origin for m in inits)
    assert all(m.access.requester_signature == b"" for m in inits)
    assert not any(isinstance(r, Finish) for r in net.node(0).results.values())


def lying_master(net: SimNetwork, lie: Callable[[NodeId, object], list[object]]) -> None:
    """Node 0 rewrites what it sends: `lie(to, message)` gives the messages sent instead."""
    master = net.node(0)
    original = master.core.on_message

    def send_lies(sender: NodeId, message: object) -> list[object]:
        out: list[object] = []
        for effect in original(sender, message):
            if isinstance(effect, Send):
                out += [Send(effect.to, m) for m in lie(effect.to, effect.message)]
            else:
                out.append(effect)
        return out

    master.core.on_message = send_lies  # type: ignore[method-assign,assignment]


def bend(point: Point) -> Point:
    return point + Point.base_mul(Scalar(1))


RESULT_LIES: dict[str, Callable[[NodeId, DecryptionJobResults], list[object]]] = {
    "another group": lambda to, m: [replace(m, answers=m.answers[:-1])],
    "another order": lambda to, m: [replace(m, answers=m.answers[::-1])],
    "its own answer replaced": lambda to, m: [
        replace(
            m,
            answers=tuple(
                replace(a, shadow_point=bend(a.shadow_point)) if a.node == to else a
                for a in m.answers
            ),
        )
    ],
    "an answer without its proof": lambda to, m: [
        replace(
            m,
            answers=tuple(
                replace(a, proof=None, blinded_public=None) if a.node != to else a
                for a in m.answers
            ),
        )
    ],
    "another member's sealed shadow changed": lambda to, m: [
        replace(
            m,
            answers=tuple(
                replace(a, sealed_shadow=bytes(len(a.sealed_shadow or b""))) if a.node != to else a
                for a in m.answers
            ),
        )
    ],
    "its own sealed shadow replaced": lambda to, m: [
        replace(
            m,
            answers=tuple(
                replace(a, sealed_shadow=bytes(len(a.sealed_shadow or b""))) if a.node == to else a
                for a in m.answers
            ),
        )
    ],
    "another attempt": lambda to, m: [replace(m, attempt=m.attempt + 1)],
    "the results twice": lambda to, m: [m, m],
}

RESULT_PROBLEMS = {
    "another group": "another group than the job's",
    "another order": "another group than the job's",
    "its own answer replaced": "another answer than this node's own",
    "an answer without its proof": "without its proof",
    # each proof binds its member's sealed decrypt shadow (what that member publishes)
    "another member's sealed shadow changed": "whose proof does not verify",
    "its own sealed shadow replaced": "another answer than this node's own",
    "another attempt": "a job this node did not answer",
    "the results twice": "twice",
}


@pytest.mark.parametrize("lie", sorted(RESULT_LIES))
def test_every_member_refuses_results_a_master_bent(lie: str) -> None:
    net = retrieval_world(2, 3, 0)

    def rewrite(to: NodeId, message: object) -> list[object]:
        if isinstance(message, DecryptionJobResults):
            return RESULT_LIES[lie](to, message)
        return [message]

    lying_master(net, rewrite)
    net.start(0, personal_request())
    net.run()
    for index in (1, 2):
        [outcome] = net.node(index).outcomes
        assert outcome.result is None  # nothing to publish
        assert isinstance(outcome.error, ProtocolViolation)
        assert RESULT_PROBLEMS[lie] in str(outcome.error)
        assert outcome.error.node == short(net.order[0])


def test_results_in_a_retrieval_that_is_not_broadcast_are_a_violation() -> None:
    net = retrieval_world(2, 3, 0)
    stolen: list[DecryptionJobResults] = []

    def inject(to: NodeId, message: object) -> list[object]:
        if isinstance(message, DecryptionJobResults):
            stolen.append(message)
        return [message]

    lying_master(net, inject)
    net.start(0, personal_request())
    net.run()
    [results] = stolen[:1]
    signature = sign_recoverable(REQUESTER.secret, KEY_ID)
    sid = net.start(0, RetrieveDocumentKey(KEY_ID, signature, shadow=True))

    def add_results(to: NodeId, message: object) -> list[object]:
        # the first group's job comes with the request (sent at the start): the results go
        # before the end of the consensus
        if type(message).__name__ == "ConsensusCompleted":
            return [replace(results, session_id=sid), message]
        return [message]

    lying_master(net, add_results)
    net.run()
    failures = [r for n in (1, 2) for r in [net.node(n).results.get(sid)] if isinstance(r, Fail)]
    assert failures and all(isinstance(f.error, ProtocolViolation) for f in failures)
    assert all("sent DecryptionJobResults" in str(f.error) for f in failures)
