"""One key's share redistribution inside a node set change: a dealer's part, a target's part.

Wong–Wang–Wing verifiable redistribution (crypto/redistribution.py), threshold unchanged:
each of the t+1 dealers i draws g_i of degree t with g_i(0) = s_i (its share of the chosen
version), commits to it (C_ik = c_ik·G) and sends g_i(x'_j) to every node j of the new set.
A target checks every value against its dealer's commitments (a bad one names the dealer),
checks Σ λ_i·C_i0 = Y (the dealers dealt their real shares), and stores
s'_j = Σ λ_i·g_i(x'_j) as a new version listing exactly the new set.

Pure: `deal` returns the messages, `KeyReceipt` collects a target's messages and builds the
record to persist; faults raise `KeyFault` naming the node(s) at fault.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from secretstore.crypto.curve import Point, Scalar, scalar_sum
from secretstore.crypto.redistribution import (
    deal_subshares,
    find_faulty_subshare_senders,
    redistributed_commitments,
    verify_redistributed_public,
)
from secretstore.crypto.rng import Rng
from secretstore.crypto.shamir import evaluate_point_polynomial, lagrange_coefficients
from secretstore.errors import InvalidKeyShare, ProtocolViolation, SecretStoreError
from secretstore.sessions.base import short
from secretstore.storage.model import KeyShare, KeyShareVersion
from secretstore.types import NodeId, ServerKeyId, SessionId
from secretstore.wire.admin import KeyCommon, KeyDeal, KeySubshare, NodeNumber

#: How much of a peer's fault text goes into an error.
MAX_FAULT_TEXT = 300


class KeyFault(SecretStoreError):
    """A node sent something wrong for one key; `culprits` are the nodes to blame (several
    when it cannot be told which of them)."""

    def __init__(self, key_id: ServerKeyId, culprits: Iterable[NodeId], what: str) -> None:
        self.key_id = key_id
        self.culprits = tuple(sorted(set(culprits)))
        self.what = what[:MAX_FAULT_TEXT]
        names = ", ".join(short(node) for node in self.culprits)
        super().__init__(f"node {names}: {self.what} (key 0x{key_id.hex()})")

    def violation(self) -> ProtocolViolation:
        names = ", ".join(short(node) for node in self.culprits)
        return ProtocolViolation(names, f"{self.what} (key 0x{self.key_id.hex()})")


def common_of(share: KeyShare) -> KeyCommon:
    return KeyCommon(
        share.author, share.threshold, share.public, share.common_point, share.encrypted_point
    )


def _numbers(pairs: Iterable[NodeNumber]) -> dict[NodeId, Scalar]:
    return {pair.node: pair.number for pair in pairs}


def deal(
    self_id: NodeId,
    session_id: SessionId,
    request: KeyDeal,
    *,
    master: NodeId,
    share: KeyShare | None,
    new_set: frozenset[NodeId],
    rng: Rng,
) -> list[tuple[NodeId, KeySubshare]]:
    """This dealer's subshare for every node of the new set (itself included). Raises
    KeyFault naming the master for a request that does not fit this node's copy."""

    def bad(what: str) -> KeyFault:
        return KeyFault(request.key_id, [master], what)

    version = share.version(request.version) if share is not None else None
    if share is None or version is None or version.id_number(self_id) is None:
        raise bad("asked a node to deal a key version it does not hold")
    t = share.threshold
    dealers = request.dealers
    if len(dealers) != t + 1 or list(dealers) != sorted(set(dealers)):
        raise bad(f"named {len(dealers)} dealers (not {t + 1} distinct, ascending)")
    old = version.id_numbers_map()
    if self_id not in dealers or any(node not in old for node in dealers):
        raise bad("named dealers outside the key version, or not this node")
    fresh = _numbers(request.fresh)
    if len(fresh) != len(request.fresh) or not set(fresh) <= new_set or not fresh:
        raise bad("gave fresh id numbers to nodes outside the new set")
    kept = new_set - set(fresh)
    if any(node not in old for node in kept):
        raise bad("kept the id number of a node that does not hold the key version")
    new_numbers = {node: old[node] for node in kept} | fresh
    values = [number.to_int() for number in new_numbers.values()]
    if 0 in values or len(set(values)) != len(values):
        raise bad("gave id numbers that are zero or not distinct")
    dealing = deal_subshares(version.secret_share, t, rng)
    common = common_of(share)
    dealer_numbers = tuple(NodeNumber(node, old[node]) for node in dealers)
    new_pairs = tuple(NodeNumber(node, new_numbers[node]) for node in sorted(new_numbers))
    return [
        (
            node,
            KeySubshare(
                session_id,
                request.key_id,
                request.version,
                dealing.value_for(new_numbers[node]),
                dealing.commitments,
                common,
                dealer_numbers,
                new_pairs,
                version.commitments,
            ),
        )
        for node in sorted(new_numbers)
    ]


