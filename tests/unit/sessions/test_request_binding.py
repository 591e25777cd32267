"""Bound requests in the signing factories, fed by hand: master and slaves check the bound
signature themselves, each with its own policy; check_binding's rules on their own."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from secretstore.crypto.bound import BoundOperation, sign_bound_request
from secretstore.crypto.keys import KeyPair
from secretstore.crypto.rng import SeededRng
from secretstore.errors import InvalidRequest, UnboundRequest
from secretstore.sessions.base import Effect, Session, SessionContext
from secretstore.sessions.consensus import recover_requester_of
from secretstore.sessions.requester import check_binding
from secretstore.sessions.signing_ecdsa import SignEcdsa, join_ecdsa_signing, start_ecdsa_signing
from secretstore.sessions.signing_schnorr import (
    SignSchnorr,
    join_schnorr_signing,
    start_schnorr_signing,
)
from secretstore.types import MessageHash
from secretstore.wire.consensus import AccessRequest
from secretstore.wire.signing import EcdsaSigningRequest, SchnorrSigningRequest
from tests.unit.sessions.hand_feeding import sends
from tests.unit.sessions.signing_fixture import KEY_ID, MESSAGE, SID, Cluster, make_cluster

OTHER_HASH = MessageHash(b"\x43" * 32)
STRANGER = KeyPair.generate(SeededRng(b"binding stranger"))

KINDS: dict[str, tuple[Any, Any, Any, Any, BoundOperation]] = {
    "schnorr": (
        SignSchnorr,
        SchnorrSigningRequest,
        start_schnorr_signing,
        join_schnorr_signing,
        BoundOperation.SIGN_SCHNORR,
    ),
    "ecdsa": (
        SignEcdsa,
        EcdsaSigningRequest,
        start_ecdsa_signing,
        join_ecdsa_signing,
        BoundOperation.SIGN_ECDSA,
    ),
}


def bound(
    cluster: Cluster,
    operation: BoundOperation,
    message: bytes = MESSAGE,
    signer: KeyPair | None = None,
) -> bytes:
    key = signer if signer is not None else cluster.requester
    return sign_bound_request(key.secret, operation, KEY_ID, message)


def strict(ctx: SessionContext) -> SessionContext:
    return replace(ctx, require_bound_requests=True)


def start(
    kind: str, cluster: Cluster, ctx: SessionContext, bound_signature: bytes | None
) -> tuple[Session, list[Effect]]:
    request_cls, _, start_factory, _, _ = KINDS[kind]
    request = request_cls(KEY_ID, cluster.signature, MESSAGE, bound_signature=bound_signature)
    share = cluster.key.shares[cluster.ids[0]]
    return start_factory(ctx, SID, request, share, frozenset(cluster.ids))


def join(
    kind: str, cluster: Cluster, ctx: SessionContext, bound_signature: bytes | None
) -> tuple[Session, list[Effect]]:
    _, init_cls, _, join_factory, _ = KINDS[kind]
    version = cluster.key.shares[cluster.ids[1]].last_version()
    access = AccessRequest(cluster.signature, version.hash, bound_signature)
    init = init_cls(SID, KEY_ID, access, MESSAGE)
    return join_factory(ctx, cluster.ids[0], init, cluster.key.shares[cluster.ids[1]])


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_a_bound_signing_is_forwarded_to_every_candidate_and_accepted(kind: str) -> None:
    cluster = make_cluster(3, 1)
    signature = bound(cluster, KINDS[kind][4])
    _, effects = start(kind, cluster, strict(cluster.ctx(0)), signature)
    inits = [send.message for send in sends(effects)]
    assert len(inits) == 2
    assert all(init.access.bound_signature == signature for init in inits)
    join(kind, cluster, strict(cluster.ctx(1)), signature)


@pytest.mark.parametrize("kind", sorted(KINDS))
@pytest.mark.parametrize("policy", [False, True], ids=["lax", "strict"])
@pytest.mark.parametrize("wrong", ["another key", "another hash", "another operation", "junk"])
def test_a_bound_signature_that_does_not_fit_is_refused_by_master_and_slave(
    kind: str, policy: bool, wrong: str
) -> None:
    cluster = make_cluster(3, 1)
    operation = KINDS[kind][4]
    if wrong == "another key":
        signature = bound(cluster, operation, signer=STRANGER)
    elif wrong == "another hash":
        signature = bound(cluster, operation, OTHER_HASH)
    elif wrong == "another operation":
        other = BoundOperation.SIGN_ECDSA if kind == "schnorr" else BoundOperation.SIGN_SCHNORR
        signature = bound(cluster, other)
    else:
        signature = bytes(64) + b"\x00"
    master_ctx, slave_ctx = cluster.ctx(0), cluster.ctx(1)
    if policy:
        master_ctx, slave_ctx = strict(master_ctx), strict(slave_ctx)
    with pytest.raises(InvalidRequest, match="bound request signature"):
        start(kind, cluster, master_ctx, signature)
    with pytest.raises(InvalidRequest, match="bound request signature"):
        join(kind, cluster, slave_ctx, signature)


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_the_unbound_form_is_refused_by_each_node_with_the_policy_and_only_those(
    kind: str,
) -> None:
    cluster = make_cluster(3, 1)
    start(kind, cluster, cluster.ctx(0), None)
    join(kind, cluster, cluster.ctx(1), None)
    with pytest.raises(UnboundRequest):
        start(kind, cluster, strict(cluster.ctx(0)), None)
    with pytest.raises(UnboundRequest):
        join(kind, cluster, strict(cluster.ctx(1)), None)


def test_check_binding_rules() -> None:
    cluster = make_cluster(1, 0)
    requester = recover_requester_of(cluster.signature, KEY_ID)
    lax, strict_ctx = cluster.ctx(0), strict(cluster.ctx(0))
    operation = BoundOperation.SIGN_SCHNORR
    good = bound(cluster, operation)

    def check(ctx: SessionContext, signature: bytes | None, payload: bytes = MESSAGE) -> None:
        check_binding(
            ctx, requester, signature, operation=operation, key_id=KEY_ID, payload=payload
        )

    check(lax, None)
    check(lax, good)
    check(strict_ctx, good)
    with pytest.raises(UnboundRequest, match="bound request"):
        check(strict_ctx, None)
    with pytest.raises(InvalidRequest, match="not the requester's signature"):
        check(lax, good, OTHER_HASH)
    with pytest.raises(InvalidRequest, match="not usable"):
        check(lax, good, OTHER_HASH[:5])
