"""Parity's HTTP API end to end: every route over real HTTP against real node processes.

Requests are written by hand, as Parity's documentation writes them (plain aiohttp, raw paths,
no client library), so the wire format is checked independently of secretstore.client; the
client-side crypto uses secretstore.crypto. Each module-scoped deployment (3 nodes with t = 1,
5 nodes with t = 2) is started once and serves every test of this module.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest
from yarl import URL

from secretstore.crypto.curve import Point, Scalar
from secretstore.crypto.document import (
    EncryptedSecret,
    decrypt_with_shadow_coefficients,
    encrypt_secret,
)
from secretstore.crypto.ecies import ecies_decrypt
from secretstore.crypto.hashing import keccak256
from secretstore.crypto.keys import KeyPair, recover_public, sign_recoverable, verify_signature
from secretstore.crypto.rng import SeededRng
from secretstore.crypto.schnorr import SchnorrSignature, verify_schnorr_signature
from tests.e2e.cluster import LocalCluster, NodeProcess, wait_until
from tests.e2e.conftest import ClusterFactory

pytestmark = pytest.mark.e2e

JSON_CONTENT_TYPE = "application/json; charset=utf-8"
ALICE = KeyPair.generate(SeededRng(b"http-api alice"))
BOB = KeyPair.generate(SeededRng(b"http-api bob"))
#: ECIES output: 0x04, ephemeral public (64), IV (16), ciphertext, MAC (32).
ECIES_OVERHEAD = 113

SERVER_KEY_NOT_FOUND = "Server key with this ID is not found"
DOCUMENT_KEY_NOT_FOUND = "Document key with this ID is not found"
SERVER_KEY_EXISTS = "Server key with this ID is already generated"
DOCUMENT_KEY_EXISTS = "Document key with this ID is already stored"


# --- the deployments ---------------------------------------------------------------------


@dataclass(frozen=True)
class Deployment:
    """A running cluster and the threshold its keys use in these tests."""

    cluster: LocalCluster
    threshold: int

    @property
    def nodes(self) -> list[NodeProcess]:
        return self.cluster.nodes

    def node(self, index: int) -> NodeProcess:
        """Nodes taken round-robin, so that requests go to every node of the cluster."""
        return self.nodes[index % len(self.nodes)]


@pytest.fixture(scope="module", params=[(3, 1), (5, 2)], ids=["3-nodes-t1", "5-nodes-t2"])
def deployment(
    request: pytest.FixtureRequest, make_module_cluster: ClusterFactory
) -> Iterator[Deployment]:
    count, threshold = request.param
    cluster = make_module_cluster(count, seed=100 + count)
    cluster.start()
    cluster.wait_ready()
    yield Deployment(cluster, threshold)
    cluster.kill_all()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


# --- requests and answers ----------------------------------------------------------------


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes
    content_type: str | None

    def json(self) -> Any:
        return json.loads(self.body)


async def call(session: aiohttp.ClientSession, method: str, node: NodeProcess, path: str) -> Answer:
    """One request with `path` sent exactly as written (no re-quoting)."""
    url = URL(node.url + path, encoded=True)
    async with session.request(method, url) as response:
        body = await response.read()
        return Answer(response.status, body, response.headers.get("Content-Type"))


def key_id(label: str) -> bytes:
    return keccak256(label.encode())


def signature(requester: KeyPair, key: bytes) -> bytes:
    return sign_recoverable(requester.secret, key)


def segments(requester: KeyPair, key: bytes) -> str:
    """`{key_id}/{signature}` as in Parity's examples: lower-case hex without 0x."""
    return f"{key.hex()}/{signature(requester, key).hex()}"


def json_string(text: str) -> bytes:
    return json.dumps(text).encode()


def error_body(text: str) -> bytes:
    """Parity's error body: a JSON string holding the text in double quotes."""
    return json_string(f'"{text}"')


def expect_json(answer: Answer, status: int = 200) -> None:
    assert (answer.status, answer.content_type) == (status, JSON_CONTENT_TYPE), answer


def expect_error(answer: Answer, status: int, text: str) -> None:
    expect_json(answer, status)
    assert answer.body == error_body(text), answer


