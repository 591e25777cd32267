"""The JSON-RPC server over real HTTP on loopback, with a real keystore directory."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from secretstore.client.rpc_server import RunningRpcServer, start_rpc_server
from secretstore.crypto.curve import Point, Scalar
from secretstore.crypto.document import decrypt_document
from secretstore.crypto.keys import KeyPair, verify_signature
from secretstore.crypto.rng import SeededRng, random_scalar
from secretstore.keystore import Keystore
from tests.unit.client import only, vectors

PASSWORD = "password"
MOCKED_KEY = only("rpc_encrypted_keys")["encrypted_key"]


@pytest.fixture
def keystore(tmp_path: Path) -> Keystore:
    """Parity's test accounts in a real keystore directory (a cheap KDF keeps tests fast)."""
    store = Keystore(tmp_path / "keys", kdf="pbkdf2", iterations=2)
    for entry in vectors("account_addresses"):
        store.import_secret(Scalar.secret_from_bytes(bytes.fromhex(entry["secret"])), PASSWORD)
    return store


@pytest.fixture
async def server(keystore: Keystore) -> AsyncIterator[RunningRpcServer]:
    running = await start_rpc_server(keystore, "127.0.0.1", 0, rng=SeededRng(1))
    yield running
    await running.stop()


async def post(server: RunningRpcServer, body: str | bytes) -> tuple[int, str, str]:
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            server.url, data=body, headers={"Content-Type": "application/json"}
        ) as response,
    ):
        return response.status, response.headers.get("Content-Type", ""), await response.text()


async def rpc(server: RunningRpcServer, method: str, params: list[Any]) -> Any:
    request = {"jsonrpc": "2.0", "method": method, "params": params, "id": 1}
    status, _, text = await post(server, json.dumps(request))
    assert status == 200
    return json.loads(text)


async def test_listens_on_a_chosen_free_port(server: RunningRpcServer) -> None:
    assert server.port > 0 and server.url == f"http://127.0.0.1:{server.port}/"


async def test_parity_encrypt_then_decrypt_over_http(server: RunningRpcServer) -> None:
    address = "0x5c2f3b4ec0c2234f8358697edc8b82a62e3ac995"
    encrypted = await rpc(
        server, "secretstore_encrypt", [address, PASSWORD, "0x" + MOCKED_KEY, "0xdeadbeef"]
    )
    request = {
        "jsonrpc": "2.0",
        "method": "secretstore_decrypt",
        "params": [address, PASSWORD, "0x" + MOCKED_KEY, encrypted["result"]],
        "id": 2,
    }
    status, content_type, text = await post(server, json.dumps(request))
    assert status == 200 and content_type.startswith("application/json")
    assert text == '{"jsonrpc":"2.0","result":"0xdeadbeef","id":2}'


async def test_parity_shadow_decrypt_over_http(server: RunningRpcServer) -> None:
    vector = only("rpc_shadow_decrypt")
    response = await rpc(
        server,
        "secretstore_shadowDecrypt",
        [
            "0x00dfE63B22312ab4329aD0d28CaD8Af987A01932",
            PASSWORD,
            "0x" + vector["decrypted_secret"],
            "0x" + vector["common_point"],
            ["0x" + s for s in vector["decrypt_shadows"]],
            "0x" + vector["encrypted_document"],
        ],
    )
    assert response == {"jsonrpc": "2.0", "result": "0xdeadbeef", "id": 1}


async def test_generate_document_key_and_sign_over_http(server: RunningRpcServer) -> None:
    pair = KeyPair.from_secret(
        Scalar.secret_from_bytes(bytes.fromhex(vectors("account_addresses")[0]["secret"]))
    )
    address = "0x" + pair.address.hex()
    server_secret = random_scalar(SeededRng(3))
    server_public = "0x" + Point.base_mul(server_secret).to_bytes().hex()
    generated = (
        await rpc(server, "secretstore_generateDocumentKey", [address, PASSWORD, server_public])
    )["result"]
    key = (
        Point.from_bytes(bytes.fromhex(generated["encrypted_point"][2:]))
        - Point.from_bytes(bytes.fromhex(generated["common_point"][2:])) * server_secret
    )
    encrypted = (
        await rpc(
            server,
            "secretstore_encrypt",
            [address, PASSWORD, generated["encrypted_key"], "0x" + b"document".hex()],
        )
    )["result"]
    assert decrypt_document(key, bytes.fromhex(encrypted[2:])) == b"document"
    key_id = "0x" + "45" * 32
    signature = (await rpc(server, "secretstore_signRawHash", [address, PASSWORD, key_id]))[
        "result"
    ]
    assert verify_signature(pair.public, bytes.fromhex(signature[2:]), bytes.fromhex(key_id[2:]))


async def test_batch_and_errors_over_http(server: RunningRpcServer) -> None:
    hash_vector = only("servers_set_hash")
    batch = [
        {
            "jsonrpc": "2.0",
            "method": "secretstore_serversSetHash",
            "params": [["0x" + h for h in hash_vector["node_ids"]]],
            "id": 1,
        },
        {
            "jsonrpc": "2.0",
            "method": "secretstore_signRawHash",
            "params": ["0x5c2f3b4ec0c2234f8358697edc8b82a62e3ac995", "wrong", "0x" + "00" * 32],
            "id": 2,
        },
        {"jsonrpc": "2.0", "method": "secretstore_serversSetHash", "params": [[]]},
    ]
    status, _, text = await post(server, json.dumps(batch))
    answers = json.loads(text)
    assert status == 200 and [a["id"] for a in answers] == [1, 2]
    assert answers[0]["result"] == "0x" + hash_vector["hash"]
    assert answers[1]["error"] == {
        "code": -32023,
        "message": "Could not sign raw hash.",
        "data": "wrong password",
    }
    status, _, text = await post(server, b"{not json")
    assert status == 200 and json.loads(text)["error"]["code"] == -32700


async def test_deeply_nested_body_is_a_parse_error_and_the_server_lives_on(
    server: RunningRpcServer,
) -> None:
    status, _, text = await post(server, "[" * 300_000)
    assert status == 200 and json.loads(text)["error"]["code"] == -32700
    response = await rpc(server, "secretstore_serversSetHash", [[]])
    assert response["result"].startswith("0x")


async def test_notification_gets_an_empty_answer(server: RunningRpcServer) -> None:
    note = {"jsonrpc": "2.0", "method": "secretstore_serversSetHash", "params": [[]]}
    assert await post(server, json.dumps(note)) == (200, "application/json", "")


async def test_only_post_to_root(server: RunningRpcServer) -> None:
    async with aiohttp.ClientSession() as session:
        async with session.get(server.url) as response:
            assert response.status == 405
        async with session.post(server.url + "other", data=b"{}") as response:
            assert response.status == 404


async def test_default_scrypt_keystore_account(tmp_path: Path) -> None:
    store = Keystore(tmp_path / "scrypt")  # geth/Parity's default KDF, as real keystores have
    pair = KeyPair.generate(SeededRng(4))
    store.import_secret(pair.secret, "pw")
    running = await start_rpc_server(store, "127.0.0.1", 0)
    try:
        response = await rpc(
            running, "secretstore_signRawHash", ["0x" + pair.address.hex(), "pw", "0x" + "11" * 32]
        )
    finally:
        await running.stop()
    assert verify_signature(pair.public, bytes.fromhex(response["result"][2:]), b"\x11" * 32)
