"""Consensus over access: which holders of a key let the requester use it, and which of them
run the job. An object that decryption and signing sessions embed; not a Session itself.

Master side (`AccessConsensus`): the master asks every connected holder of the key version
(the *candidates*, itself included) whether the requester may use the key; each node decides
with its own access policy. Consensus is reached when `needed` candidates allowed, the master
among them; then a *group* of exactly `needed` allowed nodes (the master and a random choice
of the others) is selected for the job. When a group member is lost (disconnects, reports an
error, fails its job) another group is selected from the remaining allowed nodes, if enough
remain; otherwise the consensus waits for more answers, or fails.

A *broken link* between two members (one reported that it lost its connection to the other)
loses neither node: the pair is recorded, and every later group avoids holding both ends. As
the master is in every group, a broken link between the master and a node loses that node. So
a node that claims to have lost everyone excludes only itself, never an honest node alone.

Asking a group first (`preselect`, then `start(request, to=group)`): the master may pick the
group at once among the connected candidates and ask only its members, each with the job in
the request, so that one round trip decides access and does the job. The other candidates
stay *unasked*; when a member refuses, is lost or fails its job and the nodes asked can no
longer make a group, the consensus asks every unasked candidate (`AskOthers`) and goes on
exactly as if they had been asked from the start: the same rules decide, only later.

Slave side (`AccessCheck`): a candidate recovers the requester from the requester's own
signature over the key id (never from the master's word), asks its access policy and answers.
A service contract's request names its requester by public key instead (`access.origin`); the
node read that request from the contract before the slave was created (sessions/origin.py).

Outcomes (master): AccessDenied as soon as so many candidates refused that `needed` can no
longer allow (or at once when the master's own policy refuses), naming the nodes that
refused (in the text only: the requester sees Parity's "Access denied");
ConsensusUnreachable when too few candidates are connected, too few remain after losses, or
no group of `needed` avoids the broken links (the error names every node lost and link
broken, with why, and the broken links); ProtocolViolation for an answer a node had no
business sending. Errors never contain a secret.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass
from enum import Enum
from typing import Final, Protocol

from secretstore.crypto.curve import Point
from secretstore.crypto.keys import address_of, recover_requester
from secretstore.crypto.rng import Rng
from secretstore.errors import (
    AccessDenied,
    ConsensusUnreachable,
    CryptoError,
    InvalidRequest,
    ProtocolViolation,
    SecretStoreError,
    ServerKeyNotFound,
)
from secretstore.sessions.base import CheckAccess, Effect, Send, SessionContext, short
from secretstore.storage.model import KeyShare, KeyShareVersion
from secretstore.types import Address, BlockRef, NodeId, ServerKeyId, SessionId
from secretstore.wire.consensus import AccessRequest, ConsensusCompleted, ConsensusResponse
from secretstore.wire.requester import ServiceOrigin

# --- what every consensus-based session needs before it starts ---------------------------


@dataclass(frozen=True, slots=True)
class Requester:
    """Who asked: recovered from the requester's signature over the server key id."""

    public: Point
    address: Address


#: How much of the reason for one lost node or broken link goes into an error.
MAX_LOSS_TEXT: Final = 400
#: How many recovered requesters one process remembers (see `recover_requester_of`).
REQUESTER_CACHE_SIZE: Final = 1024


def recover_requester_of(signature: bytes, key_id: ServerKeyId) -> Requester:
    """The requester behind `signature` (65 bytes r‖s‖v over `key_id`); InvalidRequest if it
    is malformed or recovers no key (HTTP 400, Parity's "insufficient requester data").

    Recovery is a deterministic function of public data, so the requesters of the last
    REQUESTER_CACHE_SIZE (signature, key id) pairs are remembered: the key server and the
    master session of one request recover once. Every other node recovers on its own, from
    the signature, as before; failures are never remembered.
    """
    return _recover(bytes(signature), bytes(key_id))


@functools.lru_cache(maxsize=REQUESTER_CACHE_SIZE)
def _recover(signature: bytes, key_id: bytes) -> Requester:
    try:
        public = recover_requester(signature, key_id)
    except CryptoError as exc:
        raise InvalidRequest(f"the requester signature is not usable: {exc}") from None
    return Requester(public, address_of(public))


