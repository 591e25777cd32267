"""HTTP client: Parity's paths, body parsing, error mapping, and calls to a stand-in server.

The stand-in (standin.py) serves canned Parity-format answers made with our crypto, so that
the client's parsing and flows run over real HTTP on loopback.
"""

from __future__ import annotations

import json

import pytest

from secretstore.client import http_client as hc
from secretstore.crypto.bound import (
    BoundOperation,
    bound_signer_matches,
    generation_payload,
    store_payload,
)
from secretstore.crypto.curve import Point
from secretstore.crypto.document import encrypt_secret
from secretstore.crypto.ecies import ecies_encrypt
from secretstore.crypto.keys import (
    KeyPair,
    recover_public,
    recover_requester,
)
from secretstore.crypto.rng import SeededRng, random_scalar
from secretstore.errors import (
    AccessDenied,
    CryptoError,
    DecryptionError,
    DocumentKeyAlreadyStored,
    DocumentKeyNotFound,
    InvalidEncoding,
    InvalidRequest,
    SecretStoreError,
    ServerKeyAlreadyGenerated,
    ServerKeyNotFound,
)
from secretstore.http import parse as http_parse
from secretstore.types import NodeId

from .standin import StandIn, hex_json, parity_error_body

# Parity's http_listener.rs parse tests.
KEY_ID = bytes.fromhex("00" * 31 + "01")
SIG = bytes.fromhex(
    "a199fb39e11eefb61c78a4074a53c0d4424600a3e74aad4fb9d93a26c30d067e"
    "1d4d29936de0c73f19827394a1dd049480a0d581aee7ae7546968da7d3d1c2fd01"
)
SIG_HEX = SIG.hex()
COMMON = bytes.fromhex(
    "b486d3840218837b035c66196ecb15e6b067ca20101e11bd5e626288ab6806ec"
    "c70b8307012626bd512bad1559112d11d21025cef48cc7a1d2f3976da08f36c8"
)
ENCRYPTED = bytes.fromhex(
    "1395568277679f7f583ab7c0992da35f26cde57149ee70e524e49bdae62db3e1"
    "8eb96122501e7cbb798b784395d7bb5a499edead0706638ad056d886e56cf8fb"
)
HASH = bytes.fromhex("281b6bf43cb86d0dc7b98e1b7def4a80f3ce16d28d2308f934f116767306f06c")
NODE1 = bytes.fromhex(
    "843645726384530ffb0c52f175278143b5a93959af7864460f5a4fec9afd1450"
    "cfb8aef63dec90657f43f55b13e0a73c7524d4e9a13c051b4e5f1e53f39ecd91"
)
NODE2 = bytes.fromhex(
    "07230e34ebfe41337d3ed53b186b3861751f2401ee74b988bba55694e2a6f60c"
    "757677e194be2e53c3523cc8548694e636e6acb35c4e8fdc5e29d28679b9b2f3"
)
ID_HEX = KEY_ID.hex()


# --- paths ---------------------------------------------------------------------------------


def test_paths_are_the_ones_parity_parses() -> None:
    assert hc.generate_server_key_request(KEY_ID, SIG, 2) == hc.ApiRequest(
        "POST", f"/shadow/{ID_HEX}/{SIG_HEX}/2"
    )
    store = hc.store_document_key_request(
        KEY_ID, SIG, Point.from_bytes(COMMON), Point.from_bytes(ENCRYPTED)
    )
    assert store == hc.ApiRequest(
        "POST", f"/shadow/{ID_HEX}/{SIG_HEX}/{COMMON.hex()}/{ENCRYPTED.hex()}"
    )
    assert hc.generate_document_key_request(KEY_ID, SIG, 2).path == f"/{ID_HEX}/{SIG_HEX}/2"
    assert hc.server_key_request(KEY_ID, SIG) == hc.ApiRequest("GET", f"/server/{ID_HEX}/{SIG_HEX}")
    assert hc.document_key_request(KEY_ID, SIG) == hc.ApiRequest("GET", f"/{ID_HEX}/{SIG_HEX}")
    assert hc.document_key_shadow_request(KEY_ID, SIG).path == f"/shadow/{ID_HEX}/{SIG_HEX}"
    assert hc.schnorr_request(KEY_ID, SIG, HASH).path == f"/schnorr/{ID_HEX}/{SIG_HEX}/{HASH.hex()}"
    assert hc.ecdsa_request(KEY_ID, SIG, HASH).path == f"/ecdsa/{ID_HEX}/{SIG_HEX}/{HASH.hex()}"


