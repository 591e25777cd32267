"""Who starts a contract request's session: the range owner of its key id (Parity's rule).

The current key servers sorted by node id split the 256-bit key id space into N equal ranges,
in that order: with r = ⌊(2²⁵⁶ − 1) / N⌋, the server at index i owns the key ids k (read as
big-endian integers) with (r + 1)·i ≤ k ≤ (r + 1)·i + r (the end saturating at 2²⁵⁶ − 1). The
range owner starts a generation and the personal part of a shadow retrieval; every node
answers the other requests itself. One server owns everything (even a node not in the set, as
Parity); no server, nothing. Pure.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

from secretstore.types import NodeId

_MAX: Final = (1 << 256) - 1


def is_range_owner(servers: Iterable[NodeId], node: NodeId, key_id: bytes) -> bool:
    """Whether `node` owns `key_id` among `servers` (the current key server set)."""
    ordered = sorted(set(servers))
    if not ordered:
        return False
    if len(ordered) == 1:
        return True
    if node not in ordered:
        return False
    index = ordered.index(node)
    interval = _MAX // len(ordered)
    begin = (interval + 1) * index
    end = min(begin + interval, _MAX)
    value = int.from_bytes(key_id, "big")
    return begin <= value <= end


def range_owner(servers: Iterable[NodeId], key_id: bytes) -> NodeId | None:
    """The server that owns `key_id` (None without servers)."""
    ordered = sorted(set(servers))
    for node in ordered:
        if is_range_owner(ordered, node, key_id):
            return node
    return None
