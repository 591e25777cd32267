"""Fixtures of the fault suite: namespaces per test (skipped only where none can be made),
node processes always killed, and the figures printed at the end of the run."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.faults.cluster import NetCluster
from tests.faults.figures import FIGURES
from tests.faults.netlab import NetLab, NetLabUnavailable, iptables_missing, unavailable_reason


@pytest.fixture
def netlab_factory() -> Iterator[Any]:
    """netlab_factory(hosts) -> a NetLab; every lab is removed at the end."""
    reason = unavailable_reason()
    if reason is not None:
        pytest.skip(f"fault suite skipped: {reason}")
    labs: list[NetLab] = []

    def make(count: int) -> NetLab:
        try:
            lab = NetLab(count)
        except NetLabUnavailable as exc:
            pytest.skip(f"fault suite skipped: {exc}")
        labs.append(lab)
        return lab

    yield make
    for lab in labs:
        lab.close()


@pytest.fixture
def net_cluster(netlab_factory: Any, tmp_path: Path) -> Iterator[Any]:
    """net_cluster(count, hosts=count, **options) -> a NetCluster on a new NetLab of `hosts`
    namespaces (configs written, nothing started); its nodes are killed at the end."""
    clusters: list[NetCluster] = []

    def make(count: int, *, hosts: int | None = None, **options: Any) -> NetCluster:
        lab = netlab_factory(hosts or count)
        cluster = NetCluster(lab, tmp_path / f"c{len(clusters)}", count, **options)
        clusters.append(cluster)
        return cluster

    yield make
    for cluster in clusters:
        cluster.kill_all()


@pytest.fixture
def need_iptables() -> None:
    if iptables_missing():
        pytest.skip("iptables is missing: `make test` installs it (apt-get install iptables)")


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not FIGURES:
        return
    terminalreporter.section("fault suite figures")
    width = max(len(name) for name, _ in FIGURES)
    for name, value in FIGURES:
        terminalreporter.write_line(f"{name:<{width}}  {value}")
