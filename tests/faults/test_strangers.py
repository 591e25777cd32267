"""Strangers on their own host: a flood of idle mesh connections does not keep a restarted
peer out, and slow HTTP clients (a byte at a time) are cut off while others are served."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap
import time
from typing import Any

import aiohttp
import pytest

from tests.faults.cluster import MESH_PORT, NetCluster
from tests.faults.figures import record
from tests.faults.ops import fresh_key, generate, until_generation_succeeds

pytestmark = [pytest.mark.e2e, pytest.mark.faults]

#: A stranger that holds `count` idle connections to host:port for `seconds`, opening a new
#: one whenever the node closes one; it prints how many it opened in all.
FLOOD = textwrap.dedent(
    """
    import socket, sys, time, selectors
    host, port = sys.argv[1], int(sys.argv[2])
    count, seconds = int(sys.argv[3]), float(sys.argv[4])
    sel = selectors.DefaultSelector()
    opened = 0
    def connect():
        global opened
        s = socket.socket()
        s.setblocking(False)
        try:
            s.connect_ex((host, port))
        except OSError:
            return
        opened += 1
        sel.register(s, selectors.EVENT_READ)
    end = time.monotonic() + seconds
    for _ in range(count):
        connect()
    while time.monotonic() < end:
        for key, _ in sel.select(timeout=0.05):
            try:
                data = key.fileobj.recv(4096)
            except OSError:
                data = b""
            if not data:
                sel.unregister(key.fileobj)
                key.fileobj.close()
                connect()
    print(opened, flush=True)
    """
)


def test_a_restarted_peer_rejoins_while_a_stranger_floods_the_mesh_port(
    net_cluster: Any,
) -> None:
    cluster: NetCluster = net_cluster(3, hosts=4)
    stranger = cluster.lab.hosts[3]
    cluster.start()
    cluster.wait_ready()
    target, victim = cluster[0], cluster[1]
    flood = subprocess.Popen(
        stranger.command([sys.executable, "-c", FLOOD, target.ip, str(MESH_PORT), "100", "20"]),
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        time.sleep(1.0)  # the flood is in place
        victim.kill()
        victim.start()
        rejoined = cluster.wait_ready(timeout=30.0)
        record("stranger flood (100 idle connections): restarted peer rejoins after", rejoined, "s")

        async def generation() -> float:
            async with aiohttp.ClientSession() as session:
                return await until_generation_succeeds(session, target)

        asyncio.run(generation())
        assert flood.poll() is None, "the flood ended before the peer rejoined"
    finally:
        flood.kill()
        out, _ = flood.communicate(timeout=10)
    target.wait_for_log(
        r"refusing inbound connections from " + stranger.address.replace(".", r"\.")
    )
    assert "Traceback" not in target.log_text()
    del out


SLOW_CLIENTS = textwrap.dedent(
    """
    import socket, sys, time
    host, port, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    gap, seconds = float(sys.argv[4]), float(sys.argv[5])
    head = b"GET /health HTTP/1.1\\r\\nHost: x\\r\\nX-Slow: " + b"a" * 400 + b"\\r\\n\\r\\n"
    socks = [socket.create_connection((host, port)) for _ in range(count)]
    sent = [0] * count
    closed = [None] * count
    start = time.monotonic()
    while time.monotonic() - start < seconds and None in closed:
        for i, s in enumerate(socks):
            if closed[i] is not None:
                continue
            try:
                s.send(head[sent[i]:sent[i] + 1])
                sent[i] += 1
            except OSError:
                closed[i] = time.monotonic() - start
        time.sleep(gap)
    done = [c for c in closed if c is not None]
    print(len(done), max(done) if done else -1, flush=True)
    """
)


def test_slow_http_clients_are_cut_off_and_others_are_served(net_cluster: Any) -> None:
    cluster: NetCluster = net_cluster(3, hosts=4, extra={"http_read_timeout": 2.0})
    stranger = cluster.lab.hosts[3]
    cluster.start()
    cluster.wait_ready()
    target = cluster[0]
    slow = subprocess.Popen(
        stranger.command(
            [sys.executable, "-c", SLOW_CLIENTS, target.ip, "8082", "50", "0.2", "20"]
        ),
        stdout=subprocess.PIPE,
        text=True,
    )

    async def served_meanwhile() -> list[float]:
        async with aiohttp.ClientSession() as session:
            times = []
            for _ in range(5):
                answer = await generate(session, target, fresh_key("slowloris"))
                assert answer.ok, answer
                times.append(answer.seconds)
                await asyncio.sleep(0.2)
            return times

    try:
        times = asyncio.run(served_meanwhile())
        out, _ = slow.communicate(timeout=30)
    finally:
        slow.kill()
    closed, last = out.split()
    assert int(closed) == 50, out  # every slow client was cut off…
    assert float(last) < 2.0 * 3, out  # …at the read deadline, not at the 20 s they wanted
    record("slow HTTP clients: cut off after (deadline 2 s)", float(last), "s")
    record("slow HTTP clients: generation meanwhile, slowest", max(times), "s")
