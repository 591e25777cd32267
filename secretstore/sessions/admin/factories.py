"""How an admin session starts: the master's checks before anything is sent, a slave's checks
of the init (its own administrator key, its own view of the nodes) — the node set change and
the refresh.

A contract-driven migration (the request or the init carries a migration id) is Parity's
auto-migration: its old set is its new set, the contract's migration set, and only that set
takes part (nodes the contract removed are not asked, and nodes the contract adds are not in
the current set yet), so every node of it must be linked, and the nodes' configured view is
not compared; who may run it is the contract's business (the node's AdminAuthority).
"""

from __future__ import annotations

from collections.abc import Iterator

from secretstore.crypto.admin import ALL_KEYS, keys_digest, refresh_signer
from secretstore.crypto.curve import Point
from secretstore.errors import (
    AccessDenied,
    ConsensusUnreachable,
    InvalidRequest,
    NodeDisconnected,
    ProtocolViolation,
)
from secretstore.sessions.admin.authority import AdminAuthority, check_admin_signatures
from secretstore.sessions.admin.change_master import NodeSetChangeMaster
from secretstore.sessions.admin.change_slave import NodeSetChangeSlave
from secretstore.sessions.admin.node_set_change import AdminSettings, ChangeNodeSet
from secretstore.sessions.admin.plan import inventory_messages, inventory_pages
from secretstore.sessions.admin.refresh import MAX_GRANT_LIFETIME, RefreshKeys, RefreshSettings
from secretstore.sessions.admin.refresh_roles import RefreshMaster, RefreshSlave
from secretstore.sessions.base import Deadline, Effect, Send, Session, SessionContext, short
from secretstore.sessions.core import MasterFactory, SlaveFactory
from secretstore.sessions.signing_common import names
from secretstore.storage.model import KeyShare
from secretstore.types import Hash256, NodeId, ServerKeyId, SessionId
from secretstore.wire.admin import InventoryEntry, NodeSetChangeInit
from secretstore.wire.refresh import RefreshGrant, RefreshInit, RefreshScope


def _admin_key(
    authority: AdminAuthority,
    master: NodeId,
    migration_id: Hash256 | None,
    new_set: frozenset[NodeId],
    self_id: NodeId,
) -> Point:
    key = authority.admin_key(master, migration_id, new_set)
    if key is None:
        if migration_id is not None:
            raise AccessDenied(
                f"node {short(self_id)} takes part in no migration of node {short(master)}: it "
                "does not follow a key server set contract with auto-migration"
            )
        raise AccessDenied(
            f"node {short(self_id)} accepts no administrator for a node set change "
            "(admin_public is not set)"
        )
    return key


def _slave_view(
    ctx: SessionContext,
    connected: frozenset[NodeId],
    nodes: frozenset[NodeId],
    *,
    configured: bool = True,
) -> frozenset[NodeId]:
    """The node set a slave sees, to compare with the session's `nodes`: the configured nodes
    it is `connected` to, and itself (`configured` False: `nodes` itself, the configuration
    aside). NodeDisconnected unless it is connected to every node of `nodes` and (`configured`)
    every configured node."""
    self_id = ctx.self_id
    connected = connected | {self_id}
    if configured:
        unreachable = (ctx.cluster_nodes - connected) | (nodes - connected)
        view = ctx.cluster_nodes & connected | {self_id}
    else:
        unreachable = nodes - connected
        view = nodes
    if unreachable:
        raise NodeDisconnected(
            f"node {short(self_id)} is not connected to {names(sorted(unreachable))}"
        )
    return view