def expect_parse_failure(answer: Answer) -> None:
    expect_json(answer, 400)
    assert answer.json().startswith('"Failed to parse request: '), answer


def hex_of(answer: Answer) -> bytes:
    """The bytes of a `"0x…"` body (Parity's SerializableBytes / SerializablePublic)."""
    expect_json(answer)
    match = re.fullmatch(rb'"0x((?:[0-9a-f]{2})+)"', answer.body)
    assert match is not None, answer
    return bytes.fromhex(match.group(1).decode())


def public_of(answer: Answer) -> Point:
    raw = hex_of(answer)
    assert len(raw) == 64, answer
    return Point.from_bytes(raw)


def decrypted(requester: KeyPair, answer: Answer, length: int) -> bytes:
    cipher = hex_of(answer)
    assert len(cipher) == ECIES_OVERHEAD + length, answer
    return ecies_decrypt(requester.secret, cipher)


def document_key_of(requester: KeyPair, answer: Answer) -> Point:
    return Point.from_bytes(decrypted(requester, answer, 64))


PARITY_SHADOW_FIELDS = ["decrypted_secret", "common_point", "decrypt_shadows"]


def shadow_key_of(requester: KeyPair, answer: Answer, threshold: int) -> Point:
    """The document key from a shadow retrieval answer, computed as a Parity client does
    (Parity's three fields first, in its order; our `proofs` after them, ignored here)."""
    expect_json(answer)
    body = answer.json()
    assert list(body)[:3] == PARITY_SHADOW_FIELDS and list(body)[3:] in (
        ["receipts"],
        ["proofs", "receipts"],
    ), body
    assert answer.body == json.dumps(body, separators=(",", ":")).encode(), answer
    hex_pattern = r"0x(?:[0-9a-f]{2})+"
    assert all(re.fullmatch(hex_pattern, body[k]) for k in ("decrypted_secret", "common_point"))
    shadows = body["decrypt_shadows"]
    assert len(shadows) == threshold + 1, body
    coefficients = []
    for shadow in shadows:
        assert re.fullmatch(hex_pattern, shadow), body
        cipher = bytes.fromhex(shadow[2:])
        assert len(cipher) == ECIES_OVERHEAD + 32
        coefficients.append(Scalar.from_bytes(ecies_decrypt(requester.secret, cipher)))
    return decrypt_with_shadow_coefficients(
        Point.from_bytes(bytes.fromhex(body["decrypted_secret"][2:])),
        Point.from_bytes(bytes.fromhex(body["common_point"][2:])),
        coefficients,
    )


async def generate_server_key(
    session: aiohttp.ClientSession, deployment: Deployment, key: bytes, node: int = 0
) -> Point:
    path = f"/shadow/{segments(ALICE, key)}/{deployment.threshold}"
    return public_of(await call(session, "POST", deployment.node(node), path))


def points_path(encrypted: EncryptedSecret) -> str:
    """`{common_point}/{encrypted_point}`: lower-case hex without 0x."""
    return f"{encrypted.common_point.to_bytes().hex()}/{encrypted.encrypted_point.to_bytes().hex()}"


async def store_new_document_key(
    session: aiohttp.ClientSession, deployment: Deployment, key: bytes, public: Point, seed: bytes
) -> Point:
    """A document key made here, stored through node 1 by its author; returns it."""
    rng = SeededRng(seed)
    document_key = KeyPair.generate(rng).public
    encrypted = encrypt_secret(document_key, public, rng)
    path = f"/shadow/{segments(ALICE, key)}/{points_path(encrypted)}"
    answer = await call(session, "POST", deployment.node(1), path)
    assert (answer.status, answer.body, answer.content_type) == (200, b"", None), answer
    return document_key


def v_form(raw_signature: bytes, plus: int) -> bytes:
    """The same signature with v + `plus` (27: the Ethereum tooling form)."""
    return raw_signature[:64] + bytes([raw_signature[64] + plus])


