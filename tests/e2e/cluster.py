"""Real `secretstore-node` processes on loopback: write configs, start, stop, kill, read logs.

A `LocalCluster` owns N `NodeProcess`es under one directory. Every node logs to its own file
(appended across restarts). Nothing here sleeps for a fixed time: waits poll until a condition
holds or a deadline passes, and a failed wait raises with the tail of every log.
"""

from __future__ import annotations

import json
import os
import random
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from secretstore.cli.cluster import TomlValue, render_config, write_private
from secretstore.config.model import NodeAddress
from secretstore.crypto.keys import KeyPair
from secretstore.crypto.rng import SeededRng
from secretstore.types import NodeId

HOST = "127.0.0.1"
NODE_COMMAND = (sys.executable, "-m", "secretstore.cli.node")
#: Options every test node gets: quick keep-alives so dead peers are noticed fast.
TEST_OPTIONS: Mapping[str, TomlValue] = {"keep_alive_interval": 1.0, "session_timeout": 10.0}
_TAIL = 25


def _ephemeral_low() -> int:
    """The first port of the kernel's range for outgoing connections (Linux: 32768)."""
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


#: Ports for test nodes: below the range outgoing connections take their ports from, so that
#: no connection on this machine takes a node's port between the check here and the node's bind.
_LISTEN_LOW = 20000
_LISTEN_HIGH = max(_LISTEN_LOW + 2000, min(_ephemeral_low(), 65536))


def free_ports(count: int) -> list[int]:
    """`count` distinct ports that were free a moment ago, outside the ephemeral range."""
    chosen: list[int] = []
    while len(chosen) < count:
        port = random.randrange(_LISTEN_LOW, _LISTEN_HIGH)
        if port not in chosen and _port_free(port):
            chosen.append(port)
    return chosen


