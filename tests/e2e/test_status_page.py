"""The status page of a real node in headless Chromium (Debian's package, installed when
missing): on a phone-sized screen it fits the width, shows the cluster's nodes with their
state and address, the key count, session latencies and the recent errors; a screenshot is
taken (its path is printed at the end of the run)."""

from __future__ import annotations

import struct
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from secretstore.crypto.keys import KeyPair, sign_recoverable
from secretstore.crypto.rng import SeededRng
from tests.e2e.cluster import LocalCluster, http, wait_until
from tests.e2e.conftest import ClusterFactory
from tests.e2e.system import FIGURES, Browser

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

PHONE = (390, 844)  # CSS pixels of a common phone screen
REQUESTER = KeyPair.generate(SeededRng(b"status page requester"))


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    chromium = Browser()
    yield chromium
    chromium.close()


def segments(index: int) -> str:
    key_id = bytes([index]) * 32
    return f"{key_id.hex()}/{sign_recoverable(REQUESTER.secret, key_id).hex()}"


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


async def test_the_status_page_on_a_phone(
    make_cluster: ClusterFactory, browser: Browser, tmp_path: Path
) -> None:
    cluster: LocalCluster = make_cluster(3)
    cluster.start()
    cluster.wait_ready()
    first, second, gone = cluster.nodes
    assert http("POST", f"{first.url}/shadow/{segments(1)}/1")[0] == 200
    assert http("GET", f"{first.url}/server/{segments(1)}")[0] == 200
    assert http("GET", f"{first.url}/server/{segments(2)}")[0] == 404  # a failed session
    gone.kill()
    wait_until(lambda: not first.is_ready(), 10, "the node to miss its peer", cluster.logs)

    async with aiohttp.ClientSession() as session:
        page = await browser.page(session)
        try:
            await page.open(f"{first.url}/status", *PHONE, scale=2)
            dom = await page.evaluate(
                """(() => {
                  const rows = [...document.querySelectorAll('#nodes tr[data-state]')];
                  const field = name =>
                    document.querySelector(`[data-field="${name}"]`).textContent;
                  return {
                    nodes: rows.map(r => [r.dataset.nodeId, r.dataset.state,
                                          r.querySelector('.address').textContent]),
                    readiness: document.querySelector('#readiness').textContent,
                    reason: document.querySelector('#reason').textContent,
                    keys: field('keys'),
                    peers: field('peers'),
                    kinds: [...document.querySelectorAll('#latency tr[data-kind]')]
                             .map(r => r.dataset.kind),
                    errors: [...document.querySelectorAll('#errors li')]
                              .map(li => li.textContent),
                    overflow: document.documentElement.scrollWidth - window.innerWidth,
                    clipped: [...document.querySelectorAll('.scroll')]
                               .filter(box => box.scrollWidth > box.clientWidth)
                               .map(box => box.closest('section').id),
                    fontSize: getComputedStyle(document.body).fontSize,
                    viewport: document.querySelector('meta[name=viewport]').content,
                    title: document.title,
                  };
                })()"""
            )
            shot = await page.screenshot(tmp_path / "status-phone.png")
        finally:
            await page.close()

    assert dom["nodes"] == [  # sorted by node id, as the cluster's nodes are
        ["0x" + first.node_id.hex(), "self", f"127.0.0.1:{first.mesh_port}"],
        ["0x" + second.node_id.hex(), "connected", f"127.0.0.1:{second.mesh_port}"],
        ["0x" + gone.node_id.hex(), "missing", f"127.0.0.1:{gone.mesh_port}"],
    ]
    assert dom["readiness"] == "not ready"
    assert f"{gone.short_id} (127.0.0.1:{gone.mesh_port})" in dom["reason"]
    assert (dom["keys"], dom["peers"]) == ("1", "1 of 2")
    assert {"server_key_generation", "server_key_retrieval"} <= set(dom["kinds"])
    assert any("ServerKeyNotFound" in text for text in dom["errors"])
    assert dom["overflow"] <= 0, "the page is wider than the phone's screen"
    assert dom["clipped"] == [], "a table is wider than the screen"
    assert dom["fontSize"] == "16px"
    assert dom["viewport"] == "width=device-width, initial-scale=1"
    assert dom["title"] == f"secretstore {first.short_id}: not ready"
    width, height = png_size(shot)
    assert width == PHONE[0] * 2 and height >= PHONE[1]  # at the phone's width, whole page
    assert len(set(shot[100:5000])) > 50  # a drawn page, not a blank one
    FIGURES.append(("status page screenshot", str(tmp_path / "status-phone.png")))