def key_with_recovery_id(label: str, recovery_id: int) -> bytes:
    """A key id whose signature by ALICE has the given recovery id (v before adding 27)."""
    for attempt in range(100):
        candidate = key_id(f"{label} {attempt}")
        if signature(ALICE, candidate)[64] == recovery_id:
            return candidate
    raise AssertionError("no key id with that recovery id")


def percent_encoded(text: str) -> str:
    return "".join(f"%{byte:02X}" for byte in text.encode())


# --- every route ---------------------------------------------------------------------------


async def test_server_key_generation_then_retrieval_from_every_node(
    deployment: Deployment, http: aiohttp.ClientSession
) -> None:
    key = key_id("server key")
    generated = await call(
        http, "POST", deployment.node(0), f"/shadow/{segments(ALICE, key)}/{deployment.threshold}"
    )
    public = public_of(generated)
    for node in deployment.nodes:
        answer = await call(http, "GET", node, f"/server/{segments(ALICE, key)}")
        expect_json(answer)
        assert answer.body == generated.body == f'"0x{public.to_bytes().hex()}"'.encode()
    # As Parity, only the server key's author may retrieve it.
    answer = await call(http, "GET", deployment.node(1), f"/server/{segments(BOB, key)}")
    expect_error(answer, 403, "Access denied")


async def test_stored_document_key_comes_back_plain_and_as_shadow_from_every_node(
    deployment: Deployment, http: aiohttp.ClientSession
) -> None:
    key = key_id("stored document key")
    public = await generate_server_key(http, deployment, key, node=1)
    document_key = await store_new_document_key(http, deployment, key, public, b"stored")
    for node in deployment.nodes:
        plain = await call(http, "GET", node, f"/{segments(ALICE, key)}")
        assert document_key_of(ALICE, plain) == document_key
        shadow = await call(http, "GET", node, f"/shadow/{segments(ALICE, key)}")
        assert shadow_key_of(ALICE, shadow, deployment.threshold) == document_key
    # Without an ACL contract everyone may retrieve it: another account, as a shadow.
    for index in (0, -1):
        answer = await call(http, "GET", deployment.node(index), f"/shadow/{segments(BOB, key)}")
        assert shadow_key_of(BOB, answer, deployment.threshold) == document_key
    answer = await call(http, "GET", deployment.node(2), f"/{segments(BOB, key)}")
    assert document_key_of(BOB, answer) == document_key


async def test_server_generated_document_key_is_the_one_retrievals_return(
    deployment: Deployment, http: aiohttp.ClientSession
) -> None:
    key = key_id("server generated document key")
    answer = await call(
        http, "POST", deployment.node(-1), f"/{segments(ALICE, key)}/{deployment.threshold}"
    )
    document_key = document_key_of(ALICE, answer)  # 64 bytes that are a point
    public = public_of(
        await call(http, "GET", deployment.node(0), f"/server/{segments(ALICE, key)}")
    )
    assert public != document_key
    for index, node in enumerate(deployment.nodes):
        requester = ALICE if index % 2 == 0 else BOB
        plain = await call(http, "GET", node, f"/{segments(requester, key)}")
        assert document_key_of(requester, plain) == document_key
        shadow = await call(http, "GET", node, f"/shadow/{segments(requester, key)}")
        assert shadow_key_of(requester, shadow, deployment.threshold) == document_key


async def test_schnorr_signatures_verify_against_the_server_key(
    deployment: Deployment, http: aiohttp.ClientSession
) -> None:
    key = key_id("schnorr")
    public = await generate_server_key(http, deployment, key, node=2)
    for index, node in enumerate(deployment.nodes):
        message_hash = keccak256(f"schnorr message {index}".encode())
        answer = await call(
            http, "GET", node, f"/schnorr/{segments(ALICE, key)}/{message_hash.hex()}"
        )
        signed = SchnorrSignature.from_bytes(decrypted(ALICE, answer, 64))
        assert verify_schnorr_signature(public, signed, message_hash)
        assert not verify_schnorr_signature(public, signed, keccak256(message_hash))


