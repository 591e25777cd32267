"""The cases of the Byzantine suite and the oracle that judges each one.

Cases come from the rogue's own messages in an honest run of each scenario (the baseline):
for every kind of message it sent (`network.label`) and every node it sent one to, every fault
the mutator lists for the first such message (`mutate.faults_of`). The slow sweep adds more
shapes and the same faults applied to every such message, to every receiver at once.

The oracle (`judge`), after the network is quiet and every session timed out:
- an honest master's session ended; if it finished, its result is right (the kind's ground
  truth); if it failed, with one of the documented errors, and the error names the rogue
  (its short id in the text, which a ProtocolViolation starts with);
- every session an honest node ended badly names a node (the one it waited for, or the one
  that broke the protocol), unless the node refused the request by its own policy (access,
  bound requests, shadow retrieval only); with a rogue master, at least one of them names
  the rogue (an honest slave can only name whom it waited for, maybe another slave that
  waits for the rogue);
- no session is left open on any node;
- what honest nodes store is consistent and asked for (the kind's `check_storage`), and, with
  a rogue master, what they released to it was asked for (`check_released`);
- bytes meant not to decode raise MalformedMessage, and only that.
"""

from __future__ import annotations

import dataclasses
import functools
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

from secretstore.crypto.rng import SeededRng
from secretstore.errors import (
    AccessDenied,
    ConsensusUnreachable,
    DocumentKeyNotFound,
    ExclusiveSessionActive,
    HasActiveSessions,
    InvalidRequest,
    MalformedMessage,
    NodeDisconnected,
    ProtocolViolation,
    ServerKeyNotFound,
    SessionLimitReached,
    SessionTimeout,
)
from secretstore.sessions.base import Fail, Finish, short
from secretstore.types import NodeId, SessionId
from secretstore.wire import codec
from tests.sim.byzantine import mutate
from tests.sim.byzantine.network import (
    FaultPlan,
    Target,
    label,
    last_of,
    later_of,
    message_types,
    previous_of,
    replay_source,
)
from tests.sim.byzantine.scenarios import PROVOKED, RequesterRefused, Scenario, World

#: The errors a failed session may end with (each must name the rogue).
DOCUMENTED = (
    ProtocolViolation,
    ConsensusUnreachable,
    AccessDenied,
    InvalidRequest,
    ServerKeyNotFound,
    DocumentKeyNotFound,
    SessionLimitReached,
    SessionTimeout,
    ExclusiveSessionActive,
    HasActiveSessions,
    NodeDisconnected,
)

#: An honest node's own refusal of a request (its access or request policy): a decision, not
#: a fault to attribute.
REFUSALS = (AccessDenied, InvalidRequest)

