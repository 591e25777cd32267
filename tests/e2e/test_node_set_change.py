"""The node set change end to end: real node processes, real LevelDB, the admin HTTP route.

One cluster evolves through the module's tests, in order: 3 nodes with 50 server keys and
stored document keys; a Parity-client-style call with the same set (a no-op, 200 and an empty
body); refused changes (bad signatures, nodes that are not connected, an empty set); 3 → 5
nodes with client requests refused during the change and a node frozen, then killed (kill -9)
mid-change, then the same change again; 5 → 4 (the removed node holds no key); a dead node
replaced by a new one. After every change each key is retrieved (plain and shadow) and signed
(Schnorr; ECDSA for some keys) through every node of the new set, the new ones included.
"""

from __future__ import annotations

import asyncio
import json
import signal
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest
from yarl import URL

from secretstore.client.http_client import KeyServerClient, requester_signature
from secretstore.crypto.curve import Point
from secretstore.crypto.hashing import keccak256
from secretstore.crypto.keys import KeyPair, recover_public, servers_set_hash, sign_recoverable
from secretstore.crypto.rng import SeededRng
from secretstore.crypto.schnorr import SchnorrSignature, verify_schnorr_signature
from secretstore.storage.leveldb import LevelDbKeyStorage
from secretstore.types import NodeId
from tests.e2e.cluster import LocalCluster, NodeProcess, http, wait_until
from tests.e2e.conftest import ClusterFactory

pytestmark = pytest.mark.e2e

ADMIN = KeyPair.generate(SeededRng(b"e2e node set change admin"))
ALICE = KeyPair.generate(SeededRng(b"e2e node set change alice"))
INTRUDER = KeyPair.generate(SeededRng(b"e2e node set change intruder"))
KEYS = 50
THRESHOLD = 1
MESSAGE = keccak256(b"sign me after the change")
#: one key at a time: a change of 50 keys lasts long enough to act in the middle of it
OPTIONS = {
    "admin_public": ADMIN.public.to_bytes().hex(),
    "disable_auto_migrate": True,  # Parity's rule: an administrator key needs it
    "node_set_change_keys_in_flight": 1,
}
CONCURRENCY = 12
#: a key whose generation is asked for during a change
LATE_KEY = keccak256(b"node set change: generated after the change")


def key_id(index: int) -> bytes:
    return keccak256(b"node set change key %d" % index)


@dataclass
class World:
    """The evolving cluster: `cluster.nodes` has room for six; `members` is the node set."""

    cluster: LocalCluster
    members: list[NodeProcess]
    document_keys: dict[bytes, Point] = field(default_factory=dict)

    def configure(self, members: Sequence[NodeProcess]) -> None:
        """Write every member's config with `members` as the node set; running members
        re-read it (SIGHUP)."""
        self.members = list(members)
        addresses = [node.address for node in self.members]
        for node in self.members:
            node.write_config(addresses, OPTIONS)
            if node.running:
                assert node.process is not None
                node.process.send_signal(signal.SIGHUP)

    def wait_ready(self) -> None:
        size = len(self.members)

        def ready() -> bool:
            for node in self.members:
                health = node.health()
                if health is None or health["cluster_size"] != size or not health["ready"]:
                    return False
            return True

        wait_until(ready, 30.0, f"{size} nodes to be ready", self.cluster.logs)

    def node(self, index: int) -> NodeProcess:
        return self.cluster.nodes[index]


@pytest.fixture(scope="module")
def world(make_module_cluster: ClusterFactory) -> Iterator[World]:
    cluster = make_module_cluster(6, seed=900)
    world = World(cluster, [])
    world.configure(cluster.nodes[:3])
    for node in world.members:
        node.start()
    world.wait_ready()
    yield world
    cluster.kill_all()


# --- helpers -----------------------------------------------------------------------------------


def set_signature(nodes: Sequence[NodeProcess] | Sequence[NodeId], admin: KeyPair = ADMIN) -> str:
    ids = [n.node_id if isinstance(n, NodeProcess) else n for n in nodes]
    return sign_recoverable(admin.secret, servers_set_hash(ids)).hex()


async def change(
    session: aiohttp.ClientSession,
    master: NodeProcess,
    new_set: Sequence[NodeProcess],
    *,
    old_set: Sequence[NodeProcess] | None = None,
    admin: KeyPair = ADMIN,
    body: Any = None,
) -> tuple[int, bytes]:
    """POST /admin/servers_set_change as Parity's clients send it."""
    old = old_set if old_set is not None else new_set
    path = f"/admin/servers_set_change/{set_signature(old, admin)}/{set_signature(new_set, admin)}"
    payload = body if body is not None else ["0x" + n.node_id.hex() for n in new_set]
    async with session.post(
        URL(master.url + path, encoded=True), data=json.dumps(payload).encode()
    ) as response:
        return response.status, await response.read()


