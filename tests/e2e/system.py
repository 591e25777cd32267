"""The system tools some end-to-end tests need, installed and started by the tests themselves:
Debian packages (apt-get, only when a command is missing), a private dockerd, and headless
Chromium driven over its DevTools protocol. Each fails with its cause, never skips.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import fcntl
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

ROOT = Path(__file__).resolve().parents[2]
_APT_LOCK = Path(tempfile.gettempdir()) / "secretstore-tests-apt.lock"
_APT_STATE = {"updated": False}
#: Figures measured by these tests (name, value), printed at the end of the test run.
FIGURES: list[tuple[str, str]] = []


class SystemToolError(AssertionError):
    """A tool a test needs could not be installed or started (the test fails with this)."""


def _which(command: str) -> str | None:
    for directory in ("/usr/sbin", "/usr/bin", "/sbin", "/bin"):
        candidate = Path(directory) / command
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    return shutil.which(command)


def ensure_commands(packages: Mapping[str, str]) -> dict[str, str]:
    """{command: Debian package}: install the packages of the missing commands with apt-get
    (once per machine; idempotent) and return {command: path}. Needs root to install."""
    missing = sorted({pkg for cmd, pkg in packages.items() if _which(cmd) is None})
    if missing:
        if os.geteuid() != 0:
            raise SystemToolError(
                f"these tests need the Debian packages {', '.join(missing)}; install them "
                f"(apt-get install {' '.join(missing)}) or run the tests as root"
            )
        _apt_install(missing)
    found = {cmd: _which(cmd) for cmd in packages}
    absent = [cmd for cmd, path in found.items() if path is None]
    if absent:
        raise SystemToolError(f"{', '.join(absent)} still missing after apt-get install")
    return {cmd: str(path) for cmd, path in found.items()}


def _apt_install(packages: list[str]) -> None:
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    with open(_APT_LOCK, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one installer at a time on this machine
        steps = [] if _APT_STATE["updated"] else [["apt-get", "update", "-qq"]]
        steps.append(["apt-get", "install", "-y", "-qq", *packages])
        for step in steps:
            result = subprocess.run(
                step, capture_output=True, text=True, env=env, timeout=900, check=False
            )
            if result.returncode != 0:
                raise SystemToolError(
                    f"{' '.join(step)} failed ({result.returncode}):\n{result.stderr[-3000:]}"
                )
        _APT_STATE["updated"] = True


# --- a private docker daemon ------------------------------------------------------------------


@dataclass
class Docker:
    """A dockerd of our own (its own data root and socket), and how to talk to it."""

    root: Path
    cli: str
    compose: str
    process: subprocess.Popen[bytes] | None = None

    @property
    def socket(self) -> Path:
        return self.root / "docker.sock"

    @property
    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "DOCKER_HOST": f"unix://{self.socket}",
            "DOCKER": self.cli,
            "DOCKER_BUILDKIT": "0",
            "COMPOSE_DOCKER_CLI_BUILD": "0",
        }

    def run(
        self,
        *args: str,
        timeout: float = 300,
        check: bool = True,
        env: Mapping[str, str] | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """`docker ARGS` against this daemon."""
        return self._command(self.cli, args, timeout, check, env)

    def compose_run(
        self, *args: str, env: Mapping[str, str], timeout: float = 300, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        """`docker-compose ARGS` against this daemon, from the repository's root."""
        return self._command(self.compose, args, timeout, check, env)

    def _command(
        self,
        program: str,
        args: tuple[str, ...],
        timeout: float,
        check: bool,
        env: Mapping[str, str] | None,
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [program, *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            env={**self.env, **(env or {})},
            cwd=ROOT,
            check=False,
        )
        if check and result.returncode != 0:
            raise SystemToolError(
                f"{Path(program).name} {' '.join(args)} failed ({result.returncode}):\n"
                f"{result.stdout[-2000:]}\n{result.stderr[-3000:]}"
            )
        return result

    def log_tail(self) -> str:
        path = self.root / "dockerd.log"
        lines = path.read_text(errors="replace").splitlines() if path.exists() else []
        return "\n".join(lines[-30:])


@contextlib.contextmanager
def running_dockerd() -> Iterator[Docker]:
    """Install docker.io, docker-compose and mmdebstrap when missing, start a dockerd with a
    private data root (no default bridge, no iptables: this machine allows neither), and at
    the end stop it and delete everything it made."""
    tools = ensure_commands(
        {"dockerd": "docker.io", "docker-compose": "docker-compose", "mmdebstrap": "mmdebstrap"}
    )
    # The docker CLI of the docker.io package matches its daemon; any other one also works.
    cli = "/usr/bin/docker" if Path("/usr/bin/docker").exists() else (_which("docker") or "")
    if not cli:
        raise SystemToolError("no docker command after installing docker.io")
    root = Path(tempfile.mkdtemp(prefix="ssdock-", dir="/tmp"))  # short: a socket path
    # Images and containers on a tmpfs: faster than the disk, and gone with one umount (a
    # data root of ~60,000 small files takes half a minute to delete from a disk).
    (root / "data").mkdir()
    in_memory = (
        subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=8g,mode=0700", "tmpfs", str(root / "data")],
            capture_output=True,
            check=False,
        ).returncode
        == 0
    )
    FIGURES.append(("docker data root", "tmpfs" if in_memory else "disk"))
    docker = Docker(root, cli, tools["docker-compose"])
    started = time.monotonic()
    log = open(root / "dockerd.log", "wb")  # noqa: SIM115 - closed at the end
    docker.process = subprocess.Popen(
        [
            tools["dockerd"],
            "--bridge=none",
            "--iptables=false",
            "--ip-masq=false",
            f"--data-root={root / 'data'}",
            f"--exec-root={root / 'exec'}",
            f"--pidfile={root / 'dockerd.pid'}",
            f"--host=unix://{docker.socket}",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 60
        while docker.run("version", check=False, timeout=30).returncode != 0:
            if docker.process.poll() is not None or time.monotonic() > deadline:
                raise SystemToolError(f"dockerd did not start:\n{docker.log_tail()}")
            time.sleep(0.2)
        FIGURES.append(("dockerd started", f"{time.monotonic() - started:.1f} s"))
        yield docker
    finally:
        _stop(docker)
        log.close()


def _stop(docker: Docker) -> None:
    started = time.monotonic()
    process = docker.process
    if process is not None and process.poll() is None:
        with contextlib.suppress(Exception):
            ids = docker.run("ps", "-aq", check=False, timeout=30).stdout.split()
            if ids:
                docker.run("rm", "-f", *ids, check=False, timeout=120)
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=30)
    stopped = time.monotonic()
    # A clean shutdown leaves no mount behind; unmount anything a crash left, then delete.
    with contextlib.suppress(OSError):
        mounts = Path("/proc/mounts").read_text().splitlines()
        for target in sorted((m.split()[1] for m in mounts), reverse=True):
            if target.startswith(str(docker.root)):
                subprocess.run(["umount", "-l", target], check=False, capture_output=True)
    subprocess.run(["rm", "-rf", "--one-file-system", str(docker.root)], check=False)
    FIGURES.append(
        (
            "dockerd stopped / its data deleted",
            f"{stopped - started:.1f} s / {time.monotonic() - stopped:.1f} s",
        )
    )


# --- headless Chromium over the DevTools protocol --------------------------------------------

CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--remote-debugging-address=127.0.0.1",
    "--remote-debugging-port=0",
)


