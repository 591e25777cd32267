"""Proactive share refresh: every key re-dealt to the nodes that hold it, with fresh id numbers.

Request `RefreshKeys(scope, grant)` on any node (the master); result `RefreshOutcome`. One
session on every node of the cluster (the master and every node it is connected to, which
must be every configured node). Not exclusive: other sessions go on; each key is claimed
(sessions/claims.py) by the refresh on a node while the refresh writes it there, and a key
another session is writing is skipped (`RefreshSkip`).

Per key (the same Wong–Wang–Wing redistribution as a node set change, redistribute.py): its
chosen version (plan.py) must be held by every node it lists; t+1 of them deal to exactly
those nodes, each with a fresh random id number, so the new version has another hash, the
same public, the same holders, and shares on a fresh random polynomial: any number of old
shares together with up to t new ones tell nothing. Each new holder writes the new version
(synced, the old one kept) and sends `KeyMoved` to every node of the refresh. When the batch is
done the master sends `RefreshCommit`; each node then, for each key whose reports it holds
from every node of the new version (their id numbers hash to the version, their share publics
lie on one polynomial through the key, their commitments agree), erases every other version of
the key (a node outside the new version erases its record). A node never erases on the
master's word alone.

| phase (role)             | waits for                             | next                        |
|--------------------------|---------------------------------------|-----------------------------|
| WAITING_FOR_NODES        | every InventoryPage of every node     | plan (keys skipped with a   |
| (master)                 |                                       | reason) → REFRESHING        |
| REFRESHING (master)      | KeyMoved from every holder of each    | all done or skipped →       |
|                          | key in flight, or a RefreshSkip       | RefreshCommit sent, erase → |
|                          |                                       | WAITING_FOR_FINISH          |
| RUNNING (slave)          | KeyDeal (deal), KeySubshare (all t+1: | RefreshCommit: erase, Fini- |
|                          | check, persist, KeyMoved to all),     | shed sent → ENDED           |
|                          | KeyMoved (kept for the commit)        |                             |
| WAITING_FOR_FINISH       | RefreshFinished from every other node | ENDED (RefreshOutcome)      |
| (master)                 |                                       |                             |

Failures end the session on every node without a commit: a lost node (NodeDisconnected), a
bad message or subshare (ProtocolViolation naming the node), no progress for `stall_timeout`
(SessionTimeout). A key cut short keeps its old version everywhere and, on the nodes that
wrote it, the new one: both decrypt and sign (a session picks a version enough nodes hold);
the next refresh re-deals it and erases both. So does one a crash cut short.

This module: the request, the settings, the erase rule, the part master and slaves share
(dealing, receiving, the commit); moving.py: what the refresh shares with the node set change;
refresh_roles.py: each role.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from enum import Enum
from typing import Any

from secretstore.audit.model import Operation
from secretstore.crypto.admin import refresh_signer
from secretstore.crypto.keys import address_of
from secretstore.errors import ProtocolViolation
from secretstore.sessions.admin.authority import AdminAuthority
from secretstore.sessions.admin.moving import KeyMovingSession
from secretstore.sessions.admin.plan import KeyReader
from secretstore.sessions.admin.redistribute import check_new_version
from secretstore.sessions.admin.share_change import KeyFault
from secretstore.sessions.base import (
    Effect,
    Persist,
    Remove,
    SessionContext,
    short,
)
from secretstore.sessions.claims import KeyClaims
from secretstore.storage.model import KeyShare
from secretstore.types import Hash256, NodeId, ServerKeyId, SessionId
from secretstore.wire.admin import NO_KEY, KeyDeal, KeyMoved, KeySubshare
from secretstore.wire.refresh import RefreshGrant, RefreshInit, RefreshScope

#: Keys a refresh redistributes at once.
DEFAULT_KEYS_IN_FLIGHT = 64
#: How long a refresh may go without progress before it fails.
DEFAULT_STALL_TIMEOUT = 60.0
#: The longest an administrator's refresh grant may be valid for (bounds its replay).
MAX_GRANT_LIFETIME = 24 * 3600


@dataclass(frozen=True, slots=True)
class RefreshKeys:
    """Request: refresh the keys of `scope` (one batch); `grant`: the administrator's
    signature, None for a refresh on the cluster's schedule. Result: RefreshOutcome."""

    scope: RefreshScope
    grant: RefreshGrant | None = None

    @property
    def key_id(self) -> ServerKeyId:
        return NO_KEY