def admin_tables(
    settings: AdminSettings,
) -> tuple[dict[type, MasterFactory], dict[type, SlaveFactory]]:
    """The master and slave factories of the node set change on one node."""

    def start(
        ctx: SessionContext,
        session_id: SessionId,
        request: ChangeNodeSet,
        share: KeyShare | None,
        connected: frozenset[NodeId],
    ) -> tuple[Session, list[Effect]]:
        self_id = ctx.self_id
        admin = request.admin_public
        if admin is None:
            admin = _admin_key(
                settings.authority, self_id, request.migration_id, request.new_set, self_id
            )
        new_set = frozenset(request.new_set)
        if not new_set:
            raise InvalidRequest(
                "the new node set is empty: a change must leave at least one node holding the keys"
            )
        linked = frozenset(connected) | {self_id}
        if request.migration_id is not None:
            if self_id not in new_set:
                raise InvalidRequest("the master of a migration must be in its node set")
            old_set = new_set
            missing = new_set - linked
            what = "nodes of the migration set"
        else:
            old_set = linked
            outside = new_set - old_set
            if outside:
                raise InvalidRequest(
                    f"nodes of the new set are not connected to this node: {names(sorted(outside))}"
                )
            missing = ctx.cluster_nodes - old_set
            what = "configured nodes"
        if missing:
            raise NodeDisconnected(f"{what} are not connected: {names(sorted(missing))}")
        check_admin_signatures(
            admin, old_set, new_set, request.old_signature, request.new_signature
        )
        init = NodeSetChangeInit(
            session_id,
            request.migration_id,
            tuple(sorted(old_set)),
            tuple(sorted(new_set)),
            request.old_signature,
            request.new_signature,
        )
        session = NodeSetChangeMaster(ctx, session_id, settings, init)
        return session, session.start()

    def join(
        ctx: SessionContext, sender: NodeId, message: NodeSetChangeInit, share: KeyShare | None
    ) -> tuple[Session, list[Effect]]:
        self_id = ctx.self_id
        old_set = frozenset(message.old_set)
        new_set = frozenset(message.new_set)
        if len(old_set) != len(message.old_set) or len(new_set) != len(message.new_set):
            raise ProtocolViolation(short(sender), "sent a node set with a node twice")
        if not new_set or not new_set <= old_set or {self_id, sender} - old_set:
            raise ProtocolViolation(short(sender), "sent node sets that do not fit together")
        if message.migration_id is not None and old_set != new_set:
            raise ProtocolViolation(short(sender), "sent a migration whose old and new sets differ")
        admin = _admin_key(settings.authority, sender, message.migration_id, new_set, self_id)
        check_admin_signatures(
            admin, old_set, new_set, message.old_signature, message.new_signature
        )
        configured = message.migration_id is None  # a migration's set is the contract's
        view = _slave_view(ctx, settings.connected(), old_set, configured=configured)
        if view != old_set:
            raise ConsensusUnreachable(
                f"node {short(self_id)} sees another node set: {len(view)} nodes, "
                f"the change's old set has {len(old_set)}"
            )
        session = NodeSetChangeSlave(ctx, message.session_id, sender, settings, message)
        effects: list[Effect] = [
            session._notice(session._summary()),
            Deadline(message.session_id, settings.drain_timeout),
        ]
        return session, effects

    return {ChangeNodeSet: start}, {NodeSetChangeInit: join}


# --- the refresh -------------------------------------------------------------------------------


def check_refresh_grant(
    settings: RefreshSettings,
    *,
    master: NodeId,
    self_id: NodeId,
    cluster: frozenset[NodeId],
    scope: RefreshScope,
    grant: RefreshGrant | None,
) -> None:
    """AccessDenied unless this node accepts the refresh: a grant signed by its administrator
    over this cluster and scope and not expired (nor valid for more than a day), or no grant
    while its own schedule is on."""
    if grant is None:
        if not settings.scheduled:
            raise AccessDenied(
                f"node {short(self_id)}: a refresh without the administrator's signature runs "
                "only where the refresh schedule is on (refresh_interval)"
            )
        return
    admin = settings.authority.admin_key(master, None, cluster)
    if admin is None:
        raise AccessDenied(
            f"node {short(self_id)} accepts no administrator for a refresh (admin_public is not "
            "set)"
        )
    now = settings.clock()
    if grant.expires < now:
        raise AccessDenied(f"the refresh grant expired {int(now - grant.expires)} s ago")
    if grant.expires > now + MAX_GRANT_LIFETIME:
        raise AccessDenied(
            f"a refresh grant may be valid for at most {MAX_GRANT_LIFETIME} s; this one expires "
            f"in {int(grant.expires - now)} s"
        )
    wanted = keys_digest(scope.keys) if scope.keys else ALL_KEYS
    if grant.keys != wanted:
        raise AccessDenied("the refresh grant is for other keys")
    if refresh_signer(grant.signature, cluster, grant.expires, grant.keys) != admin:
        raise AccessDenied(
            "the refresh grant is not the administrator's signature over this cluster "
            "(every node the master is connected to, and itself), its expiry and its keys"
        )


