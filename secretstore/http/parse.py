"""Parity's HTTP request paths (and the admin body) parsed into typed requests. Pure.

The accepted set follows Parity's `parse_request` (secret-store http_listener.rs): the whole
path is percent-decoded, then split on '/', after every leading '/' is dropped; a first
segment of shadow/server/schnorr/ecdsa is a route prefix; the route is chosen by prefix, method
and segment count. Beyond Parity, a signature's v must be 0, 1, 27 or 28 and every point must
lie on secp256k1 (Parity failed such requests later, inside the key server). Every rejection
is an InvalidRequest that says which segment is wrong and what was expected.

Additions Parity clients never send: the optional `X-Secretstore-Bound-Signature` header
(BOUND_SIGNATURE_HEADER), the requester's signature over the whole request
(secretstore/crypto/bound.py), hex with or without 0x, on the server key generation, the
document key store, the two signing routes and the delete; the route `DELETE
/{key_id}/{signature}` (a method Parity never served there); `/admin/refresh`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Final
from urllib.parse import unquote_to_bytes

from secretstore.crypto.curve import Point
from secretstore.encoding import parse_hex
from secretstore.errors import CryptoError, InvalidRequest
from secretstore.types import MessageHash, NodeId, ServerKeyId

KEY_ID_LENGTH: Final = 32
SIGNATURE_LENGTH: Final = 65
MESSAGE_HASH_LENGTH: Final = 32
PUBLIC_LENGTH: Final = 64
#: v as clients send it: Parity's raw 0/1 or the 27/28 of Ethereum tooling.
SIGNATURE_V_VALUES: Final = frozenset({0, 1, 27, 28})
#: Parity parses the threshold as a Rust usize (64 bits on its targets).
MAX_THRESHOLD: Final = 2**64 - 1
#: Ours: the requester's bound signature over the whole request (generation, store, signing).
BOUND_SIGNATURE_HEADER: Final = "X-Secretstore-Bound-Signature"


# --- the typed requests: one per route -----------------------------------------------------


@dataclass(frozen=True, slots=True)
class GenerateServerKey:
    """POST /shadow/{key_id}/{signature}/{threshold}"""

    key_id: ServerKeyId
    signature: bytes
    threshold: int
    bound_signature: bytes | None = None


@dataclass(frozen=True, slots=True)
class StoreDocumentKey:
    """POST /shadow/{key_id}/{signature}/{common_point}/{encrypted_point}"""

    key_id: ServerKeyId
    signature: bytes
    common_point: Point
    encrypted_point: Point
    bound_signature: bytes | None = None


@dataclass(frozen=True, slots=True)
class GenerateDocumentKey:
    """POST /{key_id}/{signature}/{threshold}"""

    key_id: ServerKeyId
    signature: bytes
    threshold: int


@dataclass(frozen=True, slots=True)
class RetrieveServerKey:
    """GET /server/{key_id}/{signature}"""

    key_id: ServerKeyId
    signature: bytes


@dataclass(frozen=True, slots=True)
class RetrieveDocumentKey:
    """GET /{key_id}/{signature}"""

    key_id: ServerKeyId
    signature: bytes


@dataclass(frozen=True, slots=True)
class RetrieveDocumentKeyShadow:
    """GET /shadow/{key_id}/{signature}"""

    key_id: ServerKeyId
    signature: bytes


@dataclass(frozen=True, slots=True)
class SignSchnorr:
    """GET /schnorr/{key_id}/{signature}/{message_hash}"""

    key_id: ServerKeyId
    signature: bytes
    message_hash: MessageHash
    bound_signature: bytes | None = None


@dataclass(frozen=True, slots=True)
class SignEcdsa:
    """GET /ecdsa/{key_id}/{signature}/{message_hash}"""

    key_id: ServerKeyId
    signature: bytes
    message_hash: MessageHash
    bound_signature: bytes | None = None


@dataclass(frozen=True, slots=True)
class DeleteKey:
    """DELETE /{key_id}/{signature} (ours) + the bound signature header"""

    key_id: ServerKeyId
    signature: bytes
    bound_signature: bytes | None = None


@dataclass(frozen=True, slots=True)
class ChangeServersSet:
    """POST /admin/servers_set_change/{old_set_signature}/{new_set_signature} + JSON body"""

    old_set_signature: bytes
    new_set_signature: bytes
    new_servers_set: frozenset[NodeId]


@dataclass(frozen=True, slots=True)
class RefreshKeys:
    """POST /admin/refresh/{expires}/{signature} (ours) + optional JSON body of key ids"""

    expires: int
    signature: bytes
    key_ids: tuple[ServerKeyId, ...] | None


ApiRequest = (
    GenerateServerKey
    | StoreDocumentKey
    | GenerateDocumentKey
    | RetrieveServerKey
    | RetrieveDocumentKey
    | RetrieveDocumentKeyShadow
    | SignSchnorr
    | SignEcdsa
    | DeleteKey
    | ChangeServersSet
    | RefreshKeys
)

# --- the route table: (prefix, method, segments after the prefix) -> what they are ----------

ROUTE_PREFIXES: Final = ("shadow", "server", "schnorr", "ecdsa")
_ADMIN: Final = "admin"
_SERVERS_SET_CHANGE: Final = "servers_set_change"
_REFRESH: Final = "refresh"
#: The largest expiry a refresh grant may carry (u64 seconds).
MAX_EXPIRES: Final = 2**64 - 1

_ROUTES: Final[dict[tuple[str, str, int], tuple[str, ...]]] = {
    ("shadow", "POST", 3): ("key_id", "signature", "threshold"),
    ("shadow", "POST", 4): ("key_id", "signature", "common_point", "encrypted_point"),
    ("", "POST", 3): ("key_id", "signature", "threshold"),
    ("server", "GET", 2): ("key_id", "signature"),
    ("", "GET", 2): ("key_id", "signature"),
    ("shadow", "GET", 2): ("key_id", "signature"),
    ("schnorr", "GET", 3): ("key_id", "signature", "message_hash"),
    ("ecdsa", "GET", 3): ("key_id", "signature", "message_hash"),
    ("", "DELETE", 2): ("key_id", "signature"),
}


def _route_text(prefix: str, method: str, names: tuple[str, ...]) -> str:
    head = f"/{prefix}" if prefix else ""
    return f"{method} {head}/" + "/".join("{" + name + "}" for name in names)


# --- segments --------------------------------------------------------------------------------


def _label(index: int, what: str) -> str:
    return f"segment {index} ({what})"


def _hex(text: str, length: int, label: str) -> bytes:
    try:
        return parse_hex(text, length, what=label)
    except CryptoError as exc:
        raise InvalidRequest(str(exc)) from None


def _signature(text: str, label: str) -> bytes:
    signature = _hex(text, SIGNATURE_LENGTH, label)
    if signature[64] not in SIGNATURE_V_VALUES:
        raise InvalidRequest(f"{label}: v must be 0, 1, 27 or 28, got {signature[64]}")
    return signature


def _point(text: str, label: str) -> Point:
    data = _hex(text, PUBLIC_LENGTH, label)
    try:
        return Point.from_bytes(data)
    except CryptoError:
        raise InvalidRequest(f"{label}: not a point on secp256k1") from None


def _message_hash(text: str, label: str) -> MessageHash:
    return MessageHash(_hex(text, MESSAGE_HASH_LENGTH, label))


def _threshold(text: str, label: str) -> int:
    """A decimal as Rust's usize parser takes it: an optional '+' and ASCII digits."""
    digits = text[1:] if text.startswith("+") else text
    if not digits or not (digits.isascii() and digits.isdigit()):
        raise InvalidRequest(f"{label}: expected a non-negative decimal integer")
    significant = digits.lstrip("0") or "0"
    if len(significant) > len(str(MAX_THRESHOLD)):
        raise InvalidRequest(f"{label}: too large")
    value = int(significant)
    if value > MAX_THRESHOLD:
        raise InvalidRequest(f"{label}: too large")
    return value


