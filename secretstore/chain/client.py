"""One node's connection to an Ethereum chain (web3.py's AsyncWeb3 over JSON-RPC).

It polls the latest block; the chain is *trusted* while its RPC answers and is not syncing
(Parity's "trusted blockchain client"). On every new block it runs the listeners (registry,
key server set, auto-migration) one after the other, in the poll task, so a slow listener
delays the next poll instead of piling up. Contract calls go to a chosen block: "latest", a
number, or one block by hash (EIP-1898, canonical only) for a pinned decision. Transactions are
signed with the node key (EIP-155, the chain's id), one at a time, each with the account's
pending nonce. Nothing here blocks the event loop; every RPC has a timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal

from web3 import AsyncHTTPProvider, AsyncWeb3
from web3.exceptions import ContractLogicError

from secretstore.chain.abi import Function
from secretstore.crypto.keys import KeyPair
from secretstore.encoding import to_hex
from secretstore.errors import ChainUnavailable, SecretStoreError
from secretstore.types import Address, BlockRef, Hash256

log = logging.getLogger(__name__)

DEFAULT_POLL_INTERVAL: Final = 1.0
DEFAULT_RPC_TIMEOUT: Final = 5.0
#: Extra gas over the node's estimate for a transaction.
GAS_MARGIN: Final = 1.25

BlockSpec = Literal["latest"] | int | BlockRef
BlockListener = Callable[[BlockRef], Awaitable[object]]


class ContractCallFailed(SecretStoreError):
    """A contract call reverted, or answered something that does not decode."""


class BlockUnknown(SecretStoreError):
    """The chain does not have (or not on its canonical chain) the block a call asked for."""


class TransactionFailed(SecretStoreError):
    """A transaction was not sent (the account cannot pay for it) or was mined and reverted."""


@dataclass(frozen=True, slots=True)
class LogEntry:
    """One log of a contract: the block it was mined in, its topics and its data."""

    block: int
    topics: tuple[bytes, ...]
    data: bytes


@dataclass(frozen=True, slots=True)
class Receipt:
    """A mined transaction: its block, whether it succeeded, the gas it used."""

    tx_hash: Hash256
    block: int
    succeeded: bool
    gas_used: int


class ChainClient:
    """The node's chain: latest block, trust, listeners, calls and transactions."""

    def __init__(
        self,
        url: str,
        key: KeyPair,
        *,
        poll_interval: float = DEFAULT_POLL_INTERVAL,
        timeout: float = DEFAULT_RPC_TIMEOUT,
    ) -> None:
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"chain RPC {url}: only http(s):// endpoints are supported")
        self.url = url
        self._key = key
        provider = AsyncHTTPProvider(url, request_kwargs={"timeout": timeout})
        # web3's session manager guards its session cache with one process-wide lock, taken
        # in a worker thread; a request cancelled while that acquisition is pending leaves it
        # held, and every other web3 user of the process then waits forever. Our own lock
        # keeps such a leak (possible only when the client stops) to this client.
        provider._request_session_manager._lock = threading.Lock()
        self._w3 = AsyncWeb3(provider)
        self._timeout = timeout
        self._poll_interval = poll_interval
        self._listeners: list[BlockListener] = []
        self._task: asyncio.Task[None] | None = None
        self._tx_lock = asyncio.Lock()
        self._chain_id: int | None = None
        #: the latest block seen while the chain was trusted
        self.head: BlockRef | None = None
        #: why the chain is not trusted now (None while it is)
        self.problem: str | None = "not polled yet"
        self._wake = asyncio.Event()
        self._stopping = False

    # --- state --------------------------------------------------------------------------------
    @property
    def trusted(self) -> bool:
        return self.problem is None and self.head is not None

    @property
    def address(self) -> Address:
        """This node's account: keccak256(node public)[12:]."""
        return self._key.address

    def require_trusted(self, what: str = "the chain") -> BlockRef:
        """The latest block; ChainUnavailable while the chain is not trusted."""
        if self.problem is not None or self.head is None:
            raise ChainUnavailable(
                f"{what} cannot be read without trusted blockchain client "
                f"({self.problem or 'no block seen yet'})"
            )
        return self.head

    def add_listener(self, listener: BlockListener) -> None:
        """`listener(block)` runs for every new latest block while the chain is trusted."""
        self._listeners.append(listener)

    # --- lifecycle ----------------------------------------------------------------------------
    async def start(self) -> None:
        """One poll (a failure is logged, not raised: the node runs untrusted until the chain
        answers), then poll in the background."""
        await self._poll()
        self._task = asyncio.get_running_loop().create_task(self._poll_loop())

    async def stop(self) -> None:
        """Stop polling: the poll under way ends first (no request is cut off mid-way unless
        it outlasts its timeout)."""
        self._stopping = True
        if self._task is not None:
            task, self._task = self._task, None
            self._wake.set()
            try:
                await asyncio.wait_for(asyncio.shield(task), self._timeout * 2 + 1)
            except TimeoutError:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self.problem = "the chain client is stopped"
        with contextlib.suppress(Exception):
            await self._w3.provider.disconnect()

    def poll_soon(self) -> None:
        """Poll now instead of at the end of the interval."""
        self._wake.set()

    async def _poll_loop(self) -> None:
        while not self._stopping:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._poll_interval):
                    await self._wake.wait()
            self._wake.clear()
            if not self._stopping:
                await self._poll()

    async def _poll(self) -> None:
        if self._stopping:
            return
        try:
            if await self._w3.eth.syncing:
                self._untrusted("the chain is syncing")
                return
            block = await self._w3.eth.get_block("latest")
        except Exception as exc:  # any transport or RPC failure: untrusted until it answers
            self._untrusted(f"the chain RPC at {self.url} does not answer: {_reason(exc)}")
            return
        number, block_hash = block.get("number"), block.get("hash")
        if number is None or block_hash is None:
            self._untrusted("the chain answered a latest block without number or hash")
            return
        head = BlockRef(int(number), Hash256(bytes(block_hash)))
        if self.problem is not None:
            log.info("chain trusted again at block %s (%s)", head, self.url)
            self.problem = None
        if head == self.head:
            return
        if self.head is not None and head.number < self.head.number:
            log.warning("chain went back from block %s to %s", self.head, head)
            self._chain_id = None
        self.head = head
        for listener in self._listeners:
            if self._stopped():  # stop() came while the previous listener ran
                return
            try:
                await listener(head)
            except ChainUnavailable as exc:  # the chain went away during the block's work
                self._untrusted(str(exc))
                return
            except Exception:
                log.exception("block listener failed at block %s", head)

    def _stopped(self) -> bool:
        return self._stopping

    def _untrusted(self, problem: str) -> None:
        if self.problem != problem:
            log.error("%s; contract reads fail until it does", problem)
        self.problem = problem

    # --- calls --------------------------------------------------------------------------------
    async def call(self, to: Address, function: Function, *args: Any, block: BlockSpec) -> Any:
        """The result of a read-only call (one value, or a tuple for several outputs).

        ContractCallFailed when it reverts or the answer does not decode; BlockUnknown when a
        pinned block is not on the chain; ChainUnavailable when the RPC does not answer."""
        data = function.calldata(*args)
        request = {"to": to_hex(to), "data": to_hex(data)}
        try:
            response = await self._w3.provider.make_request(
                "eth_call",
                [request, _block_param(block)],
            )
        except Exception as exc:
            raise ChainUnavailable(
                f"the chain RPC at {self.url} does not answer ({function.name} at "
                f"{to_hex(to)}): {_reason(exc)}"
            ) from None
        error = response.get("error")
        if error is not None:
            text = str(error.get("message", error)) if isinstance(error, dict) else str(error)
            code = error.get("code") if isinstance(error, dict) else None
            if code == 3 or "revert" in text.lower():
                raise ContractCallFailed(f"{function.name} at {to_hex(to)} reverted: {text}")
            if isinstance(block, BlockRef) and (code in (-32001, -32000) or "not found" in text):
                raise BlockUnknown(f"block {block} is not on this node's chain: {text}")
            raise ChainUnavailable(f"{function.name} at {to_hex(to)}: the chain RPC said {text}")
        result = response.get("result")
        if not isinstance(result, str) or not result.startswith("0x"):
            raise ContractCallFailed(f"{function.name} at {to_hex(to)} answered {result!r}")
        raw = bytes.fromhex(result[2:])
        try:
            values = function.result(bytes(raw))
        except Exception as exc:
            raise ContractCallFailed(
                f"{function.name} at {to_hex(to)} answered {len(raw)} bytes that do not decode "
                f"as ({', '.join(function.outputs)}): {exc}"
            ) from None
        return values[0] if len(values) == 1 else values

    async def block_hash(self, number: int) -> Hash256 | None:
        """The hash of block `number` on the canonical chain (None when there is none yet)."""
        try:
            block = await self._w3.eth.get_block(number)
        except Exception as exc:
            if "not found" in _reason(exc).lower():
                return None
            raise ChainUnavailable(
                f"the chain RPC at {self.url} does not answer (block #{number}): {_reason(exc)}"
            ) from None
        block_hash = block.get("hash")
        return Hash256(bytes(block_hash)) if block_hash is not None else None

    async def logs(
        self, address: Address, topics: Sequence[bytes], from_block: int, to_block: int
    ) -> list[LogEntry]:
        """The logs of `address` whose first topic is one of `topics`, in blocks
        `from_block`..`to_block` (inclusive), in chain order. ChainUnavailable when the chain
        does not answer."""
        query = {
            "address": to_hex(address),
            "topics": [[to_hex(topic) for topic in topics]],
            "fromBlock": hex(from_block),
            "toBlock": hex(to_block),
        }
        try:
            response = await self._w3.provider.make_request("eth_getLogs", [query])
        except Exception as exc:
            raise ChainUnavailable(
                f"the chain RPC at {self.url} does not answer (logs of {to_hex(address)}): "
                f"{_reason(exc)}"
            ) from None
        error = response.get("error")
        result = response.get("result")
        if error is not None or not isinstance(result, list):
            raise ChainUnavailable(f"logs of {to_hex(address)}: the chain RPC said {error}")
        entries = []
        for item in result:
            entries.append(
                LogEntry(
                    int(item["blockNumber"], 16),
                    tuple(bytes.fromhex(topic[2:]) for topic in item["topics"]),
                    bytes.fromhex(item["data"][2:]),
                )
            )
        return entries

    async def receipt(self, tx_hash: Hash256, timeout: float) -> Receipt | None:
        """The receipt of a transaction once it is mined (polled), None after `timeout`
        seconds without one."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            try:
                found = await self._w3.eth.get_transaction_receipt(tx_hash)  # type: ignore[arg-type]
            except Exception as exc:
                if "not found" not in _reason(exc).lower():
                    raise ChainUnavailable(
                        f"the chain RPC at {self.url} does not answer (receipt of "
                        f"0x{tx_hash.hex()}): {_reason(exc)}"
                    ) from None
                found = None
            if found is not None and found.get("blockNumber") is not None:
                return Receipt(
                    tx_hash,
                    int(found["blockNumber"]),
                    int(found.get("status", 0)) == 1,
                    int(found.get("gasUsed", 0)),
                )
            if loop.time() >= deadline:
                return None
            await asyncio.sleep(min(self._poll_interval, 0.25))

    # --- transactions -------------------------------------------------------------------------
    async def transact(
        self,
        to: Address,
        function: Function,
        *args: Any,
        extra_gas: int = 0,
        gas_floor: int = 0,
    ) -> Hash256:
        """Send one transaction calling `function(*args)` at `to`, signed with the node key;
        its hash. ContractCallFailed when the chain says it would revert (nothing is sent).
        The gas limit is the estimate with a margin, plus `extra_gas`, and at least
        `gas_floor`: the estimate is made in the state before other pending transactions,
        which may make this one dearer (unused gas is not paid for)."""
        from secretstore.ethaccount import Account

        self.require_trusted(f"{function.name}")
        data = function.calldata(*args)
        eth = self._w3.eth
        sender = AsyncWeb3.to_checksum_address(to_hex(self.address))
        target = AsyncWeb3.to_checksum_address(to_hex(to))
        async with self._tx_lock:
            try:
                if self._chain_id is None:
                    self._chain_id = await eth.chain_id
                nonce = await eth.get_transaction_count(sender, "pending")
                call = {"from": sender, "to": target, "data": to_hex(data), "value": 0}
                try:
                    estimate = await eth.estimate_gas(call)  # type: ignore[arg-type]
                except ContractLogicError as exc:
                    raise ContractCallFailed(
                        f"{function.name} at {to_hex(to)} would revert: {exc}"
                    ) from None
                transaction = {
                    **call,
                    "chainId": self._chain_id,
                    "nonce": nonce,
                    "gas": max(int(estimate * GAS_MARGIN) + extra_gas, gas_floor),
                    "gasPrice": await eth.gas_price,
                }
                signed = Account.sign_transaction(transaction, self._key.secret.to_bytes())
                tx_hash = await eth.send_raw_transaction(signed.raw_transaction)
            except SecretStoreError:
                raise
            except Exception as exc:
                if "insufficient funds" in _reason(exc).lower():
                    raise TransactionFailed(
                        f"{function.name} at {to_hex(to)}: the node's account "
                        f"{to_hex(self.address)} cannot pay for the transaction (fund it with "
                        f"ether): {_reason(exc)}"
                    ) from None
                raise ChainUnavailable(
                    f"{function.name} at {to_hex(to)}: sending the transaction failed: "
                    f"{_reason(exc)}"
                ) from None
        log.info("sent %s to %s (nonce %d, tx %s)", function.name, to_hex(to), nonce, tx_hash.hex())
        return Hash256(bytes(tx_hash))


def _block_param(block: BlockSpec) -> Any:
    if isinstance(block, BlockRef):
        return {"blockHash": to_hex(block.hash), "requireCanonical": True}
    if block == "latest":
        return "latest"
    return hex(block)


def _reason(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text if len(text) <= 300 else text[:300] + "…"
