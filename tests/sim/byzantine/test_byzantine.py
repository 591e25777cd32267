"""The Byzantine suite: one dishonest node, every message of every session, every fault.

Each case is one fault (tests/sim/byzantine/mutate.py) in one message the rogue sends in one
scenario (tests/sim/byzantine/scenarios.py), judged by the oracle (cases.judge). Test ids say
`scenario|message|receiver|fault kind:field:fault`. The quick tier runs in `make check`; the
sweep (more shapes, the remaining refusal kinds and undecodable forms, field faults of every
message of each kind to every receiver at once) is marked slow. `python -m
tests.sim.byzantine` prints the count of cases by session, role and fault kind.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections import defaultdict

import pytest

import secretstore.wire
from secretstore.sessions.registry import MASTERS
from secretstore.wire import codec
from tests.sim.byzantine import mutate
from tests.sim.byzantine.cases import SCENARIOS, Case, all_cases, limit_of, run_case
from tests.sim.byzantine.scenarios import KINDS

for _module in pkgutil.iter_modules(secretstore.wire.__path__):
    importlib.import_module(f"secretstore.wire.{_module.name}")

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


@pytest.mark.slow
@pytest.mark.parametrize("case", params(SWEEP))
def test_one_dishonest_node_sweep(case: Case) -> None:
    run_case(case)


# --- what the cases cover -----------------------------------------------------------------


def test_every_message_type_of_the_codec_is_sent_by_a_rogue_in_the_quick_tier() -> None:
    covered: set[type] = set()
    for case in QUICK:
        covered |= case.message_types()
    missing = sorted(cls.__name__ for cls in set(codec.registered().values()) - covered)
    assert not missing, f"message types no case makes a rogue send: {missing}"


def test_every_session_the_key_server_starts_has_scenarios_in_both_roles() -> None:
    kinds = {KINDS[s.session].request_type for s in SCENARIOS if not s.slow}
    missing = sorted(cls.__name__ for cls in set(MASTERS) - kinds)
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
    kinds: dict[tuple[str, str], set[str]] = defaultdict(set)
    for case in QUICK:
        kinds[(case.scenario.name, case.message_label)].add(case.fault.kind)
    short = {key: sorted(set(mutate.KINDS) - found) for key, found in kinds.items()}
    assert not {key: v for key, v in short.items() if v}, short
