"""`secretstore chain-cluster`: anvil, the contracts and the nodes in one command."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from secretstore.chain.devchain import free_port
from tests.e2e.cluster import http
from tests.e2e.test_runtime import _two_free_ranges

pytestmark = [pytest.mark.e2e, pytest.mark.chain]


def test_one_command_runs_a_cluster_on_a_deployed_chain(tmp_path: Path) -> None:
    mesh_base, http_base = _two_free_ranges(3)
    directory = tmp_path / "chain"
    command = [
        sys.executable,
        "-m",
        "secretstore.cli.main",
        "chain-cluster",
        "--dir",
        str(directory),
        "--base-port",
        str(mesh_base),
        "--http-base-port",
        str(http_base),
        "--chain-port",
        str(free_port()),
    ]
    launcher = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        assert launcher.stdout is not None
        lines = []
        for line in launcher.stdout:
            lines.append(line)
            if line.startswith(("cluster ready", "a node exited", "not every node")):
                break
        output = "".join(lines)
        assert lines[-1].startswith("cluster ready"), output
        deployment = json.loads((directory / "deployment.json").read_text())
        for name in ("registry", "acl", "server_set"):
            assert deployment[name] in output  # the addresses are printed
        summary = json.loads((directory / "cluster.json").read_text())
        assert summary["chain"]["registry"] == deployment["registry"]
        for entry in summary["nodes"]:
            config = Path(entry["config"]).read_text()
            assert 'acl_contract = "registry"' in config
            assert 'server_set_contract = "registry"' in config
            status, health = http("GET", entry["http"] + "/health")
            assert status == 200 and health["ready"] and health["chain"]["trusted"], health
        launcher.send_signal(signal.SIGTERM)
        rest, _ = launcher.communicate(timeout=30)
        assert launcher.returncode == 0, output + rest
    finally:
        if launcher.poll() is None:
            launcher.kill()
            launcher.wait()
    again = subprocess.run(
        [*command, "--write-only"], capture_output=True, text=True, timeout=60, check=False
    )
    assert again.returncode == 0, again.stderr
    assert "contracts (reused" in again.stdout
    assert json.loads((directory / "deployment.json").read_text()) == deployment
