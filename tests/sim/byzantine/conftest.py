"""Reports the count of Byzantine cases that ran, by session, role and fault kind."""

from __future__ import annotations

import pytest

from tests.sim.byzantine.cases import Case, table

_RAN: list[Case] = []


def pytest_runtest_setup(item: pytest.Item) -> None:
    callspec = getattr(item, "callspec", None)
    case = callspec.params.get("case") if callspec is not None else None
    if isinstance(case, Case):
        _RAN.append(case)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if _RAN:
        terminalreporter.write_sep("-", f"Byzantine cases run: {len(_RAN)}")
        terminalreporter.write_line(table(_RAN))
