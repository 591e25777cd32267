"""Receipts: a node's signature over the facts of a release, and their check (pure).

A node's receipt of `facts` is its recoverable ECDSA signature (node key, RFC 6979) over
`receipt_digest(node, facts)`: it commits to the operation, the key id, the session, the
master, the requester, the participants, the key version, the message hash of a signing and
the chain block. Every participant signs its own and sends it to the master with its part of
the release; the master checks each against its own view of the facts and hands the
requester all of them (`ReleaseReceipts`, one signature per participant in the participants'
order). Since every receipt covers the whole participant list, the master can neither drop
a participant's receipt nor name other participants without breaking the others' receipts.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from secretstore.audit.model import (
    SIGNATURE_LENGTH,
    AuditFacts,
    Operation,
    decode_facts_at,
    encode_facts,
    entry_digest,
    receipt_digest,
)
from secretstore.crypto.curve import Point
from secretstore.crypto.keys import KeyPair, recover_public, sign_recoverable
from secretstore.errors import CorruptRecord, CryptoError, ReceiptVerificationError
from secretstore.types import Address, NodeId


class NodeSigner:
    """Signs this node's receipts and audit entries with its node key. repr() hides the key."""

    __slots__ = ("_key",)

    def __init__(self, key: KeyPair) -> None:
        self._key = key

    @property
    def node_id(self) -> NodeId:
        return self._key.node_id

    def receipt(self, facts: AuditFacts) -> bytes:
        """This node's receipt of `facts` (65 bytes r‖s‖v)."""
        return sign_recoverable(self._key.secret, receipt_digest(self.node_id, facts))

    def entry(self, body: bytes) -> bytes:
        """This node's signature of an entry's body (65 bytes r‖s‖v)."""
        return sign_recoverable(self._key.secret, entry_digest(body))

    def __repr__(self) -> str:
        return f"NodeSigner({self.node_id[:4].hex()}…)"


def signer_of(signature: bytes, digest: bytes) -> NodeId | None:
    """The node id a signature recovers to, or None when it recovers to none."""
    if len(signature) != SIGNATURE_LENGTH:
        return None
    try:
        return NodeId(recover_public(signature, digest).to_bytes())
    except CryptoError:
        return None


def receipt_holds(node: NodeId, facts: AuditFacts, receipt: bytes | None) -> bool:
    """Whether `receipt` is `node`'s receipt of exactly `facts`."""
    if receipt is None:
        return False
    return signer_of(receipt, receipt_digest(node, facts)) == node


@dataclass(frozen=True, slots=True)
class ReleaseReceipts:
    """Every participant's receipt of one release: `signatures[i]` is the receipt of
    `facts.participants[i]`."""

    facts: AuditFacts
    signatures: tuple[bytes, ...]

    def __post_init__(self) -> None:
        if len(self.signatures) != len(self.facts.participants):
            raise ValueError("one receipt per participant")

    def receipt_of(self, node: NodeId) -> bytes | None:
        for participant, signature in zip(self.facts.participants, self.signatures, strict=True):
            if participant == node:
                return signature
        return None


def encode_receipts(receipts: ReleaseReceipts) -> bytes:
    """The receipts as bytes (what a delegate relays to its origin, wire/delegation.py): the
    facts as the receipts sign them, then every participant's signature in order."""
    return encode_facts(receipts.facts) + b"".join(receipts.signatures)


def decode_receipts(data: bytes) -> ReleaseReceipts:
    """The receipts `encode_receipts` wrote; CorruptRecord saying what is wrong otherwise
    (their signatures are not checked here: `verify_release_receipts` does)."""
    facts, end = decode_facts_at(data)
    count = len(facts.participants)
    if len(data) - end != count * SIGNATURE_LENGTH:
        raise CorruptRecord(
            f"release receipts hold {len(data) - end} bytes of signatures for {count} "
            f"participants, not {count * SIGNATURE_LENGTH}"
        )
    signatures = tuple(
        data[at : at + SIGNATURE_LENGTH] for at in range(end, len(data), SIGNATURE_LENGTH)
    )
    return ReleaseReceipts(facts, signatures)


def verify_release_receipts(
    receipts: ReleaseReceipts,
    *,
    operation: Operation,
    key_id: bytes,
    requester: Address,
    message_hash: bytes | None = None,
    nodes: Iterable[NodeId] | None = None,
    master: NodeId | None = None,
    participants: Iterable[NodeId] | None = None,
    min_participants: int = 1,
) -> ReleaseReceipts:
    """`receipts` when they are the receipts of this very release, each by its participant;
    ReceiptVerificationError naming the node at fault (or the answering key server, for facts
    common to all) otherwise.

    The facts must name `operation`, `key_id`, `requester` and, for a signing, `message_hash`;
    `nodes`: the cluster's node ids as the requester knows them (every participant must be one;
    without them a key server could sign receipts of nodes it made up); `master`: the node
    that answered, when known; `participants`: the nodes that must have taken part (e.g. those
    the shadow retrieval proofs name); `min_participants`: at least this many (t+1)."""
    facts = receipts.facts
    expected = (
        ("operation", facts.operation, operation),
        ("key id", facts.key_id, bytes(key_id)),
        ("requester", facts.requester, requester),
        ("message hash", facts.message_hash, None if message_hash is None else bytes(message_hash)),
    )
    for what, got, want in expected:
        if got != want:
            raise ReceiptVerificationError(None, f"the receipts name another {what}")
    if master is not None and facts.master != master:
        raise ReceiptVerificationError(None, "the receipts name another master")
    if participants is not None:
        named = set(facts.participants)
        for node in sorted(set(participants)):
            if node not in named:
                raise ReceiptVerificationError("0x" + node.hex(), "took part but has no receipt")
        if named != set(participants):
            extra = sorted(named - set(participants))[0]
            raise ReceiptVerificationError("0x" + extra.hex(), "has a receipt but took no part")
    if len(facts.participants) < min_participants:
        raise ReceiptVerificationError(
            None,
            f"{len(facts.participants)} participants have receipts, {min_participants} needed",
        )
    known = None if nodes is None else frozenset(nodes)
    for node, signature in zip(facts.participants, receipts.signatures, strict=True):
        if known is not None and node not in known:
            raise ReceiptVerificationError("0x" + node.hex(), "is not a node of the cluster")
        try:
            Point.from_bytes(node)
        except CryptoError:
            raise ReceiptVerificationError("0x" + node.hex(), "is not a node id") from None
        if not receipt_holds(node, facts, signature):
            raise ReceiptVerificationError(
                "0x" + node.hex(), "its receipt is not its signature of these facts"
            )
    return receipts
