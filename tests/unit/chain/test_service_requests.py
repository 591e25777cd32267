"""Service request logs parse strictly; the cursor record's layout."""

from __future__ import annotations

from pathlib import Path

import pytest
from eth_abi.abi import encode

from secretstore.chain.services import abi
from secretstore.chain.services.cursor import (
    CURSOR_PREFIX,
    LevelDbCursors,
    decode_cursor,
    encode_cursor,
)
from secretstore.chain.services.handlers import is_final
from secretstore.chain.services.requests import (
    BadServiceLog,
    CommonRetrievalRequest,
    GenerationRequest,
    PersonalRetrievalRequest,
    ServerKeyRetrievalRequest,
    StoreRequest,
    parse_request_log,
    public_address,
)
from secretstore.errors import (
    AccessDenied,
    ConsensusUnreachable,
    CorruptRecord,
    DocumentKeyAlreadyStored,
    ProtocolViolation,
    ServerKeyNotFound,
    SessionTimeout,
)
from secretstore.storage.leveldb import LevelDbKeyStorage
from secretstore.types import Address, BlockRef, Hash256

CONTRACT = Address(b"\xcc" * 20)
KEY = b"\x42" * 32
AUTHOR = "0x" + "aa" * 20
PUBLIC = b"\x07" * 64


def test_every_request_log_parses() -> None:
    cases = [
        (
            abi.SERVER_KEY_GENERATION_REQUESTED,
            encode(["bytes32", "address", "uint8"], [KEY, AUTHOR, 2]),
            GenerationRequest(CONTRACT, KEY, Address(b"\xaa" * 20), 2),  # type: ignore[arg-type]
        ),
        (
            abi.SERVER_KEY_RETRIEVAL_REQUESTED,
            encode(["bytes32"], [KEY]),
            ServerKeyRetrievalRequest(CONTRACT, KEY),  # type: ignore[arg-type]
        ),
        (
            abi.DOCUMENT_KEY_STORE_REQUESTED,
            encode(["bytes32", "address", "bytes", "bytes"], [KEY, AUTHOR, b"c" * 64, b"e" * 64]),
            StoreRequest(CONTRACT, KEY, Address(b"\xaa" * 20), b"c" * 64, b"e" * 64),  # type: ignore[arg-type]
        ),
        (
            abi.DOCUMENT_KEY_COMMON_RETRIEVAL_REQUESTED,
            encode(["bytes32", "address"], [KEY, AUTHOR]),
            CommonRetrievalRequest(CONTRACT, KEY, Address(b"\xaa" * 20)),  # type: ignore[arg-type]
        ),
        (
            abi.DOCUMENT_KEY_PERSONAL_RETRIEVAL_REQUESTED,
            encode(["bytes32", "bytes"], [KEY, PUBLIC]),
            PersonalRetrievalRequest(CONTRACT, KEY, PUBLIC),  # type: ignore[arg-type]
        ),
    ]
    for event, data, expected in cases:
        assert parse_request_log(CONTRACT, event.topic, data) == expected


def test_the_common_and_personal_parts_of_one_retrieval_share_an_identity() -> None:
    personal = PersonalRetrievalRequest(CONTRACT, KEY, PUBLIC)  # type: ignore[arg-type]
    common = CommonRetrievalRequest(CONTRACT, KEY, public_address(PUBLIC))  # type: ignore[arg-type]
    assert personal.identity == common.identity


@pytest.mark.parametrize(
    ("topic", "data", "says"),
    [
        (b"\x00" * 32, b"", "unknown topic"),
        (abi.SERVER_KEY_GENERATION_REQUESTED.topic, b"\x01" * 10, "does not decode"),
        (
            abi.SERVER_KEY_GENERATION_REQUESTED.topic,
            encode(["bytes32", "address", "uint8"], [KEY, AUTHOR, 255]),
            "threshold 255",
        ),
        (
            abi.DOCUMENT_KEY_PERSONAL_RETRIEVAL_REQUESTED.topic,
            encode(["bytes32", "bytes"], [KEY, PUBLIC[:33]]),
            "33-byte requester public",
        ),
    ],
)
def test_a_bad_log_is_refused_by_name(topic: bytes, data: bytes, says: str) -> None:
    with pytest.raises(BadServiceLog, match=says):
        parse_request_log(CONTRACT, topic, data)


def test_final_errors_answer_the_request_others_are_tried_again() -> None:
    for error in (AccessDenied("x"), ServerKeyNotFound("x"), DocumentKeyAlreadyStored("x")):
        assert is_final(error)
    for error in (ConsensusUnreachable("x"), SessionTimeout("x"), ProtocolViolation("n", "x")):
        assert not is_final(error)


def test_a_cursor_is_number_then_hash_under_its_contract(tmp_path: Path) -> None:
    block = BlockRef(0x0102030405060708, Hash256(b"\xab" * 32))
    assert encode_cursor(block) == bytes(range(1, 9)) + b"\xab" * 32
    assert decode_cursor(CONTRACT, encode_cursor(block)) == block
    with pytest.raises(CorruptRecord, match="not 40"):
        decode_cursor(CONTRACT, b"\x00" * 39)
    storage = LevelDbKeyStorage(tmp_path / "db")
    try:
        cursors = LevelDbCursors(storage)
        assert cursors.get(CONTRACT) is None
        cursors.put(CONTRACT, block)
        assert cursors.get(CONTRACT) == block
        raw = storage.with_db("read", lambda db: db.get(CURSOR_PREFIX + CONTRACT))
        assert raw == encode_cursor(block)
        assert list(storage.ids()) == []  # not a key share
    finally:
        storage.close()
    reopened = LevelDbKeyStorage(tmp_path / "db")
    try:
        assert LevelDbCursors(reopened).get(CONTRACT) == block
    finally:
        reopened.close()
