"""Who asked, as each node establishes it for itself: requester proofs and bound requests.

Every node — master and slaves alike — calls these on the request it was handed, with its own
policy (`SessionContext.require_bound_requests`); none takes another node's word.

- `requester_of(proof, key_id)`: the requester a `RequesterProof` proves (InvalidRequest when
  it proves nothing). A service request's requester is the one its origin names: the node
  read the request from the contract before the session was created (sessions/origin.py).
- `author_of(proof, key_id)`: the author of a generation: the signer, or the contract's
  requester account of a service request (with no Requester: a contract names an account).
- `check_binding(ctx, requester, bound_signature, operation=, key_id=, payload=)`: the optional
  bound signature (crypto/bound.py) must be the same requester's signature over exactly this
  request; without one, a node whose policy requires bound requests refuses
  (UnboundRequest). Both refusals are HTTP 400 on the master.
"""

from __future__ import annotations

from typing import Final

from secretstore.crypto.bound import BoundOperation, bound_signer_matches
from secretstore.errors import CryptoError, InvalidRequest, UnboundRequest
from secretstore.sessions.base import SessionContext
from secretstore.sessions.consensus import Requester, origin_requester, recover_requester_of
from secretstore.types import Address, ServerKeyId
from secretstore.wire.requester import ProofKind, RequesterProof, ServiceOrigin

#: What a node that requires bound requests answers to Parity's form.
UNBOUND_REFUSAL: Final = (
    "this key server requires a bound request: the requester's signature over the whole "
    "request (operation, key id and payload), not only over the key id"
)


def requester_of(proof: RequesterProof, key_id: ServerKeyId) -> Requester:
    """The requester `proof` proves for `key_id`; InvalidRequest if it proves nothing."""
    if proof.kind == ProofKind.REQUESTER_SIGNATURE:
        return recover_requester_of(proof.payload, key_id)
    origin = ServiceOrigin.of(proof)
    if origin is not None:
        return origin_requester(origin)
    raise InvalidRequest(f"unknown requester proof kind {proof.kind}")  # pragma: no cover


def author_of(proof: RequesterProof, key_id: ServerKeyId) -> tuple[Address, Requester | None]:
    """The author `proof` proves, and the Requester behind it when it is a signer (None for a
    service request: the contract names an account, and its transaction bound the request)."""
    origin = ServiceOrigin.of(proof)
    if origin is None:
        requester = requester_of(proof, key_id)
        return requester.address, requester
    if len(origin.requester) == 20:
        return Address(origin.requester), None
    return origin_requester(origin).address, None


def check_binding(
    ctx: SessionContext,
    requester: Requester,
    bound_signature: bytes | None,
    *,
    operation: BoundOperation,
    key_id: ServerKeyId,
    payload: bytes,
) -> None:
    """Refuse a request whose bound signature is not `requester`'s over exactly this request
    (InvalidRequest), or that has none while this node requires one (UnboundRequest)."""
    if bound_signature is None:
        if ctx.require_bound_requests:
            raise UnboundRequest(UNBOUND_REFUSAL)
        return
    try:
        matches = bound_signer_matches(
            bound_signature, requester.address, operation, key_id, payload
        )
    except CryptoError as exc:
        raise InvalidRequest(f"the bound request signature is not usable: {exc}") from None
    if not matches:
        raise InvalidRequest(
            "the bound request signature is not the requester's signature over this request"
        )
