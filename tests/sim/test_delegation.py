"""Delegation and version choice on a simulated network: a master without the key, or whose
newest version has too few holders taking part, still serves decryption and signing, with the
access policy of every node in force and relayed signatures checked."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from secretstore.crypto.curve import ONE, Scalar
from secretstore.crypto.keys import recover_public, sign_recoverable
from secretstore.crypto.schnorr import SchnorrSignature, verify_schnorr_signature
from secretstore.errors import AccessDenied, ProtocolViolation, ServerKeyNotFound
from secretstore.sessions.base import Fail, Finish, short
from secretstore.sessions.decryption import RetrieveDocumentKey
from secretstore.sessions.jobs.delegation import ResolvingMaster
from secretstore.sessions.signing_ecdsa import SignEcdsa
from secretstore.sessions.signing_schnorr import SignSchnorr
from secretstore.types import NodeId, ServerKeyId
from secretstore.wire.delegation import DelegatedSignature
from tests.sim.admin_world import MESSAGE, REQUESTER, AdminWorld, document_key, key_id, make_world

seeds = st.integers(0, 2**32)
KEY = key_id(0)


def world(seed: int, schedule: int, holders: list[int], n: int = 5, t: int = 1) -> AdminWorld:
    return make_world(n, seed=seed, schedule=schedule, holders=holders, threshold=t, keys=1)


def ask(world: AdminWorld, master: NodeId, request: object) -> Finish | Fail:
    sid = world._start(master, request)
    world.net.run()
    outcome = world.net.nodes[master].results[sid]
    assert world.sessions_left() == 0
    return outcome


def value(outcome: Finish | Fail) -> object:
    if isinstance(outcome, Fail):
        raise outcome.error
    return outcome.result


def signature() -> bytes:
    return sign_recoverable(REQUESTER.secret, KEY)


@given(seed=seeds, schedule=seeds, kind=st.sampled_from(["plain", "shadow", "schnorr", "ecdsa"]))
def test_a_node_without_the_key_is_served_by_a_holder(seed: int, schedule: int, kind: str) -> None:
    w = world(seed, schedule, holders=[0, 1, 2])
    newcomer = w.ids[4]
    dealt = w.keys[KEY]
    if kind in ("plain", "shadow"):
        result = value(ask(w, newcomer, RetrieveDocumentKey(KEY, signature(), kind == "shadow")))
        assert document_key(result) == dealt.document_key
    elif kind == "schnorr":
        result = value(ask(w, newcomer, SignSchnorr(KEY, signature(), MESSAGE)))
        assert isinstance(result, SchnorrSignature)
        assert verify_schnorr_signature(dealt.public, result, MESSAGE)
    else:
        result = value(ask(w, newcomer, SignEcdsa(KEY, signature(), MESSAGE)))
        assert isinstance(result, bytes) and recover_public(result, MESSAGE) == dealt.public


def test_an_unknown_key_is_not_found_from_any_node() -> None:
    w = world(1, 2, holders=[0, 1, 2])
    missing = ServerKeyId(b"\x99" * 32)
    request = RetrieveDocumentKey(missing, sign_recoverable(REQUESTER.secret, missing), False)
    for node in (w.ids[0], w.ids[4]):
        with pytest.raises(ServerKeyNotFound):
            value(ask(w, node, request))


def test_the_holders_access_policy_decides_a_delegated_request() -> None:
    w = world(3, 4, holders=[0, 1, 2])
    w.net.access = lambda node, requester, key: node == w.ids[4]  # only the newcomer allows
    outcome = ask(w, w.ids[4], RetrieveDocumentKey(KEY, signature(), True))
    assert isinstance(outcome, Fail) and isinstance(outcome.error, AccessDenied)


def test_a_relayed_signature_that_does_not_verify_names_the_delegate() -> None:
    w = world(5, 6, holders=[0, 1, 2])
    liar: list[NodeId] = []

    def tamper(sender: NodeId, to: NodeId, message: object) -> object:
        if isinstance(message, DelegatedSignature):
            liar.append(sender)
            forged = SchnorrSignature.from_bytes(message.signature)
            return replace(message, signature=SchnorrSignature(forged.c, forged.s + ONE).to_bytes())
        return message

    w.net.tamper = tamper
    outcome = ask(w, w.ids[4], SignSchnorr(KEY, signature(), MESSAGE))
    assert isinstance(outcome, Fail) and isinstance(outcome.error, ProtocolViolation)
    assert outcome.error.node == short(liar[0])


def test_the_fast_path_neither_negotiates_nor_delegates() -> None:
    w = world(7, 8, holders=[0, 1, 2], n=3)
    seen: list[type] = []

    def watch(sender: NodeId, to: NodeId, message: object) -> object:
        seen.append(type(message))
        return message

    w.net.tamper = watch
    value(ask(w, w.ids[0], RetrieveDocumentKey(KEY, signature(), True)))
    names = {kind.__name__ for kind in seen}
    assert "RequestKeyVersions" not in names and "DelegatedRequest" not in names


@given(seed=seeds, schedule=seeds)
def test_too_few_holders_of_the_newest_version_fall_back_to_one_enough_nodes_hold(
    seed: int, schedule: int
) -> None:
    # a change that failed half-way: the first holder has a newer version that only it holds
    w = world(seed, schedule, holders=[0, 1, 2], n=3)
    first = w.ids[0]
    share = w.net.nodes[first].storage.get(KEY)
    assert share is not None
    lone = replace(
        share.versions[0],
        hash=b"\x01" * 32,
        secret_share=share.versions[0].secret_share + Scalar(1),
    )
    w.net.nodes[first].storage.update(KEY, share.with_version(lone))
    seen: list[str] = []

    def watch(sender: NodeId, to: NodeId, message: object) -> object:
        seen.append(type(message).__name__)
        return message

    w.net.tamper = watch
    for request in (
        RetrieveDocumentKey(KEY, signature(), False),
        SignSchnorr(KEY, signature(), MESSAGE),
    ):
        result = value(ask(w, first, request))
        if isinstance(result, SchnorrSignature):
            assert verify_schnorr_signature(w.keys[KEY].public, result, MESSAGE)
        else:
            assert result == w.keys[KEY].document_key
    assert "RequestKeyVersions" in seen and "DelegatedRequest" not in seen


def test_a_resolving_master_reports_its_phase() -> None:
    w = world(9, 10, holders=[0, 1, 2])
    node = w.net.nodes[w.ids[4]]
    connected = w.connected_of(w.ids[4]) | {w.ids[4]}
    sid, _ = node.core.start(RetrieveDocumentKey(KEY, signature(), True), connected)
    session = node.core.session(sid)
    assert isinstance(session, ResolvingMaster)
    assert session.phase.name == "NEGOTIATING"
