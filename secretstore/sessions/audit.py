"""What sessions do for the audit log: sign their receipt, ask for the entry, check others'.

The one recording API of every session, those of the key lifecycle included (node set
change, refresh, delete): build the `AuditFacts` of what this node takes part in and put
`record(ctx, facts)` before the effect that releases or commits it (the Send of a share, a
Persist, a master's Finish). On a node whose context has no audit signer nothing is recorded
and no receipt is made. A master of a release checks every participant's receipt against
its own view of the facts (`receipt_problem`) and hands them all on with its own
(`master_record`).
"""

from __future__ import annotations

from collections.abc import Mapping

from secretstore.audit.model import AuditFacts
from secretstore.audit.receipts import ReleaseReceipts, receipt_holds
from secretstore.sessions.base import Effect, Record, SessionContext
from secretstore.types import NodeId


def record(ctx: SessionContext, facts: AuditFacts) -> tuple[list[Effect], bytes | None]:
    """The Record effect of `facts` and this node's receipt of them (to send to the
    master); ([], None) on a node without an audit log."""
    signer = ctx.audit
    if signer is None:
        return [], None
    receipt = signer.receipt(facts)
    return [Record(facts.session_id, facts, receipt)], receipt


def master_record(
    ctx: SessionContext, facts: AuditFacts, receipts: Mapping[NodeId, bytes | None]
) -> list[Effect]:
    """The master's Record of a release: its own entry, and every participant's receipt
    (`receipts`: the others', checked already) for the requester. The entry is always
    recorded; the receipts go with it only when every participant's is there."""
    signer = ctx.audit
    if signer is None:
        return []
    own = signer.receipt(facts)
    signatures = [own if node == ctx.self_id else receipts.get(node) for node in facts.participants]
    collected = None
    if all(signature is not None for signature in signatures):
        collected = ReleaseReceipts(facts, tuple(s for s in signatures if s is not None))
    return [Record(facts.session_id, facts, own, collected)]


def receipt_problem(
    ctx: SessionContext, node: NodeId, facts: AuditFacts, receipt: bytes | None
) -> str | None:
    """What is wrong with `node`'s receipt of `facts` as this master sees them, or None
    (always None on a node without an audit log: it asks for no receipts)."""
    if ctx.audit is None:
        return None
    if receipt is None:
        return "sent no receipt of its release"
    if not receipt_holds(node, facts, receipt):
        return "sent a receipt that is not its signature of this release"
    return None
