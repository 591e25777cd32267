"""Network namespaces for fault tests: one namespace per host, veth pairs on one bridge.

Each host gets its own address in 198.18.X.0/24 (the benchmarking range, RFC 2544: never
routed anywhere), the bridge in the root namespace holds 198.18.X.1, so the test process
reaches every host and the hosts reach each other only over the bridge. A partition is real:
iptables DROP rules inside the hosts' own namespaces (the host's tables are never touched).
Delays, where a test wants them, are injected in user space (the kernel here has no netem).

Several test runs may share the machine: a lock file serialises the choice of a free /24 and
every name carries the run's id. `NetLab.close()` removes everything it made.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import subprocess
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

LOCK_PATH = Path("/tmp/secretstore-netlab.lock")
PREFIX = "198.18"


class NetLabUnavailable(Exception):
    """Network namespaces cannot be made here (not root, no `ip`, no permission)."""


def _run(*argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, check=check, capture_output=True, text=True, timeout=30)


def unavailable_reason() -> str | None:
    """Why namespaces cannot be created here, or None when they can."""
    if os.geteuid() != 0:
        return "network namespaces need root"
    if shutil.which("ip") is None:
        return "the `ip` command (iproute2) is missing"
    name = f"sscheck{os.getpid()}"
    try:
        _run("ip", "netns", "add", name)
    except (subprocess.CalledProcessError, OSError) as exc:
        detail = exc.stderr.strip() if isinstance(exc, subprocess.CalledProcessError) else exc
        return f"cannot create a network namespace: {detail}"
    _run("ip", "netns", "del", name, check=False)
    return None


def iptables_missing() -> bool:
    return shutil.which("iptables") is None


@dataclass(frozen=True, slots=True)
class Host:
    """One namespace: its name and address."""

    index: int
    namespace: str
    address: str

    def command(self, argv: Sequence[str]) -> list[str]:
        """`argv` run inside this host's namespace."""
        return ["ip", "netns", "exec", self.namespace, *argv]


class NetLab:
    """`count` hosts on one bridge; partitions between them; everything removed on close."""

    def __init__(self, count: int) -> None:
        reason = unavailable_reason()
        if reason is not None:
            raise NetLabUnavailable(reason)
        self._tag = f"{os.getpid() % 100000:05d}"
        self.bridge = f"ssbr{self._tag}"
        self.hosts: list[Host] = []
        self._links: list[str] = []
        self._namespaces: list[str] = []
        self._bridge_made = False
        self._partitions: set[frozenset[int]] = set()
        try:
            with _locked():
                self.subnet = _free_subnet()
                _run("ip", "link", "add", self.bridge, "type", "bridge")
                self._bridge_made = True
                _run("ip", "addr", "add", f"{self.gateway}/24", "dev", self.bridge)
            _run("ip", "link", "set", self.bridge, "up")
            for index in range(count):
                self.hosts.append(self._add_host(index))
        except BaseException:
            self.close()
            raise

    @property
    def gateway(self) -> str:
        """The bridge's address (the test process's own on this network)."""
        return f"{PREFIX}.{self.subnet}.1"

    def _add_host(self, index: int) -> Host:
        namespace = f"ss{self._tag}h{index}"
        outside, inside = f"ss{self._tag}v{index}", f"ss{self._tag}p{index}"
        address = f"{PREFIX}.{self.subnet}.{index + 2}"
        _run("ip", "netns", "add", namespace)
        self._namespaces.append(namespace)
        _run("ip", "link", "add", outside, "type", "veth", "peer", "name", inside)
        self._links.append(outside)
        _run("ip", "link", "set", inside, "netns", namespace)
        _run("ip", "link", "set", outside, "master", self.bridge)
        _run("ip", "link", "set", outside, "up")
        inns = ["ip", "netns", "exec", namespace]
        _run(*inns, "ip", "addr", "add", f"{address}/24", "dev", inside)
        _run(*inns, "ip", "link", "set", inside, "up")
        _run(*inns, "ip", "link", "set", "lo", "up")
        return Host(index, namespace, address)

    # --- faults ------------------------------------------------------------------------
    def partition(self, a: int, b: int) -> None:
        """Drop every packet between hosts a and b (both directions, in both namespaces)."""
        if iptables_missing():
            raise NetLabUnavailable("iptables is missing (apt-get install iptables)")
        pair = frozenset((a, b))
        if pair in self._partitions:
            return
        self._partitions.add(pair)
        for here, there in ((a, b), (b, a)):
            host, other = self.hosts[here], self.hosts[there]
            for chain, flag in (("INPUT", "-s"), ("OUTPUT", "-d")):
                argv = ["iptables", "-w", "-A", chain, flag, other.address, "-j", "DROP"]
                _run(*host.command(argv))

    def isolate(self, index: int) -> None:
        """Partition host `index` from every other host (the test process still reaches it)."""
        for other in range(len(self.hosts)):
            if other != index:
                self.partition(index, other)

    def heal(self) -> None:
        """Remove every partition."""
        for host in self.hosts:
            if not iptables_missing():
                _run(*host.command(["iptables", "-w", "-F"]), check=False)
        self._partitions.clear()

    def close(self) -> None:
        for namespace in self._namespaces:
            _run("ip", "netns", "del", namespace, check=False)
        for link in self._links:
            _run("ip", "link", "del", link, check=False)
        if self._bridge_made:
            _run("ip", "link", "del", self.bridge, check=False)
        self._namespaces.clear()
        self._links.clear()
        self._bridge_made = False


@contextlib.contextmanager
def _locked() -> Iterator[None]:
    with LOCK_PATH.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _free_subnet() -> int:
    """A third octet X such that no interface holds an address in 198.18.X.0/24."""
    used = _run("ip", "-o", "-4", "addr", "show").stdout
    for octet in range(1, 255):
        if f" {PREFIX}.{octet}." not in used:
            return octet
    raise NetLabUnavailable("no free /24 in 198.18.0.0/16")
