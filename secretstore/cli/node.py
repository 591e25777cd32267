"""`secretstore-node`: run one key-server node from a TOML config."""

from __future__ import annotations

import argparse


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="secretstore-node", description=__doc__)
    parser.add_argument("--config", required=True, help="path of the node's TOML config")
    parser.parse_args(argv)
    parser.print_help()
    return 0
