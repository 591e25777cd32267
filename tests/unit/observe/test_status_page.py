"""The status page's HTML: what it shows, that it escapes everything, that it hides secrets."""

from __future__ import annotations

from html.parser import HTMLParser

from secretstore.crypto.keys import KeyPair
from secretstore.crypto.rng import SeededRng
from secretstore.observe.health import Health, PeerState
from secretstore.observe.metrics import NodeMetrics
from secretstore.observe.observer import NodeObserver
from secretstore.observe.recent import EndedSession, RecentSessions
from secretstore.observe.routes import status_view
from secretstore.observe.status_page import StatusView, duration, render_status
from secretstore.types import NodeId

IDS = sorted(KeyPair.generate(SeededRng(i)).node_id for i in range(3))


def health(connected: set[NodeId], address: str = "127.0.0.1:12001") -> Health:
    nodes = (
        PeerState(IDS[0], "127.0.0.1:12000", False, True),
        PeerState(IDS[1], address, IDS[1] in connected),
        PeerState(IDS[2], "127.0.0.1:12002", IDS[2] in connected),
    )
    return Health(IDS[0], "0.1.0", 3725.0, 12, nodes)


class Collect(HTMLParser):
    """The elements of a page, with their attributes; and every piece of text."""

    def __init__(self) -> None:
        super().__init__()
        self.elements: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def parse(page: str) -> Collect:
    collect = Collect()
    collect.feed(page)
    return collect


def view(h: Health, errors: tuple[EndedSession, ...] = ()) -> StatusView:
    return StatusView(h, running=2, latencies=(), errors=errors, sessions=errors, now=0.0)


def test_a_ready_node_shows_its_peers_keys_and_figures() -> None:
    page = render_status(view(health({IDS[1], IDS[2]})))
    doc = parse(page)
    states = [a["data-state"] for tag, a in doc.elements if tag == "tr" and "data-state" in a]
    assert states == ["self", "connected", "connected"]
    fields = {a["data-field"] for tag, a in doc.elements if "data-field" in a}
    assert fields == {"version", "uptime", "keys", "peers", "running"}
    text = " ".join(doc.text)
    assert "ready" in text and "not ready" not in text
    assert "12" in text and "2 of 2" in text and "1 h 2 min" in text
    assert ("meta", {"name": "viewport", "content": "width=device-width, initial-scale=1"}) in [
        (t, a) for t, a in doc.elements if t == "meta" and a.get("name") == "viewport"
    ]
    assert "<script" not in page and "http://" not in page and "https://" not in page


def test_a_node_missing_a_peer_says_which_and_why() -> None:
    doc = parse(render_status(view(health({IDS[2]}))))
    missing = [a for t, a in doc.elements if t == "tr" and a.get("data-state") == "missing"]
    assert [a["data-node-id"] for a in missing] == ["0x" + IDS[1].hex()]
    text = " ".join(doc.text)
    assert "not ready" in text
    assert f"not connected to 1 of the 2 other nodes: {IDS[1][:4].hex()} (127.0.0.1:12001)" in text


def test_a_chain_node_outside_the_set_shows_the_chain_and_why() -> None:
    others = tuple(PeerState(n, "127.0.0.1:12000", True) for n in IDS[1:])
    chain = {"trusted": False, "block": None, "problem": "the chain RPC <at> does not answer"}
    change = {"phase": "moving", "keys_done": 3, "keys_total": 10, "old_set": 3, "new_set": 4}
    h = Health(IDS[0], "0.1.0", 5.0, 0, others, chain=chain, isolated=True, node_set_change=change)
    doc = parse(render_status(view(h)))
    fields = {a["data-field"] for tag, a in doc.elements if "data-field" in a}
    assert {"chain", "node_set_change"} <= fields
    text = " ".join(doc.text)
    assert "not trusted: the chain RPC <at> does not answer" in text  # parsed back: escaped
    assert "moving: 3 of 10 keys, 3 → 4 nodes" in text
    assert "2 of 2" in text and "this node is not in the key server set" in text


def test_every_value_is_escaped() -> None:
    hostile = EndedSession(
        "decryption", False, 0.2, "ProtocolViolation", "<img src=x onerror=1>", 0
    )
    page = render_status(view(health(set(), address='"><script>alert(1)</script>'), (hostile,)))
    assert "<script>" not in page and "<img" not in page
    assert "&lt;img src=x onerror=1&gt;" in page
    assert "&quot;&gt;&lt;script&gt;" in page


def test_error_texts_are_redacted_on_the_page() -> None:
    observer = NodeObserver(NodeMetrics("0.1.0", 0.0), RecentSessions())
    secret = "ab" * 32
    observer.recent.add(
        EndedSession("decryption", True, 0.1, "StorageError", f"share {secret} unreadable", 0.0)
    )
    page = render_status(status_view(health(set()), observer, 0.0))
    assert secret not in page and "&lt;redacted&gt;" in page


def test_durations_read_naturally() -> None:
    assert [duration(s) for s in (0.0042, 0.85, 2.5, 200, 7300, 200000)] == [
        "4 ms",
        "850 ms",
        "2.5 s",
        "3 min 20 s",
        "2 h 1 min",
        "2 d 7 h",
    ]
