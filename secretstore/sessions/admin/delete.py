"""Threshold delete (crypto-shredding): the author erases a server key on every holder.

Request `DeleteKey(key_id, requester, bound_signature)` on any node (the master); result
`DeleteResult(key_id, confirmed, unconfirmed)`. One session on every connected node of the
cluster. Every node checks the author's proofs itself against its own record (or, having
erased the key before, its tombstone): the requester's signature over the key id must recover
to the key's author, and the bound signature (crypto/bound.py, DELETE_KEY over the key id and
the server key public) must be the author's too; anyone else is refused (AccessDenied).

| phase (role)          | waits for                             | next                          |
|-----------------------|---------------------------------------|-------------------------------|
| ASKING (master)       | DeleteKeyHolding from every connected | a refusal → ENDED (its error);|
|                       | node (a lost node counts as absent)   | no share anywhere → ENDED     |
|                       |                                       | (ServerKeyNotFound); the rule |
|                       |                                       | cannot hold → ENDED           |
|                       |                                       | (NodeDisconnected, nothing    |
|                       |                                       | erased); else erase here,     |
|                       |                                       | DeleteKeyErase → ERASING      |
| ERASING (master)      | DeleteKeyErased from every node that  | the rule holds → ENDED        |
|                       | answered (a lost node is unconfirmed) | (DeleteResult); else ENDED    |
|                       |                                       | (NodeDisconnected, naming     |
|                       |                                       | the nodes)                    |
| WAITING_FOR_ERASE     | DeleteKeyErase (master)               | erase (share gone, tombstone  |
| (slave)               |                                       | kept, synced), Erased → ENDED |

The rule (`rule_problems`): with t the key's threshold, the delete is complete when at most t
of the nodes each version of the key lists did not confirm, and at most t nodes of the
cluster did not confirm. So the holders that kept a share — offline, or lying — can never
reach t+1 shares of one version together, and no version that only unreachable nodes hold
can have more than t holders. A node confirms when it holds no share of the key any more:
it erased it now, or had a tombstone of it already, or never held it.

A node that erased a key keeps a tombstone (storage/model.Tombstone) and pushes it to every
node it is connected to; every node pushes its tombstones to a node whose link comes up
(`TombstonePush`). A receiver erases its own share only when the tombstone fits it: the same
public and author, and the author's bound delete signature. A later key generated under the
same id has another public: old tombstones never touch it (docs/LIFECYCLE.md).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import Enum
from typing import Protocol

from secretstore.audit.model import Operation, facts_of
from secretstore.crypto.bound import BoundOperation, bound_signer_matches, delete_payload
from secretstore.errors import (
    AccessDenied,
    CryptoError,
    InvalidRequest,
    NodeDisconnected,
    ProtocolViolation,
    SecretStoreError,
    ServerKeyNotFound,
    SessionTimeout,
)
from secretstore.sessions.audit import record
from secretstore.sessions.base import (
    Effect,
    Notice,
    Remove,
    Send,
    Session,
    SessionContext,
    TimeoutReports,
    short,
    timed_out_waiting_for,
)
from secretstore.sessions.claims import KeyClaims
from secretstore.sessions.core import MasterFactory, SlaveFactory
from secretstore.sessions.requester import requester_of
from secretstore.sessions.signing_common import names
from secretstore.storage.model import KeyShare, Tombstone
from secretstore.types import Hash256, NodeId, ServerKeyId, SessionId
from secretstore.wire.delete import (
    TOMBSTONE_PAGE_SIZE,
    DeleteKeyErase,
    DeleteKeyErased,
    DeleteKeyHolding,
    DeleteKeyInit,
    Holding,
    TombstoneEntry,
    TombstonePush,
    VersionNodes,
)
from secretstore.wire.requester import RequesterProof

#: What every node answers to anyone but the author.
NOT_THE_AUTHOR = "only the author of a server key may delete it"


@dataclass(frozen=True, slots=True)
class DeleteKey:
    """Request: erase server key `key_id` (and its document key) on every holder.

    `requester`: the author's signature over the key id; `bound_signature`: the author's
    bound signature of the delete (DELETE_KEY over the key id and the server key public).
    Result: DeleteResult."""

    key_id: ServerKeyId
    requester: RequesterProof
    bound_signature: bytes


@dataclass(frozen=True, slots=True)
class DeleteResult:
    """`confirmed`: the nodes that hold no share of the key now (ascending); `unconfirmed`:
    the nodes of the cluster, and those a version of the key lists, that did not confirm
    (they erase it when they come back and see a tombstone)."""

    key_id: ServerKeyId
    confirmed: tuple[NodeId, ...]
    unconfirmed: tuple[NodeId, ...]


class DeleteStore(Protocol):
    """What a delete reads of this node's storage."""

    def get(self, key_id: ServerKeyId) -> KeyShare | None: ...

    def tombstone(self, key_id: ServerKeyId) -> Tombstone | None: ...


