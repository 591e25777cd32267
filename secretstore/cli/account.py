"""`secretstore account new|list|import`: manage the accounts of a keystore directory."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

from secretstore.cli.common import UsageError, obtain_password, read_secret_file
from secretstore.crypto.hashing import keccak256
from secretstore.crypto.rng import OsRng, Rng
from secretstore.errors import SecretStoreError
from secretstore.keystore import Keystore
from secretstore.types import Address

__all__ = ["UsageError", "checksum_address", "main", "obtain_password", "read_secret_file"]


def checksum_address(address: Address) -> str:
    """EIP-55 mixed-case hex of an address, with 0x."""
    lower = address.hex()
    digest = keccak256(lower.encode()).hex()
    mixed = (c.upper() if int(d, 16) >= 8 else c for c, d in zip(lower, digest[:40], strict=True))
    return "0x" + "".join(mixed)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="secretstore account",
        description="Manage the Ethereum v3 key files of a keystore directory.",
    )
    verbs = parser.add_subparsers(dest="verb", required=True)
    texts = {
        "new": "Create an account with a random key (asks for its password twice, or reads "
        "--password-file); prints its address.",
        "list": "Print the checksummed addresses of the accounts in the keystore directory.",
        "import": "Add an existing key to the keystore: a raw secret (--secret-file) or a v3 "
        "key file from elsewhere, which its password must unlock; prints its address.",
    }
    new, listing, imported = (
        verbs.add_parser(name, help=text.split(" (")[0].split(";")[0], description=text)
        for name, text in texts.items()
    )
    for sub in (new, listing, imported):
        sub.add_argument("--keystore", required=True, help="the keystore directory")
    for sub in (new, imported):
        sub.add_argument("--password-file", help="file whose first line is the password")
    source = imported.add_mutually_exclusive_group(required=True)
    source.add_argument("--secret-file", help="file holding the secret as hex")
    source.add_argument("key_file", nargs="?", help="a v3 key file (its password unlocks it)")
    return parser


def main(
    argv: list[str],
    rng: Rng | None = None,
    open_keystore: Callable[[Path], Keystore] = Keystore,
) -> int:
    """`open_keystore` lets tests choose a cheaper KDF than the default scrypt."""
    try:
        args = _parser().parse_args(argv)
    except SystemExit as exit_:
        return int(exit_.code or 0)
    keystore = open_keystore(Path(args.keystore).expanduser())
    try:
        if args.verb == "list":
            for address in keystore.addresses():
                print(checksum_address(address))
            return 0
        if args.verb == "new":
            password = obtain_password(args.password_file, confirm=True)
            address = keystore.create(password, rng if rng is not None else OsRng())
        elif args.secret_file is not None:
            secret = read_secret_file(args.secret_file)
            password = obtain_password(args.password_file, confirm=True)
            address = keystore.import_secret(secret, password)
        else:
            password = obtain_password(args.password_file, confirm=False)
            address = keystore.import_file(Path(args.key_file), password)
    except UsageError as exc:
        print(f"secretstore account: {exc}", file=sys.stderr)
        return 2
    except SecretStoreError as exc:
        print(f"secretstore account: {exc}", file=sys.stderr)
        return 1
    print(checksum_address(address))
    return 0
