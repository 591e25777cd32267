"""JSON-RPC dispatch: every secretstore_* method, batches, and every error object."""

from __future__ import annotations

import json
from typing import Any

import pytest

from secretstore.client import jsonrpc
from secretstore.crypto.curve import Point, Scalar
from secretstore.crypto.document import decrypt_document, encrypt_document
from secretstore.crypto.ecies import ecies_encrypt
from secretstore.crypto.keys import KeyPair, verify_signature
from secretstore.crypto.rng import SeededRng, random_scalar
from secretstore.errors import UnknownAccount, WrongPassword
from secretstore.types import Address

from . import only, vectors

PASSWORD = "password"


class FakeAccounts:
    """In-memory accounts (the real Keystore runs in tests/integration/client)."""

    def __init__(self) -> None:
        self._accounts: dict[bytes, tuple[str, KeyPair]] = {}

    def add(self, pair: KeyPair, password: str = PASSWORD) -> KeyPair:
        self._accounts[pair.address] = (password, pair)
        return pair

    def unlock(self, address: Address, password: str) -> KeyPair:
        if address not in self._accounts:
            raise UnknownAccount("no such account")
        expected, pair = self._accounts[address]
        if password != expected:
            raise WrongPassword("wrong password")
        return pair


def pair_of(secret_hex: str) -> KeyPair:
    return KeyPair.from_secret(Scalar.secret_from_bytes(bytes.fromhex(secret_hex)))


@pytest.fixture
def accounts() -> FakeAccounts:
    store = FakeAccounts()
    for entry in vectors("account_addresses"):
        store.add(pair_of(entry["secret"]))
    return store


def call(accounts: FakeAccounts, method: str, params: Any, request_id: Any = 1) -> Any:
    request = {"jsonrpc": "2.0", "method": method, "params": params, "id": request_id}
    return jsonrpc.handle_request(request, accounts, SeededRng(99))


def result_of(accounts: FakeAccounts, method: str, params: Any) -> Any:
    response = call(accounts, method, params)
    assert "error" not in response, response
    return response["result"]


def error_of(accounts: FakeAccounts, method: str, params: Any) -> dict[str, Any]:
    response = call(accounts, method, params)
    assert "result" not in response, response
    error: dict[str, Any] = response["error"]
    return error


# --- Parity's rpc tests, request text in, response text out --------------------------------

MOCKED_KEY = only("rpc_encrypted_keys")["encrypted_key"]


def test_parity_rpc_encrypt_and_decrypt(accounts: FakeAccounts) -> None:
    encryption = (
        '{"jsonrpc": "2.0", "method": "secretstore_encrypt", "params":[\n'
        '\t\t"0x5c2f3b4ec0c2234f8358697edc8b82a62e3ac995", "password",\n'
        f'\t\t"0x{MOCKED_KEY}",\n\t\t"0xdeadbeef"\n\t], "id": 1}}'
    )
    encrypted = json.loads(jsonrpc.handle_body(encryption, accounts, SeededRng(1)) or "")
    assert encrypted["id"] == 1 and len(encrypted["result"]) == 2 + 2 * 20
    decryption = (
        '{"jsonrpc": "2.0", "method": "secretstore_decrypt", "params":[\n'
        '\t\t"0x5c2f3b4ec0c2234f8358697edc8b82a62e3ac995", "password",\n'
        f'\t\t"0x{MOCKED_KEY}","{encrypted["result"]}"\n\t\t], "id": 2}}'
    )
    answer = jsonrpc.handle_body(decryption.encode(), accounts, SeededRng(2))
    assert answer == '{"jsonrpc":"2.0","result":"0xdeadbeef","id":2}'


