"""The KeyStorage contract, run against MemoryKeyStorage and a real LevelDB directory."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from secretstore.crypto.curve import Point, Scalar
from secretstore.errors import (
    InvalidEncoding,
    ServerKeyAlreadyGenerated,
    ServerKeyNotFound,
    StorageError,
)
from secretstore.storage.leveldb import LevelDbKeyStorage
from secretstore.storage.memory import MemoryKeyStorage
from secretstore.storage.model import KeyShare, Tombstone
from secretstore.storage.port import KeyStorage
from secretstore.types import ServerKeyId
from tests.unit.storage.strategies import key_shares, sample_key_id, sample_share, sample_version

Factory = Callable[[], KeyStorage]


@pytest.fixture(params=["memory", "memory-cached", "leveldb"])
def make_storage(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Factory]:
    """Builds fresh, empty storages of one kind; closes them all afterwards. "memory-cached"
    keeps two decoded shares, so reads both hit and miss its cache; LevelDB runs with its
    default cache."""
    opened: list[KeyStorage] = []
    counter = itertools.count()

    def make() -> KeyStorage:
        storage: KeyStorage
        if request.param == "memory":
            storage = MemoryKeyStorage()
        elif request.param == "memory-cached":
            storage = MemoryKeyStorage(cache_size=2)
        else:
            storage = LevelDbKeyStorage(tmp_path / f"db{next(counter)}")
        opened.append(storage)
        return storage

    yield make
    for storage in opened:
        storage.close()


@pytest.fixture
def storage(make_storage: Factory) -> KeyStorage:
    return make_storage()


K1, K2, K3 = sample_key_id(1), sample_key_id(2), sample_key_id(3)
S1, S2 = sample_share(1), sample_share(2, threshold=2, nodes=4)


def test_is_a_key_storage(storage: KeyStorage) -> None:
    assert isinstance(storage, MemoryKeyStorage | LevelDbKeyStorage)
    port: KeyStorage = storage  # checked by mypy against the Protocol
    assert port is storage


def test_empty_storage(storage: KeyStorage) -> None:
    assert storage.get(K1) is None
    assert not storage.contains(K1)
    assert list(storage.ids()) == []
    assert storage.remove(K1) is False


def test_insert_then_get(storage: KeyStorage) -> None:
    storage.insert(K1, S1)
    assert storage.get(K1) == S1
    assert storage.contains(K1)
    assert storage.get(K2) is None
    assert not storage.contains(K2)


def test_insert_twice_is_refused_and_keeps_the_first(storage: KeyStorage) -> None:
    storage.insert(K1, S1)
    with pytest.raises(ServerKeyAlreadyGenerated):
        storage.insert(K1, S2)
    assert storage.get(K1) == S1


def test_update_needs_an_existing_key(storage: KeyStorage) -> None:
    with pytest.raises(ServerKeyNotFound):
        storage.update(K1, S1)
    assert not storage.contains(K1)


def test_update_replaces_the_share(storage: KeyStorage) -> None:
    storage.insert(K1, S1)
    storage.insert(K2, S2)
    stored = S1.with_document_key(Point.base_mul(Scalar(8)), Point.base_mul(Scalar(9)))
    stored = stored.with_version(sample_version(7))
    storage.update(K1, stored)
    got = storage.get(K1)
    assert got == stored
    assert got is not None
    assert got.has_document_key()
    assert got.last_version() == sample_version(7)
    assert storage.get(K2) == S2


def test_reads_never_see_a_replaced_share(storage: KeyStorage) -> None:
    storage.insert(K1, S1)
    assert storage.get(K1) == S1
    assert storage.get(K1) == S1  # a second read (from the cache where there is one)
    storage.update(K1, S2)
    assert storage.get(K1) == S2
    with pytest.raises(ServerKeyAlreadyGenerated):
        storage.insert(K1, S1)
    assert storage.get(K1) == S2
    assert storage.remove(K1) is True
    assert storage.get(K1) is None
    storage.insert(K1, S1)
    assert storage.get(K1) == S1


def test_remove(storage: KeyStorage) -> None:
    storage.insert(K1, S1)
    storage.insert(K2, S2)
    assert storage.remove(K1) is True
    assert storage.get(K1) is None
    assert not storage.contains(K1)
    assert storage.remove(K1) is False
    assert storage.get(K2) == S2
    storage.insert(K1, S2)
    assert storage.get(K1) == S2


def test_ids_lists_every_key_once_in_ascending_order(storage: KeyStorage) -> None:
    keys = [sample_key_id(i) for i in range(20)]
    for i, key in enumerate(keys):
        storage.insert(key, sample_share(i))
    ids = storage.ids()
    assert iter(ids) is ids
    assert list(ids) == sorted(keys)


def test_count_follows_inserts_removes_and_burials(storage: KeyStorage) -> None:
    assert storage.count() == 0
    for i in range(5):
        storage.insert(sample_key_id(i), sample_share(i))
    storage.update(sample_key_id(0), sample_share(9))
    assert storage.count() == 5
    storage.remove(sample_key_id(1))
    storage.remove(sample_key_id(1))
    assert storage.count() == 4
    key, share = sample_key_id(2), sample_share(2)
    storage.bury(key, sample_tombstone(key, share))  # the tombstone is not a share
    assert storage.count() == 3
    assert storage.count() == len(list(storage.ids()))


def test_ids_reads_a_snapshot_taken_when_called(storage: KeyStorage) -> None:
    storage.insert(K1, S1)
    storage.insert(K2, S2)
    ids = storage.ids()
    storage.insert(K3, S1)
    storage.remove(K1)
    assert list(ids) == sorted([K1, K2])
    assert list(storage.ids()) == sorted([K2, K3])


@pytest.mark.parametrize("bad", [b"", bytes(31), bytes(33), "00" * 32])
def test_key_ids_are_32_bytes(storage: KeyStorage, bad: object) -> None:
    key = ServerKeyId(bad)  # type: ignore[arg-type]
    for call in (
        lambda: storage.insert(key, S1),
        lambda: storage.update(key, S1),
        lambda: storage.get(key),
        lambda: storage.contains(key),
        lambda: storage.remove(key),
    ):
        with pytest.raises(InvalidEncoding):
            call()
    assert list(storage.ids()) == []


def test_closed_storage_refuses_every_call(storage: KeyStorage) -> None:
    storage.insert(K1, S1)
    assert storage.get(K1) == S1  # cached where the adapter caches
    pending = storage.ids()
    storage.close()
    storage.close()
    for call in (
        lambda: storage.insert(K2, S1),
        lambda: storage.update(K1, S1),
        lambda: storage.get(K1),
        lambda: storage.contains(K1),
        lambda: storage.remove(K1),
        storage.ids,
        storage.count,
        lambda: list(pending),
    ):
        with pytest.raises(StorageError, match="closed"):
            call()


def test_concurrent_inserts_of_one_key_have_one_winner(storage: KeyStorage) -> None:
    shares = [sample_share(i) for i in range(8)]
    barrier = threading.Barrier(len(shares))
    outcomes: dict[int, str] = {}

    def attempt(i: int) -> None:
        barrier.wait()
        try:
            storage.insert(K1, shares[i])
            outcomes[i] = "won"
        except ServerKeyAlreadyGenerated:
            outcomes[i] = "refused"

    threads = [threading.Thread(target=attempt, args=(i,)) for i in range(len(shares))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    winners = [i for i, outcome in outcomes.items() if outcome == "won"]
    assert len(outcomes) == len(shares)
    assert len(winners) == 1
    assert storage.get(K1) == shares[winners[0]]


def test_concurrent_inserts_of_distinct_keys_all_land(storage: KeyStorage) -> None:
    def insert_range(start: int) -> None:
        for i in range(start, start + 10):
            storage.insert(sample_key_id(i), S1)

    threads = [threading.Thread(target=insert_range, args=(start,)) for start in (0, 10, 20, 30)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert list(storage.ids()) == sorted(sample_key_id(i) for i in range(40))


OPERATIONS = st.lists(
    st.tuples(
        st.sampled_from(["insert", "update", "remove", "get", "contains"]),
        st.sampled_from([K1, K2, K3]),
        st.integers(0, 3),
    ),
    max_size=12,
)


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture], max_examples=25)
@given(ops=OPERATIONS, extra=key_shares())
def test_behaves_like_a_dict(
    make_storage: Factory, ops: list[tuple[str, ServerKeyId, int]], extra: KeyShare
) -> None:
    storage = make_storage()
    pool = [S1, S2, sample_share(3), extra]
    model: dict[ServerKeyId, KeyShare] = {}
    for op, key, which in ops:
        share = pool[which]
        if op == "insert":
            if key in model:
                with pytest.raises(ServerKeyAlreadyGenerated):
                    storage.insert(key, share)
            else:
                storage.insert(key, share)
                model[key] = share
        elif op == "update":
            if key in model:
                storage.update(key, share)
                model[key] = share
            else:
                with pytest.raises(ServerKeyNotFound):
                    storage.update(key, share)
        elif op == "remove":
            assert storage.remove(key) is (model.pop(key, None) is not None)
        elif op == "get":
            assert storage.get(key) == model.get(key)
        else:
            assert storage.contains(key) is (key in model)
    assert list(storage.ids()) == sorted(model)
    for key, share in model.items():
        assert storage.get(key) == share
    storage.close()


# --- tombstones and named values ----------------------------------------------------------------


def sample_tombstone(key_id: ServerKeyId, share: KeyShare) -> Tombstone:
    return Tombstone(key_id, share.public, share.author, b"\x07" * 64 + b"\x01")


def test_bury_erases_the_share_and_keeps_the_tombstone(storage: KeyStorage) -> None:
    storage.insert(K1, S1)
    storage.insert(K2, S2)
    assert storage.get(K1) == S1  # cached where there is a cache
    tombstone = sample_tombstone(K1, S1)
    assert storage.bury(K1, tombstone) is True
    assert storage.get(K1) is None
    assert not storage.contains(K1)
    assert list(storage.ids()) == [K2]
    assert storage.tombstone(K1) == tombstone
    assert storage.tombstone(K2) is None
    assert storage.bury(K1, tombstone) is False  # nothing left to erase; the tombstone stays
    assert list(storage.tombstones()) == [tombstone]
    storage.insert(K1, S2)  # a later key under the same id
    assert storage.get(K1) == S2
    assert storage.tombstone(K1) == tombstone


def test_tombstones_are_listed_in_key_order_from_a_snapshot(storage: KeyStorage) -> None:
    keys = sorted(sample_key_id(i) for i in range(10))
    for key in reversed(keys):
        storage.bury(key, sample_tombstone(key, S1))
    listing = storage.tombstones()
    storage.bury(K3, sample_tombstone(K3, S1))
    assert [t.key_id for t in listing] == keys


def test_a_tombstone_must_name_its_key(storage: KeyStorage) -> None:
    storage.insert(K1, S1)
    with pytest.raises(InvalidEncoding):
        storage.bury(K1, sample_tombstone(K2, S1))
    assert storage.get(K1) == S1
    assert storage.tombstone(K1) is None


def test_named_values(storage: KeyStorage) -> None:
    assert storage.get_meta("refresh-cursor") is None
    storage.put_meta("refresh-cursor", b"\x01\x02")
    assert storage.get_meta("refresh-cursor") == b"\x01\x02"
    storage.put_meta("refresh-cursor", None)
    assert storage.get_meta("refresh-cursor") is None
    for bad in ("", "a/b", "x" * 65, "é"):
        with pytest.raises(InvalidEncoding):
            storage.put_meta(bad, b"")
    assert list(storage.ids()) == []


def test_tombstones_and_named_values_survive_a_reopen(tmp_path: Path) -> None:
    with LevelDbKeyStorage(tmp_path / "db") as storage:
        storage.insert(K1, S1)
        storage.bury(K1, sample_tombstone(K1, S1))
        storage.put_meta("cursor", b"abc")
    with LevelDbKeyStorage(tmp_path / "db") as storage:
        assert storage.get(K1) is None
        assert storage.tombstone(K1) == sample_tombstone(K1, S1)
        assert storage.get_meta("cursor") == b"abc"
        with pytest.raises(InvalidEncoding):
            storage.get_meta("schema")