def test_servers_set_change_request_body_is_a_sorted_json_array() -> None:
    other = bytes([0xB1]) + SIG[1:]
    request = hc.servers_set_change_request(SIG, other, [NodeId(NODE1), NodeId(NODE2), NODE1])
    assert request.method == "POST"
    assert request.path == f"/admin/servers_set_change/{SIG_HEX}/{other.hex()}"
    assert json.loads(request.body or b"") == ["0x" + NODE2.hex(), "0x" + NODE1.hex()]


def test_requester_signature_is_over_the_key_id_itself() -> None:
    requester = KeyPair.generate(SeededRng(1))
    signature = hc.requester_signature(requester, KEY_ID)
    assert recover_requester(signature, KEY_ID) == requester.public
    path = hc.document_key_request(KEY_ID, signature).path
    assert path == path.lower() and "0x" not in path


@pytest.mark.parametrize(
    "build",
    [
        lambda: hc.server_key_request(KEY_ID[:31], SIG),
        lambda: hc.server_key_request(KEY_ID, SIG[:64]),
        lambda: hc.generate_server_key_request(KEY_ID, SIG, -1),
        lambda: hc.generate_server_key_request(KEY_ID, SIG, True),
        lambda: hc.schnorr_request(KEY_ID, SIG, HASH + b"\x00"),
        lambda: hc.servers_set_change_request(SIG, SIG, [NodeId(NODE1[:63])]),
    ],
)
def test_bad_arguments_are_invalid_requests(build: object) -> None:
    with pytest.raises(InvalidRequest):
        build()  # type: ignore[operator]


# --- bodies ---------------------------------------------------------------------------------


def test_public_body_with_and_without_prefix() -> None:
    assert hc.parse_public_body(json.dumps("0x" + NODE1.hex()).encode()).to_bytes() == NODE1
    assert hc.parse_public_body(json.dumps(NODE1.hex()).encode()).to_bytes() == NODE1


@pytest.mark.parametrize(
    "body", [b"", b"0x00", b'{"a":1}', b'"0x1234"', json.dumps("0x" + "00" * 64).encode()]
)
def test_malformed_public_bodies(body: bytes) -> None:
    with pytest.raises(CryptoError):  # InvalidEncoding, or InvalidPoint for 64 zero bytes
        hc.parse_public_body(body)


def test_shadow_body_in_parity_format() -> None:
    body = json.dumps(
        {
            "decrypted_secret": "0x" + NODE1.hex(),
            "common_point": "0x" + NODE2.hex(),
            "decrypt_shadows": ["0x0102", "0x0304"],
        }
    ).encode()
    shadow = hc.parse_shadow_body(body)
    assert shadow.decrypted_secret.to_bytes() == NODE1
    assert shadow.common_point.to_bytes() == NODE2
    assert shadow.decrypt_shadows == (b"\x01\x02", b"\x03\x04")


@pytest.mark.parametrize(
    "value",
    [
        [],
        {"decrypted_secret": "0x" + NODE1.hex(), "decrypt_shadows": []},
        {"decrypted_secret": "0x" + NODE1.hex(), "common_point": "0x" + NODE2.hex()},
        {
            "decrypted_secret": "0x" + NODE1.hex(),
            "common_point": "0x" + NODE2.hex(),
            "decrypt_shadows": [1],
        },
    ],
)
def test_malformed_shadow_bodies(value: object) -> None:
    with pytest.raises(InvalidEncoding):
        hc.parse_shadow_body(json.dumps(value).encode())


