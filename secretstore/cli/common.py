"""What the `secretstore` verbs share: exit statuses, the requester and node options, errors.

Exit status of every verb: 0 success; 1 the operation failed (the key server's answer, an
unreachable node, a cryptographic failure, a wrong password); 2 usage (bad or missing
arguments, unreadable input, secret or password files). Expected errors are one line on
stderr, `secretstore <verb>: <what went wrong>`, never a traceback.
"""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Final

from secretstore.crypto.curve import Scalar
from secretstore.crypto.keys import KeyPair
from secretstore.encoding import parse_hex
from secretstore.errors import CryptoError, InvalidEncoding, SecretStoreError

EXIT_OK: Final = 0
EXIT_FAILED: Final = 1
EXIT_USAGE: Final = 2


class UsageError(Exception):
    """A command-line argument that cannot be used (exit status 2)."""


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


def parser(verb: str, description: str, epilog: str | None = None) -> argparse.ArgumentParser:
    """A verb's parser (a usage error exits with status 2, as argparse does)."""
    return argparse.ArgumentParser(
        prog=f"secretstore {verb}",
        description=description,
        epilog=epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


def parse_args(parser: argparse.ArgumentParser, argv: list[str]) -> argparse.Namespace | int:
    """The parsed arguments, or the exit status argparse settled on (0 after --help, 2 for a
    usage error, which it has printed)."""
    try:
        return parser.parse_args(argv)
    except SystemExit as exit_:
        return int(exit_.code or 0)


def verb_of(argv: list[str], verbs: Sequence[str]) -> str | None:
    """argv[0] when it is one of `verbs`; else None, after saying which were expected."""
    if argv and argv[0] in verbs:
        return argv[0]
    print(f"secretstore: expected one of {', '.join(verbs)}", file=sys.stderr)
    return None


def expand(path: str) -> Path:
    """A path from the command line, with `~` expanded (also in `--opt=~/x`, which the shell
    leaves alone)."""
    return Path(path).expanduser()


def add_requester(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group(
        "requester", "the key that signs the key id: --secret-file, or a keystore account"
    )
    group.add_argument("--secret-file", help="file holding the requester's secret as hex")
    group.add_argument("--keystore", help="keystore directory of --account")
    group.add_argument("--account", help="address of the requester's keystore account")
    group.add_argument("--password-file", help="file whose first line is the account password")


def add_node(parser: argparse.ArgumentParser, key_id_required: bool = True) -> None:
    parser.add_argument(
        "--node",
        default="http://127.0.0.1:8082",
        help="a key server's HTTP API base URL (default http://127.0.0.1:8082)",
    )
    parser.add_argument("--key-id", required=key_id_required, help="the 32-byte server key id, hex")


def hex_argument(text: str, length: int, what: str) -> bytes:
    try:
        return parse_hex(text.strip(), length, what=what)
    except InvalidEncoding as exc:
        raise UsageError(str(exc)) from exc


def requester(args: argparse.Namespace) -> KeyPair:
    """The requester's key pair from --secret-file or --keystore/--account."""
    if args.secret_file is not None:
        if args.keystore is not None or args.account is not None:
            raise UsageError("give --secret-file or --keystore/--account, not both")
        return KeyPair.from_secret(read_secret_file(str(expand(args.secret_file))))
    if args.keystore is None or args.account is None:
        raise UsageError("a requester is needed: --secret-file, or --keystore and --account")
    from secretstore.keystore import Keystore

    address = hex_argument(args.account, 20, "--account")
    password_file = str(expand(args.password_file)) if args.password_file else None
    password = obtain_password(password_file, confirm=False)
    return Keystore(expand(args.keystore)).unlock(address, password)


def run(verb: str, action: Callable[[], int]) -> int:
    """Run a verb's action; expected errors become one line on stderr and an exit status."""
    try:
        return action()
    except UsageError as exc:
        print(f"secretstore {verb}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except BrokenPipeError:  # the reader went away (e.g. `| head`): stop quietly
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_FAILED
    except (SecretStoreError, OSError) as exc:
        print(f"secretstore {verb}: error: {_text(exc)}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print(f"secretstore {verb}: interrupted", file=sys.stderr)
        return 130


def _text(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        where = f"{exc.filename}: " if exc.filename else ""
        return f"{where}{exc.strerror.lower()}"
    return str(exc) or type(exc).__name__
