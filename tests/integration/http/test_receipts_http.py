"""Receipts over real HTTP: the shadow retrieval body's `receipts` field after Parity's
fields, and the X-Secretstore-Receipts header of plain retrieval and signing answers, sent
only when the request carries the header; the bodies stay Parity's bytes either way."""

from __future__ import annotations

import json

import pytest

from secretstore.audit.jsonform import parse_receipts, receipts_json
from secretstore.audit.model import Operation, facts_of
from secretstore.audit.receipts import NodeSigner, ReleaseReceipts
from secretstore.client.receipts import receipts_from_header
from secretstore.crypto.keys import KeyPair
from secretstore.crypto.rng import SeededRng
from secretstore.types import Address, SessionId
from tests.integration.http.test_app import KEY_ID, ROUTES, Served, serve, served

__all__ = ["serve", "served"]  # the fixtures of the HTTP layer tests

SIGNERS = sorted((KeyPair.generate(SeededRng(900 + i)) for i in range(2)), key=lambda k: k.node_id)
FACTS = facts_of(
    Operation.SCHNORR,
    KEY_ID,
    session_id=SessionId(b"\x05" * 32),
    master=SIGNERS[0].node_id,
    requester=Address(b"\x11" * 20),
    participants=tuple(k.node_id for k in SIGNERS),
    message_hash=b"\x28" * 32,
)
RECEIPTS = ReleaseReceipts(FACTS, tuple(NodeSigner(k).receipt(FACTS) for k in SIGNERS))
HEADER = "X-Secretstore-Receipts"
BARE = {route[2][0]: route for route in ROUTES}


@pytest.mark.parametrize("operation", ["retrieve_document_key", "sign_schnorr", "sign_ecdsa"])
async def test_the_header_comes_when_asked_and_the_body_stays_parity_s(
    served: Served, operation: str
) -> None:
    served.api.receipts = RECEIPTS
    method, path, _, body = BARE[operation]
    status, plain, headers = await served.call(method, path)
    assert status == 200 and plain == body and HEADER not in headers
    status, asked, headers = await served.call(method, path, headers={HEADER: "1"})
    assert status == 200 and asked == body
    assert receipts_from_header(headers) == RECEIPTS
    assert json.loads(headers[HEADER]) == receipts_json(RECEIPTS)
    assert headers["Access-Control-Expose-Headers"] == HEADER


async def test_no_header_without_receipts(served: Served) -> None:
    method, path, _, body = BARE["sign_ecdsa"]
    status, answer, headers = await served.call(method, path, headers={HEADER: "1"})
    assert status == 200 and answer == body and HEADER not in headers


async def test_the_shadow_body_carries_receipts_after_parity_s_fields(served: Served) -> None:
    served.api.receipts = RECEIPTS
    method, path, _, parity_body = BARE["retrieve_document_key_shadow"]
    status, body, headers = await served.call(method, path)
    assert status == 200 and HEADER not in headers
    value = json.loads(body)
    assert list(value) == ["decrypted_secret", "common_point", "decrypt_shadows", "receipts"]
    assert parse_receipts(value["receipts"]) == RECEIPTS
    # Parity's three fields are byte for byte what they were, the field is appended
    assert body.startswith(parity_body[:-1] + b',"receipts":{')