def test_parity_rpc_shadow_decrypt_with_checksummed_address(accounts: FakeAccounts) -> None:
    vector = only("rpc_shadow_decrypt")
    request = {
        "jsonrpc": "2.0",
        "method": "secretstore_shadowDecrypt",
        "params": [
            "0x00dfE63B22312ab4329aD0d28CaD8Af987A01932",
            "password",
            "0x" + vector["decrypted_secret"],
            "0x" + vector["common_point"],
            ["0x" + s for s in vector["decrypt_shadows"]],
            "0x" + vector["encrypted_document"],
        ],
        "id": 1,
    }
    answer = jsonrpc.handle_body(json.dumps(request), accounts, SeededRng(1))
    assert answer == '{"jsonrpc":"2.0","result":"0xdeadbeef","id":1}'


def test_parity_rpc_servers_set_hash(accounts: FakeAccounts) -> None:
    vector = only("servers_set_hash")
    result = result_of(
        accounts, "secretstore_serversSetHash", [["0x" + h for h in vector["node_ids"]]]
    )
    assert result == "0x" + vector["hash"]


def test_sign_raw_hash_documented_example(accounts: FakeAccounts) -> None:
    vector = only("sign_raw_hash")
    dev = next(e for e in vectors("account_addresses") if e["secret"] == vector["secret"])
    result = result_of(
        accounts,
        "secretstore_signRawHash",
        ["0x" + dev["address"], PASSWORD, "0x" + vector["hash"]],
    )
    assert result == "0x" + vector["signature"]


def test_sign_raw_hash_of_parity_rpc_test(accounts: FakeAccounts) -> None:
    pair = pair_of(vectors("account_addresses")[1]["secret"])
    raw_hash = "0x" + "00" * 31 + "01"
    params = ["0x00dfE63B22312ab4329aD0d28CaD8Af987A01932", PASSWORD, raw_hash]
    signature = bytes.fromhex(result_of(accounts, "secretstore_signRawHash", params)[2:])
    assert verify_signature(pair.public, signature, bytes.fromhex(raw_hash[2:]))


def test_documented_decrypt_example(accounts: FakeAccounts) -> None:
    vector = only("rpc_decrypt")
    params = [
        "0x00a329c0648769A73afAc7F9381E08FB43dBEA72",
        PASSWORD,
        "0x" + vector["encrypted_key"],
        "0x" + vector["encrypted_document"],
    ]
    assert result_of(accounts, "secretstore_decrypt", params) == "0x" + vector["document"]


def test_generate_document_key_result_shape_and_meaning(accounts: FakeAccounts) -> None:
    pair = pair_of(vectors("account_addresses")[0]["secret"])
    server_secret = random_scalar(SeededRng(4))
    server_public = "0x" + Point.base_mul(server_secret).to_bytes().hex()
    params = ["0x" + pair.address.hex(), PASSWORD, server_public]
    result = result_of(accounts, "secretstore_generateDocumentKey", params)
    assert list(result) == ["common_point", "encrypted_point", "encrypted_key"]
    common = Point.from_bytes(bytes.fromhex(result["common_point"][2:]))
    encrypted = Point.from_bytes(bytes.fromhex(result["encrypted_point"][2:]))
    key = encrypted - common * server_secret
    encrypted_doc = result_of(
        accounts,
        "secretstore_encrypt",
        [params[0], PASSWORD, result["encrypted_key"], "0x0102"],
    )
    assert decrypt_document(key, bytes.fromhex(encrypted_doc[2:])) == b"\x01\x02"


@pytest.mark.parametrize(
    "spelling",
    [
        "0x5c2f3b4ec0c2234f8358697edc8b82a62e3ac995",
        "0x5C2F3B4EC0C2234F8358697EDC8B82A62E3AC995",
        "5c2f3b4ec0c2234f8358697edc8b82a62e3ac995",
    ],
)
def test_address_spellings(accounts: FakeAccounts, spelling: str) -> None:
    result = result_of(accounts, "secretstore_signRawHash", [spelling, PASSWORD, "00" * 32])
    assert result.startswith("0x") and len(result) == 2 + 130


