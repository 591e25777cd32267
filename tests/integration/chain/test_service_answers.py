"""A node's answers on a real service contract: none is sent twice while the key server set
stays, and a change of the set (which makes the contract forget its answers) has it answer
again."""

from __future__ import annotations

import asyncio

import pytest

from secretstore.chain.client import ChainClient, ContractCallFailed, TransactionFailed
from secretstore.chain.devchain import ADD_KEY_SERVER, ONE_ETHER, REMOVE_KEY_SERVER, Anvil, DevChain
from secretstore.chain.services import abi
from secretstore.chain.services.contracts import Generated, PersonalRetrieved, ServiceCalls
from secretstore.chain.services.requests import GenerationRequest, PersonalRetrievalRequest
from secretstore.crypto.curve import Point, Scalar
from secretstore.crypto.keys import KeyPair
from secretstore.crypto.rng import SeededRng
from secretstore.types import NodeId, ServerKeyId
from tests.integration.chain.service_helpers import events

pytestmark = pytest.mark.chain

NODE = KeyPair.generate(SeededRng(b"answering node"))
PEER = KeyPair.generate(SeededRng(b"answering peer"))
PASSING = KeyPair.generate(SeededRng(b"passing server"))
CLIENT = KeyPair.generate(SeededRng(b"answering client"))
KEY_ID = ServerKeyId(b"\x63" * 32)
PUBLIC = Point.base_mul(Scalar(5))


async def wait_for_head(client: ChainClient, number: int) -> None:
    for _ in range(200):
        if client.head is not None and client.head.number >= number:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"the client did not see block {number}")


async def test_an_answer_is_sent_once_per_key_server_set(anvil: Anvil, dev: DevChain) -> None:
    server_set = dev.deploy("OwnedKeyServerSet")
    for i, server in enumerate((NODE, PEER)):
        dev.transact(server_set, ADD_KEY_SERVER, server.node_id, f"127.0.0.1:{i + 1}")
    service = dev.deploy("SecretStoreServerKeyGenerationService", server_set)
    for account in (NODE, PEER, PASSING, CLIENT):
        dev.fund(account.address)
    dev.transact(
        service, abi.GENERATE_SERVER_KEY, KEY_ID, 1, sender=CLIENT.address, value=ONE_ETHER
    )
    current = [frozenset({NodeId(NODE.node_id), NodeId(PEER.node_id)})]
    client = ChainClient(anvil.url, NODE, poll_interval=0.05)
    await client.start()
    try:
        calls = ServiceCalls(client, key_servers=lambda: current[0], remember_blocks=6)
        request = GenerationRequest(service, KEY_ID, CLIENT.address, 1)
        first = await calls.publish(request, Generated(PUBLIC))
        assert first is not None and first.succeeded
        assert await calls.publish(request, Generated(PUBLIC)) is None  # not twice
        # the owner changes the set and back before this node notices: the contract forgets
        # the answers given so far, and asks for this node's again
        dev.transact(server_set, ADD_KEY_SERVER, PASSING.node_id, "127.0.0.1:3")
        dev.transact(server_set, REMOVE_KEY_SERVER, PASSING.address)
        assert await calls.response_required(request)
        assert await calls.publish(request, Generated(PUBLIC)) is None  # taken as given a while
        dev.mine(6)
        await wait_for_head(client, first.block + 6)
        again = await calls.publish(request, Generated(PUBLIC))  # then the contract decides
        assert again is not None and again.succeeded
        # a change of the set this node sees: it answers again at once
        dev.transact(server_set, ADD_KEY_SERVER, PASSING.node_id, "127.0.0.1:3")
        current[0] = current[0] | {NodeId(PASSING.node_id)}
        third = await calls.publish(request, Generated(PUBLIC))
        assert third is not None and third.succeeded
        for server in (PEER, PASSING):
            receipt = dev.transact(
                service, abi.SERVER_KEY_GENERATED, KEY_ID, PUBLIC.to_bytes(), sender=server.address
            )
        assert events(receipt, abi.SERVER_KEY_GENERATED_EVENT) == [(KEY_ID, PUBLIC.to_bytes())]
    finally:
        await client.stop()


