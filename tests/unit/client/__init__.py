"""Unit tests of secretstore.client; `vectors` reads Parity's known answers from tests/vectors."""

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


def vectors(section: str) -> list[dict[str, Any]]:
    """The entries of one section of parity_client.json (each names its `source`)."""
    entries: list[dict[str, Any]] = _all_vectors()[section]
    assert entries, f"no vectors in section {section}"
    return entries


def only(section: str) -> dict[str, Any]:
    """The first entry of a section."""
    return vectors(section)[0]
