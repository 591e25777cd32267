"""`secretstore account new|list|import`: manage the accounts of a keystore directory."""

from __future__ import annotations

import argparse
import getpass
import sys
from collections.abc import Callable
from pathlib import Path

from secretstore.crypto.curve import Scalar
from secretstore.crypto.hashing import keccak256
from secretstore.crypto.rng import OsRng, Rng
from secretstore.encoding import parse_hex
from secretstore.errors import CryptoError, SecretStoreError
from secretstore.keystore import Keystore
from secretstore.types import Address


class UsageError(Exception):
    """A command-line argument that cannot be used (exit status 2)."""


def checksum_address(address: Address) -> str:
    """EIP-55 mixed-case hex of an address, with 0x."""
    lower = address.hex()
    digest = keccak256(lower.encode()).hex()
    mixed = (c.upper() if int(d, 16) >= 8 else c for c, d in zip(lower, digest[:40], strict=True))
    return "0x" + "".join(mixed)


def read_password_file(path: str) -> str:
    """The first line of a password file, without its line ending (Parity's convention)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read password file {path}: {exc}") from exc
    return text.splitlines()[0] if text else ""


def obtain_password(password_file: str | None, confirm: bool) -> str:
    """From --password-file, else an interactive prompt (asked twice when `confirm`)."""
    if password_file is not None:
        return read_password_file(password_file)
    if not sys.stdin.isatty():
        raise UsageError("no terminal to ask for a password: pass --password-file")
    password = getpass.getpass("Password: ")
    if confirm and getpass.getpass("Repeat password: ") != password:
        raise UsageError("the passwords do not match")
    return password


def read_secret_file(path: str) -> Scalar:
    """A secret from a file holding its hex (0x optional, surrounding whitespace ignored)."""
    try:
        text = Path(path).read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read secret file {path}: {exc}") from exc
    try:
        return Scalar.secret_from_bytes(parse_hex(text, 32, what="secret"))
    except CryptoError as exc:
        raise UsageError(f"{path}: not a 32-byte hex secret ({exc})") from exc


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
