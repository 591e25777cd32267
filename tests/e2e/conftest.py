"""Fixtures of the end-to-end tests: clusters of real node processes, always cleaned up."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.cluster import LocalCluster, NodeProcess

ClusterFactory = Callable[..., LocalCluster]


@pytest.fixture
def processes() -> Iterator[list[NodeProcess]]:
    """Node processes a test starts on its own; each is killed at the end if still running."""
    started: list[NodeProcess] = []
    yield started
    for node in started:
        if node.process is not None:
            node.kill()


@pytest.fixture
def make_cluster(tmp_path: Path, processes: list[NodeProcess]) -> ClusterFactory:
    """make_cluster(count, **options) -> a LocalCluster (configs written, nothing started)."""
    counter = iter(range(1000))

    def make(count: int, **options: Any) -> LocalCluster:
        cluster = LocalCluster(tmp_path / f"cluster{next(counter)}", count, **options)
        processes.extend(cluster.nodes)
        return cluster

    return make


@pytest.fixture(scope="module")
def make_module_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClusterFactory]:
    """As make_cluster, for clusters shared by the tests of one module (a module-scoped
    fixture builds and starts them once); every node still running is killed at its end."""
    root = tmp_path_factory.mktemp("module-clusters")
    clusters: list[LocalCluster] = []
    counter = iter(range(1000))

    def make(count: int, **options: Any) -> LocalCluster:
        cluster = LocalCluster(root / f"cluster{next(counter)}", count, **options)
        clusters.append(cluster)
        return cluster

    yield make
    for cluster in clusters:
        cluster.kill_all()