SCENARIOS: tuple[Scenario, ...] = (
    Scenario("generation", "member", 3, 1),
    Scenario("generation", "master", 3, 1),
    Scenario("store", "member", 3, 1),
    Scenario("store", "master", 3, 1),
    Scenario("negotiation", "member", 3, 1),
    Scenario("negotiation", "master", 3, 1),
    Scenario("retrieval", "member", 4, 1),
    Scenario("decryption", "member", 3, 1),
    Scenario("decryption", "master", 3, 1),
    Scenario("shadow-decryption", "member", 3, 1),
    Scenario("shadow-decryption", "master", 3, 1),
    Scenario("decryption-without-commitments", "member", 3, 1),
    Scenario("shadow-decryption-without-commitments", "member", 3, 1),
    Scenario("schnorr", "member", 3, 1),
    Scenario("schnorr", "master", 3, 1),
    Scenario("schnorr", "member", 4, 2, provocation="accusing"),
    Scenario("schnorr", "member", 4, 2, provocation="losing-a-link"),
    Scenario("ecdsa", "member", 4, 1),
    Scenario("ecdsa", "master", 4, 1),
    Scenario("delegated-decryption", "member", 3, 1),
    Scenario("delegated-decryption", "master", 3, 1),
    Scenario("delegated-shadow-decryption", "member", 4, 1),
    Scenario("delegated-shadow-decryption", "master", 3, 1),
    Scenario("delegated-schnorr", "member", 3, 1),
    Scenario("delegated-schnorr", "master", 3, 1),
    Scenario("delegated-ecdsa", "member", 4, 1),
    Scenario("delegated-ecdsa", "master", 4, 1),
    # every node keeps an audit log: the members' receipts, and the delegate's relay of them
    Scenario("shadow-decryption-audited", "member", 3, 1),
    Scenario("delegated-shadow-decryption-audited", "member", 4, 1),
    Scenario("delegated-schnorr-audited", "member", 3, 1),
    Scenario("node-set-change", "member", 4, 1),
    Scenario("node-set-change", "master", 4, 1),
    Scenario("node-set-change", "member", 4, 1, provocation="blaming-a-dealer"),
    Scenario("node-set-change-replacing", "master", 5, 1),
    Scenario("node-set-change-replacing", "member", 5, 1),
    Scenario("shadow-decryption-asking-again", "member", 4, 1),
    Scenario("shadow-decryption-asking-again", "master", 4, 1),
    Scenario("broadcast-shadow-decryption", "member", 3, 1),
    Scenario("broadcast-shadow-decryption", "master", 3, 1),
    Scenario("delegated-broadcast-shadow-decryption", "member", 4, 1),
    Scenario("delegated-broadcast-shadow-decryption", "master", 3, 1),
    Scenario("presign", "member", 3, 1),
    Scenario("presign", "master", 3, 1),
    Scenario("refresh", "member", 3, 1),
    Scenario("refresh", "master", 3, 1),
    Scenario("delete", "member", 3, 1),
    Scenario("delete", "master", 3, 1),
    Scenario("tombstone-push", "master", 3, 1),
    # the slow sweep: other shapes (no spare node for ECDSA; t = 2)
    Scenario("generation", "member", 4, 2, slow=True),
    Scenario("store", "member", 4, 2, slow=True),
    Scenario("decryption", "member", 5, 2, slow=True),
    Scenario("shadow-decryption", "member", 5, 2, slow=True),
    Scenario("schnorr", "member", 4, 2, slow=True),
    Scenario("ecdsa", "member", 3, 1, slow=True),
    Scenario("ecdsa", "member", 5, 2, slow=True),
    Scenario("ecdsa", "member", 4, 1, slow=True, provocation="accusing"),
    Scenario("ecdsa", "member", 4, 1, slow=True, provocation="losing-a-link"),
)


@dataclass(frozen=True, eq=False)
class Baseline:
    """What the rogue sent in an honest run of a scenario."""

    order: tuple[NodeId, ...]
    session_id: SessionId
    sent: tuple[tuple[NodeId, object], ...]
    earlier: tuple[tuple[NodeId, object], ...]
    samples: dict[type, object] = field(hash=False)


@functools.cache
def baseline(scenario: Scenario) -> Baseline:
    world = scenario.build()
    sid = world.start_target()
    world.net.run()
    world.net.expire()
    verdict = judge(world, sid)  # the run without faults passes the oracle
    if not scenario.provocation:  # (a provoked run is the rogue's doing, judged all the same)
        assert verdict in ("completed", "rogue master"), f"{scenario.name}: the run {verdict}"
    sent = tuple(world.net.sent_by_rogue(sid))
    assert world.earlier_sid is not None
    earlier = tuple(world.net.sent_by_rogue(world.earlier_sid))
    if not scenario.kind.earlier_always:  # the target session runs alike without it
        alone = scenario.build(earlier=False)
        alone_sid = alone.start_target()
        alone.net.run()
        assert alone_sid == sid and tuple(alone.net.sent_by_rogue(sid)) == sent
    samples: dict[type, object] = {}
    for _, message in sent:
        for _path, _tp, value in mutate.walk(message, type(message)):
            if type(value) in codec.registered().values():
                samples.setdefault(type(value), value)
    return Baseline(tuple(world.net.order), sid, sent, earlier, samples)


