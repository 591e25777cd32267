"""The mesh admission policy: per-address and total caps, the nodes' reserve, burst reports."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from secretstore.mesh.admission import (
    MAX_TRACKED_REFUSALS,
    AdmissionLimits,
    Admit,
    HandshakeAdmission,
    Refuse,
    canonical_address,
)

NODE = "10.0.0.1"
STRANGER = "192.0.2.7"
LIMITS = AdmissionLimits(max_pending=10, max_pending_per_address=2, reserved_for_nodes=4)


def policy(*nodes: str, limits: AdmissionLimits = LIMITS) -> HandshakeAdmission:
    return HandshakeAdmission(limits, nodes or (NODE,))


def stranger(n: int) -> str:
    return f"192.0.2.{n}"


def test_one_address_gets_its_allowance_and_no_more() -> None:
    p = policy()
    assert p.admit(STRANGER) == Admit()
    assert p.admit(STRANGER) == Admit()
    refused = p.admit(STRANGER)
    assert isinstance(refused, Refuse)
    assert "2 handshakes pending from this address" in refused.reason
    assert "limit per address is 2" in refused.reason
    assert p.pending == 2 and p.pending_from(STRANGER) == 2


def test_strangers_together_cannot_take_the_reserve() -> None:
    p = policy()
    for n in range(3):  # 3 addresses x 2 = 6 = 10 - 4 reserved
        assert p.admit(stranger(n)) == Admit()
        assert p.admit(stranger(n)) == Admit()
    refused = p.admit(stranger(50))
    assert isinstance(refused, Refuse)
    assert "limit for addresses of no configured node is 6" in refused.reason
    # a configured node's address still gets in, up to its own allowance
    assert p.admit(NODE) == Admit()
    assert p.admit(NODE) == Admit()
    assert isinstance(p.admit(NODE), Refuse)
    assert p.pending == 8


def test_the_total_holds_for_nodes_too() -> None:
    nodes = [f"10.0.0.{n}" for n in range(1, 9)]
    p = policy(*nodes)
    for address in nodes[:5]:
        assert p.admit(address) == Admit()
        assert p.admit(address) == Admit()
    refused = p.admit(nodes[5])
    assert isinstance(refused, Refuse) and "the limit is 10" in refused.reason
    assert p.pending == 10


def test_an_address_with_several_nodes_gets_an_allowance_for_each() -> None:
    p = policy(NODE, NODE, NODE)
    assert p.allowance(NODE) == 6
    for _ in range(6):
        assert p.admit(NODE) == Admit()
    assert isinstance(p.admit(NODE), Refuse)
    assert p.allowance(STRANGER) == 2


def test_release_frees_the_slot() -> None:
    p = policy()
    p.admit(STRANGER)
    p.admit(STRANGER)
    assert isinstance(p.admit(STRANGER), Refuse)
    p.release(STRANGER)
    assert p.pending == 1
    assert isinstance(p.admit(STRANGER), Admit)
    p.release("198.51.100.1")  # never admitted: ignored
    assert p.pending == 2


def test_a_refusal_is_first_in_its_burst_once_and_the_admission_ending_it_counts() -> None:
    p = policy()
    p.admit(STRANGER)
    p.admit(STRANGER)
    firsts = [p.admit(STRANGER) for _ in range(5)]
    assert [r.first_in_burst for r in firsts if isinstance(r, Refuse)] == [True] + [False] * 4
    p.release(STRANGER)
    assert p.admit(STRANGER) == Admit(refused_before=5)
    again = p.admit(STRANGER)
    assert isinstance(again, Refuse) and again.first_in_burst


def test_when_nothing_is_pending_every_burst_is_over() -> None:
    p = policy()
    for n in range(3):
        p.admit(stranger(n))
        p.admit(stranger(n))
    first = p.admit(stranger(60))
    assert isinstance(first, Refuse) and first.first_in_burst
    for n in range(3):
        p.release(stranger(n))
        p.release(stranger(n))
    assert p.pending == 0
    assert p.admit(stranger(60)) == Admit()  # the old burst was forgotten


def test_the_refusal_table_is_bounded() -> None:
    p = policy(
        limits=AdmissionLimits(max_pending=2, max_pending_per_address=2, reserved_for_nodes=2)
    )
    for n in range(MAX_TRACKED_REFUSALS + 50):
        refused = p.admit(f"2001:db8::{n:x}")
        assert isinstance(refused, Refuse) and refused.first_in_burst
    assert len(p._refused) == MAX_TRACKED_REFUSALS


def test_ipv4_mapped_addresses_are_the_ipv4_address() -> None:
    p = policy()
    assert canonical_address("::ffff:10.0.0.1") == NODE
    assert canonical_address("2001:DB8::1") == "2001:db8::1"
    assert canonical_address("not an ip") == "not an ip"
    assert p.is_node_address("::ffff:10.0.0.1")
    p.admit("::ffff:192.0.2.7")
    p.admit(STRANGER)
    assert isinstance(p.admit(STRANGER), Refuse)


def test_the_node_set_can_change() -> None:
    p = policy()
    for n in range(3):
        p.admit(stranger(n))
        p.admit(stranger(n))
    assert isinstance(p.admit("10.9.9.9"), Refuse)
    p.set_node_addresses(["10.9.9.9"])
    assert p.admit("10.9.9.9") == Admit(refused_before=1)
    assert not p.is_node_address(NODE)


@pytest.mark.parametrize(
    ("total", "per_address", "reserved"),
    [(0, 1, 0), (4, 0, 0), (4, 5, 0), (4, 1, -1), (4, 1, 5)],
)
def test_bad_limits_are_refused(total: int, per_address: int, reserved: int) -> None:
    with pytest.raises(ValueError):
        AdmissionLimits(total, per_address, reserved)


events = st.lists(
    st.tuples(st.booleans(), st.sampled_from([NODE, "10.0.0.2", *map(stranger, range(6))])),
    max_size=200,
)


@given(events)
def test_the_caps_hold_under_any_sequence(sequence: list[tuple[bool, str]]) -> None:
    p = policy(NODE, "10.0.0.2")
    held: dict[str, int] = {}
    for admit, address in sequence:
        if admit:
            decision = p.admit(address)
            if isinstance(decision, Admit):
                held[address] = held.get(address, 0) + 1
        elif held.get(address):
            p.release(address)
            held[address] -= 1
        strangers = sum(n for a, n in held.items() if not p.is_node_address(a))
        assert p.pending == sum(held.values()) <= LIMITS.max_pending
        assert strangers <= LIMITS.max_pending_for_strangers
        assert all(n <= LIMITS.max_pending_per_address for n in held.values())
    # with strangers at their cap, a configured node's address still finds room
    for address in map(stranger, range(6)):
        while isinstance(p.admit(address), Admit):
            pass
    if p.pending_from(NODE) < LIMITS.max_pending_per_address:
        assert isinstance(p.admit(NODE), Admit)
