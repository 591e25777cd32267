"""`python -m tests.sim.byzantine`: the count of the suite's cases by session, role and fault
kind, for the quick tier and the sweep."""

from __future__ import annotations

from tests.sim.byzantine.cases import all_cases, limit_of, table


def main() -> None:
    cases = all_cases()
    quick = [case for case in cases if not case.slow]
    sweep = [case for case in cases if case.slow]
    print(f"quick tier ({len(quick)} cases, `make check` and `make test`):")
    print(table(quick))
    print(f"\nthe sweep ({len(sweep)} cases more, `make byzantine`):")
    print(table(sweep))
    limits = [case for case in cases if limit_of(case)]
    print(f"\ndocumented limits (strict expected failures): {len(limits)} cases")


if __name__ == "__main__":
    main()
