"""Real node processes on a real dev chain (anvil, a block a second): the registry, the ACL
contract and the key server set contract, as Parity's users ran them.

One module-scoped deployment: anvil with a state file, our Registry, OwnedPermissions and
OwnedKeyServerSetWithMigration holding 3 of 4 node processes, every node configured with
"registry" for both contracts and Parity's defaults otherwise (auto-migration on). Each node's
`nodes` option lists only itself: the cluster comes from the contract.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from secretstore.chain import abi
from secretstore.chain.devchain import (
    ADD_KEY_SERVER,
    GRANT,
    REVOKE,
    Anvil,
    Deployment,
    DevChain,
    deploy_secret_store,
)
from secretstore.crypto.keys import KeyPair, sign_recoverable
from secretstore.crypto.rng import SeededRng
from tests.e2e.cluster import LocalCluster, NodeProcess, http, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.chain]

ALICE = KeyPair.generate(SeededRng(b"chain e2e alice"))
NO_TRUST = "no trusted blockchain client"


@dataclass
class ChainWorld:
    anvil: Anvil
    dev: DevChain
    deployment: Deployment
    cluster: LocalCluster

    @property
    def members(self) -> list[NodeProcess]:
        return self.cluster.nodes[:3]

    @property
    def outsider(self) -> NodeProcess:
        return self.cluster.nodes[3]

    def mined(self, receipt: dict[str, object]) -> int:
        return int(receipt["blockNumber"])  # type: ignore[call-overload]

    def seen_by_all(self, block: int, timeout: float = 15.0) -> None:
        """Until every member's chain client has seen `block`."""

        def seen() -> bool:
            for node in self.members:
                health = node.health()
                if health is None or (health["chain"]["block"] or -1) < block:
                    return False
            return True

        wait_until(seen, timeout, f"block {block} on every node", self.cluster.logs())


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChainWorld]:
    root = tmp_path_factory.mktemp("chain-e2e")
    # deployed with a block per transaction (fast), then a block a second, as a chain runs
    anvil = Anvil(block_time=None, state=root / "chain.json", log=root / "anvil.log").start()
    cluster = LocalCluster(root / "cluster", 4, seed=11)
    try:
        dev = DevChain(anvil.url)
        members = [(node.node_id, f"127.0.0.1:{node.mesh_port}") for node in cluster.nodes[:3]]
        deployment = deploy_secret_store(dev, members)
        dev.mine_every(1)
        anvil.block_time = 1  # and so after a restart
        options = {
            "acl_contract": "registry",
            "server_set_contract": "registry",
            "chain_rpc_url": anvil.url,
            "registry_address": "0x" + deployment.registry.hex(),
            "chain_poll_interval": 0.2,
            "chain_confirmations": 1,
            "chain_migration_delay": 2,
            "chain_retry_interval": 5,
        }
        for node in cluster.nodes:
            node.write_config([node.address], options)  # only itself: the set is on chain
        cluster.start()
        yield ChainWorld(anvil, dev, deployment, cluster)
    finally:
        cluster.kill_all()
        anvil.stop()


def test_the_contracts_three_nodes_form_the_cluster(world: ChainWorld) -> None:
    world.cluster.wait_ready(timeout=60, nodes=world.members)
    for node in world.members:
        health = node.health()
        assert health is not None
        assert health["cluster_size"] == 3 and health["chain"]["trusted"] is True
    outsider = world.outsider.health()
    assert outsider is not None and outsider["isolated"] is True
    assert outsider["connected"] == [] and outsider["ready"] is False


def test_grant_and_revoke_decide_retrieval_from_the_next_block(world: ChainWorld) -> None:
    world.cluster.wait_ready(timeout=60, nodes=world.members)
    key_id = bytes(range(32))
    signature = sign_recoverable(ALICE.secret, key_id).hex()
    first, second, third = world.members
    status, encrypted = http("POST", f"{first.url}/{key_id.hex()}/{signature}/1")
    assert status == 200, encrypted  # generation and store need no permission (as Parity)
    status, body = http("GET", f"{second.url}/{key_id.hex()}/{signature}")
    assert (status, body) == (403, '"Access denied"')

    granted = world.mined(world.dev.transact(world.deployment.acl, GRANT, ALICE.address, key_id))
    world.seen_by_all(granted)
    for node in world.members:  # no waiting: the first session pinned at that block allows
        status, body = http("GET", f"{node.url}/{key_id.hex()}/{signature}")
        assert status == 200, (node.name, body)
    assert any(
        "access allowed" in node.log_text() and f"#{granted}" in node.log_text()
        for node in world.members
    )

    revoked = world.mined(world.dev.transact(world.deployment.acl, REVOKE, ALICE.address, key_id))
    world.seen_by_all(revoked)
    for node in world.members:
        status, body = http("GET", f"{node.url}/{key_id.hex()}/{signature}")
        assert (status, body) == (403, '"Access denied"'), node.name
    third.wait_for_log("access denied for 0x" + ALICE.address.hex())