async def test_ecdsa_signatures_recover_to_the_server_key(
    deployment: Deployment, http: aiohttp.ClientSession
) -> None:
    key = key_id("ecdsa")  # threshold t: 2t + 1 signers, every node of these clusters
    public = await generate_server_key(http, deployment, key, node=3)
    for index in (0, 1, len(deployment.nodes) - 1):
        message_hash = keccak256(f"ecdsa message {index}".encode())
        answer = await call(
            http,
            "GET",
            deployment.node(index),
            f"/ecdsa/{segments(ALICE, key)}/{message_hash.hex()}",
        )
        signed = decrypted(ALICE, answer, 65)
        assert signed[64] in (0, 1)
        assert recover_public(signed, message_hash) == public
        assert verify_signature(public, signed, message_hash)


# --- encodings -----------------------------------------------------------------------------


async def test_hex_prefixes_upper_case_percent_encoding_and_v_27_28(
    deployment: Deployment, http: aiohttp.ClientSession
) -> None:
    key = key_with_recovery_id("encodings", 0)
    raw_signature = signature(ALICE, key)
    plain, v27 = raw_signature.hex(), v_form(raw_signature, 27).hex()
    assert v27.endswith("1b")
    threshold = percent_encoded(str(deployment.threshold))
    generated = await call(
        http, "POST", deployment.node(0), f"/shadow/0x{key.hex()}/{v27}/{threshold}"
    )
    public = public_of(generated)

    server_key_paths = [
        f"/server/{key.hex()}/{plain}",
        f"/server/0x{key.hex()}/0x{plain}",
        f"/server/{key.hex().upper()}/{plain.upper()}",
        f"/server/{key.hex()}/0x{v27}",
        f"/server%2F{key.hex()}%2F{plain}",
        f"/{percent_encoded('server')}/{percent_encoded(key.hex())}/{percent_encoded(v27)}",
    ]
    for index, path in enumerate(server_key_paths):
        answer = await call(http, "GET", deployment.node(index), path)
        expect_json(answer)
        assert answer.body == generated.body, path

    # A store with 0x and percent-encoded points, signed with v = 27; the retrievals with
    # every form of the signature are answered to the same requester.
    rng = SeededRng(b"encodings")
    document_key = KeyPair.generate(rng).public
    encrypted = encrypt_secret(document_key, public, rng)
    common_hex, encrypted_hex = points_path(encrypted).split("/")
    store_path = f"/shadow/{key.hex()}/{v27}/0x{common_hex}/{percent_encoded(encrypted_hex)}"
    stored = await call(http, "POST", deployment.node(1), store_path)
    assert (stored.status, stored.body) == (200, b""), stored
    for index, signature_text in enumerate([plain, v27, "0x" + v27.upper()]):
        answer = await call(http, "GET", deployment.node(index), f"/0x{key.hex()}/{signature_text}")
        assert document_key_of(ALICE, answer) == document_key
        path = f"/shadow%2F{key.hex()}/{percent_encoded(signature_text)}"
        answer = await call(http, "GET", deployment.node(index + 1), path)
        assert shadow_key_of(ALICE, answer, deployment.threshold) == document_key

    # v = 28: a key whose signature has recovery id 1.
    other = key_with_recovery_id("encodings", 1)
    v28 = v_form(signature(ALICE, other), 27).hex()
    assert v28.endswith("1c")
    answer = await call(http, "POST", deployment.node(2), f"/{other.hex()}/{v28}/{threshold}")
    other_document_key = document_key_of(ALICE, answer)
    message_hash = keccak256(b"v = 28")
    other_public = public_of(
        await call(http, "GET", deployment.node(3), f"/server/{other.hex()}/{v28}")
    )
    schnorr_path = f"/schnorr/0x{other.hex()}/0x{v28}/0x{message_hash.hex().upper()}"
    answer = await call(http, "GET", deployment.node(4), schnorr_path)
    signed = SchnorrSignature.from_bytes(decrypted(ALICE, answer, 64))
    assert verify_schnorr_signature(other_public, signed, message_hash)
    answer = await call(http, "GET", deployment.node(0), f"/{other.hex()}/{v28}")
    assert document_key_of(ALICE, answer) == other_document_key


# --- errors, and nothing stored by a failed request ---------------------------------------