def origin_requester(origin: ServiceOrigin) -> Requester:
    """The requester a service request names by its public key; InvalidRequest for an
    account alone or bytes that are not a point."""
    if len(origin.requester) != 64:
        raise InvalidRequest("this service request names its requester by account, not by key")
    try:
        public = Point.from_bytes(origin.requester)
    except CryptoError as exc:
        raise InvalidRequest(
            f"the service request's requester public is not usable: {exc}"
        ) from None
    return Requester(public, address_of(public))


def access_requester(request: AccessRequest, key_id: ServerKeyId) -> Requester:
    """The requester of an access request: the signer, or a service request's requester."""
    if request.origin is not None:
        return origin_requester(request.origin)
    return recover_requester_of(request.requester_signature, key_id)


def require_share(share: KeyShare | None, key_id: ServerKeyId) -> KeyShare:
    """`share`, or ServerKeyNotFound when this node holds no share of the key."""
    if share is None:
        raise ServerKeyNotFound(f"no server key 0x{key_id.hex()} on this node")
    return share


def select_version(
    share: KeyShare, key_id: ServerKeyId, self_id: NodeId, version_hash: bytes | None
) -> KeyShareVersion:
    """The key version to use (the newest when `version_hash` is None) that this node holds;
    ServerKeyNotFound otherwise."""
    version = share.last_version() if version_hash is None else share.version(version_hash)
    if version is None or version.id_number(self_id) is None:
        named = "" if version_hash is None else f" version 0x{version_hash.hex()} of"
        raise ServerKeyNotFound(f"this node holds no share of{named} server key 0x{key_id.hex()}")
    return version


# --- decisions the master-side helper hands to its owner ---------------------------------


@dataclass(frozen=True, slots=True)
class Undecided:
    """Nothing for the owner to do yet."""


@dataclass(frozen=True, slots=True)
class GroupSelected:
    """Run the job on `nodes` (ascending node ids, the master included). `attempt` counts
    the groups of this session from 1; the owner tags its job messages with it so that
    answers to an abandoned group can be told apart and ignored."""

    nodes: tuple[NodeId, ...]
    attempt: int


@dataclass(frozen=True, slots=True)
class AskOthers:
    """The nodes asked so far can no longer make a group: send the owner's access request
    (without a job) to `nodes`, the candidates not asked yet (now awaited)."""

    nodes: tuple[NodeId, ...]


@dataclass(frozen=True, slots=True)
class ConsensusFailed:
    """The session cannot go on; the owner fails with `error`."""

    error: SecretStoreError


Decision = Undecided | GroupSelected | AskOthers | ConsensusFailed
UNDECIDED = Undecided()


class ConsensusPhase(Enum):
    WAITING_FOR_ANSWERS = "waiting for answers"
    GROUP_SELECTED = "group selected"
    ENDED = "ended"


