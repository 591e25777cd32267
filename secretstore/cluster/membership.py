"""The node set this node works with now, and the one place that changes it at run time.

Two parts, usually equal: the *cluster* (the key servers sessions count: generation deals a
share to each, slaves check a master's proposal against it) and the *connections* (whom the
mesh dials and accepts). From the config they are fixed; from a key server set contract they
follow the chain: the cluster is the contract's current set, the connections the set the
contract (or a running migration) says to connect to, none when this node is isolated.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Protocol

from secretstore.logs import short_node
from secretstore.sessions.core import NodeCore
from secretstore.types import NodeId

log = logging.getLogger(__name__)

HostPort = tuple[str, int]


class Mesh(Protocol):
    """The part of the mesh transport the membership drives."""

    def update_nodes(self, nodes: Mapping[NodeId, HostPort]) -> None: ...


class Membership:
    """The cluster and connection sets of one node (see the module docstring)."""

    def __init__(
        self, self_id: NodeId, core: NodeCore, mesh: Mesh, nodes: Mapping[NodeId, HostPort]
    ) -> None:
        self._self_id = self_id
        self._core = core
        self._mesh = mesh
        self._cluster: dict[NodeId, HostPort] = dict(nodes)
        self._connections: dict[NodeId, HostPort] = dict(nodes)

    @property
    def cluster(self) -> Mapping[NodeId, HostPort]:
        """The key servers of the cluster (this node among them unless it is isolated)."""
        return dict(self._cluster)

    @property
    def size(self) -> int:
        return len(self._cluster)

    @property
    def connections(self) -> Mapping[NodeId, HostPort]:
        """The nodes the mesh keeps links with (this node itself left out by the mesh)."""
        return dict(self._connections)

    @property
    def peers(self) -> int:
        """How many other nodes the mesh should be connected to."""
        return len([node for node in self._connections if node != self._self_id])

    @property
    def isolated(self) -> bool:
        return self._self_id not in self._cluster

    def update(
        self, cluster: Mapping[NodeId, HostPort], connections: Mapping[NodeId, HostPort]
    ) -> bool:
        """Apply a new cluster and connection set (no-op when both are unchanged); True when
        anything changed."""
        cluster, connections = dict(cluster), dict(connections)
        if cluster == self._cluster and connections == self._connections:
            return False
        was_isolated = self.isolated
        if cluster.keys() != self._cluster.keys():
            log.info(
                "key server set: %d nodes (%s)",
                len(cluster),
                ", ".join(short_node(node) for node in sorted(cluster)) or "none",
            )
            self._core.set_cluster_nodes(frozenset(cluster))
        self._cluster = cluster
        if connections != self._connections:
            self._connections = connections
            self._mesh.update_nodes(connections)
        if self.isolated and not was_isolated:
            log.warning("this node is not in the key server set: isolated, holding no connections")
        elif was_isolated and not self.isolated:
            log.info("this node is in the key server set")
        return True
