"""The v3 keystore: eth-account interop, the Web3 Secret Storage vectors, files and errors."""

from __future__ import annotations

import json
import logging
import re
import stat
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from hypothesis import given
from hypothesis import strategies as st

from secretstore.crypto.curve import Scalar
from secretstore.crypto.keys import KeyPair
from secretstore.crypto.rng import SeededRng
from secretstore.errors import InvalidEncoding, KeystoreError, UnknownAccount, WrongPassword
from secretstore.keystore import Keystore, keystore_file_name, parse_address

# Web3 Secret Storage Definition, "Test Vectors" (ethereum/wiki, Web3-Secret-Storage-Definition):
# password "testpassword", secret 7a28…fe9d, address 008aeeda4d805471df9b2a5b0f38a0c3bcba786b.
VECTOR_PASSWORD = "testpassword"
VECTOR_SECRET = "7a28b5ba57c53603b0b07b56bba752f7784bf506fa95edc395f5cf6c7514fe9d"
VECTOR_ADDRESS = "008aeeda4d805471df9b2a5b0f38a0c3bcba786b"
VECTOR_PBKDF2: dict[str, Any] = {
    "crypto": {
        "cipher": "aes-128-ctr",
        "cipherparams": {"iv": "6087dab2f9fdbbfaddc31a909735c1e6"},
        "ciphertext": "5318b4d5bcd28de64ee5559e671353e16f075ecae9f99c7a79a38af5f869aa46",
        "kdf": "pbkdf2",
        "kdfparams": {
            "c": 262144,
            "dklen": 32,
            "prf": "hmac-sha256",
            "salt": "ae3cd4e7013836a3df6bd7241b12db061dbe2c6785853cce422d148a624ce0bd",
        },
        "mac": "517ead924a9d0dc3124507e3393d175ce3ff7c1e96529c6c555ce9e51205e9b2",
    },
    "id": "3198bc9c-6672-5ab3-d995-4942343ae5b6",
    "version": 3,
}
VECTOR_SCRYPT: dict[str, Any] = {
    "crypto": {
        "cipher": "aes-128-ctr",
        "cipherparams": {"iv": "83dbcc02d8ccb40e466191a123791e0e"},
        "ciphertext": "d172bf743a674da9cdad04534d56926ef8358534d458fffccd4e6ad2fbde479c",
        "kdf": "scrypt",
        "kdfparams": {
            "dklen": 32,
            "n": 262144,
            "p": 8,
            "r": 1,
            "salt": "ab0c7876052600dd703518d6fc3fe8984592145b591fc8fb5c6d43190334ba19",
        },
        "mac": "2103ac29920d71da29f15d75b4a16dbe95cfd7ff8faea1056c33131d846e3097",
    },
    "id": "3198bc9c-6672-5ab3-d995-4942343ae5b6",
    "version": 3,
}
GETH_NAME = re.compile(r"^UTC--\d{4}-\d\d-\d\dT\d\d-\d\d-\d\d\.\d{9}Z--[0-9a-f]{40}$")
PAIR = KeyPair.generate(SeededRng(7))


def fast_keystore(directory: Path) -> Keystore:
    return Keystore(directory, kdf="scrypt", iterations=2**10)


def key_files(directory: Path) -> list[Path]:
    return sorted(p for p in directory.iterdir() if p.is_file())


# --- test vectors ---------------------------------------------------------------------------


@pytest.mark.parametrize("vector", [VECTOR_PBKDF2, VECTOR_SCRYPT], ids=["pbkdf2", "scrypt"])
def test_web3_secret_storage_vector(vector: dict[str, Any], tmp_path: Path) -> None:
    source = tmp_path / "3198bc9c-6672-5ab3-d995-4942343ae5b6.json"
    source.write_text(json.dumps(vector))
    keystore = Keystore(tmp_path / "keys")
    address = keystore.import_file(source, VECTOR_PASSWORD)
    assert address.hex() == VECTOR_ADDRESS
    assert keystore.addresses() == [address]
    pair = keystore.unlock(VECTOR_ADDRESS, VECTOR_PASSWORD)
    assert pair.secret.to_bytes().hex() == VECTOR_SECRET
    # the copy keeps the original encryption, with the address added
    (copy,) = key_files(tmp_path / "keys")
    stored = json.loads(copy.read_text())
    assert stored["crypto"] == vector["crypto"]
    assert stored["address"] == VECTOR_ADDRESS


