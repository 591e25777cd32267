"""The service contracts, end to end: real node processes on a real dev chain (anvil, a block a
second), and clients that use only the contracts' ClientApis through web3.py, as a Parity
Secret Store user without HTTP access to the key servers did.

One module-scoped deployment: anvil, the registry, OwnedPermissions, the migrating key server
set holding 3 nodes, and the four service contracts (each found through its registry entry by
the nodes); the nodes read the confirmed block 1 below the latest and retry every 5 blocks.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from secretstore.chain.devchain import (
    GRANT,
    Anvil,
    Deployment,
    DevChain,
    deploy_secret_store,
    deploy_services,
)
from secretstore.chain.services.client import ServiceClient
from secretstore.chain.services.owner import range_owner
from secretstore.client import jsonrpc
from secretstore.crypto.curve import Point
from secretstore.crypto.keys import KeyPair
from secretstore.crypto.rng import SeededRng
from secretstore.keystore import Keystore
from secretstore.types import Address
from tests.e2e.cluster import LocalCluster, NodeProcess, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.chain]

PASSWORD = "services e2e"


@dataclass
class World:
    anvil: Anvil
    dev: DevChain
    deployment: Deployment
    services: dict[str, Address]
    cluster: LocalCluster
    keystore: Keystore

    def client(self, name: str) -> ServiceClient:
        key = KeyPair.generate(SeededRng(f"services e2e {name}".encode()))
        self.dev.fund(key.address)
        if not self.keystore.has_account(key.address):
            self.keystore.import_secret(key.secret, PASSWORD)
        return ServiceClient(
            self.anvil.url,
            key,
            generation=self.services["secretstore_service_srv_gen"],
            retrieval=self.services["secretstore_service_srv_retr"],
            store=self.services["secretstore_service_doc_store"],
            shadow_retrieval=self.services["secretstore_service_doc_sretr"],
        )

    def rpc(self, method: str, *params: object) -> dict[str, object]:
        """One of Parity's secretstore_* JSON-RPC helpers, over this keystore."""
        body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)})
        answer = json.loads(
            jsonrpc.handle_body(body, self.keystore, SeededRng(method.encode())) or ""
        )
        assert "result" in answer, answer
        return answer["result"]  # type: ignore[no-any-return]

    def grant(self, client: ServiceClient, key_id: bytes) -> None:
        self.dev.transact(self.deployment.acl, GRANT, client.key.address, key_id)

    def generate(self, client: ServiceClient, key_id: bytes, threshold: int = 1) -> Point:
        sent = client.generate_server_key(key_id, threshold)
        event = client.generated(key_id, sent.block)
        assert event.name == "ServerKeyGenerated", self.cluster.logs()
        return Point.from_bytes(bytes(event.args["serverKeyPublic"]))

    def store(self, client: ServiceClient, key_id: bytes, public: Point) -> str:
        """A document key made with secretstore_generateDocumentKey, stored through the
        contract; its encrypted key (for the requester's own checks)."""
        generated = self.rpc(
            "secretstore_generateDocumentKey",
            "0x" + client.key.address.hex(),
            PASSWORD,
            "0x" + public.to_bytes().hex(),
        )
        sent = client.store_document_key(
            key_id,
            bytes.fromhex(str(generated["common_point"])[2:]),
            bytes.fromhex(str(generated["encrypted_point"])[2:]),
        )
        event = client.stored(key_id, sent.block)
        assert event.name == "DocumentKeyStored", self.cluster.logs()
        return str(generated["encrypted_key"])


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    root = tmp_path_factory.mktemp("services-e2e")
    anvil = Anvil(block_time=None, state=root / "chain.json", log=root / "anvil.log").start()
    cluster = LocalCluster(root / "cluster", 3, seed=21)
    try:
        dev = DevChain(anvil.url)
        members = [(node.node_id, f"127.0.0.1:{node.mesh_port}") for node in cluster.nodes]
        deployment = deploy_secret_store(dev, members)
        services = deploy_services(dev, deployment.registry, deployment.server_set, max_requests=32)
        dev.mine_every(1)
        anvil.block_time = 1
        options = {
            "acl_contract": "registry",
            "server_set_contract": "registry",
            "service_contract_srv_gen": "registry",
            "service_contract_srv_retr": "registry",
            "service_contract_doc_store": "registry",
            "service_contract_doc_sretr": "registry",
            "chain_rpc_url": anvil.url,
            "registry_address": "0x" + deployment.registry.hex(),
            "chain_poll_interval": 0.2,
            "chain_confirmations": 1,
            "chain_retry_interval": 5,
        }
        for node in cluster.nodes:
            node.write_config([node.address], options)
        cluster.start()
        cluster.wait_ready(timeout=60)
        keystore = Keystore(root / "keys", kdf="scrypt", iterations=2**10)
        yield World(anvil, dev, deployment, services, cluster, keystore)
    finally:
        cluster.kill_all()
        anvil.stop()


