"""kill -9 (of one node, and of every node at once) and restarts during mixed store/retrieve
operations: nothing acknowledged is lost, every acknowledged key is retrievable from every node
after, no answer is wrong, no answer waits for the session timeout; and no node log holds a
secret used in the run.

The quick part (1,000 operations, a kill every second or so) runs in `make test`; the soak
(`make soak`) runs longer on 5 nodes with kills, SIGSTOPs, partitions and power cuts mixed."""

from __future__ import annotations

import asyncio
import os
from typing import Any

import pytest

from secretstore.storage.leveldb import LevelDbKeyStorage
from tests.faults.chaos import ChaosReport, run_chaos
from tests.faults.cluster import NetCluster
from tests.faults.figures import record
from tests.faults.ops import REQUESTER

pytestmark = [pytest.mark.e2e, pytest.mark.faults]

SESSION_TIMEOUT = 30.0


def report_figures(label: str, report: ChaosReport) -> None:
    record(f"{label}: operations", report.operations)
    record(f"{label}: wall time", report.seconds, "s")
    record(f"{label}: stores acknowledged", report.stores_acknowledged)
    record(f"{label}: retrievals answered", report.retrievals_ok)
    record(f"{label}: faults injected", dict(report.faults).__repr__())
    record(f"{label}: slowest answer", report.slowest, "s")
    record(f"{label}: acknowledged keys lost", len(report.lost))
    record(f"{label}: wrong answers", report.wrong_answers)
    failed = sum(report.failures.values())
    record(f"{label}: operations failed (fast, named)", failed)
    for what, count in report.failures.most_common(4):
        record(f"{label}: … {what}", count)


def secrets_of_the_run(cluster: NetCluster, report: ChaosReport) -> dict[str, str]:
    """Every secret used: node keys, the requester's key, document keys, and every stored
    key share (read from each node's LevelDB after the nodes stopped), as hex."""
    secrets = {"requester": REQUESTER.secret.to_bytes().hex()}
    for node in cluster:
        secrets[f"{node.name} key"] = node.key.secret.to_bytes().hex()
    for stored in report.acknowledged:
        secrets[f"document key {stored.key_id.hex()}"] = stored.secret.to_bytes().hex()
    for node in cluster:
        storage = LevelDbKeyStorage(node.directory / "db")
        try:
            for key_id in list(storage.ids())[:200]:
                share = storage.get(key_id)
                assert share is not None
                for version in share.versions:
                    secrets[f"{node.name} share {key_id.hex()} {version.hash.hex()}"] = (
                        version.secret_share.to_bytes().hex()
                    )
        finally:
            storage.close()
    return secrets


def assert_no_secret_in_logs(cluster: NetCluster, secrets: dict[str, str]) -> int:
    logs = {node.name: node.log_text().lower() for node in cluster}
    hits = [
        (what, name)
        for what, value in secrets.items()
        for name, text in logs.items()
        if value.lower() in text or value[:32].lower() in text
    ]
    assert hits == [], hits
    return len(secrets)


def assert_quiet_logs(cluster: NetCluster) -> None:
    """Expected events (peers gone, refused requests) are one line each: no traceback."""
    for node in cluster:
        assert "Traceback" not in node.log_text(), node.log_tail()


def check(cluster: NetCluster, report: ChaosReport, label: str) -> None:
    report_figures(label, report)
    assert report.lost == [], (report.lost, report.failures)
    assert report.wrong_answers == 0
    assert report.stores_acknowledged > 0 and report.retrievals_ok > 0, report.failures
    assert report.slowest < SESSION_TIMEOUT / 2, (report.slowest, cluster.logs())
    for failure in report.failures:
        assert "invalid message" not in failure and "Session timeout" not in failure, failure
    cluster.kill_all()
    checked = assert_no_secret_in_logs(cluster, secrets_of_the_run(cluster, report))
    record(f"{label}: secrets grepped in every log (0 hits)", checked)
    assert_quiet_logs(cluster)


def test_kill_9_during_1000_mixed_operations_loses_nothing_acknowledged(
    net_cluster: Any,
) -> None:
    cluster: NetCluster = net_cluster(3)
    cluster.start()
    cluster.wait_ready()
    report = asyncio.run(run_chaos(cluster, 1000, fault_every=1.0, kinds=("kill", "kill-all")))
    check(cluster, report, "kill -9 run")
    assert report.faults["kill"] >= 1 and report.faults["kill-all"] >= 1, report.faults


@pytest.mark.soak
def test_soak_kills_stops_and_partitions_lose_nothing(
    net_cluster: Any, need_iptables: None
) -> None:
    operations = int(os.environ.get("SOAK_OPERATIONS", "20000"))
    cluster: NetCluster = net_cluster(5)
    cluster.start()
    cluster.wait_ready()
    report = asyncio.run(
        run_chaos(
            cluster,
            operations,
            workers=12,
            fault_every=2.0,
            kinds=("kill", "stop", "partition", "kill-all"),
            seed=7,
        )
    )
    check(cluster, report, "soak")
