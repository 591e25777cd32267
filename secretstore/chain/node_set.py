"""The key server set from the contract, applied to the node on every block.

Per block: resolve the contract (registry), read its snapshot at that block, hide a changed
new set for the migration delay, then either (no auto-migration) make the current set the
cluster and connect to it, or (auto-migration) let `AutoMigration` say whom to connect to and
what to do, and carry its decisions out: the migration transactions here, the node set change
through the `NodeSetChange` seam. An isolated node (not in the current set) holds no
connections. While the chain cannot be trusted nothing changes: the last set is kept.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Final, Protocol

from secretstore.chain.abi import CONFIRM_MIGRATION, START_MIGRATION
from secretstore.chain.client import ChainClient, ContractCallFailed
from secretstore.chain.key_server_set import (
    KeyServerSetReader,
    KeyServerSetSnapshot,
    NewSetDelay,
    NoMigrationFunctions,
)
from secretstore.chain.migration import (
    NO_SESSION,
    AutoMigration,
    ConfirmMigration,
    Decision,
    DropSession,
    LeaveSet,
    RunChange,
    SessionState,
    StartMigration,
)
from secretstore.chain.registry import ContractAddress
from secretstore.cluster.membership import Membership
from secretstore.encoding import to_hex
from secretstore.errors import SecretStoreError
from secretstore.types import BlockRef, Hash256, NodeId

log = logging.getLogger(__name__)

#: The gas a confirmMigration may need: the last one copies the migration set into the
#: current set (our contract needs about 180k + 76k per server of the migration set), while
#: every node estimates its own before the others' confirmations are mined, as a cheap one
#: (60k to 100k). A third more than what our contract needs; unused gas is not paid.
CONFIRM_GAS_BASE: Final = 250_000
CONFIRM_GAS_PER_SERVER: Final = 100_000


def confirm_gas(servers: int) -> int:
    """The gas limit of a confirmMigration for a migration set of `servers` nodes."""
    return CONFIRM_GAS_BASE + CONFIRM_GAS_PER_SERVER * servers


class NodeSetChange(Protocol):
    """The node set change session, as auto-migration drives it.

    `state()`: this node's servers-set-change session (none, running, finished or failed, with
    its migration id). `start(migration_id, nodes)`: run the session as its master with that
    migration id, old set = new set = `nodes`, both signed with this node's key (Parity's
    auto-migration); it returns once started, and `state()` reports the outcome. `drop()`:
    forget a finished or failed session. `leave(migration_id, master)`: that migration, which
    left this node out, has completed: erase this node's keys. `available`: False while this node
    has no such session; auto-migration then starts no migration."""

    @property
    def available(self) -> bool: ...

    def state(self) -> SessionState: ...

    async def start(self, migration_id: Hash256, nodes: frozenset[NodeId]) -> None: ...

    def drop(self) -> None: ...

    async def leave(self, migration_id: Hash256, master: NodeId) -> None: ...


class NoNodeSetChange:
    """This version has no node set change session: nothing to run, nothing running."""

    available = False

    def state(self) -> SessionState:
        return NO_SESSION

    async def start(self, migration_id: Hash256, nodes: frozenset[NodeId]) -> None:
        raise SecretStoreError("the node set change session is not available in this version")

    def drop(self) -> None:
        pass

    async def leave(self, migration_id: Hash256, master: NodeId) -> None:
        pass


class ContractNodeSet:
    """The block listener that keeps the node's membership in line with the set contract."""

    def __init__(
        self,
        client: ChainClient,
        contract: ContractAddress,
        membership: Membership,
        self_id: NodeId,
        *,
        delay: int,
        migration: AutoMigration | None,
        change: NodeSetChange,
        connected: Callable[[], frozenset[NodeId]],
    ) -> None:
        self._client = client
        self._contract = contract
        self._membership = membership
        self._self_id = self_id
        self._reader = KeyServerSetReader(client, self_id, auto_migrate=migration is not None)
        self._delay = NewSetDelay(delay)
        self._migration = migration
        self._change = change
        self._connected = connected
        self._warned: set[str] = set()
        #: the snapshot as last applied (the new set hidden while it waits)
        self.snapshot = KeyServerSetSnapshot()

    def admin_for(self, migration_id: Hash256 | None, nodes: frozenset[NodeId]) -> NodeId | None:
        """The node that may run a node set change with `migration_id` to `nodes`: the
        contract's migration master when both are its migration's (`AutoMigration.admin_for`
        on the last snapshot); None without auto-migration or for any other change."""
        if self._migration is None:
            return None
        return self._migration.admin_for(self.snapshot, migration_id, nodes)

    async def on_block(self, head: BlockRef) -> None:
        address = await self._contract.refresh(head)
        if address is None:
            self._warn_once("unset", f"no key server set contract: {self._contract.describe()}")
            self.snapshot = KeyServerSetSnapshot()  # Parity: no contract, empty set
        else:
            self._warned.discard("unset")
            try:
                read = await self._reader.read(address, head)
            except NoMigrationFunctions:
                self._warn_once(
                    "simple",
                    f"the key server set contract at {to_hex(address)} has no migration "
                    "functions (getNewKeyServers reverts): it is the simple KeyServerSet, which "
                    "needs disable_auto_migrate = true; using its current set, no migration",
                )
                self._reader.auto_migrate = False
                read = await self._reader.read(address, head)
            since = self._delay.pending_since
            canonical = since is None or await self._client.block_hash(since.number) == since.hash
            self.snapshot = self._delay.apply(read, head, canonical)
        await self._apply(head)

    async def _apply(self, head: BlockRef) -> None:
        snapshot = self.snapshot
        current = dict(snapshot.current)
        if self._migration is None:
            self._membership.update(current, current if self._self_id in current else {})
            return
        step = self._migration.step(head.number, snapshot, self._change.state(), self._connected())
        connections = step.connections
        self._membership.update(
            current, connections if connections is not None else self._membership.connections
        )
        for decision in step.decisions:
            await self._carry_out(decision, head)

    async def _carry_out(self, decision: Decision, head: BlockRef) -> None:
        address = self._contract.address
        if isinstance(decision, DropSession):
            self._change.drop()
            return
        if not self._change.available:
            self._warn_once(
                "no-change",
                "the key server set contract asks for a migration (its new set differs from "
                "the current one), but this version cannot run the node set change session: "
                "no migration is started; the current set stays",
            )
            return
        if address is None:
            return
        try:
            if isinstance(decision, StartMigration):
                log.info("starting migration 0x%s at block %s", decision.migration_id.hex(), head)
                await self._client.transact(address, START_MIGRATION, decision.migration_id)
            elif isinstance(decision, ConfirmMigration):
                log.info("confirming migration 0x%s", decision.migration_id.hex())
                migration = self.snapshot.migration
                servers = len(migration.nodes) if migration is not None else 0
                await self._client.transact(
                    address,
                    CONFIRM_MIGRATION,
                    decision.migration_id,
                    gas_floor=confirm_gas(max(servers, 1)),
                )
            elif isinstance(decision, LeaveSet):
                log.warning(
                    "migration 0x%s has completed without this node: erasing its keys",
                    decision.migration_id.hex(),
                )
                await self._change.leave(decision.migration_id, decision.master)
            elif isinstance(decision, RunChange):
                log.info(
                    "running the node set change of migration 0x%s (%d nodes)",
                    decision.migration_id.hex(),
                    len(decision.nodes),
                )
                await self._change.start(decision.migration_id, decision.nodes)
        except (ContractCallFailed, SecretStoreError) as exc:
            log.warning("auto-migration: %s failed: %s", type(decision).__name__, exc)

    def _warn_once(self, key: str, text: str) -> None:
        if key not in self._warned:
            self._warned.add(key)
            log.error("%s", text)
