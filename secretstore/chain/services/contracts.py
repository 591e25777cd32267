"""The service contracts as one node talks to them: request logs, pending requests, answers.

`ServiceContract` is one configured contract (its address, kept up to date from the registry,
and the APIs it serves). `ServiceCalls` reads and answers on behalf of this node's account:
- `requests_in(contract, from, to)`: the requests of the "…Requested" logs in those blocks;
- `pending(contract, api, block)`: every pending request of an API at a block, with whether
  this node still has to answer it (at most MAX_PENDING_READ of them);
- `publish(request, answer)`: the answer as a transaction signed by the node key, sent only
  if this node has not had it mined in the last blocks (`remember_blocks`, in the same key
  server set: a change makes the contracts forget the answers) and the contract says (at the
  latest block) this node's answer is still required, then followed until it is mined; one
  answer per request at a time. A transaction that would revert or cannot be paid for raises
  (ContractCallFailed, TransactionFailed): the caller logs it and retries later. Every answer
  is logged with its transaction, block and gas.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final

from secretstore.chain.abi import Function
from secretstore.chain.client import (
    BlockSpec,
    ChainClient,
    ContractCallFailed,
    Receipt,
    TransactionFailed,
)
from secretstore.chain.registry import ContractAddress
from secretstore.chain.services import abi
from secretstore.chain.services.abi import ServiceApi
from secretstore.chain.services.requests import (
    BadServiceLog,
    CommonRetrievalRequest,
    GenerationRequest,
    PersonalRetrievalRequest,
    ServerKeyRetrievalRequest,
    ServiceRequest,
    StoreRequest,
    parse_request_log,
    request_topics,
)
from secretstore.crypto.curve import Point
from secretstore.crypto.hashing import keccak256
from secretstore.encoding import to_hex
from secretstore.types import Address, NodeId, ServerKeyId

log = logging.getLogger(__name__)

#: The most pending requests of one API read at once (the contracts' limits are 4 and 8).
MAX_PENDING_READ: Final = 256
#: How long an answer's transaction is followed before the node leaves it to the next retry.
RECEIPT_TIMEOUT: Final = 60.0
#: How many mined answers a node remembers (so that it sends none twice).
MAX_REMEMBERED: Final = 65536
#: For how many blocks after its own answer was mined a node takes it as given (by default).
REMEMBER_BLOCKS: Final = 30
#: Gas an answer may use beyond its estimate: the last of several answers (which publishes the
#: result and clears the request) costs more than the estimate made before the others landed.
ANSWER_EXTRA_GAS: Final = 300_000


@dataclass
class ServiceContract:
    """One configured service contract: where it is, and which APIs it serves."""

    address: ContractAddress
    apis: frozenset[ServiceApi]

    def describe(self) -> str:
        return self.address.describe()


# --- answers -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Generated:
    public: Point


@dataclass(frozen=True, slots=True)
class Retrieved:
    public: Point
    threshold: int


@dataclass(frozen=True, slots=True)
class Stored:
    pass


@dataclass(frozen=True, slots=True)
class CommonRetrieved:
    common_point: Point
    threshold: int


@dataclass(frozen=True, slots=True)
class PersonalRetrieved:
    participants: tuple[NodeId, ...]
    decrypted_secret: Point
    decrypt_shadow: bytes


@dataclass(frozen=True, slots=True)
class Failed:
    """The request cannot be served (the contract's error function)."""

    reason: str


Answer = Generated | Retrieved | Stored | CommonRetrieved | PersonalRetrieved | Failed


def node_address(node: NodeId) -> Address:
    """A key server's account: keccak256(node id)[12:]."""
    return Address(keccak256(node)[12:])


class ServiceCalls:
    """Reads and answers the service contracts as this node (its account)."""

    def __init__(
        self,
        client: ChainClient,
        receipt_timeout: float = RECEIPT_TIMEOUT,
        *,
        key_servers: Callable[[], frozenset[NodeId]] = frozenset,
        remember_blocks: int = REMEMBER_BLOCKS,
    ) -> None:
        """An answer this node had mined is not sent again within `remember_blocks` blocks
        of the one that mined it while the key server set (`key_servers`, the current set)
        stays the same: Parity's contracts say an answer is required for a request that is
        no longer pending, and the pending requests are read some blocks below the latest.
        Past that, or after a change of the set (the contracts then forget the answers given
        so far), the contract's word decides."""
        self._client = client
        self._receipt_timeout = receipt_timeout
        self._key_servers = key_servers
        self._remember_blocks = remember_blocks
        self._locks: dict[tuple[object, ...], asyncio.Lock] = {}
        #: the answers this node got mined → the block that mined each
        self._published: OrderedDict[tuple[object, ...], int] = OrderedDict()

    @property
    def account(self) -> Address:
        return self._client.address

    # --- reading ---------------------------------------------------------------------------
    async def requests_in(
        self, contract: Address, apis: frozenset[ServiceApi], from_block: int, to_block: int
    ) -> list[ServiceRequest]:
        """The requests logged by `contract` in `from_block`..`to_block` (bad logs skipped)."""
        entries = await self._client.logs(contract, request_topics(apis), from_block, to_block)
        found: list[ServiceRequest] = []
        for entry in entries:
            if not entry.topics:
                continue
            try:
                found.append(parse_request_log(contract, entry.topics[0], entry.data))
            except BadServiceLog as exc:
                log.warning(
                    "service contract %s, block #%d: %s", to_hex(contract), entry.block, exc
                )
        return found

    async def pending(
        self, contract: Address, api: ServiceApi, block: BlockSpec, *, required: bool = True
    ) -> list[tuple[ServiceRequest, bool]]:
        """Every pending request of `api` at `block`, with whether this node's answer is
        still required there (True for all when `required` is False: not read)."""
        count_of, get = _PENDING[api]
        count = int(await self._client.call(contract, count_of, block=block))
        if count > MAX_PENDING_READ:
            log.warning(
                "service contract %s holds %d pending %s requests; reading the first %d",
                to_hex(contract),
                count,
                api.value,
                MAX_PENDING_READ,
            )
            count = MAX_PENDING_READ
        found: list[tuple[ServiceRequest, bool]] = []
        for index in range(count):
            try:
                raw = await self._client.call(contract, get, index, block=block)
            except ContractCallFailed:
                break  # the list shrank meanwhile
            request = _pending_request(contract, api, raw)
            if request is None:
                continue
            needed = await self._required(request, block) if required else True
            found.append((request, needed))
        return found

    async def response_required(self, request: ServiceRequest) -> bool:
        """Whether the contract still wants this node's answer, at the latest block."""
        return await self._required(request, "latest")

    async def _required(self, request: ServiceRequest, block: BlockSpec) -> bool:
        function, args = _required_call(request, self.account)
        try:
            return bool(await self._client.call(request.contract, function, *args, block=block))
        except ContractCallFailed:
            return False  # this node is not a key server of the contract's set (now)

    async def participants_mask(self, contract: Address, nodes: Sequence[NodeId]) -> int:
        """The contract's bit mask of `nodes` (by their index in its key server set)."""
        mask = 0
        for node in nodes:
            index = await self._client.call(
                contract, abi.REQUIRE_KEY_SERVER, node_address(node), block="latest"
            )
            mask |= 1 << int(index)
        return mask

    # --- answering -------------------------------------------------------------------------
    async def publish(self, request: ServiceRequest, answer: Answer) -> Receipt | None:
        """Send `answer` to `request` unless this node's answer is not required any more
        (None then). Raises ContractCallFailed, TransactionFailed or ChainUnavailable."""
        identity = request.identity
        lock = self._locks.setdefault(identity, asyncio.Lock())
        try:
            async with lock:
                return await self._publish(request, answer)
        finally:
            if len(self._locks) > 1024:
                for key, held in list(self._locks.items()):
                    if not held.locked():
                        del self._locks[key]

    async def _publish(self, request: ServiceRequest, answer: Answer) -> Receipt | None:
        once = (self._key_servers(), *_once_key(request, answer))
        mined = self._published.get(once)
        head = self._client.head
        if mined is not None and (head is None or head.number < mined + self._remember_blocks):
            return None
        what = f"{type(answer).__name__} for {_describe(request)}"
        if not await self.response_required(request):
            log.info("%s: not sent, the contract needs no answer from this node", what)
            return None
        function, args = await self._answer_call(request, answer)
        tx_hash = await self._client.transact(
            request.contract, function, *args, extra_gas=ANSWER_EXTRA_GAS
        )
        receipt = await self._client.receipt(tx_hash, self._receipt_timeout)
        if receipt is None:
            log.warning(
                "%s: transaction 0x%s not mined within %.0f s; left to the next retry",
                what,
                tx_hash.hex(),
                self._receipt_timeout,
            )
            return None
        if not receipt.succeeded:
            raise TransactionFailed(
                f"{what}: transaction 0x{tx_hash.hex()} reverted in block #{receipt.block}"
            )
        self._published[once] = receipt.block
        self._published.move_to_end(once)
        while len(self._published) > MAX_REMEMBERED:
            self._published.popitem(last=False)
        log.info(
            "answered %s: %s in block #%d (tx 0x%s, gas %d)",
            _describe(request),
            function.name,
            receipt.block,
            tx_hash.hex(),
            receipt.gas_used,
        )
        return receipt

    async def _answer_call(
        self, request: ServiceRequest, answer: Answer
    ) -> tuple[Function, tuple[Any, ...]]:
        key_id = request.key_id
        if isinstance(request, GenerationRequest):
            if isinstance(answer, Generated):
                return abi.SERVER_KEY_GENERATED, (key_id, answer.public.to_bytes())
            return abi.SERVER_KEY_GENERATION_ERROR, (key_id,)
        if isinstance(request, ServerKeyRetrievalRequest):
            if isinstance(answer, Retrieved):
                return abi.SERVER_KEY_RETRIEVED, (
                    key_id,
                    answer.public.to_bytes(),
                    answer.threshold,
                )
            return abi.SERVER_KEY_RETRIEVAL_ERROR, (key_id,)
        if isinstance(request, StoreRequest):
            if isinstance(answer, Stored):
                return abi.DOCUMENT_KEY_STORED, (key_id,)
            return abi.DOCUMENT_KEY_STORE_ERROR, (key_id,)
        requester = request.requester
        if isinstance(answer, CommonRetrieved):
            common = answer.common_point.to_bytes()
            return abi.DOCUMENT_KEY_COMMON_RETRIEVED, (key_id, requester, common, answer.threshold)
        if isinstance(answer, PersonalRetrieved):
            mask = await self.participants_mask(request.contract, answer.participants)
            return abi.DOCUMENT_KEY_PERSONAL_RETRIEVED, (
                key_id,
                requester,
                mask,
                answer.decrypted_secret.to_bytes(),
                answer.decrypt_shadow,
            )
        return abi.DOCUMENT_KEY_SHADOW_RETRIEVAL_ERROR, (key_id, requester)


def _describe(request: ServiceRequest) -> str:
    kind = {
        GenerationRequest: "server key generation",
        ServerKeyRetrievalRequest: "server key retrieval",
        StoreRequest: "document key store",
        CommonRetrievalRequest: "shadow retrieval (common part)",
        PersonalRetrievalRequest: "shadow retrieval (personal part)",
    }[type(request)]
    return f"{kind} of key 0x{request.key_id.hex()} on {to_hex(request.contract)}"


def describe_request(request: ServiceRequest) -> str:
    """A request for logs: what, which key, which contract."""
    return _describe(request)


def _once_key(request: ServiceRequest, answer: Answer) -> tuple[object, ...]:
    """What an answer answers, once: the request (a shadow retrieval's common and personal
    parts apart), and for a personal part its decryption's result (the contract keeps asking
    for one while the request is pending: a new decryption may be needed)."""
    if isinstance(answer, PersonalRetrieved):
        return (*request.identity, "personal", answer.participants, answer.decrypted_secret)
    return (*request.identity, type(request).__name__)


_PENDING: Final = {
    ServiceApi.SERVER_KEY_GENERATION: (
        abi.SERVER_KEY_GENERATION_REQUESTS_COUNT,
        abi.GET_SERVER_KEY_GENERATION_REQUEST,
    ),
    ServiceApi.SERVER_KEY_RETRIEVAL: (
        abi.SERVER_KEY_RETRIEVAL_REQUESTS_COUNT,
        abi.GET_SERVER_KEY_RETRIEVAL_REQUEST,
    ),
    ServiceApi.DOCUMENT_KEY_STORE: (
        abi.DOCUMENT_KEY_STORE_REQUESTS_COUNT,
        abi.GET_DOCUMENT_KEY_STORE_REQUEST,
    ),
    ServiceApi.DOCUMENT_KEY_SHADOW_RETRIEVAL: (
        abi.DOCUMENT_KEY_SHADOW_RETRIEVAL_REQUESTS_COUNT,
        abi.GET_DOCUMENT_KEY_SHADOW_RETRIEVAL_REQUEST,
    ),
}


def _pending_request(contract: Address, api: ServiceApi, raw: Any) -> ServiceRequest | None:
    if api is ServiceApi.SERVER_KEY_GENERATION:
        key_id, author, threshold = raw
        if int(threshold) > 254:
            return None
        return GenerationRequest(contract, ServerKeyId(bytes(key_id)), author, int(threshold))
    if api is ServiceApi.SERVER_KEY_RETRIEVAL:
        return ServerKeyRetrievalRequest(contract, ServerKeyId(bytes(raw)))
    if api is ServiceApi.DOCUMENT_KEY_STORE:
        key_id, author, common, encrypted = raw
        return StoreRequest(
            contract, ServerKeyId(bytes(key_id)), author, bytes(common), bytes(encrypted)
        )
    key_id, public, common_done = raw
    if len(public) != 64:
        return None
    personal = PersonalRetrievalRequest(contract, ServerKeyId(bytes(key_id)), bytes(public))
    if common_done:
        return personal
    return CommonRetrievalRequest(contract, personal.key_id, personal.requester)


def _required_call(request: ServiceRequest, account: Address) -> tuple[Function, tuple[Any, ...]]:
    if isinstance(request, GenerationRequest):
        return abi.IS_SERVER_KEY_GENERATION_RESPONSE_REQUIRED, (request.key_id, account)
    if isinstance(request, ServerKeyRetrievalRequest):
        return abi.IS_SERVER_KEY_RETRIEVAL_RESPONSE_REQUIRED, (request.key_id, account)
    if isinstance(request, StoreRequest):
        return abi.IS_DOCUMENT_KEY_STORE_RESPONSE_REQUIRED, (request.key_id, account)
    return abi.IS_DOCUMENT_KEY_SHADOW_RETRIEVAL_RESPONSE_REQUIRED, (
        request.key_id,
        request.requester,
        account,
    )
