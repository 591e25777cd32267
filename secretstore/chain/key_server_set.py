"""The key server set contract: reading its current, new and migration sets every block.

Parity's rules (secret-store key_server_set.rs), kept:
- each set is a list of addresses; each address has a 64-byte public key (the node id) and an
  "ip:port" (an IP literal, no host names); an entry that does not parse is skipped with a
  warning, and so is a second server at an address already taken;
- without auto-migration only the current set is read, and the new set is the current one;
- with it, the new and migration sets are read too; a migration exists only when the migration
  set is not empty and its id, its master (an address of the current or migration set) and this
  node's confirmation flag all read;
- a new set whose members differ from the current set's stays hidden (reported as the current
  set) until it has been the same for `delay` blocks (5 in Parity; a reorganisation that drops
  the block it was first seen at starts the count again); an address-only change is not hidden;
- an isolated node is one not in the current set.
Ours: calls go to the block being processed (Parity: "latest"), so one snapshot is one chain
state; and the simple contract (no migration functions) read with auto-migration on is a clear
error in the log, with the current set kept, instead of Parity's silent self-isolation.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from secretstore.chain import abi
from secretstore.chain.abi import Function
from secretstore.chain.client import ChainClient, ContractCallFailed
from secretstore.crypto.curve import Point
from secretstore.crypto.keys import address_of
from secretstore.encoding import to_hex
from secretstore.errors import CryptoError
from secretstore.types import Address, BlockRef, Hash256, NodeId

log = logging.getLogger(__name__)

HostPort = tuple[str, int]
NodeSet = Mapping[NodeId, HostPort]


# --- pure: the snapshot and its rules -------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Migration:
    """A migration running on the chain: its id, the set it moves to, who started it, and
    whether this node has confirmed it."""

    id: Hash256
    nodes: NodeSet
    master: NodeId
    confirmed: bool


@dataclass(frozen=True, slots=True)
class KeyServerSetSnapshot:
    """The sets as one block shows them (`new` is the current set until a change is due)."""

    current: NodeSet = field(default_factory=dict)
    new: NodeSet = field(default_factory=dict)
    migration: Migration | None = None


def migration_required(current: NodeSet, new: NodeSet) -> bool:
    """True when the members differ (an address change alone only needs new connections)."""
    return current.keys() != new.keys()


@dataclass(frozen=True, slots=True)
class _Pending:
    nodes: NodeSet
    since: BlockRef


class NewSetDelay:
    """Hides a changed new set until it has been the same for `delay` blocks."""

    def __init__(self, delay: int) -> None:
        self.delay = delay
        self._pending: _Pending | None = None

    @property
    def pending_since(self) -> BlockRef | None:
        """The block where the new set that is being delayed was first seen."""
        return self._pending.since if self._pending is not None else None

    def apply(
        self, read: KeyServerSetSnapshot, head: BlockRef, since_canonical: bool = True
    ) -> KeyServerSetSnapshot:
        """What to show for `read` at `head`. `since_canonical`: whether `pending_since` is
        still on the chain (False after a reorganisation dropped it: the count restarts)."""
        if read.migration is not None or not migration_required(read.current, read.new):
            self._pending = None
            return read
        if self._pending is None or self._pending.nodes != read.new or not since_canonical:
            self._pending = _Pending(dict(read.new), head)
        if head.number - self._pending.since.number >= self.delay:
            return read
        return KeyServerSetSnapshot(read.current, read.current, None)


def parse_server(public: bytes, endpoint: str) -> tuple[NodeId, HostPort]:
    """A set entry: its node id and (IP, port). ValueError naming what is wrong."""
    if len(public) != 64:
        raise ValueError(f"public key of {len(public)} bytes, expected 64")
    try:
        Point.from_bytes(public)
    except CryptoError:
        raise ValueError("public key is not a point on secp256k1") from None
    host, port = _socket_address(endpoint)
    return NodeId(bytes(public)), (host, port)


def _socket_address(endpoint: str) -> HostPort:
    text = endpoint.strip()
    if text.startswith("["):
        host, bracket, port_text = text[1:].partition("]:")
        if not bracket:
            raise ValueError(f'bad address "{endpoint}": expected ip:port')
    else:
        host, colon, port_text = text.rpartition(":")
        if not colon or ":" in host:
            raise ValueError(f'bad address "{endpoint}": expected ip:port')
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        raise ValueError(f'bad address "{endpoint}": the host must be an IP address') from None
    if not (port_text.isascii() and port_text.isdigit()) or not 0 < int(port_text) < 65536:
        raise ValueError(f'bad address "{endpoint}": bad port')
    return str(ip), int(port_text)


def collect_set(entries: list[tuple[Address, bytes | None, str | None]], kind: str) -> NodeSet:
    """The usable servers of `entries` (address, public, endpoint; None where a read failed),
    in contract order: a bad entry or a second server at one endpoint is skipped and logged."""
    nodes: dict[NodeId, HostPort] = {}
    taken: set[HostPort] = set()
    for address, public, endpoint in entries:
        if public is None or endpoint is None:
            log.warning("%s set: server %s could not be read; skipped", kind, to_hex(address))
            continue
        try:
            node, socket = parse_server(public, endpoint)
        except ValueError as exc:
            log.warning("%s set: server %s skipped: %s", kind, to_hex(address), exc)
            continue
        if address_of(Point.from_bytes(node)) != address:
            log.warning("%s set: server %s has another server's public key", kind, to_hex(address))
            continue
        if socket in taken:
            log.warning("%s set: address %s:%d listed twice; server skipped", kind, *socket)
            continue
        taken.add(socket)
        nodes[node] = socket
    return nodes


# --- reading the contract -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _SetFunctions:
    kind: str
    list: Function
    public: Function
    address: Function


CURRENT = _SetFunctions(
    "current",
    abi.GET_CURRENT_KEY_SERVERS,
    abi.GET_CURRENT_KEY_SERVER_PUBLIC,
    abi.GET_CURRENT_KEY_SERVER_ADDRESS,
)
NEW = _SetFunctions(
    "new", abi.GET_NEW_KEY_SERVERS, abi.GET_NEW_KEY_SERVER_PUBLIC, abi.GET_NEW_KEY_SERVER_ADDRESS
)
MIGRATION = _SetFunctions(
    "migration",
    abi.GET_MIGRATION_KEY_SERVERS,
    abi.GET_MIGRATION_KEY_SERVER_PUBLIC,
    abi.GET_MIGRATION_KEY_SERVER_ADDRESS,
)


class NoMigrationFunctions(Exception):
    """The contract has no migration functions (it is the simple KeyServerSet)."""


class KeyServerSetReader:
    """Reads a snapshot of the set contract at one block."""

    def __init__(self, client: ChainClient, self_id: NodeId, *, auto_migrate: bool) -> None:
        self._client = client
        self._self_id = self_id
        self._self_address = address_of(Point.from_bytes(self_id))
        self.auto_migrate = auto_migrate

    async def read(self, contract: Address, block: BlockRef) -> KeyServerSetSnapshot:
        """The snapshot at `block`. ChainUnavailable when the chain stops answering;
        NoMigrationFunctions when auto-migration is on and the contract has none."""
        current = await self._read_set(contract, CURRENT, block, required=True)
        if not self.auto_migrate:
            return KeyServerSetSnapshot(current, current, None)
        try:
            new_list = await self._client.call(contract, NEW.list, block=block.number)
        except ContractCallFailed:
            raise NoMigrationFunctions(to_hex(contract)) from None
        new = await self._servers(contract, NEW, tuple(new_list), block)
        migration_nodes = await self._read_set(contract, MIGRATION, block, required=False)
        migration = None
        if migration_nodes:
            migration = await self._migration(contract, current, migration_nodes, block)
        return KeyServerSetSnapshot(current, new, migration)

    async def _read_set(
        self, contract: Address, functions: _SetFunctions, block: BlockRef, *, required: bool
    ) -> NodeSet:
        try:
            addresses = await self._client.call(contract, functions.list, block=block.number)
        except ContractCallFailed as exc:
            if required:
                log.warning("%s set: %s", functions.kind, exc)
            return {}
        return await self._servers(contract, functions, tuple(addresses), block)

    async def _servers(
        self,
        contract: Address,
        functions: _SetFunctions,
        addresses: tuple[Address, ...],
        block: BlockRef,
    ) -> NodeSet:
        async def one(address: Address) -> tuple[Address, bytes | None, str | None]:
            public, endpoint = await asyncio.gather(
                self._optional(contract, functions.public, address, block),
                self._optional(contract, functions.address, address, block),
            )
            return address, public, endpoint

        entries = await asyncio.gather(*(one(address) for address in addresses))
        return collect_set(list(entries), functions.kind)

    async def _optional(
        self, contract: Address, function: Function, argument: Any, block: BlockRef
    ) -> Any:
        try:
            return await self._client.call(contract, function, argument, block=block.number)
        except ContractCallFailed:
            return None

    async def _migration(
        self, contract: Address, current: NodeSet, nodes: NodeSet, block: BlockRef
    ) -> Migration | None:
        number = block.number
        try:
            migration_id = await self._client.call(contract, abi.GET_MIGRATION_ID, block=number)
            master_address = await self._client.call(
                contract, abi.GET_MIGRATION_MASTER, block=number
            )
            confirmed = False
            if self._self_id in current or self._self_id in nodes:
                confirmed = await self._client.call(
                    contract, abi.IS_MIGRATION_CONFIRMED, self._self_address, block=number
                )
        except ContractCallFailed as exc:
            log.warning("migration set without a readable migration: %s", exc)
            return None
        master = next(
            (
                node
                for node in (*current, *nodes)
                if address_of(Point.from_bytes(node)) == master_address
            ),
            None,
        )
        if master is None:
            log.warning("migration master %s is not a key server", to_hex(master_address))
            return None
        return Migration(Hash256(bytes(migration_id)), nodes, master, bool(confirmed))
