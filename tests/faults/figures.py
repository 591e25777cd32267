"""Figures the fault tests measure, printed at the end of the run (pytest's summary)."""

from __future__ import annotations

FIGURES: list[tuple[str, str]] = []


def record(name: str, value: float | int | str, unit: str = "") -> None:
    """Keep one figure for the summary (e.g. record("hung peer → named error", 2.03, "s"))."""
    text = f"{value:.2f}" if isinstance(value, float) else str(value)
    FIGURES.append((name, f"{text} {unit}".strip()))
