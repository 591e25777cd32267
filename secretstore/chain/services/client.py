"""A Secret Store client that uses only the service contracts' client view (web3.py).

For tests, benchmarks and tools on a dev chain: what a user without HTTP access to the key
servers does. Each request is a transaction signed with the client's own key (paying the
service's fee); each answer is an event of the ClientApi (`ServerKeyGenerated`, …), read with
web3.py's contract event filters on the indexed key id. Synchronous, every wait bounded.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from web3 import HTTPProvider, Web3
from web3.contract import Contract

from secretstore.crypto.keys import KeyPair
from secretstore.encoding import to_hex
from secretstore.errors import SecretStoreError
from secretstore.types import Address

ARTIFACTS: Final = Path(__file__).resolve().parents[3] / "contracts" / "build"
ONE_FINNEY: Final = 10**15
#: Parity's fees (the contracts' defaults), in wei.
GENERATION_FEE: Final = 200 * ONE_FINNEY
RETRIEVAL_FEE: Final = 100 * ONE_FINNEY
STORE_FEE: Final = 100 * ONE_FINNEY
SHADOW_RETRIEVAL_FEE: Final = 200 * ONE_FINNEY


class ServiceClientError(SecretStoreError):
    """A request was refused, or its answer did not come in time."""


@dataclass(frozen=True, slots=True)
class Sent:
    """A mined request: its block, when it was sent (monotonic seconds) and its gas."""

    block: int
    sent_at: float
    gas_used: int


@dataclass(frozen=True, slots=True)
class Event:
    """One answer event: its name, arguments, block and the transaction that emitted it."""

    name: str
    args: dict[str, Any]
    block: int
    transaction: bytes = b""


def client_api(name: str, w3: Web3, address: Address) -> Contract:
    """The web3 contract of ClientApi `name` (contracts/build/<name>.json) at `address`."""
    artifact = json.loads((ARTIFACTS / f"{name}.json").read_text(encoding="utf-8"))
    return w3.eth.contract(address=Web3.to_checksum_address(to_hex(address)), abi=artifact["abi"])


class ServiceClient:
    """One client account talking to the four services' client APIs."""

    def __init__(
        self,
        url: str,
        key: KeyPair,
        *,
        generation: Address,
        retrieval: Address,
        store: Address,
        shadow_retrieval: Address,
    ) -> None:
        self.w3 = Web3(HTTPProvider(url, request_kwargs={"timeout": 10}))
        self.key = key
        self.account = Web3.to_checksum_address(to_hex(key.address))
        self.generation = client_api("ServerKeyGenerationServiceClientApi", self.w3, generation)
        self.retrieval = client_api("ServerKeyRetrievalServiceClientApi", self.w3, retrieval)
        self.store = client_api("DocumentKeyStoreServiceClientApi", self.w3, store)
        self.shadow = client_api(
            "DocumentKeyShadowRetrievalServiceClientApi", self.w3, shadow_retrieval
        )

    # --- requests ----------------------------------------------------------------------------
    def generate_server_key(self, key_id: bytes, threshold: int, fee: int = GENERATION_FEE) -> Sent:
        return self._send(self.generation.functions.generateServerKey(key_id, threshold), fee)

    def retrieve_server_key(self, key_id: bytes, fee: int = RETRIEVAL_FEE) -> Sent:
        return self._send(self.retrieval.functions.retrieveServerKey(key_id), fee)

    def store_document_key(
        self, key_id: bytes, common_point: bytes, encrypted_point: bytes, fee: int = STORE_FEE
    ) -> Sent:
        call = self.store.functions.storeDocumentKey(key_id, common_point, encrypted_point)
        return self._send(call, fee)

    def retrieve_document_key_shadow(self, key_id: bytes, fee: int = SHADOW_RETRIEVAL_FEE) -> Sent:
        call = self.shadow.functions.retrieveDocumentKeyShadow(key_id, self.key.node_id)
        return self._send(call, fee)

    def _send(self, call: Any, fee: int) -> Sent:
        sent_at = time.monotonic()
        try:
            transaction = call.build_transaction(
                {
                    "from": self.account,
                    "value": fee,
                    "nonce": self.w3.eth.get_transaction_count(self.account, "pending"),
                    "chainId": self.w3.eth.chain_id,
                    "gasPrice": self.w3.eth.gas_price,
                }
            )
        except Exception as exc:
            raise ServiceClientError(f"the request would be refused: {exc}") from None
        signed = self.w3.eth.account.sign_transaction(transaction, self.key.secret.to_bytes())
        tx_hash = self.w3.eth.send_raw_transaction(signed.raw_transaction)
        receipt = self.w3.eth.wait_for_transaction_receipt(tx_hash, timeout=30)
        if receipt["status"] != 1:
            raise ServiceClientError(f"the request {tx_hash.hex()} reverted")
        return Sent(int(receipt["blockNumber"]), sent_at, int(receipt["gasUsed"]))

    # --- answers -----------------------------------------------------------------------------
    def events(
        self, contract: Contract, names: tuple[str, ...], key_id: bytes, from_block: int
    ) -> list[Event]:
        """The `names` events of `contract` about `key_id` since `from_block`, in chain
        order."""
        found = []
        for name in names:
            event = getattr(contract.events, name)
            for item in event.get_logs(
                from_block=from_block, argument_filters={"serverKeyId": key_id}
            ):
                found.append(
                    (
                        item["blockNumber"],
                        item["logIndex"],
                        Event(
                            name,
                            dict(item["args"]),
                            item["blockNumber"],
                            bytes(item["transactionHash"]),
                        ),
                    )
                )
        return [event for _, _, event in sorted(found, key=lambda f: (f[0], f[1]))]

    def _sender(self, event: Event, known: dict[bytes, str]) -> str:
        """The account that sent the transaction which emitted `event` (looked up once)."""
        if event.transaction not in known:
            transaction = self.w3.eth.get_transaction(event.transaction)  # type: ignore[arg-type]
            known[event.transaction] = str(transaction["from"])
        return known[event.transaction]

    def wait_for(
        self,
        contract: Contract,
        names: tuple[str, ...],
        key_id: bytes,
        from_block: int,
        *,
        count: int = 1,
        timeout: float = 60.0,
    ) -> list[Event]:
        """Until `count` of the `names` events about `key_id` came (or one whose name ends
        in "Error"); ServiceClientError after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            found = self.events(contract, names, key_id, from_block)
            if len(found) >= count or any(e.name.endswith("Error") for e in found):
                return found
            if time.monotonic() > deadline:
                raise ServiceClientError(
                    f"no answer to key 0x{key_id.hex()} in {timeout} s ({len(found)} events)"
                )
            time.sleep(0.1)

    def generated(self, key_id: bytes, since: int, timeout: float = 60.0) -> Event:
        names = ("ServerKeyGenerated", "ServerKeyGenerationError")
        return self.wait_for(self.generation, names, key_id, since, timeout=timeout)[0]

    def retrieved(self, key_id: bytes, since: int, timeout: float = 60.0) -> Event:
        names = ("ServerKeyRetrieved", "ServerKeyRetrievalError")
        return self.wait_for(self.retrieval, names, key_id, since, timeout=timeout)[0]

    def stored(self, key_id: bytes, since: int, timeout: float = 60.0) -> Event:
        names = ("DocumentKeyStored", "DocumentKeyStoreError")
        return self.wait_for(self.store, names, key_id, since, timeout=timeout)[0]

    def shadow_retrieved(
        self, key_id: bytes, since: int, timeout: float = 60.0
    ) -> tuple[Event, list[Event]]:
        """The common event and threshold + 1 personal events with the same decrypted
        secret, each from another key server (or the error event alone). A key server may
        publish several personal events (one per participants mask it names): only its first
        for a decrypted secret counts, so a lying server alone never makes up a group."""
        names = (
            "DocumentKeyCommonRetrieved",
            "DocumentKeyPersonalRetrieved",
            "DocumentKeyShadowRetrievalError",
        )
        senders: dict[bytes, str] = {}
        deadline = time.monotonic() + timeout
        while True:
            found = [
                e
                for e in self.events(self.shadow, names, key_id, since)
                if e.args.get("requester") == self.account
            ]
            errors = [e for e in found if e.name == "DocumentKeyShadowRetrievalError"]
            if errors:
                return errors[0], []
            common = [e for e in found if e.name == "DocumentKeyCommonRetrieved"]
            groups: dict[bytes, dict[str, Event]] = {}
            for e in found:
                if e.name == "DocumentKeyPersonalRetrieved":
                    sender = self._sender(e, senders)
                    groups.setdefault(bytes(e.args["decryptedSecret"]), {}).setdefault(sender, e)
            personal = list(max(groups.values(), key=len, default={}).values())
            if common and len(personal) >= int(common[0].args["threshold"]) + 1:
                return common[0], personal  # t + 1 parts of one decryption
            if time.monotonic() > deadline:
                raise ServiceClientError(
                    f"no shadow retrieval of key 0x{key_id.hex()} in {timeout} s "
                    f"({len(common)} common, {len(personal)} personal events)"
                )
            time.sleep(0.1)