async def test_threshold_not_below_the_node_count_is_refused_and_nothing_is_stored(
    deployment: Deployment, http: aiohttp.ClientSession
) -> None:
    count = len(deployment.nodes)
    server_key, document_key = key_id("threshold too big"), key_id("threshold too big 2")
    for threshold in (count, count + 1):
        answer = await call(
            http, "POST", deployment.node(0), f"/shadow/{segments(ALICE, server_key)}/{threshold}"
        )
        expect_error(
            answer, 400, f"threshold {threshold} is not below the number of nodes ({count})"
        )
        answer = await call(
            http, "POST", deployment.node(1), f"/{segments(ALICE, document_key)}/{threshold}"
        )
        expect_json(answer, 400)
    for node in deployment.nodes:
        for key in (server_key, document_key):
            answer = await call(http, "GET", node, f"/server/{segments(ALICE, key)}")
            expect_error(answer, 404, SERVER_KEY_NOT_FOUND)
    # The refused ids are still free.
    top = count - 1
    answer = await call(
        http, "POST", deployment.node(2), f"/shadow/{segments(ALICE, server_key)}/{top}"
    )
    public_of(answer)


async def test_malformed_requests_are_400_and_store_nothing(
    deployment: Deployment, http: aiohttp.ClientSession
) -> None:
    key = key_id("malformed")
    good_key, good_signature = key.hex(), signature(ALICE, key).hex()
    t = deployment.threshold
    point = ALICE.public.to_bytes().hex()
    malformed = [
        ("POST", f"/shadow/{'zz' * 32}/{good_signature}/{t}"),  # not hex
        ("POST", f"/shadow/{good_key[:-2]}/{good_signature}/{t}"),  # 31 bytes
        ("POST", f"/shadow/{good_key}0/{good_signature}/{t}"),  # odd digit count
        ("POST", f"/shadow/{good_key}/{good_signature[:-2]}/{t}"),  # 64-byte signature
        ("POST", f"/shadow/{good_key}/{good_signature[:-2]}05/{t}"),  # v = 5
        ("POST", f"/shadow/{good_key}/{good_signature}/one"),  # threshold not a number
        ("POST", f"/shadow/{good_key}/{good_signature}/-1"),
        ("POST", f"/shadow/{good_key}/{good_signature}/{point}/{'g' * 128}"),
        ("POST", f"/shadow/{good_key}/{good_signature}/{point}/{'00' * 64}"),  # off the curve
        ("POST", f"/{good_key}/0x/{t}"),
        ("GET", f"/{good_key}/{good_signature}/"),  # trailing slash: an empty segment
        ("GET", f"/server/{good_key}/{good_signature}xx"),
        ("GET", f"/schnorr/{good_key}/{good_signature}/{'ab' * 31}"),
        ("GET", f"/ecdsa/{good_key}/{good_signature}/0x{'gg' * 32}"),
        ("GET", f"/shadow/{good_key}"),
        ("GET", f"/shadow/{good_key}/{good_signature}/{t}"),  # generation is a POST
        ("POST", f"/server/{good_key}/{good_signature}"),
    ]
    for index, (method, path) in enumerate(malformed):
        answer = await call(http, method, deployment.node(index), path)
        expect_parse_failure(answer)
    for node in deployment.nodes:
        answer = await call(http, "GET", node, f"/server/{good_key}/{good_signature}")
        expect_error(answer, 404, SERVER_KEY_NOT_FOUND)
    # A well-formed signature from which no key recovers (r = 0) is the key server's 400.
    unrecoverable = "00" * 64 + "00"
    answer = await call(http, "POST", deployment.node(0), f"/shadow/{good_key}/{unrecoverable}/{t}")
    expect_json(answer, 400)
    answer = await call(http, "GET", deployment.node(1), f"/server/{good_key}/{good_signature}")
    expect_error(answer, 404, SERVER_KEY_NOT_FOUND)


