"""What a service request is, as the node reads it from a contract (a log or a pending read).

Pure: typed requests and the parsing of the key server view's "…Requested" logs. Each request
names the contract it came from (its origin: the answer goes there) and has an `identity`
(the contract, the API and the request's key on it), under which the node tracks its work.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from secretstore.chain.services import abi
from secretstore.chain.services.abi import Event, ServiceApi
from secretstore.crypto.hashing import keccak256
from secretstore.errors import SecretStoreError
from secretstore.types import Address, ServerKeyId

#: The largest threshold a request may carry (Parity refuses 255 and above).
MAX_THRESHOLD: Final = 254


class BadServiceLog(SecretStoreError):
    """A log of a service contract that does not parse as a request (it is skipped)."""


@dataclass(frozen=True, slots=True)
class GenerationRequest:
    """Generate server key `key_id` with `threshold` for `author` (the client's account)."""

    contract: Address
    key_id: ServerKeyId
    author: Address
    threshold: int

    @property
    def identity(self) -> tuple[object, ...]:
        return (self.contract, ServiceApi.SERVER_KEY_GENERATION, self.key_id)


@dataclass(frozen=True, slots=True)
class ServerKeyRetrievalRequest:
    """Publish the public and threshold of server key `key_id` (anyone may ask, as Parity)."""

    contract: Address
    key_id: ServerKeyId

    @property
    def identity(self) -> tuple[object, ...]:
        return (self.contract, ServiceApi.SERVER_KEY_RETRIEVAL, self.key_id)


@dataclass(frozen=True, slots=True)
class StoreRequest:
    """Store a document key (64-byte common and encrypted points) with server key `key_id`
    for `author`, who must be the server key's author."""

    contract: Address
    key_id: ServerKeyId
    author: Address
    common_point: bytes
    encrypted_point: bytes

    @property
    def identity(self) -> tuple[object, ...]:
        return (self.contract, ServiceApi.DOCUMENT_KEY_STORE, self.key_id)


@dataclass(frozen=True, slots=True)
class CommonRetrievalRequest:
    """The common part of a shadow retrieval of `key_id` for `requester` (every node answers
    with the common point and threshold, after its own access check)."""

    contract: Address
    key_id: ServerKeyId
    requester: Address

    @property
    def identity(self) -> tuple[object, ...]:
        return (
            self.contract,
            ServiceApi.DOCUMENT_KEY_SHADOW_RETRIEVAL,
            self.key_id,
            self.requester,
        )


@dataclass(frozen=True, slots=True)
class PersonalRetrievalRequest:
    """The personal part of a shadow retrieval of `key_id` for the requester with the 64-byte
    `requester_public` (a decryption the key id's range owner starts)."""

    contract: Address
    key_id: ServerKeyId
    requester_public: bytes

    @property
    def requester(self) -> Address:
        return public_address(self.requester_public)

    @property
    def identity(self) -> tuple[object, ...]:
        return (
            self.contract,
            ServiceApi.DOCUMENT_KEY_SHADOW_RETRIEVAL,
            self.key_id,
            self.requester,
        )


def public_address(public: bytes) -> Address:
    """The account of a 64-byte public key (keccak256(public)[12:]), as the contract checks
    it (whether or not the bytes are a point)."""
    return Address(keccak256(public)[12:])


ServiceRequest = (
    GenerationRequest
    | ServerKeyRetrievalRequest
    | StoreRequest
    | CommonRetrievalRequest
    | PersonalRetrievalRequest
)

_BY_TOPIC: Final[dict[bytes, Event]] = {
    event.topic: event for events in abi.REQUEST_EVENTS.values() for event in events
}


def request_topics(apis: frozenset[ServiceApi]) -> list[bytes]:
    """The topic0 values of the request events of `apis`."""
    return sorted(event.topic for api in apis for event in abi.REQUEST_EVENTS[api])


def parse_request_log(contract: Address, topic: bytes, data: bytes) -> ServiceRequest:
    """The request a "…Requested" log of `contract` carries; BadServiceLog otherwise."""
    event = _BY_TOPIC.get(topic)
    if event is None:
        raise BadServiceLog(f"a log of {contract.hex()} with an unknown topic 0x{topic.hex()}")
    try:
        fields = event.decode_data(data)
    except Exception as exc:
        raise BadServiceLog(f"a {event.name} log that does not decode: {exc}") from None
    key_id = ServerKeyId(bytes(fields[0]))
    if event is abi.SERVER_KEY_GENERATION_REQUESTED:
        threshold = int(fields[2])
        if threshold > MAX_THRESHOLD:
            raise BadServiceLog(f"a generation of 0x{key_id.hex()} with threshold {threshold}")
        return GenerationRequest(contract, key_id, fields[1], threshold)
    if event is abi.SERVER_KEY_RETRIEVAL_REQUESTED:
        return ServerKeyRetrievalRequest(contract, key_id)
    if event is abi.DOCUMENT_KEY_STORE_REQUESTED:
        return StoreRequest(contract, key_id, fields[1], bytes(fields[2]), bytes(fields[3]))
    if event is abi.DOCUMENT_KEY_COMMON_RETRIEVAL_REQUESTED:
        return CommonRetrievalRequest(contract, key_id, fields[1])
    public = bytes(fields[1])
    if len(public) != 64:
        raise BadServiceLog(
            f"a personal retrieval of 0x{key_id.hex()} with a {len(public)}-byte requester public"
        )
    return PersonalRetrievalRequest(contract, key_id, public)
