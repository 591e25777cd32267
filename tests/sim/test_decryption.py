"""Document key retrieval on a simulated network: schedules, refusals, drop-outs, bad nodes."""

from __future__ import annotations

from dataclasses import dataclass, replace

from hypothesis import given
from hypothesis import strategies as st

from secretstore.crypto.curve import Point, Scalar
from secretstore.crypto.document import decrypt_with_shadow_coefficients
from secretstore.crypto.ecies import ecies_decrypt
from secretstore.crypto.keys import KeyPair, sign_recoverable
from secretstore.crypto.rng import SeededRng
from secretstore.errors import (
    AccessDenied,
    ConsensusUnreachable,
    DecryptionError,
    ProtocolViolation,
)
from secretstore.sessions.base import Effect, Send, Session, SessionContext, short
from secretstore.sessions.consensus import AccessCheck, require_share
from secretstore.sessions.core import SlaveFactory
from secretstore.sessions.decryption import (
    MASTERS,
    SLAVES,
    DecryptionMaster,
    DecryptionPhase,
    DecryptionSlave,
    RetrieveDocumentKey,
    ShadowResult,
)
from secretstore.types import Address, NodeId, ServerKeyId, SessionId
from secretstore.wire.decryption import DecryptionJobResponse, DecryptionRequest
from tests.sim.dealer import DealtKey, deal_key
from tests.sim.harness import AccessPolicy, RandomScheduler, SimNetwork, allow_all

KEY_ID = ServerKeyId(b"\x42" * 32)
#: (t, n) pairs
CASES = [(0, 1), (0, 2), (1, 2), (1, 3), (2, 3), (1, 4), (2, 4), (2, 5), (3, 5), (4, 5)]
WITH_HELPERS = [(t, n) for t, n in CASES if t >= 1]

seeds = st.integers(0, 2**32)


@dataclass
class World:
    net: SimNetwork
    key: DealtKey
    requester: KeyPair

    @property
    def signature(self) -> bytes:
        return sign_recoverable(self.requester.secret, KEY_ID)

    def retrieve(self, master: int, shadow: bool) -> SessionId:
        return self.net.start(master, RetrieveDocumentKey(KEY_ID, self.signature, shadow))

    def document_key(self, value: object, shadow: bool) -> Point:
        """What the requester gets out of a result."""
        if not shadow:
            assert isinstance(value, Point)
            return value
        assert isinstance(value, ShadowResult)
        coefficients = [
            Scalar.from_bytes(ecies_decrypt(self.requester.secret, c))
            for c in value.decrypt_shadows
        ]
        return decrypt_with_shadow_coefficients(
            value.decrypted_secret, value.common_point, coefficients
        )

    def leftover_sessions(self) -> int:
        return sum(
            len(node.core) for node in self.net.nodes.values() if node.node_id not in self.net.down
        )


def world(
    t: int,
    n: int,
    seed: int,
    schedule: int,
    access: AccessPolicy = allow_all,
    slaves: dict[type, SlaveFactory] | None = None,
    duplicate_rate: float = 0.0,
) -> World:
    net = SimNetwork(
        n,
        MASTERS,
        slaves if slaves is not None else SLAVES,
        seed=seed,
        access=access,
        scheduler=RandomScheduler(schedule, duplicate_rate),
    )
    rng = SeededRng(seed + 1)
    key = deal_key(rng, net.order, t)
    for node in net.nodes.values():
        node.storage.insert(KEY_ID, key.shares[node.node_id])
    return World(net, key, KeyPair.generate(rng))


@given(
    case=st.sampled_from(CASES),
    seed=seeds,
    schedule=seeds,
    shadow=st.booleans(),
    data=st.data(),
)
def test_retrieval_gives_the_stored_document_key(
    case: tuple[int, int], seed: int, schedule: int, shadow: bool, data: st.DataObject
) -> None:
    t, n = case
    w = world(t, n, seed, schedule)
    master = data.draw(st.integers(0, n - 1))
    sid = w.retrieve(master, shadow)
    w.net.run()
    value = w.net.value(master, sid)
    assert w.document_key(value, shadow) == w.key.document_key
    assert w.leftover_sessions() == 0
    if shadow:
        assert isinstance(value, ShadowResult)
        assert len(value.decrypt_shadows) == t + 1
        # the master holds D, not M; no node key opens a decrypt shadow
        assert value.decrypted_secret != w.key.document_key
        for node in w.net.nodes.values():
            for encrypted in value.decrypt_shadows:
                try:
                    ecies_decrypt(node.key.secret, encrypted)
                except DecryptionError:
                    continue
                raise AssertionError("a node could open a decrypt shadow")


