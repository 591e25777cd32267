"""What GET /health reports: who this node is, its version and uptime, its keys, its peers,
whether it is ready (connected to every other node of the key server set) and, when not, why
(which peers are missing, or that this node is not in the set); the chain's state, a running
node set change or refresh, and the ECDSA presignature pool when there are."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from secretstore.encoding import to_hex
from secretstore.logs import short_node
from secretstore.types import NodeId


@dataclass(frozen=True, slots=True)
class PeerState:
    """One node of the configured set as this node sees it."""

    node_id: NodeId
    #: where this node dials or expects it, "host:port"
    address: str
    connected: bool
    is_self: bool = False

    @property
    def state(self) -> str:
        if self.is_self:
            return "this node"
        return "connected" if self.connected else "not connected"


def plural(count: int, noun: str) -> str:
    """`1 node`, `2 nodes`."""
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


@dataclass(frozen=True, slots=True)
class Health:
    """A node's health at one moment."""

    node_id: NodeId
    version: str
    uptime: float
    #: server keys this node holds a share of (None before the storage is open)
    keys: int | None
    #: every node of the key server set (this one included unless isolated), by node id
    nodes: tuple[PeerState, ...]
    #: the chain's state (trusted, latest block, problem) when a contract is configured
    chain: dict[str, Any] | None = None
    #: True when this node is not in the key server set (it holds no connections)
    isolated: bool = False
    #: the node set change running here (None when none runs)
    node_set_change: dict[str, Any] | None = None
    #: the refresh running here (None when none runs)
    refresh: dict[str, Any] | None = None
    #: this node's ECDSA presignatures: made as master ("own"), parts held for other
    #: masters ("held"), keys with own ones, and whether a refill runs (None: no pool)
    presignatures: dict[str, Any] | None = None

    @property
    def connected(self) -> frozenset[NodeId]:
        return frozenset(p.node_id for p in self.nodes if p.connected and not p.is_self)

    @property
    def missing(self) -> tuple[PeerState, ...]:
        """The other nodes this node is not connected to."""
        return tuple(p for p in self.nodes if not p.connected and not p.is_self)

    @property
    def cluster_size(self) -> int:
        return len(self.nodes)

    @property
    def ready(self) -> bool:
        """True when every other node of the key server set is connected (never while this
        node is isolated: not in the set)."""
        return not self.isolated and not self.missing

    @property
    def reason(self) -> str | None:
        """Why the node is not ready (None when it is)."""
        if self.isolated:
            if not self.nodes:
                return "this node is not in the key server set (none is known yet)"
            return "this node is not in the key server set"
        missing = self.missing
        if not missing:
            return None
        others = self.cluster_size - 1
        names = ", ".join(f"{short_node(p.node_id)} ({p.address})" for p in missing)
        return f"not connected to {len(missing)} of the {plural(others, 'other node')}: {names}"

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "node_id": to_hex(self.node_id),
            "version": self.version,
            "uptime_seconds": round(self.uptime, 3),
            "keys": self.keys,
            "connected": [to_hex(node) for node in sorted(self.connected)],
            "cluster_size": self.cluster_size,
            "ready": self.ready,
            "missing": [{"node_id": to_hex(p.node_id), "address": p.address} for p in self.missing],
            "reason": self.reason,
            "nodes": [
                {
                    "node_id": to_hex(p.node_id),
                    "address": p.address,
                    "state": p.state,
                }
                for p in self.nodes
            ],
        }
        if self.isolated:
            body["isolated"] = True
        if self.chain is not None:
            body["chain"] = self.chain
        if self.node_set_change is not None:
            body["node_set_change"] = self.node_set_change
        if self.refresh is not None:
            body["refresh"] = self.refresh
        if self.presignatures is not None:
            body["presignatures"] = self.presignatures
        return body