def test_unprefixed_and_empty_hex_are_accepted(accounts: FakeAccounts) -> None:
    address = "0x5c2f3b4ec0c2234f8358697edc8b82a62e3ac995"
    encrypted = result_of(accounts, "secretstore_encrypt", [address, PASSWORD, MOCKED_KEY, ""])
    assert len(encrypted) == 2 + 32
    decrypted = result_of(
        accounts, "secretstore_decrypt", [address, PASSWORD, MOCKED_KEY, encrypted[2:]]
    )
    assert decrypted == "0x"


# --- batches and notifications ------------------------------------------------------------


def test_batch_answers_each_call_in_order_and_skips_notifications(
    accounts: FakeAccounts,
) -> None:
    ids = ["0x" + h for h in only("servers_set_hash")["node_ids"]]
    batch = [
        {"jsonrpc": "2.0", "method": "secretstore_serversSetHash", "params": [ids], "id": "a"},
        {"jsonrpc": "2.0", "method": "secretstore_serversSetHash", "params": [ids]},
        {"jsonrpc": "2.0", "method": "nope", "id": 7},
        42,
    ]
    responses = jsonrpc.handle_request(batch, accounts, SeededRng(1))
    assert isinstance(responses, list) and len(responses) == 3
    assert responses[0] == {
        "jsonrpc": "2.0",
        "result": "0x" + only("servers_set_hash")["hash"],
        "id": "a",
    }
    assert responses[1]["error"]["code"] == jsonrpc.METHOD_NOT_FOUND and responses[1]["id"] == 7
    assert responses[2]["error"]["code"] == jsonrpc.INVALID_REQUEST
    assert responses[2]["id"] is None


def test_notifications_alone_get_no_answer(accounts: FakeAccounts) -> None:
    note = {"jsonrpc": "2.0", "method": "secretstore_serversSetHash", "params": [[]]}
    assert jsonrpc.handle_body(json.dumps(note), accounts, SeededRng(1)) is None
    assert jsonrpc.handle_body(json.dumps([note, note]), accounts, SeededRng(1)) is None


def test_empty_batch_is_one_invalid_request(accounts: FakeAccounts) -> None:
    answer = json.loads(jsonrpc.handle_body("[]", accounts, SeededRng(1)) or "")
    assert answer["error"]["code"] == jsonrpc.INVALID_REQUEST and answer["id"] is None


def test_request_without_jsonrpc_member_is_served(accounts: FakeAccounts) -> None:
    request = {"method": "secretstore_serversSetHash", "params": [[]], "id": 3}
    response = jsonrpc.handle_request(request, accounts, SeededRng(1))
    assert isinstance(response, dict) and response["result"].startswith("0x")


# --- envelope errors -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    ["{", "not json", b"\xff\xfe{", "", "[" * 100_000],
    ids=["unclosed", "text", "not-utf8", "empty", "deeply-nested"],
)
def test_parse_error(accounts: FakeAccounts, body: str | bytes) -> None:
    answer = json.loads(jsonrpc.handle_body(body, accounts, SeededRng(1)) or "")
    assert answer["error"]["code"] == jsonrpc.PARSE_ERROR
    assert answer["error"]["message"] == "Parse error" and answer["id"] is None


@pytest.mark.parametrize(
    ("request_obj", "echoed_id"),
    [
        ("a string", None),
        ({"jsonrpc": "1.0", "method": "secretstore_serversSetHash", "id": 1}, 1),
        ({"jsonrpc": "2.0", "method": 5, "id": 2}, 2),
        ({"jsonrpc": "2.0", "id": 3}, 3),
        ({"jsonrpc": "2.0", "method": "secretstore_serversSetHash", "params": "x", "id": 4}, 4),
        ({"jsonrpc": "2.0", "method": "secretstore_serversSetHash", "id": True}, None),
        ({"jsonrpc": "2.0", "method": "secretstore_serversSetHash", "id": {"a": 1}}, None),
    ],
)
def test_invalid_request(accounts: FakeAccounts, request_obj: Any, echoed_id: Any) -> None:
    response = jsonrpc.handle_request(request_obj, accounts, SeededRng(1))
    assert isinstance(response, dict)
    assert response["error"]["code"] == jsonrpc.INVALID_REQUEST
    assert response["id"] == echoed_id


