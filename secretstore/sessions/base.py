"""The contract of a session: it takes events and returns effects; it never does I/O."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from secretstore.audit.model import AuditFacts
from secretstore.audit.receipts import NodeSigner, ReleaseReceipts
from secretstore.crypto.rng import Rng
from secretstore.errors import (
    NodeDisconnected,
    ProtocolViolation,
    SecretStoreError,
    SessionTimeout,
)
from secretstore.storage.model import KeyShare, Tombstone
from secretstore.types import Address, BlockRef, NodeId, ServerKeyId, SessionId

if TYPE_CHECKING:
    from secretstore.sessions.presign import PresignPool

# --- effects: what a session asks its driver to do, in order --------------------------


@dataclass(frozen=True, slots=True)
class Send:
    """Send a wire message to a node (never to self)."""

    to: NodeId
    message: object


@dataclass(frozen=True, slots=True)
class Persist:
    """Write a key share durably before any later effect is carried out.

    `create`: insert a new key (fails if it exists); otherwise replace the stored share.
    If the write fails, the driver carries out none of the session's later effects: it ends
    the session (`NodeCore.abort`) and tells the nodes it was about to message instead.
    """

    session_id: SessionId
    key_id: ServerKeyId
    share: KeyShare
    create: bool


@dataclass(frozen=True, slots=True)
class Remove:
    """Delete this node's share of `key_id` durably (a node leaving the node set). With a
    `tombstone` (the author deleted the key), the tombstone is kept in the same write
    (KeyStorage.bury), and the driver pushes it to every connected node."""

    session_id: SessionId
    key_id: ServerKeyId
    tombstone: Tombstone | None = None


@dataclass(frozen=True, slots=True)
class Deadline:
    """Restart the session's timeout clock: `on_timeout` comes `seconds` from now unless the
    session ends first (a long session pushes its deadline out as it makes progress)."""

    session_id: SessionId
    seconds: float


@dataclass(frozen=True, slots=True)
class Wake:
    """Call the session's `on_wake` `seconds` from now, once, unless it has ended by then (a
    later Wake of the same session replaces an earlier one). It does not touch the timeout:
    a session uses it to stop waiting on a slow peer early (decryption asks other holders)."""

    session_id: SessionId
    seconds: float


@dataclass(frozen=True, slots=True)
class Notice:
    """Something the driver should log (a peer's misbehaviour, a late message, progress);
    never a secret."""

    text: str


@dataclass(frozen=True, slots=True)
class Record:
    """Append this node's entry of `facts` (with `receipt`, its signature of them) to its
    audit log, synced, before any later effect is carried out. If it cannot be written, the
    driver ends the session at once: none of its later effects happen, its messages become
    SessionErrors, a master's caller gets the error. `receipts`: on the master of a release,
    every participant's receipt, for the requester."""

    session_id: SessionId
    facts: AuditFacts
    receipt: bytes
    receipts: ReleaseReceipts | None = None


@dataclass(frozen=True, slots=True)
class CheckAccess:
    """Ask the access policy whether `requester` may use `key_id`; the answer comes back
    through `Session.on_access_checked`. `block`: the chain state the session's master pinned
    (None without one): the policy decides at that block or refuses."""

    session_id: SessionId
    requester: Address
    key_id: ServerKeyId
    block: BlockRef | None = None


@dataclass(frozen=True, slots=True)
class Finish:
    """The session ended well; `result` is what the master's caller receives (None on slaves).
    `receipts`: on a master that relays a release it took no part in (one a holder served for
    it, sessions/jobs/delegation.py), every participant's receipt of it, checked already, for
    the requester; a master that took part hands them on through its Record instead."""

    session_id: SessionId
    result: object
    receipts: ReleaseReceipts | None = None


@dataclass(frozen=True, slots=True)
class Fail:
    """The session ended badly; the master's caller receives `error`."""

    session_id: SessionId
    error: SecretStoreError


Effect = Send | Persist | Record | Remove | CheckAccess | Finish | Fail | Deadline | Wake | Notice


@dataclass(frozen=True, slots=True)
class SessionContext:
    """What every session of one node knows about its surroundings."""

    self_id: NodeId
    rng: Rng
    #: every node of the cluster (configured), including self
    cluster_nodes: frozenset[NodeId]
    #: this node's policy: refuse generation, store and signing requests without a bound
    #: signature
    require_bound_requests: bool = False
    #: this node's policy (config `require_shadow_retrieval`): it computes no plain-mode
    #: decryption job, as master or slave, so no node can obtain a document key
    require_shadow_retrieval: bool = False
    #: this node's signer of audit receipts: sessions record what they release (`Record`)
    #: and send their receipts; None on a node without an audit log (protocol-only tests)
    audit: NodeSigner | None = None
    #: this node's ECDSA presigning pool (sessions/presign.py): None keeps no presignatures
    #: (every ECDSA signing runs its nonce generations)
    presigns: PresignPool | None = None


class Session(ABC):
    """One run of a protocol on one node. The master is the node that received the request."""

    #: True for sessions that write a key (generation, store): one such session per key
    WRITES_KEY: bool = False
    #: True for a session during which no other session may start on its node (see core)
    EXCLUSIVE: bool = False

    def __init__(
        self, ctx: SessionContext, session_id: SessionId, master: NodeId, key_id: ServerKeyId
    ) -> None:
        self.ctx = ctx
        self.session_id = session_id
        self.master = master
        self.key_id = key_id
        self.finished = False

    @property
    def is_master(self) -> bool:
        return self.master == self.ctx.self_id

    @property
    @abstractmethod
    def participants(self) -> frozenset[NodeId]:
        """The nodes that take part in this session now (including self)."""

    @abstractmethod
    def on_message(self, sender: NodeId, message: object) -> list[Effect]:
        """A message of this session from `sender` (a participant, never self)."""

    def on_access_checked(self, allowed: bool) -> list[Effect]:
        """The answer to this session's CheckAccess."""
        return []

    def on_node_disconnected(self, node: NodeId) -> list[Effect]:
        """A participant went away (its link closed, or it did not answer in time: the node
        core adds which to the error). By default the session cannot go on."""
        return self.fail(lost_node(node))

    def on_peer_error(self, sender: NodeId, reason: str) -> list[Effect]:
        """A participant reported that its side of the session failed (perhaps it timed out
        waiting for this node, which waits for another: `still_waiting` says for whom)."""
        return self.fail(
            ProtocolViolation(short(sender), f"failed: {reason}{self.still_waiting(sender)}")
        )

    def on_peer_timeout(self, sender: NodeId, reason: str) -> list[Effect]:
        """A participant's clock ran out before this node's (`reason` names whom it waited
        for). By default, as any peer error."""
        return self.on_peer_error(sender, reason)

    def on_peer_refusal(self, sender: NodeId, error: SecretStoreError) -> list[Effect]:
        """A participant refused the request for a client-facing reason (`error`: e.g.
        AccessDenied, DocumentKeyAlreadyStored). By default, treated as a peer error; sessions
        that need every node (generation, store) fail with `error` itself."""
        return self.on_peer_error(sender, str(error))

    def waiting_for(self) -> frozenset[NodeId]:
        """The nodes this session waits to hear from now (named when it times out): by default
        its master (a slave) or every other participant (a master). This node itself stands
        for its own access policy."""
        if self.is_master:
            return self.participants - {self.ctx.self_id}
        return frozenset({self.master})

    def on_timeout(self) -> list[Effect]:
        return self.fail(timed_out_waiting_for(self.waiting_for()))

    def still_waiting(self, reporter: NodeId) -> str:
        """ " (this node still waited for node …)" naming whom this session waits for besides
        `reporter`, or "": added to a peer's failure, so that a peer that gave up waiting for
        this node does not hide the node this one waits for."""
        waiting = self.waiting_for() - {reporter, self.ctx.self_id}
        if not waiting:
            return ""
        return f" (this node still waited for node {', '.join(short(n) for n in sorted(waiting))})"

    def on_wake(self) -> list[Effect]:
        """The time of this session's latest Wake has come (it had not ended)."""
        return []

    def on_drained(self) -> list[Effect]:
        """An EXCLUSIVE session: no other session is left on this node (called once; at
        admission already when none was running)."""
        return []

    # --- helpers for subclasses ---------------------------------------------------------
    def finish(
        self, result: object = None, receipts: ReleaseReceipts | None = None
    ) -> list[Effect]:
        self.finished = True
        return [Finish(self.session_id, result, receipts)]

    def fail(self, error: SecretStoreError) -> list[Effect]:
        self.finished = True
        return [Fail(self.session_id, error)]

    def broadcast(self, message: object, to: Sequence[NodeId] | frozenset[NodeId]) -> list[Effect]:
        """Send `message` to every node of `to` except self."""
        return [Send(node, message) for node in sorted(to) if node != self.ctx.self_id]


class ReplyOnly(Session):
    """A slave's whole part when it only answers the master once (the answer is among the
    factory's effects) and then has nothing left to do: it ends at once."""

    @property
    def participants(self) -> frozenset[NodeId]:
        return frozenset({self.master, self.ctx.self_id})

    def on_message(self, sender: NodeId, message: object) -> list[Effect]:
        return []


def lost_node(node: NodeId) -> NodeDisconnected:
    """The error of a session that cannot go on without `node`, which went away."""
    return NodeDisconnected(f"node {short(node)} disconnected during the session")


def short(node: NodeId) -> str:
    """A node id for messages and logs: the first 8 hex digits."""
    return node[:4].hex()


def timed_out_waiting_for(
    nodes: Iterable[NodeId], reports: TimeoutReports | None = None
) -> SessionTimeout:
    """The error of a session whose time ran out while it waited for `nodes`, with what the
    participants that timed out first reported."""
    named = ", ".join(short(node) for node in sorted(nodes))
    if named:
        what = "did not answer before the session timed out"
    else:
        what = "the session did not finish in time"
    if reports:
        what += f" ({reports.text()})"
    return SessionTimeout(what, named)


#: How much of one participant's timeout report a master keeps.
MAX_REPORT_TEXT = 300


class TimeoutReports:
    """What the participants whose clocks ran out first reported (each names whom it waited
    for), kept by a master whose own clock still runs: when a slave waited for another slave
    that waited for a third, only their reports together name the node that was silent. A
    master that keeps them fails once every node it waits for has reported (nothing more will
    come from them), or when its own clock runs out."""

    def __init__(self) -> None:
        self._reports: dict[NodeId, str] = {}

    def __bool__(self) -> bool:
        return bool(self._reports)

    def add(self, node: NodeId, reason: str) -> None:
        self._reports.setdefault(node, reason[:MAX_REPORT_TEXT])

    def cover(self, nodes: Iterable[NodeId]) -> bool:
        """Whether every node of `nodes` has reported."""
        return all(node in self._reports for node in nodes)

    def text(self) -> str:
        return "; ".join(
            f"node {short(node)} timed out first: {reason}"
            for node, reason in sorted(self._reports.items())
        )
