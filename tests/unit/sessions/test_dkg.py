"""DkgRun fed by hand: full runs among n objects, every check that names a faulty dealer."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from secretstore.crypto import dkg as crypto_dkg
from secretstore.crypto.curve import ONE, ZERO, Point, Scalar, hash_to_point
from secretstore.crypto.dkg import Dealing
from secretstore.crypto.keys import KeyPair
from secretstore.crypto.rng import Rng, SeededRng, random_scalar
from secretstore.crypto.shamir import random_id_numbers, reconstruct_secret
from secretstore.errors import (
    InvalidPoint,
    InvalidRequest,
    InvalidScalar,
    ProtocolViolation,
)
from secretstore.sessions.base import short
from secretstore.sessions.dkg import DkgPhase, DkgResult, DkgRun, Outgoing
from secretstore.types import Hash256, NodeId
from secretstore.wire import codec
from secretstore.wire.dkg import DkgAgreement, DkgKeys, DkgShareProof

H = hash_to_point(b"test derived point")
Tamper = Callable[[NodeId, NodeId, object], object]


def make_nodes(n: int, seed: int) -> dict[NodeId, Scalar]:
    rng = SeededRng(seed)
    ids = sorted(KeyPair.generate(rng).node_id for _ in range(n))
    return dict(zip(ids, random_id_numbers(n, rng), strict=True))


def make_runs(
    id_numbers: dict[NodeId, Scalar], threshold: int, seed: int = 1, **options: bool
) -> dict[NodeId, DkgRun]:
    return {
        node: DkgRun(node, SeededRng(seed * 100 + i), id_numbers, threshold, H, **options)
        for i, node in enumerate(id_numbers)
    }


def run_all(
    runs: dict[NodeId, DkgRun],
    seed: int = 0,
    tamper: Tamper | None = None,
) -> None:
    """Start every run, deliver (through the codec) in a seeded order, FIFO per link."""
    order = SeededRng(seed)
    pending: list[tuple[NodeId, NodeId, bytes]] = []

    def queue(sender: NodeId, out: list[Outgoing]) -> None:
        for to, message in out:
            sent = tamper(sender, to, message) if tamper else message
            pending.append((sender, to, codec.encode(sent)))

    starters = list(runs)
    while starters or pending:
        pick = int.from_bytes(order.random_bytes(4), "big") % (len(starters) + len(pending))
        if pick < len(starters):
            node = starters.pop(pick)
            queue(node, runs[node].start())
            continue
        sender, to, _ = pending[pick - len(starters)]
        index = next(i for i, p in enumerate(pending) if p[0] == sender and p[1] == to)
        _, _, data = pending.pop(index)
        queue(to, runs[to].on_message(sender, codec.decode(data)))


def reconstruct(results: list[DkgResult], threshold: int) -> Scalar:
    chosen = results[: threshold + 1]
    ids = dict(results[0].id_numbers)
    return reconstruct_secret(
        threshold,
        [r.secret_share for r in chosen],
        [ids[node] for node in sorted(ids)][: threshold + 1],
    )


def results_in_node_order(runs: dict[NodeId, DkgRun]) -> list[DkgResult]:
    out = []
    for node in sorted(runs):
        result = runs[node].result
        assert result is not None
        out.append(result)
    return out


# --- full runs -------------------------------------------------------------------------------


@given(
    st.integers(1, 6).flatmap(lambda n: st.tuples(st.just(n), st.integers(0, n - 1))),
    st.integers(0, 2**32),
)
def test_any_t_plus_1_shares_give_the_secret_of_the_joint_public(
    tn: tuple[int, int], seed: int
) -> None:
    n, t = tn
    runs = make_runs(make_nodes(n, seed), t, seed)
    run_all(runs, seed)
    results = results_in_node_order(runs)
    publics = {r.joint_public for r in results}
    assert len(publics) == 1
    joint_public = results[0].joint_public
    assert joint_public is not None
    # every window of t+1 nodes reconstructs the same secret, whose public is the result
    for start in range(n - t):
        window = results[start : start + t + 1]
        ids = [x for _, x in window[0].id_numbers][start : start + t + 1]
        secret = reconstruct_secret(t, [r.secret_share for r in window], ids)
        assert Point.base_mul(secret) == joint_public
    for r in results:
        assert r.share_proofs == results[0].share_proofs
        assert sum((r.public_share(node) for node in sorted(runs)), Point.identity()) == (
            joint_public
        )
    for node, r in zip(sorted(runs), results, strict=True):
        assert results[0].share_public(node) == Point.base_mul(r.secret_share)
        assert runs[node].done and runs[node].phase is DkgPhase.DONE


def test_key_commitments_are_checked_against_the_joint_public_and_the_own_share() -> None:
    runs = make_runs(make_nodes(3, 8), 1, 8)
    run_all(runs, 8)
    nodes = sorted(runs)
    result = runs[nodes[0]].result
    assert result is not None and result.share_proofs is not None
    commitments = result.key_commitments(nodes[0])
    assert commitments[0] == result.joint_public
    for node in nodes:  # every node computes the same ones for itself
        other = runs[node].result
        assert other is not None and other.key_commitments(node) == commitments
    with pytest.raises(InvalidRequest, match="this node's share"):
        replace(result, secret_share=result.secret_share + Scalar(1)).key_commitments(nodes[0])
    with pytest.raises(InvalidRequest, match="this node's share"):
        result.key_commitments(nodes[1])  # another node's share is not this one
    with pytest.raises(InvalidRequest, match="joint public"):
        replace(result, joint_public=Point.base_mul(Scalar(5))).key_commitments(nodes[0])
    with pytest.raises(InvalidRequest, match="run with publics"):
        replace(result, share_proofs=None).key_commitments(nodes[0])


def test_t_shares_do_not_give_the_secret() -> None:
    runs = make_runs(make_nodes(4, 3), 2, 3)
    run_all(runs, 3)
    results = results_in_node_order(runs)
    ids = [x for _, x in results[0].id_numbers]
    two = reconstruct_secret(1, [r.secret_share for r in results[:2]], ids[:2])
    assert Point.base_mul(two) != results[0].joint_public


def test_single_node_finishes_on_start_without_messages() -> None:
    runs = make_runs(make_nodes(1, 5), 0)
    (run,) = runs.values()
    assert run.start() == []
    assert run.result is not None
    assert run.result.joint_public == Point.base_mul(run.result.secret_share)


@given(
    st.integers(0, 2).flatmap(lambda t: st.tuples(st.just(t), st.integers(2 * t + 1, 2 * t + 3))),
    st.integers(0, 2**32),
)
def test_zero_secret_shares_reconstruct_zero(tn: tuple[int, int], seed: int) -> None:
    degree, n = tn[0] * 2, tn[1]
    runs = make_runs(make_nodes(n, seed), degree, seed, zero_secret=True)
    run_all(runs, seed)
    results = results_in_node_order(runs)
    assert all(r.joint_public is None for r in results)
    assert reconstruct(results, degree) == ZERO
    assert all(r.public_share(node).is_identity() for r in results for node in sorted(runs))


def test_without_publics_ends_after_the_keys_round() -> None:
    runs = make_runs(make_nodes(4, 7), 1, 7, with_publics=False)
    sent: list[object] = []

    def spy(sender: NodeId, to: NodeId, message: object) -> object:
        sent.append(message)
        return message

    run_all(runs, 7, spy)
    assert all(isinstance(m, DkgKeys) for m in sent) and len(sent) == 12
    results = results_in_node_order(runs)
    assert all(r.joint_public is None and r.share_proofs is None for r in results)
    secret_a = reconstruct(results, 1)
    secret_b = reconstruct_secret(
        1, [r.secret_share for r in results[2:]], [x for _, x in results[0].id_numbers][2:]
    )
    assert secret_a == secret_b
    with pytest.raises(InvalidRequest):
        results[0].public_share(sorted(runs)[0])
    with pytest.raises(InvalidRequest):
        results[0].share_public(sorted(runs)[0])


def test_messages_before_start_are_kept() -> None:
    nodes = make_nodes(3, 9)
    runs = make_runs(nodes, 1, 9)
    a, b, c = sorted(nodes)
    out_b = runs[b].start()
    out_c = runs[c].start()
    # a receives everything addressed to it before it starts
    for sender, out in ((b, out_b), (c, out_c)):
        for to, message in out:
            if to == a:
                assert runs[a].on_message(sender, message) == []
    assert runs[a].phase is DkgPhase.NOT_STARTED
    out_a = runs[a].start()
    # a has every key: it deals and sends its share proof at once
    kinds = sorted(type(m).__name__ for _, m in out_a)
    assert kinds == ["DkgKeys", "DkgKeys", "DkgShareProof", "DkgShareProof"]
    with pytest.raises(InvalidRequest):
        runs[a].start()


def test_result_repr_hides_the_share() -> None:
    runs = make_runs(make_nodes(2, 11), 1, 11)
    run_all(runs, 11)
    result = results_in_node_order(runs)[0]
    text = repr(result)
    assert "secret" not in text and result.secret_share.to_bytes().hex() not in text


# --- faulty dealers are named ------------------------------------------------------------


def _run_expecting_blame(runs: dict[NodeId, DkgRun], culprit: NodeId, tamper: Tamper) -> str:
    with pytest.raises(ProtocolViolation) as info:
        run_all(runs, 1, tamper)
    assert info.value.node == short(culprit)
    return info.value.what


def test_a_bad_share_names_its_dealer() -> None:
    nodes = make_nodes(4, 13)
    culprit = sorted(nodes)[2]

    def bad_share(sender: NodeId, to: NodeId, message: object) -> object:
        if sender == culprit and isinstance(message, DkgKeys):
            return replace(message, secret1=message.secret1 + Scalar(1))
        return message

    what = _run_expecting_blame(make_runs(nodes, 1, 13), culprit, bad_share)
    assert "commitments" in what


@pytest.mark.parametrize("field", ["secret1", "secret2"])
def test_one_bad_share_among_many_names_its_dealer(field: str) -> None:
    # twelve dealers, one of which deals a single receiver one value off: every dealing is
    # checked at once, the sum fails, and the dealer-by-dealer check names the culprit
    nodes = make_nodes(12, 21)
    culprit, victim = sorted(nodes)[7], sorted(nodes)[3]

    def one_bad_share(sender: NodeId, to: NodeId, message: object) -> object:
        if sender == culprit and to == victim and isinstance(message, DkgKeys):
            return replace(message, **{field: getattr(message, field) + Scalar(5)})
        return message

    runs = make_runs(nodes, 4, 21)
    with pytest.raises(ProtocolViolation) as info:
        run_all(runs, 21, one_bad_share)
    assert info.value.node == short(culprit)
    assert info.value.what == "dealt keys that do not match its commitments"
    # the receiver that caught it is the one dealt the bad value
    assert runs[victim].result is None and runs[victim].phase is DkgPhase.WAITING_FOR_KEYS


def test_one_bad_share_proof_among_many_names_its_dealer() -> None:
    nodes = make_nodes(12, 22)
    culprit = sorted(nodes)[10]
    other = Point.base_mul(Scalar(777))

    def bad_proof(sender: NodeId, to: NodeId, message: object) -> object:
        if sender == culprit and isinstance(message, DkgShareProof):
            proof = message.share_proof
            return replace(message, share_proof=(*proof[:-1], proof[-1] + other))
        return message

    what = _run_expecting_blame(make_runs(nodes, 4, 22), culprit, bad_proof)
    assert what == "share proof does not open its Pedersen commitments"


def test_wrong_number_of_commitments_names_its_dealer() -> None:
    nodes = make_nodes(3, 14)
    culprit = sorted(nodes)[0]

    def short_publics(sender: NodeId, to: NodeId, message: object) -> object:
        if sender == culprit and isinstance(message, DkgKeys):
            return replace(message, publics=message.publics[:-1])
        return message

    _run_expecting_blame(make_runs(nodes, 1, 14), culprit, short_publics)


def test_a_share_proof_not_matching_the_dealt_keys_is_named() -> None:
    nodes = make_nodes(3, 15)
    culprit = sorted(nodes)[1]
    other = Point.base_mul(Scalar(12345))

    def bad_proof(sender: NodeId, to: NodeId, message: object) -> object:
        if sender == culprit and isinstance(message, DkgShareProof):
            return replace(message, share_proof=(other, *message.share_proof[1:]))
        return message

    what = _run_expecting_blame(make_runs(nodes, 1, 15), culprit, bad_proof)
    assert "share proof" in what


def test_a_nonzero_free_term_in_a_zero_run_is_detected(monkeypatch: pytest.MonkeyPatch) -> None:
    nodes = make_nodes(3, 16)
    culprit = sorted(nodes)[0]
    runs = make_runs(nodes, 2, 16, zero_secret=True)
    # the culprit deals (and honestly commits to) a sharing of a nonzero value
    culprit_rng = runs[culprit]._rng
    real_deal = crypto_dkg.deal

    def deal(threshold: int, derived: Point, rng: Rng, *, is_zero: bool = False) -> Dealing:
        return real_deal(threshold, derived, rng, is_zero=is_zero and rng is not culprit_rng)

    monkeypatch.setattr(crypto_dkg, "deal", deal)
    what = _run_expecting_blame(runs, culprit, lambda sender, to, message: message)
    # its Feldman free term (the identity) does not open its Pedersen commitment
    assert "share proof does not open its Pedersen commitments" in what


def test_feldman_commitments_that_do_not_open_the_pedersen_ones_are_named() -> None:
    # two nodes, threshold 1: the only receiver's value does not pin the dealer's free term,
    # so a dealer could move it after the keys round; the blinding opening pins it
    nodes = make_nodes(2, 19)
    receiver, culprit = sorted(nodes)
    runs = make_runs(nodes, 1, 19)
    x = runs[culprit]._id_numbers[receiver]
    a = Scalar(7)

    def moved(sender: NodeId, to: NodeId, message: object) -> object:
        # f + a·(1 - X/x): the same value at the receiver, a free term moved by a
        if sender == culprit and isinstance(message, DkgShareProof):
            f0, f1 = message.share_proof
            shifted = (f0 + Point.base_mul(a), f1 - Point.base_mul(a / x))
            return replace(message, share_proof=shifted)
        return message

    what = _run_expecting_blame(runs, culprit, moved)
    assert what == "share proof does not open its Pedersen commitments"

    def reblinded(sender: NodeId, to: NodeId, message: object) -> object:
        if sender == culprit and isinstance(message, DkgShareProof):
            first, *rest = message.blinding
            return replace(message, blinding=(first + ONE, *rest))
        return message

    what = _run_expecting_blame(make_runs(nodes, 1, 19), culprit, reblinded)
    assert "does not open its Pedersen commitments" in what


def test_blinding_of_wrong_length_is_a_violation() -> None:
    _, b, run, _ = _started_pair()
    with pytest.raises(ProtocolViolation, match="blinding") as info:
        run.on_message(b, DkgShareProof(Hash256(bytes(32)), (H, H), (ONE,)))
    assert info.value.node == short(b)


def test_equivocated_commitments_are_caught_by_the_footprints() -> None:
    nodes = make_nodes(3, 17)
    a, _, c = sorted(nodes)
    rng = SeededRng(99)

    def equivocate(sender: NodeId, to: NodeId, message: object) -> object:
        # a sends c keys and commitments of another (valid) polynomial pair
        if sender == a and to == c and isinstance(message, DkgKeys):
            other = crypto_dkg.deal(1, H, rng)
            values = other.values_for(nodes[c])
            return DkgKeys(values.secret1, values.secret2, other.publics)
        return message

    runs = make_runs(nodes, 1, 17)
    with pytest.raises(ProtocolViolation) as info:
        run_all(runs, 4, equivocate)
    assert "other commitments" in info.value.what


def test_differing_share_proof_footprints_are_named() -> None:
    nodes = make_nodes(3, 18)
    culprit = sorted(nodes)[2]

    def lie(sender: NodeId, to: NodeId, message: object) -> object:
        if sender == culprit and isinstance(message, DkgAgreement):
            return DkgAgreement(Hash256(bytes(32)))
        return message

    what = _run_expecting_blame(make_runs(nodes, 1, 18), culprit, lie)
    assert "share proofs" in what


# --- rejected messages -------------------------------------------------------------------


def _started_pair() -> tuple[NodeId, NodeId, DkgRun, list[Outgoing]]:
    nodes = make_nodes(2, 20)
    a, b = sorted(nodes)
    runs = make_runs(nodes, 1, 20)
    runs[a].start()
    return a, b, runs[a], runs[b].start()


def test_duplicate_keys_are_a_violation() -> None:
    _, b, run, out = _started_pair()
    keys = out[0][1]
    run.on_message(b, keys)
    with pytest.raises(ProtocolViolation, match="twice"):
        run.on_message(b, keys)


def test_duplicate_share_proof_and_agreement_are_violations() -> None:
    nodes = make_nodes(3, 21)
    a, b, c = sorted(nodes)
    runs = make_runs(nodes, 1, 21)
    runs[a].start()
    proof = DkgShareProof(Hash256(bytes(32)), (H, H), (ONE, ONE))
    runs[a].on_message(b, proof)
    with pytest.raises(ProtocolViolation, match="twice"):
        runs[a].on_message(b, proof)
    runs[a].on_message(c, DkgAgreement(Hash256(bytes(32))))
    with pytest.raises(ProtocolViolation, match="twice"):
        runs[a].on_message(c, DkgAgreement(Hash256(bytes(32))))


def test_share_proof_of_wrong_length_is_a_violation() -> None:
    _, b, run, _ = _started_pair()
    with pytest.raises(ProtocolViolation) as info:
        run.on_message(b, DkgShareProof(Hash256(bytes(32)), (H,), (ONE, ONE)))
    assert info.value.node == short(b)


def test_public_rounds_in_a_run_without_publics_are_violations() -> None:
    nodes = make_nodes(2, 22)
    a, b = sorted(nodes)
    runs = make_runs(nodes, 1, 22, with_publics=False)
    with pytest.raises(ProtocolViolation):
        runs[a].on_message(b, DkgShareProof(Hash256(bytes(32)), (H, H), (ONE, ONE)))
    with pytest.raises(ProtocolViolation):
        runs[a].on_message(b, DkgAgreement(Hash256(bytes(32))))


def test_strangers_self_and_foreign_messages_are_violations() -> None:
    a, b, run, _ = _started_pair()
    stranger = KeyPair.generate(SeededRng(5)).node_id
    with pytest.raises(ProtocolViolation, match="not a participant"):
        run.on_message(stranger, DkgAgreement(Hash256(bytes(32))))
    with pytest.raises(ProtocolViolation, match="not a participant"):
        run.on_message(a, DkgAgreement(Hash256(bytes(32))))
    with pytest.raises(ProtocolViolation, match="str"):
        run.on_message(b, "hello")


def test_construction_errors() -> None:
    nodes = make_nodes(3, 23)
    a = sorted(nodes)[0]
    rng = SeededRng(1)
    with pytest.raises(InvalidRequest):
        DkgRun(a, rng, nodes, 3, H)
    with pytest.raises(InvalidRequest):
        DkgRun(a, rng, nodes, -1, H)
    with pytest.raises(InvalidRequest):
        DkgRun(KeyPair.generate(rng).node_id, rng, nodes, 1, H)
    same = dict.fromkeys(nodes, random_scalar(rng))
    with pytest.raises(InvalidRequest):
        DkgRun(a, rng, same, 1, H)
    with pytest.raises(InvalidScalar):
        DkgRun(a, rng, {**nodes, a: ZERO}, 1, H)
    with pytest.raises(InvalidPoint):
        DkgRun(a, rng, nodes, 1, Point.identity())
