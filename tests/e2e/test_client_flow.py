"""The client's acceptance test: one account publishes a document through a real 3-node cluster,
another reads it back with a shadow retrieval, so that no node learns the document key.

Driven three ways against one module-scoped cluster (no ACL contract: every account may read):
the Python library (KeyServerClient with keystore accounts), Parity's documented flow of plain
JSON-RPC calls to a real `secretstore rpc` process and plain HTTP requests to the nodes, and the
`secretstore encrypt` / `decrypt` commands on a multi-megabyte file.
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from yarl import URL

from secretstore.client import docfile
from secretstore.client.http_client import KeyServerClient, requester_from_keystore
from secretstore.crypto.hashing import sha256
from secretstore.crypto.rng import SeededRng
from secretstore.keystore import Keystore
from tests.e2e.cluster import LocalCluster, NodeProcess, wait_until
from tests.e2e.conftest import ClusterFactory

pytestmark = pytest.mark.e2e

SECRETSTORE = (sys.executable, "-m", "secretstore.cli.main")
ALICE_PASSWORD, BOB_PASSWORD = "alicepwd", "bobpwd"
#: The document of Parity's tutorial, and its key id: sha256 of the text.
TUTORIAL_DOCUMENT = b"mySecretDocument"
TUTORIAL_KEY_ID = "45ce99addb0f8385bd24f30da619ddcc0cadadab73e2a4ffb7801083086b3fc2"
JSON_CONTENT_TYPE = "application/json; charset=utf-8"
COMMAND_TIMEOUT = 120


@dataclass(frozen=True)
class Accounts:
    """A keystore directory with two accounts and their password files."""

    directory: Path
    alice: str  # as `secretstore account new` printed it (EIP-55)
    alice_password_file: Path
    bob: str  # 0x + lower-case hex
    bob_password_file: Path


@pytest.fixture(scope="module")
def cluster(make_module_cluster: ClusterFactory) -> Iterator[LocalCluster]:
    cluster = make_module_cluster(3, seed=7)
    cluster.start()
    cluster.wait_ready()
    yield cluster
    cluster.kill_all()


@pytest.fixture(scope="module")
def accounts(tmp_path_factory: pytest.TempPathFactory) -> Accounts:
    """Alice made by `secretstore account new`, Bob by the Keystore class (both scrypt v3)."""
    root = tmp_path_factory.mktemp("accounts")
    directory = root / "keys"
    alice_password_file, bob_password_file = root / "alice.pw", root / "bob.pw"
    alice_password_file.write_text(ALICE_PASSWORD + "\n")
    bob_password_file.write_text(BOB_PASSWORD + "\n")
    made = run_command(
        "account", "new", "--keystore", str(directory), "--password-file", str(alice_password_file)
    )
    alice = made.stdout.strip()
    assert re.fullmatch(r"0x[0-9a-fA-F]{40}", alice), made
    bob = Keystore(directory).create(BOB_PASSWORD, SeededRng(b"client flow bob"))
    return Accounts(directory, alice, alice_password_file, "0x" + bob.hex(), bob_password_file)


def run_command(*args: str) -> subprocess.CompletedProcess[str]:
    """`secretstore <args>` as a real process; it must exit 0."""
    result = subprocess.run(
        [*SECRETSTORE, *args],
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT,
        check=False,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 0, (args, result.stdout, result.stderr)
    return result


# --- (a) the Python library ------------------------------------------------------------------


async def test_library_publish_then_another_account_reads_by_shadow(
    cluster: LocalCluster, accounts: Accounts
) -> None:
    alice = requester_from_keystore(accounts.directory, accounts.alice, ALICE_PASSWORD)
    bob = requester_from_keystore(accounts.directory, accounts.bob, BOB_PASSWORD)
    assert alice.address != bob.address
    key_id = sha256(b"a document published with the library")
    document = b"quarterly figures\n" * 1000

    async with KeyServerClient(cluster[0].url) as client:
        encrypted = await client.encrypt_document(key_id, alice, threshold=1, data=document)
    assert len(encrypted) == len(document) + 16
    assert document[:64] not in encrypted

    async with KeyServerClient(cluster[2].url) as client:
        assert await client.decrypt_document(key_id, bob, encrypted) == document
    async with KeyServerClient(cluster[1].url) as client:
        assert await client.decrypt_document(key_id, alice, encrypted) == document
        # The same key comes back when a node decrypts it for the requester.
        assert await client.decrypt_document(key_id, bob, encrypted, shadow=False) == document


# --- (b) Parity's documented flow: JSON-RPC helpers + plain HTTP ---------------------------


@pytest.fixture
def rpc_url(accounts: Accounts, tmp_path: Path) -> Iterator[str]:
    """`secretstore rpc --keystore DIR` running as a real process on a free port."""
    log_path = tmp_path / "rpc.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [*SECRETSTORE, "rpc", "--keystore", str(accounts.directory), "--port", "0"],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
        )
    try:
        pattern = re.compile(r"listening on (http://127\.0\.0\.1:\d+/)")
        match = wait_until(
            lambda: process.poll() is None and pattern.search(log_path.read_text()),
            30,
            "secretstore rpc to listen",
            log_path.read_text() if log_path.exists() else "",
        )
        yield match.group(1)
        process.send_signal(signal.SIGTERM)
        assert process.wait(15) == 0, log_path.read_text()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


class JsonRpc:
    """Plain JSON-RPC 2.0 calls, as the curl lines of Parity's tutorial send them."""

    def __init__(self, session: aiohttp.ClientSession, url: str) -> None:
        self.session, self.url = session, url
        self.next_id = 1

    async def __call__(self, method: str, *params: Any) -> Any:
        request = {"jsonrpc": "2.0", "method": method, "params": list(params), "id": self.next_id}
        self.next_id += 1
        async with self.session.post(
            self.url, data=json.dumps(request), headers={"content-type": "application/json"}
        ) as response:
            assert response.status == 200
            answer = json.loads(await response.read())
        assert "error" not in answer, answer
        assert (answer["jsonrpc"], answer["id"]) == ("2.0", request["id"])
        return answer["result"]


