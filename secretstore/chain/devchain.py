"""A local development chain: anvil (from npm) and our contracts deployed on it.

For the tests, the benchmarks and `secretstore chain-cluster`; never used by a node. anvil is
found at $ANVIL, else in the repository's node_modules (`make devtools` installs it); the
compiled contracts are read from contracts/build. Every call is synchronous (web3's HTTP
provider) and bounded in time.
"""

from __future__ import annotations

import json
import os
import platform
import signal
import socket
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Final

from eth_abi.abi import encode
from web3 import HTTPProvider, Web3
from web3.exceptions import ContractLogicError

from secretstore.chain import abi
from secretstore.chain.abi import Function
from secretstore.encoding import to_hex
from secretstore.errors import SecretStoreError
from secretstore.types import Address

ROOT: Final = Path(__file__).resolve().parents[2]
ARTIFACTS: Final = ROOT / "contracts" / "build"
#: anvil's first dev account (its well-known key: a dev chain only)
DEV_ACCOUNT: Final = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"
START_TIMEOUT: Final = 15.0
ONE_ETHER: Final = 10**18


class DevChainError(SecretStoreError):
    """anvil is missing, does not start, or a deployment step failed."""


def anvil_path() -> Path:
    """The anvil binary: $ANVIL, or node_modules/@foundry-rs/anvil-<os>-<arch>/bin/anvil."""
    given = os.environ.get("ANVIL")
    if given:
        return Path(given)
    machine = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}
    arch = machine.get(platform.machine().lower(), platform.machine().lower())
    system = platform.system().lower()
    path = ROOT / "node_modules" / "@foundry-rs" / f"anvil-{system}-{arch}" / "bin" / "anvil"
    if not path.exists():
        raise DevChainError(f"anvil is not installed ({path}): run `make devtools`")
    return path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Anvil:
    """One anvil process on 127.0.0.1. `block_time` None mines a block per transaction only;
    `state` keeps the chain in a file across a stop and a start."""

    def __init__(
        self,
        *,
        port: int | None = None,
        block_time: float | None = 1.0,
        state: Path | None = None,
        log: Path | None = None,
    ) -> None:
        self.port = port or free_port()
        self.block_time = block_time
        self.state = state
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Anvil:
        command = [str(anvil_path()), "--port", str(self.port), "--host", "127.0.0.1"]
        if self.block_time is not None:
            command += ["--block-time", str(self.block_time)]
        if self.state is not None:
            command += ["--state", str(self.state)]
        output = self.log.open("ab") if self.log is not None else subprocess.DEVNULL
        try:
            self.process = subprocess.Popen(
                command, stdin=subprocess.DEVNULL, stdout=output, stderr=output
            )
        finally:
            if self.log is not None and not isinstance(output, int):
                output.close()
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise DevChainError(f"anvil exited with status {self.process.returncode}")
            try:
                if Web3(HTTPProvider(self.url, request_kwargs={"timeout": 1})).is_connected():
                    return self
            except Exception:  # noqa: S110 - not up yet
                pass
            time.sleep(0.05)
        self.stop()
        raise DevChainError(f"anvil did not answer on {self.url} within {START_TIMEOUT} s")

    def stop(self) -> None:
        """SIGTERM (anvil then writes its state file, if any) and wait."""
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)

    def pause(self) -> None:
        """SIGSTOP: the RPC stops answering (connections hang) until `resume`."""
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGCONT)

    def __enter__(self) -> Anvil:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def load_artifact(name: str) -> dict[str, Any]:
    """contracts/build/<name>.json: {contract, source, compiler, abi, bytecode}."""
    path = ARTIFACTS / f"{name}.json"
    try:
        artifact: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise DevChainError(f"no compiled contract {name} ({path}): {exc}") from None
    return artifact


