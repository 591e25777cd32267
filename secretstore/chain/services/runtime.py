"""Build a node's service contract side from its config, once its key server exists.

`attach_services` returns None for a node with every `service_contract*` option "none";
otherwise it builds the contracts (each at its address or the registry entry Parity names),
the listener with its cursors in the node's database, the origin checks the cluster driver
asks for contract-originated sessions, and the outcome handler that publishes each
participant's answer, and hooks the listener to the chain client's blocks.
"""

from __future__ import annotations

import logging
from typing import Final

from secretstore.chain.client import ChainClient
from secretstore.chain.registry import ContractAddress
from secretstore.chain.services.abi import SERVICE_ENTRIES, SERVICE_ENTRY, ServiceApi
from secretstore.chain.services.contracts import ServiceCalls, ServiceContract
from secretstore.chain.services.cursor import LevelDbCursors
from secretstore.chain.services.handlers import ServiceHandlers
from secretstore.chain.services.listener import ServiceListener
from secretstore.chain.services.origin import ContractOrigins
from secretstore.cluster.access import AccessPolicy
from secretstore.cluster.driver import ClusterDriver
from secretstore.cluster.membership import Membership
from secretstore.config.model import ContractSource, SecretStoreConfig
from secretstore.keyserver import KeyServer
from secretstore.storage.leveldb import LevelDbKeyStorage
from secretstore.types import Address

log = logging.getLogger(__name__)

#: How far (beyond the confirmations) below a node's latest block a session's named block
#: may be: the time between the master's reading and the participants' own.
ORIGIN_MAX_AGE: Final = 16


def service_sources(
    store: SecretStoreConfig,
) -> list[tuple[str, ContractSource, frozenset[ServiceApi]]]:
    """(registry entry, source, APIs) of every service contract option that is not "none"."""
    options = [
        (SERVICE_ENTRY, store.service_contract, frozenset(ServiceApi)),
        (
            SERVICE_ENTRIES[ServiceApi.SERVER_KEY_GENERATION],
            store.service_contract_srv_gen,
            frozenset({ServiceApi.SERVER_KEY_GENERATION}),
        ),
        (
            SERVICE_ENTRIES[ServiceApi.SERVER_KEY_RETRIEVAL],
            store.service_contract_srv_retr,
            frozenset({ServiceApi.SERVER_KEY_RETRIEVAL}),
        ),
        (
            SERVICE_ENTRIES[ServiceApi.DOCUMENT_KEY_STORE],
            store.service_contract_doc_store,
            frozenset({ServiceApi.DOCUMENT_KEY_STORE}),
        ),
        (
            SERVICE_ENTRIES[ServiceApi.DOCUMENT_KEY_SHADOW_RETRIEVAL],
            store.service_contract_doc_sretr,
            frozenset({ServiceApi.DOCUMENT_KEY_SHADOW_RETRIEVAL}),
        ),
    ]
    return [(entry, source, apis) for entry, source, apis in options if source is not None]


def attach_services(
    store: SecretStoreConfig,
    client: ChainClient,
    *,
    key_server: KeyServer,
    storage: LevelDbKeyStorage,
    access: AccessPolicy,
    driver: ClusterDriver,
    membership: Membership,
) -> ServiceListener | None:
    """The listener of the node's service contracts (None without any), hooked to the chain
    client and the cluster driver."""
    sources = service_sources(store)
    if not sources:
        return None
    contracts = []
    for entry, source, apis in sources:
        assert source is not None
        address = ContractAddress(
            client,
            source,
            entry,
            registry=store.registry_address,
            confirmations=store.chain_confirmations,
        )
        contracts.append(ServiceContract(address, apis))
        log.info("serving %s (%s)", address.describe(), ", ".join(sorted(a.value for a in apis)))
    calls = ServiceCalls(
        client,
        key_servers=lambda: frozenset(membership.cluster),
        remember_blocks=store.chain_retry_interval,
    )

    def served(api: ServiceApi) -> frozenset[Address]:
        return frozenset(
            c.address.address for c in contracts if api in c.apis and c.address.address is not None
        )

    origins = ContractOrigins(
        client, calls, served, max_age=store.chain_confirmations + ORIGIN_MAX_AGE
    )
    core = driver.core
    handlers = ServiceHandlers(
        core.ctx.self_id,
        key_server,
        storage=storage,
        access=access,
        calls=calls,
        origins=origins,
        cluster=lambda: frozenset(membership.cluster),
        is_writing=core.is_writing,
    )
    listener = ServiceListener(
        client,
        contracts,
        calls,
        handlers,
        LevelDbCursors(storage),
        isolated=lambda: membership.isolated,
        confirmations=store.chain_confirmations,
        retry_interval=store.chain_retry_interval,
    )
    client.add_listener(listener.on_block)
    driver.serve_origins(origins, handlers.on_outcome)
    return listener
