"""A directory of Ethereum v3 keystore files (geth/Parity format): list, unlock, create, import."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

from secretstore.crypto.curve import Scalar
from secretstore.crypto.keys import KeyPair
from secretstore.crypto.rng import Rng, random_scalar
from secretstore.encoding import parse_hex
from secretstore.errors import (
    CryptoError,
    InvalidEncoding,
    KeystoreError,
    UnknownAccount,
    WrongPassword,
)
from secretstore.ethaccount import Account
from secretstore.filemodes import PRIVATE_FILE_MODE, make_private_dir
from secretstore.types import Address

logger = logging.getLogger(__name__)

KdfName = Literal["scrypt", "pbkdf2"]

# geth's file name: UTC--<ISO 8601 time with '-' for ':' and nanoseconds>--<address hex>
_NAME_ADDRESS = re.compile(r"--([0-9a-fA-F]{40})(?:\.json)?$")


def parse_address(address: str | bytes) -> Address:
    """A 20-byte address from bytes or hex (0x optional, any case). Raises InvalidEncoding."""
    if isinstance(address, bytes):
        if len(address) != 20:
            raise InvalidEncoding(f"an address is 20 bytes, got {len(address)}")
        return Address(address)
    return Address(parse_hex(address.strip(), 20, what="address"))


def keystore_file_name(address: Address, now_ns: int | None = None) -> str:
    """geth's name for a new key file: UTC--2006-01-02T15-04-05.000000000Z--<address>."""
    ns = time.time_ns() if now_ns is None else now_ns
    seconds, nanos = divmod(ns, 1_000_000_000)
    stamp = time.strftime("%Y-%m-%dT%H-%M-%S", time.gmtime(seconds))
    return f"UTC--{stamp}.{nanos:09d}Z--{address.hex()}"