class DevChain:
    """Deploy and drive contracts on a dev chain from its first (unlocked) account."""

    def __init__(self, url: str, sender: str = DEV_ACCOUNT) -> None:
        self.url = url
        self.w3 = Web3(HTTPProvider(url, request_kwargs={"timeout": 10}))
        self.sender = Web3.to_checksum_address(sender)

    def wait_until_up(self, timeout: float) -> None:
        """Until the chain answers (a dev chain just starting); DevChainError after `timeout`."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                if self.w3.is_connected():
                    return
            except Exception:  # noqa: S110 - not up yet
                pass
            if time.monotonic() >= deadline:
                raise DevChainError(f"the chain at {self.url} did not answer within {timeout:g} s")
            time.sleep(0.2)

    def deploy(self, name: str, *args: Any) -> Address:
        """Deploy contract `name` with its constructor's `args`."""
        artifact = load_artifact(name)
        data = artifact["bytecode"]
        if args:
            constructor = next(
                (item for item in artifact["abi"] if item.get("type") == "constructor"), None
            )
            kinds = [item["type"] for item in constructor["inputs"]] if constructor else []
            if len(kinds) != len(args):
                raise DevChainError(f"{name}'s constructor takes {len(kinds)} arguments")
            data += encode(kinds, list(args)).hex()
        receipt = self._send({"data": data})
        address = receipt.get("contractAddress")
        if address is None:
            raise DevChainError(f"deploying {name} gave no contract address")
        return Address(bytes.fromhex(address[2:]))

    def transact(
        self,
        to: Address,
        function: Function,
        *args: Any,
        sender: Address | None = None,
        value: int = 0,
    ) -> dict[str, Any]:
        """Send (from `sender`, impersonated, or the dev account; `value` wei), wait until
        mined; raise DevChainError if it reverted."""
        data = function.calldata(*args)
        transaction: dict[str, Any] = {
            "to": Web3.to_checksum_address(to_hex(to)),
            "data": to_hex(data),
            "value": value,
        }
        if sender is not None:
            self.w3.provider.make_request(
                "anvil_impersonateAccount",  # type: ignore[arg-type]
                [to_hex(sender)],
            )
            transaction["from"] = Web3.to_checksum_address(to_hex(sender))
        return self._send(transaction)

    def call(self, to: Address, function: Function, *args: Any) -> Any:
        target = Web3.to_checksum_address(to_hex(to))
        try:
            raw = self.w3.eth.call({"to": target, "data": function.calldata(*args)})
        except ContractLogicError as exc:
            raise DevChainError(f"{function.name} reverted: {exc}") from None
        values = function.result(bytes(raw))
        return values[0] if len(values) == 1 else values

    def fund(self, address: Address, wei: int = 100 * ONE_ETHER) -> None:
        self.w3.provider.make_request(
            "anvil_setBalance",  # type: ignore[arg-type]
            [to_hex(address), hex(wei)],
        )

    def mine_every(self, seconds: int) -> None:
        """Switch anvil to a block every `seconds` (0: only on transactions)."""
        self.w3.provider.make_request("evm_setIntervalMining", [seconds])  # type: ignore[arg-type]

    def mine(self, blocks: int = 1) -> None:
        self.w3.provider.make_request("anvil_mine", [hex(blocks)])  # type: ignore[arg-type]

    @property
    def block_number(self) -> int:
        return int(self.w3.eth.block_number)

    def _send(self, transaction: dict[str, Any]) -> dict[str, Any]:
        try:
            tx_hash = self.w3.eth.send_transaction({"from": self.sender, **transaction})  # type: ignore[typeddict-item]
        except Exception as exc:  # anvil refuses a transaction that would revert
            raise DevChainError(f"transaction refused: {exc}") from None
        receipt = dict(self.w3.eth.wait_for_transaction_receipt(tx_hash, timeout=30))
        if receipt.get("status") != 1:
            raise DevChainError(f"transaction {tx_hash.hex()} reverted")
        return receipt


# --- our contracts, set up as a key server cluster uses them -------------------------------

ADD_KEY_SERVER: Final = Function("addKeyServer", ("bytes", "string"))
REMOVE_KEY_SERVER: Final = Function("removeKeyServer", ("address",))
COMPLETE_INITIALIZATION: Final = Function("completeInitialization")
GRANT: Final = Function("grant", ("address", "bytes32"))
REVOKE: Final = Function("revoke", ("address", "bytes32"))
CREATE_KEY: Final = Function("createKey", ("bytes32",))
TRANSFER_PERMISSION: Final = Function("transferPermission", ("bytes32", "address"))


@dataclass(frozen=True, slots=True)
class Deployment:
    """Addresses of a deployment: the registry, the ACL and the key server set."""

    registry: Address
    acl: Address
    server_set: Address

    def to_json(self) -> dict[str, str]:
        return {
            "registry": to_hex(self.registry),
            "acl": to_hex(self.acl),
            "server_set": to_hex(self.server_set),
        }


