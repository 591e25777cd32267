"""Where a contract is: at the configured address, or the registry's entry for it.

Parity's rule: an entry is looked up with `getAddress(keccak256(name), "A")` at the *confirmed*
block (latest − confirmations), again on every block, so a new entry is seen `confirmations`
blocks after it was mined and a changed one replaces the old. A zero address, an empty answer
or a revert all mean "not set".
"""

from __future__ import annotations

import logging

from secretstore.chain.abi import GET_ADDRESS, REGISTRY_KEY, registry_name
from secretstore.chain.client import ChainClient, ContractCallFailed
from secretstore.config.model import ContractAtAddress, ContractFromRegistry, ContractSource
from secretstore.encoding import to_hex
from secretstore.types import Address, BlockRef

log = logging.getLogger(__name__)

ZERO_ADDRESS = Address(bytes(20))


def confirmed_block(head: BlockRef, confirmations: int) -> int:
    """The number of the block `confirmations` below `head` (never below 0)."""
    return max(0, head.number - confirmations)


class ContractAddress:
    """The address of one contract, kept up to date block by block."""

    def __init__(
        self,
        client: ChainClient,
        source: ContractAtAddress | ContractFromRegistry,
        entry: str,
        *,
        registry: Address | None,
        confirmations: int,
    ) -> None:
        """`entry`: the registry name (e.g. "secretstore_acl_checker"); `registry` is needed
        when `source` is the registry."""
        if isinstance(source, ContractFromRegistry) and registry is None:
            raise ValueError(f"{entry} is read from the registry, but no registry is configured")
        self._client = client
        self._source: ContractSource = source
        self._registry = registry
        self._entry = entry
        self._name = registry_name(entry)
        self._confirmations = confirmations
        #: the contract's address; None while the registry has no entry (or was not read yet)
        self.address: Address | None = (
            source.address if isinstance(source, ContractAtAddress) else None
        )

    @property
    def entry(self) -> str:
        return self._entry

    def describe(self) -> str:
        if isinstance(self._source, ContractAtAddress):
            return f"{self._entry} at {to_hex(self._source.address)}"
        assert self._registry is not None
        return f"{self._entry} from the registry at {to_hex(self._registry)}"

    async def refresh(self, head: BlockRef) -> Address | None:
        """Re-read the registry entry at the confirmed block of `head` (nothing to do for a
        configured address). ChainUnavailable when the chain does not answer (the last
        address is kept)."""
        if self._registry is None:
            return self.address
        try:
            found: Address = await self._client.call(
                self._registry,
                GET_ADDRESS,
                self._name,
                REGISTRY_KEY,
                block=confirmed_block(head, self._confirmations),
            )
        except ContractCallFailed:
            found = ZERO_ADDRESS
        address = None if found == ZERO_ADDRESS else found
        if address != self.address:
            if address is None:
                log.warning("registry entry %s is not set any more", self._entry)
            else:
                log.info("registry entry %s: contract at %s", self._entry, to_hex(address))
            self.address = address
        return address
