"""One node's share of many keys' redistributions inside an admin session (pure).

The node set change and the refresh both move keys by Wong–Wang–Wing redistribution
(share_change.py does one key): the master sends `KeyDeal` to a key's dealers, each dealer
sends a `KeySubshare` to every target, each target collects one subshare per dealer, checks
them and appends the new version, and every new holder reports `KeyMoved`. This class is a
node's bookkeeping of that across keys: which deals it has done, which subshares it collects,
which keys it has received. `new_set_of` says, per key, which nodes the new version lists
(the node set change: its new set; the refresh: the dealt version's own nodes). Faults raise
`KeyFault` naming the node at fault; `check_new_version` is the check of every new holder's
report that the master (and, in a refresh, every node) makes before a key counts as moved.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from secretstore.crypto.curve import ZERO, Point, Scalar
from secretstore.crypto.hashing import keccak256
from secretstore.crypto.rng import Rng
from secretstore.errors import ProtocolViolation
from secretstore.sessions.admin.plan import KeyPlan, KeyReader
from secretstore.sessions.admin.share_change import KeyFault, KeyReceipt, NewShare, deal
from secretstore.sessions.base import short
from secretstore.sessions.signing_common import locate_misfit, names, share_publics_fit
from secretstore.storage.model import KeyShare, version_hash
from secretstore.types import Hash256, NodeId, ServerKeyId, SessionId
from secretstore.wire.admin import KeyDeal, KeyMoved, KeySubshare

#: The most keys a target collects subshares for at once (bounds a peer's flood).
MAX_OPEN_RECEIPTS = 4096

#: (key id, the dealt version's hash, a reader of this node's share) -> the nodes the new
#: version lists
NewSetOf = Callable[[ServerKeyId, Hash256, Callable[[], KeyShare | None]], frozenset[NodeId]]


@dataclass(slots=True)
class KeyInFlight:
    """A master's state of one key it redistributes: its plan and the new holders' reports."""

    plan: KeyPlan
    moved: dict[NodeId, KeyMoved] = field(default_factory=dict)


class Redistribution:
    """What one node deals and receives of the keys an admin session moves."""

    def __init__(
        self,
        self_id: NodeId,
        session_id: SessionId,
        *,
        master: NodeId,
        keys: KeyReader,
        rng: Rng,
        new_set_of: NewSetOf,
    ) -> None:
        self.self_id = self_id
        self.session_id = session_id
        self.master = master
        self.keys = keys
        self.rng = rng
        self.new_set_of = new_set_of
        self._dealt: dict[ServerKeyId, KeyDeal] = {}
        self._receipts: dict[ServerKeyId, KeyReceipt] = {}
        self._received: set[ServerKeyId] = set()

    def received(self, key_id: ServerKeyId) -> bool:
        """Whether this node is done receiving `key_id` (or the key is done anyway)."""
        return key_id in self._received

    def receiving(self, key_id: ServerKeyId) -> bool:
        """Whether some subshare of `key_id` has come and others are still due."""
        return key_id in self._receipts

    def missing_dealers(self) -> frozenset[NodeId]:
        """The dealers whose subshares of a key this node has begun to receive are still
        missing."""
        return frozenset(
            dealer
            for receipt in self._receipts.values()
            for dealer in receipt.dealers
            if dealer not in receipt.received
        )

    def mark_received(self, key_id: ServerKeyId) -> None:
        """Late subshares of `key_id` are ignored from now on."""
        self._received.add(key_id)
        self._receipts.pop(key_id, None)

    def deal(self, sender: NodeId, request: KeyDeal) -> list[tuple[NodeId, KeySubshare]]:
        """This dealer's subshare for every target (itself included); nothing for the same
        request again. ProtocolViolation for a second, different request for one key;
        KeyFault naming the master for one that does not fit this node's copy."""
        known = self._dealt.get(request.key_id)
        if known is not None:
            if known == request:
                return []
            raise ProtocolViolation(short(sender), "asked to deal one key twice, differently")
        self._dealt[request.key_id] = request
        share = self.keys.get(request.key_id)
        return deal(
            self.self_id,
            self.session_id,
            request,
            master=self.master,
            share=share,
            new_set=self.new_set_of(request.key_id, request.version, lambda: share),
            rng=self.rng,
        )

    def receive(self, sender: NodeId, message: KeySubshare) -> NewShare | None:
        """Keep one subshare; once every dealer's is in, check them all and return the new
        record to persist (None before that, and for a key received already)."""
        key_id = message.key_id
        if key_id in self._received:
            return None  # late: this node has moved the key already
        new_set = self.new_set_of(key_id, message.version, lambda: self.keys.get(key_id))
        if self.self_id not in new_set:  # the sender's session has another new set
            raise KeyFault(
                key_id, [sender, self.master], "sent a subshare to a node outside the new set"
            )
        receipt = self._receipts.get(key_id)
        if receipt is None:
            if len(self._receipts) >= MAX_OPEN_RECEIPTS:
                raise KeyFault(key_id, [sender], "sent subshares of too many keys at once")
            receipt = KeyReceipt.start(self.self_id, sender, message, new_set, self.master)
            self._receipts[key_id] = receipt
        if not receipt.add(sender, message):
            return None
        del self._receipts[key_id]
        self._received.add(key_id)
        return receipt.complete(self.self_id, self.keys.get(key_id))

    def moved(self, key_id: ServerKeyId, new: NewShare) -> KeyMoved:
        """The report of a new version this node has written."""
        number = new.version.id_number(self.self_id)
        assert number is not None
        return KeyMoved(
            self.session_id,
            key_id,
            Hash256(new.version.hash),
            number,
            new.share_public,
            commitments_digest(new.version.commitments or ()),
        )


