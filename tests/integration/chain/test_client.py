"""The async chain client on a real anvil: trust, blocks, pinned calls, signed transactions,
and a chain that goes away and comes back."""

from __future__ import annotations

import asyncio
import itertools
import time

import pytest
from aiohttp import web
from eth_typing import ChecksumAddress
from web3 import Web3

from secretstore.chain import abi
from secretstore.chain.client import BlockUnknown, ChainClient, ContractCallFailed
from secretstore.chain.devchain import GRANT, Anvil, DevChain, free_port
from secretstore.crypto.keys import KeyPair
from secretstore.crypto.rng import SeededRng
from secretstore.errors import ChainUnavailable
from secretstore.types import Address, BlockRef, Hash256

pytestmark = pytest.mark.chain

KEY = KeyPair.generate(SeededRng(b"client"))
KEY_ID = b"\x05" * 32


async def wait_for(condition, timeout: float = 5.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.02)


async def test_it_follows_blocks_and_runs_listeners(anvil: Anvil, dev: DevChain) -> None:
    client = ChainClient(anvil.url, KEY, poll_interval=0.05)
    seen: list[BlockRef] = []

    async def listener(block: BlockRef) -> None:
        seen.append(block)

    client.add_listener(listener)
    await client.start()
    try:
        assert client.trusted and client.problem is None
        start = client.require_trusted()
        dev.mine(3)
        await wait_for(lambda: client.head is not None and client.head.number >= start.number + 3)
        assert seen[0].number == start.number
        assert all(b.number > a.number for a, b in itertools.pairwise(seen))
        assert await client.block_hash(start.number) == start.hash
        assert await client.block_hash(start.number + 10**6) is None
    finally:
        await client.stop()


async def test_a_pinned_call_reads_the_state_of_its_block(anvil: Anvil, dev: DevChain) -> None:
    acl = dev.deploy("OwnedPermissions")
    client = ChainClient(anvil.url, KEY, poll_interval=0.05)
    await client.start()
    try:
        before = client.require_trusted()
        dev.transact(acl, GRANT, KEY.address, KEY_ID)
        client.poll_soon()
        await wait_for(lambda: client.require_trusted().number > before.number)
        after = client.require_trusted()
        check = abi.CHECK_PERMISSIONS
        assert await client.call(acl, check, KEY.address, KEY_ID, block=before) is False
        assert await client.call(acl, check, KEY.address, KEY_ID, block=after) is True
        assert await client.call(acl, check, KEY.address, KEY_ID, block=before.number) is False
        assert await client.call(acl, check, KEY.address, KEY_ID, block="latest") is True
        elsewhere = BlockRef(before.number, Hash256(b"\x13" * 32))  # another chain's block
        with pytest.raises(BlockUnknown):
            await client.call(acl, check, KEY.address, KEY_ID, block=elsewhere)
        with pytest.raises(ContractCallFailed, match="revert"):
            await client.call(acl, GRANT, KEY.address, KEY_ID, block="latest")  # not the owner
        with pytest.raises(ContractCallFailed, match="do not decode"):  # no code: empty answer
            await client.call(NO_CODE, check, KEY.address, KEY_ID, block="latest")
    finally:
        await client.stop()


NO_CODE = Address(bytes.fromhex("00" * 19 + "99"))


