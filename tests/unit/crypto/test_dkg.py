"""ECDKG: full generation runs (Parity's cases), blame of faulty dealers, share proofs, errors."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from secretstore.crypto import dkg, shamir
from secretstore.crypto.curve import ONE, ZERO, N, Point, Scalar, scalar_sum
from secretstore.crypto.rng import SeededRng, random_scalar
from secretstore.errors import InvalidPoint, InvalidRequest, InvalidScalar, ProtocolViolation

from .dkg_sim import PARITY_CASES, KeyGeneration, run_key_generation

seeds = st.integers(min_value=0, max_value=2**64)


@st.composite
def generation_case(draw: st.DrawFn) -> tuple[int, int, list[int], int]:
    """(t, n, a random ordering of the nodes, seed) with n ≤ 6."""
    n = draw(st.integers(min_value=1, max_value=6))
    t = draw(st.integers(min_value=0, max_value=n - 1))
    return t, n, draw(st.permutations(range(n))), draw(seeds)


def received_by(gen: KeyGeneration, receiver: int) -> dict[int, dkg.ReceivedKeys]:
    out = {}
    for i, dealing in enumerate(gen.dealings):
        values = dealing.values_for(gen.id_numbers[receiver])
        out[i] = dkg.ReceivedKeys(values.secret1, values.secret2, dealing.publics)
    return out


@pytest.mark.parametrize(("t", "n"), PARITY_CASES)
def test_full_generation(t: int, n: int) -> None:
    gen = run_key_generation(t, n, SeededRng(t * 100 + n))
    # the joint public is the public of the (never assembled) joint secret
    assert gen.joint_public == Point.base_mul(gen.joint_secret)
    # every share lies on the sum of the dealers' polynomials
    summed = [scalar_sum(d.polynomial1[k] for d in gen.dealings) for k in range(t + 1)]
    for x, share in zip(gen.id_numbers, gen.secret_shares, strict=True):
        assert shamir.evaluate_polynomial(summed, x) == share
    # t+1 shares give the secret back, and each share's public follows from the share proofs
    assert (
        shamir.reconstruct_secret(t, gen.secret_shares[: t + 1], gen.id_numbers[: t + 1])
        == gen.joint_secret
    )
    for node in range(n):
        assert gen.share_public(node) == Point.base_mul(gen.secret_shares[node])


@given(generation_case())
def test_any_t_plus_one_shares_agree_and_t_do_not(
    case: tuple[int, int, list[int], int],
) -> None:
    t, n, order, seed = case
    gen = run_key_generation(t, n, SeededRng(seed))
    chosen = order[: t + 1]
    ids = [gen.id_numbers[k] for k in chosen]
    secret = shamir.reconstruct_secret(t, [gen.secret_shares[k] for k in chosen], ids)
    assert secret == gen.joint_secret
    point = shamir.reconstruct_point(t, [gen.share_public(k) for k in chosen], ids)
    assert point == gen.joint_public
    if t > 0:
        few = chosen[:t]
        guess = shamir.interpolate_at_zero(
            [gen.secret_shares[k] for k in few], [gen.id_numbers[k] for k in few]
        )
        assert guess != gen.joint_secret


@given(generation_case(), st.sampled_from(["secret1", "secret2", "publics"]))
def test_tampered_dealing_identifies_its_sender(
    case: tuple[int, int, list[int], int], field: str
) -> None:
    t, n, order, seed = case
    if n < 2:
        return
    gen = run_key_generation(t, n, SeededRng(seed))
    receiver, cheater = order[0], order[1]
    received = received_by(gen, receiver)
    good = received[cheater]
    if field == "secret1":
        bad = dkg.ReceivedKeys(good.secret1 + ONE, good.secret2, good.publics)
    elif field == "secret2":
        bad = dkg.ReceivedKeys(good.secret1, good.secret2 + ONE, good.publics)
    else:
        k = seed % (t + 1)
        publics = list(good.publics)
        publics[k] = publics[k] + Point.base_mul(ONE)
        bad = dkg.ReceivedKeys(good.secret1, good.secret2, tuple(publics))
    received[cheater] = bad
    assert not dkg.keys_verification(t, gen.derived_point, gen.id_numbers[receiver], bad)
    assert dkg.find_faulty_senders(t, gen.derived_point, gen.id_numbers[receiver], received) == [
        cheater
    ]
    with pytest.raises(ProtocolViolation) as err:
        dkg.require_valid_keys(t, gen.derived_point, gen.id_numbers[receiver], received)
    assert err.value.node == str(cheater)


def test_blame_names_bytes_node_ids_in_hex() -> None:
    gen = run_key_generation(1, 3, SeededRng(7))
    received = {bytes([k]) * 64: keys for k, keys in received_by(gen, 0).items()}
    node = bytes([2]) * 64
    good = received[node]
    received[node] = dkg.ReceivedKeys(good.secret1, good.secret1, good.publics)
    with pytest.raises(ProtocolViolation) as err:
        dkg.require_valid_keys(1, gen.derived_point, gen.id_numbers[0], received)
    assert err.value.node == node.hex()
    dkg.require_valid_keys(1, gen.derived_point, gen.id_numbers[1], received_by(gen, 1))


def test_values_dealt_for_another_node_fail() -> None:
    gen = run_key_generation(2, 4, SeededRng(8))
    for_node_1 = received_by(gen, 1)[3]
    assert not dkg.keys_verification(2, gen.derived_point, gen.id_numbers[0], for_node_1)


def test_wrong_number_of_commitments() -> None:
    gen = run_key_generation(2, 4, SeededRng(9))
    received = received_by(gen, 0)
    short = received[1]
    short = dkg.ReceivedKeys(short.secret1, short.secret2, short.publics[:-1])
    with pytest.raises(InvalidRequest):
        dkg.keys_verification(2, gen.derived_point, gen.id_numbers[0], short)
    received[1] = short
    assert dkg.find_faulty_senders(2, gen.derived_point, gen.id_numbers[0], received) == [1]
    with pytest.raises(InvalidRequest):
        dkg.share_proof_verification(2, gen.id_numbers[0], ONE, gen.dealings[0].share_proof[:2])
    with pytest.raises(InvalidRequest):
        dkg.public_values_generation(2, gen.derived_point, [ONE] * 3, [ONE] * 2)


def test_tampered_share_proof_identifies_its_sender() -> None:
    gen = run_key_generation(2, 5, SeededRng(10))
    me = 3
    secrets1 = {i: v.secret1 for i, v in received_by(gen, me).items()}
    proofs: dict[int, tuple[Point, ...]] = {i: d.share_proof for i, d in enumerate(gen.dealings)}
    # a dealer claiming a different public share (first Feldman commitment) is caught
    forged = list(proofs[4])
    forged[0] = forged[0] + Point.base_mul(ONE)
    proofs[4] = tuple(forged)
    del proofs[1]  # and a missing proof blames its dealer too
    proofs[2] = proofs[2][:2]  # as does a malformed one
    assert dkg.find_faulty_share_proofs(2, gen.id_numbers[me], secrets1, proofs) == [1, 2, 4]


@given(generation_case(), st.data())
def test_feldman_commitments_and_blinding_open_the_pedersen_commitments(
    case: tuple[int, int, list[int], int], data: st.DataObject
) -> None:
    t, n, _, seed = case
    gen = run_key_generation(t, n, SeededRng(seed))
    h = gen.derived_point
    for dealing in gen.dealings:
        opened = (dealing.publics, dealing.share_proof, dealing.polynomial2)
        assert dkg.share_proof_opens_commitments(t, h, *opened)
    # moving any Feldman commitment or blinding coefficient breaks the opening
    dealing = gen.dealings[data.draw(st.integers(0, n - 1))]
    k = data.draw(st.integers(0, t))
    moved = list(dealing.share_proof)
    moved[k] = moved[k] + Point.base_mul(ONE)
    assert not dkg.share_proof_opens_commitments(t, h, dealing.publics, moved, dealing.polynomial2)
    blinding = list(dealing.polynomial2)
    blinding[k] = blinding[k] + ONE
    assert not dkg.share_proof_opens_commitments(
        t, h, dealing.publics, dealing.share_proof, blinding
    )
    with pytest.raises(InvalidRequest):
        dkg.share_proof_opens_commitments(
            t, h, dealing.publics, dealing.share_proof, dealing.polynomial2[:-1]
        )


def test_zero_generation_shares_zero() -> None:
    for t, n in [(1, 4), (2, 4), (2, 5)]:
        gen = run_key_generation(t, n, SeededRng(t + n), is_zero=True)
        assert gen.joint_secret == ZERO
        assert all(d.share_proof[0].is_identity() for d in gen.dealings)
        assert (
            shamir.reconstruct_secret(t, gen.secret_shares[: t + 1], gen.id_numbers[: t + 1])
            == ZERO
        )
        with pytest.raises(InvalidPoint):
            dkg.compute_joint_public(gen.public_shares)


def test_specific_id_numbers_are_used() -> None:
    ids = [Scalar(k) for k in (3, 5, 11)]
    gen = run_key_generation(1, 3, SeededRng(11), ids)
    assert list(gen.id_numbers) == ids
    assert shamir.reconstruct_secret(1, gen.secret_shares[1:], ids[1:]) == gen.joint_secret


def test_single_node_generation() -> None:
    gen = run_key_generation(0, 1, SeededRng(12))
    assert gen.secret_shares[0] == gen.joint_secret
    assert gen.joint_public == Point.base_mul(gen.secret_shares[0])


def test_publics_footprint_is_order_independent_and_content_sensitive() -> None:
    rng = SeededRng(13)
    a, b = Point.base_mul(random_scalar(rng)), Point.base_mul(random_scalar(rng))
    one = dkg.publics_footprint({b"\x01" * 64: [a, b], b"\x02" * 64: [b]})
    two = dkg.publics_footprint({b"\x02" * 64: [b], b"\x01" * 64: [a, b]})
    assert one == two
    assert len(one) == 32
    assert dkg.publics_footprint({b"\x01" * 64: [b, a], b"\x02" * 64: [b]}) != one
    assert dkg.publics_footprint({b"\x01" * 64: [Point.identity()]}) != dkg.publics_footprint({})


# --- malformed input --------------------------------------------------------------------


def test_zero_id_number_is_invalid_scalar() -> None:
    gen = run_key_generation(1, 2, SeededRng(14))
    keys = received_by(gen, 0)[1]
    with pytest.raises(InvalidScalar):
        dkg.keys_verification(1, gen.derived_point, ZERO, keys)
    with pytest.raises(InvalidScalar):
        gen.dealings[0].values_for(ZERO)
    with pytest.raises(InvalidScalar):
        dkg.share_proof_verification(1, ZERO, ONE, gen.dealings[0].share_proof)
    with pytest.raises(InvalidScalar):
        dkg.secret_share_public(ZERO, [gen.dealings[0].share_proof])


def test_identity_derived_point_is_invalid_point() -> None:
    gen = run_key_generation(1, 2, SeededRng(15))
    keys = received_by(gen, 0)[1]
    with pytest.raises(InvalidPoint):
        dkg.keys_verification(1, Point.identity(), gen.id_numbers[0], keys)
    with pytest.raises(InvalidPoint):
        dkg.update_random_point(Point.identity(), SeededRng(0))
    with pytest.raises(InvalidPoint):
        dkg.deal(1, Point.identity(), SeededRng(0))


def test_negative_threshold_is_invalid_request() -> None:
    with pytest.raises(InvalidRequest):
        dkg.deal(-1, Point.base_mul(ONE), SeededRng(0))
    with pytest.raises(InvalidRequest):
        dkg.find_faulty_senders(-1, Point.base_mul(ONE), ONE, {})


@given(generation_case())
def test_joint_commitments_commit_to_the_joint_polynomial(
    case: tuple[int, int, list[int], int],
) -> None:
    t, n, _, seed = case
    gen = run_key_generation(t, n, SeededRng(seed))
    joint = dkg.joint_commitments(d.share_proof for d in gen.dealings)
    assert len(joint) == t + 1
    assert joint[0] == gen.joint_public
    summed = [scalar_sum(d.polynomial1[k] for d in gen.dealings) for k in range(t + 1)]
    assert joint == tuple(Point.base_mul(a) for a in summed)
    for node in range(n):
        x = gen.id_numbers[node]
        assert shamir.evaluate_point_polynomial(joint, x) == Point.base_mul(gen.secret_shares[node])


def test_joint_commitments_need_dealers_of_one_length() -> None:
    g = Point.base_mul(ONE)
    with pytest.raises(InvalidRequest):
        dkg.joint_commitments([])
    with pytest.raises(InvalidRequest):
        dkg.joint_commitments([()])
    with pytest.raises(InvalidRequest):
        dkg.joint_commitments([(g, g), (g,)])
    assert dkg.joint_commitments([(g,), (g,)]) == (g + g,)


def _batch_items(
    gen: KeyGeneration, receiver: int
) -> list[tuple[Scalar, tuple[Point, ...], tuple[Point, ...], tuple[Scalar, ...]]]:
    """(secret1, Pedersen commitments, Feldman commitments, blinding) of every dealer."""
    received = received_by(gen, receiver)
    return [
        (received[i].secret1, d.publics, d.share_proof, d.polynomial2)
        for i, d in enumerate(gen.dealings)
    ]


@given(generation_case(), st.data())
def test_batch_checks_pass_honest_dealings_and_fail_on_any_one_bad_value(
    case: tuple[int, int, list[int], int], data: st.DataObject
) -> None:
    t, n, order, seed = case
    gen = run_key_generation(t, n, SeededRng(seed))
    h, receiver = gen.derived_point, order[0]
    x = gen.id_numbers[receiver]
    received = received_by(gen, receiver)
    assert dkg.keys_verification_batch(t, h, x, received.values())
    assert dkg.share_proofs_verification_batch(t, h, x, _batch_items(gen, receiver))
    # one dealer (any, the receiver's own included) off by any nonzero amount in one field
    cheater = data.draw(st.integers(0, n - 1), label="cheater")
    delta = Scalar(data.draw(st.integers(1, N - 1), label="delta"))
    k = data.draw(st.integers(0, t), label="coefficient")
    field = data.draw(st.sampled_from(["secret1", "secret2", "publics"]), label="field")
    good = received[cheater]
    if field == "publics":
        publics = list(good.publics)
        publics[k] = publics[k] + Point.base_mul(delta)
        received[cheater] = dkg.ReceivedKeys(good.secret1, good.secret2, tuple(publics))
    elif field == "secret1":
        received[cheater] = dkg.ReceivedKeys(good.secret1 + delta, good.secret2, good.publics)
    else:
        received[cheater] = dkg.ReceivedKeys(good.secret1, good.secret2 + delta, good.publics)
    assert not dkg.keys_verification_batch(t, h, x, received.values())
    assert dkg.find_faulty_senders(t, h, x, received) == [cheater]
    items = _batch_items(gen, receiver)
    secret1, pedersen, feldman, blinding = items[cheater]
    part = data.draw(st.sampled_from(["secret1", "feldman", "blinding"]), label="part")
    if part == "secret1":
        items[cheater] = (secret1 + delta, pedersen, feldman, blinding)
    elif part == "feldman":
        moved = list(feldman)
        moved[k] = moved[k] + Point.base_mul(delta)
        items[cheater] = (secret1, pedersen, tuple(moved), blinding)
    else:
        moved_b = list(blinding)
        moved_b[k] = moved_b[k] + delta
        items[cheater] = (secret1, pedersen, feldman, tuple(moved_b))
    assert not dkg.share_proofs_verification_batch(t, h, x, items)


def test_batch_check_of_colluders_whose_errors_cancel_gives_the_honest_share() -> None:
    # two dealers shift the values dealt to one receiver by +d and -d: the sums hold, and the
    # receiver's share is exactly what honest dealings give (module docstring of crypto/dkg)
    t, n, receiver = 2, 6, 4
    gen = run_key_generation(t, n, SeededRng(31))
    h, x = gen.derived_point, gen.id_numbers[receiver]
    received = received_by(gen, receiver)
    d = Scalar(99)
    a, b = received[1], received[3]
    received[1] = dkg.ReceivedKeys(a.secret1 + d, a.secret2, a.publics)
    received[3] = dkg.ReceivedKeys(b.secret1 - d, b.secret2, b.publics)
    assert dkg.keys_verification_batch(t, h, x, received.values())
    assert dkg.find_faulty_senders(t, h, x, received) == [1, 3]
    share = dkg.compute_secret_share(keys.secret1 for keys in received.values())
    assert share == gen.secret_shares[receiver]


def test_batch_checks_reject_malformed_dealings() -> None:
    gen = run_key_generation(2, 4, SeededRng(32))
    h, x = gen.derived_point, gen.id_numbers[0]
    received = list(received_by(gen, 0).values())
    short = received[2]
    received[2] = dkg.ReceivedKeys(short.secret1, short.secret2, short.publics[:-1])
    with pytest.raises(InvalidRequest):
        dkg.keys_verification_batch(2, h, x, received)
    items = _batch_items(gen, 0)
    secret1, pedersen, feldman, blinding = items[1]
    items[1] = (secret1, pedersen, feldman, blinding[:-1])
    with pytest.raises(InvalidRequest):
        dkg.share_proofs_verification_batch(2, h, x, items)
    with pytest.raises(InvalidScalar):
        dkg.keys_verification_batch(2, h, ZERO, received_by(gen, 0).values())
    with pytest.raises(InvalidPoint):
        dkg.share_proofs_verification_batch(2, Point.identity(), x, _batch_items(gen, 0))