@given(case=st.sampled_from(CASES), seed=seeds, schedule=seeds, data=st.data())
def test_concurrent_retrievals_from_different_masters(
    case: tuple[int, int], seed: int, schedule: int, data: st.DataObject
) -> None:
    t, n = case
    w = world(t, n, seed, schedule)
    masters = data.draw(st.lists(st.integers(0, n - 1), min_size=2, max_size=3))
    started = [(m, w.retrieve(m, shadow=i % 2 == 1), i % 2 == 1) for i, m in enumerate(masters)]
    w.net.run()
    for master, sid, shadow in started:
        assert w.document_key(w.net.value(master, sid), shadow) == w.key.document_key
    assert w.leftover_sessions() == 0


@given(
    case=st.sampled_from(CASES),
    seed=seeds,
    schedule=seeds,
    shadow=st.booleans(),
    data=st.data(),
)
def test_refusals_by_some_nodes(
    case: tuple[int, int], seed: int, schedule: int, shadow: bool, data: st.DataObject
) -> None:
    t, n = case
    refusing_indexes = data.draw(st.sets(st.integers(0, n - 1)))
    master = data.draw(st.integers(0, n - 1))
    holder: list[SimNetwork] = []

    def policy(node: NodeId, requester: Address, key_id: ServerKeyId) -> bool:
        assert key_id == KEY_ID
        return holder[0].order.index(node) not in refusing_indexes

    w = world(t, n, seed, schedule, access=policy)
    holder.append(w.net)
    sid = w.retrieve(master, shadow)
    w.net.run()
    outcome = w.net.result(master, sid)
    assert outcome is not None
    if master in refusing_indexes or n - len(refusing_indexes) < t + 1:
        try:
            w.net.value(master, sid)
        except AccessDenied:
            pass
        else:
            raise AssertionError("refused retrieval succeeded")
    else:
        assert w.document_key(w.net.value(master, sid), shadow) == w.key.document_key
    assert w.leftover_sessions() == 0


@given(case=st.sampled_from(CASES), seed=seeds, schedule=seeds, data=st.data())
def test_holders_that_lost_their_share(
    case: tuple[int, int], seed: int, schedule: int, data: st.DataObject
) -> None:
    t, n = case
    w = world(t, n, seed, schedule)
    master = data.draw(st.integers(0, n - 1))
    lost = data.draw(st.sets(st.integers(0, n - 1).filter(lambda i: i != master)))
    for i in lost:
        w.net.node(i).storage.remove(KEY_ID)
    sid = w.retrieve(master, shadow=False)
    w.net.run()
    if n - len(lost) >= t + 1:
        assert w.net.value(master, sid) == w.key.document_key
    else:
        try:
            w.net.value(master, sid)
        except ConsensusUnreachable:
            pass
        else:
            raise AssertionError("retrieval succeeded without enough holders")
    assert w.leftover_sessions() == 0


def master_session(w: World, master: int, sid: SessionId) -> DecryptionMaster | None:
    session = w.net.node(master).core.session(sid)
    assert session is None or isinstance(session, DecryptionMaster)
    return session


