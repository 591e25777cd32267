"""Audit entries for tests: facts of every shape, and a node's log built by the real recorder
over an in-memory store."""

from __future__ import annotations

from hypothesis import strategies as st

from secretstore.audit.model import AuditFacts, Operation, facts_of
from secretstore.audit.receipts import NodeSigner
from secretstore.audit.recorder import AuditRecorder
from secretstore.audit.store import MemoryAuditStore
from secretstore.crypto.keys import KeyPair
from secretstore.crypto.rng import SeededRng
from secretstore.types import Address, BlockRef, Hash256, NodeId, ServerKeyId, SessionId

NODES = [KeyPair.generate(SeededRng(100 + i)) for i in range(4)]
NODE = NODES[0]
REQUESTER = Address(b"\x11" * 20)


def facts(i: int = 0, operation: Operation = Operation.SHADOW_RETRIEVAL) -> AuditFacts:
    return facts_of(
        operation,
        ServerKeyId(i.to_bytes(32, "big")),
        session_id=SessionId(bytes([i % 256]) * 32),
        master=NODE.node_id,
        requester=REQUESTER,
        participants=frozenset({NODE.node_id, NODES[1].node_id}),
        key_version=b"\x22" * 32,
        message_hash=b"\x33" * 32 if operation in (Operation.SCHNORR, Operation.ECDSA) else None,
    )


class Clock:
    """A clock that advances one second per reading."""

    def __init__(self, start_ms: int = 1_700_000_000_000) -> None:
        self.now = start_ms

    def __call__(self) -> int:
        self.now += 1000
        return self.now


def node_log(entries: int, key: KeyPair = NODE) -> tuple[MemoryAuditStore, AuditRecorder]:
    """A log of `entries` entries (operations in turn), written by the real recorder."""
    store = MemoryAuditStore()
    recorder = AuditRecorder(store, NodeSigner(key), clock=Clock())
    operations = list(Operation)
    for i in range(entries):
        recorder.record(facts(i, operations[i % len(operations)]))
    return store, recorder


node_ids = st.sampled_from([k.node_id for k in NODES])


@st.composite
def any_facts(draw: st.DrawFn) -> AuditFacts:
    optional32 = st.none() | st.binary(min_size=32, max_size=32)
    block = st.none() | st.builds(
        BlockRef,
        st.integers(0, 2**64 - 1),
        st.binary(min_size=32, max_size=32).map(Hash256),
    )
    participants = draw(st.sets(node_ids, min_size=1))
    return facts_of(
        draw(st.sampled_from(list(Operation))),
        ServerKeyId(draw(st.binary(min_size=32, max_size=32))),
        session_id=SessionId(draw(st.binary(min_size=32, max_size=32))),
        master=NodeId(draw(node_ids)),
        requester=draw(st.none() | st.binary(min_size=20, max_size=20).map(Address)),
        participants=frozenset(participants),
        key_version=draw(optional32),
        message_hash=draw(optional32),
        block=draw(block),
    )