@dataclass(frozen=True)
class Case:
    scenario: Scenario
    target: Target
    fault: mutate.Fault
    #: the message the fault is enumerated from (its first occurrence in the baseline)
    message_label: str
    slow: bool = False

    @property
    def session(self) -> str:
        return self.scenario.session

    @property
    def role(self) -> str:
        return self.scenario.role

    @property
    def id(self) -> str:
        to = "to-all" if self.target.receiver is None else f"to-{self.receiver_role}"
        return f"{self.scenario.name}|{self.message_label}|{to}|{self.fault.id}"

    @property
    def receiver_role(self) -> str:
        order = baseline(self.scenario).order
        assert self.target.receiver is not None
        index = order.index(self.target.receiver)
        return "master" if index == self.scenario.master else f"n{index}"

    def message_types(self) -> set[type]:
        """The message types this case has the rogue send (for the coverage check)."""
        for to, message in baseline(self.scenario).sent:
            if label(message) == self.message_label and self.target.receiver in (None, to):
                types = message_types(message)
                if self.fault.op.startswith(("refusal-", "error-")):
                    types.add(codec.registered()[0x0001])
                return types
        return set()


#: The whole-message faults of the quick tier, each standing for several alike: undecodable
#: bytes (all are dropped), the message dropped and the sender silent from there on, a
#: refusal (the other kinds are refusals too), a step taken early, the message twice, the
#: earlier session's message with the new session id and with its own.
QUICK_WHOLE = frozenset(
    {
        "truncated",
        "dropped",
        "silent",
        "refusal-GENERIC",
        "later-message",
        "duplicated",
        "earlier-session",
        "earlier-session-own-id",
    }
)


def shape(message: object) -> tuple[str, tuple[int, ...]]:
    """A message's kind without its nonce kind, and the length of every tuple in it: two
    messages of one shape take the same field faults the same way."""
    lengths = tuple(
        len(value) for _, tp, value in mutate.walk(message, type(message)) if mutate.var_item(tp)
    )
    return re.sub(r"\[[^]]*\]", "", label(message)), lengths


def quick(fault: mutate.Fault, first_receiver: bool, first_of_shape: bool) -> bool:
    """Whether a fault of a quick scenario may run in the quick tier: the whole-message
    faults that stand for the others (`QUICK_WHOLE`), and field faults, of the first message
    of each kind (and, for field faults, of each shape) to its first receiver. `all_cases`
    keeps one field fault of each kind per field of a message kind and role. The slow sweep
    runs the rest."""
    if not first_receiver:
        return False
    return fault.op in QUICK_WHOLE if not fault.path else first_of_shape


def cases_of(scenario: Scenario) -> list[Case]:
    base = baseline(scenario)
    out: list[Case] = []
    seen: set[tuple[str, NodeId]] = set()
    first_of_label: dict[str, int] = {}
    shapes: dict[tuple[str, tuple[int, ...]], str] = {}
    provoked = PROVOKED.get(scenario.provocation)
    for index, (to, message) in enumerate(base.sent):
        name = label(message)
        if provoked is not None and not isinstance(message, provoked):
            continue
        first_receiver = name not in first_of_label
        first_of_label.setdefault(name, index)
        first_of_shape = shapes.setdefault(shape(message), name) == name
        if (name, to) in seen:
            continue
        seen.add((name, to))
        earlier = [m for _, m in base.sent[:index]]
        for fault in mutate.faults_of(message, context(base, scenario, to, earlier, message)):
            slow = scenario.slow or not quick(fault, first_receiver, first_of_shape)
            case = Case(scenario, Target(name, to), fault, name, slow=slow)
            if not degenerate(case, base, message, earlier):
                out.append(case)
    if not scenario.slow:  # the same faults on every message of the kind, to everyone
        for name, index in first_of_label.items():
            to, message = base.sent[index]
            earlier = [m for _, m in base.sent[:index]]
            for fault in mutate.faults_of(message, context(base, scenario, to, earlier, message)):
                if fault.kind in (mutate.WRONG, mutate.MALFORMED) or fault.op == "silent":
                    case = Case(scenario, Target(name, None, every=True), fault, name, True)
                    if not degenerate(case, base, message, earlier):
                        out.append(case)
    return out


