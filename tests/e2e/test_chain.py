"""Real node processes on a real dev chain (anvil, a block a second): the registry, the ACL
contract and the key server set contract, as Parity's users ran them.

One module-scoped deployment: anvil with a state file, our Registry, OwnedPermissions and
OwnedKeyServerSetWithMigration holding 3 of 4 node processes, every node configured with
"registry" for both contracts and Parity's defaults otherwise (auto-migration on, small block
constants). Each node's `nodes` option lists only itself: the cluster comes from the contract.

The module ends with auto-migration: 20 keys with document keys on the contract's 3 nodes; the
owner adds the 4th (the nodes migrate by themselves, every key then served by all 4), removes
the 1st (it erases its keys), adds it back while a node the change needs freezes and is
killed (the change fails, and completes when the master runs it again after its pause).
"""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import aiohttp
import pytest
from web3 import Web3

from secretstore.audit.chain import verify_log
from secretstore.audit.model import Operation
from secretstore.audit.store import LevelDbAuditStore
from secretstore.chain import abi
from secretstore.chain.devchain import (
    ADD_KEY_SERVER,
    GRANT,
    REMOVE_KEY_SERVER,
    REVOKE,
    Anvil,
    Deployment,
    DevChain,
    deploy_secret_store,
)
from secretstore.client.http_client import KeyServerClient
from secretstore.crypto.curve import Point
from secretstore.crypto.hashing import keccak256
from secretstore.crypto.keys import KeyPair, recover_public, sign_recoverable
from secretstore.crypto.rng import SeededRng
from secretstore.crypto.schnorr import SchnorrSignature, verify_schnorr_signature
from secretstore.storage.leveldb import LevelDbKeyStorage
from tests.e2e.cluster import LocalCluster, NodeProcess, http, metric, scrape, wait_until

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

        wait_until(seen, timeout, f"block {block} on every node", self.cluster.logs)


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
        dev.fund(cluster.nodes[3].key.address)  # added later: it pays for its confirmation
        for index in range(KEYS):  # while a block per transaction: the story's grants
            dev.transact(deployment.acl, GRANT, ALICE.address, story_key(index))
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
    # the outsider is not waited for above: it says so once it has read the set on chain
    outsider = wait_until(
        lambda: (h := world.outsider.health()) is not None and h.get("isolated") is True and h,
        60.0,
        "the outsider to find itself outside the key server set on chain",
        world.cluster.logs,
    )
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
        world.cluster.logs,
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
        world.cluster.logs,
    )
    health = node.health()
    assert health is not None and "does not answer" in health["chain"]["problem"]
    assert metric(scrape(node), "secretstore_chain_trusted") == 0.0  # /metrics says so too
    started = time.monotonic()
    status, body = http("GET", url)
    assert (status, body) == (500, f'"Internal error: {NO_TRUST}"')
    assert time.monotonic() - started < 5  # at once, no hang
    node.wait_for_log("without trusted blockchain client")
    # the cluster itself stays up (the last key server set is kept)
    assert all((n.health() or {}).get("ready") for n in world.members)


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


# --- auto-migration: the contract's set changes, the nodes move the keys by themselves ----------


KEYS = 20
THRESHOLD = 1
MESSAGE = keccak256(b"signed after a migration")
CONCURRENCY = 12
MIGRATION_STARTED = Web3.keccak(text="MigrationStarted()")
MIGRATION_COMPLETED = Web3.keccak(text="MigrationCompleted()")


def story_key(index: int) -> bytes:
    return keccak256(b"auto-migration key %d" % index)


DOCUMENT_KEYS: dict[bytes, Point] = {}
SERVER_KEYS: dict[bytes, Point] = {}


def event_blocks(world: ChainWorld, topic: bytes, since: int) -> list[int]:
    logs = world.dev.w3.eth.get_logs(
        {
            "address": Web3.to_checksum_address("0x" + world.deployment.server_set.hex()),
            "topics": [Web3.to_hex(topic)],
            "fromBlock": since,
        }
    )
    return [int(entry["blockNumber"]) for entry in logs]


def migrate(world: ChainWorld, change: Callable[[], dict[str, object]], members: list[NodeProcess]):  # type: ignore[no-untyped-def]
    """Change the contract's set (`change` sends the owner's transaction) and wait until the
    nodes have migrated to `members`: MigrationCompleted mined, every member serving the new
    set. Returns (blocks, seconds) from the change's block to MigrationCompleted's."""
    started = time.monotonic()
    changed = world.mined(change())
    wanted = {node.key.address for node in members}

    def completed() -> int | None:
        blocks = event_blocks(world, MIGRATION_COMPLETED, changed)
        current = set(world.dev.call(world.deployment.server_set, abi.GET_CURRENT_KEY_SERVERS))
        return blocks[-1] if blocks and current == wanted else None

    done = wait_until(completed, 60, "MigrationCompleted", world.cluster.logs)
    took = time.monotonic() - started
    assert event_blocks(world, MIGRATION_STARTED, changed), "no startMigration was mined"
    size = len(members)

    def serving() -> bool:
        for node in members:
            health = node.health()
            if health is None or health["cluster_size"] != size or not health["ready"]:
                return False
        return True

    wait_until(serving, 30, f"{size} nodes serving", world.cluster.logs)
    return done - changed, took