class AccessConsensus:
    """Master side of the access consensus (see the module docstring).

    Events in, decisions out; the only effects it makes itself are those of `start` and
    `completion`. After a GroupSelected the owner runs its job; when that job loses a member
    it calls `on_node_lost`, which returns the next group, Undecided (waiting for more
    answers) or ConsensusFailed.
    """

    def __init__(
        self,
        ctx: SessionContext,
        session_id: SessionId,
        key_id: ServerKeyId,
        *,
        requester: Address,
        version: KeyShareVersion,
        connected: Iterable[NodeId],
        needed: int,
        block: BlockRef | None = None,
    ) -> None:
        """`block`: the chain block the master pinned for every node's access decision.
        Raises InvalidRequest for `needed` < 1, ServerKeyNotFound when this node does not
        hold `version`, ConsensusUnreachable when fewer than `needed` holders are connected."""
        if needed < 1:
            raise InvalidRequest(f"a consensus needs at least one node, not {needed}")
        self_id = ctx.self_id
        if version.id_number(self_id) is None:
            raise ServerKeyNotFound(f"this node holds no share of server key 0x{key_id.hex()}")
        online = set(connected) | {self_id}
        candidates = frozenset(node for node in version.nodes if node in online)
        if len(candidates) < needed:
            raise ConsensusUnreachable(
                f"{len(candidates)} of the {len(version.nodes)} holders of the key are "
                f"connected; {needed} are needed"
            )
        self._ctx = ctx
        self._session_id = session_id
        self._key_id = key_id
        self._requester = requester
        self.block = block
        self.needed = needed
        self.candidates = candidates
        self._pending: set[NodeId] = set(candidates)
        #: candidates not asked yet (`start(..., to=...)` asks some only)
        self._unasked: set[NodeId] = set()
        self._allowed: set[NodeId] = set()
        self._denied: set[NodeId] = set()
        self._lost: set[NodeId] = set()
        self._broken: set[frozenset[NodeId]] = set()
        #: what happened to the nodes lost and links broken, in order (for the error text)
        self._losses: list[str] = []
        self._group: tuple[NodeId, ...] | None = None
        self._attempt = 0
        self._ended = False

    # --- state ------------------------------------------------------------------------------
    @property
    def phase(self) -> ConsensusPhase:
        if self._ended:
            return ConsensusPhase.ENDED
        if self._group is not None:
            return ConsensusPhase.GROUP_SELECTED
        return ConsensusPhase.WAITING_FOR_ANSWERS

    @property
    def group(self) -> tuple[NodeId, ...] | None:
        """The group of the running job, or None while there is none."""
        return self._group

    @property
    def attempt(self) -> int:
        """The number of groups selected so far (the attempt of the current group)."""
        return self._attempt

    @property
    def allowed(self) -> frozenset[NodeId]:
        """Candidates that allowed access and have not been lost since."""
        return frozenset(self._allowed)

    @property
    def pending(self) -> frozenset[NodeId]:
        """Candidates asked whose answer has not come (the master until its own check
        returns)."""
        return frozenset(self._pending)

    @property
    def unasked(self) -> frozenset[NodeId]:
        """Candidates not asked (yet): none unless `start` asked a group only."""
        return frozenset(self._unasked)

    @property
    def broken_links(self) -> frozenset[frozenset[NodeId]]:
        """The pairs of candidates reported unable to reach each other (no group holds both)."""
        return frozenset(self._broken)

    @property
    def in_play(self) -> frozenset[NodeId]:
        """Candidates asked and neither refused nor lost (the master included): the
        session's participants."""
        return self.candidates - self._denied - self._lost - self._unasked

    # --- events -----------------------------------------------------------------------------
    def preselect(self, nodes: Iterable[NodeId] | None = None) -> GroupSelected:
        """Select the first group at once, before `start`: `nodes` (the master and
        `needed - 1` candidates, e.g. a presignature's group), or by default the master and a
        random choice of `needed - 1` other candidates; attempt 1. The owner then asks its
        members only (`start(request, to=group.nodes)`), with the job."""
        if self._attempt or self._ended:
            raise InvalidRequest("a group is preselected before the consensus starts")
        self_id = self._ctx.self_id
        if nodes is None:
            group = select_group(self._ctx.rng, self_id, self.candidates, self.needed)
            assert group is not None  # no broken links yet, and enough candidates
        else:
            group = tuple(sorted(set(nodes)))
            if len(group) != self.needed or self_id not in group:
                raise InvalidRequest(f"a group of {self.needed} with the master is needed")
            if not set(group) <= self.candidates:
                raise InvalidRequest("a preselected group holds a node that cannot take part")
        self._group = group
        self._attempt = 1
        return GroupSelected(group, 1)

    def start(self, request: object, to: Iterable[NodeId] | None = None) -> list[Effect]:
        """The master's own access check (at the pinned block) and `request` (the owner's
        initialising message, which carries an AccessRequest with that block) to every other
        candidate, or to those of `to` only (the others stay unasked)."""
        self_id = self._ctx.self_id
        asked = self.candidates if to is None else self.candidates & frozenset(to)
        self._unasked = set(self.candidates - asked - {self_id})
        self._pending -= self._unasked
        effects: list[Effect] = [
            CheckAccess(self._session_id, self._requester, self._key_id, self.block)
        ]
        effects += [Send(node, request) for node in sorted(asked) if node != self_id]
        return effects

    def on_own_access(self, allowed: bool) -> Decision:
        """The answer of the master's own access policy; a refusal is final."""
        self_id = self._ctx.self_id
        if self._ended or self_id not in self._pending:
            return UNDECIDED
        self._pending.discard(self_id)
        if not allowed:
            self._denied.add(self_id)
            return self._fail(self._denial())
        self._allowed.add(self_id)
        return self._decide()

    def on_response(self, sender: NodeId, response: ConsensusResponse) -> Decision:
        """A candidate's answer."""
        if self._ended:
            return UNDECIDED
        if sender == self._ctx.self_id or sender not in self.candidates or sender in self._unasked:
            return self._fail(
                ProtocolViolation(short(sender), "answered an access request it was not sent")
            )
        if sender in self._lost:
            return UNDECIDED
        if sender not in self._pending:
            if (sender in self._allowed) == response.allowed:
                return UNDECIDED  # the same answer again
            return self._fail(
                ProtocolViolation(short(sender), "answered the access request twice, differently")
            )
        self._pending.discard(sender)
        (self._allowed if response.allowed else self._denied).add(sender)
        if not response.allowed and self._group is not None and sender in self._group:
            self._group = None  # a preselected member refused: the group cannot run
        return self._decide()

    def on_node_lost(
        self, node: NodeId, why: str = "disconnected", keep_group: bool = False
    ) -> Decision:
        """`node` can no longer take part (disconnected, reported an error, failed its job).
        If it was in the running group, the next group is selected when enough allowed nodes
        remain; `keep_group` keeps the running group (the owner has the node's part of the
        job already and needs nothing more from it)."""
        if (
            self._ended
            or node == self._ctx.self_id
            or node not in self.candidates
            or node in self._lost
            or node in self._denied
            or node in self._unasked
        ):
            return UNDECIDED
        self._lost.add(node)
        self._pending.discard(node)
        self._allowed.discard(node)
        if self._group is not None and node in self._group and not keep_group:
            self._group = None
        self._losses.append(f"node {short(node)} {why[:MAX_LOSS_TEXT]}")
        return self._decide()

    def on_slow(self) -> Decision:
        """The running group is slow to answer (a member may be silent): give it up and ask
        every candidate not asked yet, as a member's loss would (the slow members stay
        awaited and count if they answer). Undecided, keeping the group, when every
        candidate has been asked already."""
        if self._ended or self._group is None or not self._unasked:
            return UNDECIDED
        self._group = None
        others = tuple(sorted(self._unasked))
        self._pending |= self._unasked
        self._unasked = set()
        return AskOthers(others)

    def drop_group(self) -> Decision:
        """The owner gives the running group up (its job cannot be done by this group, e.g.
        a member allowed but lacks what the job needed): the next group is selected among
        the nodes that allowed, or the unasked are asked, by the usual rules."""
        if self._ended or self._group is None:
            return UNDECIDED
        self._group = None
        return self._decide()

    def on_link_broken(self, reporter: NodeId, node: NodeId, why: str = "") -> Decision:
        """`reporter` lost its connection to `node` (two distinct candidates). Neither is lost:
        the pair is recorded, and when the running group holds both, the next group is
        selected among the allowed nodes so that it holds no broken pair. A link to the master
        loses the other end (the master is in every group). ConsensusFailed when no group of
        `needed` can avoid the broken links any more."""
        self_id = self._ctx.self_id
        if self._ended or reporter == node:
            return UNDECIDED
        if self_id in (reporter, node):
            other = node if reporter == self_id else reporter
            return self.on_node_lost(other, why or f"lost its link to {short(self_id)}")
        if reporter not in self.candidates or node not in self.candidates:
            return UNDECIDED
        pair = frozenset((reporter, node))
        if pair in self._broken:
            return UNDECIDED
        self._broken.add(pair)
        if self._group is not None and pair <= set(self._group):
            self._group = None
        what = why or f"lost its link to {short(node)}"
        self._losses.append(f"node {short(reporter)} {what[:MAX_LOSS_TEXT]}")
        return self._decide()

    def completion(self) -> list[Effect]:
        """End the consensus well: tell every other candidate still taking part."""
        self._ended = True
        done = ConsensusCompleted(self._session_id)
        return [Send(node, done) for node in sorted(self.in_play) if node != self._ctx.self_id]

    def timeout_error(self) -> SecretStoreError:
        """What to fail with when the session times out before a group was selected."""
        silent = ", ".join(short(node) for node in sorted(self._pending)) or "none"
        return ConsensusUnreachable(
            f"no consensus in time: {len(self._allowed)} of the {self.needed} nodes needed "
            f"allowed access; still silent: {silent}"
        )

    # --- internals --------------------------------------------------------------------------
    def _fail(self, error: SecretStoreError) -> ConsensusFailed:
        self._ended = True
        self._group = None
        return ConsensusFailed(error)

    def _denial(self) -> AccessDenied:
        """Names the nodes that refused: for the log; the requester sees only "Access
        denied" (http/errors.py)."""
        refused = ", ".join(short(node) for node in sorted(self._denied))
        return AccessDenied(f"access denied (refused by node {refused})")

    def _decide(self) -> Decision:
        # every loss so far, not only the last: a node lost for waiting on another names it
        context = "".join(f"{loss}; " for loss in self._losses)
        if len(self.candidates) - len(self._denied) < self.needed:
            return self._fail(self._denial())
        if self._group is not None:
            return UNDECIDED
        self_id = self._ctx.self_id
        if self_id in self._allowed and len(self._allowed) >= self.needed:
            group = select_group(self._ctx.rng, self_id, self._allowed, self.needed, self._broken)
            if group is not None:
                self._group = group
                self._attempt += 1
                return GroupSelected(group, self._attempt)
        if self._unasked and len(self._allowed) + len(self._pending) < self.needed:
            others = tuple(sorted(self._unasked))
            self._pending |= self._unasked
            self._unasked = set()
            return AskOthers(others)
        if len(self._allowed) + len(self._pending) < self.needed:
            return self._fail(
                ConsensusUnreachable(
                    f"{context}{len(self._allowed)} nodes allow access and "
                    f"{len(self._pending)} have yet to answer; {self.needed} are needed"
                )
            )
        hopeful = self._allowed | self._pending
        if self._broken and not group_exists(self_id, hopeful, self.needed, self._broken):
            return self._fail(
                ConsensusUnreachable(
                    f"{context}no group of {self.needed} of the {len(hopeful)} nodes that "
                    f"allow access or have yet to answer avoids the broken links "
                    f"{describe_links(self._broken)}"
                )
            )
        return UNDECIDED


