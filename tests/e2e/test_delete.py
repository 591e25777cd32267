"""Threshold delete end to end: five real node processes (t = 2), real LevelDB, the HTTP route.

The author deletes a key through our client: 200 listing every node, then every route of every
node answers 404 for it and the other keys still work; anyone else gets 403, a delete without
the bound signature 400. With two nodes killed (kill -9) the delete still completes, naming
them; when they restart they hear the tombstones and erase, and the key is never usable.
A node killed in the middle of a delete (frozen while it is asked, then killed) is reported
and erases when it returns; a master killed in the middle erases nothing anywhere, and the
delete run again completes.
"""

from __future__ import annotations

import asyncio
import json
import signal
from collections.abc import Iterator

import aiohttp
import pytest
from yarl import URL

from secretstore.client.http_client import (
    KeyServerClient,
    bound_delete_signature,
    requester_signature,
)
from secretstore.crypto.curve import Point
from secretstore.crypto.hashing import keccak256
from secretstore.crypto.keys import KeyPair
from secretstore.crypto.rng import SeededRng
from secretstore.crypto.schnorr import SchnorrSignature, verify_schnorr_signature
from secretstore.errors import AccessDenied, ServerKeyNotFound
from secretstore.storage.leveldb import LevelDbKeyStorage
from tests.e2e.cluster import LocalCluster, NodeProcess, wait_until
from tests.e2e.conftest import ClusterFactory

pytestmark = pytest.mark.e2e

ALICE = KeyPair.generate(SeededRng(b"e2e delete alice"))
MALLORY = KeyPair.generate(SeededRng(b"e2e delete mallory"))
THRESHOLD = 2
MESSAGE = keccak256(b"delete e2e message")
NOT_FOUND = "Server key with this ID is not found"


def key_id(name: str) -> bytes:
    return keccak256(b"delete e2e " + name.encode())


@pytest.fixture(scope="module")
def cluster(make_module_cluster: ClusterFactory) -> Iterator[LocalCluster]:
    cluster = make_module_cluster(5, seed=77)
    cluster.start()
    cluster.wait_ready()
    yield cluster
    cluster.kill_all()


async def create(node: NodeProcess, name: str) -> Point:
    async with KeyServerClient(node.url) as client:
        return await client.create_document_key(key_id(name), ALICE, THRESHOLD)


async def every_route(session: aiohttp.ClientSession, node: NodeProcess, key: bytes) -> list:
    """(status, text) of every route that names `key`, through `node`."""
    signature = requester_signature(ALICE, key).hex()
    k, m = key.hex(), MESSAGE.hex()
    point = ALICE.public.to_bytes().hex()
    calls = [
        ("GET", f"/server/{k}/{signature}"),
        ("GET", f"/{k}/{signature}"),
        ("GET", f"/shadow/{k}/{signature}"),
        ("GET", f"/schnorr/{k}/{signature}/{m}"),
        ("GET", f"/ecdsa/{k}/{signature}/{m}"),
        ("POST", f"/shadow/{k}/{signature}/{point}/{point}"),
    ]
    answers = []
    for method, path in calls:
        async with session.request(method, URL(node.url + path, encoded=True)) as response:
            answers.append((path.split("/")[1], response.status, json.loads(await response.read())))
    return answers


def assert_not_found(answers: list) -> None:
    for route, status, text in answers:
        assert status == 404, (route, status, text)
        assert text == f'"{NOT_FOUND}"', (route, text)


async def assert_usable(node: NodeProcess, name: str, document_key: Point, public: Point) -> None:
    async with KeyServerClient(node.url) as client:
        assert await client.retrieve_document_key_shadow(key_id(name), ALICE) == document_key
        c, s = await client.sign_schnorr(key_id(name), ALICE, MESSAGE)
        assert verify_schnorr_signature(public, SchnorrSignature(c, s), MESSAGE)


def stored(node: NodeProcess, key: bytes) -> tuple[bool, bool]:
    """(share present, tombstone present) in a stopped node's database."""
    assert not node.running
    with LevelDbKeyStorage(node.directory / "db") as storage:
        return storage.contains(key), storage.tombstone(key) is not None


async def test_the_author_deletes_a_key_and_every_route_answers_404(cluster: LocalCluster) -> None:
    nodes = cluster.nodes
    kept_key = await create(nodes[0], "kept")
    async with KeyServerClient(nodes[0].url) as client:
        kept_public = await client.retrieve_server_key(key_id("kept"), ALICE)
    await create(nodes[1], "first")
    key = key_id("first")
    async with KeyServerClient(nodes[2].url) as client:
        with pytest.raises(AccessDenied):
            await client.delete_key(key, MALLORY, server_key_public=ALICE.public)
        deleted = await client.delete_key(key, ALICE)
    assert deleted.key_id == key
    assert set(deleted.confirmed) == {node.node_id for node in nodes}
    assert deleted.unconfirmed == ()
    async with aiohttp.ClientSession() as session:
        for node in nodes:
            assert_not_found(await every_route(session, node, key))
        # a second delete finds nothing to delete
        async with KeyServerClient(nodes[4].url, session) as client:
            with pytest.raises(ServerKeyNotFound):
                await client.delete_key(key, ALICE)
    await assert_usable(nodes[3], "kept", kept_key, kept_public)


