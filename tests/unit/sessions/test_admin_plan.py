"""The plan of a node set change: which version of a key is redistributed, by whom, to whom,
and what blocks a change (sessions/admin/plan.py)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from secretstore.crypto.keys import KeyPair
from secretstore.crypto.rng import SeededRng
from secretstore.errors import ProtocolViolation
from secretstore.sessions.admin.plan import (
    ChangePlan,
    Inventory,
    KeyPlan,
    choose_version,
    inventory_pages,
    plan_key,
)
from secretstore.storage.memory import MemoryKeyStorage
from secretstore.types import Hash256, ServerKeyId
from secretstore.wire.admin import INVENTORY_PAGE_SIZE, InventoryEntry, VersionHeld
from tests.sim.dealer import deal_key

RNG = SeededRng(b"plan")
A, B, C, D, E = sorted(KeyPair.generate(RNG).node_id for _ in range(5))
PUBLIC = KeyPair.generate(RNG).public
KEY = ServerKeyId(b"\x42" * 32)
V1 = VersionHeld(Hash256(b"\x01" * 32), 3)
V2 = VersionHeld(Hash256(b"\x02" * 32), 5)
V3 = VersionHeld(Hash256(b"\x03" * 32), 2)


def entry(*versions: VersionHeld, threshold: int = 1) -> InventoryEntry:
    return InventoryEntry(KEY, threshold, PUBLIC, versions)


def test_the_version_most_nodes_hold_is_chosen() -> None:
    reports = {A: entry(V1, V2), B: entry(V1), C: entry(V1), D: entry(V2)}
    version, holders = choose_version(reports)
    assert version == V1 and holders == {A, B, C}


def test_a_tie_goes_to_the_newest_then_the_larger_hash() -> None:
    newest, _ = choose_version({A: entry(V1, V2), B: entry(V1, V2)})
    assert newest == V2
    # V1 and V3 are both newest somewhere: the larger hash wins, whatever the report order
    tie = {A: entry(V1), B: entry(V3)}
    assert choose_version(tie)[0] == V3
    assert choose_version(dict(reversed(list(tie.items()))))[0] == V3


def test_adding_nodes_keeps_the_holders_numbers_and_gives_new_ones_fresh_numbers() -> None:
    reports = {A: entry(V1), B: entry(V1), C: entry(V1), D: entry(), E: entry()}
    plan = plan_key(KEY, reports, frozenset({A, B, C, D, E}), RNG)
    assert isinstance(plan, KeyPlan)
    assert plan.version == V1.hash and plan.threshold == 1
    assert len(plan.dealers) == 2 and set(plan.dealers) <= {A, B, C}
    assert list(plan.dealers) == sorted(plan.dealers)
    assert {node for node, _ in plan.fresh} == {D, E}
    assert len({number for _, number in plan.fresh}) == 2


def test_a_change_that_only_drops_nodes_renumbers_every_node() -> None:
    reports = {A: entry(V1), B: entry(V1), C: entry(V1)}
    plan = plan_key(KEY, reports, frozenset({A, B}), RNG)
    assert isinstance(plan, KeyPlan)
    assert {node for node, _ in plan.fresh} == {A, B}


def test_a_key_on_exactly_the_new_set_needs_nothing() -> None:
    reports = {A: entry(V3), B: entry(V3)}
    assert plan_key(KEY, reports, frozenset({A, B}), RNG) is None
    # the same version listing a third node (isolated) must be redistributed
    listed = VersionHeld(V3.hash, 3)
    assert isinstance(
        plan_key(KEY, {A: entry(listed), B: entry(listed)}, frozenset({A, B}), RNG), KeyPlan
    )


def test_what_blocks_a_change() -> None:
    new_set = frozenset({A, B, C})
    too_few_holders = plan_key(KEY, {A: entry(V1), B: entry(), C: entry()}, new_set, RNG)
    assert isinstance(too_few_holders, str) and "needs 2 connected holders" in too_few_holders
    too_small_set = plan_key(
        KEY,
        {A: entry(V1, threshold=2), B: entry(V1, threshold=2), C: entry(V1, threshold=2)},
        frozenset({A, B}),
        RNG,
    )
    assert isinstance(too_small_set, str) and "needs 3 nodes in the new set" in too_small_set
    disagreeing = plan_key(KEY, {A: entry(V1), B: entry(V1, threshold=2)}, new_set, RNG)
    assert isinstance(disagreeing, str) and "different thresholds" in disagreeing


def test_the_refusal_names_some_keys_and_counts_the_rest() -> None:
    plan = ChangePlan((), 0, tuple(f"key {i}: bad" for i in range(8)))
    text = plan.refusal()
    assert "nothing was changed" in text and "key 4: bad" in text and "3 more keys" in text
    assert "key 5" not in text


@given(holders=st.integers(1, 5), threshold=st.integers(0, 4))
def test_dealers_are_t_plus_1_holders(holders: int, threshold: int) -> None:
    nodes = [A, B, C, D, E]
    reports = {node: entry(V2, threshold=threshold) for node in nodes[:holders]}
    outcome = plan_key(KEY, reports, frozenset(nodes), RNG)
    if holders < threshold + 1 or threshold + 1 > 5:
        assert isinstance(outcome, str)
    elif holders == 5:
        assert outcome is None  # V2 lists 5 nodes, all five hold it
    else:
        assert isinstance(outcome, KeyPlan)
        assert len(outcome.dealers) == threshold + 1
        assert set(outcome.dealers) <= set(nodes[:holders])


def test_the_inventory_refuses_keys_out_of_order() -> None:
    inventory = Inventory()
    later = InventoryEntry(ServerKeyId(b"\x50" * 32), 1, PUBLIC, (V1,))
    inventory.add(A, [later])
    with pytest.raises(ProtocolViolation):
        inventory.add(A, [entry(V1)])  # 0x42… after 0x50…
    with pytest.raises(ProtocolViolation):
        inventory.add(B, [later, later])


def test_inventory_pages_are_bounded_and_cover_every_key() -> None:
    storage = MemoryKeyStorage()
    assert inventory_pages(storage) == [()]
    dealt = deal_key(RNG, [A, B], 1)
    count = INVENTORY_PAGE_SIZE + 3
    for index in range(count):
        storage.insert(ServerKeyId(index.to_bytes(32, "big")), dealt.shares[A])
    pages = inventory_pages(storage)
    assert [len(page) for page in pages] == [INVENTORY_PAGE_SIZE, 3]
    listed = [e.key_id for page in pages for e in page]
    assert listed == sorted(listed) and len(set(listed)) == count
    assert pages[0][0].versions == (VersionHeld(Hash256(dealt.shares[A].versions[0].hash), 2),)
