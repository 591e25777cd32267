"""A node's own reading of a contract-originated session's request, on a real contract: only
exactly the pending request, on a contract it serves, at a recent block on its chain."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace

import pytest

from secretstore.chain.client import ChainClient
from secretstore.chain.devchain import ADD_KEY_SERVER, ONE_ETHER, Anvil, DevChain
from secretstore.chain.services import abi
from secretstore.chain.services.abi import ServiceApi
from secretstore.chain.services.contracts import ServiceCalls
from secretstore.chain.services.origin import ContractOrigins
from secretstore.crypto.keys import KeyPair
from secretstore.crypto.rng import SeededRng
from secretstore.sessions.origin import OriginClaim, OriginKind
from secretstore.types import Address, BlockRef, Hash256, ServerKeyId
from secretstore.wire.requester import ServiceOrigin

pytestmark = pytest.mark.chain

NODE = KeyPair.generate(SeededRng(b"origin node"))
CLIENT = KeyPair.generate(SeededRng(b"origin client"))
KEY_ID = ServerKeyId(b"\x61" * 32)


@pytest.fixture
async def world(
    anvil: Anvil, dev: DevChain
) -> AsyncIterator[tuple[ContractOrigins, Address, DevChain, ChainClient]]:
    server_set = dev.deploy("OwnedKeyServerSet")
    dev.transact(server_set, ADD_KEY_SERVER, NODE.node_id, "127.0.0.1:1")
    service = dev.deploy("SecretStoreService", server_set)
    for account in (NODE, CLIENT):
        dev.fund(account.address)
    dev.transact(
        service, abi.GENERATE_SERVER_KEY, KEY_ID, 0, sender=CLIENT.address, value=ONE_ETHER
    )
    dev.transact(
        service,
        abi.RETRIEVE_DOCUMENT_KEY_SHADOW,
        KEY_ID,
        CLIENT.node_id,
        sender=CLIENT.address,
        value=ONE_ETHER,
    )
    dev.transact(
        service,
        abi.DOCUMENT_KEY_COMMON_RETRIEVED,
        KEY_ID,
        CLIENT.address,
        CLIENT.node_id,
        0,
        sender=NODE.address,
    )
    client = ChainClient(anvil.url, NODE, poll_interval=0.05)
    await client.start()
    served = {
        ServiceApi.SERVER_KEY_GENERATION: frozenset({service}),
        ServiceApi.DOCUMENT_KEY_SHADOW_RETRIEVAL: frozenset({service}),
    }
    origins = ContractOrigins(
        client,
        ServiceCalls(client),
        lambda api: served.get(api, frozenset()),
        max_age=4,
        pin_wait=0.5,
    )
    try:
        yield origins, service, dev, client
    finally:
        await client.stop()


def head(dev: DevChain) -> BlockRef:
    block = dev.w3.eth.get_block("latest")
    return BlockRef(int(block["number"]), Hash256(bytes(block["hash"])))


def generation(
    service: Address, block: BlockRef, author: Address = CLIENT.address, threshold: int = 0
) -> OriginClaim:
    return OriginClaim(
        OriginKind.SERVER_KEY_GENERATION, ServiceOrigin(service, block, author), KEY_ID, threshold
    )


def personal(service: Address, block: BlockRef, public: bytes = CLIENT.node_id) -> OriginClaim:
    return OriginClaim(
        OriginKind.DOCUMENT_KEY_PERSONAL_RETRIEVAL, ServiceOrigin(service, block, public), KEY_ID
    )


async def test_the_pending_requests_are_confirmed(
    world: tuple[ContractOrigins, Address, DevChain, ChainClient],
) -> None:
    origins, service, dev, _ = world
    block = head(dev)
    assert await origins.verify(generation(service, block)) is None
    assert await origins.verify(personal(service, block)) is None


async def test_anything_else_is_refused_with_its_reason(
    world: tuple[ContractOrigins, Address, DevChain, ChainClient],
) -> None:
    origins, service, dev, _ = world
    block = head(dev)
    other = KeyPair.generate(SeededRng(b"other"))
    cases = {
        "another author": generation(service, block, author=other.address),
        "another threshold": generation(service, block, threshold=1),
        "another requester": personal(service, block, public=other.node_id),
        "another key": replace(generation(service, block), key_id=ServerKeyId(b"\x62" * 32)),
        "a contract not served": generation(Address(b"\x01" * 20), block),
        "a block not on the chain": generation(
            service, BlockRef(block.number, Hash256(b"\x09" * 32))
        ),
        "a block before the request": generation(
            service, BlockRef(1, Hash256(bytes(dev.w3.eth.get_block(1)["hash"])))
        ),
    }
    problems = {what: await origins.verify(claim) for what, claim in cases.items()}
    assert all(problem is not None for problem in problems.values()), problems
    assert "not a srv_gen service contract" in str(problems["a contract not served"])
    assert "not on this node's chain" in str(problems["a block not on the chain"])
    assert "blocks below" in str(problems["a block before the request"])
    assert "not pending" in str(problems["another author"])


async def test_an_answered_request_is_not_pending_any_more(
    world: tuple[ContractOrigins, Address, DevChain, ChainClient],
) -> None:
    origins, service, dev, _ = world
    dev.transact(service, abi.SERVER_KEY_GENERATED, KEY_ID, b"\x05" * 64, sender=NODE.address)
    assert await origins.verify(generation(service, head(dev))) == "it is not pending there"