async def test_a_delete_without_the_bound_signature_or_by_another_is_refused(
    cluster: LocalCluster,
) -> None:
    nodes = cluster.nodes
    document_key = await create(nodes[0], "refused")
    key = key_id("refused")
    async with KeyServerClient(nodes[0].url) as client:
        public = await client.retrieve_server_key(key, ALICE)
    signature = requester_signature(ALICE, key).hex()
    url = URL(f"{nodes[1].url}/{key.hex()}/{signature}", encoded=True)
    mallory = bound_delete_signature(MALLORY, key, public).hex()
    async with aiohttp.ClientSession() as session:
        async with session.delete(url) as response:
            assert response.status == 400
            assert "bound signature" in json.loads(await response.read())
        # Alice's key-id signature (seen by every node she used) with Mallory's bound one
        async with session.delete(
            url, headers={"X-Secretstore-Bound-Signature": mallory}
        ) as response:
            assert response.status == 400
        mallory_path = f"/{key.hex()}/{requester_signature(MALLORY, key).hex()}"
        async with session.delete(
            URL(nodes[1].url + mallory_path, encoded=True),
            headers={"X-Secretstore-Bound-Signature": mallory},
        ) as response:
            assert response.status == 403
    await assert_usable(nodes[4], "refused", document_key, public)


async def test_with_t_nodes_killed_the_key_dies_and_they_erase_when_back(
    cluster: LocalCluster,
) -> None:
    nodes = cluster.nodes
    await create(nodes[0], "away")
    key = key_id("away")
    away = nodes[3:]
    for node in away:
        node.kill()
    live = nodes[:3]
    wait_until(
        lambda: all(len(node.connected()) == 2 for node in live),
        15.0,
        "the live nodes to see the others gone",
        cluster.logs,
    )
    async with KeyServerClient(live[1].url) as client:
        deleted = await client.delete_key(key, ALICE)
    assert set(deleted.confirmed) == {node.node_id for node in live}
    assert set(deleted.unconfirmed) == {node.node_id for node in away}
    for node in away:
        assert stored(node, key) == (True, False)  # they kept their shares: 2 < t + 1
        node.start()
    cluster.wait_ready()
    for node in away:
        node.wait_for_log(r"was deleted by its author while this node was away: erased")
    async with aiohttp.ClientSession() as session:
        for node in nodes:
            assert_not_found(await every_route(session, node, key))
    for node in away:
        node.terminate()
        assert stored(node, key) == (False, True)
        node.start()
    cluster.wait_ready()


async def test_a_node_killed_mid_delete_erases_when_back(cluster: LocalCluster) -> None:
    nodes = cluster.nodes
    await create(nodes[0], "mid")
    key = key_id("mid")
    frozen = nodes[4]
    assert frozen.process is not None
    frozen.process.send_signal(signal.SIGSTOP)  # asked, it never answers
    try:
        async with KeyServerClient(nodes[0].url) as client:
            task = asyncio.ensure_future(client.delete_key(key, ALICE))
            await asyncio.sleep(0.5)
            assert not task.done()
            frozen.kill()
            deleted = await asyncio.wait_for(task, 30)
    finally:
        if frozen.process is not None:
            frozen.kill()
    assert deleted.unconfirmed == (frozen.node_id,)
    assert stored(frozen, key) == (True, False)
    frozen.start()
    cluster.wait_ready()
    frozen.wait_for_log(r"was deleted by its author while this node was away: erased")
    async with aiohttp.ClientSession() as session:
        assert_not_found(await every_route(session, frozen, key))


async def test_a_master_killed_mid_delete_erases_nothing_and_a_rerun_completes(
    cluster: LocalCluster,
) -> None:
    nodes = cluster.nodes
    document_key = await create(nodes[0], "master")
    key = key_id("master")
    async with KeyServerClient(nodes[0].url) as client:
        public = await client.retrieve_server_key(key, ALICE)
    frozen, master = nodes[4], nodes[3]
    assert frozen.process is not None
    frozen.process.send_signal(signal.SIGSTOP)  # the master waits for its answer...
    try:
        async with KeyServerClient(master.url) as client:
            task = asyncio.ensure_future(client.delete_key(key, ALICE))
            await asyncio.sleep(0.5)
            master.kill()  # ...and dies before the erase
            with pytest.raises(Exception, match="unreachable"):
                await asyncio.wait_for(task, 30)
    finally:
        frozen.process.send_signal(signal.SIGCONT)
    await assert_usable(nodes[1], "master", document_key, public)
    master.start()
    cluster.wait_ready()
    async with KeyServerClient(master.url) as client:
        deleted = await client.delete_key(key, ALICE)
    assert set(deleted.confirmed) == {node.node_id for node in nodes}
    async with aiohttp.ClientSession() as session:
        for node in nodes:
            assert_not_found(await every_route(session, node, key))
