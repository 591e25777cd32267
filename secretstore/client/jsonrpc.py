"""JSON-RPC 2.0 dispatch of Parity's `secretstore_*` methods over an account store (no I/O)."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final, Protocol

from secretstore.client import helpers, safejson
from secretstore.crypto.curve import Point, Scalar
from secretstore.crypto.document import (
    decrypt_document,
    decrypt_with_shadow_coefficients,
    encrypt_document,
)
from secretstore.crypto.keys import KeyPair
from secretstore.crypto.rng import Rng
from secretstore.encoding import parse_hex, to_hex
from secretstore.errors import (
    CryptoError,
    DecryptionError,
    InvalidEncoding,
    KeystoreError,
    SecretStoreError,
    UnknownAccount,
    WrongPassword,
)
from secretstore.types import Address, NodeId

# --- error codes: JSON-RPC 2.0's own, and Parity's server codes where it had them ---------
PARSE_ERROR: Final = -32700
INVALID_REQUEST: Final = -32600
METHOD_NOT_FOUND: Final = -32601
INVALID_PARAMS: Final = -32602
INTERNAL_ERROR: Final = -32603
#: Parity's ACCOUNT_ERROR: unknown account, wrong password, an envelope that does not open.
ACCOUNT_ERROR: Final = -32023
#: Parity's ENCRYPTION_ERROR: the document key material is not usable.
ENCRYPTION_ERROR: Final = -32055

JsonValue = Any
Response = dict[str, JsonValue]


class AccountStore(Protocol):
    """What the dispatcher needs from a keystore: an account's key pair for its password."""

    def unlock(self, address: Address, password: str) -> KeyPair: ...


