"""A simulated cluster for node set changes: nodes with their own configured sets, keys dealt
to some of them, the admin session and every client session on every node, a bad node."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from secretstore.audit.receipts import NodeSigner
from secretstore.crypto.curve import Point, Scalar
from secretstore.crypto.document import decrypt_with_shadow_coefficients
from secretstore.crypto.ecies import ecies_decrypt
from secretstore.crypto.keys import KeyPair, servers_set_hash, sign_recoverable
from secretstore.crypto.rng import SeededRng
from secretstore.crypto.schnorr import SchnorrSignature, verify_schnorr_signature
from secretstore.crypto.shamir import evaluate_point_polynomial, reconstruct_secret
from secretstore.sessions.admin.authority import AdminAuthority, ConfiguredAdmin
from secretstore.sessions.admin.delete import DeleteSettings, delete_tables, tombstone_pushes
from secretstore.sessions.admin.factories import admin_tables, refresh_tables
from secretstore.sessions.admin.node_set_change import AdminSettings, ChangeNodeSet
from secretstore.sessions.admin.refresh import RefreshSettings
from secretstore.sessions.base import Send, SessionContext
from secretstore.sessions.claims import KeyClaims
from secretstore.sessions.core import NodeCore
from secretstore.sessions.decryption import RetrieveDocumentKey, ShadowResult
from secretstore.sessions.registry import MASTERS, SLAVES
from secretstore.sessions.signing_schnorr import SignSchnorr
from secretstore.storage.model import KeyShare, Tombstone
from secretstore.types import MessageHash, NodeId, ServerKeyId, SessionId
from tests.sim.dealer import DealtKey, deal_key
from tests.sim.harness import RandomScheduler, SimNetwork, SimNode

ADMIN = KeyPair.generate(SeededRng(b"node set change admin"))
REQUESTER = KeyPair.generate(SeededRng(b"node set change requester"))
MESSAGE = MessageHash(b"\x5a" * 32)
#: the unix time every simulated node reads
NOW = 1_800_000_000.0

#: (sender, receiver, message) -> the message actually sent (None: nothing)
Tamper = Callable[[NodeId, NodeId, object], object | None]


def key_id(index: int) -> ServerKeyId:
    return ServerKeyId(index.to_bytes(4, "big") + b"\x11" * 28)


def sign_set(nodes: Iterable[NodeId], admin: KeyPair = ADMIN) -> bytes:
    return sign_recoverable(admin.secret, servers_set_hash(nodes))


class AdminNetwork(SimNetwork):
    """SimNetwork with the admin session on every node and a tamper hook; a node that keeps a
    tombstone pushes it to the nodes it is connected to, as the driver does."""

    tamper: Tamper | None = None
    world: AdminWorld | None = None

    def buried(self, node: SimNode, tombstone: Tombstone) -> None:
        if self.world is None:
            return
        for peer in sorted(self.world.connected_of(node.node_id)):
            self.world.push_tombstones(node.node_id, peer, [tombstone])

    def _apply(self, node: SimNode, effects: Any) -> None:
        tamper = self.tamper
        if tamper is not None:
            changed = []
            for effect in effects:
                if not isinstance(effect, Send):
                    changed.append(effect)
                elif (message := tamper(node.node_id, effect.to, effect.message)) is not None:
                    changed.append(Send(effect.to, message))
            effects = changed
        super()._apply(node, effects)


@dataclass
class AdminWorld:
    """`net` with `keys` dealt; `configured[node]` is that node's configured set."""

    net: AdminNetwork
    keys: dict[ServerKeyId, DealtKey]
    configured: dict[NodeId, frozenset[NodeId]]

    @property
    def ids(self) -> list[NodeId]:
        return self.net.order

    def connected_of(self, node: NodeId) -> frozenset[NodeId]:
        """The nodes `node` is connected to: up, and configured on both sides."""
        if node in self.net.down:
            return frozenset()
        mine = self.configured[node]
        return frozenset(
            other
            for other in mine
            if other != node and other not in self.net.down and node in self.configured[other]
        )

    def reconnect(self, node: NodeId) -> None:
        """Bring a disconnected node back: first it hears, as from a real mesh, that it lost
        every other node while it was away."""
        lost = self.net.nodes[node]
        for other in self.ids:
            if other != node:
                self.net._apply(lost, lost.core.on_node_disconnected(other))
        self.net.down.discard(node)

    def push_tombstones(
        self, sender: NodeId, to: NodeId, tombstones: Iterable[Tombstone] | None = None
    ) -> None:
        """`sender` pushes `tombstones` (default: all it keeps) to `to`, as on a link-up."""
        node = self.net.nodes[sender]
        chosen = node.storage.tombstones() if tombstones is None else tombstones
        pushes = tombstone_pushes(chosen, node.core.new_session_id)
        self.net._apply(node, [Send(to, push) for push in pushes])

    def link_up(self, node: NodeId) -> None:
        """Bring `node` back (reconnect) and let it and every node it reaches push their
        tombstones to each other, as the driver does when a link comes up."""
        self.reconnect(node)
        for peer in sorted(self.connected_of(node)):
            self.push_tombstones(peer, node)
            self.push_tombstones(node, peer)

    def reconfigure(self, node: NodeId, nodes: Iterable[NodeId]) -> None:
        self.configured[node] = frozenset(nodes) | {node}
        self.net.nodes[node].core.set_cluster_nodes(self.configured[node])

    def change(
        self,
        master: NodeId,
        new_set: Iterable[NodeId],
        *,
        admin: KeyPair = ADMIN,
        old_set: Iterable[NodeId] | None = None,
        migration_id: bytes | None = None,
        admin_public: Point | None = None,
    ) -> SessionId:
        """Start a change on `master` (signatures by `admin` over the master's view)."""
        new = frozenset(new_set)
        old = frozenset(old_set) if old_set is not None else self.connected_of(master) | {master}
        request = ChangeNodeSet(
            new,
            sign_set(old, admin),
            sign_set(new, admin),
            migration_id=migration_id,  # type: ignore[arg-type]
            admin_public=admin_public,
        )
        node = self.net.nodes[master]
        sid, effects = node.core.start(request, self.connected_of(master) | {master})
        self.net._apply(node, effects)
        return sid

    def outcome(self, master: NodeId, sid: SessionId) -> object:
        result = self.net.nodes[master].results.get(sid)
        assert result is not None, "the change has not ended"
        return result

    def shares(self, key: ServerKeyId) -> dict[NodeId, KeyShare]:
        out = {}
        for node_id, node in self.net.nodes.items():
            share = node.storage.get(key)
            if share is not None:
                out[node_id] = share
        return out

    def sessions_left(self) -> int:
        return sum(len(n.core) for n in self.net.nodes.values() if n.node_id not in self.net.down)

    # --- what must hold after a change ---------------------------------------------------
    def assert_on(self, key: ServerKeyId, holders: frozenset[NodeId]) -> None:
        """Every node of `holders` has the same newest version listing exactly `holders`, any
        t+1 of them reconstruct the key, and nobody else has that version."""
        dealt = self.keys[key]
        shares = self.shares(key)
        newest = {node: shares[node].last_version() for node in holders}
        hashes = {version.hash for version in newest.values()}
        assert len(hashes) == 1, "the new holders disagree on the newest version"
        version = next(iter(newest.values()))
        assert set(version.nodes) == holders
        # the new version carries the commitments of the redistributed polynomial
        assert version.commitments is not None and version.commitments[0] == dealt.public
        for node in holders:
            number = newest[node].id_number(node)
            assert number is not None and newest[node].commitments == version.commitments
            public = evaluate_point_polynomial(version.commitments, number)
            assert public == Point.base_mul(newest[node].secret_share)
        for node, share in shares.items():
            assert share.public == dealt.public
            assert share.threshold == dealt.threshold
            if node not in holders:
                assert share.version(version.hash) is None
        numbers = version.id_numbers_map()
        for subset in itertools.islice(
            itertools.combinations(sorted(holders), dealt.threshold + 1), 30
        ):
            secret = reconstruct_secret(
                dealt.threshold,
                [newest[node].secret_share for node in subset],
                [numbers[node] for node in subset],
            )
            assert secret == dealt.secret

    def serve_with(self, key: ServerKeyId, up: Sequence[NodeId], master: NodeId) -> None:
        """Plain and shadow retrieval and Schnorr signing through `master` with only the
        nodes `up` online: all three give the right answers."""
        dealt = self.keys[key]
        saved_down = set(self.net.down)
        for node in self.ids:
            if node not in up and node not in self.net.down:
                self.net.disconnect(node)
        try:
            signature = sign_recoverable(REQUESTER.secret, key)
            for shadow in (False, True):
                sid = self._start(master, RetrieveDocumentKey(key, signature, shadow))
                self.net.run()
                value = self.net.value(self.ids.index(master), sid)
                assert document_key(value) == dealt.document_key
            sid = self._start(master, SignSchnorr(key, signature, MESSAGE))
            self.net.run()
            result = self.net.value(self.ids.index(master), sid)
            assert isinstance(result, SchnorrSignature)
            assert verify_schnorr_signature(dealt.public, result, MESSAGE)
        finally:
            for node in list(self.net.down):
                if node not in saved_down:
                    self.reconnect(node)

    def _start(self, master: NodeId, request: object) -> SessionId:
        node = self.net.nodes[master]
        sid, effects = node.core.start(request, self.connected_of(master) | {master})
        self.net._apply(node, effects)
        return sid