async def test_unknown_key_is_404_on_every_route(
    deployment: Deployment, http: aiohttp.ClientSession
) -> None:
    key = key_id("never generated")
    message_hash = keccak256(b"unknown").hex()
    point = BOB.public.to_bytes().hex()
    requests = [
        ("GET", f"/server/{segments(ALICE, key)}"),
        ("GET", f"/{segments(ALICE, key)}"),
        ("GET", f"/shadow/{segments(BOB, key)}"),
        ("GET", f"/schnorr/{segments(ALICE, key)}/{message_hash}"),
        ("GET", f"/ecdsa/{segments(ALICE, key)}/{message_hash}"),
        ("POST", f"/shadow/{segments(ALICE, key)}/{point}/{point}"),
    ]
    for index, (method, path) in enumerate(requests):
        answer = await call(http, method, deployment.node(index), path)
        expect_error(answer, 404, SERVER_KEY_NOT_FOUND)
    answer = await call(http, "GET", deployment.node(0), f"/server/{segments(ALICE, key)}")
    expect_error(answer, 404, SERVER_KEY_NOT_FOUND)


async def test_document_key_refusals_leave_the_stored_key_as_it_was(
    deployment: Deployment, http: aiohttp.ClientSession
) -> None:
    key = key_id("document key refusals")
    public = await generate_server_key(http, deployment, key, node=0)
    # No document key yet.
    for index, prefix in enumerate(("", "/shadow")):
        answer = await call(http, "GET", deployment.node(index), f"{prefix}/{segments(ALICE, key)}")
        expect_error(answer, 404, DOCUMENT_KEY_NOT_FOUND)

    # Only the server key's author may store: another account is refused, nothing is stored.
    rng = SeededRng(b"refusals")
    intruder_key = KeyPair.generate(rng).public
    intruder_points = points_path(encrypt_secret(intruder_key, public, rng))
    answer = await call(
        http, "POST", deployment.node(2), f"/shadow/{segments(BOB, key)}/{intruder_points}"
    )
    expect_error(answer, 403, "Access denied")
    for node in deployment.nodes:
        answer = await call(http, "GET", node, f"/{segments(ALICE, key)}")
        expect_error(answer, 404, DOCUMENT_KEY_NOT_FOUND)

    document_key = await store_new_document_key(http, deployment, key, public, b"first")
    # A second store, by the author or by anyone else, is refused; the first key stays.
    answer = await call(
        http, "POST", deployment.node(3), f"/shadow/{segments(ALICE, key)}/{intruder_points}"
    )
    expect_error(answer, 400, DOCUMENT_KEY_EXISTS)
    answer = await call(
        http, "POST", deployment.node(4), f"/shadow/{segments(BOB, key)}/{intruder_points}"
    )
    expect_error(answer, 400, DOCUMENT_KEY_EXISTS)  # Parity checks this before the author
    for node in deployment.nodes:
        answer = await call(http, "GET", node, f"/shadow/{segments(ALICE, key)}")
        assert shadow_key_of(ALICE, answer, deployment.threshold) == document_key


async def test_second_generation_is_refused_and_keeps_the_first_key(
    deployment: Deployment, http: aiohttp.ClientSession
) -> None:
    key = key_id("generated twice")
    answer = await call(
        http, "POST", deployment.node(1), f"/{segments(ALICE, key)}/{deployment.threshold}"
    )
    document_key = document_key_of(ALICE, answer)
    public = public_of(
        await call(http, "GET", deployment.node(1), f"/server/{segments(ALICE, key)}")
    )
    other_threshold = 0 if deployment.threshold else 1
    for index, path in enumerate(
        [
            f"/shadow/{segments(ALICE, key)}/{deployment.threshold}",
            f"/shadow/{segments(BOB, key)}/{other_threshold}",
            f"/{segments(ALICE, key)}/{deployment.threshold}",
            f"/{segments(BOB, key)}/{other_threshold}",
        ]
    ):
        answer = await call(http, "POST", deployment.node(index), path)
        expect_error(answer, 400, SERVER_KEY_EXISTS)
    for node in deployment.nodes:
        answer = await call(http, "GET", node, f"/server/{segments(ALICE, key)}")
        assert public_of(answer) == public
        answer = await call(http, "GET", node, f"/{segments(ALICE, key)}")
        assert document_key_of(ALICE, answer) == document_key


# --- a node killed with kill -9 ----------------------------------------------------------