@dataclass(frozen=True, slots=True)
class DeleteSettings:
    """What the delete and the tombstone push need of their node."""

    store: DeleteStore
    #: the node's key claims (the same table NodeCore uses)
    claims: KeyClaims


# --- the checks every node makes ------------------------------------------------------------


def tombstone_fits(tombstone: Tombstone | TombstoneEntry, share: KeyShare) -> bool:
    """Whether `tombstone` is the author's delete of exactly this record: the same public and
    author, and the author's bound delete signature over the key id and that public."""
    if (share.public, share.author) != (tombstone.public, tombstone.author):
        return False
    return signed_by_author(tombstone.signature, tombstone)


def signed_by_author(signature: bytes, tombstone: Tombstone | TombstoneEntry) -> bool:
    """Whether `signature` is the tombstone author's bound delete signature of its key."""
    try:
        return bound_signer_matches(
            signature,
            tombstone.author,
            BoundOperation.DELETE_KEY,
            tombstone.key_id,
            delete_payload(tombstone.public),
        )
    except CryptoError:
        return False


@dataclass(frozen=True, slots=True)
class Examined:
    """What this node answers, and the tombstone it keeps if asked to erase."""

    holding: DeleteKeyHolding
    tombstone: Tombstone | None


def erase(
    ctx: SessionContext,
    session_id: SessionId,
    tombstone: Tombstone,
    *,
    master: NodeId,
    participants: Iterable[NodeId],
) -> list[Effect]:
    """Erase this node's share of the tombstone's key, keeping the tombstone: the audit
    entry (a delete by the author), then the write."""
    facts = facts_of(
        Operation.DELETE,
        tombstone.key_id,
        session_id=session_id,
        master=master,
        requester=tombstone.author,
        participants=frozenset(participants) | {ctx.self_id},
    )
    return [*record(ctx, facts)[0], Remove(session_id, tombstone.key_id, tombstone)]


def examine(init: DeleteKeyInit, share: KeyShare | None, tombstone: Tombstone | None) -> Examined:
    """Check the author's proofs against this node's record (else its tombstone) and say
    what it holds. InvalidRequest for proofs that do not parse or a bound signature that is
    not the author's over this delete; AccessDenied for anyone but the author."""
    session_id, key_id, bound_signature = init.session_id, init.key_id, init.bound_signature
    who = requester_of(init.requester, key_id)
    if share is None and tombstone is None:
        return Examined(DeleteKeyHolding(session_id, Holding.NOTHING, 0, ()), None)
    if share is not None:
        kept = Tombstone(key_id, share.public, share.author, bound_signature)
    else:
        assert tombstone is not None
        kept = tombstone
    if who.address != kept.author:
        raise AccessDenied(NOT_THE_AUTHOR)
    if not signed_by_author(bound_signature, kept):
        raise InvalidRequest(
            "the bound delete signature is not the author's signature over deleting this key "
            "(operation 5, the key id and the server key public)"
        )
    if share is None:
        return Examined(DeleteKeyHolding(session_id, Holding.TOMBSTONE, 0, ()), None)
    versions = tuple(VersionNodes(Hash256(v.hash), v.nodes) for v in share.versions)
    holding = DeleteKeyHolding(session_id, Holding.SHARE, share.threshold, versions)
    return Examined(holding, kept)


def rule_problems(
    threshold: int,
    versions: Iterable[VersionNodes],
    cluster: frozenset[NodeId],
    confirmed: frozenset[NodeId],
) -> list[str]:
    """Why a delete confirmed by `confirmed` is not complete (see the module docstring):
    empty when at most t nodes of each version and of the cluster did not confirm."""
    problems: list[str] = []
    away = sorted(cluster - confirmed)
    if len(away) > threshold:
        problems.append(
            f"{len(away)} nodes of the cluster did not confirm ({names(away)}), "
            f"at most {threshold} may"
        )
    seen: set[Hash256] = set()
    for version in versions:
        if version.hash in seen:
            continue
        seen.add(version.hash)
        kept = sorted(set(version.nodes) - confirmed)
        if len(kept) > threshold:
            problems.append(
                f"version 0x{version.hash[:4].hex()} lists {len(kept)} nodes that did not "
                f"confirm ({names(kept)}), at most {threshold} may"
            )
    return problems


