"""One key record of a Parity Secret Store database, decoded into our KeyShare (pure).

Parity Secret Store 1.0 (and Parity Ethereum's embedded secret store from database version 3
on) stores one record per server key: the RocksDB key is the 32-byte key id, the value is
compact JSON of this shape (`0x`-prefixed hex strings; `id_numbers` maps node ids to scalars):

    {"author": "0x<20 bytes>", "threshold": <int>, "public": "0x<64 bytes x‖y>",
     "common_point": "0x<64 bytes>" | null, "encrypted_point": "0x<64 bytes>" | null,
     "versions": [{"hash": "0x<32 bytes>",
                   "id_numbers": {"0x<64-byte node id>": "0x<32-byte scalar>", ...},
                   "secret_share": "0x<32-byte scalar>"}, ...]}

Versions are oldest first. A version's hash is keccak256 of `node id ‖ id number` over its
nodes in ascending node id order, which is our `version_hash`.

Decoding is stricter than Parity's reader, on purpose: an unknown or repeated field, a number
that is not an integer, hex without its `0x` or of the wrong length, a point off the curve, a
scalar outside [1, n-1], and a version whose hash does not match its id numbers are refused
with ParityRecordError saying what and where. No message ever holds a share or an id number.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Final

from secretstore.crypto.curve import Point, Scalar
from secretstore.errors import CryptoError, InvalidKeyShare, ParityRecordError
from secretstore.storage.model import KeyShare, KeyShareVersion, version_hash
from secretstore.types import Address, NodeId, ServerKeyId

#: The fields of a record and of one of its versions, in Parity's order.
RECORD_FIELDS: Final = (
    "author",
    "threshold",
    "public",
    "common_point",
    "encrypted_point",
    "versions",
)
VERSION_FIELDS: Final = ("hash", "id_numbers", "secret_share")
#: Fields Parity reads as absent = null (serde's `Option`).
_OPTIONAL_FIELDS: Final = frozenset({"common_point", "encrypted_point"})
_HEX_DIGITS: Final = frozenset("0123456789abcdefABCDEF")


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, value in pairs:
        if name in out:
            raise ParityRecordError(f"the field {name!r} appears twice")
        out[name] = value
    return out


def _no_constant(name: str) -> Any:
    raise ParityRecordError(f"{name} is not a JSON number")


def _parse_json(value: bytes) -> Any:
    try:
        text = value.decode("utf-8")
    except UnicodeDecodeError:
        raise ParityRecordError("the record is not UTF-8 text (not JSON)") from None
    try:
        return json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_no_constant)
    except json.JSONDecodeError as exc:
        raise ParityRecordError(f"the record is not JSON ({exc.msg} at {exc.pos})") from None
    except RecursionError:
        raise ParityRecordError("the record is nested too deeply") from None


def _object(value: object, fields: tuple[str, ...], where: str) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        raise ParityRecordError(f"{where} is not a JSON object")
    unknown = sorted(set(value) - set(fields))
    if unknown:
        raise ParityRecordError(f"{where} has unknown fields {unknown}")
    missing = [name for name in fields if name not in value and name not in _OPTIONAL_FIELDS]
    if missing:
        raise ParityRecordError(f"{where} lacks the fields {missing}")
    return value


def _hex(value: object, length: int, where: str) -> bytes:
    """`0x` and exactly `length` bytes of hex (either case), as Parity writes and reads."""
    if not isinstance(value, str) or not value.startswith("0x"):
        raise ParityRecordError(f"{where} is not a 0x-prefixed hex string")
    digits = value[2:]
    if len(digits) != 2 * length or not set(digits) <= _HEX_DIGITS:
        raise ParityRecordError(f"{where} is not {length} bytes of hex")
    return bytes.fromhex(digits)


def _point(value: object, where: str) -> Point:
    raw = _hex(value, 64, where)
    try:
        return Point.from_bytes(raw)
    except CryptoError:
        raise ParityRecordError(f"{where} is not a point on secp256k1") from None


def _scalar(value: object, where: str) -> Scalar:
    raw = _hex(value, 32, where)
    try:
        return Scalar.secret_from_bytes(raw)
    except CryptoError:
        raise ParityRecordError(f"{where} is not a scalar in [1, n-1]") from None


def _threshold(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ParityRecordError("threshold is not an integer")
    if value < 0:
        raise ParityRecordError("threshold is negative")
    return value


def _version(value: object, index: int) -> KeyShareVersion:
    where = f"versions[{index}]"
    fields = _object(value, VERSION_FIELDS, where)
    declared = _hex(fields["hash"], 32, f"{where}.hash")
    numbers = fields["id_numbers"]
    if not isinstance(numbers, dict) or not numbers:
        raise ParityRecordError(f"{where}.id_numbers is not a non-empty JSON object")
    pairs: list[tuple[NodeId, Scalar]] = []
    for position, (node_hex, number_hex) in enumerate(numbers.items()):
        node = _point(node_hex, f"{where}.id_numbers node {position}")
        number = _scalar(number_hex, f"{where}.id_numbers[0x{node.to_bytes().hex()[:16]}…]")
        pairs.append((NodeId(node.to_bytes()), number))
    share = _scalar(fields["secret_share"], f"{where}.secret_share")
    try:
        version = KeyShareVersion(hash=declared, id_numbers=tuple(pairs), secret_share=share)
    except InvalidKeyShare as exc:
        raise ParityRecordError(f"{where}: {exc}") from None
    expected = version_hash(version.id_numbers)
    if declared != expected:
        raise ParityRecordError(
            f"version 0x{declared.hex()} ({where}): the hash does not match its id numbers "
            f"(they hash to 0x{expected.hex()})"
        )
    return version


def decode_key_id(key: bytes) -> ServerKeyId:
    """The key id a record is stored under: exactly 32 bytes."""
    if len(key) != 32:
        raise ParityRecordError(f"the record's database key is {len(key)} bytes, not a key id")
    return ServerKeyId(bytes(key))


def decode_parity_record(value: bytes) -> KeyShare:
    """The KeyShare of one Parity record (the JSON value); ParityRecordError if refused."""
    fields = _object(_parse_json(value), RECORD_FIELDS, "the record")
    author = Address(_hex(fields["author"], 20, "author"))
    threshold = _threshold(fields["threshold"])
    public = _point(fields["public"], "public")
    common = fields.get("common_point")
    encrypted = fields.get("encrypted_point")
    common_point = None if common is None else _point(common, "common_point")
    encrypted_point = None if encrypted is None else _point(encrypted, "encrypted_point")
    raw_versions = fields["versions"]
    if not isinstance(raw_versions, list) or not raw_versions:
        raise ParityRecordError("versions is not a non-empty JSON array")
    versions = tuple(_version(raw, index) for index, raw in enumerate(raw_versions))
    try:
        return KeyShare(
            author=author,
            threshold=threshold,
            public=public,
            common_point=common_point,
            encrypted_point=encrypted_point,
            versions=versions,
        )
    except InvalidKeyShare as exc:
        raise ParityRecordError(str(exc)) from None


def same_record(a: KeyShare, b: KeyShare) -> bool:
    """Whether two shares hold the same Parity record: author, threshold, points, and every
    version's hash, id numbers and share (fields Parity has no counterpart of are ignored)."""
    if (a.author, a.threshold, a.public, a.common_point, a.encrypted_point) != (
        b.author,
        b.threshold,
        b.public,
        b.common_point,
        b.encrypted_point,
    ):
        return False
    if len(a.versions) != len(b.versions):
        return False
    return all(
        (x.hash, x.id_numbers, x.secret_share) == (y.hash, y.id_numbers, y.secret_share)
        for x, y in zip(a.versions, b.versions, strict=True)
    )