def test_vector_with_wrong_password(tmp_path: Path) -> None:
    source = tmp_path / "v.json"
    source.write_text(json.dumps(VECTOR_PBKDF2))
    with pytest.raises(WrongPassword):
        Keystore(tmp_path / "keys").import_file(source, "testpassworD")
    assert not (tmp_path / "keys").exists()


# --- eth-account interop --------------------------------------------------------------------


def test_file_written_by_eth_account_is_read(tmp_path: Path) -> None:
    doc = Account.encrypt(PAIR.secret.to_bytes(), "pw", kdf="pbkdf2", iterations=1000)
    name = keystore_file_name(PAIR.address)
    (tmp_path / name).write_text(json.dumps(doc))
    keystore = Keystore(tmp_path)
    assert keystore.addresses() == [PAIR.address]
    assert keystore.unlock(PAIR.address, "pw") == PAIR


def test_file_we_write_is_read_by_eth_account(tmp_path: Path) -> None:
    keystore = fast_keystore(tmp_path)
    address = keystore.import_secret(PAIR.secret, "pw")
    (path,) = key_files(tmp_path)
    raw = Account.decrypt(json.loads(path.read_text()), "pw")
    assert bytes(raw) == PAIR.secret.to_bytes()
    assert address == PAIR.address


def test_address_only_in_the_file_name(tmp_path: Path) -> None:
    doc = Account.encrypt(PAIR.secret.to_bytes(), "pw", kdf="pbkdf2", iterations=1000)
    del doc["address"]
    (tmp_path / keystore_file_name(PAIR.address)).write_text(json.dumps(doc))
    assert Keystore(tmp_path).addresses() == [PAIR.address]
    assert Keystore(tmp_path).unlock(PAIR.address, "pw") == PAIR


def test_key_not_matching_its_address(tmp_path: Path) -> None:
    doc = Account.encrypt(PAIR.secret.to_bytes(), "pw", kdf="pbkdf2", iterations=1000)
    other = KeyPair.generate(SeededRng(8)).address
    doc["address"] = other.hex()
    (tmp_path / "key.json").write_text(json.dumps(doc))
    with pytest.raises(KeystoreError, match="does not match"):
        Keystore(tmp_path).unlock(other, "pw")


# --- create, import, files ------------------------------------------------------------------


def test_create_then_unlock(tmp_path: Path) -> None:
    keystore = fast_keystore(tmp_path / "keys")
    address = keystore.create("secret words", SeededRng(11))
    assert keystore.addresses() == [address]
    pair = keystore.unlock(address, "secret words")
    assert pair.address == address
    assert pair.public == KeyPair.from_secret(pair.secret).public


def test_created_keys_differ(tmp_path: Path) -> None:
    keystore = fast_keystore(tmp_path)
    first = keystore.create("pw", SeededRng(1))
    second = keystore.create("pw", SeededRng(2))
    assert first != second
    assert keystore.addresses() == sorted([first, second])


def test_files_are_private_geth_named_and_atomic(tmp_path: Path) -> None:
    directory = tmp_path / "keys"
    address = fast_keystore(directory).import_secret(PAIR.secret, "pw")
    (path,) = list(directory.iterdir())  # no temporary file is left behind
    assert GETH_NAME.match(path.name), path.name
    assert path.name.endswith(address.hex())
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    doc = json.loads(path.read_text())
    assert doc["version"] == 3
    assert doc["address"] == address.hex()
    assert PAIR.secret.to_bytes().hex() not in path.read_text()


def test_import_twice_is_refused(tmp_path: Path) -> None:
    keystore = fast_keystore(tmp_path)
    keystore.import_secret(PAIR.secret, "pw")
    with pytest.raises(KeystoreError, match="already"):
        keystore.import_secret(PAIR.secret, "other")
    assert len(key_files(tmp_path)) == 1


def test_import_file_that_is_not_a_keystore(tmp_path: Path) -> None:
    source = tmp_path / "notes.txt"
    source.write_text("hello")
    with pytest.raises(KeystoreError, match="not a v3 keystore file"):
        fast_keystore(tmp_path / "keys").import_file(source, "pw")
    with pytest.raises(KeystoreError):
        fast_keystore(tmp_path / "keys").import_file(tmp_path / "missing.json", "pw")


def test_other_files_are_ignored(tmp_path: Path) -> None:
    keystore = fast_keystore(tmp_path)
    address = keystore.import_secret(PAIR.secret, "pw")
    (tmp_path / "README").write_text("not a key")
    (tmp_path / "broken.json").write_text("{")
    (tmp_path / "list.json").write_text("[1, 2]")
    (tmp_path / "v2.json").write_text(json.dumps({"version": 2, "crypto": {}}))
    (tmp_path / "subdir").mkdir()
    assert keystore.addresses() == [address]


