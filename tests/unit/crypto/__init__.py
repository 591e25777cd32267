"""Unit tests of secretstore.crypto; `parity_vectors` reads tests/vectors/parity_client.json."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

VECTORS = Path(__file__).resolve().parents[2] / "vectors" / "parity_client.json"


@cache
def _all_vectors() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(VECTORS.read_text())
    return data


def parity_vectors(section: str) -> list[dict[str, Any]]:
    """The entries of one section of the known-answer file (each with its `source`)."""
    entries: list[dict[str, Any]] = _all_vectors()[section]
    assert entries, f"no vectors in section {section}"
    return entries


def vector_id(entry: dict[str, Any]) -> str:
    """A short pytest id naming where a vector comes from."""
    source = entry["source"]
    where = source.get("test") or source.get("section") or ""
    return f"{source['path'].rsplit('/', 1)[-1]}:{where}"[:60]