@pytest.mark.parametrize(
    ("status", "text", "kind"),
    [
        (400, "Server key with this ID is already generated", ServerKeyAlreadyGenerated),
        (400, "Document key with this ID is already stored", DocumentKeyAlreadyStored),
        (400, "Insufficient requester data: bad signature", InvalidRequest),
        (403, "Access denied", AccessDenied),
        (403, "Consensus unreachable", AccessDenied),
        (404, "Server key with this ID is not found", ServerKeyNotFound),
        (404, "Document key with this ID is not found", DocumentKeyNotFound),
        (500, "Internal error: session with the same id is already registered", SecretStoreError),
    ],
)
def test_error_mapping_carries_the_message(status: int, text: str, kind: type) -> None:
    error = hc.error_from_response(status, parity_error_body(text))
    assert type(error) is kind
    assert text in str(error)


def test_error_with_empty_body() -> None:
    assert type(hc.error_from_response(400, b"")) is InvalidRequest
    assert "502" in str(hc.error_from_response(502, b"Bad Gateway"))


REQUESTER = KeyPair.generate(SeededRng(77))


async def test_every_call_against_the_stand_in(stand_in: StandIn) -> None:
    async with hc.KeyServerClient(stand_in.url + "/", rng=SeededRng(5)) as client:
        server_key = await client.generate_server_key(KEY_ID, REQUESTER, 1)
        method, path, _ = stand_in.seen[-1]
        assert (method, path.rsplit("/", 1)[1]) == ("POST", "1")
        assert await client.retrieve_server_key(KEY_ID, REQUESTER) == server_key
        with pytest.raises(DocumentKeyNotFound, match="not found"):
            await client.retrieve_document_key(KEY_ID, REQUESTER)
        document_key = Point.base_mul(random_scalar(SeededRng(6)))
        stored = encrypt_secret(document_key, server_key, SeededRng(7))
        await client.store_document_key(
            KEY_ID, REQUESTER, stored.common_point, stored.encrypted_point
        )
        assert await client.retrieve_document_key(KEY_ID, REQUESTER) == document_key
        assert await client.retrieve_document_key_shadow(KEY_ID, REQUESTER) == document_key
        c, s = await client.sign_schnorr(KEY_ID, REQUESTER, HASH)
        assert (c.to_bytes(), s.to_bytes()) == (HASH, HASH)
        signature = await client.sign_ecdsa(KEY_ID, REQUESTER, HASH)
        assert recover_public(signature, HASH) == server_key
        await client.change_servers_set(SIG, SIG, [NodeId(NODE1)])
        assert stand_in.seen[-1][1].startswith("/admin/servers_set_change/")
        assert json.loads(stand_in.seen[-1][2]) == ["0x" + NODE1.hex()]


async def test_server_and_document_key_generation(stand_in: StandIn) -> None:
    other_id = bytes(31) + b"\x02"
    async with hc.KeyServerClient(stand_in.url) as client:
        document_key = await client.generate_document_key(other_id, REQUESTER, 0)
        assert await client.retrieve_document_key_shadow(other_id, REQUESTER) == document_key
        with pytest.raises(ServerKeyAlreadyGenerated, match="already generated"):
            await client.generate_server_key(other_id, REQUESTER, 0)
        with pytest.raises(ServerKeyNotFound):
            await client.retrieve_server_key(bytes(32), REQUESTER)


async def test_response_for_another_requester_does_not_decrypt(stand_in: StandIn) -> None:
    async with hc.KeyServerClient(stand_in.url) as client:
        await client.generate_document_key(KEY_ID, REQUESTER, 0)
        stand_in.answer = lambda *_: hex_json(  # type: ignore[method-assign]
            ecies_encrypt(KeyPair.generate(SeededRng(9)).public, bytes(64), SeededRng(9))
        )
        with pytest.raises(DecryptionError):
            await client.retrieve_document_key(KEY_ID, REQUESTER)