async def test_transactions_are_signed_with_the_node_key_one_nonce_each(
    anvil: Anvil, dev: DevChain
) -> None:
    registry = dev.deploy("Registry")
    dev.transact(registry, SET_OWNER, KEY.address)  # the node's account owns the registry
    dev.fund(KEY.address)
    client = ChainClient(anvil.url, KEY, poll_interval=0.05)
    await client.start()
    try:
        names = [abi.registry_name(f"entry-{i}") for i in range(6)]
        hashes = await asyncio.gather(
            *(client.transact(registry, abi.SET_ADDRESS, n, "A", KEY.address) for n in names)
        )
        receipts = [dev.w3.eth.wait_for_transaction_receipt(h, timeout=10) for h in hashes]
        assert all(r["status"] == 1 for r in receipts)
        txs = [dev.w3.eth.get_transaction(h) for h in hashes]
        assert {tx["from"].lower() for tx in txs} == {"0x" + KEY.address.hex()}
        assert sorted(tx["nonce"] for tx in txs) == list(range(len(names)))
        assert all(tx["chainId"] == 31337 for tx in txs)  # EIP-155
        for name in names:
            assert dev.call(registry, abi.GET_ADDRESS, name, "A") == KEY.address
        acl = dev.deploy("OwnedPermissions")  # owned by the dev account, not the node
        sent = dev.w3.eth.get_transaction_count(to_checksum(KEY.address))
        with pytest.raises(ContractCallFailed, match="would revert"):
            await client.transact(acl, GRANT, KEY.address, KEY_ID)
        assert dev.w3.eth.get_transaction_count(to_checksum(KEY.address)) == sent  # none sent
    finally:
        await client.stop()


SET_OWNER = abi.Function("setOwner", ("address",))


def to_checksum(address: bytes) -> ChecksumAddress:
    return Web3.to_checksum_address("0x" + address.hex())


async def test_no_chain_means_clear_errors_and_no_hang() -> None:
    client = ChainClient(f"http://127.0.0.1:{free_port()}", KEY, poll_interval=0.05, timeout=1)
    started = time.monotonic()
    await client.start()
    try:
        assert time.monotonic() - started < 2
        assert not client.trusted
        with pytest.raises(ChainUnavailable, match="without trusted blockchain client"):
            client.require_trusted("the permissioning contract")
        with pytest.raises(ChainUnavailable, match="does not answer"):
            client.require_trusted()
        with pytest.raises(ChainUnavailable):
            await client.call(KEY.address, abi.CHECK_PERMISSIONS, KEY.address, KEY_ID, block=1)
        with pytest.raises(ChainUnavailable):
            await client.transact(KEY.address, abi.START_MIGRATION, KEY_ID)
    finally:
        await client.stop()


async def test_a_chain_that_stops_answering_and_comes_back(tmp_path) -> None:  # type: ignore[no-untyped-def]
    with Anvil(block_time=None) as chain:
        client = ChainClient(chain.url, KEY, poll_interval=0.05, timeout=0.5)
        await client.start()
        try:
            assert client.trusted
            chain.pause()  # the RPC hangs: every poll times out
            await wait_for(lambda: not client.trusted, timeout=5)
            assert "does not answer" in (client.problem or "")
            chain.resume()
            await wait_for(lambda: client.trusted, timeout=5)
            DevChain(chain.url).mine(1)
            before = client.require_trusted().number
            DevChain(chain.url).mine(1)
            await wait_for(lambda: client.require_trusted().number > before)
        finally:
            await client.stop()


async def test_a_syncing_chain_is_not_trusted() -> None:
    """anvil never syncs, so a stand-in JSON-RPC endpoint answers as a syncing node does."""
    answers = {
        "eth_syncing": {"startingBlock": "0x0", "currentBlock": "0x1", "highestBlock": "0x9"},
        "eth_chainId": "0x7a69",
    }

    async def rpc(request: web.Request) -> web.Response:
        body = await request.json()
        return web.json_response(
            {"jsonrpc": "2.0", "id": body["id"], "result": answers[body["method"]]}
        )

    app = web.Application()
    app.router.add_post("/", rpc)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    client = ChainClient(f"http://127.0.0.1:{port}", KEY, poll_interval=60)
    try:
        await client.start()
        assert not client.trusted
        assert client.problem == "the chain is syncing"
        with pytest.raises(ChainUnavailable, match="syncing"):
            client.require_trusted()
    finally:
        await client.stop()
        await runner.cleanup()
