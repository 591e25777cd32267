"""Response bodies: byte-exact against Parity's serde_json output."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from secretstore.crypto.curve import Point, Scalar
from secretstore.http.format import (
    EMPTY_BODY,
    JSON_CONTENT_TYPE,
    bytes_body,
    json_string,
    public_body,
    shadow_body,
)
from secretstore.http.port import ShadowRetrieval

# paritytech/secret-store src/serialization.rs, tests serialize_and_deserialize_bytes and
# serialize_and_deserialize_public (commit a40402eab4cdcdc4e37b54ffed186f683922c47c)
PARITY_BYTES = (bytes([1, 2, 3, 4]), b'"0x01020304"')
PARITY_PUBLIC = (
    "cac6c205eb06c8308d65156ff6c862c62b000b8ead121a4455a8ddeff7248128"
    "d895692136f240d5d1614dc7cc4147b1bd584bd617e30560bb872064d09ea325"
)


def test_content_type_and_empty_body_are_parity_s() -> None:
    assert JSON_CONTENT_TYPE == "application/json; charset=utf-8"
    assert EMPTY_BODY == b""


def test_bytes_body_matches_parity_serialization() -> None:
    data, expected = PARITY_BYTES
    assert bytes_body(data) == expected
    assert bytes_body(b"") == b'"0x"'


def test_public_body_matches_parity_serialization() -> None:
    point = Point.from_bytes(bytes.fromhex(PARITY_PUBLIC))
    assert public_body(point) == f'"0x{PARITY_PUBLIC}"'.encode()


def test_shadow_body_is_compact_with_parity_field_order() -> None:
    d = Point.base_mul(Scalar(5))
    c = Point.base_mul(Scalar(6))
    shadow = ShadowRetrieval(d, c, (b"\x01\x02", b"\xff" * 3))
    expected = (
        '{"decrypted_secret":"0x' + d.to_bytes().hex() + '",'
        '"common_point":"0x' + c.to_bytes().hex() + '",'
        '"decrypt_shadows":["0x0102","0xffffff"]}'
    )
    assert shadow_body(shadow) == expected.encode()


def test_shadow_body_with_no_shadows() -> None:
    shadow = ShadowRetrieval(Point.base_mul(Scalar(5)), Point.base_mul(Scalar(6)), ())
    assert shadow_body(shadow).endswith(b'"decrypt_shadows":[]}')


def test_json_string_escapes_as_serde_json() -> None:
    assert json_string('a"b\\c') == b'"a\\"b\\\\c"'
    assert json_string("\n\t\x01") == b'"\\n\\t\\u0001"'
    assert json_string("é") == '"é"'.encode()  # UTF-8, not \u escapes


@given(st.binary(max_size=300))
def test_bytes_body_is_a_json_string_of_lower_hex(data: bytes) -> None:
    body = bytes_body(data)
    value = json.loads(body)
    assert value == "0x" + data.hex()
    assert body == b'"' + value.encode() + b'"'


@given(st.integers(min_value=1, max_value=2**255))
def test_public_body_round_trips(k: int) -> None:
    point = Point.base_mul(Scalar(k))
    assert Point.from_bytes(bytes.fromhex(json.loads(public_body(point))[2:])) == point