def error_text(body: bytes) -> str:
    text = json.loads(body)
    assert isinstance(text, str)
    return text


async def check_every_key(world: World, ecdsa_keys: int = 3) -> None:
    """Every key retrieved (plain and shadow) and Schnorr-signed through every member; some
    keys also ECDSA-signed through every member."""
    limit = asyncio.Semaphore(CONCURRENCY)
    async with aiohttp.ClientSession() as session:
        clients = {node.name: KeyServerClient(node.url, session) for node in world.members}

        async def one(node: NodeProcess, index: int) -> None:
            key = key_id(index)
            client = clients[node.name]
            async with limit:
                plain = await client.retrieve_document_key(key, ALICE)
                shadow = await client.retrieve_document_key_shadow(key, ALICE)
                c, s = await client.sign_schnorr(key, ALICE, MESSAGE)
                ecdsa = await client.sign_ecdsa(key, ALICE, MESSAGE) if index < ecdsa_keys else None
            expected = world.document_keys[key]
            assert plain == expected, (node.name, index)
            assert shadow == expected, (node.name, index)
            public = public_of(index)
            assert verify_schnorr_signature(public, SchnorrSignature(c, s), MESSAGE)
            if ecdsa is not None:
                assert recover_public(ecdsa, MESSAGE) == public

        await asyncio.gather(*(one(node, i) for node in world.members for i in range(KEYS)))


_PUBLICS: dict[int, Point] = {}


def public_of(index: int) -> Point:
    return _PUBLICS[index]


# --- the story -----------------------------------------------------------------------------------


async def test_fifty_keys_on_three_nodes(world: World) -> None:
    limit = asyncio.Semaphore(CONCURRENCY)
    async with aiohttp.ClientSession() as session:

        async def make(index: int) -> None:
            client = KeyServerClient(world.members[index % 3].url, session)
            async with limit:
                key = key_id(index)
                world.document_keys[key] = await client.create_document_key(key, ALICE, THRESHOLD)
                _PUBLICS[index] = await client.retrieve_server_key(key, ALICE)

        await asyncio.gather(*(make(i) for i in range(KEYS)))
    assert len(world.document_keys) == KEYS


async def test_a_parity_client_style_call_with_the_same_set_answers_200_empty(
    world: World,
) -> None:
    # what a Parity client does: the set from the node, its hash signed raw, the same set twice
    health = world.members[0].health()
    assert health is not None
    ids = [NodeId(bytes.fromhex(h[2:])) for h in [health["node_id"], *health["connected"]]]
    signature = set_signature(ids)
    async with aiohttp.ClientSession() as session:
        url = f"{world.members[0].url}/admin/servers_set_change/{signature}/{signature}"
        body = json.dumps(["0x" + node.hex() for node in reversed(ids)])
        async with session.post(URL(url, encoded=True), data=body) as response:
            assert response.status == 200
            assert await response.read() == b""
    after = world.members[0].health()
    assert after is not None and "node_set_change" not in after  # no change is left running
    moving = ("uptime_seconds",)  # the rest is as before
    assert {k: v for k, v in after.items() if k not in moving} == {
        k: v for k, v in health.items() if k not in moving
    }


async def test_bad_changes_are_refused_and_change_nothing(world: World) -> None:
    nodes = world.members
    async with aiohttp.ClientSession() as session:
        status, body = await change(session, nodes[1], nodes, admin=INTRUDER)
        assert (status, error_text(body)) == (403, '"Consensus unreachable"')
        # the old set must be every node the master sees
        status, body = await change(session, nodes[1], nodes, old_set=nodes[:2])
        assert (status, error_text(body)) == (403, '"Consensus unreachable"')
        # a node that is configured but not running is not connected
        status, body = await change(session, nodes[2], [*nodes, world.node(3)])
        assert status == 400 and "not connected" in error_text(body)
        status, body = await change(session, nodes[0], [], old_set=nodes)
        assert status == 400 and "empty" in error_text(body)
    await check_every_key(world, ecdsa_keys=1)


