"""Known answers of the node set change (tests/vectors/parity_admin.json): the servers set hash
of Parity's test nodes and the administrator's signatures of the old and new sets, checked by
recovery, through our hash, our signature check and the session's own admission of a change."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from secretstore.crypto.curve import Point, Scalar
from secretstore.crypto.keys import KeyPair, recover_public, servers_set_hash
from secretstore.crypto.rng import SeededRng
from secretstore.errors import AccessDenied, ConsensusUnreachable
from secretstore.sessions.admin.authority import ConfiguredAdmin, check_admin_signatures
from secretstore.sessions.admin.factories import admin_tables
from secretstore.sessions.admin.node_set_change import AdminSettings, NodeSetChange
from secretstore.sessions.base import SessionContext
from secretstore.storage.memory import MemoryKeyStorage
from secretstore.types import NodeId, SessionId
from secretstore.wire import codec
from secretstore.wire.admin import NodeSetChangeInit

VECTORS: dict[str, Any] = json.loads(
    (Path(__file__).parents[2] / "vectors" / "parity_admin.json").read_text()
)
KEYS = VECTORS["sst_keys"]
NODES = {n["name"]: NodeId(bytes.fromhex(n["public"])) for n in KEYS["nodes"]}
ADMIN_PUBLIC = Point.from_bytes(bytes.fromhex(KEYS["admin_public"]))
REMOVAL = VECTORS["removal"]


def ids(names: list[str]) -> list[NodeId]:
    return [NODES[name] for name in names]


def test_the_keys_are_the_publics_of_their_secrets() -> None:
    admin = KeyPair.from_secret(Scalar.from_bytes(bytes.fromhex(KEYS["admin_secret"])))
    assert admin.public == ADMIN_PUBLIC
    for node in KEYS["nodes"]:
        pair = KeyPair.from_secret(Scalar.from_bytes(bytes.fromhex(node["secret"])))
        assert pair.node_id == NODES[node["name"]]


@pytest.mark.parametrize("case", VECTORS["set_hashes"]["cases"], ids=lambda c: "+".join(c["nodes"]))
def test_servers_set_hashes(case: dict[str, Any]) -> None:
    nodes = ids(case["nodes"])
    assert servers_set_hash(nodes).hex() == case["hash"]
    assert servers_set_hash(reversed(nodes)).hex() == case["hash"]  # a set: order-free
    assert servers_set_hash([*nodes, nodes[0]]).hex() == case["hash"]  # duplicates count once


def test_the_unsorted_pair_hashes_sorted() -> None:
    pair = VECTORS["unsorted_pair"]
    nodes = [NodeId(bytes.fromhex(n)) for n in pair["nodes"]]
    assert servers_set_hash(nodes).hex() == pair["hash"]


def test_the_removal_signatures_recover_to_the_administrator() -> None:
    old, new = ids(REMOVAL["old_set"]), ids(REMOVAL["new_set"])
    old_signature = bytes.fromhex(REMOVAL["old_signature"])
    new_signature = bytes.fromhex(REMOVAL["new_signature"])
    assert recover_public(old_signature, servers_set_hash(old)) == ADMIN_PUBLIC
    assert recover_public(new_signature, servers_set_hash(new)) == ADMIN_PUBLIC
    check_admin_signatures(ADMIN_PUBLIC, old, new, old_signature, new_signature)
    with pytest.raises(ConsensusUnreachable):  # the signatures swapped
        check_admin_signatures(ADMIN_PUBLIC, old, new, new_signature, old_signature)
    with pytest.raises(ConsensusUnreachable):  # another old set
        check_admin_signatures(
            ADMIN_PUBLIC, ids(["N1", "N3", "N4"]), new, old_signature, new_signature
        )
    other = KeyPair.generate(SeededRng(b"not the admin")).public
    with pytest.raises(ConsensusUnreachable):
        check_admin_signatures(other, old, new, old_signature, new_signature)


def _join(admin: Point | None, signature: bytes) -> NodeSetChange:
    """N3 asked by N2 to join Parity's removal of N2 (N3 is configured with N2, N3, N4 and
    connected to both others)."""
    old = ids(REMOVAL["old_set"])
    self_id = NODES["N3"]
    ctx = SessionContext(self_id, SeededRng(1), frozenset(old))
    settings = AdminSettings(
        ConfiguredAdmin(admin), MemoryKeyStorage(), lambda: frozenset(old) - {self_id}
    )
    _, slaves = admin_tables(settings)
    init = NodeSetChangeInit(
        SessionId(b"\x01" * 32),
        None,
        tuple(sorted(old)),
        tuple(sorted(ids(REMOVAL["new_set"]))),
        bytes.fromhex(REMOVAL["old_signature"]),
        signature,
    )
    init = codec.decode(codec.encode(init))
    session, _ = slaves[NodeSetChangeInit](ctx, NODES["N2"], init, None)
    assert isinstance(session, NodeSetChange)
    return session


def test_a_node_admits_parity_s_removal_request() -> None:
    session = _join(ADMIN_PUBLIC, bytes.fromhex(REMOVAL["new_signature"]))
    assert session.removed == frozenset({NODES["N2"]})
    assert session.new_set == frozenset(ids(["N3", "N4"]))


def test_a_node_refuses_it_with_a_bad_signature_or_no_administrator() -> None:
    with pytest.raises(ConsensusUnreachable):
        _join(ADMIN_PUBLIC, bytes.fromhex(REMOVAL["old_signature"]))
    with pytest.raises(AccessDenied):
        _join(None, bytes.fromhex(REMOVAL["new_signature"]))
