"""The share-publics file: one node's Parity records without their secrets, for other nodes'
imports to check their shares against (pure: JSON text in and out).

    {"format": "secretstore-parity-share-publics", "version": 1, "node": "0x<node id>",
     "keys": {"0x<key id>": {"author": "0x…", "threshold": 1, "public": "0x…",
                             "common_point": "0x…" | null, "encrypted_point": "0x…" | null,
                             "versions": {"0x<version hash>": "0x<share public s_i·G>"}}}}

A share public `s_i·G` reveals nothing of the share `s_i` (the nodes exchange such points
during key generation anyway); the file holds no secret.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any, Final

from secretstore.crypto.curve import Point
from secretstore.errors import CryptoError, ParityImportError
from secretstore.parity_db.checks import ShareSummary
from secretstore.types import Address, NodeId, ServerKeyId

FORMAT: Final = "secretstore-parity-share-publics"
FORMAT_VERSION: Final = 1


def _hex(data: bytes) -> str:
    return "0x" + data.hex()


def _point_hex(point: Point | None) -> str | None:
    return None if point is None else _hex(point.to_bytes())


def encode_share_publics(
    node: NodeId, summaries: Iterable[tuple[ServerKeyId, ShareSummary]]
) -> str:
    """The file's text for `node`'s summaries (key ids in ascending order)."""
    keys: dict[str, Any] = {}
    for key_id, summary in sorted(summaries, key=lambda item: item[0]):
        keys[_hex(key_id)] = {
            "author": _hex(summary.author),
            "threshold": summary.threshold,
            "public": _hex(summary.public.to_bytes()),
            "common_point": _point_hex(summary.common_point),
            "encrypted_point": _point_hex(summary.encrypted_point),
            "versions": {
                _hex(hash_): _hex(point.to_bytes()) for hash_, point in summary.versions.items()
            },
        }
    document = {"format": FORMAT, "version": FORMAT_VERSION, "node": _hex(node), "keys": keys}
    return json.dumps(document, indent=1) + "\n"


class _Reader:
    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, what: str) -> ParityImportError:
        return ParityImportError(f"{self.source}: {what}")

    def hex(self, value: object, length: int, where: str) -> bytes:
        if not isinstance(value, str) or not value.startswith("0x"):
            raise self.fail(f"{where} is not a 0x-prefixed hex string")
        try:
            raw = bytes.fromhex(value[2:])
        except ValueError:
            raise self.fail(f"{where} is not hex") from None
        if len(raw) != length:
            raise self.fail(f"{where} is not {length} bytes")
        return raw

    def point(self, value: object, where: str) -> Point:
        try:
            return Point.from_bytes(self.hex(value, 64, where))
        except CryptoError:
            raise self.fail(f"{where} is not a point on secp256k1") from None

    def optional_point(self, value: object, where: str) -> Point | None:
        return None if value is None else self.point(value, where)

    def mapping(self, value: object, where: str) -> Mapping[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(f"{where} is not a JSON object")
        return value


def decode_share_publics(text: str, source: str) -> tuple[NodeId, dict[ServerKeyId, ShareSummary]]:
    """(the node, its summaries by key id) of a share-publics file; ParityImportError naming
    `source` and the field when it is not one."""
    reader = _Reader(source)
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise reader.fail(f"not JSON ({exc.msg} at {exc.pos})") from None
    top = reader.mapping(document, "the file")
    if top.get("format") != FORMAT or top.get("version") != FORMAT_VERSION:
        raise reader.fail(f"not a share-publics file (format {FORMAT!r}, version 1)")
    node = NodeId(reader.point(top.get("node"), "node").to_bytes())
    summaries: dict[ServerKeyId, ShareSummary] = {}
    for key_hex, raw in reader.mapping(top.get("keys"), "keys").items():
        key_id = ServerKeyId(reader.hex(key_hex, 32, "a key id"))
        where = f"key {key_hex}"
        entry = reader.mapping(raw, where)
        threshold = entry.get("threshold")
        if isinstance(threshold, bool) or not isinstance(threshold, int) or threshold < 0:
            raise reader.fail(f"{where}: threshold is not a non-negative integer")
        versions = {
            reader.hex(hash_hex, 32, f"{where}: a version hash"): reader.point(
                point_hex, f"{where}: a share public"
            )
            for hash_hex, point_hex in reader.mapping(
                entry.get("versions"), f"{where}: versions"
            ).items()
        }
        summaries[key_id] = ShareSummary(
            node=node,
            author=Address(reader.hex(entry.get("author"), 20, f"{where}: author")),
            threshold=threshold,
            public=reader.point(entry.get("public"), f"{where}: public"),
            common_point=reader.optional_point(entry.get("common_point"), f"{where}: common_point"),
            encrypted_point=reader.optional_point(
                entry.get("encrypted_point"), f"{where}: encrypted_point"
            ),
            versions=versions,
        )
    return node, summaries
