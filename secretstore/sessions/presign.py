"""The ECDSA presigning pool of one node: nonce material made ahead of any request, each piece
used by one signing at most and dropped when it is used.

A *presignature* is what the four nonce generations of one ECDSA attempt leave (the nonce k,
the blinding e, the zero sharings z and z'), with the inversion done: ``w = (k·e)⁻¹`` and
``R = k·G`` are known before any message is (sessions/signing_presign.py makes them). The
master of the presigning session keeps, for its group of 2t+1 holders of one key version,
``w``, ``R``, its own ``e_m`` and ``z'_m``, and every member's share publics ``E_j``, ``Z'_j``
and ``Y_j``; each member keeps its ``e_j``, ``z'_j`` and ``R`` (the nonce share ``k_j`` and the
zero share ``z_j`` are not kept: the inversion used them already).

The rules, which `PresignPool` enforces on its own node:
- *Used once.* A master takes a presignature out of its pool to use it (`take`), a member
  takes its part out when it signs with it (`claim`): neither keeps it afterwards, so no
  presignature serves two messages or two groups (a member cannot be asked twice).
- *Bound.* A part names its master, key, key version and group; a member uses it only for
  that master, that key version and that group (the signing request names the presignature,
  never its group).
- *Bounded.* A master keeps at most `depth` presignatures per key and `max_keys` keys (the
  least recently used key is dropped); a member keeps at most `max_held` parts per master (the
  oldest dropped), so no master can make it hold more.
- *In memory only.* Nothing is written to disk: a restart loses the pool (a signing then
  runs the nonce generations as without one), and nothing can be used again after it.

The pool is plain node state that the signing sessions read and change directly (no I/O), as
they use the node's rng.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Final

from secretstore.crypto.curve import Point, Scalar
from secretstore.errors import InvalidRequest, ProtocolViolation
from secretstore.sessions.base import Send, short
from secretstore.types import NodeId, ServerKeyId, SessionId
from secretstore.wire.signing import NonceKind

#: Presignatures a master keeps per key by default (`ecdsa_presignatures`).
DEFAULT_DEPTH: Final = 4
#: Keys a master keeps presignatures for by default (the least recently used dropped).
DEFAULT_MAX_KEYS: Final = 256
#: Parts a member keeps per master by default.
DEFAULT_MAX_HELD: Final = DEFAULT_DEPTH * DEFAULT_MAX_KEYS


@dataclass(frozen=True, slots=True, repr=False)
class StoredNonce:
    """What is kept of one nonce generation: this node's share (zero when it is not kept),
    the joint public (the nonce's R; None for a zero sharing) and the share publics of the
    group's members that the master checks proofs against (empty on a member)."""

    secret_share: Scalar
    joint_public: Point | None
    publics: tuple[tuple[NodeId, Point], ...] = ()

    def share_public(self, node: NodeId) -> Point:
        for member, public in self.publics:
            if member == node:
                return public
        raise InvalidRequest("no share public of this node was kept")

    def __repr__(self) -> str:
        return f"StoredNonce(publics={len(self.publics)})"


@dataclass(frozen=True, slots=True, repr=False)
class Presignature:
    """One node's part of one presignature (see the module docstring)."""

    presign_id: SessionId
    master: NodeId
    key_id: ServerKeyId
    version: bytes
    nodes: tuple[NodeId, ...]
    nonces: tuple[tuple[NonceKind, StoredNonce], ...]
    #: the master's only: w = (k·e)⁻¹
    inversed_nonce_coeff: Scalar | None = None
    #: the master's only: Y_j of every member, as reported before the generations
    share_publics: tuple[tuple[NodeId, Point], ...] = ()

    def nonce(self, kind: NonceKind) -> StoredNonce:
        for stored_kind, stored in self.nonces:
            if stored_kind is kind:
                return stored
        raise InvalidRequest(f"the presignature keeps no {kind.name} generation")

    def __repr__(self) -> str:
        return f"Presignature({self.presign_id[:4].hex()}, {len(self.nodes)} nodes)"


class PresignedNonces:
    """The nonce generations of a signing attempt that uses a presignature: ended already
    (a signing session uses it where it would use its NonceRuns)."""

    done: Final = True

    def __init__(self, presignature: Presignature, attempt: int) -> None:
        self.presignature = presignature
        self.session_id = presignature.presign_id
        self.attempt = attempt
        self.nodes = presignature.nodes
        #: set by the owner once it acted on the (ended) generations
        self.handled = False

    def result(self, kind: NonceKind) -> StoredNonce:
        return self.presignature.nonce(kind)

    def start(self) -> list[Send]:
        return []

    def waiting_for(self) -> frozenset[NodeId]:
        """Nobody: the generations ended when the presignature was made."""
        return frozenset()

    def on_message(self, sender: NodeId, kind: NonceKind, inner: object) -> list[Send]:
        raise ProtocolViolation(short(sender), "sent a nonce message for a presigned attempt")


class PresignPool:
    """This node's presignatures as a master and its parts of other masters' (see the
    module docstring for the rules)."""

    def __init__(
        self,
        self_id: NodeId,
        *,
        depth: int = DEFAULT_DEPTH,
        max_keys: int = DEFAULT_MAX_KEYS,
        max_held: int = DEFAULT_MAX_HELD,
    ) -> None:
        if depth < 0 or max_keys < 1 or max_held < 0:
            raise ValueError("a pool needs depth >= 0, max_keys >= 1 and max_held >= 0")
        self.self_id = self_id
        self.depth = depth
        self.max_keys = max_keys
        self.max_held = max_held
        self._own: OrderedDict[ServerKeyId, deque[Presignature]] = OrderedDict()
        self._held: dict[NodeId, OrderedDict[SessionId, Presignature]] = {}

    # --- as master --------------------------------------------------------------------------
    def count(self, key_id: ServerKeyId) -> int:
        """How many presignatures of `key_id` this node holds as master."""
        return len(self._own.get(key_id, ()))

    def missing(self, key_id: ServerKeyId) -> int:
        """How many presignatures `key_id` lacks to reach the depth."""
        return max(0, self.depth - self.count(key_id))

    def put(self, presignature: Presignature) -> None:
        """Keep a presignature this node made as master (dropped when the key has `depth`
        already; the least recently used key goes when there are `max_keys`)."""
        if presignature.master != self.self_id or presignature.inversed_nonce_coeff is None:
            raise InvalidRequest("a master's pool keeps the presignatures it made itself")
        kept = self._own.get(presignature.key_id)
        if kept is None:
            kept = self._own[presignature.key_id] = deque()
        self._own.move_to_end(presignature.key_id)
        if len(kept) < self.depth:
            kept.append(presignature)
        while len(self._own) > self.max_keys:
            self._own.popitem(last=False)

    def take(
        self,
        key_id: ServerKeyId,
        version: bytes,
        usable: Callable[[tuple[NodeId, ...]], bool],
    ) -> Presignature | None:
        """Take out (for good) the oldest presignature of `key_id` made for `version` whose
        group is `usable` (e.g. every member connected); presignatures of other versions
        are dropped on the way (a key that changed version never uses them)."""
        kept = self._own.get(key_id)
        if kept is None:
            return None
        self._own.move_to_end(key_id)
        for presignature in [p for p in kept if p.version != version]:
            kept.remove(presignature)
        for presignature in kept:
            if usable(presignature.nodes):
                kept.remove(presignature)
                return presignature
        return None

    def forget(self, key_id: ServerKeyId) -> None:
        """Drop every presignature of `key_id`, own and held (the key was removed here)."""
        self._own.pop(key_id, None)
        for held in self._held.values():
            for presign_id in [i for i, p in held.items() if p.key_id == key_id]:
                del held[presign_id]

    # --- as member --------------------------------------------------------------------------
    def held_from(self, master: NodeId) -> int:
        return len(self._held.get(master, ()))

    def hold(self, presignature: Presignature) -> None:
        """Keep this node's part of another master's presignature (the oldest of that
        master's dropped beyond `max_held`)."""
        master = presignature.master
        if master == self.self_id or presignature.inversed_nonce_coeff is not None:
            raise InvalidRequest("a member holds its part of another master's presignature")
        if self.max_held == 0:
            return
        held = self._held.setdefault(master, OrderedDict())
        held[presignature.presign_id] = presignature
        while len(held) > self.max_held:
            held.popitem(last=False)

    def claim(self, presign_id: SessionId, master: NodeId) -> Presignature | None:
        """Take out (for good) this node's part of `master`'s presignature `presign_id`;
        None when it is not held (used already, dropped, or lost in a restart)."""
        held = self._held.get(master)
        if held is None:
            return None
        presignature = held.pop(presign_id, None)
        if not held:
            del self._held[master]
        return presignature

    # --- both -------------------------------------------------------------------------------
    def keys(self) -> Iterable[ServerKeyId]:
        return list(self._own)

    def sizes(self) -> Mapping[str, int]:
        """How many presignatures this node holds as master and as member (for status)."""
        own = sum(len(kept) for kept in self._own.values())
        held = sum(len(parts) for parts in self._held.values())
        return {"own": own, "held": held, "keys": len(self._own)}