class Keystore:
    """Ethereum v3 key files in one directory. Passwords and secrets are never logged.

    `kdf`/`iterations` set how new files are encrypted (default: eth-account's scrypt,
    n = 262144, as geth and Parity); reading accepts whatever the file says.
    """

    def __init__(
        self, directory: Path, *, kdf: KdfName = "scrypt", iterations: int | None = None
    ) -> None:
        self.directory = Path(directory).expanduser()
        self._kdf: KdfName = kdf
        self._iterations = iterations

    # --- reading --------------------------------------------------------------------------
    def addresses(self) -> list[Address]:
        """The accounts with a key file here, sorted, each once."""
        return sorted({address for address, _, _ in self._key_files()})

    def has_account(self, address: str | bytes) -> bool:
        wanted = parse_address(address)
        return any(a == wanted for a, _, _ in self._key_files())

    def unlock(self, address: str | bytes, password: str) -> KeyPair:
        """The key pair of an account. Raises UnknownAccount, WrongPassword or KeystoreError."""
        wanted = parse_address(address)
        candidates = [(path, doc) for a, path, doc in self._key_files() if a == wanted]
        if not candidates:
            raise UnknownAccount(
                f"no key file for account 0x{wanted.hex()} in {self.directory}"
                + self.hint_for(wanted)
            )
        wrong_password = False
        for path, doc in candidates:
            try:
                pair = _decrypt(doc, password, path)
            except WrongPassword:
                wrong_password = True
                continue
            if pair.address != wanted:
                raise KeystoreError(f"{path.name}: the key inside does not match its address")
            return pair
        if wrong_password:
            raise WrongPassword(f"the password does not unlock account 0x{wanted.hex()}")
        raise KeystoreError(f"no readable key file for account 0x{wanted.hex()}")

    def subdirectories_with(self, address: str | bytes) -> list[Path]:
        """Directories below this one (two levels deep) that hold a key file of `address`:
        Parity keeps one keystore per chain, e.g. `keys/ethereum/`."""
        wanted = parse_address(address)
        found: list[Path] = []
        if not self.directory.is_dir():
            return found
        for child in sorted(self.directory.iterdir()):
            if not child.is_dir() or child.name.startswith("."):
                continue
            for directory in (child, *sorted(p for p in child.iterdir() if p.is_dir())):
                if Keystore(directory).has_account(wanted):
                    found.append(directory)
        return found

    def hint_for(self, address: str | bytes) -> str:
        """ "; it is in …" when a subdirectory holds the account, else ""."""
        found = self.subdirectories_with(address)
        if not found:
            return ""
        return (
            f"; a key file for it is in {found[0]} (a Parity keystore has a directory per "
            "chain, e.g. keys/ethereum): use that directory as the keystore"
        )

    # --- writing --------------------------------------------------------------------------
    def create(self, password: str, rng: Rng) -> Address:
        """A new account with a random key, written to a new file; returns its address."""
        return self.import_secret(random_scalar(rng), password)

    def import_secret(self, secret: Scalar, password: str) -> Address:
        """Encrypt an existing secret into a new key file; returns its address."""
        pair = KeyPair.from_secret(secret)
        self._refuse_existing(pair.address)
        try:
            doc: dict[str, Any] = Account.encrypt(
                secret.to_bytes(), password, kdf=self._kdf, iterations=self._iterations
            )
        except (ValueError, TypeError) as exc:
            raise KeystoreError(f"cannot encrypt the key: {type(exc).__name__}") from None
        doc["address"] = pair.address.hex()
        self._write_new(pair.address, doc)
        return pair.address

    def import_file(self, path: Path, password: str) -> Address:
        """Copy a v3 key file from elsewhere after checking `password` unlocks it."""
        source = Path(path)
        doc = _read_json(source)
        if doc is None:
            raise KeystoreError(f"{source}: missing, unreadable or not a v3 keystore file")
        pair = _decrypt(doc, password, source)
        stated = _stated_address(doc)
        if stated is not None and stated != pair.address:
            raise KeystoreError(f"{source.name}: the key inside does not match its address")
        self._refuse_existing(pair.address)
        doc = dict(doc)
        doc["address"] = pair.address.hex()
        self._write_new(pair.address, doc)
        return pair.address

    # --- internals ------------------------------------------------------------------------
    def _key_files(self) -> Iterator[tuple[Address, Path, dict[str, Any]]]:
        if not self.directory.is_dir():
            return
        for path in sorted(self.directory.iterdir()):
            if not path.is_file() or path.name.startswith("."):
                continue
            doc = _read_json(path)
            if doc is None:
                continue
            address = _stated_address(doc)
            if address is None:
                match = _NAME_ADDRESS.search(path.name)
                if match is None:
                    logger.debug("skipping %s: no address in the file or its name", path.name)
                    continue
                address = Address(bytes.fromhex(match.group(1)))
            yield address, path, doc

    def _refuse_existing(self, address: Address) -> None:
        if self.has_account(address):
            raise KeystoreError(f"account 0x{address.hex()} already has a key file here")

    def _write_new(self, address: Address, doc: dict[str, Any]) -> Path:
        """Write atomically (temp file, fsync, link into place) with mode 0600."""
        make_private_dir(self.directory)
        target = self.directory / keystore_file_name(address)
        data = json.dumps(doc, separators=(",", ":")).encode()
        fd, tmp_name = tempfile.mkstemp(prefix=".tmp-", dir=self.directory)
        tmp = Path(tmp_name)
        try:
            os.fchmod(fd, PRIVATE_FILE_MODE)
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.link(tmp, target)  # fails rather than overwrite an existing file
        except OSError as exc:
            raise KeystoreError(f"cannot write key file in {self.directory}: {exc}") from None
        finally:
            with contextlib.suppress(OSError):
                tmp.unlink()
        _fsync_directory(self.directory)
        logger.info("wrote key file %s", target.name)
        return target


def _read_json(path: Path) -> dict[str, Any] | None:
    """A v3 key file's JSON object, or None when the file is something else."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    if not isinstance(doc, dict):
        return None
    crypto = doc.get("crypto", doc.get("Crypto"))
    if doc.get("version") != 3 or not isinstance(crypto, dict):
        return None
    return doc


def _stated_address(doc: dict[str, Any]) -> Address | None:
    raw = doc.get("address")
    if not isinstance(raw, str):
        return None
    try:
        return parse_address(raw)
    except InvalidEncoding:
        return None


def _decrypt(doc: dict[str, Any], password: str, path: Path) -> KeyPair:
    try:
        raw = bytes(Account.decrypt(doc, password))
    except ValueError as exc:
        if "MAC mismatch" in str(exc):
            raise WrongPassword("the password does not unlock this key file") from None
        raise KeystoreError(f"{path.name}: unreadable key file") from None
    except (KeyError, TypeError, NotImplementedError, AttributeError):
        raise KeystoreError(f"{path.name}: unreadable key file") from None
    try:
        return KeyPair.from_secret(Scalar.secret_from_bytes(raw))
    except CryptoError:
        raise KeystoreError(f"{path.name}: the key inside is not a valid secret") from None


def _fsync_directory(directory: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