def document_key(value: object) -> Point:
    if isinstance(value, Point):
        return value
    assert isinstance(value, ShadowResult)
    coefficients = [
        Scalar.from_bytes(ecies_decrypt(REQUESTER.secret, c)) for c in value.decrypt_shadows
    ]
    return decrypt_with_shadow_coefficients(
        value.decrypted_secret, value.common_point, coefficients
    )


def make_world(
    n: int,
    *,
    seed: int,
    schedule: int,
    holders: Sequence[int],
    threshold: int,
    keys: int = 3,
    configured: dict[int, Sequence[int]] | None = None,
    authority: Callable[[NodeId], AdminAuthority] | None = None,
    keys_in_flight: int = 2,
    scheduled: bool = False,
    audit: bool = False,
) -> AdminWorld:
    """n nodes (ascending ids); `keys` keys dealt to the nodes at `holders`; node i is
    configured with `configured[i]` (default: every node); `audit`: every node keeps an
    audit log (SimNode.records)."""
    net = AdminNetwork(n, MASTERS, SLAVES, seed=seed, scheduler=RandomScheduler(schedule))
    ids = sorted(net.order)
    net.order = ids
    sets = {
        ids[i]: frozenset(ids[j] for j in (configured or {}).get(i, range(n))) | {ids[i]}
        for i in range(n)
    }
    world = AdminWorld(net, {}, sets)
    net.world = world
    for node_id in ids:
        node = net.nodes[node_id]
        signer = NodeSigner(node.key) if audit else None
        ctx = SessionContext(node_id, node.core.ctx.rng, sets[node_id], audit=signer)
        settings = AdminSettings(
            authority(node_id) if authority is not None else ConfiguredAdmin(ADMIN.public),
            node.storage,
            lambda node_id=node_id: world.connected_of(node_id),  # type: ignore[misc]
            keys_in_flight=keys_in_flight,
        )
        admin_masters, admin_slaves = admin_tables(settings)
        claims = KeyClaims()
        delete_masters, delete_slaves = delete_tables(DeleteSettings(node.storage, claims))
        refresh = RefreshSettings(
            authority(node_id) if authority is not None else ConfiguredAdmin(ADMIN.public),
            node.storage,
            claims,
            lambda node_id=node_id: world.connected_of(node_id),  # type: ignore[misc]
            lambda: NOW,
            scheduled=scheduled,
            keys_in_flight=keys_in_flight,
        )
        refresh_masters, refresh_slaves = refresh_tables(refresh)
        node.core = NodeCore(
            ctx,
            node.storage,
            {**MASTERS, **admin_masters, **delete_masters, **refresh_masters},
            {**SLAVES, **admin_slaves, **delete_slaves, **refresh_slaves},
            claims=claims,
        )
    rng = SeededRng(seed + 7)
    for index in range(keys):
        dealt = deal_key(rng, [ids[i] for i in holders], threshold, author=REQUESTER.address)
        world.keys[key_id(index)] = dealt
        for node, share in dealt.shares.items():
            net.nodes[node].storage.insert(key_id(index), share)
    for node_id in ids:
        if not (world.connected_of(node_id) or sets[node_id] == {node_id}):
            net.down.add(node_id)
    return world