# --- the sessions ------------------------------------------------------------------------------


class DeletePhase(Enum):
    ASKING = "asking every node what it holds"
    ERASING = "erasing"
    WAITING_FOR_ERASE = "waiting for the master's erase"
    ENDED = "ended"


class DeleteMaster(Session):
    """The node the author asked."""

    WRITES_KEY = True

    def __init__(
        self,
        ctx: SessionContext,
        session_id: SessionId,
        request: DeleteKey,
        own: Examined,
        asked: frozenset[NodeId],
    ) -> None:
        super().__init__(ctx, session_id, ctx.self_id, request.key_id)
        self.request = request
        self.own = own
        self.asked = asked
        self.cluster = ctx.cluster_nodes | {ctx.self_id}
        self.holdings: dict[NodeId, DeleteKeyHolding] = {ctx.self_id: own.holding}
        self.gone: set[NodeId] = set()
        self.erased: set[NodeId] = set()
        self.erasing = False
        self.threshold = 0

    @property
    def participants(self) -> frozenset[NodeId]:
        return self.asked | {self.ctx.self_id}

    @property
    def phase(self) -> DeletePhase:
        if self.finished:
            return DeletePhase.ENDED
        return DeletePhase.ERASING if self.erasing else DeletePhase.ASKING

    def start(self) -> list[Effect]:
        init = DeleteKeyInit(
            self.session_id, self.key_id, self.request.requester, self.request.bound_signature
        )
        return self.broadcast(init, self.asked) + self._maybe_decide()

    # --- events ---------------------------------------------------------------------------
    def on_message(self, sender: NodeId, message: object) -> list[Effect]:
        if self.finished:
            return []
        if isinstance(message, DeleteKeyHolding) and not self.erasing:
            if sender in self.holdings:
                if self.holdings[sender] != message:
                    return self.fail(ProtocolViolation(short(sender), "answered twice"))
                return []
            self.holdings[sender] = message
            return self._maybe_decide()
        if isinstance(message, DeleteKeyErased) and self.erasing:
            self.erased.add(sender)
            return self._maybe_finish()
        if self.erasing:  # erased elsewhere already: the sender stays unconfirmed
            notice = Notice(
                f"delete of key 0x{self.key_id.hex()}: node {short(sender)} sent "
                f"{type(message).__name__} out of turn, it is not confirmed"
            )
            return [notice, *self._lost(sender)]
        return self.fail(
            ProtocolViolation(short(sender), f"sent {type(message).__name__} out of turn")
        )

    def on_peer_refusal(self, sender: NodeId, error: SecretStoreError) -> list[Effect]:
        if self.finished:
            return []
        if not self.erasing:
            return self.fail(type(error)(str(error)))
        return self._lost(sender)

    def on_peer_error(self, sender: NodeId, reason: str) -> list[Effect]:
        if self.finished:
            return []
        if not self.erasing:
            what = f"failed: {reason[:300]}{self.still_waiting(sender)}"
            return self.fail(ProtocolViolation(short(sender), what))
        return self._lost(sender)

    def on_peer_timeout(self, sender: NodeId, reason: str) -> list[Effect]:
        """A node's clock ran out first while this one still asks (it waited for the erase,
        this node for another node's answer): the delete fails, nothing erased, naming the
        nodes this one waited for with the report; while erasing, the node is unconfirmed."""
        if self.finished:
            return []
        if self.erasing:
            return self._lost(sender)
        reports = TimeoutReports()
        reports.add(sender, reason)
        error = timed_out_waiting_for(self.waiting_for() - {sender}, reports)
        return self.fail(SessionTimeout(f"{error.what}; nothing was erased", error.node))

    def waiting_for(self) -> frozenset[NodeId]:
        """The nodes whose answer (asking) or confirmation (erasing) has not come."""
        done = self.erased if self.erasing else set(self.holdings)
        if self.erasing:
            return frozenset(set(self.holdings) - done - self.gone - {self.ctx.self_id})
        return frozenset(self.asked - done - self.gone)

    def on_node_disconnected(self, node: NodeId) -> list[Effect]:
        if self.finished:
            return []
        return self._lost(node)

    def on_timeout(self) -> list[Effect]:
        if self.finished:
            return []
        silent = self.asked - set(self.holdings) - self.gone
        if self.erasing:
            silent = self.asked - self.erased - self.gone
        self.gone |= silent
        effects: list[Effect] = [
            Notice(f"delete of key 0x{self.key_id.hex()}: no answer from {names(sorted(silent))}")
        ]
        return effects + (self._maybe_finish() if self.erasing else self._maybe_decide())

    def _lost(self, node: NodeId) -> list[Effect]:
        self.gone.add(node)
        return self._maybe_finish() if self.erasing else self._maybe_decide()

    # --- the two decisions ----------------------------------------------------------------
    def _versions(self) -> list[VersionNodes]:
        return [v for h in self.holdings.values() for v in h.versions]

    def _maybe_decide(self) -> list[Effect]:
        if self.asked - self.gone - set(self.holdings):
            return []
        holders = {n: h for n, h in self.holdings.items() if h.holding == Holding.SHARE}
        if not holders:
            return self.fail(ServerKeyNotFound(f"no node holds server key 0x{self.key_id.hex()}"))
        thresholds = {h.threshold for h in holders.values()}
        if len(thresholds) != 1:
            return self.fail(
                ProtocolViolation(names(sorted(holders)), "report different thresholds")
            )
        self.threshold = next(iter(thresholds))
        answered = frozenset(self.holdings)
        problems = rule_problems(self.threshold, self._versions(), self.cluster, answered)
        if problems:
            return self.fail(
                NodeDisconnected(
                    f"deleting key 0x{self.key_id.hex()} needs more of its holders connected, "
                    f"nothing was erased: {'; '.join(problems)}"
                )
            )
        self.erasing = True
        # the erase goes out before this node's tombstone push, which follows its own erase
        others = answered - {self.ctx.self_id}
        effects = self.broadcast(DeleteKeyErase(self.session_id), others)
        if self.own.tombstone is not None:
            effects += erase(
                self.ctx,
                self.session_id,
                self.own.tombstone,
                master=self.master,
                participants=answered,
            )
        self.erased.add(self.ctx.self_id)
        return effects + self._maybe_finish()

    def _maybe_finish(self) -> list[Effect]:
        waiting = (frozenset(self.holdings) - {self.ctx.self_id}) - self.erased - self.gone
        if waiting:
            return []
        confirmed = frozenset(self.erased)
        listed = {node for v in self._versions() for node in v.nodes}
        unconfirmed = tuple(sorted((self.cluster | listed) - confirmed))
        problems = rule_problems(self.threshold, self._versions(), self.cluster, confirmed)
        if problems:
            return self.fail(
                NodeDisconnected(
                    f"key 0x{self.key_id.hex()} is erased on {names(sorted(confirmed))}, but "
                    f"{'; '.join(problems)}; those nodes erase it when they come back"
                )
            )
        return self.finish(DeleteResult(self.key_id, tuple(sorted(confirmed)), unconfirmed))


