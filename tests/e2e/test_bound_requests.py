"""A cluster of real node processes with `require_bound_requests = true`.

Our client library (bound signatures by default) generates, stores and signs; Parity's form of
the same requests, written by hand as a Parity client sends them, is refused with 400 and
stores nothing; server-side document key generation is refused before any key is generated.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiohttp
import pytest
from yarl import URL

from secretstore.client.http_client import KeyServerClient
from secretstore.crypto.bound import BoundOperation, sign_bound_request, signing_payload
from secretstore.crypto.document import encrypt_secret
from secretstore.crypto.hashing import keccak256
from secretstore.crypto.keys import KeyPair, recover_public, sign_recoverable
from secretstore.crypto.rng import SeededRng
from secretstore.crypto.schnorr import SchnorrSignature, verify_schnorr_signature
from secretstore.errors import InvalidRequest
from secretstore.sessions.requester import UNBOUND_REFUSAL
from tests.e2e.cluster import LocalCluster, NodeProcess
from tests.e2e.conftest import ClusterFactory

pytestmark = pytest.mark.e2e

ALICE = KeyPair.generate(SeededRng(b"bound e2e alice"))
MALLORY = KeyPair.generate(SeededRng(b"bound e2e mallory"))
HEADER = "X-Secretstore-Bound-Signature"
DOCUMENT_KEY_NOT_FOUND = "Document key with this ID is not found"
SERVER_KEY_NOT_FOUND = "Server key with this ID is not found"


@pytest.fixture(scope="module")
def cluster(make_module_cluster: ClusterFactory) -> Iterator[LocalCluster]:
    cluster = make_module_cluster(3, seed=31, extra={"require_bound_requests": True})
    cluster.start()
    cluster.wait_ready()
    yield cluster
    cluster.kill_all()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def call(
    session: aiohttp.ClientSession,
    method: str,
    node: NodeProcess,
    path: str,
    headers: dict[str, str] | None = None,
) -> tuple[int, bytes]:
    async with session.request(
        method, URL(node.url + path, encoded=True), headers=headers
    ) as response:
        return response.status, await response.read()


def segments(requester: KeyPair, key: bytes) -> str:
    return f"{key.hex()}/{sign_recoverable(requester.secret, key).hex()}"


def error_text(body: bytes) -> str:
    text = json.loads(body)
    assert isinstance(text, str) and text[0] == text[-1] == '"'
    return text[1:-1]


async def test_our_client_stores_and_signs_with_bound_requests(cluster: LocalCluster) -> None:
    key = keccak256(b"bound e2e: client")
    message = keccak256(b"bound e2e: message")
    async with KeyServerClient(cluster[0].url) as client:
        document_key = await client.create_document_key(key, ALICE, 1)
    async with KeyServerClient(cluster[1].url) as client:
        assert await client.retrieve_document_key_shadow(key, ALICE) == document_key
        public = await client.retrieve_server_key(key, ALICE)
        c, s = await client.sign_schnorr(key, ALICE, message)
        assert verify_schnorr_signature(public, SchnorrSignature(c, s), message)
    async with KeyServerClient(cluster[2].url) as client:
        signature = await client.sign_ecdsa(key, ALICE, message)
        assert recover_public(signature, message) == public


async def test_parity_s_form_is_refused_with_400_and_stores_nothing(
    cluster: LocalCluster, http: aiohttp.ClientSession
) -> None:
    key = keccak256(b"bound e2e: parity form")
    async with KeyServerClient(cluster[0].url) as client:
        public = await client.generate_server_key(key, ALICE, 1)
    rng = SeededRng(b"parity form document key")
    stored = encrypt_secret(KeyPair.generate(rng).public, public, rng)
    points = f"{stored.common_point.to_bytes().hex()}/{stored.encrypted_point.to_bytes().hex()}"
    message = keccak256(b"parity form message").hex()
    other = keccak256(b"bound e2e: parity form generation")
    refused = [
        ("POST", f"/shadow/{segments(ALICE, other)}/1"),
        ("POST", f"/shadow/{segments(ALICE, key)}/{points}"),
        ("GET", f"/schnorr/{segments(ALICE, key)}/{message}"),
        ("GET", f"/ecdsa/{segments(ALICE, key)}/{message}"),
    ]
    for index, (method, path) in enumerate(refused):
        status, body = await call(http, method, cluster[index % 3], path)
        assert status == 400, body
        assert error_text(body) == UNBOUND_REFUSAL
    for node in cluster:
        status, body = await call(http, "GET", node, f"/shadow/{segments(ALICE, key)}")
        assert (status, error_text(body)) == (404, DOCUMENT_KEY_NOT_FOUND)
        status, body = await call(http, "GET", node, f"/server/{segments(ALICE, other)}")
        assert (status, error_text(body)) == (404, SERVER_KEY_NOT_FOUND)
    # our client, with the bound form switched off, is refused the same way
    async with KeyServerClient(cluster[1].url, bound_requests=False) as client:
        with pytest.raises(InvalidRequest, match="requires a bound request"):
            await client.sign_ecdsa(key, ALICE, bytes.fromhex(message))


async def test_server_side_document_key_generation_is_refused_before_any_key_exists(
    cluster: LocalCluster, http: aiohttp.ClientSession
) -> None:
    key = keccak256(b"bound e2e: server-side generation")
    status, body = await call(http, "POST", cluster[2], f"/{segments(ALICE, key)}/1")
    assert status == 400
    assert "cannot be bound" in error_text(body)
    for node in cluster:
        status, body = await call(http, "GET", node, f"/server/{segments(ALICE, key)}")
        assert (status, error_text(body)) == (404, SERVER_KEY_NOT_FOUND)


async def test_a_bound_signature_by_another_key_or_for_another_hash_is_400(
    cluster: LocalCluster, http: aiohttp.ClientSession
) -> None:
    key = keccak256(b"bound e2e: wrong bound")
    async with KeyServerClient(cluster[0].url) as client:
        await client.generate_server_key(key, ALICE, 1)
    message = keccak256(b"wrong bound message")
    other = keccak256(b"another message")
    for signer, signed in ((MALLORY, message), (ALICE, other)):
        bound = sign_bound_request(
            signer.secret, BoundOperation.SIGN_SCHNORR, key, signing_payload(signed)
        )
        status, body = await call(
            http,
            "GET",
            cluster[1],
            f"/schnorr/{segments(ALICE, key)}/{message.hex()}",
            {HEADER: "0x" + bound.hex()},
        )
        assert status == 400
        assert "bound request signature" in error_text(body)
    status, body = await call(
        http, "GET", cluster[1], f"/schnorr/{segments(ALICE, key)}/{message.hex()}", {HEADER: "00"}
    )
    assert status == 400 and "X-Secretstore-Bound-Signature" in error_text(body)


def test_the_encrypt_and_decrypt_commands_work_against_the_strict_cluster(
    cluster: LocalCluster, tmp_path: Path
) -> None:
    secret_file = tmp_path / "alice.secret"
    secret_file.write_text(ALICE.secret.to_bytes().hex())
    plain, encrypted, decrypted = tmp_path / "doc", tmp_path / "doc.enc", tmp_path / "doc.out"
    plain.write_bytes(b"stored with a bound signature")
    key = keccak256(b"bound e2e: command line").hex()
    common = ["--key-id", key, "--secret-file", str(secret_file)]
    for args in (
        ["encrypt", "--node", cluster[0].url, "--threshold", "1", *common],
        ["decrypt", "--node", cluster[1].url, *common],
    ):
        source, target = (plain, encrypted) if args[0] == "encrypt" else (encrypted, decrypted)
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "secretstore.cli.main",
                *args,
                "--in",
                str(source),
                "--out",
                str(target),
            ],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
            stdin=subprocess.DEVNULL,
        )
        assert result.returncode == 0, (args, result.stderr)
    assert decrypted.read_bytes() == plain.read_bytes()
