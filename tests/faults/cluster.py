"""Real `secretstore-node` processes, one per network namespace, with their own addresses.

`NetCluster` starts N nodes on a `NetLab` (tests/faults/netlab.py): node i listens on host
i's address (mesh port 12000, HTTP port 8082, the same in every namespace), keeps its LevelDB
under the test's directory and logs to its own file. The test process talks HTTP to every node
over the bridge, and the faults are real: SIGKILL, SIGSTOP/SIGCONT, restarts, partitions.
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from secretstore.cli.cluster import TomlValue
from secretstore.config.model import NodeAddress
from secretstore.crypto.keys import KeyPair
from secretstore.crypto.rng import SeededRng
from secretstore.http.errors import CAUSE_HEADER
from tests.e2e.cluster import NODE_COMMAND, NodeProcess, http, wait_until
from tests.faults.netlab import Host, NetLab

MESH_PORT = 12000
HTTP_PORT = 8082
#: Options of every fault-test node: the defaults for liveness, a long backstop timeout.
FAULT_OPTIONS: Mapping[str, TomlValue] = {"keep_alive_interval": 2.0, "session_timeout": 30.0}


@dataclass
class NetNode(NodeProcess):
    """A node process inside its own namespace."""

    host: Host | None = None
    stopped: bool = False

    @property
    def ip(self) -> str:
        assert self.host is not None
        return self.host.address

    @property
    def address(self) -> NodeAddress:
        return NodeAddress(self.node_id, self.ip, self.mesh_port)

    @property
    def url(self) -> str:
        return f"http://{self.ip}:{self.http_port}"

    def start(self, *args: str) -> None:
        assert not self.running, f"{self.name} is already running"
        assert self.host is not None
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                self.host.command([*NODE_COMMAND, "--config", str(self.config_path), *args]),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                cwd=self.directory,
            )
        self.stopped = False

    def pause(self) -> None:
        """SIGSTOP: its sockets stay open, it answers nothing."""
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)
        self.stopped = True

    def resume(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGCONT)
        self.stopped = False

    def kill(self) -> int:
        if self.stopped:
            self.resume()
        return super().kill()


class NetCluster:
    """N nodes that list each other, each in its own namespace of `lab`."""

    def __init__(
        self,
        lab: NetLab,
        root: Path,
        count: int | None = None,
        *,
        seed: str = "faults",
        extra: Mapping[str, TomlValue] | None = None,
    ) -> None:
        """Nodes on the first `count` hosts of `lab` (default: all); the others stay free
        for strangers."""
        hosts = lab.hosts[: count or len(lab.hosts)]
        keys = sorted(
            (KeyPair.generate(SeededRng(f"{seed}-{i}".encode())) for i in range(len(hosts))),
            key=lambda k: k.node_id,
        )
        self.lab = lab
        self.nodes = [
            NetNode(
                f"node{i + 1}",
                root / f"node{i + 1}",
                key,
                MESH_PORT,
                HTTP_PORT,
                host=host,
            )
            for i, (key, host) in enumerate(zip(keys, hosts, strict=True))
        ]
        options = {**FAULT_OPTIONS, **(extra or {})}
        for node in self.nodes:
            node.write_config(
                self.addresses, {**options, "interface": node.ip, "http_interface": node.ip}
            )

    @property
    def addresses(self) -> list[NodeAddress]:
        return [node.address for node in self.nodes]

    def __iter__(self) -> Iterator[NetNode]:
        return iter(self.nodes)

    def __getitem__(self, index: int) -> NetNode:
        return self.nodes[index]

    def index_of(self, node: NetNode) -> int:
        return self.nodes.index(node)

    def start(self) -> None:
        for node in self.nodes:
            node.start()

    def logs(self) -> str:
        return "\n".join(node.log_tail() for node in self.nodes)

    def wait_ready(self, timeout: float = 30.0, nodes: Sequence[NetNode] = ()) -> float:
        """Until the nodes (default all) report a complete mesh; the seconds it took."""
        chosen = list(nodes) or self.nodes
        began = time.monotonic()

        def ready() -> bool:
            for node in chosen:
                if not node.running:
                    raise AssertionError(f"{node.name} exited\n{self.logs()}")
            return all(node.is_ready() for node in chosen)

        wait_until(ready, timeout, "the cluster to be ready", self.logs)
        return time.monotonic() - began

    def kill_all(self) -> None:
        for node in self.nodes:
            if node.process is not None:
                node.kill()


# --- HTTP, with the status, Parity's text, the cause header and the time taken ---------------


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    body: Any
    cause: str | None
    seconds: float
    text: str = field(default="")

    @property
    def ok(self) -> bool:
        return self.status == 200


async def call(
    session: aiohttp.ClientSession, method: str, url: str, timeout: float = 60.0
) -> Answer:
    """One request; status 0 (and the exception's text) when nothing answered."""
    began = time.monotonic()
    try:
        async with session.request(
            method, url, timeout=aiohttp.ClientTimeout(total=timeout)
        ) as response:
            raw = await response.read()
            status, cause = response.status, response.headers.get(CAUSE_HEADER)
    except (aiohttp.ClientError, TimeoutError, OSError) as exc:
        return Answer(0, None, None, time.monotonic() - began, repr(exc))
    body: Any = raw.decode(errors="replace")
    return Answer(status, body, cause, time.monotonic() - began, body)


def sync_call(method: str, url: str, timeout: float = 60.0) -> Answer:
    async def once() -> Answer:
        async with aiohttp.ClientSession() as session:
            return await call(session, method, url, timeout)

    return asyncio.run(once())


__all__ = ["Answer", "NetCluster", "NetNode", "call", "http", "sync_call", "wait_until"]
