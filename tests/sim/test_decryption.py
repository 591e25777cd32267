"""Document key retrieval on a simulated network: schedules, refusals, drop-outs, bad nodes."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from secretstore.client.http_client import parse_shadow_body
from secretstore.crypto.curve import G, Point, Scalar
from secretstore.crypto.dleq import prove_equal_logs
from secretstore.crypto.document import decrypt_with_shadow_coefficients
from secretstore.crypto.ecies import ecies_decrypt, ecies_encrypt
from secretstore.crypto.hashing import keccak256
from secretstore.crypto.keys import KeyPair, sign_recoverable
from secretstore.crypto.rng import SeededRng, random_scalar
from secretstore.crypto.shadow import compute_node_shadow
from secretstore.crypto.shadow_proofs import answer_job
from secretstore.encoding import parse_hex, to_hex
from secretstore.errors import (
    AccessDenied,
    ConsensusUnreachable,
    DecryptionError,
    PlainRetrievalRefused,
    ProtocolViolation,
    ShadowVerificationError,
)
from secretstore.http.format import shadow_body
from secretstore.http.port import ShadowRetrieval
from secretstore.sessions.base import Effect, Fail, Finish, Send, Session, SessionContext, short
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
    compute_job_response,
    job_statement,
)
from secretstore.types import Address, NodeId, ServerKeyId, SessionId
from secretstore.wire.decryption import (
    DecryptionJobRequest,
    DecryptionJobResponse,
    DecryptionRequest,
)
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
    with_commitments: bool = True,
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
    key = deal_key(rng, net.order, t, with_commitments=with_commitments)
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


# --- a node that lies in its job response ----------------------------------------------------


def _other_session(slave: DecryptionSlave, job: DecryptionJobRequest) -> DecryptionJobResponse:
    """A correct answer, computed for another session: its proof is bound to that one."""
    other = replace(job, session_id=SessionId(keccak256(job.session_id)))
    response = compute_job_response(
        slave.ctx,
        slave._share,
        slave.check.version,
        slave.key_id,
        other,
        requester=slave.check.requester.public,
    )
    return replace(response, session_id=job.session_id)


def _as_another_node(
    slave: DecryptionSlave, job: DecryptionJobRequest, honest: DecryptionJobResponse
) -> DecryptionJobResponse:
    """A plain answer made with this node's share, its proof in the name of another member."""
    statement = job_statement(
        slave._share, slave.check.version, slave.key_id, job, slave.check.requester.public
    )
    assert statement is not None
    me = slave.ctx.self_id
    other = next(node for node in job.nodes if node != me)
    others = [x for node, x in statement.group if node != me]
    node_shadow = compute_node_shadow(
        slave.check.version.secret_share, statement.id_number(me), others
    )
    proof = prove_equal_logs(
        node_shadow, G, statement.proof_base(), slave.ctx.rng, context=statement.context(other)
    )
    return replace(honest, proof=proof)


def _wrong_decrypt_shadow(
    slave: DecryptionSlave, job: DecryptionJobRequest, honest: DecryptionJobResponse
) -> DecryptionJobResponse:
    """Another d_i, well encrypted to the requester, and a proof bound to it: only the
    requester can see it is wrong."""
    statement = job_statement(
        slave._share, slave.check.version, slave.key_id, job, slave.check.requester.public
    )
    assert statement is not None
    rng = slave.ctx.rng
    fake = random_scalar(rng)
    answer = answer_job(
        statement,
        slave.ctx.self_id,
        slave.check.version.secret_share,
        rng,
        lambda _: ecies_encrypt(slave.check.requester.public, fake.to_bytes(), rng),
    )
    return replace(
        honest,
        shadow_point=answer.shadow_point,
        blinded_public=answer.blinded_public,
        decrypt_shadow=answer.sealed_shadow,
        proof=answer.proof,
    )


def _another_sealed_shadow(
    slave: DecryptionSlave, job: DecryptionJobRequest, honest: DecryptionJobResponse
) -> DecryptionJobResponse:
    """The honest proof with another sealed d_i than the one it was made for."""
    fake = random_scalar(slave.ctx.rng)
    cipher = ecies_encrypt(slave.check.requester.public, fake.to_bytes(), slave.ctx.rng)
    return replace(honest, decrypt_shadow=cipher)


Lie = Callable[[DecryptionSlave, DecryptionJobRequest, DecryptionJobResponse], object]