async def test_encrypt_and_decrypt_document_flows(stand_in: StandIn) -> None:
    async with hc.KeyServerClient(stand_in.url, rng=SeededRng(8)) as client:
        encrypted = await client.encrypt_document(KEY_ID, REQUESTER, 1, b"attack at dawn")
        assert [m for m, _, _ in stand_in.seen] == ["POST", "POST"]  # no node generated M
        for shadow in (True, False):
            decrypted = await client.decrypt_document(KEY_ID, REQUESTER, encrypted, shadow)
            assert decrypted == b"attack at dawn"


def test_base_url_needs_a_scheme() -> None:
    with pytest.raises(InvalidRequest, match="http://"):
        hc.KeyServerClient("127.0.0.1:8082")


async def test_unreachable_server_is_a_secret_store_error() -> None:
    async with hc.KeyServerClient("http://127.0.0.1:9", timeout=5) as client:
        with pytest.raises(SecretStoreError, match="unreachable"):
            await client.retrieve_server_key(KEY_ID, REQUESTER)


def test_sync_client(stand_in: StandIn) -> None:
    with hc.SyncKeyServerClient(stand_in.url, rng=SeededRng(10)) as client:
        encrypted = client.encrypt_document(KEY_ID, REQUESTER, 0, b"x" * 100)
        assert client.decrypt_document(KEY_ID, REQUESTER, encrypted) == b"x" * 100
        key = client.retrieve_document_key_shadow(KEY_ID, REQUESTER)
        assert client.retrieve_document_key(KEY_ID, REQUESTER) == key


def test_requester_constructors(tmp_path: object) -> None:
    from pathlib import Path

    from secretstore.keystore import Keystore

    secret_hex = REQUESTER.secret.to_bytes().hex()
    assert hc.requester_from_secret("0x" + secret_hex) == REQUESTER
    assert hc.requester_from_secret(bytes.fromhex(secret_hex)) == REQUESTER
    keystore = Keystore(Path(str(tmp_path)), kdf="pbkdf2", iterations=2)
    address = keystore.import_secret(REQUESTER.secret, "pw")
    assert hc.requester_from_keystore(str(tmp_path), "0x" + address.hex(), "pw") == REQUESTER
    with pytest.raises(InvalidEncoding):
        hc.requester_from_secret("0x1234")


# --- bound requests: sent by default for store and signing ---------------------------------


def _bound_of(header: str | None) -> bytes:
    assert header is not None
    return bytes.fromhex(header)


async def test_generation_store_and_signing_carry_a_bound_signature_over_the_request(
    stand_in: StandIn,
) -> None:
    async with hc.KeyServerClient(stand_in.url, rng=SeededRng(11)) as client:
        server_key = await client.generate_server_key(KEY_ID, REQUESTER, 1)
        generation_bound = _bound_of(stand_in.bound_headers[-1])
        stored = encrypt_secret(
            Point.base_mul(random_scalar(SeededRng(12))), server_key, SeededRng(13)
        )
        await client.store_document_key(
            KEY_ID, REQUESTER, stored.common_point, stored.encrypted_point
        )
        store_bound = _bound_of(stand_in.bound_headers[-1])
        await client.sign_schnorr(KEY_ID, REQUESTER, HASH)
        schnorr_bound = _bound_of(stand_in.bound_headers[-1])
        await client.sign_ecdsa(KEY_ID, REQUESTER, HASH)
        ecdsa_bound = _bound_of(stand_in.bound_headers[-1])
        await client.retrieve_document_key_shadow(KEY_ID, REQUESTER)
        await client.retrieve_server_key(KEY_ID, REQUESTER)
    assert stand_in.bound_headers[-2:] == [None, None]  # retrievals: Parity's form only
    generate = BoundOperation.GENERATE_SERVER_KEY
    one = generation_payload(1)
    assert bound_signer_matches(generation_bound, REQUESTER.address, generate, KEY_ID, one)
    two = generation_payload(2)
    assert not bound_signer_matches(generation_bound, REQUESTER.address, generate, KEY_ID, two)
    payload = store_payload(stored.common_point, stored.encrypted_point)
    store_op = BoundOperation.STORE_DOCUMENT_KEY
    assert bound_signer_matches(store_bound, REQUESTER.address, store_op, KEY_ID, payload)
    schnorr, ecdsa = BoundOperation.SIGN_SCHNORR, BoundOperation.SIGN_ECDSA
    assert bound_signer_matches(schnorr_bound, REQUESTER.address, schnorr, KEY_ID, HASH)
    assert bound_signer_matches(ecdsa_bound, REQUESTER.address, ecdsa, KEY_ID, HASH)
    assert not bound_signer_matches(schnorr_bound, REQUESTER.address, ecdsa, KEY_ID, HASH)