def test_method_not_found(accounts: FakeAccounts) -> None:
    error = error_of(accounts, "secretstore_nothing", [])
    assert error["code"] == jsonrpc.METHOD_NOT_FOUND and "secretstore_nothing" in error["data"]


# --- invalid params ------------------------------------------------------------------------

ADDRESS = "0x5c2f3b4ec0c2234f8358697edc8b82a62e3ac995"
POINT = "0x" + only("shadow_decrypt")["common_point"]


@pytest.mark.parametrize(
    ("method", "params", "names"),
    [
        ("secretstore_signRawHash", [ADDRESS, PASSWORD], "expected 3"),
        ("secretstore_signRawHash", {"address": ADDRESS}, "positional"),
        ("secretstore_signRawHash", [ADDRESS, PASSWORD, "0x00", "extra"], "expected 3"),
        ("secretstore_signRawHash", ["0x1234", PASSWORD, "00" * 32], "address"),
        ("secretstore_signRawHash", [ADDRESS, 5, "00" * 32], "password"),
        ("secretstore_signRawHash", [ADDRESS, PASSWORD, "0x" + "00" * 31], "raw_hash"),
        ("secretstore_signRawHash", [ADDRESS, PASSWORD, "0xzz" + "00" * 31], "raw_hash"),
        ("secretstore_signRawHash", [ADDRESS, PASSWORD, "0x" + "0" * 63], "raw_hash"),
        ("secretstore_generateDocumentKey", [ADDRESS, PASSWORD, "0x" + "00" * 64], "server_key"),
        ("secretstore_generateDocumentKey", [ADDRESS, PASSWORD, POINT[:-2]], "server_key"),
        ("secretstore_encrypt", [ADDRESS, PASSWORD, 7, "0x00"], "key"),
        ("secretstore_decrypt", [ADDRESS, PASSWORD, "0x00", "0x" + "00" * 15], "encrypted_data"),
        (
            "secretstore_shadowDecrypt",
            [ADDRESS, PASSWORD, POINT, POINT, "0x00", "00" * 16],
            "shadows",
        ),
        ("secretstore_shadowDecrypt", [ADDRESS, PASSWORD, POINT, POINT, [], "00" * 16], "shadows"),
        (
            "secretstore_shadowDecrypt",
            [ADDRESS, PASSWORD, POINT, POINT, ["0xg"], "00" * 16],
            "shadows[0]",
        ),
        ("secretstore_serversSetHash", [["0x" + "11" * 63]], "servers_set[0]"),
        ("secretstore_serversSetHash", ["0x" + "11" * 64], "servers_set"),
        ("secretstore_serversSetHash", [], "expected 1"),
    ],
)
def test_invalid_params(accounts: FakeAccounts, method: str, params: Any, names: str) -> None:
    error = error_of(accounts, method, params)
    assert error["code"] == jsonrpc.INVALID_PARAMS
    assert names in error["message"] + error.get("data", "")


def test_missing_params_member_counts_as_none(accounts: FakeAccounts) -> None:
    request = {"jsonrpc": "2.0", "method": "secretstore_signRawHash", "id": 1}
    response = jsonrpc.handle_request(request, accounts, SeededRng(1))
    assert isinstance(response, dict) and response["error"]["code"] == jsonrpc.INVALID_PARAMS


# --- account and decryption errors ---------------------------------------------------------


def test_unknown_account(accounts: FakeAccounts) -> None:
    error = error_of(accounts, "secretstore_signRawHash", ["0x" + "ab" * 20, PASSWORD, "00" * 32])
    assert error == {
        "code": jsonrpc.ACCOUNT_ERROR,
        "message": "Could not sign raw hash.",
        "data": "unknown account 0x" + "ab" * 20,
    }


def test_wrong_password_names_no_password(accounts: FakeAccounts) -> None:
    secret_try = "hunter2-guess"
    response = call(accounts, "secretstore_decrypt", [ADDRESS, secret_try, MOCKED_KEY, "00" * 16])
    assert response["error"] == {
        "code": jsonrpc.ACCOUNT_ERROR,
        "message": "Could not decrypt key.",
        "data": "wrong password",
    }
    assert secret_try not in json.dumps(response)


