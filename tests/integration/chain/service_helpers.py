"""Test helpers for the service contracts: the events of a receipt, decoded."""

from __future__ import annotations

from typing import Any

from secretstore.chain.services.abi import Event


def events(receipt: dict[str, Any], event: Event) -> list[tuple[Any, ...]]:
    """Every `event` in a receipt's logs: its indexed topics (raw 32 bytes) then its data
    fields, in declaration order."""
    found = []
    for log in receipt["logs"]:
        topics = [bytes(topic) for topic in log["topics"]]
        if not topics or topics[0] != event.topic:
            continue
        data = iter(event.decode_data(bytes(log["data"])))
        indexed = iter(topics[1:])
        found.append(
            tuple(next(indexed) if is_indexed else next(data) for _, is_indexed in event.inputs)
        )
    return found
