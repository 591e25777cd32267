"""Start-up rules across options: what a config must hold together before a node runs.

Each rule raises ConfigError naming the option to change and how:
- a contract option other than "none" needs `chain_rpc_url` (an http(s) JSON-RPC endpoint),
  and "registry" needs `registry_address` (Parity read the registry from the chain spec);
- Parity's rule: an administrator key (`admin_public`) with auto-migration enabled is refused
  ("secret store administrator public key is specified with auto-migration enabled"); a manual
  node set change needs `disable_auto_migrate = true`.
"""

from __future__ import annotations

from secretstore.config.model import ContractFromRegistry, NodeConfig
from secretstore.errors import ConfigError


def check_startup(config: NodeConfig) -> None:
    """Raise ConfigError for the first rule `config` breaks (see the module docstring)."""
    store = config.secretstore
    contracts = store.contract_sources()
    in_use = [key for key, source in contracts.items() if source is not None]
    if in_use and store.chain_rpc_url is None:
        raise ConfigError(
            "secretstore.chain_rpc_url",
            f"{' and '.join(in_use)} need an Ethereum JSON-RPC endpoint "
            '(e.g. chain_rpc_url = "http://127.0.0.1:8545"); to run without a chain, set '
            + ", ".join(f'{key} = "none"' for key in in_use),
        )
    if in_use and store.chain_rpc_url is not None and not store.chain_rpc_url.startswith("http"):
        raise ConfigError(
            "secretstore.chain_rpc_url", "only http:// and https:// endpoints are supported"
        )
    from_registry = [key for key, source in contracts.items() if source == ContractFromRegistry()]
    if from_registry and store.registry_address is None:
        raise ConfigError(
            "secretstore.registry_address",
            f'{" and ".join(from_registry)} = "registry" need the registry contract\'s address '
            "(registry_address = <20-byte hex>), or give the contract's own address instead",
        )
    if store.admin_public is not None and not store.disable_auto_migrate:
        raise ConfigError(
            "secretstore.admin_public",
            "the administrator public key is given with auto-migration enabled (as Parity, "
            "this is refused): set disable_auto_migrate = true to change the node set by hand",
        )