def wait_disconnected(survivors: list[NodeProcess], victims: list[NodeProcess]) -> None:
    victim_ids = {"0x" + victim.node_id.hex() for victim in victims}
    wait_until(
        lambda: all(not victim_ids & node.connected() for node in survivors),
        10,
        "the survivors to notice the killed nodes",
    )


async def test_killed_nodes_leave_t_plus_1_serving_and_rejoin_after_restart(
    deployment: Deployment, http: aiohttp.ClientSession
) -> None:
    t = deployment.threshold
    key = key_id("before the kill")
    answer = await call(http, "POST", deployment.node(0), f"/{segments(ALICE, key)}/{t}")
    document_key = document_key_of(ALICE, answer)
    public = public_of(
        await call(http, "GET", deployment.node(0), f"/server/{segments(ALICE, key)}")
    )

    survivors, victims = deployment.nodes[: t + 1], deployment.nodes[t + 1 :]
    for victim in victims:
        assert victim.kill() == -9
    wait_disconnected(survivors, victims)

    for index, node in enumerate(survivors):
        answer = await call(http, "GET", node, f"/server/{segments(ALICE, key)}")
        assert public_of(answer) == public
        answer = await call(http, "GET", node, f"/{segments(BOB, key)}")
        assert document_key_of(BOB, answer) == document_key
        answer = await call(http, "GET", node, f"/shadow/{segments(ALICE, key)}")
        assert shadow_key_of(ALICE, answer, t) == document_key
        message_hash = keccak256(f"with t + 1 nodes {index}".encode())
        answer = await call(
            http, "GET", node, f"/schnorr/{segments(ALICE, key)}/{message_hash.hex()}"
        )
        assert verify_schnorr_signature(
            public, SchnorrSignature.from_bytes(decrypted(ALICE, answer, 64)), message_hash
        )

    # Generation needs every node; ECDSA needs 2t + 1 of them.
    late_key, late_document = key_id("while a node is down"), key_id("while a node is down 2")
    answer = await call(http, "POST", survivors[0], f"/shadow/{segments(ALICE, late_key)}/{t}")
    expect_error(answer, 403, "Consensus unreachable")
    answer = await call(http, "POST", survivors[-1], f"/{segments(ALICE, late_document)}/{t}")
    expect_error(answer, 403, "Consensus unreachable")
    ecdsa_hash = keccak256(b"ecdsa with t + 1 nodes").hex()
    answer = await call(http, "GET", survivors[0], f"/ecdsa/{segments(ALICE, key)}/{ecdsa_hash}")
    expect_error(answer, 403, "Consensus unreachable")

    for victim in victims:
        victim.start()
    deployment.cluster.wait_ready()

    # Nothing of the failed generations was kept anywhere; the ids can be generated now.
    for node in deployment.nodes:
        for failed in (late_key, late_document):
            answer = await call(http, "GET", node, f"/server/{segments(ALICE, failed)}")
            expect_error(answer, 404, SERVER_KEY_NOT_FOUND)
    late_public = await generate_server_key(http, deployment, late_key, node=len(survivors))
    answer = await call(http, "POST", victims[0], f"/{segments(ALICE, late_document)}/{t}")
    late_document_key = document_key_of(ALICE, answer)

    for index, victim in enumerate(victims):
        answer = await call(http, "GET", victim, f"/shadow/{segments(BOB, key)}")
        assert shadow_key_of(BOB, answer, t) == document_key
        answer = await call(http, "GET", victim, f"/{segments(ALICE, late_document)}")
        assert document_key_of(ALICE, answer) == late_document_key
        message_hash = keccak256(f"after the restart {index}".encode())
        answer = await call(
            http, "GET", victim, f"/schnorr/{segments(ALICE, late_key)}/{message_hash.hex()}"
        )
        assert verify_schnorr_signature(
            late_public, SchnorrSignature.from_bytes(decrypted(ALICE, answer, 64)), message_hash
        )
        answer = await call(
            http, "GET", victim, f"/ecdsa/{segments(ALICE, key)}/{message_hash.hex()}"
        )
        assert recover_public(decrypted(ALICE, answer, 65), message_hash) == public