class DeleteSlave(Session):
    """Every other connected node: answer, then erase when the master says so."""

    WRITES_KEY = True

    def __init__(
        self,
        ctx: SessionContext,
        session_id: SessionId,
        master: NodeId,
        key_id: ServerKeyId,
        own: Examined,
    ) -> None:
        super().__init__(ctx, session_id, master, key_id)
        self.own = own

    @property
    def participants(self) -> frozenset[NodeId]:
        return frozenset({self.master, self.ctx.self_id})

    @property
    def phase(self) -> DeletePhase:
        return DeletePhase.ENDED if self.finished else DeletePhase.WAITING_FOR_ERASE

    def on_message(self, sender: NodeId, message: object) -> list[Effect]:
        if self.finished:
            return []
        if not isinstance(message, DeleteKeyErase):
            return self.fail(ProtocolViolation(short(sender), f"sent {type(message).__name__}"))
        effects: list[Effect] = []
        if self.own.tombstone is not None:
            effects += erase(
                self.ctx,
                self.session_id,
                self.own.tombstone,
                master=self.master,
                participants=(self.master,),
            )
        effects.append(Send(self.master, DeleteKeyErased(self.session_id)))
        return effects + self.finish()

    def on_peer_error(self, sender: NodeId, reason: str) -> list[Effect]:
        return [] if self.finished else self.finish()  # the master gave up: nothing erased

    def on_peer_refusal(self, sender: NodeId, error: SecretStoreError) -> list[Effect]:
        return self.on_peer_error(sender, str(error))

    def on_node_disconnected(self, node: NodeId) -> list[Effect]:
        return [] if self.finished else self.finish()

    def on_timeout(self) -> list[Effect]:
        if self.finished:
            return []
        return self.fail(SessionTimeout("sent no erase in time", short(self.master)))


