"""Configs for a chain, on a real anvil: config/chain-node/node.toml runs as it says (the
registry lands at the address the example names when deployed first on a fresh chain, the node
reads its key server set and ACL through it, and serves under the example's cluster policy:
only shadow retrieval, bound requests, access granted and refused by the ACL contract); and
`secretstore configs --deploy-dev-contracts` writes a cluster that runs on the contracts it
deployed (and reuses them when run again)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from secretstore.chain.devchain import GRANT, Anvil, DevChain, deploy_secret_store
from secretstore.cli import configs
from secretstore.client.http_client import KeyServerClient
from secretstore.config.loader import load_config, parse_config
from secretstore.crypto.keys import KeyPair
from secretstore.crypto.rng import SeededRng
from secretstore.errors import AccessDenied, InvalidRequest
from secretstore.node import Node
from tests.e2e.cluster import free_ports, free_ranges

pytestmark = pytest.mark.chain

EXAMPLE = Path(__file__).resolve().parents[3] / "config" / "chain-node" / "node.toml"
REQUESTER = KeyPair.generate(SeededRng(b"chain example requester"))


def replaced(text: str, line: str, new: str) -> str:
    assert text.count(line) == 1, line
    return text.replace(line, new)


async def until(condition: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.05)


async def test_the_chain_node_example_follows_its_registry(tmp_path: Path) -> None:
    original = EXAMPLE.read_text()
    example = parse_config(original, EXAMPLE.parent, source=EXAMPLE).secretstore
    mesh, http = free_ports(2)
    with Anvil(block_time=None) as anvil:
        dev = DevChain(anvil.url)
        entry = (example.key_pair.node_id, f"127.0.0.1:{mesh}")
        deployment = deploy_secret_store(dev, [entry])
        assert deployment.registry == example.registry_address  # as the example says
        dev.mine(example.chain_confirmations + 1)
        # the example itself, on free ports, with its database here and a quicker poll
        text = replaced(original, "port = 12020", f"port = {mesh}")
        text = replaced(text, "http_port = 8092", f"http_port = {http}")
        text = replaced(
            text, 'chain_rpc_url = "http://127.0.0.1:8545"', f'chain_rpc_url = "{anvil.url}"'
        )
        text = replaced(text, "chain_poll_interval = 1.0", "chain_poll_interval = 0.1")
        node = Node(parse_config(text, tmp_path))
        await node.start()
        try:
            await until(lambda: node.health().ready)
            health = node.health()
            assert health.chain is not None and health.chain["trusted"]
            assert health.cluster_size == 1 and not health.isolated
            async with KeyServerClient(f"http://127.0.0.1:{http}", rng=SeededRng(3)) as client:
                key_id = bytes(range(32))
                await client.create_document_key(key_id, REQUESTER, 0)
                with pytest.raises(AccessDenied):  # the ACL contract has granted nothing
                    await client.retrieve_document_key_shadow(key_id, REQUESTER)
                granted = int(
                    dev.transact(deployment.acl, GRANT, REQUESTER.address, key_id)["blockNumber"]
                )
                await until(lambda: (node.health().chain or {}).get("block", 0) >= granted)
                key = await client.retrieve_document_key_shadow(key_id, REQUESTER)
                assert key == await client.retrieve_document_key_shadow(key_id, REQUESTER)
                with pytest.raises(AccessDenied, match="plain document key retrieval"):
                    await client.retrieve_document_key(key_id, REQUESTER)  # shadow only
                # a Parity client's generation, without the bound signature: refused
                parity = KeyServerClient(
                    f"http://127.0.0.1:{http}", rng=SeededRng(4), bound_requests=False
                )
                async with parity:
                    other = bytes(range(1, 33))
                    with pytest.raises(InvalidRequest, match="bound"):
                        await parity.generate_server_key(other, REQUESTER, 0)
        finally:
            await node.stop()


async def test_configs_deploy_dev_contracts_for_a_cluster_that_then_runs_on_them(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    mesh, http = free_ranges(3)  # 3 consecutive ports each
    out = tmp_path / "deploy"
    with Anvil(block_time=None) as anvil:
        argv = ["--out", str(out), "--nodes", "3", "--port", str(mesh), "--http-port", str(http)]
        argv += ["--chain-rpc", anvil.url, "--deploy-dev-contracts"]
        for option in (
            "chain_confirmations=0",
            "chain_poll_interval=0.1",
            "keep_alive_interval=1.0",
        ):
            argv += ["--option", option]
        assert configs.main(argv) == 0
        assert "contracts deployed" in capsys.readouterr().out
        recorded = json.loads((out / "deployment.json").read_text())
        assert configs.main(argv) == 0  # again: the same keys and the same contracts
        assert "(3 keys reused; contracts reused)" in capsys.readouterr().out
        assert json.loads((out / "deployment.json").read_text()) == recorded
        nodes = [Node(load_config(out / f"node{i}" / "node.toml")) for i in (1, 2, 3)]
        try:
            for node in nodes:
                await node.start()
            await until(lambda: all(node.health().ready for node in nodes))
            for node in nodes:
                health = node.health()
                assert health.cluster_size == 3 and health.chain is not None
                assert health.chain["trusted"]
        finally:
            for node in nodes:
                await node.stop()
