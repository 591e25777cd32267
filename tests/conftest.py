"""Shared test settings: hypothesis profiles (a quicker one for CI's 2 cores)."""

from __future__ import annotations

import os

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
