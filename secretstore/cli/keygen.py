"""`secretstore keygen`: print a new node key pair (secret, public = node id, address)."""

from __future__ import annotations

import argparse
import json
import sys

from secretstore.crypto.keys import KeyPair
from secretstore.crypto.rng import OsRng, Rng
from secretstore.encoding import to_hex

_EPILOG = """\
The secret goes into the node's config as [secretstore] self_secret; the public key is the
node id other nodes list as "<public>@<host>:<port>" in [secretstore] nodes. Plain output
prints hex without 0x (as Parity's ethkey does, ready to paste into a config); --json prints
0x-prefixed hex. Keep the secret private: anyone holding it can act as this node.
"""


def key_pair_fields(pair: KeyPair) -> dict[str, str]:
    """The three values keygen prints, 0x-prefixed."""
    return {
        "secret": to_hex(pair.secret.to_bytes()),
        "public": to_hex(pair.node_id),
        "address": to_hex(pair.address),
    }


def main(argv: list[str], rng: Rng | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="secretstore keygen",
        description="Print a new node key pair from the operating system's randomness.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--json", action="store_true", help='print {"secret", "public", "address"} as JSON'
    )
    args = parser.parse_args(argv)
    fields = key_pair_fields(KeyPair.generate(rng if rng is not None else OsRng()))
    if args.json:
        print(json.dumps(fields, indent=2))
    else:
        for name, value in fields.items():
            print(f"{name + ':':<9}{value[2:]}")
    sys.stdout.flush()
    return 0