@dataclass(frozen=True, slots=True)
class NewShare:
    """What a target persists and reports: its record with the new version appended."""

    record: KeyShare
    create: bool
    version: KeyShareVersion
    share_public: Point


@dataclass(slots=True)
class KeyReceipt:
    """A target's collection of one key's subshares (one per dealer). `opener`: the dealer
    whose subshare came first and named the dealers; `master`: the change's master, which
    told each dealer what to deal (the dealers, the version, the new id numbers), so it is
    named with the dealers when they disagree on that."""

    key_id: ServerKeyId
    dealers: tuple[NodeId, ...]
    opener: NodeId
    master: NodeId
    received: dict[NodeId, KeySubshare] = field(default_factory=dict)

    @classmethod
    def start(
        cls,
        self_id: NodeId,
        sender: NodeId,
        message: KeySubshare,
        new_set: frozenset[NodeId],
        master: NodeId,
    ) -> KeyReceipt:
        """The receipt a first subshare opens; KeyFault naming the sender (and the master,
        for what it told the sender to deal) for a message that cannot be right whatever the
        others send."""
        dealers = tuple(pair.node for pair in message.dealer_numbers)
        if list(dealers) != sorted(set(dealers)) or sender not in dealers:
            raise KeyFault(message.key_id, [sender], "sent a subshare it is not a dealer of")
        if len(dealers) != message.common.threshold + 1:
            raise KeyFault(message.key_id, [sender], "named the wrong number of dealers")
        new_nodes = [pair.node for pair in message.new_numbers]
        if new_nodes != sorted(new_set) or self_id not in new_set:
            raise KeyFault(
                message.key_id, [sender, master], "sent a new version that is not the new set"
            )
        return cls(message.key_id, dealers, sender, master)

    def add(self, sender: NodeId, message: KeySubshare) -> bool:
        """Keep a dealer's subshare; True once every dealer's is in. KeyFault for a second,
        different subshare, and (naming it and the opener, one of which lies) for a sender
        outside the dealers the first subshare named."""
        if sender not in self.dealers:  # one of them lies about who deals
            culprits = [self.opener, sender, self.master]
            raise KeyFault(self.key_id, culprits, "disagree on the dealers of the key")
        known = self.received.get(sender)
        if known is not None and known != message:
            raise KeyFault(self.key_id, [sender], "sent two different subshares")
        self.received[sender] = message
        return len(self.received) == len(self.dealers)

    def complete(self, self_id: NodeId, own: KeyShare | None) -> NewShare:
        """Check everything and build the new record (every dealer's subshare is in)."""
        key_id = self.key_id
        first = self.received[self.dealers[0]]
        for dealer in self.dealers[1:]:
            other = self.received[dealer]
            if _plan_of(other) != _plan_of(first):
                culprits = [self.dealers[0], dealer]
                if _dealing_of(other) != _dealing_of(first):
                    culprits.append(self.master)  # it told them what to deal
                raise KeyFault(key_id, culprits, "dealers sent different key data")
        common = first.common
        t = common.threshold
        old = _numbers(first.dealer_numbers)
        new = _numbers(first.new_numbers)
        _check_against_own(self, self_id, own, first, old=old, new=new)
        commitments = {dealer: self.received[dealer].commitments for dealer in self.dealers}
        values = {dealer: self.received[dealer].value for dealer in self.dealers}
        faulty = find_faulty_subshare_senders(t, new[self_id], values, commitments)
        if faulty:
            raise KeyFault(
                key_id, faulty[:1], "sent a subshare that does not match its commitments"
            )
        version_commitments = _version_commitments(self, own, first)
        if version_commitments is not None:
            for dealer in self.dealers:
                share_public = evaluate_point_polynomial(version_commitments, old[dealer])
                if commitments[dealer][0] != share_public:
                    raise KeyFault(
                        key_id, [dealer], "dealt from a share that is not its share of the key"
                    )
        old_numbers = [old[dealer] for dealer in self.dealers]
        ordered = [commitments[dealer] for dealer in self.dealers]
        if not verify_redistributed_public(common.public, old_numbers, ordered):
            raise KeyFault(
                key_id,
                self.dealers,
                "dealt from shares that do not combine to the key (one of these dealers)",
            )
        weights = lagrange_coefficients(old_numbers)
        secret_share = scalar_sum(w * values[d] for w, d in zip(weights, self.dealers, strict=True))
        new_commitments = redistributed_commitments(old_numbers, ordered)
        try:
            version = KeyShareVersion.create(new, secret_share, new_commitments)
            if own is None:
                record = KeyShare(
                    common.author,
                    t,
                    common.public,
                    common.common_point,
                    common.encrypted_point,
                    (version,),
                )
            else:
                if own.common_point is None and common.common_point is not None:
                    if common.encrypted_point is None:
                        raise InvalidKeyShare("a common point without an encrypted point")
                    own = own.with_document_key(common.common_point, common.encrypted_point)
                record = own.with_version(version)
        except (InvalidKeyShare, SecretStoreError) as exc:
            raise KeyFault(
                key_id, self.dealers, f"sent a new version that cannot be stored: {exc}"
            ) from None
        return NewShare(record, own is None, version, Point.base_mul(secret_share))


