"""Document key store on a simulated network: the stored key decrypts to the client's key."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from secretstore.crypto.curve import Point, Scalar
from secretstore.crypto.keys import KeyPair
from secretstore.crypto.rng import SeededRng, random_scalar
from secretstore.errors import (
    AccessDenied,
    ConsensusUnreachable,
    DocumentKeyAlreadyStored,
    ServerKeyNotFound,
    SessionTimeout,
)
from secretstore.sessions.base import Fail, Finish
from secretstore.sessions.encryption import StoreDocumentKey
from secretstore.types import ServerKeyId
from tests.sim.harness import RandomScheduler, SimNetwork
from tests.sim.key_sessions import (
    AUTHOR_PROOF,
    KEY,
    MASTERS,
    SLAVES,
    all_sessions_ended,
    generate,
    outcome,
    proof_of,
    reconstruct,
    stored_shares,
)

t_and_n = st.integers(1, 6).flatmap(lambda n: st.tuples(st.integers(0, n - 1), st.just(n)))


def network(n: int, seed: int, schedule: int | None = None) -> SimNetwork:
    scheduler = RandomScheduler(schedule) if schedule is not None else None
    return SimNetwork(n, MASTERS, SLAVES, seed=seed, scheduler=scheduler)


def encrypt(document_key: Point, public: Point, seed: int) -> tuple[Point, Point]:
    """Parity's encrypt_secret: C = k·G, E = M + k·Y."""
    k = random_scalar(SeededRng(seed))
    return Point.base_mul(k), document_key + public * k


def document_key(seed: int) -> Point:
    return Point.base_mul(random_scalar(SeededRng(seed + 10**6)))


def stored_document_keys(net: SimNetwork) -> set[tuple[Point | None, Point | None]]:
    return {(s.common_point, s.encrypted_point) for s in stored_shares(net).values()}


@given(t_and_n, st.integers(0, 2**16), st.integers(0, 2**32), st.data())
def test_every_holder_stores_the_document_key_and_t_plus_1_decrypt_it(
    tn: tuple[int, int], seed: int, schedule: int, data: st.DataObject
) -> None:
    t, n = tn
    net = network(n, seed, schedule)
    public = generate(net, t, data.draw(st.integers(0, n - 1), label="generator"))
    secret_m = document_key(seed)
    common, encrypted = encrypt(secret_m, public, seed)
    master = data.draw(st.integers(0, n - 1), label="master")
    sid = net.start(master, StoreDocumentKey(KEY, AUTHOR_PROOF, common, encrypted))
    net.run()
    assert net.value(master, sid) is None
    shares = stored_shares(net)
    assert stored_document_keys(net) == {(common, encrypted)}
    holders = data.draw(
        st.lists(st.sampled_from(sorted(shares)), min_size=t + 1, max_size=t + 1, unique=True)
    )
    x = reconstruct(shares, holders)
    assert encrypted - common * x == secret_m
    assert all_sessions_ended(net)


def test_only_the_author_stores_and_only_once() -> None:
    net = network(3, 1)
    public = generate(net, 1)
    common, encrypted = encrypt(document_key(1), public, 1)
    stranger = KeyPair.generate(SeededRng(b"stranger"))
    sid = net.start(1, StoreDocumentKey(KEY, proof_of(stranger), common, encrypted))
    net.run()
    with pytest.raises(AccessDenied):
        net.value(1, sid)
    assert stored_document_keys(net) == {(None, None)}
    sid = net.start(1, StoreDocumentKey(KEY, AUTHOR_PROOF, common, encrypted))
    net.run()
    assert net.value(1, sid) is None
    other_common, other_encrypted = encrypt(document_key(2), public, 2)
    sid = net.start(2, StoreDocumentKey(KEY, AUTHOR_PROOF, other_common, other_encrypted))
    net.run()
    with pytest.raises(DocumentKeyAlreadyStored):
        net.value(2, sid)
    assert stored_document_keys(net) == {(common, encrypted)}


def test_unknown_key_is_not_found() -> None:
    net = network(2, 2)
    point = Point.base_mul(Scalar(3))
    sid = net.start(0, StoreDocumentKey(ServerKeyId(b"\x09" * 32), AUTHOR_PROOF, point, point))
    with pytest.raises(ServerKeyNotFound):
        net.value(0, sid)


def test_a_disconnected_holder_refuses_the_store() -> None:
    net = network(3, 3)
    public = generate(net, 1)
    net.disconnect(net.order[2])
    common, encrypted = encrypt(document_key(3), public, 3)
    sid = net.start(0, StoreDocumentKey(KEY, AUTHOR_PROOF, common, encrypted))
    with pytest.raises(ConsensusUnreachable):
        net.value(0, sid)


@given(st.integers(0, 12), st.integers(0, 2**32))
def test_a_disconnect_fails_the_store_and_nothing_differs(steps: int, schedule: int) -> None:
    net = network(4, 4, schedule)
    public = generate(net, 2)
    common, encrypted = encrypt(document_key(4), public, 4)
    sid = net.start(0, StoreDocumentKey(KEY, AUTHOR_PROOF, common, encrypted))
    net.run(max_steps=steps)
    finished_before = net.result(0, sid)
    net.disconnect(net.order[3])
    net.run()
    result = outcome(net, 0, sid)
    if finished_before is None:
        assert isinstance(result, Fail)
    # a document key is stored either nowhere, or (after the commit) as the client sent it
    assert stored_document_keys(net) <= {(None, None), (common, encrypted)}


@given(st.integers(0, 2**32), st.integers(0, 2**16))
def test_concurrent_stores_at_most_one_succeeds_and_all_agree(schedule: int, seed: int) -> None:
    net = network(4, seed, schedule)
    public = generate(net, 1)
    first = encrypt(document_key(seed), public, seed)
    second = encrypt(document_key(seed + 1), public, seed + 1)
    sid_a = net.start(0, StoreDocumentKey(KEY, AUTHOR_PROOF, *first))
    sid_b = net.start(3, StoreDocumentKey(KEY, AUTHOR_PROOF, *second))
    net.run()
    results = [outcome(net, 0, sid_a), outcome(net, 3, sid_b)]
    winners = [i for i, r in enumerate(results) if isinstance(r, Finish)]
    assert len(winners) <= 1
    if winners:
        assert stored_document_keys(net) == {(first, second)[winners[0]]}
    else:
        assert stored_document_keys(net) == {(None, None)}
    assert all_sessions_ended(net)


def test_time_out_leaves_nothing_stored() -> None:
    net = network(3, 5)
    public = generate(net, 1)
    sid = net.start(0, StoreDocumentKey(KEY, AUTHOR_PROOF, *encrypt(document_key(5), public, 5)))
    net.run(max_steps=1)
    net.time_out_all()
    net.run()
    with pytest.raises(SessionTimeout):
        net.value(0, sid)
    assert stored_document_keys(net) == {(None, None)}
    assert all_sessions_ended(net)