async def http_call(
    session: aiohttp.ClientSession, method: str, node: NodeProcess, path: str
) -> tuple[int, bytes, str | None]:
    async with session.request(method, URL(node.url + path, encoded=True)) as response:
        return response.status, await response.read(), response.headers.get("Content-Type")


def hex_text(value: Any, length: int | None = None) -> str:
    """A `0x…` JSON value, checked; returned without its 0x (as URL segments want it)."""
    assert isinstance(value, str) and re.fullmatch(r"0x(?:[0-9a-f]{2})*", value), value
    if length is not None:
        assert len(value) == 2 + 2 * length, value
    return value[2:]


async def test_parity_tutorial_flow_over_json_rpc_and_http(
    cluster: LocalCluster, accounts: Accounts, rpc_url: str
) -> None:
    assert sha256(TUTORIAL_DOCUMENT).hex() == TUTORIAL_KEY_ID
    key_id = TUTORIAL_KEY_ID
    document_hex = "0x" + TUTORIAL_DOCUMENT.hex()
    alice, bob = accounts.alice, accounts.bob
    async with aiohttp.ClientSession() as session:
        rpc = JsonRpc(session, rpc_url)
        # 1. Alice signs the key id.
        alice_signature = hex_text(
            await rpc("secretstore_signRawHash", alice, ALICE_PASSWORD, "0x" + key_id), 65
        )
        # 2. A server key with threshold 1.
        status, body, content_type = await http_call(
            session, "POST", cluster[0], f"/shadow/{key_id}/{alice_signature}/1"
        )
        assert (status, content_type) == (200, JSON_CONTENT_TYPE), body
        server_key_public = json.loads(body)
        hex_text(server_key_public, 64)
        # 3. A document key for it, made locally.
        generated = await rpc(
            "secretstore_generateDocumentKey", alice, ALICE_PASSWORD, server_key_public
        )
        assert list(generated) == ["common_point", "encrypted_point", "encrypted_key"]
        common_point = hex_text(generated["common_point"], 64)
        encrypted_point = hex_text(generated["encrypted_point"], 64)
        # 4. The document encrypted with it.
        encrypted_document = await rpc(
            "secretstore_encrypt", alice, ALICE_PASSWORD, generated["encrypted_key"], document_hex
        )
        hex_text(encrypted_document, len(TUTORIAL_DOCUMENT) + 16)
        # 5. The document key stored with the cluster.
        answer = await http_call(
            session,
            "POST",
            cluster[1],
            f"/shadow/{key_id}/{alice_signature}/{common_point}/{encrypted_point}",
        )
        assert answer == (200, b"", None)

        # 6. Bob signs the key id and retrieves the document key as a shadow.
        bob_signature = hex_text(
            await rpc("secretstore_signRawHash", bob, BOB_PASSWORD, "0x" + key_id), 65
        )
        status, body, content_type = await http_call(
            session, "GET", cluster[2], f"/shadow/{key_id}/{bob_signature}"
        )
        assert (status, content_type) == (200, JSON_CONTENT_TYPE), body
        shadow = json.loads(body)
        # Parity's three fields first, in its order; our proofs and receipts after them
        assert list(shadow) == [
            "decrypted_secret",
            "common_point",
            "decrypt_shadows",
            "proofs",
            "receipts",
        ]
        assert len(shadow["decrypt_shadows"]) == 2  # t + 1
        # 7. Bob decrypts the document with it.
        document = await rpc(
            "secretstore_shadowDecrypt",
            bob,
            BOB_PASSWORD,
            shadow["decrypted_secret"],
            shadow["common_point"],
            shadow["decrypt_shadows"],
            encrypted_document,
        )
        assert document == document_hex

        # Without shadows: a node decrypts the key for Bob, secretstore_decrypt does the rest.
        status, body, _ = await http_call(session, "GET", cluster[0], f"/{key_id}/{bob_signature}")
        assert status == 200, body
        encrypted_key = json.loads(body)
        document = await rpc(
            "secretstore_decrypt", bob, BOB_PASSWORD, encrypted_key, encrypted_document
        )
        assert document == document_hex
        # Alice's own copy of the key (step 3) decrypts it without asking the cluster.
        document = await rpc(
            "secretstore_decrypt",
            alice,
            ALICE_PASSWORD,
            generated["encrypted_key"],
            encrypted_document,
        )
        assert document == document_hex


