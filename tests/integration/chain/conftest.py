"""Fixtures of the chain tests: a real anvil (from npm) and our contracts on it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from secretstore.chain.devchain import Anvil, DevChain


@pytest.fixture(scope="module")
def anvil() -> Iterator[Anvil]:
    """One anvil per module that mines a block per transaction (tests mine more by hand)."""
    with Anvil(block_time=None) as chain:
        yield chain


@pytest.fixture
def dev(anvil: Anvil) -> DevChain:
    return DevChain(anvil.url)
