"""Who may change the node set: the administrator key a node checks, and the signature check.

What is signed (Parity's, unchanged): the administrator's recoverable ECDSA signature, without
any message prefix, of `servers_set_hash(set)` = keccak256 of the 64-byte node ids in
ascending byte order, once for the old set and once for the new set.

Which key must have signed comes from an `AdminAuthority`, asked by every node for every
change it is asked to join: `ConfiguredAdmin` answers with `[secretstore] admin_public` (and
refuses migrations); with auto-migration, `chain.migration_session.MigrationAdmin` answers, for
a migration whose id, master and node set are the contract's, with the migration master's node
key (the master signs the migration set as both the old and the new set), and refuses every
other change.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

from secretstore.crypto.curve import Point
from secretstore.crypto.keys import recover_public, servers_set_hash
from secretstore.errors import ConsensusUnreachable, CryptoError
from secretstore.types import Hash256, NodeId


class AdminAuthority(Protocol):
    """The key whose signatures authorise a change, as this node sees it."""

    def admin_key(
        self,
        master: NodeId,
        migration_id: Hash256 | None,
        new_set: frozenset[NodeId],
    ) -> Point | None:
        """The key that must have signed the change `master` started; None (or AccessDenied
        naming the reason) when this node accepts no change of this kind (no administrator
        configured, or a migration the node set contract does not know): the change is
        refused with AccessDenied."""
        ...


@dataclass(frozen=True, slots=True)
class ConfiguredAdmin:
    """Manual changes signed by `[secretstore] admin_public`; no migrations."""

    public: Point | None

    def admin_key(
        self,
        master: NodeId,
        migration_id: Hash256 | None,
        new_set: frozenset[NodeId],
    ) -> Point | None:
        if migration_id is not None:
            return None
        return self.public


def signer_of(signature: bytes, nodes: Iterable[NodeId]) -> Point | None:
    """The key that signed the servers set hash of `nodes`, or None when `signature` is not a
    usable recoverable signature."""
    try:
        return recover_public(signature, servers_set_hash(nodes))
    except CryptoError:
        return None


def check_admin_signatures(
    admin: Point,
    old_set: Iterable[NodeId],
    new_set: Iterable[NodeId],
    old_signature: bytes,
    new_signature: bytes,
) -> None:
    """ConsensusUnreachable (Parity's answer, HTTP 403) unless both signatures recover to
    `admin` over their set's hash."""
    if signer_of(old_signature, old_set) != admin:
        raise ConsensusUnreachable(
            "the old set signature is not the administrator's signature of the old node set "
            "(every node this one is connected to, and itself)"
        )
    if signer_of(new_signature, new_set) != admin:
        raise ConsensusUnreachable(
            "the new set signature is not the administrator's signature of the new node set"
        )