# --- slave side --------------------------------------------------------------------------


class AccessInit(Protocol):
    """An initialising message that carries an access request (decryption, signing)."""

    @property
    def session_id(self) -> SessionId: ...

    @property
    def key_id(self) -> ServerKeyId: ...

    @property
    def access(self) -> AccessRequest: ...


class AccessCheck:
    """Slave side: this node's own decision on an access request the master forwarded.

    Construction validates that this node holds the requested version of the key, that the
    master holds it too, and that the requester's signature recovers (raising
    ServerKeyNotFound, ProtocolViolation or InvalidRequest; a slave factory that lets them
    propagate makes the core answer the master with a SessionError, which the master counts
    as a lost candidate). `start` asks the access policy; `on_access_checked` answers.
    """

    def __init__(
        self,
        ctx: SessionContext,
        session_id: SessionId,
        master: NodeId,
        *,
        key_id: ServerKeyId,
        request: AccessRequest,
        share: KeyShare,
    ) -> None:
        self.version = select_version(share, key_id, ctx.self_id, request.version)
        if self.version.id_number(master) is None:
            raise ProtocolViolation(short(master), "asked for access to a key version it lacks")
        self.requester = access_requester(request, key_id)
        self._block = request.block
        self._session_id = session_id
        self._master = master
        self._key_id = key_id
        #: None until the access policy answered
        self.allowed: bool | None = None

    @classmethod
    def of(
        cls, ctx: SessionContext, master: NodeId, message: AccessInit, share: KeyShare
    ) -> AccessCheck:
        """The check for the initialising message of a session that starts with access."""
        return cls(
            ctx,
            message.session_id,
            master,
            key_id=message.key_id,
            request=message.access,
            share=share,
        )

    @property
    def block(self) -> BlockRef | None:
        """The chain block the master pinned for this session's access decisions."""
        return self._block

    def start(self) -> list[Effect]:
        return [CheckAccess(self._session_id, self.requester.address, self._key_id, self._block)]

    def on_access_checked(self, allowed: bool) -> list[Effect]:
        """Record the policy's answer and send it to the master (once)."""
        if not self.decide(allowed):
            return []
        return [Send(self._master, ConsensusResponse(self._session_id, allowed))]

    def decide(self, allowed: bool) -> bool:
        """Record the policy's answer without sending it (the owner answers with its job);
        False when it was recorded already."""
        if self.allowed is not None:
            return False
        self.allowed = allowed
        return True


