"""Verifiable decryption shares: honest answers verify and decrypt; every lie, replay or
tampered value is caught, and the requester's check names the node at fault."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from secretstore.crypto import shadow_proofs as sp
from secretstore.crypto.curve import ONE, G, Point, Scalar
from secretstore.crypto.dleq import DleqProof
from secretstore.crypto.document import encrypt_secret
from secretstore.crypto.hashing import keccak256
from secretstore.crypto.rng import SeededRng, random_scalar
from secretstore.crypto.shadow import (
    compute_joint_shadow_point,
    decrypt_with_joint_shadow,
    make_common_shadow_point,
)
from secretstore.crypto.shamir import (
    evaluate_polynomial,
    random_id_numbers,
    random_polynomial,
    shadow_mul,
)
from secretstore.errors import InvalidRequest, InvalidScalar, ShadowVerificationError
from secretstore.types import NodeId

seeds = st.integers(min_value=0, max_value=2**64)


@dataclass(frozen=True)
class Key:
    """A server key dealt by a trusted dealer, with a document key stored under it."""

    threshold: int
    nodes: tuple[NodeId, ...]
    id_numbers: dict[NodeId, Scalar]
    shares: dict[NodeId, Scalar]
    commitments: tuple[Point, ...]
    document_key: Point
    common_point: Point
    encrypted_point: Point

    @property
    def public(self) -> Point:
        return self.commitments[0]


#: A stand-in for ECIES to the requester (these tests are about the proofs, not the cipher):
#: a tag and the scalar; `open_sealed` refuses what does not carry the tag.
SEAL_TAG = b"sealed:"


def seal(shadow: Scalar) -> bytes:
    return SEAL_TAG + shadow.to_bytes()


def open_sealed(sealed: bytes) -> Scalar:
    if not sealed.startswith(SEAL_TAG):
        raise InvalidScalar("not sealed for this requester")
    return Scalar.from_bytes(sealed[len(SEAL_TAG) :])


def deal(t: int, n: int, seed: int) -> Key:
    rng = SeededRng(seed)
    polynomial = random_polynomial(t, rng)
    nodes = tuple(sorted(NodeId(Point.base_mul(random_scalar(rng)).to_bytes()) for _ in range(n)))
    ids = dict(zip(nodes, random_id_numbers(n, rng), strict=True))
    shares = {node: evaluate_polynomial(polynomial, x) for node, x in ids.items()}
    commitments = tuple(Point.base_mul(a) for a in polynomial)
    document_key = Point.base_mul(random_scalar(rng))
    encrypted = encrypt_secret(document_key, commitments[0], rng)
    return Key(
        t,
        nodes,
        ids,
        shares,
        commitments,
        document_key,
        encrypted.common_point,
        encrypted.encrypted_point,
    )


def statement_for(
    key: Key, group: tuple[NodeId, ...], shadow: bool, seed: int, requester: Point | None = None
) -> sp.JobStatement:
    rng = SeededRng(seed ^ 0x5A5A)
    return sp.JobStatement(
        key_id=b"\x11" * 32,
        session_id=rng.random_bytes(32),
        attempt=1,
        requester=requester if requester is not None else Point.base_mul(random_scalar(rng)),
        common_point=key.common_point,
        encrypted_point=key.encrypted_point,
        access_key=random_scalar(rng),
        commitments=key.commitments,
        group=tuple((node, key.id_numbers[node]) for node in group),
        shadow=shadow,
    )


@st.composite
def jobs(draw: st.DrawFn, shadow: bool | None = None) -> tuple[Key, sp.JobStatement, int]:
    n = draw(st.integers(min_value=1, max_value=5))
    t = draw(st.integers(min_value=0, max_value=n - 1))
    seed = draw(seeds)
    key = deal(t, n, seed)
    group = tuple(sorted(draw(st.permutations(key.nodes))[: t + 1]))
    mode = draw(st.booleans()) if shadow is None else shadow
    return key, statement_for(key, group, mode, seed), seed


# --- public shares ---------------------------------------------------------------------------


@given(jobs())
def test_share_publics_and_node_shadow_publics_follow_from_the_commitments(
    job: tuple[Key, sp.JobStatement, int],
) -> None:
    key, statement, _ = job
    for node in key.nodes:
        share_public = sp.share_public(key.commitments, key.id_numbers[node])
        assert share_public == Point.base_mul(key.shares[node])
    for node, x in statement.group:
        others = [y for member, y in statement.group if member != node]
        expected = Point.base_mul(shadow_mul(key.shares[node], x, others))
        assert statement.node_shadow_public(node) == expected


# --- honest answers ----------------------------------------------------------------------


@given(jobs())
def test_honest_answers_verify_and_decrypt_the_document_key(
    job: tuple[Key, sp.JobStatement, int],
) -> None:
    key, statement, seed = job
    rng = SeededRng(seed + 1)
    answers = {
        node: sp.answer_job(statement, node, key.shares[node], rng, seal)
        for node in statement.nodes
    }
    for node, answer in answers.items():
        assert sp.verify_job_answer(
            statement,
            node,
            answer.shadow_point,
            answer.blinded_public,
            answer.proof,
            sealed=answer.sealed_shadow,
        )
    joint = compute_joint_shadow_point(a.shadow_point for a in answers.values())
    decrypted = decrypt_with_joint_shadow(
        key.threshold, statement.access_key, key.encrypted_point, joint
    )
    if not statement.shadow:
        assert decrypted == key.document_key
        assert all(a.blinded_public is None and a.decrypt_shadow is None for a in answers.values())
        return
    assert decrypted != key.document_key
    for node, answer in answers.items():
        assert answer.blinded_public is not None and answer.decrypt_shadow is not None
        assert sp.decrypt_shadow_matches(
            statement, node, answer.blinded_public, answer.decrypt_shadow
        )
    total = Scalar(sum(a.decrypt_shadow.to_int() for a in answers.values() if a.decrypt_shadow))
    common = make_common_shadow_point(key.threshold, key.common_point)
    assert decrypted + common * total == key.document_key


# --- lies and replays ----------------------------------------------------------------------


def _answer(key: Key, statement: sp.JobStatement, seed: int) -> tuple[NodeId, sp.JobAnswer]:
    node = statement.nodes[-1]
    return node, sp.answer_job(statement, node, key.shares[node], SeededRng(seed + 2), seal)


@given(jobs())
def test_a_wrong_shadow_point_or_blinded_public_does_not_verify(
    job: tuple[Key, sp.JobStatement, int],
) -> None:
    key, statement, seed = job
    node, answer = _answer(key, statement, seed)
    wrong = answer.shadow_point + G
    assert not sp.verify_job_answer(
        statement, node, wrong, answer.blinded_public, answer.proof, sealed=answer.sealed_shadow
    )
    if statement.shadow:
        assert answer.blinded_public is not None
        other = answer.blinded_public + G
        assert not sp.verify_job_answer(
            statement, node, answer.shadow_point, other, answer.proof, sealed=answer.sealed_shadow
        )
        # a Q_i missing in a shadow job, or one added to a plain job, never verifies
        assert not sp.verify_job_answer(
            statement, node, answer.shadow_point, None, answer.proof, sealed=answer.sealed_shadow
        )
    else:
        assert not sp.verify_job_answer(
            statement, node, answer.shadow_point, G, answer.proof, sealed=answer.sealed_shadow
        )


@given(jobs(), st.sampled_from(["challenge", "response"]))
def test_an_altered_proof_does_not_verify(job: tuple[Key, sp.JobStatement, int], part: str) -> None:
    key, statement, seed = job
    node, answer = _answer(key, statement, seed)
    bumped = dataclasses.replace(
        answer.proof, **{part: getattr(answer.proof, part) + ONE}
    )  # fmt: skip
    assert not sp.verify_job_answer(
        statement,
        node,
        answer.shadow_point,
        answer.blinded_public,
        bumped,
        sealed=answer.sealed_shadow,
    )


@given(jobs(shadow=False))
def test_a_plain_answer_made_with_another_share_does_not_verify(
    job: tuple[Key, sp.JobStatement, int],
) -> None:
    key, statement, seed = job
    node = statement.nodes[-1]
    for wrong_share in (key.shares[node] + ONE, random_scalar(SeededRng(seed + 3))):
        answer = sp.answer_job(statement, node, wrong_share, SeededRng(seed + 4), seal)
        assert not sp.verify_job_answer(
            statement, node, answer.shadow_point, None, answer.proof, sealed=answer.sealed_shadow
        )


def _other_points(seed: int) -> tuple[Point, Scalar]:
    rng = SeededRng(seed + 7)
    return Point.base_mul(random_scalar(rng)), random_scalar(rng)


CHANGES: dict[str, Callable[[sp.JobStatement, Point, Scalar], sp.JobStatement]] = {
    "key id": lambda s, p, k: dataclasses.replace(s, key_id=b"\x12" * 32),
    "session": lambda s, p, k: dataclasses.replace(s, session_id=keccak256(s.session_id)),
    "attempt": lambda s, p, k: dataclasses.replace(s, attempt=s.attempt + 1),
    "requester": lambda s, p, k: dataclasses.replace(s, requester=p),
    "common point": lambda s, p, k: dataclasses.replace(s, common_point=p),
    "encrypted point": lambda s, p, k: dataclasses.replace(s, encrypted_point=p),
    "access key": lambda s, p, k: dataclasses.replace(s, access_key=k),
    "commitments": lambda s, p, k: dataclasses.replace(
        s, commitments=(s.commitments[0] + p, *s.commitments[1:])
    ),
}


@settings(max_examples=40)
@given(jobs(), st.sampled_from(sorted(CHANGES)))
def test_a_proof_is_bound_to_its_job(job: tuple[Key, sp.JobStatement, int], change: str) -> None:
    """A proof for another key, session, attempt, requester, document key, access key or
    key version does not verify: replays from elsewhere are caught."""
    key, statement, seed = job
    node, answer = _answer(key, statement, seed)
    point, scalar = _other_points(seed)
    other = CHANGES[change](statement, point, scalar)
    assert not sp.verify_job_answer(
        other,
        node,
        answer.shadow_point,
        answer.blinded_public,
        answer.proof,
        sealed=answer.sealed_shadow,
    )


@given(jobs())
def test_a_proof_is_bound_to_its_node_its_group_and_its_mode(
    job: tuple[Key, sp.JobStatement, int],
) -> None:
    key, statement, seed = job
    node, answer = _answer(key, statement, seed)
    for other in statement.nodes:
        if other != node:  # another member's valid-looking proof
            assert not sp.verify_job_answer(
                statement,
                other,
                answer.shadow_point,
                answer.blinded_public,
                answer.proof,
                sealed=answer.sealed_shadow,
            )
    flipped = dataclasses.replace(statement, shadow=not statement.shadow)
    blinded = answer.blinded_public if statement.shadow else G
    sealed = (answer.sealed_shadow or seal(ONE)) if flipped.shadow else None
    assert not sp.verify_job_answer(flipped, node, answer.shadow_point, None, answer.proof)
    assert not sp.verify_job_answer(
        flipped, node, answer.shadow_point, blinded, answer.proof, sealed=sealed
    )
    outsiders = [n for n in key.nodes if n not in statement.nodes]
    replaced = [member for member in statement.nodes if member != node]
    if outsiders and replaced:  # the same answer passed off inside another group
        group = tuple(
            (outsiders[0], key.id_numbers[outsiders[0]]) if member == replaced[0] else (member, x)
            for member, x in statement.group
        )
        moved = dataclasses.replace(statement, group=group)
        assert not sp.verify_job_answer(
            moved,
            node,
            answer.shadow_point,
            answer.blinded_public,
            answer.proof,
            sealed=answer.sealed_shadow,
        )


@given(jobs(shadow=True))
def test_a_proof_is_bound_to_the_sealed_decrypt_shadow_its_node_sent(
    job: tuple[Key, sp.JobStatement, int],
) -> None:
    """Whoever relays the answer cannot swap, replace or drop the sealed decrypt shadow."""
    key, statement, seed = job
    node, answer = _answer(key, statement, seed)
    assert answer.sealed_shadow is not None and answer.decrypt_shadow is not None
    assert open_sealed(answer.sealed_shadow) == answer.decrypt_shadow
    point, blinded, proof = answer.shadow_point, answer.blinded_public, answer.proof
    assert sp.verify_job_answer(statement, node, point, blinded, proof, sealed=answer.sealed_shadow)
    for other in (seal(answer.decrypt_shadow + ONE), answer.sealed_shadow + b"\0", b""):
        assert not sp.verify_job_answer(statement, node, point, blinded, proof, sealed=other)
    assert not sp.verify_job_answer(statement, node, point, blinded, proof)
    with pytest.raises(InvalidRequest):
        sp.answer_job(statement, node, key.shares[node], SeededRng(seed))  # nothing to seal with


@given(jobs(shadow=True))
def test_a_wrong_decrypt_shadow_does_not_match(job: tuple[Key, sp.JobStatement, int]) -> None:
    key, statement, seed = job
    node, answer = _answer(key, statement, seed)
    assert answer.blinded_public is not None and answer.decrypt_shadow is not None
    for wrong in (
        answer.decrypt_shadow + ONE,
        -answer.decrypt_shadow,
        random_scalar(SeededRng(seed)),
    ):
        assert not sp.decrypt_shadow_matches(statement, node, answer.blinded_public, wrong)


# --- the context layout --------------------------------------------------------------------


def test_the_context_follows_its_documented_layout() -> None:
    key = deal(1, 3, 5)
    statement = statement_for(key, key.nodes[:2], True, 5)
    node = key.nodes[0]
    expected = b"secretstore-decryption-job-v1" + b"\x01" + statement.key_id
    expected += statement.session_id + (1).to_bytes(8, "big") + node
    expected += statement.requester.to_bytes() + key.common_point.to_bytes()
    expected += key.encrypted_point.to_bytes() + statement.access_key.to_bytes()
    expected += keccak256(b"".join(c.to_bytes() for c in key.commitments))
    expected += (2).to_bytes(4, "big")
    for member in sorted(key.nodes[:2]):
        expected += member + key.id_numbers[member].to_bytes()
    plain = dataclasses.replace(statement, shadow=False)
    assert plain.context(node) == expected[:29] + b"\x00" + expected[30:]
    assert statement.context(node, b"sealed") == expected + keccak256(b"sealed")
    with pytest.raises(InvalidRequest):
        statement.context(node)  # a shadow job's proof binds a sealed decrypt shadow
    with pytest.raises(InvalidRequest):
        plain.context(node, b"sealed")


def test_a_statement_refuses_values_that_do_not_fit() -> None:
    key = deal(1, 3, 6)
    good = statement_for(key, key.nodes[:2], False, 6)
    first, second = good.group
    for change in [
        {"key_id": b"short"},
        {"session_id": bytes(31)},
        {"attempt": -1},
        {"attempt": 1 << 64},
        {"access_key": Scalar(0)},
        {"common_point": Point.identity()},
        {"commitments": ()},
        {"group": (first,)},
        {"group": (first, first)},
        {"group": (first, (second[0], first[1]))},
        {"group": (first, (second[0], Scalar(0)))},
    ]:
        with pytest.raises(InvalidRequest):
            dataclasses.replace(good, **change)  # type: ignore[arg-type]
    with pytest.raises(InvalidRequest):
        good.context(key.nodes[2])  # not a member


# --- the requester's whole check --------------------------------------------------------------


@dataclass(frozen=True)
class Retrieval:
    """A shadow retrieval answer as the requester receives it, with its proofs."""

    key: Key
    requester: Point
    decrypted_secret: Point
    common_point: Point
    sealed_shadows: tuple[bytes, ...]
    proofs: sp.ShadowRetrievalProofs

    def verify(self, **changes: object) -> Point:
        values: dict[str, object] = {
            "key_id": b"\x11" * 32,
            "requester": self.requester,
            "server_key_public": self.key.public,
            "decrypted_secret": self.decrypted_secret,
            "common_point": self.common_point,
            "sealed_shadows": self.sealed_shadows,
            "open_shadow": open_sealed,
            "proofs": self.proofs,
        }
        values.update(changes)
        return sp.verify_shadow_retrieval(**values)  # type: ignore[arg-type]


def retrieval(
    t: int, n: int, seed: int, liar: int | None = None, lie: Callable[[Scalar], bytes] = seal
) -> Retrieval:
    """An honest master's answer; participant `liar` (an index) seals what `lie` makes of
    its decrypt shadow, and proves it."""
    key = deal(t, n, seed)
    requester = Point.base_mul(random_scalar(SeededRng(seed + 9)))
    group = key.nodes[: t + 1]
    statement = statement_for(key, group, True, seed, requester)
    rng = SeededRng(seed + 10)
    answers = [
        sp.answer_job(statement, node, key.shares[node], rng, lie if index == liar else seal)
        for index, node in enumerate(statement.nodes)
    ]
    joint = compute_joint_shadow_point(a.shadow_point for a in answers)
    decrypted = decrypt_with_joint_shadow(t, statement.access_key, key.encrypted_point, joint)
    participants = []
    for node, answer in zip(statement.nodes, answers, strict=True):
        assert answer.blinded_public is not None
        participants.append(
            sp.ParticipantProof(
                node,
                key.id_numbers[node],
                answer.shadow_point,
                answer.blinded_public,
                answer.proof,
            )
        )
    proofs = sp.ShadowRetrievalProofs(
        t,
        statement.session_id,
        statement.attempt,
        key.commitments,
        key.encrypted_point,
        statement.access_key,
        tuple(participants),
    )
    return Retrieval(
        key,
        requester,
        decrypted,
        make_common_shadow_point(t, key.common_point),
        tuple(a.sealed_shadow for a in answers if a.sealed_shadow is not None),
        proofs,
    )


CASES = [(0, 1), (0, 2), (1, 2), (1, 3), (2, 3), (2, 5), (3, 5)]


@pytest.mark.parametrize(("t", "n"), CASES)
def test_the_requester_check_accepts_an_honest_answer(t: int, n: int) -> None:
    answer = retrieval(t, n, t * 10 + n)
    assert answer.verify() == answer.key.document_key


def _participant(answer: Retrieval, index: int, **changes: object) -> sp.ShadowRetrievalProofs:
    participants = list(answer.proofs.participants)
    participants[index] = dataclasses.replace(participants[index], **changes)  # type: ignore[arg-type]
    return dataclasses.replace(answer.proofs, participants=tuple(participants))


def _named(node: NodeId | None) -> str | None:
    return None if node is None else "0x" + node.hex()


@pytest.mark.parametrize(("t", "n"), [(1, 3), (2, 5)])
def test_the_requester_check_names_the_node_behind_each_tampered_value(t: int, n: int) -> None:
    """A participant is named for what only it can have made (a sealed decrypt shadow its
    proof binds that does not open or match); the answering key server for everything
    else, a proof that fails among it: the key server checks each one before it answers."""
    answer = retrieval(t, n, 40 + t)
    victim = answer.proofs.participants[-1]
    index = len(answer.proofs.participants) - 1
    for lie in (lambda d: seal(d + ONE), lambda d: b"not sealed"):
        lying = retrieval(t, n, 40 + t, liar=index, lie=lie)
        with pytest.raises(ShadowVerificationError) as caught:
            lying.verify()
        assert caught.value.node == _named(victim.node)
    wrong_point, wrong_scalar = _other_points(3)
    shadows = list(answer.sealed_shadows)
    shadows[index] = seal(open_sealed(shadows[index]) + ONE)
    swapped = list(answer.sealed_shadows)
    swapped[0], swapped[index] = swapped[index], swapped[0]
    proof = victim.proof
    cases: list[tuple[str, dict[str, object], NodeId | None]] = [
        ("D", {"decrypted_secret": answer.decrypted_secret + G}, None),
        ("E", {"proofs": dataclasses.replace(answer.proofs, encrypted_point=wrong_point)}, None),
        ("a", {"proofs": dataclasses.replace(answer.proofs, access_key=wrong_scalar)}, None),
        ("C'", {"common_point": -answer.common_point}, None),
        ("session", {"proofs": dataclasses.replace(answer.proofs, attempt=2)}, None),
        ("a d_i changed in transit", {"sealed_shadows": tuple(shadows)}, None),
        ("two d_i swapped", {"sealed_shadows": tuple(swapped)}, None),
        ("a P_i", {"proofs": _participant(answer, index, shadow_point=victim.shadow_point + G)},
         None),
        ("a Q_i", {"proofs": _participant(answer, index, blinded_public=wrong_point)}, None),
        ("a proof", {"proofs": _participant(
            answer, index, proof=DleqProof(proof.challenge, proof.response + ONE))}, None),
        ("an id number", {"proofs": _participant(answer, index, id_number=wrong_scalar)}, None),
        ("the key", {"server_key_public": wrong_point}, None),
        ("the requester", {"requester": wrong_point}, None),
        ("the key id", {"key_id": b"\x12" * 32}, None),
    ]  # fmt: skip
    for what, changes, culprit in cases:
        with pytest.raises(ShadowVerificationError) as caught:
            answer.verify(**changes)
        assert caught.value.node == _named(culprit), what


def test_the_requester_check_refuses_a_malformed_participant_list() -> None:
    answer = retrieval(1, 3, 77)
    first, second = answer.proofs.participants
    for changes in [
        {"proofs": dataclasses.replace(answer.proofs, participants=(first,))},
        {"proofs": dataclasses.replace(answer.proofs, participants=(first, first))},
        {"proofs": dataclasses.replace(answer.proofs, threshold=2)},
        {"proofs": dataclasses.replace(answer.proofs, commitments=answer.key.commitments[:1])},
        {"sealed_shadows": answer.sealed_shadows[:1]},
        {"proofs": _participant(answer, 1, id_number=first.id_number)},
        {"proofs": _participant(answer, 1, node=first.node)},  # one node, two id numbers
    ]:
        with pytest.raises(ShadowVerificationError, match="the answering key server"):
            answer.verify(**changes)
    swapped = dataclasses.replace(answer.proofs, participants=(second, first))
    with pytest.raises(ShadowVerificationError):  # shadows no longer in the participants' order
        answer.verify(proofs=swapped)


@settings(max_examples=25)
@given(st.sampled_from(CASES), seeds)
def test_the_requester_check_holds_for_any_key(case: tuple[int, int], seed: int) -> None:
    t, n = case
    answer = retrieval(t, n, seed)
    assert answer.verify() == answer.key.document_key
    # a participant that lies about its decrypt shadow is always the one named
    lying = retrieval(t, n, seed, liar=0, lie=lambda d: seal(d + ONE))
    with pytest.raises(ShadowVerificationError) as caught:
        lying.verify()
    assert caught.value.node == _named(answer.proofs.participants[0].node)


# --- a node's check of a plain retrieval it did not serve ---------------------------------


def plain_retrieval(t: int, n: int, seed: int) -> tuple[Key, Point, sp.PlainRetrievalProofs]:
    key = deal(t, n, seed)
    requester = Point.base_mul(random_scalar(SeededRng(seed + 9)))
    statement = statement_for(key, key.nodes[: t + 1], False, seed, requester)
    rng = SeededRng(seed + 10)
    participants = tuple(
        sp.PlainParticipant(
            node,
            key.id_numbers[node],
            (answer := sp.answer_job(statement, node, key.shares[node], rng, seal)).shadow_point,
            answer.proof,
        )
        for node in statement.nodes
    )
    proofs = sp.PlainRetrievalProofs(
        t,
        statement.session_id,
        statement.attempt,
        key.commitments,
        key.common_point,
        key.encrypted_point,
        statement.access_key,
        participants,
    )
    return key, requester, proofs


def _plain_check(key: Key, requester: Point, proofs: sp.PlainRetrievalProofs) -> Point:
    return sp.verify_plain_retrieval(
        key_id=b"\x11" * 32, requester=requester, server_key_public=key.public, proofs=proofs
    )


@pytest.mark.parametrize(("t", "n"), CASES)
def test_a_proven_plain_retrieval_gives_the_document_key(t: int, n: int) -> None:
    key, requester, proofs = plain_retrieval(t, n, 60 + t * 10 + n)
    assert _plain_check(key, requester, proofs) == key.document_key


def test_a_plain_retrieval_that_lies_is_refused_naming_the_node_at_fault() -> None:
    key, requester, proofs = plain_retrieval(1, 3, 61)
    first, second = proofs.participants
    moved = dataclasses.replace(second, shadow_point=second.shadow_point + G)
    cases: list[tuple[sp.PlainRetrievalProofs, str | None]] = [
        (dataclasses.replace(proofs, participants=(first, moved)), None),
        (dataclasses.replace(proofs, encrypted_point=proofs.encrypted_point + G), None),
        (dataclasses.replace(proofs, common_point=proofs.common_point + G), None),
        (dataclasses.replace(proofs, commitments=(G, proofs.commitments[1])), None),
        (dataclasses.replace(proofs, participants=(first,)), None),
        (dataclasses.replace(proofs, participants=(first, first)), None),
    ]
    for lie, culprit in cases:
        with pytest.raises(ShadowVerificationError) as caught:
            _plain_check(key, requester, lie)
        assert caught.value.node == culprit, lie
    other = Point.base_mul(random_scalar(SeededRng(5)))
    with pytest.raises(ShadowVerificationError):  # the proofs are bound to the requester
        _plain_check(key, other, proofs)


def test_the_proof_base_is_made_once_and_only_when_first_asked_for() -> None:
    """A master makes the statement before it sends the job: the point multiplication of the
    second base waits until a proof needs it, and is made once."""
    key = deal(1, 3, seed=91)
    statement = statement_for(key, key.nodes[:2], shadow=True, seed=91)
    assert statement._base is None
    base = statement.proof_base()
    assert base == key.common_point * statement.access_key
    assert statement.proof_base() is base