def _dealing_of(message: KeySubshare) -> tuple[object, ...]:
    """What the master told every dealer of a key alike (KeyDeal)."""
    return (message.version, message.dealer_numbers, message.new_numbers)


def _plan_of(message: KeySubshare) -> tuple[object, ...]:
    """What every dealer of a key sends alike."""
    return (
        message.version,
        message.common,
        message.dealer_numbers,
        message.new_numbers,
        message.version_commitments,
    )


def _version_commitments(
    receipt: KeyReceipt, own: KeyShare | None, first: KeySubshare
) -> tuple[Point, ...] | None:
    """The dealt version's commitments: the dealers' (checked against this node's copy when it
    holds the version), else this node's copy, else None (a key without commitments)."""
    mine = own.version(first.version) if own is not None else None
    sent = first.version_commitments
    if mine is not None and mine.commitments is not None:
        if sent is not None and sent != mine.commitments:
            raise KeyFault(receipt.key_id, receipt.dealers, "dealers sent other commitments")
        return mine.commitments
    if sent is not None and (
        len(sent) != first.common.threshold + 1 or sent[0] != first.common.public
    ):
        raise KeyFault(receipt.key_id, receipt.dealers, "dealers sent commitments of another key")
    return sent


def _check_against_own(
    receipt: KeyReceipt,
    self_id: NodeId,
    own: KeyShare | None,
    first: KeySubshare,
    *,
    old: Mapping[NodeId, Scalar],
    new: Mapping[NodeId, Scalar],
) -> None:
    """A target that has a record of the key checks the dealers' data against it."""
    if own is None:
        return
    common = first.common
    dealers = receipt.dealers
    if (own.author, own.threshold, own.public) != (common.author, common.threshold, common.public):
        raise KeyFault(receipt.key_id, dealers, "dealers sent another author, threshold or public")
    if own.common_point is not None and (own.common_point, own.encrypted_point) != (
        common.common_point,
        common.encrypted_point,
    ):
        raise KeyFault(receipt.key_id, dealers, "dealers sent another document key")
    version = own.version(first.version)
    if version is None:
        return  # this node does not hold the dealt version: it gets a fresh id number
    mine = version.id_numbers_map()
    if any(mine.get(dealer) != number for dealer, number in old.items()):
        raise KeyFault(receipt.key_id, dealers, "dealers sent id numbers the version does not have")
    # a holder loses its id number only when every node gets a fresh one
    if (
        self_id in mine
        and new[self_id] != mine[self_id]
        and any(mine.get(node) == number for node, number in new.items())
    ):
        raise KeyFault(receipt.key_id, dealers, "dealers changed this node's id number")