#: lie -> (works in plain mode, works in shadow mode)
LIES: dict[str, tuple[Lie, bool, bool]] = {
    "a wrong P_i": (lambda s, j, r: replace(r, shadow_point=r.shadow_point + G), True, True),
    "a wrong Q_i": (
        lambda s, j, r: replace(r, blinded_public=(r.blinded_public or G) + G),
        False,
        True,
    ),
    "a proof for another session": (lambda s, j, r: _other_session(s, j), True, True),
    "a valid-looking proof from another node": (_as_another_node, True, False),
    "no proof": (lambda s, j, r: replace(r, proof=None), True, True),
    "a sealed d_i its proof was not made for": (_another_sealed_shadow, False, True),
}
MASTER_CATCHES = sorted(
    [(name, False) for name, (_, plain, _) in LIES.items() if plain]
    + [(name, True) for name, (_, _, shadow) in LIES.items() if shadow]
)


class LyingSlave(DecryptionSlave):
    """A slave whose job responses are replaced by `lie` before they leave."""

    lie: Lie
    lied: list[NodeId]

    def on_message(self, sender: NodeId, message: object) -> list[Effect]:
        effects = super().on_message(sender, message)
        if not isinstance(message, DecryptionJobRequest):
            return effects
        return self._lying(effects, message)

    def on_access_checked(self, allowed: bool) -> list[Effect]:
        effects = super().on_access_checked(allowed)
        job = self._init.job
        if job is None:
            return effects
        return self._lying(effects, job.request(self.session_id))

    def _lying(self, effects: list[Effect], job: DecryptionJobRequest) -> list[Effect]:
        out: list[Effect] = []
        for effect in effects:
            if isinstance(effect, Send) and isinstance(effect.message, DecryptionJobResponse):
                out.append(Send(effect.to, self.lie(self, job, effect.message)))
                self.lied.append(self.ctx.self_id)
            else:
                out.append(effect)
        return out


def lying_slaves(bad: NodeId, lie: Lie, lied: list[NodeId]) -> dict[type, SlaveFactory]:
    def join(
        ctx: SessionContext, sender: NodeId, message: DecryptionRequest, share: object
    ) -> tuple[Session, list[Effect]]:
        held = require_share(share, message.key_id)  # type: ignore[arg-type]
        check = AccessCheck.of(ctx, sender, message, held)
        if ctx.self_id != bad:
            return DecryptionSlave(ctx, sender, message, held, check), check.start()
        session = LyingSlave(ctx, sender, message, held, check)
        session.lie = lie
        session.lied = lied
        return session, check.start()

    return {DecryptionRequest: join}


@dataclass
class LyingRun:
    world: World
    master: DecryptionMaster
    sid: SessionId
    liar: NodeId
    lied: list[NodeId]


def lying_run(
    t: int, n: int, seed: int, schedule: int, lie: Lie, shadow: bool, liar: int = 1
) -> LyingRun:
    probe = SimNetwork(n, MASTERS, SLAVES, seed=seed)
    bad = probe.order[liar]
    lied: list[NodeId] = []
    w = world(t, n, seed, schedule, slaves=lying_slaves(bad, lie, lied))
    sid = w.retrieve(0, shadow)
    master = master_session(w, 0, sid)
    assert master is not None
    w.net.run()
    return LyingRun(w, master, sid, bad, lied)


def chosen_liar_run(t: int, n: int, lie: Lie, shadow: bool) -> LyingRun:
    """The first seeded run (FIFO deliveries after a seeded start) in which the liar is
    picked for the first group."""
    for seed in range(200):
        run = lying_run(t, n, seed, seed, lie, shadow)
        if run.lied:
            return run
    raise AssertionError("the liar was never chosen")


@pytest.mark.parametrize(("lie", "shadow"), MASTER_CATCHES)
def test_a_lying_node_is_named_and_the_third_node_serves_instead(lie: str, shadow: bool) -> None:
    """n = 3, t = 1: the liar's answer is rejected, named, and a new group with the third
    node gives the requester the right key."""
    run = chosen_liar_run(1, 3, LIES[lie][0], shadow)
    value = run.world.net.value(0, run.sid)
    assert run.world.document_key(value, shadow) == run.world.key.document_key
    assert set(run.master.rejected) == {run.liar}
    assert run.world.leftover_sessions() == 0
    if shadow:
        assert isinstance(value, ShadowResult) and value.proofs is not None
        assert run.liar not in [p.node for p in value.proofs.participants]
        assert verified_key(run.world, value) == run.world.key.document_key