def test_every_service_through_the_contracts(world: World) -> None:
    alice = world.client("alice")
    key_id = b"\x71" * 32
    public = world.generate(alice, key_id)

    sent = alice.retrieve_server_key(key_id)
    event = alice.retrieved(key_id, sent.block)
    assert event.name == "ServerKeyRetrieved"
    assert bytes(event.args["serverKeyPublic"]) == public.to_bytes()

    encrypted_key = world.store(alice, key_id, public)
    document = b"a document for the chain's clients"
    encrypted = world.rpc(
        "secretstore_encrypt",
        "0x" + alice.key.address.hex(),
        PASSWORD,
        encrypted_key,
        "0x" + document.hex(),
    )

    world.grant(alice, key_id)
    sent = alice.retrieve_document_key_shadow(key_id)
    common, personal = alice.shadow_retrieved(key_id, sent.block)
    assert common.name == "DocumentKeyCommonRetrieved", world.cluster.logs()
    assert int(common.args["threshold"]) == 1 and len(personal) == 2
    decrypted = world.rpc(
        "secretstore_shadowDecrypt",
        "0x" + alice.key.address.hex(),
        PASSWORD,
        "0x" + bytes(personal[0].args["decryptedSecret"]).hex(),
        "0x" + bytes(common.args["commonPoint"]).hex(),
        ["0x" + bytes(e.args["shadow"]).hex() for e in personal],
        encrypted,
    )
    assert bytes.fromhex(str(decrypted)[2:]) == document
    # every node answered each request itself, signing with its own key
    for node in world.cluster.nodes:
        text = node.log_text()
        for what in (
            "server key retrieval",
            "document key store",
            "shadow retrieval (common part)",
        ):
            assert f"answered {what} of key 0x{key_id.hex()}" in text, (node.name, what)


def test_a_requester_the_acl_denies_gets_the_error_event(world: World) -> None:
    alice, mallory = world.client("alice"), world.client("mallory")
    key_id = b"\x72" * 32
    public = world.generate(alice, key_id)
    world.store(alice, key_id, public)
    sent = mallory.retrieve_document_key_shadow(key_id)  # no grant
    event, personal = mallory.shadow_retrieved(key_id, sent.block)
    assert event.name == "DocumentKeyShadowRetrievalError" and personal == []
    assert any("access denied" in node.log_text() for node in world.cluster.nodes)


def _answers(node: NodeProcess, what: str, key_id: bytes) -> int:
    return node.log_text().count(f"answered {what} of key 0x{key_id.hex()}")


def test_a_node_restarted_while_requests_are_pending_answers_each_once(world: World) -> None:
    alice = world.client("alice")
    store_key, generation_key = b"\x73" * 32, b"\x74" * 32
    public = world.generate(alice, store_key)
    down = world.cluster.nodes[2]
    down.terminate()
    # a store (every node must store) and a generation (every node takes part) while it is down
    generated = world.rpc(
        "secretstore_generateDocumentKey",
        "0x" + alice.key.address.hex(),
        PASSWORD,
        "0x" + public.to_bytes().hex(),
    )
    stored = alice.store_document_key(
        store_key,
        bytes.fromhex(str(generated["common_point"])[2:]),
        bytes.fromhex(str(generated["encrypted_point"])[2:]),
    )
    generation = alice.generate_server_key(generation_key, 1)
    wait_until(
        lambda: world.dev.block_number > max(stored.block, generation.block) + 3,
        30,
        "a few blocks with the node down",
    )
    assert alice.events(alice.store, ("DocumentKeyStored",), store_key, stored.block) == []
    owner_failed = f"server key generation of key 0x{generation_key.hex()} on"
    assert any(
        owner_failed in node.log_text() and "tried again within 5 blocks" in node.log_text()
        for node in world.cluster.nodes[:2]
    ), world.cluster.logs()  # the range owner could not generate without every node
    down.start()
    world.cluster.wait_ready(timeout=60)
    assert alice.stored(store_key, stored.block).name == "DocumentKeyStored"
    assert alice.generated(generation_key, generation.block).name == "ServerKeyGenerated"
    down.wait_for_log("resuming its logs after block")
    # answered once: one event each, one answer of each node
    assert (
        len(
            alice.events(
                alice.store, ("DocumentKeyStored", "DocumentKeyStoreError"), store_key, stored.block
            )
        )
        == 1
    )
    names = ("ServerKeyGenerated", "ServerKeyGenerationError")
    assert len(alice.events(alice.generation, names, generation_key, generation.block)) == 1
    for node in world.cluster.nodes:  # (a node logs its answer once it saw the receipt)
        for what, key_id in (
            ("document key store", store_key),
            ("server key generation", generation_key),
        ):
            wait_until(lambda: _answers(node, what, key_id), 10, f"{node.name}: {what}")  # noqa: B023
            assert _answers(node, what, key_id) == 1, (node.name, what)