class Browser:
    """One headless Chromium with a fresh profile; `page()` opens a DevTools page session."""

    def __init__(self) -> None:
        binary = ensure_commands({"chromium": "chromium"})["chromium"]
        self.profile = Path(tempfile.mkdtemp(prefix="secretstore-chromium-"))
        self.process = subprocess.Popen(
            [binary, *CHROMIUM_FLAGS, f"--user-data-dir={self.profile}", "about:blank"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        port_file = self.profile / "DevToolsActivePort"
        deadline = time.monotonic() + 30
        while not port_file.exists() or len(port_file.read_text().splitlines()) < 2:
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.close()
                raise SystemToolError("headless Chromium did not start")
            time.sleep(0.1)
        self.port = int(port_file.read_text().splitlines()[0])

    async def page(self, session: aiohttp.ClientSession) -> Page:
        async with session.put(f"http://127.0.0.1:{self.port}/json/new?about:blank") as answer:
            target = await answer.json()
        socket = await session.ws_connect(target["webSocketDebuggerUrl"], max_msg_size=0)
        return Page(socket)

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=15)
        shutil.rmtree(self.profile, ignore_errors=True)


class Page:
    """A tab: navigate, evaluate JavaScript, set the viewport, take a screenshot."""

    def __init__(self, socket: aiohttp.ClientWebSocketResponse) -> None:
        self.socket = socket
        self._next = 0

    async def call(self, method: str, **params: Any) -> dict[str, Any]:
        self._next += 1
        ident = self._next
        await self.socket.send_str(json.dumps({"id": ident, "method": method, "params": params}))
        while True:
            message = json.loads((await self.socket.receive(timeout=30)).data)
            if message.get("id") == ident:
                if "error" in message:
                    raise SystemToolError(f"{method}: {message['error']}")
                result: dict[str, Any] = message.get("result", {})
                return result

    async def open(self, url: str, width: int, height: int, scale: float = 1.0) -> None:
        await self.call(
            "Emulation.setDeviceMetricsOverride",
            width=width,
            height=height,
            deviceScaleFactor=scale,
            mobile=width < 600,
        )
        await self.call("Page.enable")
        await self.call("Page.navigate", url=url)
        for _ in range(300):  # until the document has loaded
            if await self.evaluate("document.readyState") == "complete":
                return
            await self._sleep()
        raise SystemToolError(f"{url} did not load")

    async def evaluate(self, expression: str) -> Any:
        answer = await self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        if "exceptionDetails" in answer:
            raise SystemToolError(f"{expression}: {answer['exceptionDetails']}")
        return answer["result"].get("value")

    async def screenshot(self, path: Path, full_page: bool = True) -> bytes:
        answer = await self.call(
            "Page.captureScreenshot", format="png", captureBeyondViewport=full_page
        )
        data = base64.b64decode(answer["data"])
        path.write_bytes(data)
        return data

    async def close(self) -> None:
        await self.socket.close()

    @staticmethod
    async def _sleep() -> None:
        await asyncio.sleep(0.05)
