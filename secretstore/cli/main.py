"""`secretstore`: the user's command line (keys, cluster, client verbs)."""

from __future__ import annotations

import argparse


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="secretstore", description=__doc__)
    parser.parse_args(argv)
    parser.print_help()
    return 0