def refresh_tables(
    settings: RefreshSettings,
) -> tuple[dict[type, MasterFactory], dict[type, SlaveFactory]]:
    """The master and slave factories of the refresh on one node."""

    def start(
        ctx: SessionContext,
        session_id: SessionId,
        request: RefreshKeys,
        share: KeyShare | None,
        connected: frozenset[NodeId],
    ) -> tuple[Session, list[Effect]]:
        self_id = ctx.self_id
        problem = request.scope.problem()
        if problem is not None:
            raise InvalidRequest(problem)
        cluster = frozenset(connected) | {self_id}
        missing = ctx.cluster_nodes - cluster
        if missing:
            raise NodeDisconnected(f"configured nodes are not connected: {names(sorted(missing))}")
        check_refresh_grant(
            settings,
            master=self_id,
            self_id=self_id,
            cluster=cluster,
            scope=request.scope,
            grant=request.grant,
        )
        init = RefreshInit(session_id, tuple(sorted(cluster)), request.scope, request.grant)
        pages = refresh_inventory(settings, request.scope)
        entries = tuple(entry for page in pages for entry in page)
        session = RefreshMaster(ctx, session_id, settings, init, entries)
        return session, session.start()

    def join(
        ctx: SessionContext, sender: NodeId, message: RefreshInit, share: KeyShare | None
    ) -> tuple[Session, list[Effect]]:
        self_id = ctx.self_id
        cluster = frozenset(message.cluster)
        if len(cluster) != len(message.cluster) or {self_id, sender} - cluster:
            raise ProtocolViolation(short(sender), "sent a cluster that does not fit")
        problem = message.scope.problem()
        if problem is not None:
            raise ProtocolViolation(
                short(sender), f"sent a refresh scope that does not fit: {problem}"
            )
        check_refresh_grant(
            settings,
            master=sender,
            self_id=self_id,
            cluster=cluster,
            scope=message.scope,
            grant=message.grant,
        )
        view = _slave_view(ctx, settings.connected(), cluster)
        if view != cluster:
            raise ConsensusUnreachable(
                f"node {short(self_id)} sees another cluster: {len(view)} nodes, the refresh's "
                f"has {len(cluster)}"
            )
        session = RefreshSlave(ctx, message.session_id, sender, settings, message)
        pages = inventory_messages(message.session_id, refresh_inventory(settings, message.scope))
        effects: list[Effect] = [session._touch()]
        effects += [Send(sender, page) for page in pages]
        return session, effects

    return {RefreshKeys: start}, {RefreshInit: join}


def refresh_inventory(
    settings: RefreshSettings, scope: RefreshScope
) -> list[tuple[InventoryEntry, ...]]:
    """This node's inventory of a refresh's scope: the listed keys it holds, or its first
    `limit` keys above `after`."""
    if scope.keys:
        return inventory_pages(settings.keys, scope.keys)
    after = scope.after

    def batch() -> Iterator[ServerKeyId]:
        count = 0
        for key_id in settings.keys.ids():
            if after is not None and key_id <= after:
                continue
            yield key_id
            count += 1
            if count == scope.limit:
                return

    return inventory_pages(settings.keys, batch())
