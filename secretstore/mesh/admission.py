"""Which inbound mesh connections may start a handshake: the admission policy of the listener.

Pure: the transport asks `admit(address)` for every accepted TCP connection before it reads a
byte, and calls `release(address)` when that connection's handshake has ended (well or not).
A refused connection is closed at once. The rules, checked in this order:

1. Per source address: at most `max_pending_per_address` handshakes pending from one address,
   times the number of configured nodes at that address (several nodes of one host, e.g. a
   local cluster on 127.0.0.1, each get their own allowance).
2. In total: at most `max_pending` handshakes pending, of which the last
   `reserved_for_nodes` are kept for addresses of configured nodes: a connection from any
   other address is refused once `max_pending - reserved_for_nodes` are pending.

So a stranger holds at most `max_pending_per_address` slots per address it controls, many
addresses together at most the unreserved part, and a configured node connecting from its
configured address always finds a free slot unless other nodes' addresses fill the reserve.

Refusals are reported once per address and burst: the first refusal of an address says so
(`Refuse.first_in_burst`); the burst ends when that address is admitted again (the `Admit`
then tells how many were refused meanwhile) or when no handshake is pending at all.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

#: At most this many addresses are remembered as refused (a flood from many addresses cannot
#: grow the table; a forgotten one is reported again).
MAX_TRACKED_REFUSALS: Final = 1024


@dataclass(frozen=True, slots=True)
class AdmissionLimits:
    """How many inbound handshakes may be pending (see the module docstring)."""

    max_pending: int = 64
    max_pending_per_address: int = 4
    reserved_for_nodes: int = 16

    def __post_init__(self) -> None:
        if self.max_pending < 1:
            raise ValueError("max_pending must be at least 1")
        if not 1 <= self.max_pending_per_address <= self.max_pending:
            raise ValueError("max_pending_per_address must be 1..max_pending")
        if not 0 <= self.reserved_for_nodes <= self.max_pending:
            raise ValueError("reserved_for_nodes must be 0..max_pending")

    @property
    def max_pending_for_strangers(self) -> int:
        """The total that addresses of no configured node may fill."""
        return self.max_pending - self.reserved_for_nodes


@dataclass(frozen=True, slots=True)
class Admit:
    """Start the handshake; `refused_before`: refusals of this address in the burst it ends."""

    refused_before: int = 0


@dataclass(frozen=True, slots=True)
class Refuse:
    """Close the connection at once; log `reason` when `first_in_burst`."""

    reason: str
    first_in_burst: bool


def canonical_address(host: str) -> str:
    """One spelling per IP address (IPv4-mapped IPv6 as IPv4); other text unchanged."""
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return host
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return str(ip.ipv4_mapped)
    return str(ip)


class HandshakeAdmission:
    """Counts pending inbound handshakes per source address and applies the limits."""

    def __init__(self, limits: AdmissionLimits, node_addresses: Iterable[str] = ()) -> None:
        self.limits = limits
        self._nodes: dict[str, int] = {}
        self._pending: dict[str, int] = {}
        self._total = 0
        self._refused: dict[str, int] = {}
        self.set_node_addresses(node_addresses)

    # --- queries ---------------------------------------------------------------------------
    @property
    def pending(self) -> int:
        return self._total

    def pending_from(self, address: str) -> int:
        return self._pending.get(canonical_address(address), 0)

    def is_node_address(self, address: str) -> bool:
        return canonical_address(address) in self._nodes

    def allowance(self, address: str) -> int:
        """How many handshakes may be pending from `address`."""
        nodes = self._nodes.get(canonical_address(address), 0)
        return self.limits.max_pending_per_address * max(1, nodes)

    # --- events ----------------------------------------------------------------------------
    def set_node_addresses(self, addresses: Iterable[str]) -> None:
        """The addresses of the configured nodes other than this one, one entry per node (an
        address listed twice holds two nodes)."""
        nodes: dict[str, int] = {}
        for address in addresses:
            key = canonical_address(address)
            nodes[key] = nodes.get(key, 0) + 1
        self._nodes = nodes

    def admit(self, address: str) -> Admit | Refuse:
        """May a new connection from `address` start its handshake? Admit counts it pending."""
        key = canonical_address(address)
        reason = self._refusal(key)
        if reason is not None:
            return self._refuse(key, reason)
        self._pending[key] = self._pending.get(key, 0) + 1
        self._total += 1
        return Admit(self._refused.pop(key, 0))

    def release(self, address: str) -> None:
        """A handshake admitted for `address` has ended."""
        key = canonical_address(address)
        count = self._pending.get(key, 0)
        if count == 0:
            return
        if count == 1:
            del self._pending[key]
        else:
            self._pending[key] = count - 1
        self._total -= 1
        if self._total == 0:
            self._refused.clear()

    # --- internals -------------------------------------------------------------------------
    def _refusal(self, key: str) -> str | None:
        from_here, allowance = self._pending.get(key, 0), self.allowance(key)
        if from_here >= allowance:
            return (
                f"{from_here} handshakes pending from this address (the limit per address is "
                f"{allowance})"
            )
        limits = self.limits
        if key in self._nodes:
            if self._total >= limits.max_pending:
                return f"{self._total} handshakes pending (the limit is {limits.max_pending})"
            return None
        if self._total >= limits.max_pending_for_strangers:
            return (
                f"{self._total} handshakes pending (the limit for addresses of no configured "
                f"node is {limits.max_pending_for_strangers})"
            )
        return None

    def _refuse(self, key: str, reason: str) -> Refuse:
        count = self._refused.get(key)
        if count is not None:
            self._refused[key] = count + 1
            return Refuse(reason, first_in_burst=False)
        if len(self._refused) >= MAX_TRACKED_REFUSALS:
            del self._refused[next(iter(self._refused))]
        self._refused[key] = 1
        return Refuse(reason, first_in_burst=True)
