"""The receipts of a release on the requester's side: read them from an answer, check them.

Our key servers answer a shadow retrieval with a `receipts` field in the body, and a plain
retrieval or a signing with the X-Secretstore-Receipts header when the request carries that
header (docs/HTTP.md). Each participant of the release signed its own receipt, which names
the operation, the key, the requester, the session, the master, every participant and, for a
signing, the message hash (docs/AUDIT.md). `check_receipts` verifies them for this very
request: a receipt that is not its node's signature (forged by the answering node), a
participant without one (dropped), receipts of another request or of too few nodes raise
ReceiptVerificationError naming the node at fault. With the cluster's node ids (`nodes`) a
key server cannot pass off receipts of nodes it made up.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Generic, TypeVar

from secretstore.audit.jsonform import parse_receipts
from secretstore.audit.model import Operation
from secretstore.audit.receipts import ReleaseReceipts, verify_release_receipts
from secretstore.client import safejson
from secretstore.errors import InvalidEncoding, ReceiptVerificationError
from secretstore.types import Address, NodeId

T = TypeVar("T")

#: The body field of a shadow retrieval (after `proofs`).
RECEIPTS_FIELD = "receipts"
#: The request header that asks for the receipts header, and the response header itself.
RECEIPTS_HEADER = "X-Secretstore-Receipts"


@dataclass(frozen=True, slots=True)
class Released(Generic[T]):
    """What a release gave the requester, with the participants' checked receipts (None
    from a key server that sends none)."""

    value: T
    receipts: ReleaseReceipts | None


def receipts_from_header(headers: Mapping[str, str]) -> ReleaseReceipts | None:
    """The receipts of the X-Secretstore-Receipts header, None without one; InvalidEncoding
    for a header that does not parse."""
    raw = headers.get(RECEIPTS_HEADER)
    if raw is None:
        return None
    try:
        return parse_receipts(safejson.loads(raw.encode("utf-8")))
    except InvalidEncoding as exc:
        raise InvalidEncoding(f"{RECEIPTS_HEADER} header: {exc}") from exc


def check_receipts(
    receipts: ReleaseReceipts | None,
    *,
    operation: Operation,
    key_id: bytes,
    requester: Address,
    message_hash: bytes | None = None,
    nodes: Iterable[NodeId] | None = None,
    participants: Iterable[NodeId] | None = None,
    min_participants: int = 1,
    session_id: bytes | None = None,
    require: bool = False,
) -> ReleaseReceipts | None:
    """`receipts` checked for this release (see the module docstring); None when there are
    none and `require` is False. `session_id`: the session other parts of the answer name
    (the shadow retrieval proofs)."""
    if receipts is None:
        if require:
            raise ReceiptVerificationError(
                None, "the answer carries no receipts (a key server that does not send them)"
            )
        return None
    if session_id is not None and receipts.facts.session_id != bytes(session_id):
        raise ReceiptVerificationError(None, "the receipts are of another session")
    return verify_release_receipts(
        receipts,
        operation=operation,
        key_id=key_id,
        requester=requester,
        message_hash=message_hash,
        nodes=nodes,
        participants=participants,
        min_participants=min_participants,
    )