# --- (c) the command line ------------------------------------------------------------------


def test_encrypt_and_decrypt_commands_round_trip_a_multi_megabyte_file(
    cluster: LocalCluster, accounts: Accounts, tmp_path: Path
) -> None:
    original = SeededRng(b"a large document").random_bytes(3 * 1024 * 1024 + 12345)
    plain, encrypted, decrypted = tmp_path / "report.bin", tmp_path / "report.enc", tmp_path / "out"
    plain.write_bytes(original)
    key_id = sha256(b"a large document").hex()
    run_command(
        "encrypt",
        "--node",
        cluster[1].url,
        "--key-id",
        key_id,
        "--threshold",
        "1",
        "--in",
        str(plain),
        "--out",
        str(encrypted),
        "--keystore",
        str(accounts.directory),
        "--account",
        accounts.alice,
        "--password-file",
        str(accounts.alice_password_file),
    )
    ciphertext = encrypted.read_bytes()
    assert len(ciphertext) == docfile.HEADER_LENGTH + len(original) + 16 + docfile.TAG_LENGTH
    assert ciphertext[8:40] == bytes.fromhex(key_id)  # the file records its key id
    assert original[:4096] not in ciphertext
    run_command(
        "decrypt",
        "--node",
        cluster[2].url,
        "--key-id",
        "0x" + key_id,
        "--in",
        str(encrypted),
        "--out",
        str(decrypted),
        "--keystore",
        str(accounts.directory),
        "--account",
        accounts.bob,
        "--password-file",
        str(accounts.bob_password_file),
    )
    assert decrypted.read_bytes() == original


def test_encrypt_piped_into_decrypt_in_one_pipeline(
    cluster: LocalCluster, accounts: Accounts, tmp_path: Path
) -> None:
    """`encrypt --out - | decrypt --in -`: decrypt waits for the file's header (written once
    the key is stored) before it asks the cluster for the key."""
    original = SeededRng(b"piped").random_bytes(300_000)
    (tmp_path / "plain").write_bytes(original)
    alice = ("--keystore", str(accounts.directory), "--account", accounts.alice)
    alice += ("--password-file", str(accounts.alice_password_file))
    bob = ("--keystore", str(accounts.directory), "--account", accounts.bob)
    bob += ("--password-file", str(accounts.bob_password_file))
    key_id = sha256(b"piped").hex()
    encrypt = [*SECRETSTORE, "encrypt", "--node", cluster[0].url, "--key-id", key_id]
    encrypt += ["--threshold", "1", "--in", str(tmp_path / "plain"), "--out", "-", *alice]
    decrypt = [*SECRETSTORE, "decrypt", "--node", cluster[2].url, "--in", "-"]
    decrypt += ["--out", str(tmp_path / "out"), *bob]
    writer = subprocess.Popen(encrypt, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    reader = subprocess.Popen(
        decrypt, stdin=writer.stdout, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    assert writer.stdout is not None
    writer.stdout.close()  # the reader holds the pipe now
    _, reader_err = reader.communicate(timeout=COMMAND_TIMEOUT)
    writer_err = writer.communicate(timeout=COMMAND_TIMEOUT)[1]
    assert (writer.returncode, reader.returncode) == (0, 0), (writer_err, reader_err)
    assert (tmp_path / "out").read_bytes() == original