def test_generate_document_key_account_error_message(accounts: FakeAccounts) -> None:
    error = error_of(accounts, "secretstore_generateDocumentKey", [ADDRESS, "x", POINT])
    assert error["code"] == jsonrpc.ACCOUNT_ERROR
    assert error["message"] == "Could not read account public."


def test_key_for_another_account_fails_its_mac(accounts: FakeAccounts) -> None:
    # The mocked test's key belongs to 0x5c2f…; 0x00df… cannot open it.
    other = "0x00dfe63b22312ab4329ad0d28cad8af987a01932"
    error = error_of(accounts, "secretstore_decrypt", [other, PASSWORD, MOCKED_KEY, "00" * 16])
    assert error["code"] == jsonrpc.ACCOUNT_ERROR
    assert error["message"] == "Could not decrypt key."


def test_key_that_is_not_64_bytes_or_not_a_point(accounts: FakeAccounts) -> None:
    pair = pair_of(vectors("account_addresses")[0]["secret"])
    short = ecies_encrypt(pair.public, bytes(32), SeededRng(1)).hex()
    error = error_of(accounts, "secretstore_encrypt", [ADDRESS, PASSWORD, short, "00"])
    assert error["code"] == jsonrpc.INVALID_PARAMS and "key" in error["message"]
    off_curve = ecies_encrypt(pair.public, (5).to_bytes(32, "big") * 2, SeededRng(2)).hex()
    error = error_of(accounts, "secretstore_encrypt", [ADDRESS, PASSWORD, off_curve, "00"])
    assert error["code"] == jsonrpc.ENCRYPTION_ERROR


def test_shadow_that_is_not_a_secret(accounts: FakeAccounts) -> None:
    pair = pair_of(vectors("account_addresses")[0]["secret"])
    zero = ecies_encrypt(pair.public, bytes(32), SeededRng(1)).hex()
    params = [ADDRESS, PASSWORD, POINT, POINT, [zero], "00" * 16]
    error = error_of(accounts, "secretstore_shadowDecrypt", params)
    assert error["code"] == jsonrpc.ACCOUNT_ERROR and error["message"] == "invalid secret"


def test_shadows_that_combine_to_nothing(accounts: FakeAccounts) -> None:
    # D = -(d·C'): the shadows cancel the decrypted secret, so there is no key.
    pair = pair_of(vectors("account_addresses")[0]["secret"])
    common = Point.from_bytes(bytes.fromhex(POINT[2:]))
    coefficient = random_scalar(SeededRng(5))
    decrypted_secret = -(common * coefficient)
    shadow = ecies_encrypt(pair.public, coefficient.to_bytes(), SeededRng(6)).hex()
    params = [ADDRESS, PASSWORD, decrypted_secret.to_bytes().hex(), POINT, [shadow], "00" * 16]
    error = error_of(accounts, "secretstore_shadowDecrypt", params)
    assert error["code"] == jsonrpc.ENCRYPTION_ERROR


def test_encrypt_output_decrypts_with_the_same_key(accounts: FakeAccounts) -> None:
    pair = pair_of(vectors("account_addresses")[0]["secret"])
    key = Point.base_mul(random_scalar(SeededRng(8)))
    wrapped = ecies_encrypt(pair.public, key.to_bytes(), SeededRng(9)).hex()
    result = result_of(accounts, "secretstore_encrypt", [ADDRESS, PASSWORD, wrapped, "0xc0ffee"])
    assert decrypt_document(key, bytes.fromhex(result[2:])) == b"\xc0\xff\xee"
    again = encrypt_document(key, b"\xc0\xff\xee", SeededRng(10)).hex()
    assert (
        result_of(accounts, "secretstore_decrypt", [ADDRESS, PASSWORD, wrapped, again])
        == "0xc0ffee"
    )
