"""Hypothesis against real node processes: arbitrary HTTP requests (raw bytes on the socket)
and arbitrary cluster messages over an authenticated mesh link. No node crashes, no answer is
a 5xx without its cause, and the cluster still serves afterwards."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from secretstore.crypto.rng import SeededRng
from secretstore.http.errors import CAUSE_HEADER
from secretstore.mesh.connection import MeshConnection, MeshTimings, establish
from secretstore.mesh.handshake import Role
from secretstore.types import NodeId, ServerKeyId, SessionId
from secretstore.wire import codec
from secretstore.wire.common import ErrorKind, SessionError
from secretstore.wire.generation import CommitGeneration, StartKeysDissemination
from secretstore.wire.negotiation import RequestKeyVersions
from tests.e2e.cluster import LocalCluster, http, wait_until
from tests.faults.figures import record

pytestmark = [pytest.mark.e2e, pytest.mark.faults]

STATUS = re.compile(rb"^HTTP/1\.[01] (\d{3})")


@pytest.fixture(scope="module")
def two_of_three(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    """A 3-node cluster of which two run; the third's key is the fuzzer's mesh identity. A short
    read deadline: a fuzzed request that never completes is closed after 1 s."""
    cluster = LocalCluster(
        tmp_path_factory.mktemp("fuzz"), 3, seed=99, extra={"http_read_timeout": 1.0}
    )
    cluster[0].start()
    cluster[1].start()
    for node in cluster.nodes[:2]:
        wait_until(lambda n=node: http("GET", f"{n.url}/health", timeout=2)[0] == 200, 30, "start")
    wait_until(
        lambda: "0x" + cluster[1].node_id.hex() in cluster[0].connected(), 30, "the two to link"
    )
    yield cluster
    cluster.kill_all()


# --- HTTP ---------------------------------------------------------------------------------

HEX = st.text("0123456789abcdef", min_size=0, max_size=140)
SEGMENT = st.one_of(
    HEX,
    st.text(min_size=0, max_size=30).map(lambda t: t.replace("/", "%2F")),
    st.sampled_from(["shadow", "server", "schnorr", "ecdsa", "admin", "servers_set_change", "1"]),
)
PATH = st.lists(SEGMENT, min_size=0, max_size=6).map(lambda parts: "/" + "/".join(parts))
METHOD = st.sampled_from(["GET", "POST", "PUT", "DELETE", "OPTIONS", "HEAD", "PATCH", "GE T"])
HEADER = st.tuples(
    st.sampled_from(
        ["Origin", "X-Secretstore-Bound-Signature", "Content-Type", "Content-Length", "X-A"]
    ),
    st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=80),
)


@st.composite
def raw_requests(draw: st.DrawFn) -> bytes:
    if draw(st.integers(0, 9)) == 0:
        return draw(st.binary(max_size=300))  # not HTTP at all
    body = draw(st.binary(max_size=200))
    lines = [f"{draw(METHOD)} {draw(PATH)} HTTP/1.1", "Host: fuzz", "Connection: close"]
    lines += [f"{name}: {value}" for name, value in draw(st.lists(HEADER, max_size=4))]
    lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body + b"\r\n"


async def exchange(host: str, port: int, data: bytes) -> bytes:
    """Everything the node sends back until it closes the connection (each request asks it
    to; one it cannot parse to the end is closed at the read deadline). The socket is not
    half-closed: aiohttp drops a connection at end of input without answering."""
    reader, writer = await asyncio.open_connection(host, port)
    try:
        writer.write(data)
        await writer.drain()
        async with asyncio.timeout(20):
            return await reader.read()
    finally:
        writer.close()


def test_fuzzed_http_requests_never_crash_a_node_nor_get_a_5xx_without_cause(
    two_of_three: LocalCluster,
) -> None:
    node = two_of_three[0]
    seen: dict[int, int] = {}

    @settings(
        max_examples=300,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
        derandomize=True,
    )
    @given(raw_requests())
    def one(data: bytes) -> None:
        answer = asyncio.run(exchange("127.0.0.1", node.http_port, data))
        match = STATUS.match(answer)
        if match is None:
            assert answer == b"", answer[:200]  # closed at the deadline: never a whole request
            seen[0] = seen.get(0, 0) + 1
            return
        status = int(match.group(1))
        seen[status] = seen.get(status, 0) + 1
        if status >= 500:
            assert CAUSE_HEADER.lower().encode() in answer.lower(), answer[:400]

    one()
    answered = sum(count for status, count in seen.items() if status)
    assert answered >= 150 and any(400 <= status < 500 for status in seen), seen  # not vacuous
    assert node.running and node.health() is not None
    assert "Traceback" not in node.log_text(), node.log_tail()
    record(
        "HTTP fuzz: answers by status (0: closed at the deadline)", str(dict(sorted(seen.items())))
    )


# --- mesh frames after a valid handshake ----------------------------------------------------

SID = SessionId(b"\x42" * 32)
KEY = ServerKeyId(b"\x24" * 32)
SEEDS = [
    codec.encode(RequestKeyVersions(SID, KEY)),
    codec.encode(SessionError(SID, "fuzz", ErrorKind.GENERIC)),
    codec.encode(StartKeysDissemination(SID)),
    codec.encode(CommitGeneration(SID)),
]


@st.composite
def payloads(draw: st.DrawFn) -> bytes:
    choice = draw(st.integers(0, 3))
    if choice == 0:
        return draw(st.binary(max_size=400))
    seed = bytearray(draw(st.sampled_from(SEEDS)))
    if choice == 1 and seed:  # flip some bytes
        for _ in range(draw(st.integers(1, 4))):
            index = draw(st.integers(0, len(seed) - 1))
            seed[index] ^= draw(st.integers(1, 255))
        return bytes(seed)
    if choice == 2:  # truncate or extend
        cut = draw(st.integers(0, len(seed)))
        return bytes(seed[:cut]) + draw(st.binary(max_size=40))
    return bytes(seed[:2]) + draw(st.binary(max_size=300))  # a known type, any body


async def _connect_as(cluster: LocalCluster, target: int) -> MeshConnection:
    impostor, node = cluster[2], cluster[target]
    reader, writer = await asyncio.open_connection("127.0.0.1", node.mesh_port)
    return await establish(
        reader,
        writer,
        role=Role.INITIATOR,
        node_key=impostor.key,
        allowed=frozenset({node.node_id}),
        rng=SeededRng(b"fuzz"),
        timings=MeshTimings(handshake_timeout=5.0),
        expected_peer=NodeId(node.node_id),
    )


def test_fuzzed_cluster_messages_never_crash_a_node(two_of_three: LocalCluster) -> None:
    cluster = two_of_three
    node = cluster[0]
    stats = {"sent": 0, "reconnects": 0}
    # hypothesis drives a synchronous function: draw the examples first, then send them
    examples: list[bytes] = []

    @settings(max_examples=250, deadline=None, derandomize=True, database=None)
    @given(payloads())
    def collect(payload: bytes) -> None:
        examples.append(payload)

    collect()

    async def main() -> None:
        connection = await _connect_as(cluster, 0)
        reader = asyncio.create_task(connection.run(lambda payload: None))
        for payload in examples:
            if connection.is_closed:
                reader.cancel()
                stats["reconnects"] += 1
                connection = await _connect_as(cluster, 0)
                reader = asyncio.create_task(connection.run(lambda payload: None))
            connection.send(payload)
            stats["sent"] += 1
            await asyncio.sleep(0.002)
        await asyncio.sleep(0.5)
        connection.close("fuzz done")
        reader.cancel()

    asyncio.run(main())
    health = node.health()
    assert node.running and health is not None
    assert "0x" + cluster[1].node_id.hex() in health["connected"]  # its real peer link held
    assert "Traceback" not in node.log_text(), node.log_tail()
    record("mesh fuzz: frames sent after a valid handshake", stats["sent"])
    record("mesh fuzz: reconnections", stats["reconnects"])