async def test_an_answer_that_would_revert_is_refused_by_name_and_sent_when_it_can_be(
    anvil: Anvil, dev: DevChain
) -> None:
    """A personal part answered before the contract has the common part: the chain says the
    transaction would revert, nothing is sent, and the error names the function, the
    contract and the reason; once the common part is in, the same answer is sent."""
    server_set = dev.deploy("OwnedKeyServerSet")
    for i, server in enumerate((NODE, PEER)):
        dev.transact(server_set, ADD_KEY_SERVER, server.node_id, f"127.0.0.1:{i + 1}")
    service = dev.deploy("SecretStoreDocumentKeyShadowRetrievalService", server_set)
    for account in (NODE, PEER, CLIENT):
        dev.fund(account.address)
    dev.transact(
        service,
        abi.RETRIEVE_DOCUMENT_KEY_SHADOW,
        KEY_ID,
        CLIENT.node_id,
        sender=CLIENT.address,
        value=ONE_ETHER,
    )
    nodes = frozenset({NodeId(NODE.node_id), NodeId(PEER.node_id)})
    client = ChainClient(anvil.url, NODE, poll_interval=0.05)
    await client.start()
    try:
        calls = ServiceCalls(client, key_servers=lambda: nodes, remember_blocks=6)
        request = PersonalRetrievalRequest(service, KEY_ID, CLIENT.node_id)
        answer = PersonalRetrieved(
            (NodeId(NODE.node_id), NodeId(PEER.node_id)), PUBLIC, b"a decrypt shadow"
        )
        before = dev.block_number
        with pytest.raises(ContractCallFailed) as refused:
            await calls.publish(request, answer)
        text = str(refused.value)
        assert "documentKeyPersonalRetrieved" in text and "would revert" in text
        assert "0x" + service.hex() in text and "the common part is not retrieved yet" in text
        assert dev.block_number == before  # nothing was sent
        for server in (NODE, PEER):
            dev.transact(
                service,
                abi.DOCUMENT_KEY_COMMON_RETRIEVED,
                KEY_ID,
                CLIENT.address,
                PUBLIC.to_bytes(),
                1,
                sender=server.address,
            )
        receipt = await calls.publish(request, answer)
        assert receipt is not None and receipt.succeeded
        assert dev.call(service, abi.DOCUMENT_KEY_SHADOW_RETRIEVAL_REQUESTS_COUNT) == 1
    finally:
        await client.stop()


async def test_an_answer_mined_reverted_is_named_and_sent_again_when_it_can_be(
    anvil: Anvil, dev: DevChain
) -> None:
    """The node's answer passes the chain's estimate, then the owner's transaction mined
    before it in the same block removes the node from the key server set: the answer is
    mined and reverts. The error names the function, the transaction and the block; once the
    node is a key server again, the same answer is sent and counts."""
    server_set = dev.deploy("OwnedKeyServerSet")
    for i, server in enumerate((NODE, PEER)):
        dev.transact(server_set, ADD_KEY_SERVER, server.node_id, f"127.0.0.1:{i + 1}")
    service = dev.deploy("SecretStoreServerKeyGenerationService", server_set)
    for account in (NODE, PEER, CLIENT):
        dev.fund(account.address)
    dev.transact(
        service, abi.GENERATE_SERVER_KEY, KEY_ID, 1, sender=CLIENT.address, value=ONE_ETHER
    )
    nodes = frozenset({NodeId(NODE.node_id), NodeId(PEER.node_id)})
    client = ChainClient(anvil.url, NODE, poll_interval=0.05)
    await client.start()
    rpc = dev.w3.provider.make_request
    rpc("evm_setAutomine", [False])  # type: ignore[arg-type]
    try:
        calls = ServiceCalls(client, key_servers=lambda: nodes, remember_blocks=6)
        request = GenerationRequest(service, KEY_ID, CLIENT.address, 1)
        answer = asyncio.ensure_future(calls.publish(request, Generated(PUBLIC)))
        node_account = dev.w3.to_checksum_address(NODE.address.hex())
        mined = dev.w3.eth.get_transaction_count(node_account, "latest")
        for _ in range(200):
            if dev.w3.eth.get_transaction_count(node_account, "pending") > mined:
                break
            await asyncio.sleep(0.02)
        else:
            raise AssertionError("the node's answer was not sent")
        removal = {
            "from": dev.sender,
            "to": dev.w3.to_checksum_address(server_set.hex()),
            "data": "0x" + REMOVE_KEY_SERVER.calldata(NODE.address).hex(),
            "gasPrice": 100 * int(dev.w3.eth.gas_price),  # mined first in the block
            "gas": 500_000,
        }
        rpc("eth_sendTransaction", [removal])  # type: ignore[arg-type]
        dev.mine(1)
        with pytest.raises(TransactionFailed) as failed:
            await asyncio.wait_for(answer, 20)
        text = str(failed.value)
        assert "reverted in block #" in text and "server key generation" in text
        assert dev.call(service, abi.SERVER_KEY_GENERATION_REQUESTS_COUNT) == 1  # still pending
    finally:
        rpc("evm_setAutomine", [True])  # type: ignore[arg-type]
        dev.mine(1)
    try:
        dev.transact(server_set, ADD_KEY_SERVER, NODE.node_id, "127.0.0.1:1")
        receipt = await calls.publish(request, Generated(PUBLIC))
        assert receipt is not None and receipt.succeeded
        receipt = dev.transact(
            service, abi.SERVER_KEY_GENERATED, KEY_ID, PUBLIC.to_bytes(), sender=PEER.address
        )
        assert events(receipt, abi.SERVER_KEY_GENERATED_EVENT) == [(KEY_ID, PUBLIC.to_bytes())]
    finally:
        await client.stop()