class _RpcFailure(Exception):
    """A JSON-RPC error object on its way to the response; never leaves this module."""

    def __init__(self, code: int, message: str, data: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.data = data


def _invalid_params(name: str, detail: str) -> _RpcFailure:
    return _RpcFailure(INVALID_PARAMS, f"Invalid params: {name}", f"{name}: {detail}")


# --- parameter decoding --------------------------------------------------------------------


def _hex(value: JsonValue, name: str, length: int | None = None) -> bytes:
    if not isinstance(value, str):
        raise _invalid_params(name, "expected a hex string")
    try:
        return parse_hex(value, length, what=name)
    except InvalidEncoding as exc:
        raise _RpcFailure(INVALID_PARAMS, f"Invalid params: {name}", str(exc)) from exc


def _address(value: JsonValue) -> Address:
    """A 20-byte address in any letter case (checksummed or not), 0x optional."""
    return Address(_hex(value, "address", 20))


def _password(value: JsonValue) -> str:
    if not isinstance(value, str):
        raise _invalid_params("password", "expected a string")
    return value


def _point(value: JsonValue, name: str) -> Point:
    raw = _hex(value, name, 64)
    try:
        return Point.from_bytes(raw)
    except CryptoError as exc:
        raise _invalid_params(name, "not a point on secp256k1") from exc


def _hex_list(value: JsonValue, name: str, length: int | None = None) -> list[bytes]:
    if not isinstance(value, list):
        raise _invalid_params(name, "expected an array of hex strings")
    return [_hex(item, f"{name}[{i}]", length) for i, item in enumerate(value)]


def _encrypted_document(value: JsonValue) -> bytes:
    data = _hex(value, "encrypted_data")
    try:
        return helpers.require_encrypted_document(data)
    except DecryptionError as exc:
        raise _invalid_params("encrypted_data", str(exc)) from exc


# --- account and key steps, with Parity's messages -----------------------------------------


def _unlock(accounts: AccountStore, address: Address, password: str, failure: str) -> KeyPair:
    try:
        return accounts.unlock(address, password)
    except UnknownAccount as exc:
        raise _RpcFailure(ACCOUNT_ERROR, failure, f"unknown account {to_hex(address)}") from exc
    except WrongPassword as exc:
        raise _RpcFailure(ACCOUNT_ERROR, failure, "wrong password") from exc
    except KeystoreError as exc:
        raise _RpcFailure(ACCOUNT_ERROR, failure, str(exc)) from exc


def _document_key(account: KeyPair, encrypted_key: bytes) -> Point:
    try:
        return helpers.unwrap_document_key(account, encrypted_key)
    except DecryptionError as exc:
        raise _RpcFailure(ACCOUNT_ERROR, "Could not decrypt key.", str(exc)) from exc
    except InvalidEncoding as exc:
        raise _invalid_params("key", str(exc)) from exc
    except CryptoError as exc:
        raise _RpcFailure(ENCRYPTION_ERROR, "Encryption error.", str(exc)) from exc


def _shadow_coefficient(account: KeyPair, decrypt_shadow: bytes) -> Scalar:
    try:
        return helpers.unwrap_shadow_coefficient(account, decrypt_shadow)
    except DecryptionError as exc:
        raise _RpcFailure(ACCOUNT_ERROR, "Could not decrypt key.", str(exc)) from exc
    except CryptoError as exc:
        raise _RpcFailure(ACCOUNT_ERROR, "invalid secret", str(exc)) from exc


# --- the methods ---------------------------------------------------------------------------


def _sign_raw_hash(params: list[JsonValue], accounts: AccountStore, rng: Rng) -> JsonValue:
    address, password = _address(params[0]), _password(params[1])
    raw_hash = _hex(params[2], "raw_hash", 32)
    account = _unlock(accounts, address, password, "Could not sign raw hash.")
    return to_hex(helpers.sign_raw_hash(account, raw_hash))


def _generate_document_key(params: list[JsonValue], accounts: AccountStore, rng: Rng) -> JsonValue:
    address, password = _address(params[0]), _password(params[1])
    server_key_public = _point(params[2], "server_key_public")
    account = _unlock(accounts, address, password, "Could not read account public.")
    generated = helpers.generate_document_key(account, server_key_public, rng)
    return {
        "common_point": to_hex(generated.common_point.to_bytes()),
        "encrypted_point": to_hex(generated.encrypted_point.to_bytes()),
        "encrypted_key": to_hex(generated.encrypted_key),
    }


def _encrypt(params: list[JsonValue], accounts: AccountStore, rng: Rng) -> JsonValue:
    address, password = _address(params[0]), _password(params[1])
    encrypted_key, data = _hex(params[2], "key"), _hex(params[3], "data")
    account = _unlock(accounts, address, password, "Could not decrypt key.")
    key = _document_key(account, encrypted_key)
    return to_hex(encrypt_document(key, data, rng))


def _decrypt(params: list[JsonValue], accounts: AccountStore, rng: Rng) -> JsonValue:
    address, password = _address(params[0]), _password(params[1])
    encrypted_key, data = _hex(params[2], "key"), _encrypted_document(params[3])
    account = _unlock(accounts, address, password, "Could not decrypt key.")
    key = _document_key(account, encrypted_key)
    return to_hex(decrypt_document(key, data))


def _shadow_decrypt(params: list[JsonValue], accounts: AccountStore, rng: Rng) -> JsonValue:
    address, password = _address(params[0]), _password(params[1])
    decrypted_secret = _point(params[2], "decrypted_secret")
    common_point = _point(params[3], "common_point")
    shadows = _hex_list(params[4], "decrypt_shadows")
    if not shadows:
        raise _invalid_params("decrypt_shadows", "at least one shadow is required")
    data = _encrypted_document(params[5])
    account = _unlock(accounts, address, password, "Could not decrypt key.")
    coefficients = [_shadow_coefficient(account, shadow) for shadow in shadows]
    key = decrypt_with_shadow_coefficients(decrypted_secret, common_point, coefficients)
    return to_hex(decrypt_document(key, data))


def _servers_set_hash(params: list[JsonValue], accounts: AccountStore, rng: Rng) -> JsonValue:
    node_ids = [NodeId(raw) for raw in _hex_list(params[0], "servers_set", 64)]
    return to_hex(helpers.servers_set_hash(node_ids))


@dataclass(frozen=True, slots=True)
class _Method:
    param_names: tuple[str, ...]
    handler: Callable[[list[JsonValue], AccountStore, Rng], JsonValue]


METHODS: Final[dict[str, _Method]] = {
    "secretstore_signRawHash": _Method(("address", "password", "raw_hash"), _sign_raw_hash),
    "secretstore_generateDocumentKey": _Method(
        ("address", "password", "server_key_public"), _generate_document_key
    ),
    "secretstore_encrypt": _Method(("address", "password", "key", "data"), _encrypt),
    "secretstore_decrypt": _Method(("address", "password", "key", "encrypted_data"), _decrypt),
    "secretstore_shadowDecrypt": _Method(
        (
            "address",
            "password",
            "decrypted_secret",
            "common_point",
            "decrypt_shadows",
            "encrypted_data",
        ),
        _shadow_decrypt,
    ),
    "secretstore_serversSetHash": _Method(("servers_set",), _servers_set_hash),
}


# --- the JSON-RPC 2.0 envelope -------------------------------------------------------------


def _error(code: int, message: str, data: str | None, request_id: JsonValue) -> Response:
    error: dict[str, JsonValue] = {"code": code, "message": message}
    if data is not None:
        error["data"] = data
    return {"jsonrpc": "2.0", "error": error, "id": request_id}


def _valid_id(value: JsonValue) -> bool:
    return (
        value is None
        or isinstance(value, str)
        or (isinstance(value, int | float) and not isinstance(value, bool))
    )


def _call(method: _Method, params: JsonValue, accounts: AccountStore, rng: Rng) -> JsonValue:
    if isinstance(params, dict):
        raise _RpcFailure(
            INVALID_PARAMS, "Invalid params: expected positional parameters (an array)"
        )
    if len(params) != len(method.param_names):
        raise _RpcFailure(
            INVALID_PARAMS,
            f"Invalid params: expected {len(method.param_names)} parameters "
            f"({', '.join(method.param_names)}), got {len(params)}",
        )
    try:
        return method.handler(params, accounts, rng)
    except _RpcFailure:
        raise
    except CryptoError as exc:
        raise _RpcFailure(ENCRYPTION_ERROR, "Encryption error.", str(exc)) from exc
    except SecretStoreError as exc:
        raise _RpcFailure(INTERNAL_ERROR, "Internal error", str(exc)) from exc


def handle_single(request: JsonValue, accounts: AccountStore, rng: Rng) -> Response | None:
    """One request object → its response, or None for a notification (no `id` member)."""
    if not isinstance(request, dict):
        return _error(INVALID_REQUEST, "Invalid request", "expected a JSON object", None)
    request_id = request.get("id")
    if not _valid_id(request_id):
        return _error(INVALID_REQUEST, "Invalid request", "id: string, number or null", None)
    if "jsonrpc" in request and request["jsonrpc"] != "2.0":
        return _error(INVALID_REQUEST, "Invalid request", 'jsonrpc: must be "2.0"', request_id)
    name = request.get("method")
    if not isinstance(name, str):
        return _error(INVALID_REQUEST, "Invalid request", "method: expected a string", request_id)
    params = request.get("params", [])
    if not isinstance(params, list | dict):
        return _error(
            INVALID_REQUEST, "Invalid request", "params: expected an array or object", request_id
        )
    method = METHODS.get(name)
    try:
        if method is None:
            raise _RpcFailure(METHOD_NOT_FOUND, "Method not found", f"unknown method {name!r}")
        result = _call(method, params, accounts, rng)
    except _RpcFailure as failure:
        response = _error(failure.code, failure.message, failure.data, request_id)
    else:
        response = {"jsonrpc": "2.0", "result": result, "id": request_id}
    return response if "id" in request else None


def handle_request(
    payload: JsonValue, accounts: AccountStore, rng: Rng
) -> Response | list[Response] | None:
    """A parsed request or batch → the response(s); None when nothing is to be answered."""
    if isinstance(payload, list):
        if not payload:
            return _error(INVALID_REQUEST, "Invalid request", "empty batch", None)
        responses = [handle_single(item, accounts, rng) for item in payload]
        answered = [r for r in responses if r is not None]
        return answered or None
    return handle_single(payload, accounts, rng)


def handle_body(body: bytes | str, accounts: AccountStore, rng: Rng) -> str | None:
    """Raw request text → compact JSON response text (None when nothing is to be answered)."""
    try:
        payload = safejson.loads(body)
    except InvalidEncoding as exc:
        response: Response | list[Response] | None = _error(
            PARSE_ERROR, "Parse error", str(exc), None
        )
    else:
        response = handle_request(payload, accounts, rng)
    if response is None:
        return None
    return json.dumps(response, separators=(",", ":"))