async def test_bound_requests_off_sends_exactly_parity_s_requests(stand_in: StandIn) -> None:
    async with hc.KeyServerClient(stand_in.url, bound_requests=False) as client:
        server_key = await client.generate_server_key(KEY_ID, REQUESTER, 1)
        await client.store_document_key(KEY_ID, REQUESTER, server_key, server_key)
        await client.sign_schnorr(KEY_ID, REQUESTER, HASH)
        await client.sign_ecdsa(KEY_ID, REQUESTER, HASH)
    assert stand_in.bound_headers == [None] * 4


def test_the_sync_client_passes_the_choice_on(stand_in: StandIn) -> None:
    with hc.SyncKeyServerClient(stand_in.url) as sync:
        sync.generate_server_key(KEY_ID, REQUESTER, 1)
    with hc.SyncKeyServerClient(stand_in.url, bound_requests=False) as sync:
        sync.sign_ecdsa(KEY_ID, REQUESTER, HASH)
    with hc.SyncKeyServerClient(stand_in.url) as sync:
        sync.sign_ecdsa(KEY_ID, REQUESTER, HASH)
    assert stand_in.bound_headers[-2] is None and stand_in.bound_headers[-1] is not None


def test_request_builders_put_the_bound_signature_in_the_header_only() -> None:
    bound = b"\x07" * 65
    plain = hc.ecdsa_request(KEY_ID, SIG, HASH)
    with_bound = hc.ecdsa_request(KEY_ID, SIG, HASH, bound)
    assert plain.headers == () and with_bound.path == plain.path
    assert with_bound.headers == ((hc.BOUND_SIGNATURE_HEADER, bound.hex()),)
    assert hc.BOUND_SIGNATURE_HEADER == http_parse.BOUND_SIGNATURE_HEADER
    with pytest.raises(InvalidRequest):
        hc.schnorr_request(KEY_ID, SIG, HASH, bound[:64])
    with pytest.raises(InvalidRequest):
        hc.bound_signing_signature(REQUESTER, BoundOperation.STORE_DOCUMENT_KEY, KEY_ID, HASH)


def test_the_delete_request_is_what_the_server_parses() -> None:
    author = KeyPair.generate(SeededRng(b"delete author"))
    public = Point.base_mul(random_scalar(SeededRng(b"delete key")))
    bound = hc.bound_delete_signature(author, KEY_ID, public)
    from secretstore.crypto.bound import delete_payload

    assert bound_signer_matches(
        bound, author.address, BoundOperation.DELETE_KEY, KEY_ID, delete_payload(public)
    )
    request = hc.delete_key_request(KEY_ID, SIG, bound)
    parsed = http_parse.parse_request(
        request.method, request.path, b"", [value for _, value in request.headers]
    )
    assert parsed == http_parse.DeleteKey(KEY_ID, SIG, bound)  # type: ignore[arg-type]


def test_the_delete_body_is_parsed_strictly() -> None:
    a, b = (Point.base_mul(random_scalar(SeededRng(i))).to_bytes() for i in (1, 2))
    body = json.dumps(
        {"key_id": "0x" + KEY_ID.hex(), "confirmed": ["0x" + a.hex()], "unconfirmed": [b.hex()]}
    ).encode()
    deleted = hc.parse_delete_body(body)
    assert deleted == hc.KeyDeleted(KEY_ID, (NodeId(a),), (NodeId(b),))
    for bad in (b'"x"', b"{}", b'{"key_id":"0x00"}', body.replace(b"unconfirmed", b"other")):
        with pytest.raises(InvalidEncoding):
            hc.parse_delete_body(bad)