# --- group selection ---------------------------------------------------------------------

#: How many partial groups a search for a group that avoids broken links may extend before
#: it gives up (a bound on the time one decision takes, whatever the links).
GROUP_SEARCH_STEPS: Final = 100_000


def select_group(
    rng: Rng,
    master: NodeId,
    pool: Iterable[NodeId],
    needed: int,
    broken: Iterable[frozenset[NodeId]] = (),
) -> tuple[NodeId, ...] | None:
    """A random group (ascending node ids) of `needed` nodes of `pool`, the master among
    them, that holds no pair of `broken`; None when there is none (or none is found within
    GROUP_SEARCH_STEPS). Without broken links among the pool it is a uniform choice of the
    others; with them, a depth-first search in a random order of the nodes."""
    members = set(pool) | {master}
    others = sorted(members - {master})
    pairs = [pair for pair in broken if pair <= members]
    if not pairs:
        chosen = random_sample(rng, others, needed - 1)
        return tuple(sorted([master, *chosen]))
    order = random_sample(rng, others, len(others))
    found = _search(master, order, needed, pairs)
    return None if found is None else tuple(sorted(found))


def group_exists(
    master: NodeId, pool: Iterable[NodeId], needed: int, broken: Iterable[frozenset[NodeId]]
) -> bool:
    """Whether `pool` holds a group of `needed` with the master that avoids `broken`."""
    members = set(pool) | {master}
    pairs = [pair for pair in broken if pair <= members]
    return _search(master, sorted(members - {master}), needed, pairs) is not None


