"""The range-owner rule, with Parity's vectors (secret-store service_contract_listener.rs)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from secretstore.chain.services.owner import is_range_owner, range_owner
from secretstore.crypto.curve import Scalar
from secretstore.crypto.keys import KeyPair
from secretstore.types import NodeId


def node(secret: int) -> NodeId:
    return KeyPair.from_secret(Scalar(secret)).node_id


def key(hex_digits: str) -> bytes:
    return bytes.fromhex(hex_digits)


N1, N2, N3, N4 = node(1), node(2), node(3), node(4)


def test_the_nodes_of_the_vectors_are_those_of_secrets_1_to_4() -> None:
    assert N1.hex().startswith("79be667e") and N2.hex().startswith("c6047f94")
    assert N3.hex().startswith("f9308a01") and N4.hex().startswith("e493dbf1")


def test_no_servers_own_nothing_and_one_server_owns_everything() -> None:
    assert not is_range_owner([], N1, bytes(32))
    assert is_range_owner([N1], N1, bytes(32))
    assert is_range_owner([N1], N1, b"\xff" * 32)
    # as Parity: a single server set makes any node the owner, even one not in it
    assert is_range_owner([N1], N2, bytes(32))


def test_a_node_outside_a_larger_set_owns_nothing() -> None:
    assert not is_range_owner([N1, N2], N3, bytes(32))


VECTORS_3 = [
    (N1, "00" * 32, True),
    (N1, "30" + "00" * 31, True),
    (N1, "55" * 32, True),
    (N1, "55" * 31 + "56", False),
    (N2, "55" * 32, False),
    (N2, "55" * 31 + "56", True),
    (N2, "75" + "55" * 31, True),
    (N2, "aa" * 31 + "ab", True),
    (N2, "aa" * 31 + "ac", False),
    (N3, "aa" * 31 + "ab", False),
    (N3, "aa" * 31 + "ac", True),
    (N3, "da" + "aa" * 30 + "ac", True),
    (N3, "ff" * 32, True),
]


def test_parity_vectors_for_three_servers() -> None:
    for owner, key_id, expected in VECTORS_3:
        assert is_range_owner([N3, N1, N2], owner, key(key_id)) is expected, (key_id, expected)


VECTORS_4 = [
    (N1, "00" * 32, True),
    (N1, "20" + "00" * 31, True),
    (N1, "3f" + "ff" * 31, True),
    (N1, "40" + "00" * 31, False),
    (N2, "3f" + "ff" * 31, False),
    (N2, "40" + "00" * 31, True),
    (N2, "60" + "00" * 31, True),
    (N2, "7f" + "ff" * 31, True),
    (N2, "80" + "00" * 31, False),
    # the node with secret 4 sorts before the one with secret 3: ranges follow node ids
    (N4, "80" + "00" * 31, True),
    (N4, "bf" + "ff" * 31, True),
    (N4, "c0" + "00" * 31, False),
    (N3, "c0" + "00" * 31, True),
    (N3, "ff" * 32, True),
]


def test_parity_vectors_for_four_servers() -> None:
    for owner, key_id, expected in VECTORS_4:
        assert is_range_owner([N1, N2, N3, N4], owner, key(key_id)) is expected, key_id


@given(st.integers(2, 12), st.binary(min_size=32, max_size=32))
def test_exactly_one_server_owns_every_key(count: int, key_id: bytes) -> None:
    servers = [node(i) for i in range(1, count + 1)]
    owners = [s for s in servers if is_range_owner(servers, s, key_id)]
    assert len(owners) == 1 and range_owner(servers, key_id) == owners[0]