async def check_every_key(members: list[NodeProcess], ecdsa_keys: int = 2) -> None:
    """Every key retrieved (plain and shadow) and Schnorr-signed through every member."""
    limit = asyncio.Semaphore(CONCURRENCY)
    async with aiohttp.ClientSession() as session:
        clients = {node.name: KeyServerClient(node.url, session) for node in members}

        async def one(node: NodeProcess, index: int) -> None:
            key = story_key(index)
            client = clients[node.name]
            async with limit:
                plain = await client.retrieve_document_key(key, ALICE)
                shadow = await client.retrieve_document_key_shadow(key, ALICE)
                c, s = await client.sign_schnorr(key, ALICE, MESSAGE)
                ecdsa = await client.sign_ecdsa(key, ALICE, MESSAGE) if index < ecdsa_keys else None
            assert plain == DOCUMENT_KEYS[key], (node.name, index)
            assert shadow == DOCUMENT_KEYS[key], (node.name, index)
            public = SERVER_KEYS[key]
            assert verify_schnorr_signature(public, SchnorrSignature(c, s), MESSAGE), node.name
            if ecdsa is not None:
                assert recover_public(ecdsa, MESSAGE) == public

        await asyncio.gather(*(one(node, i) for node in members for i in range(KEYS)))


async def test_twenty_keys_with_document_keys_on_the_contracts_three_nodes(
    world: ChainWorld,
) -> None:
    world.cluster.wait_ready(timeout=60, nodes=world.members)
    limit = asyncio.Semaphore(CONCURRENCY)
    async with aiohttp.ClientSession() as session:

        async def make(index: int) -> None:
            client = KeyServerClient(world.members[index % 3].url, session)
            key = story_key(index)
            async with limit:
                DOCUMENT_KEYS[key] = await client.create_document_key(key, ALICE, THRESHOLD)
                SERVER_KEYS[key] = await client.retrieve_server_key(key, ALICE)

        await asyncio.gather(*(make(i) for i in range(KEYS)))
    assert len(DOCUMENT_KEYS) == KEYS


async def test_a_fourth_node_in_the_contract_auto_migrates(world: ChainWorld) -> None:
    outsider = world.outsider
    everyone = world.cluster.nodes
    blocks, seconds = migrate(
        world,
        lambda: world.dev.transact(
            world.deployment.server_set,
            ADD_KEY_SERVER,
            outsider.node_id,
            f"127.0.0.1:{outsider.mesh_port}",
        ),
        everyone,
    )
    print(f"3 -> 4 nodes: {blocks} blocks, {seconds:.1f} s from addKeyServer to completion")
    master = min(world.members, key=lambda n: n.node_id)
    assert "running the node set change of migration" in master.log_text()
    for node in everyone:  # every migration node confirmed
        assert "sent confirmMigration" in node.log_text(), node.name
    await check_every_key(everyone)


async def test_removing_a_node_auto_migrates_and_the_removed_node_holds_no_key(
    world: ChainWorld,
) -> None:
    leaving = world.cluster.nodes[0]
    staying = world.cluster.nodes[1:]
    confirmed = leaving.log_text().count("sent confirmMigration")
    blocks, seconds = migrate(
        world,
        lambda: world.dev.transact(
            world.deployment.server_set, REMOVE_KEY_SERVER, leaving.key.address
        ),
        staying,
    )
    print(f"4 -> 3 nodes: {blocks} blocks, {seconds:.1f} s from removeKeyServer to completion")
    leaving.wait_for_log("keys erased", timeout=20)
    assert leaving.log_text().count("sent confirmMigration") == confirmed  # not its migration
    health = leaving.health()
    assert health is not None and health["isolated"] is True
    leaving.terminate()
    with LevelDbKeyStorage(leaving.directory / "db") as storage:
        assert list(storage.ids()) == []
        # each erased share has its entry in the node's audit log
        report = verify_log(LevelDbAuditStore(storage).records(), leaving.node_id)
        assert report.ok, report.problems
        deleted = {
            bytes(item.entry.facts.key_id)
            for item in report.entries
            if item.entry.facts.operation is Operation.DELETE
        }
        assert {story_key(i) for i in range(KEYS)} <= deleted
    leaving.start()  # it comes back isolated, with nothing
    await check_every_key(staying, ecdsa_keys=1)


async def test_a_migration_interrupted_by_a_killed_node_completes_after_a_retry(
    world: ChainWorld,
) -> None:
    """The removed node is added back; a node the change needs freezes as soon as the
    migration is on chain, so the change fails when the master loses it; the node is killed
    and started again, and the master runs the change again after its pause."""
    back = world.cluster.nodes[0]
    staying = world.cluster.nodes[1:]
    master, victim = staying[0], staying[1]  # the first of current ∩ new is the master
    since = world.dev.block_number
    world.dev.transact(
        world.deployment.server_set, ADD_KEY_SERVER, back.node_id, f"127.0.0.1:{back.mesh_port}"
    )
    wait_until(lambda: event_blocks(world, MIGRATION_STARTED, since), 30, "startMigration mined")
    assert victim.process is not None
    victim.process.send_signal(signal.SIGSTOP)
    master.wait_for_log(r"the node set change of migration 0x[0-9a-f]+ failed", timeout=30)
    victim.kill()
    victim.start()
    everyone = world.cluster.nodes

    def completed() -> bool:
        current = set(world.dev.call(world.deployment.server_set, abi.GET_CURRENT_KEY_SERVERS))
        return bool(event_blocks(world, MIGRATION_COMPLETED, since)) and current == {
            node.key.address for node in everyone
        }

    wait_until(completed, 60, "the migration completed after a retry", world.cluster.logs)
    tail = master.log_text().split("sent startMigration")[-1]
    assert tail.count("running the node set change of migration") >= 2  # the retry
    wait_until(
        lambda: all((n.health() or {}).get("cluster_size") == 4 and n.is_ready() for n in everyone),
        30,
        "4 nodes serving",
        world.cluster.logs,
    )
    await check_every_key(everyone)
