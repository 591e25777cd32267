"""Shared test settings: hypothesis profiles (a quicker one for CI's 2 cores)."""

from __future__ import annotations

import os
import sys
from typing import Any

from hypothesis import HealthCheck, settings

# Import eth-account once, through the guard that keeps the recursion limit as it was (see
# secretstore/ethaccount.py): any later `import eth_account` in a test then finds it cached.
import secretstore.ethaccount  # noqa: F401

settings.register_profile(
    "default", max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile(
    "thorough", max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """The figures the docker and browser tests measured (image size, build and start times)."""
    system = sys.modules.get("tests.e2e.system")
    figures = getattr(system, "FIGURES", [])
    if figures:
        terminalreporter.section("measured")
        for name, value in figures:
            terminalreporter.write_line(f"{name}: {value}")
