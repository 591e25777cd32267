"""The Byzantine suite: one dishonest node, every message of every session, every fault.

Each case is one fault (tests/sim/byzantine/mutate.py) in one message the rogue sends in one
scenario (tests/sim/byzantine/scenarios.py), judged by the oracle (cases.judge). Test ids say
`scenario|message|receiver|fault kind:field:fault`. The quick tier runs in `make check`; the
sweep (more shapes, the remaining refusal kinds and undecodable forms, field faults of every
message of each kind to every receiver at once) is marked `sweep` and runs apart, in `make
byzantine` (neither `make test` nor `make check` runs it). `python -m tests.sim.byzantine`
prints the count of cases by session, role and fault kind.
"""

from __future__ import annotations

import dataclasses
import importlib
import pkgutil
from collections import defaultdict

import pytest

import secretstore.wire
from secretstore.sessions.admin.authority import ConfiguredAdmin
from secretstore.sessions.admin.factories import admin_tables
from secretstore.sessions.admin.node_set_change import AdminSettings
from secretstore.sessions.registry import MASTERS
from secretstore.storage.memory import MemoryKeyStorage
from secretstore.wire import codec
from tests.sim.byzantine import mutate, network
from tests.sim.byzantine.cases import SCENARIOS, Case, all_cases, baseline, limit_of, run_case
from tests.sim.byzantine.scenarios import KEPT_KEY, KEY, KINDS, Scenario

#: the key lifecycle's scenarios (refresh, delete, tombstone push)
LIFECYCLE = ("refresh", "delete", "tombstone-push")

for _module in pkgutil.iter_modules(secretstore.wire.__path__):
    importlib.import_module(f"secretstore.wire.{_module.name}")

#: The product's message types: those secretstore.wire registers (tests register their own too)
PRODUCT_TYPES = {
    code: cls
    for code, cls in codec.registered().items()
    if cls.__module__.startswith("secretstore.")
}

QUICK = [case for case in all_cases() if not case.slow]
SWEEP = [case for case in all_cases() if case.slow]


def params(cases: list[Case]) -> list[object]:
    out = []
    for case in cases:
        why = limit_of(case)
        marks = [pytest.mark.xfail(strict=True, reason=why)] if why else []
        out.append(pytest.param(case, id=case.id, marks=marks))
    return out


@pytest.mark.parametrize("case", params(QUICK))
def test_one_dishonest_node(case: Case) -> None:
    run_case(case)


@pytest.mark.sweep
@pytest.mark.parametrize("case", params(SWEEP))
def test_one_dishonest_node_sweep(case: Case) -> None:
    run_case(case)


# --- what the cases cover -----------------------------------------------------------------


#: Registered message types this suite has no scenario for yet, by code range (none now:
#: every session's messages have one). The registry check below names any uncovered type
#: outside these ranges, and a type in them once a scenario covers it (the list must then
#: shrink).
NOT_YET_COVERED: tuple[range, ...] = ()


def _not_yet_covered(code: int) -> bool:
    return any(code in codes for codes in NOT_YET_COVERED)


def test_every_message_type_of_the_codec_is_sent_by_a_rogue_in_the_quick_tier() -> None:
    """The registry (every `@message` of secretstore.wire) is the list to cover: a type no
    scenario's honest run makes the rogue send has no case, and is named here."""
    covered: set[type] = set()
    for case in QUICK:
        covered |= case.message_types()
    stale = sorted(
        f"{cls.__name__} (0x{code:04x})"
        for code, cls in PRODUCT_TYPES.items()
        if cls in covered and _not_yet_covered(code)
    )
    assert not stale, f"covered now, take them out of NOT_YET_COVERED: {stale}"
    missing = sorted(
        f"{cls.__name__} (0x{code:04x})"
        for code, cls in PRODUCT_TYPES.items()
        if cls not in covered and not _not_yet_covered(code)
    )
    assert not missing, (
        f"message types no case makes a rogue send: {missing}; give them a scenario "
        "(tests/sim/byzantine/scenarios.py) whose honest run has the rogue send them"
    )