@pytest.mark.parametrize(("lie", "shadow"), MASTER_CATCHES)
def test_a_lying_node_without_a_replacement_fails_the_session_naming_it(
    lie: str, shadow: bool
) -> None:
    run = lying_run(1, 2, 5, 5, LIES[lie][0], shadow)
    assert run.lied == [run.liar]
    with pytest.raises(ProtocolViolation) as caught:
        run.world.net.value(0, run.sid)
    assert caught.value.node == short(run.liar)
    assert run.world.leftover_sessions() == 0


@given(
    case=st.sampled_from(WITH_HELPERS),
    seed=seeds,
    schedule=seeds,
    lie=st.sampled_from(MASTER_CATCHES),
    data=st.data(),
)
def test_a_lying_node_never_yields_a_wrong_key_whatever_the_delivery_order(
    case: tuple[int, int], seed: int, schedule: int, lie: tuple[str, bool], data: st.DataObject
) -> None:
    t, n = case
    name, shadow = lie
    liar = data.draw(st.integers(1, n - 1))
    run = lying_run(t, n, seed, schedule, LIES[name][0], shadow, liar)
    outcome = run.world.net.result(0, run.sid)
    assert isinstance(outcome, Finish | Fail)
    if isinstance(outcome, Finish):
        assert run.world.document_key(outcome.result, shadow) == run.world.key.document_key
        assert set(run.master.rejected) == ({run.liar} if run.lied else set())
    else:
        assert run.lied and n - 1 < t + 1  # only when nobody could replace the liar
        assert isinstance(outcome.error, ProtocolViolation)
        assert outcome.error.node == short(run.liar)
    assert run.world.leftover_sessions() == 0


def test_a_wrong_decrypt_shadow_passes_the_master_but_not_the_requester() -> None:
    """The master cannot open d_i (it is encrypted to the requester): the answer reaches the
    requester, whose check names the liar; combined blindly it would give a wrong key."""
    run = chosen_liar_run(1, 3, _wrong_decrypt_shadow, shadow=True)
    value = run.world.net.value(0, run.sid)
    assert isinstance(value, ShadowResult) and run.master.rejected == {}
    assert run.world.document_key(value, True) != run.world.key.document_key
    with pytest.raises(ShadowVerificationError) as caught:
        verified_key(run.world, value)
    assert caught.value.node == "0x" + run.liar.hex()
    assert "decrypt shadow" in str(caught.value)


def verified_key(w: World, value: ShadowResult, anchor: Point | None = None) -> Point:
    """The requester's side of a shadow result: our HTTP body, parsed and checked by the
    client library, anchored at the server key public."""
    body = shadow_body(
        ShadowRetrieval(
            value.decrypted_secret, value.common_point, value.decrypt_shadows, value.proofs
        )
    )
    return parse_shadow_body(body).document_key(
        KEY_ID, w.requester, server_key_public=anchor or w.key.public, require_proofs=True
    )


# --- a rogue master that tampers with the answer it relays ------------------------------------


def _tamper_json(body: bytes, change: Callable[[dict[str, Any]], None]) -> bytes:
    value = json.loads(body)
    change(value)
    return json.dumps(value).encode()


def _bump_point(text: str) -> str:
    return to_hex((Point.from_bytes(parse_hex(text, 64)) + G).to_bytes())


def _set(path: list[str | int], make: Callable[[Any], Any]) -> Callable[[dict[str, Any]], None]:
    def change(value: dict[str, Any]) -> None:
        target: Any = value
        for step in path[:-1]:
            target = target[step]
        target[path[-1]] = make(target[path[-1]])

    return change


def _swap_shadows(value: dict[str, Any]) -> None:
    shadows = value["decrypt_shadows"]
    shadows[0], shadows[1] = shadows[1], shadows[0]


