"""URL (and admin body) parsing: Parity's own parse tests as vectors, then every malformed case."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import given
from hypothesis import strategies as st

from secretstore.crypto.curve import Point, Scalar
from secretstore.errors import InvalidRequest
from secretstore.http.parse import (
    BOUND_SIGNATURE_HEADER,
    MAX_THRESHOLD,
    ApiRequest,
    ChangeServersSet,
    DeleteKey,
    GenerateDocumentKey,
    GenerateServerKey,
    RetrieveDocumentKey,
    RetrieveDocumentKeyShadow,
    RetrieveServerKey,
    SignEcdsa,
    SignSchnorr,
    StoreDocumentKey,
    parse_bound_signature,
    parse_node_ids,
    parse_request,
    split_path,
)
from secretstore.types import ServerKeyId

VECTORS = json.loads((Path(__file__).parents[2] / "vectors" / "parity_http_parse.json").read_text())

K = "0000000000000000000000000000000000000000000000000000000000000001"
S = (
    "a199fb39e11eefb61c78a4074a53c0d4424600a3e74aad4fb9d93a26c30d067e"
    "1d4d29936de0c73f19827394a1dd049480a0d581aee7ae7546968da7d3d1c2fd01"
)
H = "281b6bf43cb86d0dc7b98e1b7def4a80f3ce16d28d2308f934f116767306f06c"
P1 = Point.base_mul(Scalar(7)).to_bytes().hex()
P2 = Point.base_mul(Scalar(11)).to_bytes().hex()
# x = 1 has no y on secp256k1 (1 + 7 = 8 is not a square mod p)
OFF_CURVE = "00" * 31 + "01" + "00" * 32
ADMIN = f"/admin/servers_set_change/{S}/{S}"


def _expected(expect: dict[str, Any]) -> ApiRequest:
    b = bytes.fromhex
    kind = expect["request"]
    if kind == "ChangeServersSet":
        return ChangeServersSet(
            b(expect["old_set_signature"]),
            b(expect["new_set_signature"]),
            frozenset(b(n) for n in expect["new_servers_set"]),  # type: ignore[misc]
        )
    key_id, signature = b(expect["key_id"]), b(expect["signature"])
    match kind:
        case "GenerateServerKey":
            return GenerateServerKey(key_id, signature, expect["threshold"])  # type: ignore[arg-type]
        case "GenerateDocumentKey":
            return GenerateDocumentKey(key_id, signature, expect["threshold"])  # type: ignore[arg-type]
        case "StoreDocumentKey":
            return StoreDocumentKey(
                key_id,  # type: ignore[arg-type]
                signature,
                Point.from_bytes(b(expect["common_point"])),
                Point.from_bytes(b(expect["encrypted_point"])),
            )
        case "RetrieveServerKey":
            return RetrieveServerKey(key_id, signature)  # type: ignore[arg-type]
        case "RetrieveDocumentKey":
            return RetrieveDocumentKey(key_id, signature)  # type: ignore[arg-type]
        case "RetrieveDocumentKeyShadow":
            return RetrieveDocumentKeyShadow(key_id, signature)  # type: ignore[arg-type]
        case "SignSchnorr":
            return SignSchnorr(key_id, signature, b(expect["message_hash"]))  # type: ignore[arg-type]
        case "SignEcdsa":
            return SignEcdsa(key_id, signature, b(expect["message_hash"]))  # type: ignore[arg-type]
    raise AssertionError(kind)


def _fails(method: str, path: str, body: bytes = b"") -> str:
    with pytest.raises(InvalidRequest) as caught:
        parse_request(method, path, body)
    return str(caught.value)


# --- Parity's vectors ------------------------------------------------------------------------


@pytest.mark.parametrize("case", VECTORS["valid"], ids=lambda c: f"{c['method']} {c['path'][:40]}")
def test_parity_valid_requests_parse_to_the_same_request(case: dict[str, Any]) -> None:
    parsed = parse_request(case["method"], case["path"], case["body"].encode())
    assert parsed == _expected(case["expect"])


@pytest.mark.parametrize(
    "case", VECTORS["invalid"], ids=lambda c: f"{c['method']} {c['path'][:40]}"
)
def test_parity_invalid_requests_are_rejected(case: dict[str, Any]) -> None:
    _fails(case["method"], case["path"], case["body"].encode())


def test_vectors_carry_provenance() -> None:
    for case in VECTORS["valid"] + VECTORS["invalid"]:
        assert case["sources"]
        for source in case["sources"]:
            assert source["repo"] == "paritytech/secret-store"
            assert len(source["commit"]) == 40 and source["test"]


# --- accepted spellings ----------------------------------------------------------------------


def test_hex_with_0x_and_upper_case_is_accepted_in_every_segment() -> None:
    plain = parse_request("POST", f"/shadow/{K}/{S}/{P1}/{P2}")
    assert parse_request("POST", f"/shadow/0x{K}/0x{S.upper()}/0X{P1}/0x{P2.upper()}") == plain
    assert parse_request("GET", f"/schnorr/0x{K}/{S}/0x{H}") == SignSchnorr(
        bytes.fromhex(K),  # type: ignore[arg-type]
        bytes.fromhex(S),
        bytes.fromhex(H),  # type: ignore[arg-type]
    )


def test_every_character_may_be_percent_encoded() -> None:
    path = f"/shadow/{K}/{S}/{P1}/{P2}"
    encoded = "".join(c if c == "/" else f"%{ord(c):02X}" for c in path)
    assert parse_request("POST", encoded) == parse_request("POST", path)


def test_an_encoded_slash_separates_segments_as_in_parity() -> None:
    # Parity decodes the whole path before splitting it
    assert parse_request("GET", f"/shadow%2F{K}%2f{S}") == RetrieveDocumentKeyShadow(
        bytes.fromhex(K),  # type: ignore[arg-type]
        bytes.fromhex(S),
    )


def test_leading_slashes_are_all_dropped_as_in_parity() -> None:
    assert parse_request("GET", f"///{K}/{S}") == parse_request("GET", f"/{K}/{S}")
    assert split_path("//a/b") == ["a", "b"]


def test_malformed_percent_sequences_stay_literal_and_fail_as_hex() -> None:
    assert "key id" in _fails("GET", f"/%zz{K[2:]}/{S}")


def test_a_path_not_utf8_after_decoding_is_rejected() -> None:
    assert "UTF-8" in _fails("GET", f"/%ff{K[2:]}/{S}")


@pytest.mark.parametrize("v", [0, 1, 27, 28])
def test_signature_v_values_accepted(v: int) -> None:
    signature = S[:-2] + f"{v:02x}"
    parsed = parse_request("GET", f"/server/{K}/{signature}")
    assert parsed == RetrieveServerKey(bytes.fromhex(K), bytes.fromhex(signature))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("0", 0),
        ("2", 2),
        ("007", 7),
        ("+3", 3),
        (str(MAX_THRESHOLD), MAX_THRESHOLD),
        ("0" * 100 + "5", 5),
        ("0" * 5000 + "5", 5),
        ("0" * 5000, 0),
    ],
)
def test_thresholds_as_rust_usize_parses_them(text: str, value: int) -> None:
    assert parse_request("POST", f"/{K}/{S}/{text}") == GenerateDocumentKey(
        bytes.fromhex(K),  # type: ignore[arg-type]
        bytes.fromhex(S),
        value,
    )
    assert parse_request("POST", f"/shadow/{K}/{S}/{text}") == GenerateServerKey(
        bytes.fromhex(K),  # type: ignore[arg-type]
        bytes.fromhex(S),
        value,
    )


def test_query_free_paths_only_the_path_is_parsed() -> None:
    # the app passes the raw path without the query; a '?' left in would be part of a segment
    assert "signature" in _fails("GET", f"/{K}/{S}?x=1")


# --- malformed segments ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key_id", "problem"),
    [
        (K[:-2], "expected 32 bytes, got 31"),
        (K + "00", "expected 32 bytes, got 33"),
        (K[:-1], "odd number of hex digits"),
        ("zz" + K[2:], "not hex"),
        ("0x", "expected 32 bytes, got 0"),
    ],
)
def test_bad_key_ids_name_the_segment(key_id: str, problem: str) -> None:
    message = _fails("GET", f"/server/{key_id}/{S}")
    assert message.startswith("segment 2 (key id)")
    assert problem in message
    # without a prefix the key id is the first segment, and the message says so
    message = _fails("GET", f"/{key_id}/{S}")
    assert message.startswith("segment 1 (key id)") and "route prefix" in message


@pytest.mark.parametrize(
    ("signature", "problem"),
    [
        (S[:-2], "expected 65 bytes, got 64"),
        (S + "00", "expected 65 bytes, got 66"),
        (S[:-1], "odd number of hex digits"),
        ("g" + S[1:], "not hex"),
        (S[:-2] + "02", "v must be 0, 1, 27 or 28, got 2"),
        (S[:-2] + "1d", "v must be 0, 1, 27 or 28, got 29"),
        (S[:-2] + "ff", "got 255"),
    ],
)
def test_bad_signatures_name_the_segment(signature: str, problem: str) -> None:
    message = _fails("GET", f"/shadow/{K}/{signature}")
    assert message.startswith("segment 3 (signature)")
    assert problem in message


@pytest.mark.parametrize(
    ("message_hash", "problem"),
    [(H[:-2], "expected 32 bytes, got 31"), (H + "0", "odd number"), ("x" * 64, "not hex")],
)
@pytest.mark.parametrize("prefix", ["schnorr", "ecdsa"])
def test_bad_message_hashes(prefix: str, message_hash: str, problem: str) -> None:
    message = _fails("GET", f"/{prefix}/{K}/{S}/{message_hash}")
    assert message.startswith("segment 4 (message hash)") and problem in message


@pytest.mark.parametrize(
    ("common", "encrypted", "segment", "problem"),
    [
        (OFF_CURVE, P2, "segment 4 (common point)", "not a point on secp256k1"),
        (P1, OFF_CURVE, "segment 5 (encrypted point)", "not a point on secp256k1"),
        ("00" * 64, P2, "segment 4 (common point)", "not a point"),
        (P1[:-2], P2, "segment 4 (common point)", "expected 64 bytes, got 63"),
        ("04" + P1, P2, "segment 4 (common point)", "expected 64 bytes, got 65"),
        (P1, "zz" + P2[2:], "segment 5 (encrypted point)", "not hex"),
    ],
)
def test_bad_points(common: str, encrypted: str, segment: str, problem: str) -> None:
    message = _fails("POST", f"/shadow/{K}/{S}/{common}/{encrypted}")
    assert message.startswith(segment) and problem in message


@pytest.mark.parametrize(
    "threshold", ["-1", "", "+", "1.5", "0x2", "2 ", " 2", "1e3", "\uff11", "٣", "++1", "+-1"]
)
def test_bad_thresholds(threshold: str) -> None:
    message = _fails("POST", f"/{K}/{S}/{quote(threshold)}")
    assert message.startswith("segment 3 (threshold)")
    message = _fails("POST", f"/shadow/{K}/{S}/{quote(threshold)}")
    assert message.startswith("segment 4 (threshold)")


def test_threshold_beyond_usize_is_rejected() -> None:
    assert "too large" in _fails("POST", f"/{K}/{S}/{MAX_THRESHOLD + 1}")
    assert "too large" in _fails("POST", f"/{K}/{S}/{'9' * 5000}")


# --- routes: precedence, methods, segment counts ---------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "expected_kind"),
    [
        ("POST", f"/shadow/{K}/{S}/2", GenerateServerKey),
        ("POST", f"/shadow/{K}/{S}/{P1}/{P2}", StoreDocumentKey),
        ("POST", f"/{K}/{S}/2", GenerateDocumentKey),
        ("GET", f"/server/{K}/{S}", RetrieveServerKey),
        ("GET", f"/{K}/{S}", RetrieveDocumentKey),
        ("GET", f"/shadow/{K}/{S}", RetrieveDocumentKeyShadow),
        ("GET", f"/schnorr/{K}/{S}/{H}", SignSchnorr),
        ("GET", f"/ecdsa/{K}/{S}/{H}", SignEcdsa),
    ],
)
def test_each_route_is_chosen_by_prefix_method_and_count(
    method: str, path: str, expected_kind: type
) -> None:
    assert type(parse_request(method, path)) is expected_kind


@pytest.mark.parametrize(
    ("method", "path", "hint"),
    [
        ("POST", f"/{K}/{S}", "POST /{key_id}/{signature}/{threshold}"),
        ("GET", f"/{K}/{S}/2", "GET /{key_id}/{signature}"),
        ("PUT", f"/{K}/{S}", "method PUT"),
        ("DELETE", f"/shadow/{K}/{S}", "method DELETE"),
        ("POST", f"/server/{K}/{S}", "method POST"),
        ("GET", f"/server/{K}/{S}/2", "GET /server/{key_id}/{signature}"),
        ("POST", f"/schnorr/{K}/{S}/{H}", "method POST"),
        ("GET", f"/shadow/{K}/{S}/2", "GET /shadow/{key_id}/{signature}"),
        ("POST", f"/shadow/{K}/{S}", "or POST /shadow/"),
        ("POST", f"/shadow/{K}/{S}/{P1}/{P2}/2", "got 5 segments"),
        ("POST", f"/{K}/{S}/{P1}/{P2}", "got 4 segments"),
        ("GET", f"/ecdsa/{K}/{S}", "GET /ecdsa/{key_id}/{signature}/{message_hash}"),
        ("HEAD", f"/{K}/{S}", "method HEAD"),
        ("OPTIONS", f"/{K}/{S}", "method OPTIONS"),
        ("get", f"/{K}/{S}", "method get"),
    ],
)
def test_no_route_for_wrong_method_or_count_says_what_is_served(
    method: str, path: str, hint: str
) -> None:
    assert hint in _fails(method, path)


@pytest.mark.parametrize(
    ("path", "hint"),
    [
        ("", "empty path"),
        ("/", "empty path"),
        ("/shadow", "needs at least"),
        (f"/shadow/{K}", "needs at least"),
        (f"/{K}", "route prefix"),
        (f"/{K}/", "segment 2 (signature) is empty"),
        ("/shadow///2", "segment 2 (key id) is empty"),
        (f"/server/{K}//", "segment 3 (signature) is empty"),
        ("/a/b", "neither a key id nor a route prefix"),
        (f"/unknown/{K}/{S}", "neither a key id nor a route prefix"),
        (f"/Shadow/{K}/{S}", "neither a key id nor a route prefix"),
        (f"/{K}/{S}/", "got 3 segments"),
    ],
)
def test_missing_or_extra_segments(path: str, hint: str) -> None:
    assert hint in _fails("GET", path)


# --- /admin ----------------------------------------------------------------------------------


def _admin_body(*node_ids: str) -> bytes:
    return json.dumps(list(node_ids)).encode()


def test_admin_body_with_and_without_0x_and_duplicates() -> None:
    parsed = parse_request("POST", ADMIN, _admin_body("0x" + P1, P2, "0x" + P2.upper()))
    assert parsed == ChangeServersSet(
        bytes.fromhex(S),
        bytes.fromhex(S),
        frozenset({bytes.fromhex(P1), bytes.fromhex(P2)}),  # type: ignore[arg-type]
    )


def test_admin_empty_list_is_left_to_the_key_server() -> None:
    parsed = parse_request("POST", ADMIN, b" [ ] ")
    assert isinstance(parsed, ChangeServersSet) and parsed.new_servers_set == frozenset()


@pytest.mark.parametrize(
    ("path", "hint"),
    [
        (f"/admin/servers_set_change/{S}", "expected POST /admin/servers_set_change/"),
        (f"/admin/servers_set_change/{S}/{S}/", "expected POST /admin/servers_set_change/"),
        (f"/admin/other/{S}/{S}", "expected POST /admin/servers_set_change/"),
        ("/admin", "expected POST /admin/servers_set_change/"),
        (f"/admin/servers_set_change/xxx/{S}", "segment 3 (old set signature): not hex"),
        (f"/admin/servers_set_change/{S}/{S[:-2]}", "segment 4 (new set signature): expected 65"),
        (f"/admin/servers_set_change/{S}/{S[:-2]}05", "v must be 0, 1, 27 or 28"),
    ],
)
def test_admin_bad_paths(path: str, hint: str) -> None:
    assert hint in _fails("POST", path, _admin_body(P1))


def test_admin_needs_post() -> None:
    assert "method GET" in _fails("GET", ADMIN, _admin_body(P1))


@pytest.mark.parametrize(
    ("body", "hint"),
    [
        (b"", "no valid JSON"),
        (b"[", "no valid JSON"),
        (b"\xff\xfe[]", "no valid JSON"),
        (b"[" * 100_000 + b"]" * 100_000, "got nested JSON"),
        (b'[{"a": 1}]', "got nested JSON"),
        (json.dumps([P1, "[" + P2]).encode(), "got nested JSON"),
        (b'{"a": 1}', "got a JSON dict"),
        (b'"0x00"', "got a JSON str"),
        (b"[1]", "body item 0 (node id): expected a hex string"),
        (json.dumps([P1, None]).encode(), "body item 1 (node id): expected a hex string"),
        (_admin_body("0x" + P1[:-2]), "body item 0 (node id): expected 64 bytes, got 63"),
        (_admin_body(P1, "zz"), "body item 1 (node id): not hex"),
        (_admin_body(OFF_CURVE), "body item 0 (node id): not a point on secp256k1"),
    ],
)
def test_admin_bad_bodies(body: bytes, hint: str) -> None:
    assert hint in _fails("POST", ADMIN, body)


def test_parse_node_ids_alone() -> None:
    assert parse_node_ids(_admin_body(P1, P1)) == frozenset({bytes.fromhex(P1)})


# --- properties ------------------------------------------------------------------------------

_methods = st.sampled_from(["GET", "POST", "PUT", "HEAD", "OPTIONS", "get"])
_segment_text = st.one_of(
    st.sampled_from(
        [
            "shadow",
            "server",
            "schnorr",
            "ecdsa",
            "admin",
            "servers_set_change",
            K,
            S,
            H,
            P1,
            OFF_CURVE,
            "2",
            "+1",
            "-1",
            "",
            "0x",
            "%",
            "%ff",
            "%2F",
        ]
    ),
    st.text(max_size=70),
)


@given(_methods, st.lists(_segment_text, max_size=7), st.binary(max_size=200))
def test_any_input_parses_or_raises_invalid_request_only(
    method: str, segments: list[str], body: bytes
) -> None:
    try:
        parsed = parse_request(method, "/" + "/".join(segments), body)
    except InvalidRequest as exc:
        assert str(exc)
    else:
        assert parsed is not None


@given(st.text(max_size=300), st.binary(max_size=300))
def test_any_path_text_parses_or_raises_invalid_request_only(path: str, body: bytes) -> None:
    for method in ("GET", "POST"):
        with contextlib.suppress(InvalidRequest):
            parse_request(method, path, body)


@given(
    st.binary(min_size=32, max_size=32),
    st.binary(min_size=64, max_size=64),
    st.sampled_from([0, 1, 27, 28]),
    st.integers(min_value=0, max_value=MAX_THRESHOLD),
    st.booleans(),
)
def test_generated_paths_round_trip(
    key_id: bytes, rs: bytes, v: int, threshold: int, with_0x: bool
) -> None:
    signature = rs + bytes([v])
    pre = "0x" if with_0x else ""
    parsed = parse_request(
        "POST", f"/shadow/{pre}{key_id.hex()}/{pre}{signature.hex()}/{threshold}"
    )
    assert parsed == GenerateServerKey(key_id, signature, threshold)  # type: ignore[arg-type]


@given(st.lists(st.integers(min_value=1, max_value=2**64), min_size=1, max_size=5))
def test_admin_node_ids_round_trip(scalars: list[int]) -> None:
    node_ids = [Point.base_mul(Scalar(k)).to_bytes() for k in scalars]
    parsed = parse_request("POST", ADMIN, _admin_body(*("0x" + n.hex() for n in node_ids)))
    assert isinstance(parsed, ChangeServersSet)
    assert parsed.new_servers_set == frozenset(node_ids)


# --- the bound signature header (ours) ---------------------------------------------------------

BOUND = "11" * 64 + "00"


def test_the_header_name() -> None:
    assert BOUND_SIGNATURE_HEADER == "X-Secretstore-Bound-Signature"


@pytest.mark.parametrize("value", [BOUND, "0x" + BOUND, " 0X" + BOUND.upper() + " "])
def test_bound_signature_hex_with_or_without_prefix(value: str) -> None:
    assert parse_bound_signature([value]) == bytes.fromhex(BOUND)
    assert parse_bound_signature([]) is None


@pytest.mark.parametrize(
    ("values", "hint"),
    [
        (["11" * 64], "65 bytes"),
        (["11" * 64 + "1d"], "v must be 0, 1, 27 or 28"),
        (["xyz"], BOUND_SIGNATURE_HEADER),
        ([BOUND, BOUND], "2 times"),
    ],
)
def test_malformed_bound_signatures(values: list[str], hint: str) -> None:
    with pytest.raises(InvalidRequest, match=hint):
        parse_bound_signature(values)
    with pytest.raises(InvalidRequest, match=hint):
        parse_request("GET", f"/ecdsa/{K}/{S}/{H}", b"", values)


def test_the_bound_signature_lands_on_generation_store_signing_and_delete_only() -> None:
    bound = bytes.fromhex(BOUND)
    generation = parse_request("POST", f"/shadow/{K}/{S}/1", b"", [BOUND])
    assert isinstance(generation, GenerateServerKey) and generation.bound_signature == bound
    store = parse_request("POST", f"/shadow/{K}/{S}/{P1}/{P2}", b"", [BOUND])
    assert isinstance(store, StoreDocumentKey) and store.bound_signature == bound
    schnorr = parse_request("GET", f"/schnorr/{K}/{S}/{H}", b"", [BOUND])
    assert isinstance(schnorr, SignSchnorr) and schnorr.bound_signature == bound
    ecdsa = parse_request("GET", f"/ecdsa/{K}/{S}/{H}", b"", [BOUND])
    assert isinstance(ecdsa, SignEcdsa) and ecdsa.bound_signature == bound
    delete = parse_request("DELETE", f"/{K}/{S}", b"", [BOUND])
    assert isinstance(delete, DeleteKey) and delete.bound_signature == bound
    assert parse_request("DELETE", f"/{K}/{S}") == DeleteKey(
        ServerKeyId(bytes.fromhex(K)), bytes.fromhex(S)
    )
    assert parse_request("GET", f"/ecdsa/{K}/{S}/{H}").bound_signature is None  # type: ignore[union-attr]
    for method, path in [
        ("POST", f"/{K}/{S}/1"),
        ("GET", f"/server/{K}/{S}"),
        ("GET", f"/{K}/{S}"),
        ("GET", f"/shadow/{K}/{S}"),
        ("POST", ADMIN),
    ]:
        with pytest.raises(InvalidRequest, match="signing and delete routes only"):
            parse_request(method, path, json.dumps([P1]).encode(), [BOUND])