def degenerate(case: Case, base: Baseline, message: object, earlier: list[object]) -> bool:
    """A fault that leaves the message as it is (e.g. a replay of a message that holds only
    its session id, with the new id): no case."""
    if case.fault.kind not in (mutate.WRONG, mutate.REPLAY) or case.fault.op in mutate.BYTE_OPS:
        return False
    to = case.target.receiver
    if to is None:  # to everyone: the receiver of the first such message
        to = next(r for r, m in base.sent if label(m) == case.message_label)
    ctx = context(base, case.scenario, to, earlier, message, SeededRng(case.id.encode()))
    return mutate.apply(case.fault, message, ctx) == [message]


def context(
    base: Baseline,
    scenario: Scenario,
    to: NodeId,
    earlier: list[object],
    message: object,
    rng: SeededRng | None = None,
) -> mutate.Context:
    """The context the rogue's fault plan gives `message` in a run of `scenario`."""
    plan = FaultPlan(
        base.session_id,
        Target(label(message), to),
        mutate.Fault(mutate.DROP, (), "dropped"),
        base.order,
        rng or SeededRng(b"enumerate"),
        base.samples,
        base.earlier,
        scenario.kind.semantic,
    )
    return mutate.Context(
        nodes=base.order,
        receiver=to,
        session_id=base.session_id,
        rng=plan.rng,
        samples=base.samples,
        previous=previous_of(earlier, message),
        later=later_of(base.sent, label(message), to),
        last=last_of(base.sent, label(message), to),
        earlier=_replay_source(base, label(message), to),
        semantic=plan.semantic,
    )


@functools.cache
def _replay_source(base: Baseline, name: str, to: NodeId) -> object | None:
    return replay_source(base.earlier, name, to)


@functools.cache
@functools.cache
def all_cases() -> tuple[Case, ...]:
    """Every case of every scenario. Of the field faults `quick` lets into the quick tier,
    the first of each kind per top-level field of a message kind, in a role, stays there
    (the same message kind in another scenario of the role takes the same faults alike); the
    others go to the sweep."""
    out = []
    seen: set[tuple[str, str, object, str]] = set()
    for scenario in SCENARIOS:
        for case in cases_of(scenario):
            kept = case
            if not case.slow and case.fault.path:
                key = (case.role, case.message_label, case.fault.path[0], case.fault.kind)
                if key in seen:
                    kept = dataclasses.replace(case, slow=True)
                seen.add(key)
            out.append(kept)
    return tuple(out)


# --- documented limits ----------------------------------------------------------------------

#: Faults that get past the product by design, each with its documented reason
#: (docs/THREAT_MODEL.md, "Not covered"): their tests are strict expected failures, so one
#: that starts to pass (the limit is gone) fails the suite until it is taken off this list.
LIMITS: tuple[tuple[str, str, mutate.Path, frozenset[str], str], ...] = (
    (
        "-without-commitments",
        "DecryptionJobResponse",
        ("shadow_point",),
        frozenset({"plus-generator", "negated", "random", "earlier-session-value"}),
        "a key record without commitments (schema 1: imported from Parity, or written before "
        "records kept them) has no share publics, so a well-formed wrong shadow point cannot be "
        "checked and the result is a wrong document key until the key is refreshed",
    ),
    (
        "-without-commitments",
        "DecryptionJobResponse",
        (),
        frozenset({"earlier-session"}),
        "as above: a shadow point of another job, replayed with this session's id",
    ),
    (
        "shadow-decryption-without-commitments",
        "DecryptionJobResponse",
        ("decrypt_shadow",),
        frozenset(
            {
                "random-same-length",
                "bit-flipped",
                "earlier-session-value",
                "encrypted-to-the-requester-another-scalar",
            }
        ),
        "without commitments a shadow retrieval answer carries no proofs, so the requester "
        "cannot tell whose decrypt shadow is wrong: it gets a wrong key, or one that does not "
        "open (only the requester can open a decrypt shadow)",
    ),
)


def limit_of(case: Case) -> str | None:
    """Why a case gets past the product by design (LIMITS), or None."""
    for scenario, message, path, ops, why in LIMITS:
        if (
            scenario in case.session
            and case.message_label == message
            and case.fault.path == path
            and case.fault.op in ops
        ):
            return why
    return None


# --- running a case and judging it --------------------------------------------------------


