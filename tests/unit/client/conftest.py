"""Fixtures of the client tests: `stand_in`, a stand-in key server on loopback."""

from __future__ import annotations

from .standin import stand_in

__all__ = ["stand_in"]
