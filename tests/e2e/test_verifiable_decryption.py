"""Verifiable shadow retrieval and the require_shadow_retrieval policy, on real node processes.

1. On a cluster without the policy, every shadow retrieval answer carries our `proofs` field
   after Parity's three, and the client library checks every node's contribution with it
   (anchored at the server key public), plain and through its document flow.
2. On a cluster where nodes 2 and 3 have `require_shadow_retrieval = true` and node 1 has
   not (so it behaves as a master that ignores the policy): a plain retrieval asked of a node
   with the policy is refused up front (403, its own text); asked of node 1, the other nodes
   refuse to compute their part, so node 1 cannot compute the document key (403 too); shadow
   retrieval works from every node.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from hashlib import sha256

import aiohttp
import pytest
from yarl import URL

from secretstore.client.http_client import KeyServerClient, parse_shadow_body
from secretstore.crypto.curve import Point
from secretstore.crypto.document import encrypt_secret
from secretstore.crypto.keys import KeyPair, sign_recoverable
from secretstore.crypto.rng import SeededRng
from secretstore.errors import AccessDenied
from secretstore.http.errors import PLAIN_RETRIEVAL_REFUSED_TEXT
from tests.e2e.cluster import LocalCluster
from tests.e2e.conftest import ClusterFactory

pytestmark = pytest.mark.e2e

ALICE = KeyPair.generate(SeededRng(b"verifiable alice"))
BOB = KeyPair.generate(SeededRng(b"verifiable bob"))
POLICY = {"require_shadow_retrieval": True}


@pytest.fixture(scope="module")
def open_cluster(make_module_cluster: ClusterFactory) -> Iterator[LocalCluster]:
    cluster = make_module_cluster(3, seed=301)
    cluster.start()
    cluster.wait_ready()
    yield cluster
    cluster.kill_all()


@pytest.fixture(scope="module")
def policy_cluster(make_module_cluster: ClusterFactory) -> Iterator[LocalCluster]:
    cluster = make_module_cluster(3, seed=302, extra=POLICY)
    cluster.nodes[0].write_config(cluster.addresses, {"require_shadow_retrieval": False})
    cluster.start()
    cluster.wait_ready()
    yield cluster
    cluster.kill_all()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


def path_of(requester: KeyPair, key_id: bytes) -> str:
    return f"{key_id.hex()}/{sign_recoverable(requester.secret, key_id).hex()}"


async def get(session: aiohttp.ClientSession, url: str, path: str) -> tuple[int, bytes]:
    async with session.get(URL(url + path, encoded=True)) as response:
        return response.status, await response.read()


async def store_document_key(client: KeyServerClient, key_id: bytes, public: Point) -> Point:
    """A document key made here, stored by its author ALICE; returns it."""
    rng = SeededRng(b"verifiable document key" + key_id)
    document_key = KeyPair.generate(rng).public
    encrypted = encrypt_secret(document_key, public, rng)
    await client.store_document_key(
        key_id, ALICE, encrypted.common_point, encrypted.encrypted_point
    )
    return document_key


async def test_shadow_answers_carry_proofs_our_client_verifies_from_every_node(
    open_cluster: LocalCluster, http: aiohttp.ClientSession
) -> None:
    key_id = sha256(b"verifiable shadow retrieval").digest()
    async with KeyServerClient(open_cluster[0].url) as client:
        public = await client.generate_server_key(key_id, ALICE, threshold=1)
    async with KeyServerClient(open_cluster[1].url) as client:
        key = await store_document_key(client, key_id, public)
    for node in open_cluster:
        for requester in (ALICE, BOB):
            status, body = await get(http, node.url, f"/shadow/{path_of(requester, key_id)}")
            assert status == 200, body
            fields = list(json.loads(body))
            assert fields == [
                "decrypted_secret",
                "common_point",
                "decrypt_shadows",
                "proofs",
                "receipts",
            ]
            answer = parse_shadow_body(body)
            assert answer.proofs is not None
            assert answer.proofs.commitments[0] == public
            assert len(answer.proofs.participants) == 2
            assert (
                answer.document_key(
                    key_id, requester, server_key_public=public, require_proofs=True
                )
                == key
            )
        async with KeyServerClient(node.url, require_proofs=True) as client:
            found = await client.retrieve_document_key_shadow(key_id, BOB, server_key_public=public)
            assert found == key


async def test_the_library_document_flow_checks_the_proofs(open_cluster: LocalCluster) -> None:
    key_id = sha256(b"verifiable document flow").digest()
    document = b"figures nobody may swap\n" * 100
    async with KeyServerClient(open_cluster[2].url) as client:
        encrypted = await client.encrypt_document(key_id, ALICE, threshold=1, data=document)
        public = await client.retrieve_server_key(key_id, ALICE)
    async with KeyServerClient(open_cluster[0].url, require_proofs=True) as client:
        found = await client.decrypt_document(key_id, BOB, encrypted, server_key_public=public)
    assert found == document


async def test_a_cluster_with_the_policy_refuses_plain_retrieval_and_serves_shadows(
    policy_cluster: LocalCluster, http: aiohttp.ClientSession
) -> None:
    key_id = sha256(b"shadow only").digest()
    async with KeyServerClient(policy_cluster[1].url) as client:
        public = await client.generate_server_key(key_id, ALICE, threshold=1)
        key = await store_document_key(client, key_id, public)
    refused = json.dumps(f'"{PLAIN_RETRIEVAL_REFUSED_TEXT}"').encode()
    for node in policy_cluster.nodes[1:]:  # masters with the policy: refused up front
        status, body = await get(http, node.url, f"/{path_of(BOB, key_id)}")
        assert (status, body) == (403, refused)
    # node 1 lacks the policy (a master that ignores it): the others refuse their part
    status, body = await get(http, policy_cluster[0].url, f"/{path_of(BOB, key_id)}")
    assert (status, body) == (403, refused)
    async with KeyServerClient(policy_cluster[2].url) as client:
        with pytest.raises(AccessDenied, match="plain document key retrieval is disabled"):
            await client.retrieve_document_key(key_id, BOB)
    for node in policy_cluster:
        async with KeyServerClient(node.url, require_proofs=True) as client:
            assert (
                await client.retrieve_document_key_shadow(key_id, BOB, server_key_public=public)
                == key
            )