# --- the path --------------------------------------------------------------------------------


def split_path(raw_path: str) -> list[str]:
    """Percent-decode the whole path, drop every leading '/', split on '/' (as Parity)."""
    try:
        decoded = unquote_to_bytes(raw_path).decode("utf-8")
    except UnicodeError:
        raise InvalidRequest("the path is not UTF-8 after percent-decoding") from None
    return decoded.lstrip("/").split("/")


def parse_bound_signature(values: Sequence[str]) -> bytes | None:
    """The bound signature of the BOUND_SIGNATURE_HEADER's values (None when absent): one
    value, 65 bytes r‖s‖v in hex, 0x optional, v 0, 1, 27 or 28. InvalidRequest naming the
    header otherwise."""
    if not values:
        return None
    if len(values) > 1:
        raise InvalidRequest(f"header {BOUND_SIGNATURE_HEADER} is given {len(values)} times")
    return _signature(values[0].strip(), f"header {BOUND_SIGNATURE_HEADER}")


def parse_request(
    method: str, raw_path: str, body: bytes = b"", bound_headers: Sequence[str] = ()
) -> ApiRequest:
    """The typed request of a method, a raw (percent-encoded) path, the body and the values
    of the BOUND_SIGNATURE_HEADER (none when absent).

    Raises InvalidRequest saying what is wrong.
    """
    request = _parse_route(method, raw_path, body)
    bound = parse_bound_signature(bound_headers)
    if bound is None:
        return request
    if isinstance(
        request, GenerateServerKey | StoreDocumentKey | SignSchnorr | SignEcdsa | DeleteKey
    ):
        return replace(request, bound_signature=bound)
    raise InvalidRequest(
        f"header {BOUND_SIGNATURE_HEADER} applies to the server key generation, document key "
        "store, signing and delete routes only"
    )