def test_a_shadow_retrieval_whose_range_owner_is_down_is_served_once_after_its_restart(
    world: World,
) -> None:
    alice = world.client("alice")
    key_id = b"\x75" * 32
    public = world.generate(alice, key_id)
    encrypted_key = world.store(alice, key_id, public)
    document = b"asked for while its range owner was down"
    encrypted = world.rpc(
        "secretstore_encrypt",
        "0x" + alice.key.address.hex(),
        PASSWORD,
        encrypted_key,
        "0x" + document.hex(),
    )
    world.grant(alice, key_id)
    owner = range_owner([node.node_id for node in world.cluster.nodes], key_id)
    down = next(node for node in world.cluster.nodes if node.node_id == owner)
    down.terminate()
    sent = alice.retrieve_document_key_shadow(key_id)
    # the two others answer the common part (more than half); the personal part waits for
    # the range owner, which alone starts it
    common_names = ("DocumentKeyCommonRetrieved", "DocumentKeyShadowRetrievalError")
    first = alice.wait_for(alice.shadow, common_names, key_id, sent.block, timeout=30)
    assert first[0].name == "DocumentKeyCommonRetrieved", world.cluster.logs()
    wait_until(lambda: world.dev.block_number > first[0].block + 3, 30, "blocks without it")
    personal_names = ("DocumentKeyPersonalRetrieved",)
    assert alice.events(alice.shadow, personal_names, key_id, sent.block) == []
    down.start()
    world.cluster.wait_ready(timeout=60)
    common, personal = alice.shadow_retrieved(key_id, sent.block)
    assert common.name == "DocumentKeyCommonRetrieved" and len(personal) == 2
    decrypted = world.rpc(
        "secretstore_shadowDecrypt",
        "0x" + alice.key.address.hex(),
        PASSWORD,
        "0x" + bytes(personal[0].args["decryptedSecret"]).hex(),
        "0x" + bytes(common.args["commonPoint"]).hex(),
        ["0x" + bytes(e.args["shadow"]).hex() for e in personal],
        encrypted,
    )
    assert bytes.fromhex(str(decrypted)[2:]) == document
    wait_until(lambda: world.dev.block_number > common.block + 6, 30, "a retry interval")
    # answered once: one common event, t + 1 personal ones, no node answered a part twice
    assert len(alice.events(alice.shadow, common_names, key_id, sent.block)) == 1
    assert len(alice.events(alice.shadow, personal_names, key_id, sent.block)) == 2
    for node in world.cluster.nodes:
        for what in ("shadow retrieval (common part)", "shadow retrieval (personal part)"):
            assert _answers(node, what, key_id) <= 1, (node.name, what)


def test_twenty_concurrent_requests(world: World) -> None:
    clients = [world.client(f"crowd {i}") for i in range(4)]
    keys = [bytes([0x80 + i]) * 32 for i in range(20)]
    sent: dict[bytes, int] = {}
    errors: list[BaseException] = []

    def ask(client: ServiceClient, mine: list[bytes]) -> None:
        try:
            for key_id in mine:
                sent[key_id] = client.generate_server_key(key_id, 1).block
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [
        threading.Thread(target=ask, args=(client, keys[i::4])) for i, client in enumerate(clients)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors, errors
    for i, key_id in enumerate(keys):
        event = clients[i % 4].generated(key_id, sent[key_id], timeout=90)
        assert event.name == "ServerKeyGenerated", (key_id.hex(), world.cluster.logs())