async def test_three_to_five_with_a_node_killed_mid_change_then_a_rerun(world: World) -> None:
    world.configure(world.cluster.nodes[:5])
    for node in world.members[3:]:
        node.start()
    world.wait_ready()
    master, victim = world.members[0], world.members[4]
    async with aiohttp.ClientSession() as session:
        running = asyncio.ensure_future(change(session, master, world.members))

        def moving() -> dict[str, Any] | None:
            health = master.health()
            status = (health or {}).get("node_set_change")
            return status if status and (status["keys_done"] or 0) >= 1 else None

        await asyncio.to_thread(wait_until, moving, 20.0, "keys to move", world.cluster.logs())
        # the victim freezes (every key needs it: the change cannot end without it), then dies
        assert victim.process is not None
        victim.process.send_signal(signal.SIGSTOP)
        # a client request meanwhile is refused with Parity's error, and nothing is lost
        status, text = await refused_request(session, world.members[1])
        assert (status, text) == (500, '"Exclusive session active"')
        status, text = await refused_generation(session, world.members[2])
        assert (status, text) == (500, '"Exclusive session active"')
        victim.kill()
        status, body = await asyncio.wait_for(running, 30.0)
        assert status == 500, body
        assert error_text(body) == '"node required for this operation is currently disconnected"'
    assert "disconnected during the node set change" in master.log_text()
    # the node comes back; the same change finishes the job
    victim.start()
    world.wait_ready()
    async with aiohttp.ClientSession() as session:
        started = time.monotonic()
        assert await change(session, world.members[2], world.members) == (200, b"")
        took = time.monotonic() - started
    assert "keys on the new set" in world.members[2].log_text()
    await check_every_key(world)
    # the generation refused during the change left nothing behind: it succeeds now
    async with aiohttp.ClientSession() as session:
        client = KeyServerClient(world.members[2].url, session)
        public = await client.generate_server_key(LATE_KEY, ALICE, THRESHOLD)
        assert (
            await KeyServerClient(world.members[4].url, session).retrieve_server_key(
                LATE_KEY, ALICE
            )
            == public
        )
    print(f"3 -> 5 re-run: {took:.2f} s")


async def refused_request(session: aiohttp.ClientSession, node: NodeProcess) -> tuple[int, str]:
    key = key_id(7)
    signature = requester_signature(ALICE, key).hex()
    async with session.get(URL(f"{node.url}/{key.hex()}/{signature}", encoded=True)) as response:
        return response.status, error_text(await response.read())


async def refused_generation(session: aiohttp.ClientSession, node: NodeProcess) -> tuple[int, str]:
    signature = requester_signature(ALICE, LATE_KEY).hex()
    url = f"{node.url}/shadow/{LATE_KEY.hex()}/{signature}/{THRESHOLD}"
    async with session.post(URL(url, encoded=True)) as response:
        return response.status, error_text(await response.read())


async def test_five_to_four_the_removed_node_holds_no_key(world: World) -> None:
    leaving = world.members[1]  # one of the first three
    staying = [node for node in world.members if node is not leaving]
    async with aiohttp.ClientSession() as session:
        # a new node is the master; the old set is all five
        status, body = await change(session, staying[-1], staying, old_set=world.members)
        assert (status, body) == (200, b"")
    assert "keys erased" in leaving.log_text()
    leaving.terminate()
    with LevelDbKeyStorage(leaving.directory / "db") as storage:
        assert list(storage.ids()) == []
    world.configure(staying)
    world.wait_ready()
    await check_every_key(world)


async def test_a_dead_node_is_replaced_and_its_replacement_gets_shares(world: World) -> None:
    dead = world.members[0]
    dead.kill()
    replacement = world.node(5)
    members = [node for node in world.members if node is not dead] + [replacement]
    world.configure(members)  # the dead node is now configured nowhere: isolated
    replacement.start()
    world.wait_ready()
    async with aiohttp.ClientSession() as session:
        # a key whose newest version lists the dead node is still served before the change
        status, _ = await refused_request(session, replacement)
        assert status == 200  # the replacement holds nothing: a holder serves it (delegation)
        # the client wants every release's receipts: the holder that served each one relays
        # them, and the replacement hands them on as if it had collected them
        holders = [node.node_id for node in members if node is not replacement]
        client = KeyServerClient(
            replacement.url, session, nodes=[*holders, replacement.node_id], require_receipts=True
        )
        key = key_id(3)  # a shadow retrieval, its proofs relayed and checked by the client
        shadow = await client.retrieve_document_key_shadow_released(key, ALICE)
        assert shadow.value == world.document_keys[key]
        signed = await client.sign_schnorr_released(key, ALICE, MESSAGE)
        c, s = signed.value
        assert verify_schnorr_signature(public_of(3), SchnorrSignature(c, s), MESSAGE)
        for released in (shadow, signed):
            assert released.receipts is not None
            facts = released.receipts.facts
            assert facts.master != replacement.node_id and facts.master in holders
            assert replacement.node_id not in facts.participants
        assert await change(session, members[0], members) == (200, b"")
    await check_every_key(world)
    health = replacement.health()
    assert health is not None and "node_set_change" not in health
    # the replacement answers from its own shares now
    replacement.terminate()
    with LevelDbKeyStorage(replacement.directory / "db") as storage:
        assert len(list(storage.ids())) == KEYS + 1  # the one generated after the first change
    replacement.start()
    world.wait_ready()


def test_http_of_the_removed_and_dead_nodes_is_gone(world: World) -> None:
    # the cluster still answers as four nodes; the dead node stays dead, the removed one down
    for node in world.members:
        status, body = http("GET", f"{node.url}/health")
        assert status == 200 and body["cluster_size"] == 4