def commitments_digest(commitments: Iterable[Point]) -> Hash256:
    """keccak256 of the commitments' 64-byte encodings, in order."""
    return Hash256(keccak256(b"".join(point.to_bytes() for point in commitments)))


def check_new_version(
    key_id: ServerKeyId,
    threshold: int,
    public: Point,
    reports: Mapping[NodeId, KeyMoved],
    fresh: Iterable[tuple[NodeId, Scalar]] = (),
) -> None:
    """Every new holder reports the same new version, with the id numbers `fresh` gave; its
    hash is that of the reported id numbers; every holder stored the same commitments; and
    the new share publics lie on one polynomial of degree t through the key.
    ProtocolViolation naming the node(s) at fault otherwise."""
    hashes = {m.version for m in reports.values()}
    key = f"key 0x{key_id.hex()}"
    if len(hashes) != 1:
        raise ProtocolViolation(names(sorted(reports)), f"reported different versions of {key}")
    if len({m.commitments for m in reports.values()}) != 1:
        # a dealer told targets different commitments: their records would disagree
        raise ProtocolViolation(
            names(sorted(reports)), f"stored different commitments of the new version of {key}"
        )
    for node, number in fresh:
        if reports[node].number != number:
            raise ProtocolViolation(short(node), f"took another id number for {key}")
    pairs = [(node, m.number) for node, m in reports.items()]
    if len({m.number for m in reports.values()}) != len(pairs):
        raise ProtocolViolation(names(sorted(reports)), f"reported one id number twice ({key})")
    if version_hash(pairs) != next(iter(hashes)):
        raise ProtocolViolation(
            names(sorted(reports)), f"reported a version of {key} that their id numbers lack"
        )
    points = [(ZERO, public)] + [(m.number, m.share_public) for m in reports.values()]
    if not share_publics_fit(threshold, points):
        misfit = locate_misfit(
            threshold,
            public,
            {node: m.share_public for node, m in reports.items()},
            {node: m.number for node, m in reports.items()},
            sorted(reports),
        )
        blamed = short(misfit) if misfit is not None else names(sorted(reports))
        raise ProtocolViolation(blamed, f"holds a new share of {key} that does not fit the key")