def _parse_route(method: str, raw_path: str, body: bytes) -> ApiRequest:
    segments = split_path(raw_path)
    if segments[0] == _ADMIN:
        return _parse_admin(method, segments, body)

    prefix = segments[0] if segments[0] in ROUTE_PREFIXES else ""
    offset = 1 if prefix else 0
    args = segments[offset:]
    shape = f"/{prefix}/…" if prefix else "/…"
    if len(args) < 2:
        if prefix:
            raise InvalidRequest(f"{shape} needs at least {{key_id}}/{{signature}}")
        if not segments[0]:
            raise InvalidRequest("empty path: no route")
        raise InvalidRequest(
            "expected {key_id}/{signature} at least, or a route prefix: "
            + ", ".join((*ROUTE_PREFIXES, _ADMIN))
        )
    for index, what in enumerate(("key id", "signature")):
        if not args[index]:
            raise InvalidRequest(f"{_label(offset + 1 + index, what)} is empty")

    names = _ROUTES.get((prefix, method, len(args)))
    if names is None:
        if not prefix:
            _key_id(args[0], offset)  # an unknown prefix is reported as such
        raise InvalidRequest(_no_route(prefix, method, len(args)))
    key_id = _key_id(args[0], offset)
    signature = _signature(args[1], _label(offset + 2, "signature"))
    rest = args[2:]

    def label(index: int) -> str:
        return _label(offset + 3 + index, names[2 + index].replace("_", " "))

    match (prefix, method, len(args)):
        case ("shadow", "POST", 3):
            return GenerateServerKey(key_id, signature, _threshold(rest[0], label(0)))
        case ("shadow", "POST", 4):
            common_point = _point(rest[0], label(0))
            encrypted_point = _point(rest[1], label(1))
            return StoreDocumentKey(key_id, signature, common_point, encrypted_point)
        case ("", "POST", 3):
            return GenerateDocumentKey(key_id, signature, _threshold(rest[0], label(0)))
        case ("server", "GET", 2):
            return RetrieveServerKey(key_id, signature)
        case ("", "GET", 2):
            return RetrieveDocumentKey(key_id, signature)
        case ("shadow", "GET", 2):
            return RetrieveDocumentKeyShadow(key_id, signature)
        case ("schnorr", "GET", 3):
            return SignSchnorr(key_id, signature, _message_hash(rest[0], label(0)))
        case ("", "DELETE", 2):
            return DeleteKey(key_id, signature)
        case _:  # ("ecdsa", "GET", 3): the only route left in the table
            return SignEcdsa(key_id, signature, _message_hash(rest[0], label(0)))


