"""Our service contracts on anvil behave as Parity's: requests, fees, voting, resets, limits."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from web3.exceptions import ContractLogicError

from secretstore.chain.abi import Function
from secretstore.chain.devchain import (
    ADD_KEY_SERVER,
    ONE_ETHER,
    REMOVE_KEY_SERVER,
    DevChain,
    DevChainError,
)
from secretstore.chain.services import abi
from secretstore.chain.services.client import ServiceClient
from secretstore.crypto.keys import KeyPair
from secretstore.crypto.rng import SeededRng
from tests.integration.chain.service_helpers import events

pytestmark = pytest.mark.chain

SERVERS = [KeyPair.generate(SeededRng(f"service-server-{i}".encode())) for i in range(4)]
CLIENT = KeyPair.generate(SeededRng(b"service-client"))
OTHER = KeyPair.generate(SeededRng(b"service-other"))
PUBLIC = b"\x07" * 64
FEE_GEN = ONE_ETHER // 5
FEE_RETR = ONE_ETHER // 10

BALANCE = Function("keyServerBalance", ("address",), ("uint256",))
OWNER_SETTERS = {
    "setServerKeyGenerationFee": Function("setServerKeyGenerationFee", ("uint256",)),
    "deleteServerKeyGenerationRequest": Function("deleteServerKeyGenerationRequest", ("bytes32",)),
}
GENERATION_FEE = Function("serverKeyGenerationFee", (), ("uint256",))


def key(i: int) -> bytes:
    return i.to_bytes(32, "big")


class World:
    """A simple key server set of the first 3 servers and one service contract over it."""

    def __init__(self, dev: DevChain, contract: str) -> None:
        self.dev = dev
        self.set = dev.deploy("OwnedKeyServerSet")
        for i, server in enumerate(SERVERS[:3]):
            dev.transact(self.set, ADD_KEY_SERVER, server.node_id, f"127.0.0.1:{9000 + i}")
        for account in [*SERVERS, CLIENT, OTHER]:
            dev.fund(account.address)
        self.service = dev.deploy(contract, self.set)

    def send(
        self, function: Function, *args: object, by: KeyPair = CLIENT, value: int = 0
    ) -> dict[str, object]:
        return self.dev.transact(self.service, function, *args, sender=by.address, value=value)

    def call(self, function: Function, *args: object) -> object:
        return self.dev.call(self.service, function, *args)

    def required(self, function: Function, *args: object, server: int) -> bool:
        return bool(self.call(function, *args, SERVERS[server].address))


@pytest.fixture
def generation(dev: DevChain) -> World:
    return World(dev, "SecretStoreServerKeyGenerationService")


@pytest.fixture
def retrieval(dev: DevChain) -> World:
    return World(dev, "SecretStoreServerKeyRetrievalService")


@pytest.fixture
def store(dev: DevChain) -> World:
    return World(dev, "SecretStoreDocumentKeyStoreService")


@pytest.fixture
def shadow(dev: DevChain) -> Iterator[World]:
    yield World(dev, "SecretStoreDocumentKeyShadowRetrievalService")


# --- generation -------------------------------------------------------------------------------


def test_generation_needs_its_fee_a_valid_threshold_and_a_free_slot(generation: World) -> None:
    with pytest.raises(DevChainError):  # no fee
        generation.send(abi.GENERATE_SERVER_KEY, key(1), 1)
    with pytest.raises(DevChainError):  # threshold + 1 > 3 servers
        generation.send(abi.GENERATE_SERVER_KEY, key(1), 3, value=FEE_GEN)
    receipt = generation.send(abi.GENERATE_SERVER_KEY, key(1), 2, value=FEE_GEN)
    assert events(receipt, abi.SERVER_KEY_GENERATION_REQUESTED) == [(key(1), CLIENT.address, 2)]
    with pytest.raises(DevChainError):  # the same key again while pending
        generation.send(abi.GENERATE_SERVER_KEY, key(1), 1, value=FEE_GEN)
    for i in range(2, 5):
        generation.send(abi.GENERATE_SERVER_KEY, key(i), 1, value=FEE_GEN)
    with pytest.raises(DevChainError):  # at most 4 pending
        generation.send(abi.GENERATE_SERVER_KEY, key(5), 1, value=FEE_GEN)
    assert generation.call(abi.SERVER_KEY_GENERATION_REQUESTS_COUNT) == 4
    assert generation.call(abi.GET_SERVER_KEY_GENERATION_REQUEST, 0) == (key(1), CLIENT.address, 2)


def test_generation_is_published_once_every_server_reported_the_same_public(
    generation: World,
) -> None:
    generation.send(abi.GENERATE_SERVER_KEY, key(1), 1, value=FEE_GEN)
    required = abi.IS_SERVER_KEY_GENERATION_RESPONSE_REQUIRED
    assert all(generation.required(required, key(1), server=i) for i in range(3))
    for i in range(2):
        receipt = generation.send(abi.SERVER_KEY_GENERATED, key(1), PUBLIC, by=SERVERS[i])
        assert events(receipt, abi.SERVER_KEY_GENERATED_EVENT) == []
        assert not generation.required(required, key(1), server=i)
    # a server's second answer is ignored
    generation.send(abi.SERVER_KEY_GENERATED, key(1), PUBLIC, by=SERVERS[0])
    assert generation.call(abi.SERVER_KEY_GENERATION_REQUESTS_COUNT) == 1
    with pytest.raises(DevChainError):  # not a key server
        generation.send(abi.SERVER_KEY_GENERATED, key(1), PUBLIC, by=SERVERS[3])
    with pytest.raises(DevChainError):  # not a 64-byte public
        generation.send(abi.SERVER_KEY_GENERATED, key(1), PUBLIC[:33], by=SERVERS[2])
    receipt = generation.send(abi.SERVER_KEY_GENERATED, key(1), PUBLIC, by=SERVERS[2])
    assert events(receipt, abi.SERVER_KEY_GENERATED_EVENT) == [(key(1), PUBLIC)]
    assert generation.call(abi.SERVER_KEY_GENERATION_REQUESTS_COUNT) == 0
    # ours (not Parity's): no answer is required to a request that is not pending
    assert not any(generation.required(required, key(1), server=i) for i in range(3))
    assert not generation.required(required, key(9), server=0)
    # the request is gone: a late answer changes nothing
    receipt = generation.send(abi.SERVER_KEY_GENERATED, key(1), PUBLIC, by=SERVERS[0])
    assert receipt["logs"] == []


def test_a_differing_public_or_one_error_ends_a_generation_with_its_error(
    generation: World,
) -> None:
    generation.send(abi.GENERATE_SERVER_KEY, key(1), 1, value=FEE_GEN)
    generation.send(abi.SERVER_KEY_GENERATED, key(1), PUBLIC, by=SERVERS[0])
    receipt = generation.send(abi.SERVER_KEY_GENERATED, key(1), b"\x08" * 64, by=SERVERS[1])
    assert events(receipt, abi.SERVER_KEY_GENERATION_ERROR_EVENT) == [(key(1),)]
    generation.send(abi.GENERATE_SERVER_KEY, key(2), 1, value=FEE_GEN)
    receipt = generation.send(abi.SERVER_KEY_GENERATION_ERROR, key(2), by=SERVERS[2])
    assert events(receipt, abi.SERVER_KEY_GENERATION_ERROR_EVENT) == [(key(2),)]
    with pytest.raises(DevChainError):  # errors only from key servers
        generation.send(abi.SERVER_KEY_GENERATION_ERROR, key(2), by=OTHER)


def test_a_key_server_set_change_forgets_the_answers(generation: World) -> None:
    dev = generation.dev
    generation.send(abi.GENERATE_SERVER_KEY, key(1), 1, value=FEE_GEN)
    required = abi.IS_SERVER_KEY_GENERATION_RESPONSE_REQUIRED
    for i in range(2):
        generation.send(abi.SERVER_KEY_GENERATED, key(1), PUBLIC, by=SERVERS[i])
    dev.transact(generation.set, ADD_KEY_SERVER, SERVERS[3].node_id, "127.0.0.1:9003")
    dev.transact(generation.set, REMOVE_KEY_SERVER, SERVERS[3].address)
    assert generation.required(required, key(1), server=0)  # asked again
    generation.send(abi.SERVER_KEY_GENERATED, key(1), PUBLIC, by=SERVERS[2])
    receipt = generation.send(abi.SERVER_KEY_GENERATED, key(1), PUBLIC, by=SERVERS[0])
    assert events(receipt, abi.SERVER_KEY_GENERATED_EVENT) == []  # 2 of 3 since the change
    receipt = generation.send(abi.SERVER_KEY_GENERATED, key(1), PUBLIC, by=SERVERS[1])
    assert events(receipt, abi.SERVER_KEY_GENERATED_EVENT) == [(key(1), PUBLIC)]


def test_fees_are_split_among_the_current_servers_and_drained(generation: World) -> None:
    dev = generation.dev
    fee = FEE_GEN + 1  # 1 wei more than a third's multiple: the remainder goes to the last
    generation.send(abi.GENERATE_SERVER_KEY, key(1), 1, value=fee)
    shares = [generation.call(BALANCE, server.address) for server in SERVERS[:3]]
    assert shares[0] == shares[1] == fee // 3 and shares[2] == fee - 2 * (fee // 3)
    before = dev.w3.eth.get_balance(dev.w3.to_checksum_address(SERVERS[0].address.hex()))
    receipt = generation.send(abi.DRAIN, by=SERVERS[0])
    after = dev.w3.eth.get_balance(dev.w3.to_checksum_address(SERVERS[0].address.hex()))
    gas = int(receipt["gasUsed"]) * int(receipt["effectiveGasPrice"])
    assert after - before == shares[0] - gas
    assert generation.call(BALANCE, SERVERS[0].address) == 0
    with pytest.raises(DevChainError):  # nothing left to drain
        generation.send(abi.DRAIN, by=SERVERS[0])
    with pytest.raises(ContractLogicError):  # a bare transfer is refused
        dev.w3.eth.send_transaction(
            {
                "from": dev.sender,
                "to": dev.w3.to_checksum_address(generation.service.hex()),
                "value": 1,
            }
        )


def test_only_the_owner_sets_fees_and_limits_and_deletes_requests(generation: World) -> None:
    set_fee = OWNER_SETTERS["setServerKeyGenerationFee"]
    with pytest.raises(DevChainError):
        generation.send(set_fee, 1, by=OTHER)
    generation.dev.transact(generation.service, set_fee, 5)
    assert generation.call(GENERATION_FEE) == 5
    generation.send(abi.GENERATE_SERVER_KEY, key(1), 1, value=5)
    delete = OWNER_SETTERS["deleteServerKeyGenerationRequest"]
    with pytest.raises(DevChainError):
        generation.send(delete, key(1), by=OTHER)
    receipt = generation.dev.transact(generation.service, delete, key(1))
    assert events(receipt, abi.SERVER_KEY_GENERATION_ERROR_EVENT) == [(key(1),)]
    assert generation.call(abi.SERVER_KEY_GENERATION_REQUESTS_COUNT) == 0


# --- server key retrieval ---------------------------------------------------------------------


def test_retrieval_agrees_on_the_threshold_then_on_the_public(retrieval: World) -> None:
    receipt = retrieval.send(abi.RETRIEVE_SERVER_KEY, key(1), value=FEE_RETR)
    assert events(receipt, abi.SERVER_KEY_RETRIEVAL_REQUESTED) == [(key(1),)]
    assert retrieval.call(abi.GET_SERVER_KEY_RETRIEVAL_REQUEST, 0) == key(1)
    retrieval.send(abi.SERVER_KEY_RETRIEVED, key(1), PUBLIC, 1, by=SERVERS[0])
    assert not retrieval.required(abi.IS_SERVER_KEY_RETRIEVAL_RESPONSE_REQUIRED, key(1), server=0)
    receipt = retrieval.send(abi.SERVER_KEY_RETRIEVED, key(1), PUBLIC, 1, by=SERVERS[1])
    assert events(receipt, abi.SERVER_KEY_RETRIEVED_EVENT) == [(key(1), PUBLIC)]  # 2 = t + 1
    required = abi.IS_SERVER_KEY_RETRIEVAL_RESPONSE_REQUIRED
    assert not retrieval.required(required, key(1), server=2)  # answered: not pending


def test_retrieval_fails_when_most_servers_have_no_key(retrieval: World) -> None:
    retrieval.send(abi.RETRIEVE_SERVER_KEY, key(1), value=FEE_RETR)
    retrieval.send(abi.SERVER_KEY_RETRIEVED, key(1), PUBLIC, 1, by=SERVERS[0])
    receipt = retrieval.send(abi.SERVER_KEY_RETRIEVAL_ERROR, key(1), by=SERVERS[1])
    assert receipt["logs"] == []
    receipt = retrieval.send(abi.SERVER_KEY_RETRIEVAL_ERROR, key(1), by=SERVERS[2])
    assert events(receipt, abi.SERVER_KEY_RETRIEVAL_ERROR_EVENT) == [(key(1),)]


# --- document key store -----------------------------------------------------------------------


def test_store_is_published_once_every_server_stored(store: World) -> None:
    common, encrypted = b"\x01" * 64, b"\x02" * 64
    with pytest.raises(DevChainError):  # the points are 64 bytes
        store.send(abi.STORE_DOCUMENT_KEY, key(1), common[:63], encrypted, value=FEE_RETR)
    receipt = store.send(abi.STORE_DOCUMENT_KEY, key(1), common, encrypted, value=FEE_RETR)
    assert events(receipt, abi.DOCUMENT_KEY_STORE_REQUESTED) == [
        (key(1), CLIENT.address, common, encrypted)
    ]
    assert store.call(abi.GET_DOCUMENT_KEY_STORE_REQUEST, 0) == (
        key(1),
        CLIENT.address,
        common,
        encrypted,
    )
    for i in range(2):
        assert store.send(abi.DOCUMENT_KEY_STORED, key(1), by=SERVERS[i])["logs"] == []
    receipt = store.send(abi.DOCUMENT_KEY_STORED, key(1), by=SERVERS[2])
    assert events(receipt, abi.DOCUMENT_KEY_STORED_EVENT) == [(key(1),)]
    assert not store.required(abi.IS_DOCUMENT_KEY_STORE_RESPONSE_REQUIRED, key(1), server=0)
    store.send(abi.STORE_DOCUMENT_KEY, key(2), common, encrypted, value=FEE_RETR)
    receipt = store.send(abi.DOCUMENT_KEY_STORE_ERROR, key(2), by=SERVERS[0])
    assert events(receipt, abi.DOCUMENT_KEY_STORE_ERROR_EVENT) == [(key(2),)]


# --- document key shadow retrieval ------------------------------------------------------------


def _mask(*servers: int) -> int:
    return sum(1 << i for i in servers)


def test_shadow_retrieval_common_then_personal(shadow: World) -> None:
    requester = CLIENT.address
    public = CLIENT.node_id
    with pytest.raises(DevChainError):  # the requester public must be the caller's
        shadow.send(abi.RETRIEVE_DOCUMENT_KEY_SHADOW, key(1), OTHER.node_id, value=FEE_GEN)
    receipt = shadow.send(abi.RETRIEVE_DOCUMENT_KEY_SHADOW, key(1), public, value=FEE_GEN)
    assert events(receipt, abi.DOCUMENT_KEY_COMMON_RETRIEVAL_REQUESTED) == [(key(1), requester)]
    assert shadow.call(abi.GET_DOCUMENT_KEY_SHADOW_RETRIEVAL_REQUEST, 0) == (key(1), public, False)
    required = abi.IS_DOCUMENT_KEY_SHADOW_RETRIEVAL_RESPONSE_REQUIRED
    common = b"\x05" * 64
    with pytest.raises(DevChainError):  # no personal part before the common one
        shadow.send(
            abi.DOCUMENT_KEY_PERSONAL_RETRIEVED,
            key(1),
            requester,
            _mask(0, 1),
            PUBLIC,
            b"s",
            by=SERVERS[0],
        )
    shadow.send(abi.DOCUMENT_KEY_COMMON_RETRIEVED, key(1), requester, common, 1, by=SERVERS[0])
    assert not shadow.required(required, key(1), requester, server=0)
    receipt = shadow.send(
        abi.DOCUMENT_KEY_COMMON_RETRIEVED, key(1), requester, common, 1, by=SERVERS[1]
    )
    assert events(receipt, abi.DOCUMENT_KEY_COMMON_RETRIEVED_EVENT) == [
        (key(1), bytes(12) + requester, common, 1)
    ]
    assert events(receipt, abi.DOCUMENT_KEY_PERSONAL_RETRIEVAL_REQUESTED) == [(key(1), public)]
    assert shadow.call(abi.GET_DOCUMENT_KEY_SHADOW_RETRIEVAL_REQUEST, 0) == (key(1), public, True)
    # in the personal phase an answer is always wanted
    assert all(shadow.required(required, key(1), requester, server=i) for i in range(3))

    personal = abi.DOCUMENT_KEY_PERSONAL_RETRIEVED
    for bad_mask, server in ((_mask(0, 1, 2), 0), (_mask(0), 0), (_mask(1, 2), 0)):
        with pytest.raises(DevChainError):  # not t + 1 participants, or without the caller
            shadow.send(personal, key(1), requester, bad_mask, PUBLIC, b"s", by=SERVERS[server])
    receipt = shadow.send(personal, key(1), requester, _mask(0, 2), PUBLIC, b"s0", by=SERVERS[0])
    assert events(receipt, abi.DOCUMENT_KEY_PERSONAL_RETRIEVED_EVENT) == [
        (key(1), bytes(12) + requester, PUBLIC, b"s0")
    ]
    with pytest.raises(DevChainError):  # the same report twice
        shadow.send(personal, key(1), requester, _mask(0, 2), PUBLIC, b"s0", by=SERVERS[0])
    shadow.send(personal, key(1), requester, _mask(0, 2), PUBLIC, b"s2", by=SERVERS[2])
    assert shadow.call(abi.DOCUMENT_KEY_SHADOW_RETRIEVAL_REQUESTS_COUNT) == 0  # t + 1 reports
    assert not shadow.required(required, key(1), requester, server=1)


def test_shadow_retrieval_errors(shadow: World) -> None:
    requester, public = CLIENT.address, CLIENT.node_id
    error = abi.DOCUMENT_KEY_SHADOW_RETRIEVAL_ERROR
    shadow.send(abi.RETRIEVE_DOCUMENT_KEY_SHADOW, key(1), public, value=FEE_GEN)
    assert shadow.send(error, key(1), requester, by=SERVERS[0])["logs"] == []
    receipt = shadow.send(error, key(1), requester, by=SERVERS[1])  # a majority: no common part
    assert events(receipt, abi.DOCUMENT_KEY_SHADOW_RETRIEVAL_ERROR_EVENT) == [
        (key(1), bytes(12) + requester)
    ]
    # in the personal phase, more than half of the servers must report an error
    shadow.send(abi.RETRIEVE_DOCUMENT_KEY_SHADOW, key(2), public, value=FEE_GEN)
    for i in range(2):
        shadow.send(abi.DOCUMENT_KEY_COMMON_RETRIEVED, key(2), requester, PUBLIC, 1, by=SERVERS[i])
    assert shadow.send(error, key(2), requester, by=SERVERS[0])["logs"] == []
    assert shadow.send(error, key(2), requester, by=SERVERS[0])["logs"] == []  # once per server
    receipt = shadow.send(error, key(2), requester, by=SERVERS[2])
    assert events(receipt, abi.DOCUMENT_KEY_SHADOW_RETRIEVAL_ERROR_EVENT) == [
        (key(2), bytes(12) + requester)
    ]


# --- a key server that lies or replays -------------------------------------------------------

WRONG = b"\x09" * 64


def test_a_lying_or_replaying_server_is_outvoted_in_a_retrieval(retrieval: World) -> None:
    published = abi.SERVER_KEY_RETRIEVED_EVENT
    # server 0 reports another public, and again: its answer counts once
    retrieval.send(abi.RETRIEVE_SERVER_KEY, key(1), value=FEE_RETR)
    assert retrieval.send(abi.SERVER_KEY_RETRIEVED, key(1), WRONG, 1, by=SERVERS[0])["logs"] == []
    assert retrieval.send(abi.SERVER_KEY_RETRIEVED, key(1), WRONG, 1, by=SERVERS[0])["logs"] == []
    assert retrieval.send(abi.SERVER_KEY_RETRIEVED, key(1), PUBLIC, 1, by=SERVERS[1])["logs"] == []
    receipt = retrieval.send(abi.SERVER_KEY_RETRIEVED, key(1), PUBLIC, 1, by=SERVERS[2])
    assert events(receipt, published) == [(key(1), PUBLIC)]
    # server 1 reports another threshold with another public after an honest answer
    retrieval.send(abi.RETRIEVE_SERVER_KEY, key(2), value=FEE_RETR)
    retrieval.send(abi.SERVER_KEY_RETRIEVED, key(2), PUBLIC, 1, by=SERVERS[0])
    assert retrieval.send(abi.SERVER_KEY_RETRIEVED, key(2), WRONG, 2, by=SERVERS[1])["logs"] == []
    receipt = retrieval.send(abi.SERVER_KEY_RETRIEVED, key(2), PUBLIC, 1, by=SERVERS[2])
    assert events(receipt, published) == [(key(2), PUBLIC)]
    # a lying server's error does not outvote two honest answers either
    retrieval.send(abi.RETRIEVE_SERVER_KEY, key(3), value=FEE_RETR)
    assert retrieval.send(abi.SERVER_KEY_RETRIEVAL_ERROR, key(3), by=SERVERS[0])["logs"] == []
    retrieval.send(abi.SERVER_KEY_RETRIEVED, key(3), PUBLIC, 1, by=SERVERS[1])
    receipt = retrieval.send(abi.SERVER_KEY_RETRIEVED, key(3), PUBLIC, 1, by=SERVERS[2])
    assert events(receipt, published) == [(key(3), PUBLIC)]


def test_a_replayed_store_answer_counts_once(store: World) -> None:
    common, encrypted = b"\x01" * 64, b"\x02" * 64
    store.send(abi.STORE_DOCUMENT_KEY, key(1), common, encrypted, value=FEE_RETR)
    for _ in range(3):
        assert store.send(abi.DOCUMENT_KEY_STORED, key(1), by=SERVERS[0])["logs"] == []
    assert store.send(abi.DOCUMENT_KEY_STORED, key(1), by=SERVERS[1])["logs"] == []
    receipt = store.send(abi.DOCUMENT_KEY_STORED, key(1), by=SERVERS[2])
    assert events(receipt, abi.DOCUMENT_KEY_STORED_EVENT) == [(key(1),)]


def test_a_lying_server_neither_sets_the_common_part_nor_makes_up_a_personal_one(
    dev: DevChain,
) -> None:
    """Server 0 lies in every answer of a shadow retrieval: another common point and
    threshold, then a decrypted secret of its own under each participants mask it may name.
    The honest servers' answers are published, and a client of the ClientApi takes the
    honest parts only (the liar's events are in the logs too)."""
    world = World(dev, "SecretStoreService")
    service = world.service
    client = ServiceClient(
        dev.url,
        CLIENT,
        generation=service,
        retrieval=service,
        store=service,
        shadow_retrieval=service,
    )
    requester = CLIENT.address
    sent = client.retrieve_document_key_shadow(key(1))
    common = b"\x05" * 64
    common_retrieved = abi.DOCUMENT_KEY_COMMON_RETRIEVED
    assert world.send(common_retrieved, key(1), requester, WRONG, 1, by=SERVERS[0])["logs"] == []
    assert world.send(common_retrieved, key(1), requester, common, 2, by=SERVERS[0])["logs"] == []
    assert world.send(common_retrieved, key(1), requester, common, 1, by=SERVERS[1])["logs"] == []
    receipt = world.send(common_retrieved, key(1), requester, common, 1, by=SERVERS[2])
    assert events(receipt, abi.DOCUMENT_KEY_COMMON_RETRIEVED_EVENT) == [
        (key(1), bytes(12) + requester, common, 1)
    ]
    personal = abi.DOCUMENT_KEY_PERSONAL_RETRIEVED
    for mask in (_mask(0, 1), _mask(0, 2)):  # the liar alone, under two masks
        world.send(personal, key(1), requester, mask, WRONG, b"lie", by=SERVERS[0])
    assert world.call(abi.DOCUMENT_KEY_SHADOW_RETRIEVAL_REQUESTS_COUNT) == 1  # not completed
    world.send(personal, key(1), requester, _mask(1, 2), PUBLIC, b"s1", by=SERVERS[1])
    world.send(personal, key(1), requester, _mask(1, 2), PUBLIC, b"s2", by=SERVERS[2])
    assert world.call(abi.DOCUMENT_KEY_SHADOW_RETRIEVAL_REQUESTS_COUNT) == 0
    event, parts = client.shadow_retrieved(key(1), sent.block, timeout=5)
    assert event.name == "DocumentKeyCommonRetrieved"
    assert bytes(event.args["commonPoint"]) == common and event.args["threshold"] == 1
    assert sorted(bytes(e.args["shadow"]) for e in parts) == [b"s1", b"s2"]
    assert {bytes(e.args["decryptedSecret"]) for e in parts} == {PUBLIC}


# --- all four in one --------------------------------------------------------------------------


def test_the_combined_contract_serves_all_four_apis(dev: DevChain) -> None:
    world = World(dev, "SecretStoreService")
    world.send(abi.GENERATE_SERVER_KEY, key(1), 1, value=FEE_GEN)
    world.send(abi.RETRIEVE_SERVER_KEY, key(1), value=FEE_RETR)
    world.send(abi.STORE_DOCUMENT_KEY, key(1), PUBLIC, PUBLIC, value=FEE_RETR)
    world.send(abi.RETRIEVE_DOCUMENT_KEY_SHADOW, key(1), CLIENT.node_id, value=FEE_GEN)
    for count in (
        abi.SERVER_KEY_GENERATION_REQUESTS_COUNT,
        abi.SERVER_KEY_RETRIEVAL_REQUESTS_COUNT,
        abi.DOCUMENT_KEY_STORE_REQUESTS_COUNT,
        abi.DOCUMENT_KEY_SHADOW_RETRIEVAL_REQUESTS_COUNT,
    ):
        assert world.call(count) == 1
    # one balance per server, the four fees together
    total = 2 * FEE_GEN + 2 * FEE_RETR
    assert sum(int(world.call(BALANCE, s.address)) for s in SERVERS[:3]) == total  # type: ignore[call-overload]
    assert world.call(abi.KEY_SERVERS_COUNT) == 3
    assert world.call(abi.REQUIRE_KEY_SERVER, SERVERS[2].address) == 2
    with pytest.raises(DevChainError):
        world.call(abi.REQUIRE_KEY_SERVER, OTHER.address)