def test_the_mutator_has_faults_for_every_field_type_of_every_registered_message() -> None:
    """A message type gets its field faults from its fields' declared types: a type the
    mutator does not know would leave the field without faults, so it is named here."""
    unknown = {
        cls.__name__: sorted(found)
        for cls in PRODUCT_TYPES.values()
        if (found := mutate.unknown_types(cls))
    }
    assert not unknown, f"field types without faults (tests/sim/byzantine/mutate.py): {unknown}"

    @dataclasses.dataclass(frozen=True)
    class Odd:
        ratio: float
        items: tuple[complex, ...]

    assert mutate.unknown_types(Odd) == {repr(float), repr(complex)}


def test_every_session_the_key_server_starts_has_scenarios_in_both_roles() -> None:
    kinds = {KINDS[s.session].request_type for s in SCENARIOS if not s.slow}
    admin = AdminSettings(ConfiguredAdmin(None), MemoryKeyStorage(), frozenset)
    starts = set(MASTERS) | set(admin_tables(admin)[0])
    missing = sorted(cls.__name__ for cls in starts - kinds)
    assert not missing, f"requests without a scenario: {missing}"
    roles = defaultdict(set)
    for scenario in SCENARIOS:
        roles[scenario.kind.request_type].add(scenario.role)
    # a server key retrieval's slaves are the key version negotiation's: its master role
    # is the negotiation's (the same messages)
    assert all(
        r == {"member", "master"} for t, r in roles.items() if t.__name__ != "RetrieveServerKey"
    )


def test_every_message_of_every_scenario_meets_every_fault_kind_in_the_quick_tier() -> None:
    """Every fault kind for every message of every quick scenario; a replay only where the
    scenario's earlier session sent a message of the kind (a change that moved nothing
    before has no subshare to replay), and then some other quick scenario replays it."""
    kinds: dict[tuple[str, str], set[str]] = defaultdict(set)
    scenarios = {}
    for case in QUICK:
        kinds[(case.scenario.name, case.message_label)].add(case.fault.kind)
        scenarios[case.scenario.name] = case.scenario
    replayed = {label for (_, label), found in kinds.items() if mutate.REPLAY in found}
    short: dict[tuple[str, str], list[str]] = {}
    for (name, label), found in kinds.items():
        missing = set(mutate.KINDS) - found
        earlier = {network.label(m) for _, m in baseline(scenarios[name]).earlier}
        if label not in earlier and label in replayed:
            missing.discard(mutate.REPLAY)
        if missing:
            short[(name, label)] = sorted(missing)
    assert not short, short


@pytest.mark.parametrize(
    "scenario",
    [s for s in SCENARIOS if s.role == "master" and s.session in LIFECYCLE],
    ids=lambda s: s.name,
)
def test_the_lifecycle_sessions_of_a_rogue_master_do_their_work_in_an_honest_run(
    scenario: Scenario,
) -> None:
    """With a rogue master the oracle judges only what honest nodes keep; its honest run must
    still do the work: every honest node on one new version of the refreshed key (its old
    one erased), or the deleted key gone from every honest node with the author's tombstone;
    the key nobody deleted stays."""
    world = scenario.build()
    world.start_target()
    world.net.run()
    world.net.expire()
    for node in world.honest:
        share = world.share(node)
        if scenario.session == "refresh":
            before = world.before[node]
            assert share is not None and before is not None and len(share.versions) == 1
            assert share.last_version().hash not in {v.hash for v in before.versions}
        else:
            assert share is None, f"{scenario.name}: the key is left on an honest node"
            assert world.net.nodes[node].storage.tombstone(KEY) is not None
            assert world.share(node, KEPT_KEY) is not None