@dataclass
class Verdict:
    case: Case
    outcome: str
    rounds: int


def run_case(case: Case) -> Verdict:
    scenario = case.scenario
    base = baseline(scenario)
    world = scenario.build(earlier=case.fault.kind == mutate.REPLAY)
    plan = FaultPlan(
        SessionId(b""),
        case.target,
        case.fault,
        base.order,
        SeededRng(case.id.encode()),
        base.samples,
        base.earlier,
        scenario.kind.semantic,
        baseline=base.sent,
    )
    world.net.plan = plan
    sid = world.start_target()
    world.net.run()
    rounds = world.net.expire()
    assert plan.applied, "the fault never applied: the run left the baseline's path"
    for sender, _, item in world.net.sent:
        if sender == world.rogue and isinstance(item, bytes):
            undecodable(item)
    return Verdict(case, judge(world, sid), rounds)


def undecodable(data: bytes) -> None:
    try:
        codec.decode(data)
    except MalformedMessage:
        return
    raise AssertionError("bytes meant not to decode decoded")


def names(error: BaseException, node: NodeId) -> bool:
    return short(node) in str(error)


def judge(world: World, sid: SessionId) -> str:
    """Check a finished run against the oracle; returns what the outcome was."""
    net = world.net
    kind = world.scenario.kind
    assert net.open_sessions() == 0, "sessions are left open after every timeout fired"
    verdict = "completed"
    finished = False
    if not world.rogue_is_master:
        outcome = net.nodes[world.master].results.get(sid)
        assert outcome is not None, "the honest master's session never ended"
        if isinstance(outcome, Finish):
            try:
                kind.check_result(world, outcome.result)
                kind.check_receipts(world, outcome)
            except RequesterRefused:  # the requester's check named the rogue
                verdict = "failed: the requester's check"
            finished = True
        else:
            error = outcome.error
            assert isinstance(error, DOCUMENTED), f"an undocumented error: {error!r}"
            assert names(error, world.rogue), f"the error does not name the rogue: {error}"
            verdict = f"failed: {type(error).__name__}"
    else:
        verdict = "rogue master"
    kind.check_storage(world, finished)
    failures = [
        (node, result.error)
        for node in world.honest
        for other_sid, result in net.nodes[node].results.items()
        if other_sid not in world.earlier_results[node] and isinstance(result, Fail)
    ]
    for node, error in failures:  # silence and faults are always attributed to a node
        assert isinstance(error, REFUSALS) or any(names(error, n) for n in net.order), (
            f"honest node {short(node)} failed naming no node: {error}"
        )
    if world.rogue_is_master:
        kind.check_released(world, sid)
        faults = [error for _, error in failures if not isinstance(error, REFUSALS)]
        assert not faults or any(names(error, world.rogue) for error in faults), (
            "no honest node's failure names the rogue master: "
            + "; ".join(str(error) for error in faults)
        )
    return verdict


# --- the count of cases -------------------------------------------------------------------


def counts(cases: Iterable[Case]) -> Counter[tuple[str, str, str]]:
    return Counter((case.session, case.role, case.fault.kind) for case in cases)


def table(cases: Iterable[Case]) -> str:
    """Cases by session, role and fault kind, as a text table."""
    tally = counts(cases)
    rows = sorted({(s, r) for s, r, _ in tally})
    width = max([len("session"), *(len(s) for s, _ in rows)]) + 2
    head = f"{'session':<{width}}{'role':<8}" + "".join(f"{k:>11}" for k in mutate.KINDS)
    head += f"{'total':>11}"
    lines = [head, "-" * len(head)]
    for session, role in rows:
        numbers = [tally[(session, role, kind)] for kind in mutate.KINDS]
        cells = "".join(f"{n:>11}" for n in numbers)
        lines.append(f"{session:<{width}}{role:<8}{cells}{sum(numbers):>11}")
    totals = [sum(v for (_, _, k), v in tally.items() if k == kind) for kind in mutate.KINDS]
    cells = "".join(f"{n:>11}" for n in totals)
    lines.append(f"{'all':<{width + 8}}{cells}{sum(totals):>11}")
    return "\n".join(lines)