def _key_id(text: str, offset: int) -> ServerKeyId:
    try:
        return ServerKeyId(_hex(text, KEY_ID_LENGTH, _label(offset + 1, "key id")))
    except InvalidRequest as exc:
        if offset:
            raise
        raise InvalidRequest(
            f"{exc}; the first segment is neither a key id nor a route prefix "
            f"({', '.join((*ROUTE_PREFIXES, _ADMIN))})"
        ) from None


def _no_route(prefix: str, method: str, count: int) -> str:
    """Why no route takes this prefix, method and number of segments."""
    same_method = [names for (p, m, _), names in _ROUTES.items() if p == prefix and m == method]
    if same_method:
        choices = " or ".join(_route_text(prefix, method, names) for names in same_method)
        after = f" after /{prefix}" if prefix else ""
        return f"expected {choices}; got {count} segments{after}"
    others = [(m, names) for (p, m, _), names in _ROUTES.items() if p == prefix]
    choices = " or ".join(_route_text(prefix, m, names) for m, names in others)
    return f"method {method} is not served here; expected {choices}"


# --- /admin ------------------------------------------------------------------------------------


def _parse_admin(method: str, segments: list[str], body: bytes) -> ChangeServersSet | RefreshKeys:
    change = "POST /admin/servers_set_change/{old_set_signature}/{new_set_signature}"
    refresh = "POST /admin/refresh/{expires}/{signature}"
    expected = f"{change} or {refresh}"
    if len(segments) != 4 or segments[1] not in (_SERVERS_SET_CHANGE, _REFRESH):
        raise InvalidRequest(f"expected {expected}")
    if method != "POST":
        raise InvalidRequest(f"method {method} is not served here; expected {expected}")
    if segments[1] == _REFRESH:
        expires = _threshold(segments[2], _label(3, "expires"))
        if expires > MAX_EXPIRES:
            raise InvalidRequest(f"{_label(3, 'expires')}: too large")
        signature = _signature(segments[3], _label(4, "signature"))
        return RefreshKeys(expires, signature, parse_key_ids(body) if body.strip() else None)
    old_signature = _signature(segments[2], _label(3, "old set signature"))
    new_signature = _signature(segments[3], _label(4, "new set signature"))
    return ChangeServersSet(old_signature, new_signature, parse_node_ids(body))


def parse_key_ids(body: bytes) -> tuple[ServerKeyId, ...]:
    """A refresh's body: a JSON array of hex key ids (at least one), ascending, repeats
    collapsed."""
    what = "body: expected a JSON array of hex key ids"
    if body.count(b"[") + body.count(b"{") > 1:
        raise InvalidRequest(f"{what}, got nested JSON")
    try:
        value = json.loads(body.decode("utf-8"))
    except (UnicodeError, ValueError, RecursionError):
        raise InvalidRequest(f"{what}, got no valid JSON") from None
    if not isinstance(value, list) or not value:
        raise InvalidRequest(f"{what} (at least one)")
    keys: set[ServerKeyId] = set()
    for index, item in enumerate(value):
        label = f"body item {index} (key id)"
        if not isinstance(item, str):
            raise InvalidRequest(f"{label}: expected a hex string")
        keys.add(ServerKeyId(_hex(item, KEY_ID_LENGTH, label)))
    return tuple(sorted(keys))


def parse_node_ids(body: bytes) -> frozenset[NodeId]:
    """The admin body: a JSON array of hex node ids (64-byte publics); duplicates collapse."""
    what = "body: expected a JSON array of hex node ids"
    if body.count(b"[") + body.count(b"{") > 1:
        # a valid body has one '[' and hex strings only; refusing nesting up front keeps the
        # JSON parser's recursion (and the C stack) out of the attacker's hands
        raise InvalidRequest(f"{what}, got nested JSON")
    try:
        value = json.loads(body.decode("utf-8"))
    except (UnicodeError, ValueError, RecursionError):
        raise InvalidRequest(f"{what}, got no valid JSON") from None
    if not isinstance(value, list):
        raise InvalidRequest(f"{what}, got a JSON {type(value).__name__}")
    node_ids: set[NodeId] = set()
    for index, item in enumerate(value):
        label = f"body item {index} (node id)"
        if not isinstance(item, str):
            raise InvalidRequest(f"{label}: expected a hex string")
        node_ids.add(NodeId(_point(item, label).to_bytes()))
    return frozenset(node_ids)
