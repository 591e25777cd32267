"""Client of the key server's HTTP API (Parity's paths and bodies), async and sync, with flows.

Server key generations, document key stores and signings carry, besides Parity's signature
over the key id, the
requester's bound signature over the whole request in the X-Secretstore-Bound-Signature
header (secretstore/crypto/bound.py), unless the client is made with `bound_requests=False`.
Parity's key servers ignore the header; ours check it on every node.

Releases (retrievals, signings) ask for every participant's receipt (the
X-Secretstore-Receipts request header; a shadow retrieval has them in its body) and check the
receipts an answer carries (client/receipts.py): against the cluster's node ids when the
client is given them (`nodes`), and refusing answers without receipts when `require_receipts`.
The `*_released` methods return the checked receipts with the value.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
from collections.abc import Awaitable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

import aiohttp
from yarl import URL

from secretstore.audit.jsonform import parse_receipts
from secretstore.audit.model import Operation
from secretstore.audit.receipts import ReleaseReceipts
from secretstore.client import safejson
from secretstore.client.helpers import unwrap_document_key
from secretstore.client.receipts import (
    RECEIPTS_FIELD,
    RECEIPTS_HEADER,
    Released,
    check_receipts,
    receipts_from_header,
)
from secretstore.client.verify import PROOFS_FIELD, DocumentKeyShadow, parse_proofs
from secretstore.crypto.bound import (
    BoundOperation,
    delete_payload,
    generation_payload,
    sign_bound_request,
    signing_payload,
    store_payload,
)
from secretstore.crypto.curve import Point, Scalar
from secretstore.crypto.document import decrypt_document, encrypt_document, encrypt_secret
from secretstore.crypto.ecies import ecies_decrypt
from secretstore.crypto.keys import KeyPair, address_of, sign_recoverable
from secretstore.crypto.rng import OsRng, Rng, random_scalar
from secretstore.encoding import parse_hex, to_hex
from secretstore.errors import (
    AccessDenied,
    DocumentKeyAlreadyStored,
    DocumentKeyNotFound,
    InvalidEncoding,
    InvalidRequest,
    SecretStoreError,
    ServerKeyAlreadyGenerated,
    ServerKeyNotFound,
)
from secretstore.http.errors import CAUSE_HEADER
from secretstore.types import Address, NodeId

T = TypeVar("T")

#: The header of the bound signature (the key server's secretstore.http.parse has the same).
BOUND_SIGNATURE_HEADER = "X-Secretstore-Bound-Signature"

# --- requests: Parity's paths, hex without 0x in every segment ------------------------------


@dataclass(frozen=True, slots=True)
class ApiRequest:
    """One HTTP call of the key server API (`headers`: ours, beyond Parity's)."""

    method: str
    path: str
    body: bytes | None = None
    headers: tuple[tuple[str, str], ...] = ()


def _segment(data: bytes, length: int, what: str) -> str:
    if len(data) != length:
        raise InvalidRequest(f"{what}: expected {length} bytes, got {len(data)}")
    return data.hex()


def _threshold(threshold: int) -> str:
    if isinstance(threshold, bool) or not isinstance(threshold, int) or threshold < 0:
        raise InvalidRequest(f"threshold: expected a non-negative integer, got {threshold!r}")
    return str(threshold)


def _key_and_signature(key_id: bytes, signature: bytes) -> str:
    return f"{_segment(key_id, 32, 'key id')}/{_segment(signature, 65, 'signature')}"


def requester_signature(requester: KeyPair, key_id: bytes) -> bytes:
    """The requester's proof: its recoverable signature of the 32-byte server key id itself."""
    _segment(key_id, 32, "key id")
    return sign_recoverable(requester.secret, key_id)


def bound_store_signature(
    requester: KeyPair, key_id: bytes, common_point: Point, encrypted_point: Point
) -> bytes:
    """The requester's signature over a document key store of exactly these points."""
    _segment(key_id, 32, "key id")
    payload = store_payload(common_point, encrypted_point)
    return sign_bound_request(requester.secret, BoundOperation.STORE_DOCUMENT_KEY, key_id, payload)


def bound_generation_signature(requester: KeyPair, key_id: bytes, threshold: int) -> bytes:
    """The requester's signature over a server key generation with exactly this threshold."""
    _segment(key_id, 32, "key id")
    payload = generation_payload(threshold)
    return sign_bound_request(requester.secret, BoundOperation.GENERATE_SERVER_KEY, key_id, payload)


def bound_signing_signature(
    requester: KeyPair, operation: BoundOperation, key_id: bytes, message_hash: bytes
) -> bytes:
    """The requester's signature over a Schnorr or ECDSA signing of exactly this hash."""
    _segment(key_id, 32, "key id")
    if operation not in (BoundOperation.SIGN_SCHNORR, BoundOperation.SIGN_ECDSA):
        raise InvalidRequest(f"{operation.name} is not a signing operation")
    payload = signing_payload(_segment_bytes(message_hash, 32, "message hash"))
    return sign_bound_request(requester.secret, operation, key_id, payload)


def bound_delete_signature(requester: KeyPair, key_id: bytes, server_key_public: Point) -> bytes:
    """The author's signature over deleting exactly this key (its id and public)."""
    _segment(key_id, 32, "key id")
    payload = delete_payload(server_key_public)
    return sign_bound_request(requester.secret, BoundOperation.DELETE_KEY, key_id, payload)


def _segment_bytes(data: bytes, length: int, what: str) -> bytes:
    _segment(data, length, what)
    return data


def _bound_headers(bound_signature: bytes | None) -> tuple[tuple[str, str], ...]:
    if bound_signature is None:
        return ()
    return ((BOUND_SIGNATURE_HEADER, _segment(bound_signature, 65, "bound signature")),)


def generate_server_key_request(
    key_id: bytes, signature: bytes, threshold: int, bound_signature: bytes | None = None
) -> ApiRequest:
    path = f"/shadow/{_key_and_signature(key_id, signature)}/{_threshold(threshold)}"
    return ApiRequest("POST", path, headers=_bound_headers(bound_signature))


def store_document_key_request(
    key_id: bytes,
    signature: bytes,
    common_point: Point,
    encrypted_point: Point,
    bound_signature: bytes | None = None,
) -> ApiRequest:
    points = f"{common_point.to_bytes().hex()}/{encrypted_point.to_bytes().hex()}"
    path = f"/shadow/{_key_and_signature(key_id, signature)}/{points}"
    return ApiRequest("POST", path, headers=_bound_headers(bound_signature))


def generate_document_key_request(key_id: bytes, signature: bytes, threshold: int) -> ApiRequest:
    return ApiRequest("POST", f"/{_key_and_signature(key_id, signature)}/{_threshold(threshold)}")


def server_key_request(key_id: bytes, signature: bytes) -> ApiRequest:
    return ApiRequest("GET", f"/server/{_key_and_signature(key_id, signature)}")


def document_key_request(key_id: bytes, signature: bytes) -> ApiRequest:
    return ApiRequest("GET", f"/{_key_and_signature(key_id, signature)}")


def document_key_shadow_request(key_id: bytes, signature: bytes) -> ApiRequest:
    return ApiRequest("GET", f"/shadow/{_key_and_signature(key_id, signature)}")


def schnorr_request(
    key_id: bytes, signature: bytes, message_hash: bytes, bound_signature: bytes | None = None
) -> ApiRequest:
    message = _segment(message_hash, 32, "message hash")
    path = f"/schnorr/{_key_and_signature(key_id, signature)}/{message}"
    return ApiRequest("GET", path, headers=_bound_headers(bound_signature))


def ecdsa_request(
    key_id: bytes, signature: bytes, message_hash: bytes, bound_signature: bytes | None = None
) -> ApiRequest:
    message = _segment(message_hash, 32, "message hash")
    path = f"/ecdsa/{_key_and_signature(key_id, signature)}/{message}"
    return ApiRequest("GET", path, headers=_bound_headers(bound_signature))


def delete_key_request(key_id: bytes, signature: bytes, bound_signature: bytes) -> ApiRequest:
    """DELETE /{key_id}/{signature} with the author's bound delete signature (ours)."""
    path = f"/{_key_and_signature(key_id, signature)}"
    return ApiRequest("DELETE", path, headers=_bound_headers(bound_signature))


def servers_set_change_request(
    old_set_signature: bytes, new_set_signature: bytes, node_ids: Iterable[NodeId | Point]
) -> ApiRequest:
    old = _segment(old_set_signature, 65, "old set signature")
    new = _segment(new_set_signature, 65, "new set signature")
    raw = {n.to_bytes() if isinstance(n, Point) else bytes(n) for n in node_ids}
    for node_id in raw:
        _segment(node_id, 64, "node id")
    body = json.dumps([to_hex(node_id) for node_id in sorted(raw)])
    return ApiRequest("POST", f"/admin/servers_set_change/{old}/{new}", body.encode())


# --- responses -------------------------------------------------------------------------------


def _json(body: bytes) -> Any:
    try:
        return safejson.loads(body)
    except InvalidEncoding as exc:
        raise InvalidEncoding(f"key server response: {exc}") from exc


def parse_hex_body(body: bytes, what: str, length: int | None = None) -> bytes:
    """A body that is one JSON string of hex (Parity: `"0x…"`)."""
    value = _json(body)
    if not isinstance(value, str):
        raise InvalidEncoding(f"{what}: expected a JSON string of hex")
    return parse_hex(value, length, what=what)


def parse_public_body(body: bytes) -> Point:
    return Point.from_bytes(parse_hex_body(body, "server key public", 64))


def parse_shadow_body(body: bytes) -> DocumentKeyShadow:
    value = _json(body)
    if not isinstance(value, dict):
        raise InvalidEncoding("document key shadow: expected a JSON object")
    fields = ("decrypted_secret", "common_point", "decrypt_shadows")
    secret, common, shadows = (value.get(name) for name in fields)
    if not isinstance(secret, str) or not isinstance(common, str):
        raise InvalidEncoding("document key shadow: decrypted_secret and common_point needed")
    if not isinstance(shadows, list) or not all(isinstance(s, str) for s in shadows):
        raise InvalidEncoding("document key shadow: decrypt_shadows must be hex strings")
    proofs = value.get(PROOFS_FIELD)
    receipts = value.get(RECEIPTS_FIELD)
    return DocumentKeyShadow(
        Point.from_bytes(parse_hex(secret, 64, what="decrypted_secret")),
        Point.from_bytes(parse_hex(common, 64, what="common_point")),
        tuple(parse_hex(s, what="decrypt_shadow") for s in shadows),
        None if proofs is None else parse_proofs(proofs),
        None if receipts is None else parse_receipts(receipts),
    )


@dataclass(frozen=True, slots=True)
class KeyDeleted:
    """A delete's answer: the nodes that hold no share of the key now, and those that did
    not confirm (at most t of any version; they erase it when they come back)."""

    key_id: bytes
    confirmed: tuple[NodeId, ...]
    unconfirmed: tuple[NodeId, ...]


def _node_ids(value: object, what: str) -> tuple[NodeId, ...]:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise InvalidEncoding(f"{what}: expected a list of hex node ids")
    return tuple(NodeId(parse_hex(item, 64, what=what)) for item in value)


def parse_delete_body(body: bytes) -> KeyDeleted:
    value = _json(body)
    if not isinstance(value, dict) or not isinstance(value.get("key_id"), str):
        raise InvalidEncoding("delete: expected a JSON object with key_id")
    return KeyDeleted(
        parse_hex(value["key_id"], 32, what="key_id"),
        _node_ids(value.get("confirmed"), "confirmed"),
        _node_ids(value.get("unconfirmed"), "unconfirmed"),
    )


def _error_text(body: bytes) -> str:
    try:
        value = safejson.loads(body)
    except InvalidEncoding:
        return body[:500].decode("utf-8", "replace").strip()
    text = value if isinstance(value, str) else json.dumps(value)
    if len(text) >= 2 and text[0] == text[-1] == '"':  # Parity quotes the text inside the JSON
        text = text[1:-1]
    return text


def error_from_response(status: int, body: bytes, cause: str | None = None) -> SecretStoreError:
    """The error for a non-200 answer, carrying the server's message and, when the node sent
    one (our nodes' X-Secretstore-Cause header), the cause: `Consensus unreachable: ...`."""
    text = _error_text(body) or "no message"
    if cause:
        text = f"{text}: {cause}"
    lowered = text.lower()
    if status == 400:
        if "already generated" in lowered:
            return ServerKeyAlreadyGenerated(text)
        if "already stored" in lowered:
            return DocumentKeyAlreadyStored(text)
        return InvalidRequest(text)
    if status == 403:
        return AccessDenied(text)
    if status == 404:
        return DocumentKeyNotFound(text) if "document key" in lowered else ServerKeyNotFound(text)
    return SecretStoreError(f"key server error (HTTP {status}): {text}")


def connection_problem(error: BaseException) -> str:
    """A short account of why a request got no answer (never an object's repr)."""
    if isinstance(error, aiohttp.ClientConnectorError):
        os_error = error.os_error
        if isinstance(os_error, socket.gaierror):
            return f"the host name {error.host} does not resolve"
        number = os_error.errno
        reason = os.strerror(number).lower() if number else (os_error.strerror or "failed")
        return f"cannot connect to {error.host}:{error.port} ({reason})"
    if isinstance(error, aiohttp.ServerDisconnectedError):
        return "the connection closed before an answer"
    if isinstance(error, TimeoutError | aiohttp.ServerTimeoutError):
        return "no answer in time"
    if isinstance(error, aiohttp.InvalidURL):
        return f"not a valid URL ({error.url})"
    if isinstance(error, aiohttp.ClientResponseError):
        return f"a malformed answer ({error.message})"
    text = str(error).strip()
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


# --- requester keys --------------------------------------------------------------------------


def requester_from_secret(secret: str | bytes | Scalar) -> KeyPair:
    """A requester from a raw secret: a Scalar, 32 bytes, or hex (0x optional)."""
    if isinstance(secret, str):
        secret = parse_hex(secret.strip(), 32, what="secret")
    if isinstance(secret, bytes):
        secret = Scalar.secret_from_bytes(secret)
    return KeyPair.from_secret(secret)


def requester_from_keystore(directory: str | Path, address: str | bytes, password: str) -> KeyPair:
    """A requester from a keystore account (raises UnknownAccount / WrongPassword)."""
    from secretstore.keystore import Keystore

    raw = parse_hex(address, 20, what="address") if isinstance(address, str) else address
    return Keystore(Path(directory)).unlock(Address(raw), password)


# --- the async client ------------------------------------------------------------------------


class KeyServerClient:
    """Async client of one key server node; every method is one HTTP call or a documented flow.

    `bound_requests` (default True): server key generations, stores and signings also send
    the bound signature header; False sends exactly Parity's requests. `require_proofs`:
    every shadow retrieval must carry proofs (else ShadowVerificationError); answers that
    carry them are checked either way. `nodes`: the cluster's node ids, against which the
    receipts of a release are checked; `require_receipts`: every release must carry them (else
    ReceiptVerificationError); receipts an answer carries are checked either way."""

    def __init__(
        self,
        base_url: str,
        session: aiohttp.ClientSession | None = None,
        rng: Rng | None = None,
        timeout: float = 120.0,
        bound_requests: bool = True,
        *,
        require_proofs: bool = False,
        nodes: Iterable[NodeId] | None = None,
        require_receipts: bool = False,
    ) -> None:
        if not base_url.startswith(("http://", "https://")):
            raise InvalidRequest(f"key server URL must start with http:// or https://: {base_url}")
        self.base_url = base_url.rstrip("/")
        self.require_proofs = require_proofs
        self.nodes: frozenset[NodeId] | None = None if nodes is None else frozenset(nodes)
        self.require_receipts = require_receipts
        self._session = session
        self._owns_session = session is None
        self._rng: Rng = rng if rng is not None else OsRng()
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self.bound_requests = bound_requests

    async def __aenter__(self) -> KeyServerClient:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def close(self) -> None:
        if self._owns_session and self._session is not None:
            await self._session.close()
            self._session = None

    async def send(self, request: ApiRequest) -> bytes:
        """Perform one call; the body of a 200 answer, or the mapped error."""
        body, _ = await self.exchange(request)
        return body

    async def exchange(self, request: ApiRequest) -> tuple[bytes, Mapping[str, str]]:
        """Perform one call; the body and headers of a 200 answer, or the mapped error."""
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        url = URL(self.base_url + request.path, encoded=True)
        headers = dict(request.headers)
        if request.body:
            headers["Content-Type"] = "application/json; charset=utf-8"
        try:
            async with self._session.request(
                request.method, url, data=request.body, headers=headers
            ) as response:
                body = await response.read()
                status = response.status
                cause = response.headers.get(CAUSE_HEADER)
                answer_headers = dict(response.headers)
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            raise SecretStoreError(
                f"key server {self.base_url} unreachable: {connection_problem(exc)}"
            ) from exc
        if status != 200:
            raise error_from_response(status, body, cause)
        return body, answer_headers

    def _bound_signing(
        self, requester: KeyPair, operation: BoundOperation, key_id: bytes, message_hash: bytes
    ) -> bytes | None:
        if not self.bound_requests:
            return None
        return bound_signing_signature(requester, operation, key_id, message_hash)

    async def _decrypted(self, request: ApiRequest, requester: KeyPair, what: str) -> bytes:
        cipher = parse_hex_body(await self.send(request), what)
        return ecies_decrypt(requester.secret, cipher)

    async def _released(
        self,
        request: ApiRequest,
        requester: KeyPair,
        what: str,
        *,
        operation: Operation,
        key_id: bytes,
        message_hash: bytes | None = None,
    ) -> Released[bytes]:
        """A release answered with a bare string: decrypted, its receipts header checked."""
        asking = replace(request, headers=(*request.headers, (RECEIPTS_HEADER, "1")))
        body, headers = await self.exchange(asking)
        receipts = self._check(
            receipts_from_header(headers), operation, key_id, requester, message_hash
        )
        plain = ecies_decrypt(requester.secret, parse_hex_body(body, what))
        return Released(plain, receipts)

    def _check(
        self,
        receipts: ReleaseReceipts | None,
        operation: Operation,
        key_id: bytes,
        requester: KeyPair,
        message_hash: bytes | None = None,
        **more: Any,
    ) -> ReleaseReceipts | None:
        return check_receipts(
            receipts,
            operation=operation,
            key_id=key_id,
            requester=address_of(requester.public),
            message_hash=message_hash,
            nodes=self.nodes,
            require=self.require_receipts,
            **more,
        )

    # one call each ------------------------------------------------------------------------
    async def generate_server_key(self, key_id: bytes, requester: KeyPair, threshold: int) -> Point:
        signature = requester_signature(requester, key_id)
        bound = None
        if self.bound_requests:
            bound = bound_generation_signature(requester, key_id, threshold)
        request = generate_server_key_request(key_id, signature, threshold, bound)
        return parse_public_body(await self.send(request))

    async def store_document_key(
        self, key_id: bytes, requester: KeyPair, common_point: Point, encrypted_point: Point
    ) -> None:
        signature = requester_signature(requester, key_id)
        bound = None
        if self.bound_requests:
            bound = bound_store_signature(requester, key_id, common_point, encrypted_point)
        request = store_document_key_request(
            key_id, signature, common_point, encrypted_point, bound
        )
        await self.send(request)

    async def generate_document_key(
        self, key_id: bytes, requester: KeyPair, threshold: int
    ) -> Point:
        """Server and document key generated by the nodes; M comes back ECIES-encrypted."""
        request = generate_document_key_request(
            key_id, requester_signature(requester, key_id), threshold
        )
        cipher = parse_hex_body(await self.send(request), "encrypted document key")
        return unwrap_document_key(requester, cipher)

    async def retrieve_server_key(self, key_id: bytes, requester: KeyPair) -> Point:
        request = server_key_request(key_id, requester_signature(requester, key_id))
        return parse_public_body(await self.send(request))

    async def retrieve_document_key(self, key_id: bytes, requester: KeyPair) -> Point:
        return (await self.retrieve_document_key_released(key_id, requester)).value

    async def retrieve_document_key_released(
        self, key_id: bytes, requester: KeyPair
    ) -> Released[Point]:
        """Plain retrieval, with the participants' checked receipts."""
        request = document_key_request(key_id, requester_signature(requester, key_id))
        released = await self._released(
            request,
            requester,
            "encrypted document key",
            operation=Operation.RETRIEVAL,
            key_id=key_id,
        )
        if len(released.value) != 64:
            raise InvalidEncoding(f"document key: expected 64 bytes, got {len(released.value)}")
        return Released(Point.from_bytes(released.value), released.receipts)

    async def retrieve_document_key_shadow_raw(
        self, key_id: bytes, requester: KeyPair
    ) -> DocumentKeyShadow:
        request = document_key_shadow_request(key_id, requester_signature(requester, key_id))
        return parse_shadow_body(await self.send(request))

    async def retrieve_document_key_shadow(
        self,
        key_id: bytes,
        requester: KeyPair,
        *,
        server_key_public: Point | None = None,
        require_proofs: bool | None = None,
    ) -> Point:
        """M = D + (Σ d_i)·C', computed here: the node never sees M. When the answer carries
        proofs every node's contribution is checked first (anchored at `server_key_public`
        when given: then even the node that answered cannot pass off another key);
        `require_proofs` (default: the client's) refuses an answer without them."""
        released = await self.retrieve_document_key_shadow_released(
            key_id, requester, server_key_public=server_key_public, require_proofs=require_proofs
        )
        return released.value

    async def retrieve_document_key_shadow_released(
        self,
        key_id: bytes,
        requester: KeyPair,
        *,
        server_key_public: Point | None = None,
        require_proofs: bool | None = None,
    ) -> Released[Point]:
        """As `retrieve_document_key_shadow`, with the participants' receipts, checked: one
        per decrypt shadow, by the nodes the proofs name (when the answer has proofs)."""
        shadow = await self.retrieve_document_key_shadow_raw(key_id, requester)
        key = shadow.document_key(
            key_id,
            requester,
            server_key_public=server_key_public,
            require_proofs=self.require_proofs if require_proofs is None else require_proofs,
        )
        proofs = shadow.proofs
        receipts = self._check(
            shadow.receipts,
            Operation.SHADOW_RETRIEVAL,
            key_id,
            requester,
            participants=None if proofs is None else [p.node for p in proofs.participants],
            min_participants=len(shadow.decrypt_shadows),
            session_id=None if proofs is None else proofs.session_id,
        )
        return Released(key, receipts)

    async def sign_schnorr(
        self, key_id: bytes, requester: KeyPair, message_hash: bytes
    ) -> tuple[Scalar, Scalar]:
        return (await self.sign_schnorr_released(key_id, requester, message_hash)).value

    async def sign_schnorr_released(
        self, key_id: bytes, requester: KeyPair, message_hash: bytes
    ) -> Released[tuple[Scalar, Scalar]]:
        """Schnorr signing (c, s), with the signers' checked receipts."""
        bound = self._bound_signing(requester, BoundOperation.SIGN_SCHNORR, key_id, message_hash)
        signature = requester_signature(requester, key_id)
        request = schnorr_request(key_id, signature, message_hash, bound)
        released = await self._released(
            request,
            requester,
            "schnorr signature",
            operation=Operation.SCHNORR,
            key_id=key_id,
            message_hash=message_hash,
        )
        plain = released.value
        if len(plain) != 64:
            raise InvalidEncoding(f"schnorr signature: expected 64 bytes, got {len(plain)}")
        value = (Scalar.from_bytes(plain[:32]), Scalar.from_bytes(plain[32:]))
        return Released(value, released.receipts)

    async def sign_ecdsa(self, key_id: bytes, requester: KeyPair, message_hash: bytes) -> bytes:
        return (await self.sign_ecdsa_released(key_id, requester, message_hash)).value

    async def sign_ecdsa_released(
        self, key_id: bytes, requester: KeyPair, message_hash: bytes
    ) -> Released[bytes]:
        """ECDSA signing r‖s‖v, with the signers' checked receipts."""
        bound = self._bound_signing(requester, BoundOperation.SIGN_ECDSA, key_id, message_hash)
        signature = requester_signature(requester, key_id)
        request = ecdsa_request(key_id, signature, message_hash, bound)
        released = await self._released(
            request,
            requester,
            "ecdsa signature",
            operation=Operation.ECDSA,
            key_id=key_id,
            message_hash=message_hash,
        )
        if len(released.value) != 65:
            raise InvalidEncoding(f"ecdsa signature: expected 65 bytes, got {len(released.value)}")
        return released

    async def delete_key(
        self, key_id: bytes, requester: KeyPair, *, server_key_public: Point | None = None
    ) -> KeyDeleted:
        """Delete server key `key_id` and its document key on every node (the author only).
        The bound signature covers the key's public: given, or retrieved first."""
        public = server_key_public
        if public is None:
            public = await self.retrieve_server_key(key_id, requester)
        request = delete_key_request(
            key_id,
            requester_signature(requester, key_id),
            bound_delete_signature(requester, key_id, public),
        )
        return parse_delete_body(await self.send(request))

    async def change_servers_set(
        self, old_set_signature: bytes, new_set_signature: bytes, node_ids: Iterable[NodeId]
    ) -> None:
        await self.send(servers_set_change_request(old_set_signature, new_set_signature, node_ids))

    # whole-document flows -----------------------------------------------------------------
    async def create_document_key(self, key_id: bytes, requester: KeyPair, threshold: int) -> Point:
        """Server key generation, a document key M made here, and M stored as (C, E)."""
        server_key = await self.generate_server_key(key_id, requester, threshold)
        document_key = Point.base_mul(random_scalar(self._rng))
        encrypted = encrypt_secret(document_key, server_key, self._rng)
        await self.store_document_key(
            key_id, requester, encrypted.common_point, encrypted.encrypted_point
        )
        return document_key

    async def retrieve_key(
        self,
        key_id: bytes,
        requester: KeyPair,
        shadow: bool = True,
        *,
        server_key_public: Point | None = None,
    ) -> Point:
        if shadow:
            return await self.retrieve_document_key_shadow(
                key_id, requester, server_key_public=server_key_public
            )
        return await self.retrieve_document_key(key_id, requester)

    async def encrypt_document(
        self, key_id: bytes, requester: KeyPair, threshold: int, data: bytes
    ) -> bytes:
        key = await self.create_document_key(key_id, requester, threshold)
        return encrypt_document(key, data, self._rng)

    async def decrypt_document(
        self,
        key_id: bytes,
        requester: KeyPair,
        encrypted: bytes,
        shadow: bool = True,
        *,
        server_key_public: Point | None = None,
    ) -> bytes:
        key = await self.retrieve_key(
            key_id, requester, shadow, server_key_public=server_key_public
        )
        return decrypt_document(key, encrypted)


# --- the sync wrapper ------------------------------------------------------------------------


class SyncKeyServerClient:
    """KeyServerClient for synchronous code: runs each call on a private event loop."""

    def __init__(
        self,
        base_url: str,
        rng: Rng | None = None,
        timeout: float = 120.0,
        bound_requests: bool = True,
        *,
        require_proofs: bool = False,
        nodes: Iterable[NodeId] | None = None,
        require_receipts: bool = False,
    ) -> None:
        self._loop = asyncio.new_event_loop()
        self._client = KeyServerClient(
            base_url,
            rng=rng,
            timeout=timeout,
            bound_requests=bound_requests,
            require_proofs=require_proofs,
            nodes=nodes,
            require_receipts=require_receipts,
        )

    def __enter__(self) -> SyncKeyServerClient:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def _run(self, call: Awaitable[T]) -> T:
        async def wrapped() -> T:
            return await call

        return self._loop.run_until_complete(wrapped())

    def close(self) -> None:
        if not self._loop.is_closed():
            self._run(self._client.close())
            self._loop.close()

    def generate_server_key(self, key_id: bytes, requester: KeyPair, threshold: int) -> Point:
        return self._run(self._client.generate_server_key(key_id, requester, threshold))

    def store_document_key(
        self, key_id: bytes, requester: KeyPair, common_point: Point, encrypted_point: Point
    ) -> None:
        self._run(self._client.store_document_key(key_id, requester, common_point, encrypted_point))

    def generate_document_key(self, key_id: bytes, requester: KeyPair, threshold: int) -> Point:
        return self._run(self._client.generate_document_key(key_id, requester, threshold))

    def retrieve_server_key(self, key_id: bytes, requester: KeyPair) -> Point:
        return self._run(self._client.retrieve_server_key(key_id, requester))

    def retrieve_document_key(self, key_id: bytes, requester: KeyPair) -> Point:
        return self._run(self._client.retrieve_document_key(key_id, requester))

    def retrieve_document_key_shadow(
        self,
        key_id: bytes,
        requester: KeyPair,
        *,
        server_key_public: Point | None = None,
        require_proofs: bool | None = None,
    ) -> Point:
        return self._run(
            self._client.retrieve_document_key_shadow(
                key_id,
                requester,
                server_key_public=server_key_public,
                require_proofs=require_proofs,
            )
        )

    def sign_schnorr(
        self, key_id: bytes, requester: KeyPair, message_hash: bytes
    ) -> tuple[Scalar, Scalar]:
        return self._run(self._client.sign_schnorr(key_id, requester, message_hash))

    def sign_ecdsa(self, key_id: bytes, requester: KeyPair, message_hash: bytes) -> bytes:
        return self._run(self._client.sign_ecdsa(key_id, requester, message_hash))

    def sign_schnorr_released(
        self, key_id: bytes, requester: KeyPair, message_hash: bytes
    ) -> Released[tuple[Scalar, Scalar]]:
        return self._run(self._client.sign_schnorr_released(key_id, requester, message_hash))

    def sign_ecdsa_released(
        self, key_id: bytes, requester: KeyPair, message_hash: bytes
    ) -> Released[bytes]:
        return self._run(self._client.sign_ecdsa_released(key_id, requester, message_hash))

    def retrieve_document_key_shadow_released(
        self, key_id: bytes, requester: KeyPair, *, server_key_public: Point | None = None
    ) -> Released[Point]:
        return self._run(
            self._client.retrieve_document_key_shadow_released(
                key_id, requester, server_key_public=server_key_public
            )
        )

    def delete_key(
        self, key_id: bytes, requester: KeyPair, *, server_key_public: Point | None = None
    ) -> KeyDeleted:
        return self._run(
            self._client.delete_key(key_id, requester, server_key_public=server_key_public)
        )

    def change_servers_set(
        self, old_set_signature: bytes, new_set_signature: bytes, node_ids: Sequence[NodeId]
    ) -> None:
        self._run(self._client.change_servers_set(old_set_signature, new_set_signature, node_ids))

    def create_document_key(self, key_id: bytes, requester: KeyPair, threshold: int) -> Point:
        return self._run(self._client.create_document_key(key_id, requester, threshold))

    def retrieve_key(
        self,
        key_id: bytes,
        requester: KeyPair,
        shadow: bool = True,
        *,
        server_key_public: Point | None = None,
    ) -> Point:
        return self._run(
            self._client.retrieve_key(
                key_id, requester, shadow, server_key_public=server_key_public
            )
        )

    def encrypt_document(
        self, key_id: bytes, requester: KeyPair, threshold: int, data: bytes
    ) -> bytes:
        return self._run(self._client.encrypt_document(key_id, requester, threshold, data))

    def decrypt_document(
        self,
        key_id: bytes,
        requester: KeyPair,
        encrypted: bytes,
        shadow: bool = True,
        *,
        server_key_public: Point | None = None,
    ) -> bytes:
        return self._run(
            self._client.decrypt_document(
                key_id, requester, encrypted, shadow, server_key_public=server_key_public
            )
        )