def test_unreadable_crypto_is_a_keystore_error(tmp_path: Path) -> None:
    doc = Account.encrypt(PAIR.secret.to_bytes(), "pw", kdf="pbkdf2", iterations=1000)
    doc["crypto"]["kdf"] = "argon2"
    (tmp_path / "key.json").write_text(json.dumps(doc))
    with pytest.raises(KeystoreError) as info:
        Keystore(tmp_path).unlock(PAIR.address, "pw")
    assert not isinstance(info.value, WrongPassword)


def test_missing_directory_has_no_accounts(tmp_path: Path) -> None:
    keystore = Keystore(tmp_path / "absent")
    assert keystore.addresses() == []
    with pytest.raises(UnknownAccount):
        keystore.unlock(PAIR.address, "pw")


# --- unlock errors and address forms --------------------------------------------------------


def test_wrong_password(tmp_path: Path) -> None:
    keystore = fast_keystore(tmp_path)
    keystore.import_secret(PAIR.secret, "right")
    with pytest.raises(WrongPassword):
        keystore.unlock(PAIR.address, "wrong")


def test_unknown_account(tmp_path: Path) -> None:
    fast_keystore(tmp_path).import_secret(PAIR.secret, "pw")
    with pytest.raises(UnknownAccount):
        fast_keystore(tmp_path).unlock(KeyPair.generate(SeededRng(9)).address, "pw")


def test_address_forms(tmp_path: Path) -> None:
    keystore = fast_keystore(tmp_path)
    keystore.import_secret(PAIR.secret, "pw")
    checksummed = Account.from_key(PAIR.secret.to_bytes()).address
    for form in (checksummed, checksummed[2:], checksummed.lower(), "0X" + PAIR.address.hex()):
        assert keystore.unlock(form, "pw") == PAIR
    assert keystore.unlock(bytes(PAIR.address), "pw") == PAIR
    assert keystore.has_account(checksummed.upper()[2:])


@given(text=st.text(max_size=50))
def test_parse_address_raises_only_invalid_encoding(text: str) -> None:
    try:
        address = parse_address(text)
    except InvalidEncoding:
        return
    assert len(address) == 20


def test_parse_address_rejects_bytes_of_wrong_length() -> None:
    with pytest.raises(InvalidEncoding):
        parse_address(b"\x01" * 19)


# --- nothing secret in logs -----------------------------------------------------------------


def test_passwords_and_secrets_are_not_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    keystore = fast_keystore(tmp_path)
    secret = Scalar.secret_from_bytes(bytes.fromhex(VECTOR_SECRET))
    address = keystore.import_secret(secret, "hunter2-password")
    keystore.unlock(address, "hunter2-password")
    with pytest.raises(WrongPassword) as info:
        keystore.unlock(address, "bad-password-123")
    text = caplog.text + str(info.value)
    assert "hunter2" not in text and "bad-password" not in text
    assert VECTOR_SECRET not in text
    assert caplog.records, "the write itself is logged (by file name)"


def test_importing_the_keystore_leaves_the_recursion_limit_low() -> None:
    import subprocess
    import sys

    code = (
        "import sys; before = sys.getrecursionlimit(); import secretstore.keystore; "
        "import eth_account; print(before, sys.getrecursionlimit())"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    before, after = map(int, out.stdout.split())
    assert after == before < 10_000


def test_a_tilde_in_the_directory_is_the_home_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    address = fast_keystore(tmp_path / "keys").import_secret(PAIR.secret, "pw")
    keystore = Keystore(Path("~/keys"))
    assert keystore.directory == tmp_path / "keys"
    assert keystore.unlock(address, "pw") == PAIR


def test_an_account_in_a_chain_subdirectory_is_pointed_out(tmp_path: Path) -> None:
    address = fast_keystore(tmp_path / "keys" / "ethereum").import_secret(PAIR.secret, "pw")
    keystore = Keystore(tmp_path / "keys")
    assert keystore.subdirectories_with(address) == [tmp_path / "keys" / "ethereum"]
    with pytest.raises(UnknownAccount) as raised:
        keystore.unlock(address, "pw")
    assert f"a key file for it is in {tmp_path / 'keys' / 'ethereum'}" in str(raised.value)
    assert "use that directory as the keystore" in str(raised.value)
    other = KeyPair.generate(SeededRng(8)).address
    with pytest.raises(UnknownAccount) as raised:
        keystore.unlock(other, "pw")
    assert "is in" not in str(raised.value)  # no hint without a match
