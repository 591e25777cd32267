"""Build a node's chain side from its config: the client, the ACL, the key server set.

`build_chain` returns None for a node with no contract (every contract option "none");
otherwise one `ChainRuntime` whose client polls the chain and runs, per block, the registry
look-ups and the key server set update. The service contracts are attached once the node's
key server exists (chain/services/runtime.py); their listener stops before the client.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from secretstore.chain.abi import ACL_ENTRY, SERVER_SET_ENTRY
from secretstore.chain.acl import ContractAccessPolicy
from secretstore.chain.client import ChainClient
from secretstore.chain.migration import AutoMigration
from secretstore.chain.node_set import ContractNodeSet, NodeSetChange, NoNodeSetChange
from secretstore.chain.registry import ContractAddress
from secretstore.cluster.access import AccessPolicy, AllowAll
from secretstore.cluster.membership import Membership
from secretstore.config.model import SecretStoreConfig
from secretstore.crypto.keys import KeyPair
from secretstore.crypto.rng import Rng
from secretstore.encoding import to_hex
from secretstore.types import NodeId

if TYPE_CHECKING:
    from secretstore.chain.services.listener import ServiceListener

log = logging.getLogger(__name__)


@dataclass
class ChainRuntime:
    """A node's chain: its client, its access policy, and the key server set listener."""

    client: ChainClient
    access: AccessPolicy
    node_set: ContractNodeSet | None
    #: the service contracts' listener, once attached
    services: ServiceListener | None = None

    async def start(self) -> None:
        """Start polling (a chain that does not answer yet is logged, not raised)."""
        await self.client.start()

    async def stop(self) -> None:
        if self.services is not None:
            await self.services.stop()
        await self.client.stop()

    def status(self) -> dict[str, Any]:
        """For /health: whether the chain is trusted, its latest block, what is wrong."""
        head = self.client.head
        return {
            "trusted": self.client.trusted,
            "block": head.number if head is not None else None,
            "problem": self.client.problem,
        }


def build_chain(
    store: SecretStoreConfig,
    key: KeyPair,
    membership: Membership,
    rng: Rng,
    connected: Callable[[], frozenset[NodeId]],
    *,
    change: NodeSetChange | None = None,
) -> ChainRuntime | None:
    """The chain side of a node whose config uses a contract (config.rules checked it)."""
    if not store.uses_chain:
        return None
    assert store.chain_rpc_url is not None
    client = ChainClient(store.chain_rpc_url, key, poll_interval=store.chain_poll_interval)
    log.info(
        "chain %s, account %s (registry %s)",
        store.chain_rpc_url,
        to_hex(key.address),
        to_hex(store.registry_address) if store.registry_address else "none",
    )
    access: AccessPolicy = AllowAll()
    if store.acl_contract is not None:
        acl = ContractAddress(
            client,
            store.acl_contract,
            ACL_ENTRY,
            registry=store.registry_address,
            confirmations=store.chain_confirmations,
        )
        client.add_listener(acl.refresh)
        access = ContractAccessPolicy(client, acl)
    node_set = None
    if store.server_set_contract is not None:
        contract = ContractAddress(
            client,
            store.server_set_contract,
            SERVER_SET_ENTRY,
            registry=store.registry_address,
            confirmations=store.chain_confirmations,
        )
        migration = None
        if not store.disable_auto_migrate:
            migration = AutoMigration(key.node_id, rng, retry_interval=store.chain_retry_interval)
        node_set = ContractNodeSet(
            client,
            contract,
            membership,
            key.node_id,
            delay=store.chain_migration_delay,
            migration=migration,
            change=change or NoNodeSetChange(),
            connected=connected,
        )
        client.add_listener(node_set.on_block)
    return ChainRuntime(client, access, node_set)
