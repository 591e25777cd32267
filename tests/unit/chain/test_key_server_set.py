"""The key server set's pure rules: entries, the delayed new set, when a migration is due."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from secretstore.chain.key_server_set import (
    KeyServerSetSnapshot,
    Migration,
    NewSetDelay,
    collect_set,
    migration_required,
    parse_server,
)
from secretstore.crypto.keys import KeyPair
from secretstore.crypto.rng import SeededRng
from secretstore.types import Address, BlockRef, Hash256, NodeId

KEYS = [KeyPair.generate(SeededRng(f"set-{i}".encode())) for i in range(4)]
N = [key.node_id for key in KEYS]
A = "127.0.0.1:12000"


def block(number: int, tag: int = 0) -> BlockRef:
    return BlockRef(number, Hash256(bytes([tag]) * 32))


def nodes(*indices: int, port: int = 12000) -> dict[NodeId, tuple[str, int]]:
    return {N[i]: ("127.0.0.1", port + i) for i in indices}


def test_entries_parse_as_paritys_socket_addresses() -> None:
    assert parse_server(N[0], "127.0.0.1:12000") == (N[0], ("127.0.0.1", 12000))
    assert parse_server(N[0], "[::1]:1") == (N[0], ("::1", 1))
    for bad in ("localhost:1", "127.0.0.1", "127.0.0.1:0", "127.0.0.1:65536", "::1:5", "1.2.3.4:x"):
        with pytest.raises(ValueError, match="address"):
            parse_server(N[0], bad)
    with pytest.raises(ValueError, match="64"):
        parse_server(N[0][:63], A)
    with pytest.raises(ValueError, match="secp256k1"):
        parse_server(bytes(64), A)


def test_bad_entries_and_a_second_server_at_one_address_are_skipped() -> None:
    entries: list[tuple[Address, bytes | None, str | None]] = [
        (KEYS[0].address, N[0], "127.0.0.1:1"),
        (KEYS[1].address, N[1], "127.0.0.1:1"),  # address taken: skipped
        (KEYS[2].address, None, "127.0.0.1:3"),  # public unreadable: skipped
        (KEYS[3].address, N[2], "127.0.0.1:4"),  # another server's public: skipped
        (KEYS[3].address, N[3], "nohost:4"),  # not an IP: skipped
    ]
    assert collect_set(entries, "current") == {N[0]: ("127.0.0.1", 1)}


def test_a_migration_is_required_only_when_members_change() -> None:
    assert not migration_required(nodes(0, 1), nodes(0, 1))
    assert not migration_required(nodes(0, 1), nodes(0, 1, port=13000))  # addresses only
    assert migration_required(nodes(0, 1), nodes(0, 1, 2))
    assert migration_required(nodes(0, 1), nodes(0))
    assert migration_required(nodes(0), nodes(1))


def test_a_changed_new_set_is_hidden_for_the_delay() -> None:
    delay = NewSetDelay(5)
    read = KeyServerSetSnapshot(nodes(0, 1), nodes(0, 1, 2))
    for number in range(10, 15):
        shown = delay.apply(read, block(number))
        assert shown.new == read.current, number
    assert delay.pending_since == block(10)
    assert delay.apply(read, block(15)).new == read.new
    assert delay.apply(read, block(16)).new == read.new  # stays shown while unchanged


def test_a_new_set_that_changes_again_restarts_the_count() -> None:
    delay = NewSetDelay(2)
    first = KeyServerSetSnapshot(nodes(0), nodes(0, 1))
    second = KeyServerSetSnapshot(nodes(0), nodes(0, 1, 2))
    delay.apply(first, block(1))
    assert delay.apply(second, block(2)).new == second.current
    assert delay.apply(second, block(3)).new == second.current
    assert delay.apply(second, block(4)).new == second.new


def test_a_reorganisation_restarts_the_count() -> None:
    delay = NewSetDelay(2)
    read = KeyServerSetSnapshot(nodes(0), nodes(0, 1))
    delay.apply(read, block(1))
    assert delay.apply(read, block(3, tag=1), since_canonical=False).new == read.current
    assert delay.pending_since == block(3, tag=1)
    assert delay.apply(read, block(5, tag=1)).new == read.new


def test_no_delay_for_address_changes_or_a_running_migration() -> None:
    delay = NewSetDelay(5)
    moved = KeyServerSetSnapshot(nodes(0, 1), nodes(0, 1, port=13000))
    assert delay.apply(moved, block(1)) == moved
    migration = Migration(Hash256(b"\x01" * 32), nodes(0, 1, 2), N[0], False)
    running = KeyServerSetSnapshot(nodes(0, 1), nodes(0, 1, 2), migration)
    assert delay.apply(running, block(2)) == running
    assert delay.pending_since is None


@given(st.integers(0, 8), st.lists(st.integers(0, 3), min_size=1, max_size=12))
def test_a_new_set_is_shown_only_after_delay_unchanged_blocks(
    delay_blocks: int, changes: list[int]
) -> None:
    """Property: at every block the shown new set is either the current set or the read new
    set, and it is the read one exactly when it has been the same for `delay` blocks."""
    delay = NewSetDelay(delay_blocks)
    current = nodes(0)
    since: int | None = None
    last: dict[NodeId, tuple[str, int]] | None = None
    for number, change in enumerate(changes):
        new = nodes(0, *range(1, change + 1))
        read = KeyServerSetSnapshot(current, new)
        shown = delay.apply(read, block(number))
        if not migration_required(current, new):
            since = None
            assert shown == read
            continue
        if new != last or since is None:
            since = number
        last = new
        expect = new if number - since >= delay_blocks else current
        assert shown.new == expect
        assert shown.current == current