@dataclass(frozen=True, slots=True)
class RefreshOutcome:
    """What one batch did: the keys refreshed (old versions erased everywhere), the keys
    skipped with the reason, and where the next batch of a refresh of every key starts
    (None when there is none)."""

    refreshed: tuple[ServerKeyId, ...]
    skipped: tuple[tuple[ServerKeyId, str], ...]
    next_after: ServerKeyId | None


@dataclass(frozen=True, slots=True)
class RefreshSettings:
    """What the refresh needs of its node beyond the session context."""

    #: which key must have signed a refresh grant
    authority: AdminAuthority
    #: every key share of this node
    keys: KeyReader
    #: the node's key claims (the table NodeCore uses)
    claims: KeyClaims
    #: the other nodes this node is connected to now
    connected: Callable[[], frozenset[NodeId]]
    #: the unix time now, in seconds (a grant's expiry)
    clock: Callable[[], float]
    #: this node's schedule is on (`refresh_interval`): it accepts refreshes without a grant
    scheduled: bool = False
    keys_in_flight: int = DEFAULT_KEYS_IN_FLIGHT
    stall_timeout: float = DEFAULT_STALL_TIMEOUT


class RefreshPhase(Enum):
    WAITING_FOR_NODES = "waiting for every node's inventory"
    REFRESHING = "refreshing keys"
    RUNNING = "taking part"
    WAITING_FOR_FINISH = "waiting for every node to erase the old versions"
    ENDED = "ended"


def new_version_complete(
    key_id: ServerKeyId, share: KeyShare, reports: Mapping[NodeId, KeyMoved]
) -> bool:
    """Whether `reports` are every new holder's, and check out (check_new_version)."""
    if not reports:
        return False
    try:
        check_new_version(key_id, share.threshold, share.public, reports)
    except ProtocolViolation:
        return False
    return True


def erase_old_versions(
    self_id: NodeId,
    key_id: ServerKeyId,
    share: KeyShare | None,
    reports: Mapping[NodeId, KeyMoved],
) -> KeyShare | bool | None:
    """The record this node keeps of `key_id` once its refresh is complete: the record with
    only the new version (this node holds it), False to remove the record (the new version
    does not list this node: it holds older versions only), None to leave it (nothing to
    erase, the reports are not the whole new version or do not check out, or this node is a
    new holder whose record lacks the new version)."""
    if share is None or not new_version_complete(key_id, share, reports):
        return None
    new_hash = next(iter(reports.values())).version
    version = share.version(new_hash)
    if version is None:
        return None if self_id in reports else False
    if len(share.versions) == 1:
        return None
    return replace(share, versions=(version,))