def wait_until(
    condition: Callable[[], Any], timeout: float, what: str, logs: str | Callable[[], str] = ""
) -> Any:
    """Poll `condition` until it returns a true value (returned); AssertionError at timeout,
    with `logs` (called then, when it is a function: the logs as they are at the timeout)."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            text = logs() if callable(logs) else logs
            raise AssertionError(f"timed out after {timeout} s waiting for {what}\n{text}")
        time.sleep(0.05)


def http(method: str, url: str, timeout: float = 15.0) -> tuple[int, Any]:
    """(status, JSON body or None) of one request; status 0 when nothing answers."""
    request = urllib.request.Request(url, method=method, data=b"" if method == "POST" else None)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            status, raw = response.status, response.read()
    except urllib.error.HTTPError as error:
        status, raw = error.code, error.read()
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return 0, None
    return status, json.loads(raw) if raw else None


def scrape(node: NodeProcess) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    with urllib.request.urlopen(f"{node.url}/metrics", timeout=10) as response:
        assert response.headers["Content-Type"].startswith("text/plain")
        text = response.read().decode()
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def metric(
    samples: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str
) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


@dataclass
class NodeProcess:
    """One node: its key, ports and files, and its process while it runs."""

    name: str
    directory: Path
    key: KeyPair
    mesh_port: int
    http_port: int
    process: subprocess.Popen[bytes] | None = None
    exit_codes: list[int] = field(default_factory=list)

    @property
    def node_id(self) -> NodeId:
        return self.key.node_id

    @property
    def short_id(self) -> str:
        return self.node_id.hex()[:8]

    @property
    def address(self) -> NodeAddress:
        return NodeAddress(self.node_id, HOST, self.mesh_port)

    @property
    def config_path(self) -> Path:
        return self.directory / "node.toml"

    @property
    def log_path(self) -> Path:
        return self.directory / "node.log"

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.http_port}"

    def write_config(
        self, nodes: Sequence[NodeAddress], extra: Mapping[str, TomlValue] | None = None
    ) -> None:
        options = {**TEST_OPTIONS, **(extra or {})}
        text = render_config(
            self.key,
            index=1,
            nodes=nodes,
            mesh_port=self.mesh_port,
            http_port=self.http_port,
            extra=options,
        )
        write_private(self.config_path, text)  # as `secretstore cluster` writes it

    # --- the process ------------------------------------------------------------------
    def start(self, *args: str) -> None:
        assert not self.running, f"{self.name} is already running"
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [*NODE_COMMAND, "--config", str(self.config_path), *args],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                cwd=self.directory,
            )

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def wait_exit(self, timeout: float = 15.0) -> int:
        assert self.process is not None, f"{self.name} was never started"
        code = self.process.wait(timeout)
        self.exit_codes.append(code)
        self.process = None
        return code

    def terminate(self, timeout: float = 15.0) -> int:
        """SIGTERM, then the exit status."""
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        return self.wait_exit(timeout)

    def kill(self) -> int:
        """SIGKILL (kill -9), then the exit status."""
        assert self.process is not None
        self.process.kill()
        return self.wait_exit()

    # --- what it says -----------------------------------------------------------------
    def health(self) -> dict[str, Any] | None:
        status, body = http("GET", f"{self.url}/health", timeout=2.0)
        return body if status == 200 and isinstance(body, dict) else None

    def is_ready(self) -> bool:
        health = self.health()
        return health is not None and health["ready"] is True

    def connected(self) -> set[str]:
        """The ids (0x hex) this node reports connected; empty when it does not answer."""
        health = self.health()
        return set(health["connected"]) if health else set()

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def log_tail(self) -> str:
        lines = self.log_text().splitlines()[-_TAIL:]
        return f"--- {self.name} ({self.short_id}) ---\n" + "\n".join(lines)

    def wait_for_log(self, pattern: str, timeout: float = 10.0) -> re.Match[str]:
        regex = re.compile(pattern)
        match: re.Match[str] = wait_until(
            lambda: regex.search(self.log_text()),
            timeout,
            f"{self.name} to log {pattern!r}",
            self.log_tail,
        )
        return match


class LocalCluster:
    """N nodes that list each other, under `root`, on free loopback ports."""

    def __init__(
        self,
        root: Path,
        count: int,
        *,
        seed: int = 0,
        extra: Mapping[str, TomlValue] | None = None,
    ) -> None:
        ports = free_ports(2 * count)
        keys = sorted(
            (KeyPair.generate(SeededRng(f"e2e-{seed}-{i}".encode())) for i in range(count)),
            key=lambda k: k.node_id,
        )
        self.root = root
        self.extra = dict(extra or {})
        #: sorted by node id: nodes[0] dials every other node
        self.nodes = [
            NodeProcess(f"node{i + 1}", root / f"node{i + 1}", key, ports[i], ports[count + i])
            for i, key in enumerate(keys)
        ]
        for node in self.nodes:
            node.write_config(self.addresses, self.extra)

    @property
    def addresses(self) -> list[NodeAddress]:
        return [node.address for node in self.nodes]

    def __iter__(self) -> Iterator[NodeProcess]:
        return iter(self.nodes)

    def __getitem__(self, index: int) -> NodeProcess:
        return self.nodes[index]

    def start(self) -> None:
        for node in self.nodes:
            node.start()

    def logs(self) -> str:
        return "\n".join(node.log_tail() for node in self.nodes)

    def wait_ready(self, timeout: float = 30.0, nodes: Sequence[NodeProcess] = ()) -> None:
        """Until every node (or those given) reports a complete mesh; fails at once when one
        of them exits."""
        chosen = list(nodes) or self.nodes

        def ready() -> bool:
            for node in chosen:
                if not node.running:
                    raise AssertionError(f"{node.name} exited while starting\n{self.logs()}")
            return all(node.is_ready() for node in chosen)

        wait_until(ready, timeout, "the cluster to be ready", self.logs)

    def terminate_all(self) -> list[int]:
        """SIGTERM every running node, then their exit statuses."""
        running = [node for node in self.nodes if node.running]
        for node in running:
            assert node.process is not None
            node.process.send_signal(signal.SIGTERM)
        return [node.wait_exit() for node in running]

    def kill_all(self) -> None:
        for node in self.nodes:
            if node.process is not None:
                node.kill()


def free_ranges(count: int, ranges: int = 2) -> list[int]:
    """`ranges` bases of `count` consecutive ports each that were free a moment ago (for tools
    that give nodes consecutive ports)."""
    bases: list[int] = []
    start = _LISTEN_LOW + (os.getpid() % ((_LISTEN_HIGH - _LISTEN_LOW) // 20 - 1)) * 20
    while len(bases) < ranges:
        if all(_port_free(port) for port in range(start, start + count)):
            bases.append(start)
        start += count
    return bases


def _port_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind((HOST, port))
        except OSError:
            return False
    return True
