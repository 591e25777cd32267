"""Every session kind of the key server: which request starts which master, which message
starts which slave. The composition root hands these to NodeCore (with the node set change's
factories, which need the node's settings: sessions/admin/node_set_change.admin_tables).

Decryption and signing requests start through sessions/jobs/delegation.py, which runs their
own sessions and negotiates or delegates when the master cannot serve them itself."""

from __future__ import annotations

from typing import Any

from secretstore.sessions import (
    decryption,
    encryption,
    generation,
    key_version,
    retrieval,
    signing_ecdsa,
    signing_presign,
    signing_schnorr,
)
from secretstore.sessions.core import MasterFactory, SlaveFactory
from secretstore.sessions.jobs import delegation

_MODULES = (
    generation,
    encryption,
    key_version,
    retrieval,
    decryption,
    signing_schnorr,
    signing_ecdsa,
    signing_presign,
)


def _merge(tables: list[dict[type, Any]]) -> dict[type, Any]:
    merged: dict[type, Any] = {}
    for table in tables:
        for kind, factory in table.items():
            if kind in merged and merged[kind] is not factory:
                raise RuntimeError(f"{kind.__name__} is claimed by two sessions")
            merged[kind] = factory
    return merged


MASTERS: dict[type, MasterFactory] = {
    **_merge([m.MASTERS for m in _MODULES]),
    **delegation.MASTERS,  # decryption and signing masters, able to delegate
}
SLAVES: dict[type, SlaveFactory] = _merge([*(m.SLAVES for m in _MODULES), delegation.SLAVES])
