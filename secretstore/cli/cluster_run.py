"""Run the node processes of a local cluster: start, wait until ready, stop them on a signal.

Each node is `python -m secretstore.cli.node --config nodeI/node.toml`, its output appended to
nodeI/node.log. Readiness is every node's GET /health answering `"ready": true`. SIGINT or
SIGTERM sends SIGTERM to every node and waits for its graceful exit (SIGKILL after a grace
period). A node that exits before the cluster is ready stops the whole cluster. The runner's
pid is in DIR/cluster.pid; SIGHUP makes it read DIR's members again (`secretstore cluster
add/remove` sends it): new members start, removed ones stop, the others get SIGHUP and read
their changed `nodes`.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Final

import aiohttp

from secretstore.cli.cluster import ClusterNode, load_members
from secretstore.errors import ConfigError
from secretstore.filemodes import open_private

PID_NAME: Final = "cluster.pid"

#: Seconds a node has to exit after SIGTERM before it is killed.
STOP_GRACE: Final = 15.0
POLL_INTERVAL: Final = 0.2
_LOG_TAIL_LINES: Final = 15


def node_command(node: ClusterNode, log_level: str | None = None) -> list[str]:
    """The command line that runs one node."""
    command = [sys.executable, "-m", "secretstore.cli.node", "--config", str(node.config_path)]
    if log_level:
        command += ["--log-level", log_level]
    return command


def _log_tail(node: ClusterNode) -> str:
    try:
        lines = node.log_path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return ""
    return "\n".join("    " + line for line in lines[-_LOG_TAIL_LINES:])


async def _is_ready(session: aiohttp.ClientSession, node: ClusterNode) -> bool:
    try:
        async with session.get(f"{node.http_url}/health") as response:
            if response.status != 200:
                return False
            body = await response.json()
    except (aiohttp.ClientError, TimeoutError, ValueError):
        return False
    return isinstance(body, dict) and body.get("ready") is True


class _Cluster:
    def __init__(self, nodes: Sequence[ClusterNode], log_level: str | None) -> None:
        self.nodes = list(nodes)
        self.log_level = log_level
        self.processes: dict[int, asyncio.subprocess.Process] = {}
        self.reported: set[int] = set()

    async def start(self) -> None:
        for node in self.nodes:
            await self._start_one(node)

    async def _start_one(self, node: ClusterNode) -> None:
        descriptor = open_private(node.log_path, os.O_WRONLY | os.O_APPEND)
        with os.fdopen(descriptor, "ab") as log_file:
            self.processes[node.index] = await asyncio.create_subprocess_exec(
                *node_command(node, self.log_level),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log_file,
                stderr=log_file,
            )

    async def reload(self, directory: Path) -> None:
        """Follow DIR's members: start new ones, stop removed ones, SIGHUP the others."""
        try:
            members = load_members(directory)
        except (ConfigError, OSError) as exc:
            print(f"cannot read the cluster's members: {exc}")
            return
        wanted = {node.index: node for node in members}
        for node in list(self.nodes):
            if node.index not in wanted:
                print(f"{node.name} left the cluster; stopping it")
                await self._stop_one(node)
                self.nodes.remove(node)
        for index, node in wanted.items():
            process = self.processes.get(index)
            if process is not None and process.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    process.send_signal(signal.SIGHUP)
            elif all(n.index != index for n in self.nodes):
                print(f"{node.name} joined the cluster; starting it")
                self.nodes.append(node)
                await self._start_one(node)
        self.nodes.sort(key=lambda n: n.index)
        sys.stdout.flush()

    async def _stop_one(self, node: ClusterNode) -> None:
        process = self.processes.pop(node.index, None)
        if process is None or process.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(process.wait(), STOP_GRACE)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()

    def exited(self) -> list[ClusterNode]:
        """Nodes whose process has ended and was not reported yet (reports them)."""
        gone = []
        for node in self.nodes:
            process = self.processes.get(node.index)
            code = process.returncode if process is not None else None
            if code is not None and node.index not in self.reported:
                self.reported.add(node.index)
                print(f"{node.name} exited with status {code}; its log ends with:")
                print(_log_tail(node))
                gone.append(node)
        return gone

    def running(self) -> int:
        return sum(p.returncode is None for p in self.processes.values())

    async def wait_ready(self, stop: asyncio.Event, timeout: float) -> bool | None:
        """True when all are ready, False on timeout, None when a node exited or on a stop."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        client_timeout = aiohttp.ClientTimeout(total=2.0)
        async with aiohttp.ClientSession(timeout=client_timeout) as session:
            while not stop.is_set():
                if self.exited():
                    return None
                answers = await asyncio.gather(*(_is_ready(session, n) for n in self.nodes))
                if all(answers):
                    return True
                if loop.time() > deadline:
                    return False
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), POLL_INTERVAL)
        return None

    async def watch(self, stop: asyncio.Event) -> None:
        """Until a stop is asked for or every node has exited, report nodes that exit."""
        while not stop.is_set() and self.running():
            self.exited()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 0.5)
        self.exited()

    async def stop(self) -> bool:
        """SIGTERM every running node, wait, SIGKILL stragglers; True if all exited with 0."""
        for running in self.processes.values():
            if running.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    running.send_signal(signal.SIGTERM)
        clean = True
        for node in self.nodes:
            process = self.processes.get(node.index)
            if process is None:  # never started
                continue
            try:
                code = await asyncio.wait_for(process.wait(), STOP_GRACE)
            except TimeoutError:
                print(f"{node.name} did not stop within {STOP_GRACE:.0f} s; killing it")
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
                code = await process.wait()
            clean = clean and code == 0
        return clean


async def _run(
    nodes: Sequence[ClusterNode],
    log_level: str | None,
    ready_timeout: float,
    directory: Path | None,
) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    cluster = _Cluster(nodes, log_level)
    reloads: set[asyncio.Task[None]] = set()
    pid_file = directory / PID_NAME if directory is not None else None
    if directory is not None:

        def on_hangup() -> None:
            task = loop.create_task(cluster.reload(directory))
            reloads.add(task)
            task.add_done_callback(reloads.discard)

        loop.add_signal_handler(signal.SIGHUP, on_hangup)
    if pid_file is not None:
        pid_file.write_text(f"{os.getpid()}\n", encoding="utf-8")
    status = 0
    try:
        await cluster.start()
        if len(nodes) == 1:
            print("started 1 node process; waiting until it answers")
        else:
            print(f"started {len(nodes)} node processes; waiting until every node sees all others")
        sys.stdout.flush()
        ready = await cluster.wait_ready(stop, ready_timeout)
        if ready is None and not stop.is_set():
            print("a node exited while the cluster was starting; stopping the others")
            status = 1
        else:
            if ready:
                print("cluster ready: every node is connected to all others (Ctrl-C stops it)")
            elif ready is False:
                print(f"not every node is connected after {ready_timeout:.0f} s; see the logs")
            sys.stdout.flush()
            await cluster.watch(stop)
            if not cluster.running():
                status = 1
    finally:
        print("stopping the nodes")
        sys.stdout.flush()
        for task in list(reloads):
            with contextlib.suppress(BaseException):
                await task
        clean = await cluster.stop()
        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            loop.remove_signal_handler(signum)
        if pid_file is not None:
            pid_file.unlink(missing_ok=True)
    if not clean:
        status = status or 1
    print("all nodes stopped" + ("" if clean else " (some not cleanly)"))
    return status


def run_cluster(
    nodes: Sequence[ClusterNode],
    *,
    log_level: str | None = None,
    ready_timeout: float = 60.0,
    directory: Path | None = None,
) -> int:
    """Run the nodes until SIGINT/SIGTERM (following DIR's members on SIGHUP when
    `directory` is given); the exit status of `secretstore cluster`."""
    return asyncio.run(_run(nodes, log_level, ready_timeout, directory))
