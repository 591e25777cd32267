"""The four service contract APIs, as Parity's key servers use them: functions, events, names.

Key server view only (what a node reads, calls and listens for), with Parity's selectors and
topics; the "…Requested" events have no indexed fields, so everything is in the log's data.
The client view (the requests clients send and the events they wait for) is listed too, for
the tests and tools that play the client.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any, Final

from eth_abi.abi import decode

from secretstore.chain.abi import Function, typed_value
from secretstore.crypto.hashing import keccak256


@dataclass(frozen=True, slots=True)
class Event:
    """One contract event: its name and its (type, indexed) inputs."""

    name: str
    inputs: tuple[tuple[str, bool], ...]

    @property
    def signature(self) -> str:
        return f"{self.name}({','.join(kind for kind, _ in self.inputs)})"

    @property
    def topic(self) -> bytes:
        return keccak256(self.signature.encode())

    def decode_data(self, data: bytes) -> tuple[Any, ...]:
        """The non-indexed fields from a log's data (eth-abi's errors for malformed data)."""
        kinds = [kind for kind, indexed in self.inputs if not indexed]
        values = decode(kinds, data)
        return tuple(typed_value(kind, value) for kind, value in zip(kinds, values, strict=True))


class ServiceApi(enum.Enum):
    """The four services (Parity's ApiMask)."""

    SERVER_KEY_GENERATION = "srv_gen"
    SERVER_KEY_RETRIEVAL = "srv_retr"
    DOCUMENT_KEY_STORE = "doc_store"
    DOCUMENT_KEY_SHADOW_RETRIEVAL = "doc_sretr"


#: The registry entry of the contract that serves all four APIs (option `service_contract`).
SERVICE_ENTRY: Final = "secretstore_service"
#: The registry entry of each single-API contract (options `service_contract_<api>`).
SERVICE_ENTRIES: Final = {api: f"secretstore_service_{api.value}" for api in ServiceApi}

# --- server key generation ------------------------------------------------------------------

SERVER_KEY_GENERATION_REQUESTED: Final = Event(
    "ServerKeyGenerationRequested", (("bytes32", False), ("address", False), ("uint8", False))
)
SERVER_KEY_GENERATED: Final = Function("serverKeyGenerated", ("bytes32", "bytes"))
SERVER_KEY_GENERATION_ERROR: Final = Function("serverKeyGenerationError", ("bytes32",))
SERVER_KEY_GENERATION_REQUESTS_COUNT: Final = Function(
    "serverKeyGenerationRequestsCount", (), ("uint256",)
)
GET_SERVER_KEY_GENERATION_REQUEST: Final = Function(
    "getServerKeyGenerationRequest", ("uint256",), ("bytes32", "address", "uint256")
)
IS_SERVER_KEY_GENERATION_RESPONSE_REQUIRED: Final = Function(
    "isServerKeyGenerationResponseRequired", ("bytes32", "address"), ("bool",)
)

# --- server key retrieval -------------------------------------------------------------------

SERVER_KEY_RETRIEVAL_REQUESTED: Final = Event("ServerKeyRetrievalRequested", (("bytes32", False),))
SERVER_KEY_RETRIEVED: Final = Function("serverKeyRetrieved", ("bytes32", "bytes", "uint8"))
SERVER_KEY_RETRIEVAL_ERROR: Final = Function("serverKeyRetrievalError", ("bytes32",))
SERVER_KEY_RETRIEVAL_REQUESTS_COUNT: Final = Function(
    "serverKeyRetrievalRequestsCount", (), ("uint256",)
)
GET_SERVER_KEY_RETRIEVAL_REQUEST: Final = Function(
    "getServerKeyRetrievalRequest", ("uint256",), ("bytes32",)
)
IS_SERVER_KEY_RETRIEVAL_RESPONSE_REQUIRED: Final = Function(
    "isServerKeyRetrievalResponseRequired", ("bytes32", "address"), ("bool",)
)

# --- document key store ---------------------------------------------------------------------

DOCUMENT_KEY_STORE_REQUESTED: Final = Event(
    "DocumentKeyStoreRequested",
    (("bytes32", False), ("address", False), ("bytes", False), ("bytes", False)),
)
DOCUMENT_KEY_STORED: Final = Function("documentKeyStored", ("bytes32",))
DOCUMENT_KEY_STORE_ERROR: Final = Function("documentKeyStoreError", ("bytes32",))
DOCUMENT_KEY_STORE_REQUESTS_COUNT: Final = Function(
    "documentKeyStoreRequestsCount", (), ("uint256",)
)
GET_DOCUMENT_KEY_STORE_REQUEST: Final = Function(
    "getDocumentKeyStoreRequest", ("uint256",), ("bytes32", "address", "bytes", "bytes")
)
IS_DOCUMENT_KEY_STORE_RESPONSE_REQUIRED: Final = Function(
    "isDocumentKeyStoreResponseRequired", ("bytes32", "address"), ("bool",)
)

# --- document key shadow retrieval ----------------------------------------------------------

DOCUMENT_KEY_COMMON_RETRIEVAL_REQUESTED: Final = Event(
    "DocumentKeyCommonRetrievalRequested", (("bytes32", False), ("address", False))
)
DOCUMENT_KEY_PERSONAL_RETRIEVAL_REQUESTED: Final = Event(
    "DocumentKeyPersonalRetrievalRequested", (("bytes32", False), ("bytes", False))
)
DOCUMENT_KEY_COMMON_RETRIEVED: Final = Function(
    "documentKeyCommonRetrieved", ("bytes32", "address", "bytes", "uint8")
)
DOCUMENT_KEY_PERSONAL_RETRIEVED: Final = Function(
    "documentKeyPersonalRetrieved", ("bytes32", "address", "uint256", "bytes", "bytes")
)
DOCUMENT_KEY_SHADOW_RETRIEVAL_ERROR: Final = Function(
    "documentKeyShadowRetrievalError", ("bytes32", "address")
)
DOCUMENT_KEY_SHADOW_RETRIEVAL_REQUESTS_COUNT: Final = Function(
    "documentKeyShadowRetrievalRequestsCount", (), ("uint256",)
)
GET_DOCUMENT_KEY_SHADOW_RETRIEVAL_REQUEST: Final = Function(
    "getDocumentKeyShadowRetrievalRequest", ("uint256",), ("bytes32", "bytes", "bool")
)
#: On the wire (id, requester, keyServer): Parity's node calls it so, whatever its ABI's names.
IS_DOCUMENT_KEY_SHADOW_RETRIEVAL_RESPONSE_REQUIRED: Final = Function(
    "isDocumentKeyShadowRetrievalResponseRequired", ("bytes32", "address", "address"), ("bool",)
)

# --- shared by every service ----------------------------------------------------------------

REQUIRE_KEY_SERVER: Final = Function("requireKeyServer", ("address",), ("uint8",))
KEY_SERVERS_COUNT: Final = Function("keyServersCount", (), ("uint8",))
DRAIN: Final = Function("drain")

#: What each API's contract emits for the key servers.
REQUEST_EVENTS: Final = {
    ServiceApi.SERVER_KEY_GENERATION: (SERVER_KEY_GENERATION_REQUESTED,),
    ServiceApi.SERVER_KEY_RETRIEVAL: (SERVER_KEY_RETRIEVAL_REQUESTED,),
    ServiceApi.DOCUMENT_KEY_STORE: (DOCUMENT_KEY_STORE_REQUESTED,),
    ServiceApi.DOCUMENT_KEY_SHADOW_RETRIEVAL: (
        DOCUMENT_KEY_COMMON_RETRIEVAL_REQUESTED,
        DOCUMENT_KEY_PERSONAL_RETRIEVAL_REQUESTED,
    ),
}

#: Every function of each API's key server view (tests check our contracts carry them).
KEY_SERVER_FUNCTIONS: Final = {
    ServiceApi.SERVER_KEY_GENERATION: (
        SERVER_KEY_GENERATED,
        SERVER_KEY_GENERATION_ERROR,
        SERVER_KEY_GENERATION_REQUESTS_COUNT,
        GET_SERVER_KEY_GENERATION_REQUEST,
        IS_SERVER_KEY_GENERATION_RESPONSE_REQUIRED,
    ),
    ServiceApi.SERVER_KEY_RETRIEVAL: (
        SERVER_KEY_RETRIEVED,
        SERVER_KEY_RETRIEVAL_ERROR,
        SERVER_KEY_RETRIEVAL_REQUESTS_COUNT,
        GET_SERVER_KEY_RETRIEVAL_REQUEST,
        IS_SERVER_KEY_RETRIEVAL_RESPONSE_REQUIRED,
    ),
    ServiceApi.DOCUMENT_KEY_STORE: (
        DOCUMENT_KEY_STORED,
        DOCUMENT_KEY_STORE_ERROR,
        DOCUMENT_KEY_STORE_REQUESTS_COUNT,
        GET_DOCUMENT_KEY_STORE_REQUEST,
        IS_DOCUMENT_KEY_STORE_RESPONSE_REQUIRED,
    ),
    ServiceApi.DOCUMENT_KEY_SHADOW_RETRIEVAL: (
        DOCUMENT_KEY_COMMON_RETRIEVED,
        DOCUMENT_KEY_PERSONAL_RETRIEVED,
        DOCUMENT_KEY_SHADOW_RETRIEVAL_ERROR,
        DOCUMENT_KEY_SHADOW_RETRIEVAL_REQUESTS_COUNT,
        GET_DOCUMENT_KEY_SHADOW_RETRIEVAL_REQUEST,
        IS_DOCUMENT_KEY_SHADOW_RETRIEVAL_RESPONSE_REQUIRED,
    ),
}

# --- the client view (for tools and tests that play the client) -----------------------------

GENERATE_SERVER_KEY: Final = Function("generateServerKey", ("bytes32", "uint8"))
RETRIEVE_SERVER_KEY: Final = Function("retrieveServerKey", ("bytes32",))
STORE_DOCUMENT_KEY: Final = Function("storeDocumentKey", ("bytes32", "bytes", "bytes"))
RETRIEVE_DOCUMENT_KEY_SHADOW: Final = Function("retrieveDocumentKeyShadow", ("bytes32", "bytes"))

SERVER_KEY_GENERATED_EVENT: Final = Event(
    "ServerKeyGenerated", (("bytes32", True), ("bytes", False))
)
SERVER_KEY_GENERATION_ERROR_EVENT: Final = Event("ServerKeyGenerationError", (("bytes32", True),))
SERVER_KEY_RETRIEVED_EVENT: Final = Event(
    "ServerKeyRetrieved", (("bytes32", True), ("bytes", False))
)
SERVER_KEY_RETRIEVAL_ERROR_EVENT: Final = Event("ServerKeyRetrievalError", (("bytes32", True),))
DOCUMENT_KEY_STORED_EVENT: Final = Event("DocumentKeyStored", (("bytes32", True),))
DOCUMENT_KEY_STORE_ERROR_EVENT: Final = Event("DocumentKeyStoreError", (("bytes32", True),))
DOCUMENT_KEY_COMMON_RETRIEVED_EVENT: Final = Event(
    "DocumentKeyCommonRetrieved",
    (("bytes32", True), ("address", True), ("bytes", False), ("uint8", False)),
)
DOCUMENT_KEY_PERSONAL_RETRIEVED_EVENT: Final = Event(
    "DocumentKeyPersonalRetrieved",
    (("bytes32", True), ("address", True), ("bytes", False), ("bytes", False)),
)
DOCUMENT_KEY_SHADOW_RETRIEVAL_ERROR_EVENT: Final = Event(
    "DocumentKeyShadowRetrievalError", (("bytes32", True), ("address", True))
)