def test_the_requester_rejects_what_a_rogue_master_tampered_naming_the_master() -> None:
    """Every participant's proof binds its own values and sealed d_i, and the master checked
    each: whatever the master changes fails as the answering key server's fault, never as
    an honest participant's."""
    w = world(1, 3, 11, 11)
    sid = w.retrieve(0, shadow=True)
    w.net.run()
    value = w.net.value(0, sid)
    assert isinstance(value, ShadowResult) and value.proofs is not None
    body = shadow_body(
        ShadowRetrieval(
            value.decrypted_secret, value.common_point, value.decrypt_shadows, value.proofs
        )
    )
    other_scalar = to_hex(Scalar(12345).to_bytes())
    forged_shadow = to_hex(ecies_encrypt(w.requester.public, Scalar(7).to_bytes(), SeededRng(1)))
    cases: list[tuple[str, Callable[[dict[str, Any]], None], NodeId | None]] = [
        ("D", _set(["decrypted_secret"], _bump_point), None),
        ("E", _set(["proofs", "encrypted_point"], _bump_point), None),
        ("a", _set(["proofs", "access_key"], lambda _: other_scalar), None),
        ("a d_i", _set(["decrypt_shadows", 1], lambda _: forged_shadow), None),
        ("two d_i swapped", _swap_shadows, None),
        ("a P_i", _set(["proofs", "participants", 1, "shadow_point"], _bump_point), None),
        ("an id number", _set(["proofs", "participants", 1, "id_number"], lambda _: other_scalar),
         None),
        ("the commitments", _set(["proofs", "commitments", 1], _bump_point), None),
    ]  # fmt: skip
    good = parse_shadow_body(body).document_key(KEY_ID, w.requester, server_key_public=w.key.public)
    assert good == w.key.document_key
    for what, change, culprit in cases:
        tampered = parse_shadow_body(_tamper_json(body, change))
        with pytest.raises(ShadowVerificationError) as caught:
            tampered.document_key(KEY_ID, w.requester, server_key_public=w.key.public)
        expected = None if culprit is None else "0x" + culprit.hex()
        assert caught.value.node == expected, what
    # an answer made up whole by the master, for a key it chose, fails at the anchor
    made_up = deal_key(SeededRng(99), w.net.order, 1)
    with pytest.raises(ShadowVerificationError, match="C_0"):
        parse_shadow_body(body).document_key(KEY_ID, w.requester, server_key_public=made_up.public)


# --- keys without commitments ------------------------------------------------------------------


@given(case=st.sampled_from(CASES), seed=seeds, schedule=seeds, shadow=st.booleans())
def test_keys_without_commitments_still_decrypt_without_proofs(
    case: tuple[int, int], seed: int, schedule: int, shadow: bool
) -> None:
    t, n = case
    w = world(t, n, seed, schedule, with_commitments=False)
    sid = w.retrieve(0, shadow)
    w.net.run()
    value = w.net.value(0, sid)
    assert w.document_key(value, shadow) == w.key.document_key
    responses = [m for _, _, m in w.net.sent if isinstance(m, DecryptionJobResponse)]
    assert all(r.proof is None and r.blinded_public is None for r in responses)
    if shadow:
        assert isinstance(value, ShadowResult) and value.proofs is None


# --- require_shadow_retrieval against a rogue master -------------------------------------------


@pytest.mark.parametrize(("t", "n"), [(1, 2), (1, 3), (2, 4)])
def test_with_the_policy_honest_slaves_refuse_a_rogue_masters_plain_retrieval(
    t: int, n: int
) -> None:
    """Every node but the master has require_shadow_retrieval; the master ignores it and asks
    for plain retrieval with the requester's signature: no slave computes a shadow point, so
    no document key is computed anywhere; shadow retrieval works."""
    w = world(t, n, 21, 21)
    for node_id in w.net.order[1:]:
        core = w.net.nodes[node_id].core
        core.ctx = replace(core.ctx, require_shadow_retrieval=True)
    sid = w.retrieve(0, shadow=False)
    w.net.run()
    with pytest.raises(PlainRetrievalRefused):
        w.net.value(0, sid)
    assert not any(isinstance(m, DecryptionJobResponse) for _, _, m in w.net.sent)
    asked = [
        m
        for _, _, m in w.net.sent
        if isinstance(m, DecryptionJobRequest)
        or (isinstance(m, DecryptionRequest) and m.job is not None)
    ]
    assert asked  # it did ask
    assert w.leftover_sessions() == 0
    sid = w.retrieve(0, shadow=True)
    w.net.run()
    assert w.document_key(w.net.value(0, sid), True) == w.key.document_key


def test_a_master_with_the_policy_refuses_plain_retrieval_before_asking_anyone() -> None:
    w = world(1, 3, 22, 22)
    for node in w.net.nodes.values():
        node.core.ctx = replace(node.core.ctx, require_shadow_retrieval=True)
    sid = w.retrieve(0, shadow=False)
    w.net.run()
    with pytest.raises(PlainRetrievalRefused):
        w.net.value(0, sid)
    assert w.net.sent == []