def max_attempts(holders: int) -> int:
    """The most groups one consensus over `holders` candidates can select: the first, then
    one per lost node (the master is never lost) or newly broken link between two others (a
    link to the master loses the other end): ``1 + holders·(holders-1)/2``."""
    return 1 + holders * (holders - 1) // 2


def describe_links(broken: Iterable[frozenset[NodeId]]) -> str:
    """The broken links as "a–b, c–d" in short node ids (for errors)."""
    links = sorted(tuple(sorted(short(node) for node in pair)) for pair in broken)
    return ", ".join(f"{a}–{b}" for a, b in links) or "none"


def _search(
    master: NodeId, order: list[NodeId], needed: int, pairs: list[frozenset[NodeId]]
) -> list[NodeId] | None:
    if needed > len(order) + 1:
        return None
    conflicts: dict[NodeId, set[NodeId]] = {}
    for pair in pairs:
        a, b = tuple(pair)
        conflicts.setdefault(a, set()).add(b)
        conflicts.setdefault(b, set()).add(a)
    candidates = [node for node in order if master not in conflicts.get(node, ())]
    steps = 0
    chosen: list[NodeId] = [master]

    def extend(start: int) -> bool:
        nonlocal steps
        if len(chosen) == needed:
            return True
        steps += 1
        if steps > GROUP_SEARCH_STEPS:
            return False
        for i in range(start, len(candidates)):
            if len(chosen) + len(candidates) - i < needed:
                return False
            node = candidates[i]
            if conflicts.get(node, set()).isdisjoint(chosen):
                chosen.append(node)
                if extend(i + 1):
                    return True
                chosen.pop()
        return False

    return list(chosen) if extend(0) else None


# --- helpers -----------------------------------------------------------------------------


def random_below(rng: Rng, bound: int) -> int:
    """A uniform integer in [0, bound) (rejection sampling over 64-bit draws)."""
    if bound < 1:
        raise InvalidRequest("the bound of a random choice must be positive")
    span = 1 << 64
    limit = span - span % bound
    while True:
        value = int.from_bytes(rng.random_bytes(8), "big")
        if value < limit:
            return value % bound


def random_sample(rng: Rng, items: Iterable[NodeId], count: int) -> list[NodeId]:
    """`count` distinct items chosen uniformly (partial Fisher-Yates); deterministic for a
    given rng state and item order."""
    pool = list(items)
    if not 0 <= count <= len(pool):
        raise InvalidRequest(f"cannot choose {count} of {len(pool)} nodes")
    for i in range(count):
        j = i + random_below(rng, len(pool) - i)
        pool[i], pool[j] = pool[j], pool[i]
    return pool[:count]