class RefreshSession(KeyMovingSession):
    """One node's part in a refresh (see the module docstring); the roles are RefreshMaster
    and RefreshSlave (refresh_roles.py)."""

    OPERATION = Operation.REFRESH
    NAME = "refresh"

    def __init__(
        self,
        ctx: SessionContext,
        session_id: SessionId,
        master: NodeId,
        settings: RefreshSettings,
        init: RefreshInit,
    ) -> None:
        super().__init__(ctx, session_id, master, settings)
        self.settings = settings
        self.init = init
        self.cluster = frozenset(init.cluster)
        self.erased = 0
        self._reports: dict[ServerKeyId, dict[NodeId, KeyMoved]] = {}
        self._skipped_here: set[ServerKeyId] = set()
        #: the records this session wrote (the write of an event is carried out after it)
        self._written: dict[ServerKeyId, KeyShare] = {}
        if init.grant is not None:  # None: a refresh on the cluster's schedule
            signer = refresh_signer(
                init.grant.signature, init.cluster, init.grant.expires, init.grant.keys
            )
            if signer is not None:
                self.admin = address_of(signer)

    # --- roles ----------------------------------------------------------------------------
    @abstractmethod
    def _skip(self, key_id: ServerKeyId, reason: str) -> list[Effect]:
        """This node cannot take part in `key_id`'s refresh (the master is told)."""

    def _moved(self, sender: NodeId, moved: KeyMoved) -> list[Effect]:
        """A new holder's report (also this node's own), kept for the commit."""
        reports = self._reports.setdefault(moved.key_id, {})
        known = reports.setdefault(sender, moved)
        if known != moved:
            raise ProtocolViolation(short(sender), "reported a key refreshed twice, differently")
        return []

    @property
    @abstractmethod
    def phase(self) -> RefreshPhase: ...

    # --- state ----------------------------------------------------------------------------
    @property
    def participants(self) -> frozenset[NodeId]:
        return self.cluster

    def status(self) -> dict[str, Any]:
        """What /health shows of the refresh on this node."""
        return {
            "master": "0x" + self.master.hex(),
            "role": "master" if self.is_master else "slave",
            "phase": self.phase.value,
            "keys_total": self.total,
            "keys_done": self.done,
        }

    def _new_version_nodes(
        self, key_id: ServerKeyId, version: Hash256, share: Callable[[], KeyShare | None]
    ) -> frozenset[NodeId]:
        record = share()
        held = record.version(version) if record is not None else None
        return frozenset(held.nodes) if held is not None else frozenset()

    # --- dealing and receiving ------------------------------------------------------------
    def _claim(self, key_id: ServerKeyId) -> bool:
        return self.settings.claims.claim(key_id, self.session_id)

    def _on_deal(self, request: KeyDeal) -> list[Effect]:
        key_id = request.key_id
        share = self.settings.keys.get(key_id)
        version = share.version(request.version) if share is not None else None
        if version is None or self.ctx.self_id not in version.nodes:
            return self._skip(key_id, "no longer holds the version to deal")
        if {pair.node for pair in request.fresh} != set(version.nodes):
            raise KeyFault(
                key_id, [self.master], "did not give every node of the version a fresh number"
            )
        if not self._claim(key_id):
            return self._skip(key_id, "another session is writing the key")
        subshares = self._keys.deal(self.master, request)
        effects: list[Effect] = [self._touch()]
        effects += self._audit_key(key_id, request.version, frozenset(version.nodes))
        return effects + self._deal_out(subshares)

    def _on_subshare(self, sender: NodeId, message: KeySubshare) -> list[Effect]:
        key_id = message.key_id
        if key_id in self._skipped_here or self._keys.received(key_id):
            return []
        share = self.settings.keys.get(key_id)
        version = share.version(message.version) if share is not None else None
        if version is None:
            return self._skip(
                key_id, f"no longer holds the refreshed version (a subshare from {short(sender)})"
            )
        if not self._claim(key_id):
            return self._skip(key_id, "another session is writing the key")
        new = self._keys.receive(sender, message)
        if new is None:
            return [self._touch()]
        moved = self._keys.moved(key_id, new)
        self._written[key_id] = new.record
        effects: list[Effect] = [self._touch()]
        effects += self._audit_key(key_id, message.version, frozenset(version.nodes))
        effects.append(Persist(self.session_id, key_id, new.record, new.create))
        effects += self.broadcast(moved, self.cluster)
        return effects + self._moved(self.ctx.self_id, moved)

    def _skip_here(self, key_id: ServerKeyId) -> None:
        self._skipped_here.add(key_id)
        self._keys.mark_received(key_id)

    def _record_of(self, key_id: ServerKeyId) -> KeyShare | None:
        """This node's record of `key_id`: the one this session wrote, else the stored one."""
        written = self._written.get(key_id)
        return written if written is not None else self.settings.keys.get(key_id)

    # --- the commit -----------------------------------------------------------------------
    def _waiting_for_reports(self, keys: Iterable[ServerKeyId]) -> set[ServerKeyId]:
        """The refreshed keys this node holds whose new holders' reports it lacks still."""
        waiting: set[ServerKeyId] = set()
        for key_id in keys:
            share = self._record_of(key_id)
            if share is None:
                continue
            if not new_version_complete(key_id, share, self._reports.get(key_id, {})):
                waiting.add(key_id)
        return waiting

    def _erase(self) -> list[Effect]:
        """Erase what the refreshed keys replace, on this node."""
        effects: list[Effect] = []
        for key_id in sorted(self._reports):
            if key_id in self._skipped_here:
                continue
            outcome = erase_old_versions(
                self.ctx.self_id, key_id, self._record_of(key_id), self._reports[key_id]
            )
            if outcome is None:
                continue
            if not self._claim(key_id):
                effects.append(self._notice(f"key 0x{key_id.hex()} is busy: old version kept"))
                continue
            reports = self._reports[key_id]
            new_version = next(iter(reports.values())).version
            effects += self._audit_key(key_id, new_version, frozenset(reports))
            if outcome is False:
                effects.append(Remove(self.session_id, key_id))
            else:
                assert isinstance(outcome, KeyShare)
                effects.append(Persist(self.session_id, key_id, outcome, False))
            self.erased += 1
        return effects