# --- tombstones: what one node tells another -----------------------------------------------------


def tombstone_pushes(
    tombstones: Iterable[Tombstone], session_id: Callable[[], SessionId]
) -> list[TombstonePush]:
    """The pushes (pages of at most TOMBSTONE_PAGE_SIZE) that carry `tombstones`."""
    pushes: list[TombstonePush] = []
    page: list[TombstoneEntry] = []
    for tombstone in tombstones:
        page.append(
            TombstoneEntry(
                tombstone.key_id, tombstone.public, tombstone.author, tombstone.signature
            )
        )
        if len(page) == TOMBSTONE_PAGE_SIZE:
            pushes.append(TombstonePush(session_id(), tuple(page)))
            page = []
    if page:
        pushes.append(TombstonePush(session_id(), tuple(page)))
    return pushes


class _Received(Session):
    """A tombstone push: handled in full by its factory; ends at once."""

    @property
    def participants(self) -> frozenset[NodeId]:
        return frozenset({self.master, self.ctx.self_id})

    def on_message(self, sender: NodeId, message: object) -> list[Effect]:
        return []


def receive_tombstones(
    ctx: SessionContext, settings: DeleteSettings, sender: NodeId, message: TombstonePush
) -> tuple[Session, list[Effect]]:
    """Erase every share of this node a pushed tombstone fits (keeping the tombstone)."""
    session = _Received(ctx, message.session_id, sender, message.key_id)
    effects: list[Effect] = []
    busy: list[ServerKeyId] = []
    for entry in message.tombstones:
        share = settings.store.get(entry.key_id)
        if share is None or not tombstone_fits(entry, share):
            continue
        if not settings.claims.claim(entry.key_id, message.session_id):
            busy.append(entry.key_id)
            continue
        tombstone = Tombstone(entry.key_id, entry.public, entry.author, entry.signature)
        effects += erase(ctx, message.session_id, tombstone, master=sender, participants=())
        effects.append(
            Notice(
                f"key 0x{entry.key_id.hex()} was deleted by its author while this node was "
                f"away: erased (tombstone from {short(sender)})"
            )
        )
    if busy:
        effects.append(
            Notice(
                f"{len(busy)} deleted keys are being written by another session here (a "
                f"delete under way erases them, else the next tombstone push does; first: "
                f"0x{busy[0].hex()})"
            )
        )
    return session, effects + session.finish()


def delete_tables(
    settings: DeleteSettings,
) -> tuple[dict[type, MasterFactory], dict[type, SlaveFactory]]:
    """The master and slave factories of the delete and the tombstone push."""

    def start(
        ctx: SessionContext,
        session_id: SessionId,
        request: DeleteKey,
        share: KeyShare | None,
        connected: frozenset[NodeId],
    ) -> tuple[Session, list[Effect]]:
        init = DeleteKeyInit(session_id, request.key_id, request.requester, request.bound_signature)
        own = examine(init, share, settings.store.tombstone(request.key_id))
        asked = (frozenset(connected) & ctx.cluster_nodes) - {ctx.self_id}
        session = DeleteMaster(ctx, session_id, request, own, asked)
        return session, session.start()

    def join(
        ctx: SessionContext, sender: NodeId, message: DeleteKeyInit, share: KeyShare | None
    ) -> tuple[Session, list[Effect]]:
        own = examine(message, share, settings.store.tombstone(message.key_id))
        session = DeleteSlave(ctx, message.session_id, sender, message.key_id, own)
        return session, [Send(sender, own.holding)]

    def pushed(
        ctx: SessionContext, sender: NodeId, message: TombstonePush, share: KeyShare | None
    ) -> tuple[Session, list[Effect]]:
        return receive_tombstones(ctx, settings, sender, message)

    return {DeleteKey: start}, {DeleteKeyInit: join, TombstonePush: pushed}
