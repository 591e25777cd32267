"""The requester's check of a shadow retrieval: our `proofs` field (format, strict parse) and
`verify_document_key_shadow` on real proven answers, tampered ones and made-up ones."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from secretstore.client import verify
from secretstore.client.http_client import parse_shadow_body
from secretstore.client.verify import DocumentKeyShadow, parse_proofs, verify_document_key_shadow
from secretstore.crypto import shadow_proofs as sp
from secretstore.crypto.curve import G, N, Point, Scalar
from secretstore.crypto.ecies import ecies_encrypt
from secretstore.crypto.keys import KeyPair
from secretstore.crypto.rng import SeededRng
from secretstore.crypto.shadow import (
    compute_joint_shadow_point,
    decrypt_with_joint_shadow,
    make_common_shadow_point,
)
from secretstore.errors import InvalidEncoding, ShadowVerificationError
from secretstore.http import format as fmt
from secretstore.http.port import ShadowRetrieval
from tests.unit.crypto.test_shadow_proofs import Key, deal, statement_for

KEY_ID = b"\x11" * 32  # the key id statement_for binds


def proven_answer(
    key: Key, requester: KeyPair, seed: int, sealed_for: Point | None = None
) -> DocumentKeyShadow:
    """What an honest master returns: t+1 proven answers, shadows sealed for `requester` (the
    second participant's for `sealed_for` when given: a participant that seals its decrypt
    shadow for someone else, and proves it)."""
    t = key.threshold
    statement = statement_for(key, key.nodes[: t + 1], True, seed, requester.public)
    rng = SeededRng(seed + 1)

    def seal_to(public: Point) -> Callable[[Scalar], bytes]:
        return lambda shadow: ecies_encrypt(public, shadow.to_bytes(), rng)

    answers = [
        sp.answer_job(
            statement,
            node,
            key.shares[node],
            rng,
            seal_to(sealed_for if sealed_for is not None and index == 1 else requester.public),
        )
        for index, node in enumerate(statement.nodes)
    ]
    joint = compute_joint_shadow_point(a.shadow_point for a in answers)
    participants = []
    shadows = []
    for node, answer in zip(statement.nodes, answers, strict=True):
        assert answer.blinded_public is not None and answer.sealed_shadow is not None
        participants.append(
            sp.ParticipantProof(
                node, key.id_numbers[node], answer.shadow_point, answer.blinded_public,
                answer.proof,
            )
        )  # fmt: skip
        shadows.append(answer.sealed_shadow)
    proofs = sp.ShadowRetrievalProofs(
        t, statement.session_id, 1, key.commitments, key.encrypted_point, statement.access_key,
        tuple(participants),
    )  # fmt: skip
    return DocumentKeyShadow(
        decrypt_with_joint_shadow(t, statement.access_key, key.encrypted_point, joint),
        make_common_shadow_point(t, key.common_point),
        tuple(shadows),
        proofs,
    )


REQUESTER = KeyPair.generate(SeededRng(404))
KEY = deal(2, 4, 31)
ANSWER = proven_answer(KEY, REQUESTER, 31)


def body_of(answer: DocumentKeyShadow) -> bytes:
    return fmt.shadow_body(
        ShadowRetrieval(
            answer.decrypted_secret, answer.common_point, answer.decrypt_shadows, answer.proofs
        )
    )


# --- the field ---------------------------------------------------------------------------------


def test_the_field_comes_after_parity_s_three_and_round_trips() -> None:
    body = body_of(ANSWER)
    value = json.loads(body)
    assert list(value) == ["decrypted_secret", "common_point", "decrypt_shadows", "proofs"]
    assert fmt.PROOFS_FIELD == verify.PROOFS_FIELD == "proofs"
    assert list(value["proofs"]) == [
        "threshold", "session", "attempt", "commitments", "encrypted_point", "access_key",
        "participants",
    ]  # fmt: skip
    assert list(value["proofs"]["participants"][0]) == [
        "node", "id_number", "shadow_point", "blinded_public", "proof",
    ]  # fmt: skip
    assert value["proofs"]["threshold"] == 2 and value["proofs"]["attempt"] == 1
    assert len(value["proofs"]["participants"]) == 3
    assert b" " not in body
    assert parse_shadow_body(body) == ANSWER
    # without proofs, the body is Parity's exactly
    bare = DocumentKeyShadow(ANSWER.decrypted_secret, ANSWER.common_point, ANSWER.decrypt_shadows)
    assert list(json.loads(body_of(bare))) == [
        "decrypted_secret", "common_point", "decrypt_shadows",
    ]  # fmt: skip
    assert parse_shadow_body(body_of(bare)).proofs is None


def _mutated(path: list[str | int], value: object) -> dict[str, Any]:
    field: dict[str, Any] = json.loads(body_of(ANSWER))["proofs"]
    target: Any = field
    for step in path[:-1]:
        target = target[step]
    if value is _DELETE:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return field


_DELETE = object()
TOO_BIG = "0x" + N.to_bytes(32, "big").hex()


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (["threshold"], _DELETE, "missing threshold"),
        (["threshold"], True, "proofs.threshold"),
        (["threshold"], -1, "proofs.threshold"),
        (["attempt"], "1", "proofs.attempt"),
        (["attempt"], 1 << 64, "proofs.attempt"),
        (["session"], "0x00", "proofs.session"),
        (["commitments"], [], "proofs.commitments"),
        (["commitments"], "0x00", "proofs.commitments"),
        (["commitments", 0], "0x" + "00" * 64, "proofs.commitments[0]"),
        (["encrypted_point"], 5, "proofs.encrypted_point"),
        (["access_key"], TOO_BIG, "proofs.access_key"),
        (["participants"], [], "proofs.participants"),
        (["participants", 1], [], "proofs.participants[1]"),
        (["participants", 1, "node"], "0x1234", "proofs.participants[1].node"),
        (["participants", 1, "id_number"], "zz", "proofs.participants[1].id_number"),
        (["participants", 1, "proof"], "0x" + "00" * 63, "proofs.participants[1].proof"),
        (["participants", 1, "proof"], "0x" + "00" * 32 + TOO_BIG[2:],
         "proofs.participants[1].proof"),
        (["participants", 2, "blinded_public"], _DELETE, "missing blinded_public"),
    ],
)  # fmt: skip
def test_a_malformed_field_is_invalid_encoding_naming_the_part(
    path: list[str | int], value: object, message: str
) -> None:
    with pytest.raises(InvalidEncoding, match=message.replace("[", r"\[").replace("]", r"\]")):
        parse_proofs(_mutated(path, value))
    with pytest.raises(InvalidEncoding):
        parse_proofs("not an object")


# --- the check ---------------------------------------------------------------------------------


def test_an_honest_answer_gives_the_document_key() -> None:
    assert verify_document_key_shadow(KEY_ID, ANSWER, REQUESTER, KEY.public) == KEY.document_key
    assert ANSWER.document_key(KEY_ID, REQUESTER, server_key_public=KEY.public) == (
        KEY.document_key
    )
    assert ANSWER.document_key(KEY_ID, REQUESTER) == KEY.document_key  # unanchored


def test_require_proofs_refuses_an_answer_without_them() -> None:
    bare = DocumentKeyShadow(ANSWER.decrypted_secret, ANSWER.common_point, ANSWER.decrypt_shadows)
    assert bare.document_key(KEY_ID, REQUESTER) == KEY.document_key  # as Parity's clients
    with pytest.raises(ShadowVerificationError, match="no proofs"):
        bare.document_key(KEY_ID, REQUESTER, require_proofs=True)
    with pytest.raises(ShadowVerificationError, match="no proofs"):
        verify_document_key_shadow(KEY_ID, bare, REQUESTER, KEY.public)


def test_a_shadow_its_own_node_sealed_so_that_it_does_not_open_names_that_node() -> None:
    other = KeyPair.generate(SeededRng(5))
    broken = proven_answer(KEY, REQUESTER, 31, sealed_for=other.public)
    assert broken.proofs is not None
    with pytest.raises(ShadowVerificationError, match="does not open") as caught:
        broken.document_key(KEY_ID, REQUESTER, server_key_public=KEY.public)
    assert caught.value.node == "0x" + broken.proofs.participants[1].node.hex()


def test_sealed_shadows_swapped_or_replaced_in_transit_name_the_answering_key_server() -> None:
    """Each proof binds its node's sealed decrypt shadow: whoever relays the answer (its
    master, a delegate) cannot swap two or put another ciphertext in one's place and have
    an honest participant named for it."""
    assert ANSWER.proofs is not None
    shadows = list(ANSWER.decrypt_shadows)
    swapped = (shadows[1], shadows[0], *shadows[2:])
    replaced = list(shadows)
    replaced[1] = ecies_encrypt(REQUESTER.public, Scalar(9).to_bytes(), SeededRng(6))
    for changed in (swapped, tuple(replaced)):
        answer = DocumentKeyShadow(
            ANSWER.decrypted_secret, ANSWER.common_point, tuple(changed), ANSWER.proofs
        )
        with pytest.raises(ShadowVerificationError, match="valid proof") as caught:
            answer.document_key(KEY_ID, REQUESTER, server_key_public=KEY.public)
        assert caught.value.node is None, caught.value
    short = DocumentKeyShadow(
        ANSWER.decrypted_secret, ANSWER.common_point, tuple(shadows[:2]), ANSWER.proofs
    )
    with pytest.raises(ShadowVerificationError, match="the answering key server"):
        short.document_key(KEY_ID, REQUESTER, server_key_public=KEY.public)


def test_only_the_anchor_stops_an_answer_made_up_whole_by_the_master() -> None:
    """A master that invents a key of its own (commitments, E, every participant) produces an
    answer that is consistent in itself: unanchored it passes with the master's key, anchored
    at the real server key public it fails."""
    invented = deal(2, 4, 77)  # every share known to the master
    made_up = proven_answer(invented, REQUESTER, 77)
    assert made_up.document_key(KEY_ID, REQUESTER) == invented.document_key
    with pytest.raises(ShadowVerificationError, match="C_0"):
        made_up.document_key(KEY_ID, REQUESTER, server_key_public=KEY.public)


def test_an_answer_for_another_key_id_or_requester_fails() -> None:
    with pytest.raises(ShadowVerificationError):
        verify_document_key_shadow(b"\x12" * 32, ANSWER, REQUESTER, KEY.public)
    with pytest.raises(ShadowVerificationError):
        verify_document_key_shadow(
            KEY_ID, ANSWER, KeyPair.generate(SeededRng(8)), KEY.public
        )  # its shadows do not even open
    tampered = DocumentKeyShadow(
        ANSWER.decrypted_secret + G, ANSWER.common_point, ANSWER.decrypt_shadows, ANSWER.proofs
    )
    with pytest.raises(ShadowVerificationError, match="decrypted_secret"):
        tampered.document_key(KEY_ID, REQUESTER, server_key_public=KEY.public)
    assert isinstance(KEY.public, Point)
