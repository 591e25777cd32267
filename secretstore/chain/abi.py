"""The contract interfaces the node calls, as Parity's nodes call them: functions, selectors,
ABI encoding and decoding (eth-abi), and the registry names.

These are Parity's interfaces (its `res/*.json` ABIs), so the node works with any contract that
implements them, ours in contracts/ or Parity's own; tests check that our compiled contracts
carry every one of them with the same selector.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from eth_abi.abi import decode, encode

from secretstore.crypto.hashing import keccak256
from secretstore.types import Address


@dataclass(frozen=True, slots=True)
class Function:
    """One contract function: its name and ABI input and output types."""

    name: str
    inputs: tuple[str, ...] = ()
    outputs: tuple[str, ...] = ()

    @property
    def signature(self) -> str:
        return f"{self.name}({','.join(self.inputs)})"

    @property
    def selector(self) -> bytes:
        return keccak256(self.signature.encode())[:4]

    def calldata(self, *args: Any) -> bytes:
        """Selector and ABI-encoded arguments."""
        if len(args) != len(self.inputs):
            raise TypeError(f"{self.signature} takes {len(self.inputs)} arguments")
        return self.selector + encode(list(self.inputs), list(args))

    def result(self, data: bytes) -> tuple[Any, ...]:
        """The decoded return values (eth-abi's errors for malformed data); addresses come
        as 20-byte `Address` values, arrays as tuples."""
        values = decode(list(self.outputs), data)
        return tuple(
            typed_value(kind, value) for kind, value in zip(self.outputs, values, strict=True)
        )


def typed_value(kind: str, value: Any) -> Any:
    """An ABI-decoded value as the node uses it: addresses as 20-byte `Address`, arrays as
    tuples (of typed values)."""
    if kind == "address":
        return Address(bytes.fromhex(value[2:]))
    if kind.endswith("[]"):
        return tuple(typed_value(kind[:-2], item) for item in value)
    return value


# --- the registry (Parity's SimpleRegistry lookup) ---------------------------------------------

GET_ADDRESS: Final = Function("getAddress", ("bytes32", "string"), ("address",))
SET_ADDRESS: Final = Function("setAddress", ("bytes32", "string", "address"), ("bool",))
#: Parity looks up the entry's address under this key.
REGISTRY_KEY: Final = "A"
#: Registry entry names.
ACL_ENTRY: Final = "secretstore_acl_checker"
SERVER_SET_ENTRY: Final = "secretstore_server_set"


def registry_name(entry: str) -> bytes:
    """The registry's `_name` argument for an entry: keccak256 of its UTF-8 name."""
    return keccak256(entry.encode())


# --- the permissioning contract ----------------------------------------------------------------

CHECK_PERMISSIONS: Final = Function("checkPermissions", ("address", "bytes32"), ("bool",))

# --- the key server set ------------------------------------------------------------------------

GET_CURRENT_KEY_SERVERS: Final = Function("getCurrentKeyServers", (), ("address[]",))
GET_CURRENT_KEY_SERVER_PUBLIC: Final = Function(
    "getCurrentKeyServerPublic", ("address",), ("bytes",)
)
GET_CURRENT_KEY_SERVER_ADDRESS: Final = Function(
    "getCurrentKeyServerAddress", ("address",), ("string",)
)
GET_MIGRATION_KEY_SERVERS: Final = Function("getMigrationKeyServers", (), ("address[]",))
GET_MIGRATION_KEY_SERVER_PUBLIC: Final = Function(
    "getMigrationKeyServerPublic", ("address",), ("bytes",)
)
GET_MIGRATION_KEY_SERVER_ADDRESS: Final = Function(
    "getMigrationKeyServerAddress", ("address",), ("string",)
)
GET_NEW_KEY_SERVERS: Final = Function("getNewKeyServers", (), ("address[]",))
GET_NEW_KEY_SERVER_PUBLIC: Final = Function("getNewKeyServerPublic", ("address",), ("bytes",))
GET_NEW_KEY_SERVER_ADDRESS: Final = Function("getNewKeyServerAddress", ("address",), ("string",))
GET_MIGRATION_ID: Final = Function("getMigrationId", (), ("bytes32",))
GET_MIGRATION_MASTER: Final = Function("getMigrationMaster", (), ("address",))
IS_MIGRATION_CONFIRMED: Final = Function("isMigrationConfirmed", ("address",), ("bool",))
START_MIGRATION: Final = Function("startMigration", ("bytes32",))
CONFIRM_MIGRATION: Final = Function("confirmMigration", ("bytes32",))
# read by the service contracts, not by the node; listed so tests check our contracts have them
GET_CURRENT_LAST_CHANGE: Final = Function("getCurrentLastChange", (), ("uint256",))
GET_CURRENT_KEY_SERVER_INDEX: Final = Function("getCurrentKeyServerIndex", ("address",), ("uint8",))
GET_CURRENT_KEY_SERVERS_COUNT: Final = Function("getCurrentKeyServersCount", (), ("uint8",))
GET_CURRENT_KEY_SERVER: Final = Function("getCurrentKeyServer", ("uint8",), ("address",))

#: Parity's KeyServerSet interface (res/key_server_set.json).
KEY_SERVER_SET: Final = (
    GET_CURRENT_LAST_CHANGE,
    GET_CURRENT_KEY_SERVER_INDEX,
    GET_CURRENT_KEY_SERVERS_COUNT,
    GET_CURRENT_KEY_SERVER,
    GET_CURRENT_KEY_SERVERS,
    GET_CURRENT_KEY_SERVER_PUBLIC,
    GET_CURRENT_KEY_SERVER_ADDRESS,
)
#: ... and the part a migrating set adds.
KEY_SERVER_SET_MIGRATION: Final = (
    GET_MIGRATION_KEY_SERVERS,
    GET_MIGRATION_KEY_SERVER_PUBLIC,
    GET_MIGRATION_KEY_SERVER_ADDRESS,
    GET_NEW_KEY_SERVERS,
    GET_NEW_KEY_SERVER_PUBLIC,
    GET_NEW_KEY_SERVER_ADDRESS,
    GET_MIGRATION_ID,
    GET_MIGRATION_MASTER,
    IS_MIGRATION_CONFIRMED,
    START_MIGRATION,
    CONFIRM_MIGRATION,
)
#: Event signatures of the set contracts (none indexed; Parity does not read them).
KEY_SERVER_SET_EVENTS: Final = (
    "KeyServerAdded(address)",
    "KeyServerRemoved(address)",
    "MigrationStarted()",
    "MigrationCompleted()",
)