def deploy_secret_store(
    chain: DevChain,
    servers: Sequence[tuple[bytes, str]],
    *,
    acl: str = "OwnedPermissions",
    server_set: str = "OwnedKeyServerSetWithMigration",
    initialize: bool = True,
) -> Deployment:
    """The registry, an ACL and a key server set with `servers` (public, "ip:port"), both
    entered in the registry; every server's account funded. With the migration contract and
    `initialize`, the servers are its current set and later edits go to the new set."""
    registry = chain.deploy("Registry")
    acl_address = chain.deploy(acl)
    set_address = chain.deploy(server_set)
    for public, endpoint in servers:
        chain.transact(set_address, ADD_KEY_SERVER, public, endpoint)
        chain.fund(Address(Web3.keccak(public)[12:]))
    if initialize and server_set == "OwnedKeyServerSetWithMigration":
        chain.transact(set_address, COMPLETE_INITIALIZATION)
    set_entry(chain, registry, abi.ACL_ENTRY, acl_address)
    set_entry(chain, registry, abi.SERVER_SET_ENTRY, set_address)
    return Deployment(registry, acl_address, set_address)


def set_entry(chain: DevChain, registry: Address, entry: str, address: Address) -> None:
    chain.transact(registry, abi.SET_ADDRESS, abi.registry_name(entry), abi.REGISTRY_KEY, address)


#: The ACL contracts a dev deployment may use, by their short names.
ACLS: Final = {"owned": "OwnedPermissions", "once": "OnceTransferablePermission"}
#: Where a deployment is recorded beside a cluster's configs.
DEPLOYMENT_NAME: Final = "deployment.json"


def recorded_deployment(
    chain: DevChain, path: Path, servers: Sequence[tuple[bytes, str]], acl: str
) -> tuple[Deployment, bool]:
    """The deployment recorded at `path` if the chain still has it, with the same `servers`
    and `acl`; else a fresh one (`deploy_secret_store`), recorded there. (deployment, reused)."""
    entries = [[public.hex(), endpoint] for public, endpoint in servers]
    try:
        recorded = json.loads(path.read_text(encoding="utf-8"))
        addresses = {
            f.name: Address(bytes.fromhex(recorded[f.name][2:])) for f in fields(Deployment)
        }
        deployment = Deployment(**addresses)
        if (
            recorded.get("servers") == entries
            and recorded.get("acl_contract") == acl
            and chain.w3.eth.get_code(chain.w3.to_checksum_address(to_hex(deployment.server_set)))
        ):
            return deployment, True
    except (OSError, ValueError, KeyError, TypeError):
        pass
    deployment = deploy_secret_store(chain, servers, acl=acl)
    record = {**deployment.to_json(), "acl_contract": acl, "owner": DEV_ACCOUNT, "servers": entries}
    path.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    return deployment, False


# --- the service contracts -------------------------------------------------------------------

#: The four single-API service contracts, by the registry entry each is found under.
SERVICE_CONTRACTS: Final = {
    "secretstore_service_srv_gen": "SecretStoreServerKeyGenerationService",
    "secretstore_service_srv_retr": "SecretStoreServerKeyRetrievalService",
    "secretstore_service_doc_store": "SecretStoreDocumentKeyStoreService",
    "secretstore_service_doc_sretr": "SecretStoreDocumentKeyShadowRetrievalService",
}
#: The owner's setters of each service's limit of pending requests.
SET_MAX_REQUESTS: Final = {
    "secretstore_service_srv_gen": Function("setMaxServerKeyGenerationRequests", ("uint256",)),
    "secretstore_service_srv_retr": Function("setMaxServerKeyRetrievalRequests", ("uint256",)),
    "secretstore_service_doc_store": Function("setMaxDocumentKeyStoreRequests", ("uint256",)),
    "secretstore_service_doc_sretr": Function(
        "setMaxDocumentKeyShadowRetrievalRequests", ("uint256",)
    ),
}


def deploy_services(
    chain: DevChain,
    registry: Address,
    server_set: Address,
    *,
    combined: bool = False,
    max_requests: int | None = None,
) -> dict[str, Address]:
    """The service contracts over the key server set `server_set`, entered in the registry:
    one `SecretStoreService` under "secretstore_service" (`combined`), or the four single-API
    contracts under their entries. `max_requests`: raise every pending-request limit to it.
    Returns {registry entry: address}."""
    if combined:
        address = chain.deploy("SecretStoreService", server_set)
        deployed = {"secretstore_service": address}
        targets = {entry: address for entry in SET_MAX_REQUESTS}
    else:
        deployed = {
            entry: chain.deploy(name, server_set) for entry, name in SERVICE_CONTRACTS.items()
        }
        targets = deployed
    for entry, address in deployed.items():
        set_entry(chain, registry, entry, address)
    if max_requests is not None:
        for entry, address in targets.items():
            chain.transact(address, SET_MAX_REQUESTS[entry], max_requests)
    return deployed