@given(
    case=st.sampled_from(WITH_HELPERS),
    seed=seeds,
    schedule=seeds,
    shadow=st.booleans(),
    data=st.data(),
)
def test_group_member_dropping_out_mid_job(
    case: tuple[int, int], seed: int, schedule: int, shadow: bool, data: st.DataObject
) -> None:
    t, n = case
    w = world(t, n, seed, schedule)
    master = data.draw(st.integers(0, n - 1))
    sid = w.retrieve(master, shadow)
    session = master_session(w, master, sid)
    while session is not None and session.phase is not DecryptionPhase.WAITING_FOR_JOB_RESPONSES:
        assert w.net.run(max_steps=1) == 1
        session = master_session(w, master, sid)
    assert session is not None, "the job never started"
    awaiting = [node for node in session.awaiting if node != w.net.order[master]]
    victim = data.draw(st.sampled_from(awaiting))
    w.net.disconnect(victim)
    w.net.run()
    if n - 1 >= t + 1:
        assert w.document_key(w.net.value(master, sid), shadow) == w.key.document_key
    else:
        try:
            w.net.value(master, sid)
        except ConsensusUnreachable as exc:
            assert short(victim) in str(exc)
        else:
            raise AssertionError("retrieval succeeded with too few nodes")
    assert w.leftover_sessions() == 0


@given(case=st.sampled_from(CASES), seed=seeds, schedule=seeds, shadow=st.booleans())
def test_duplicated_deliveries_do_not_change_the_result(
    case: tuple[int, int], seed: int, schedule: int, shadow: bool
) -> None:
    t, n = case
    w = world(t, n, seed, schedule, duplicate_rate=0.2)
    sid = w.retrieve(0, shadow)
    w.net.run()
    assert w.document_key(w.net.value(0, sid), shadow) == w.key.document_key


# --- a node that tampers with its job response ---------------------------------------------

TAMPERINGS = {
    "drop the decrypt shadow": lambda r: replace(r, decrypt_shadow=None),
    "truncate the decrypt shadow": lambda r: replace(
        r, decrypt_shadow=(r.decrypt_shadow or b"")[:-1]
    ),
    "claim a later attempt": lambda r: replace(r, attempt=r.attempt + 1),
}


class TamperingSlave(DecryptionSlave):
    """A slave whose job responses are changed before they leave."""

    tamper: object = None
    sent: list[NodeId]

    def on_message(self, sender: NodeId, message: object) -> list[Effect]:
        effects = super().on_message(sender, message)
        out: list[Effect] = []
        for effect in effects:
            if isinstance(effect, Send) and isinstance(effect.message, DecryptionJobResponse):
                assert callable(self.tamper)
                out.append(Send(effect.to, self.tamper(effect.message)))
                self.sent.append(self.ctx.self_id)
            else:
                out.append(effect)
        return out


def tampering_slaves(bad: NodeId, tamper: object, sent: list[NodeId]) -> dict[type, SlaveFactory]:
    def join(
        ctx: SessionContext, sender: NodeId, message: DecryptionRequest, share: object
    ) -> tuple[Session, list[Effect]]:
        held = require_share(share, message.key_id)  # type: ignore[arg-type]
        check = AccessCheck(
            ctx,
            message.session_id,
            sender,
            key_id=message.key_id,
            request=message.access,
            share=held,
        )
        cls = TamperingSlave if ctx.self_id == bad else DecryptionSlave
        session = cls(ctx, sender, message, held, check)
        if isinstance(session, TamperingSlave):
            session.tamper = tamper
            session.sent = sent
        return session, check.start()

    return {DecryptionRequest: join}


@given(
    case=st.sampled_from(WITH_HELPERS),
    seed=seeds,
    schedule=seeds,
    tampering=st.sampled_from(sorted(TAMPERINGS)),
    data=st.data(),
)
def test_a_tampered_job_response_is_named(
    case: tuple[int, int], seed: int, schedule: int, tampering: str, data: st.DataObject
) -> None:
    t, n = case
    bad_index = data.draw(st.integers(1, n - 1))
    probe = SimNetwork(n, MASTERS, SLAVES, seed=seed)
    bad = probe.order[bad_index]
    sent: list[NodeId] = []
    w = world(t, n, seed, schedule, slaves=tampering_slaves(bad, TAMPERINGS[tampering], sent))
    sid = w.retrieve(0, shadow=True)
    w.net.run()
    if not sent:
        # the bad node was never chosen for a job: nothing was tampered with
        assert w.document_key(w.net.value(0, sid), True) == w.key.document_key
        return
    try:
        w.net.value(0, sid)
    except ProtocolViolation as exc:
        assert exc.node == short(bad)
    else:
        raise AssertionError("a tampered response went unnoticed")
    assert w.leftover_sessions() == 0