def test_a_stopped_chain_gives_clear_errors_then_the_node_recovers(world: ChainWorld) -> None:
    world.cluster.wait_ready(timeout=60, nodes=world.members)
    key_id = bytes(range(1, 33))
    signature = sign_recoverable(ALICE.secret, key_id).hex()
    first, second, _ = world.members
    assert http("POST", f"{first.url}/{key_id.hex()}/{signature}/1")[0] == 200
    granted = world.mined(world.dev.transact(world.deployment.acl, GRANT, ALICE.address, key_id))
    world.seen_by_all(granted)
    assert http("GET", f"{second.url}/{key_id.hex()}/{signature}")[0] == 200

    world.anvil.stop()
    try:
        _while_the_chain_is_down(world, second, f"{second.url}/{key_id.hex()}/{signature}")
    finally:
        world.anvil.start()  # the same port and state
    wait_until(
        lambda: all((n.health() or {}).get("chain", {}).get("trusted") for n in world.members),
        20,
        "every node to trust the chain again",
        world.cluster.logs(),
    )
    world.seen_by_all(world.dev.block_number)
    status, body = http("GET", f"{second.url}/{key_id.hex()}/{signature}")
    assert status == 200, body


def _while_the_chain_is_down(world: ChainWorld, node: NodeProcess, url: str) -> None:
    """What the nodes say while the chain is stopped (`url`: a retrieval that needs the ACL)."""
    wait_until(
        lambda: all(not (n.health() or {}).get("chain", {}).get("trusted") for n in world.members),
        15,
        "every node to notice the chain is gone",
        world.cluster.logs(),
    )
    health = node.health()
    assert health is not None and "does not answer" in health["chain"]["problem"]
    started = time.monotonic()
    status, body = http("GET", url)
    assert (status, body) == (500, f'"Internal error: {NO_TRUST}"')
    assert time.monotonic() - started < 5  # at once, no hang
    node.wait_for_log("without trusted blockchain client")
    # the cluster itself stays up (the last key server set is kept)
    assert all((n.health() or {}).get("ready") for n in world.members)


def test_a_fourth_node_in_the_contract_asks_for_a_migration_this_version_refuses(
    world: ChainWorld,
) -> None:
    """Adding a server moves the contract's new set; with auto-migration on, the chosen
    master would start the migration and run the node set change session. This version has
    no such session: the master says so, starts no migration on chain, and the three keep
    serving."""
    world.cluster.wait_ready(timeout=60, nodes=world.members)
    outsider = world.outsider
    world.dev.transact(
        world.deployment.server_set,
        ADD_KEY_SERVER,
        outsider.node_id,
        f"127.0.0.1:{outsider.mesh_port}",
    )
    master = min(world.members, key=lambda n: n.node_id)
    master.wait_for_log("cannot run the node set change session", timeout=20)
    migration = world.dev.call(world.deployment.server_set, abi.GET_MIGRATION_KEY_SERVERS)
    assert list(migration) == []
    for node in world.members:
        health = node.health()
        assert health is not None and health["cluster_size"] == 3


def test_the_deployment_is_what_the_registry_says(world: ChainWorld) -> None:
    registry = world.deployment.registry
    for entry, address in (
        (abi.ACL_ENTRY, world.deployment.acl),
        (abi.SERVER_SET_ENTRY, world.deployment.server_set),
    ):
        name = abi.registry_name(entry)
        assert world.dev.call(registry, abi.GET_ADDRESS, name, abi.REGISTRY_KEY) == address
    for node in world.members:
        text = node.log_text()
        assert (
            f"registry entry secretstore_acl_checker: contract at 0x{world.deployment.acl.hex()}"
            in text
        )
