"""The user's verbs: account, encrypt, decrypt, sign-hash, servers-set-hash, rpc (arguments)."""

from __future__ import annotations

import io
import os
import stat
from pathlib import Path

import pytest

from secretstore.cli import account, client_cmds, key_cmds, rpc
from secretstore.cli.main import main as secretstore_main
from secretstore.client import docfile
from secretstore.crypto.curve import Scalar
from secretstore.crypto.keys import KeyPair
from secretstore.crypto.rng import SeededRng
from secretstore.keystore import Keystore
from secretstore.types import Address

from . import only
from .standin import StandIn

REQUESTER = KeyPair.generate(SeededRng(21))
KEY_ID = "0x" + "ab" * 32


def cheap_keystore(path: Path) -> Keystore:
    return Keystore(path, kdf="pbkdf2", iterations=2)


@pytest.fixture
def secret_file(tmp_path: Path) -> Path:
    path = tmp_path / "requester.secret"
    path.write_text(REQUESTER.secret.to_bytes().hex() + "\n")
    return path


@pytest.fixture
def password_file(tmp_path: Path) -> Path:
    path = tmp_path / "password"
    path.write_text("pw\nignored second line\n")
    return path


# --- servers-set-hash and sign-hash --------------------------------------------------------


def test_servers_set_hash(capsys: pytest.CaptureFixture[str]) -> None:
    vector = only("servers_set_hash")
    assert secretstore_main(["servers-set-hash", *vector["node_ids"]]) == 0
    assert capsys.readouterr().out.strip() == "0x" + vector["hash"]


@pytest.mark.parametrize("argv", [["servers-set-hash"], ["servers-set-hash", "0x1234"], []])
def test_servers_set_hash_usage(argv: list[str]) -> None:
    assert client_cmds.main(argv) == 2


def test_sign_hash_with_secret_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    vector = only("sign_raw_hash")
    secret = tmp_path / "dev.secret"
    secret.write_text("0x" + vector["secret"])
    argv = ["sign-hash", "--hash", vector["hash"], "--secret-file", str(secret)]
    assert client_cmds.main(argv) == 0
    assert capsys.readouterr().out.strip() == "0x" + vector["signature"]


def test_sign_hash_with_keystore_account(
    tmp_path: Path, password_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    address = cheap_keystore(tmp_path / "keys").import_secret(REQUESTER.secret, "pw")
    argv = [
        "sign-hash",
        "--hash",
        "11" * 32,
        "--keystore",
        str(tmp_path / "keys"),
        "--account",
        "0x" + address.hex(),
    ]
    assert client_cmds.main([*argv, "--password-file", str(password_file)]) == 0
    assert len(capsys.readouterr().out.strip()) == 2 + 130
    wrong = tmp_path / "wrong"
    wrong.write_text("nope")
    assert client_cmds.main([*argv, "--password-file", str(wrong)]) == 1
    assert "password" in capsys.readouterr().err


def test_sign_hash_usage_errors(secret_file: Path, tmp_path: Path) -> None:
    assert client_cmds.main(["sign-hash", "--hash", "11" * 32]) == 2
    both = ["--secret-file", str(secret_file), "--keystore", str(tmp_path), "--account", "0x00"]
    assert client_cmds.main(["sign-hash", "--hash", "11" * 32, *both]) == 2
    assert client_cmds.main(["sign-hash", "--hash", "11", "--secret-file", str(secret_file)]) == 2
    missing = ["--secret-file", str(tmp_path / "none")]
    assert client_cmds.main(["sign-hash", "--hash", "11" * 32, *missing]) == 2
    assert client_cmds.main(["sign-hash", "--help"]) == 0


# --- encrypt and decrypt against the stand-in ----------------------------------------------


def test_encrypt_then_decrypt_files(stand_in: StandIn, tmp_path: Path, secret_file: Path) -> None:
    document = SeededRng(22).random_bytes(200_000)
    (tmp_path / "plain").write_bytes(document)
    common = ["--node", stand_in.url, "--secret-file", str(secret_file)]
    encrypt = ["encrypt", *common, "--key-id", KEY_ID, "--threshold", "1"]
    assert (
        client_cmds.main(
            [*encrypt, "--in", str(tmp_path / "plain"), "--out", str(tmp_path / "enc")]
        )
        == 0
    )
    written = (tmp_path / "enc").read_bytes()
    assert len(written) == docfile.HEADER_LENGTH + len(document) + 16 + docfile.TAG_LENGTH
    assert written.startswith(docfile.MAGIC + bytes.fromhex(KEY_ID[2:]))
    for flag in ("--shadow", "--no-shadow"):
        out = tmp_path / f"dec{flag}"
        decrypt = ["decrypt", *common, flag, "--in", str(tmp_path / "enc"), "--out", str(out)]
        assert client_cmds.main(decrypt) == 0  # the key id comes from the file
        assert out.read_bytes() == document
    assert stand_in.seen[-1][1].startswith("/ab")  # --no-shadow: the plain document key path
    assert stand_in.seen[-2][1].startswith("/shadow/ab")


def test_the_middle_of_a_written_file_is_parity_s_encrypted_document(
    stand_in: StandIn, tmp_path: Path, secret_file: Path
) -> None:
    (tmp_path / "plain").write_bytes(b"mySecretDocument")
    common = ["--node", stand_in.url, "--key-id", KEY_ID, "--secret-file", str(secret_file)]
    argv = ["encrypt", *common, "--threshold", "1", "--in", str(tmp_path / "plain")]
    assert client_cmds.main([*argv, "--out", str(tmp_path / "enc")]) == 0
    body = (tmp_path / "enc").read_bytes()[docfile.HEADER_LENGTH : -docfile.TAG_LENGTH]
    (tmp_path / "bare").write_bytes(body)
    decrypt = ["decrypt", *common, "--raw", "--in", str(tmp_path / "bare")]
    assert client_cmds.main([*decrypt, "--out", str(tmp_path / "out")]) == 0
    assert (tmp_path / "out").read_bytes() == b"mySecretDocument"


def test_raw_encrypt_writes_parity_s_bare_document(
    stand_in: StandIn, tmp_path: Path, secret_file: Path
) -> None:
    (tmp_path / "plain").write_bytes(b"x" * 1000)
    common = ["--node", stand_in.url, "--key-id", KEY_ID, "--secret-file", str(secret_file)]
    argv = ["encrypt", *common, "--threshold", "1", "--raw", "--in", str(tmp_path / "plain")]
    assert client_cmds.main([*argv, "--out", str(tmp_path / "enc")]) == 0
    assert len((tmp_path / "enc").read_bytes()) == 1000 + 16
    no_key_id = ["decrypt", "--node", stand_in.url, "--secret-file", str(secret_file), "--raw"]
    assert client_cmds.main([*no_key_id, "--in", str(tmp_path / "enc"), "--out", "-"]) == 2


def _encrypted(
    stand_in: StandIn, tmp_path: Path, secret_file: Path, key_id: str, data: bytes
) -> Path:
    source, target = tmp_path / f"plain-{key_id[-4:]}", tmp_path / f"enc-{key_id[-4:]}"
    source.write_bytes(data)
    argv = ["encrypt", "--node", stand_in.url, "--key-id", key_id, "--threshold", "1"]
    argv += ["--secret-file", str(secret_file), "--in", str(source), "--out", str(target)]
    assert client_cmds.main(argv) == 0
    return target


def _decrypt(stand_in: StandIn, secret_file: Path, source: Path, out: Path, *extra: str) -> int:
    argv = ["decrypt", "--node", stand_in.url, "--secret-file", str(secret_file), *extra]
    return client_cmds.main([*argv, "--in", str(source), "--out", str(out)])


def test_decrypt_with_the_wrong_key_fails_clearly_and_writes_nothing(
    stand_in: StandIn, tmp_path: Path, secret_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    other_id = "0x" + "cd" * 32
    first = _encrypted(stand_in, tmp_path, secret_file, KEY_ID, b"first document" * 100)
    second = _encrypted(stand_in, tmp_path, secret_file, other_id, b"second document" * 100)
    capsys.readouterr()
    # The first file claiming the second's key id: the cluster returns that key, not this one.
    forged = bytearray(first.read_bytes())
    forged[8:40] = bytes.fromhex(other_id[2:])
    (tmp_path / "forged").write_bytes(forged)
    out = tmp_path / "out"
    assert _decrypt(stand_in, secret_file, tmp_path / "forged", out) == 1
    error = capsys.readouterr().err
    assert "is not the key of this file" in error and "nothing was written" in error
    assert not out.exists() and list(tmp_path.glob(".out*")) == []
    # A --key-id that is not the file's is refused before the cluster is asked.
    asked = len(stand_in.seen)
    assert _decrypt(stand_in, secret_file, second, out, "--key-id", KEY_ID) == 2
    assert "was encrypted under key id 0x" + "cd" * 32 in capsys.readouterr().err
    assert len(stand_in.seen) == asked and not out.exists()


@pytest.mark.parametrize("damage", ["flip", "truncate", "extend"])
def test_a_damaged_file_fails_authentication_and_writes_nothing(
    stand_in: StandIn,
    tmp_path: Path,
    secret_file: Path,
    capsys: pytest.CaptureFixture[str],
    damage: str,
) -> None:
    good = _encrypted(stand_in, tmp_path, secret_file, KEY_ID, SeededRng(5).random_bytes(5000))
    data = bytearray(good.read_bytes())
    if damage == "flip":
        data[docfile.HEADER_LENGTH + 100] ^= 0x01
    elif damage == "truncate":
        del data[-1]
    else:
        data += b"\x00"
    (tmp_path / "bad").write_bytes(data)
    capsys.readouterr()
    for out in (tmp_path / "out", "-"):
        assert _decrypt(stand_in, secret_file, tmp_path / "bad", Path(out)) == 1
        captured = capsys.readouterr()
        assert "does not authenticate" in captured.err
        assert captured.out == ""  # not a byte of plaintext, not even to stdout
    assert not (tmp_path / "out").exists()


def test_decrypt_refuses_a_file_not_written_by_encrypt(
    stand_in: StandIn, tmp_path: Path, secret_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "enc").write_bytes(bytes(40))
    assert _decrypt(stand_in, secret_file, tmp_path / "enc", tmp_path / "out") == 2
    assert "use --raw" in capsys.readouterr().err
    assert stand_in.seen == [] and not (tmp_path / "out").exists()


def test_encrypt_checks_its_output_before_asking_for_a_key(
    stand_in: StandIn, tmp_path: Path, secret_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "plain").write_bytes(b"data")
    base = ["encrypt", "--node", stand_in.url, "--key-id", KEY_ID, "--threshold", "0"]
    base += ["--secret-file", str(secret_file), "--in", str(tmp_path / "plain")]
    for out in (tmp_path / "no" / "such" / "dir" / "x", tmp_path, tmp_path / "plain"):
        assert client_cmds.main([*base, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "cannot write" in err and "is the input file" in err
    assert stand_in.seen == []  # no server key was made
    assert (tmp_path / "plain").read_bytes() == b"data"


def test_encrypt_of_missing_input_asks_the_cluster_nothing(
    stand_in: StandIn, tmp_path: Path, secret_file: Path
) -> None:
    argv = [
        "encrypt",
        *("--node", stand_in.url, "--key-id", KEY_ID, "--threshold", "0"),
        *("--secret-file", str(secret_file)),
        *("--in", str(tmp_path / "missing"), "--out", str(tmp_path / "out")),
    ]
    assert client_cmds.main(argv) == 2
    assert stand_in.seen == []


def test_decrypt_with_unknown_key_fails_with_the_server_message(
    stand_in: StandIn, tmp_path: Path, secret_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "enc").write_bytes(bytes(40))
    argv = [
        "decrypt",
        *("--node", stand_in.url, "--key-id", KEY_ID, "--secret-file", str(secret_file)),
        *("--raw", "--in", str(tmp_path / "enc"), "--out", str(tmp_path / "out")),
    ]
    assert client_cmds.main(argv) == 1
    assert "Server key with this ID is not found" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_an_unreachable_node_is_one_clear_line(
    tmp_path: Path, secret_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.e2e.cluster import free_ports

    [port] = free_ports(1)
    argv = ["sign-schnorr", "--node", f"http://127.0.0.1:{port}", "--key-id", KEY_ID]
    assert key_cmds.main([*argv, "--hash", "11" * 32, "--secret-file", str(secret_file)]) == 1
    err = capsys.readouterr().err.strip()
    assert err == (
        f"secretstore sign-schnorr: error: key server http://127.0.0.1:{port} unreachable: "
        f"cannot connect to 127.0.0.1:{port} (connection refused)"
    )
    assert secretstore_main(["admin", "status", "--node", f"http://127.0.0.1:{port}"]) == 1
    assert capsys.readouterr().err.strip() == (
        f"secretstore admin: cannot read http://127.0.0.1:{port}/health: "
        f"cannot connect to 127.0.0.1:{port} (connection refused)"
    )


def test_progress_bar_only_on_a_terminal() -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    assert client_cmds._progress_bar(io.StringIO()) is None
    terminal = Terminal()
    show = client_cmds._progress_bar(terminal)
    assert show is not None
    show(50, 100)
    show(100, 100)
    assert "100%" in terminal.getvalue() and terminal.getvalue().endswith("\n")


# --- account -------------------------------------------------------------------------------


def test_checksum_address_eip55_examples() -> None:
    for text in (
        "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed",
        "0xdbF03B407c01E7cD3CBea99509d93f8DDDC8C6FB",
    ):
        assert account.checksum_address(Address(bytes.fromhex(text[2:]))) == text


def test_account_new_list_import(
    tmp_path: Path, password_file: Path, secret_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    keys = ["--keystore", str(tmp_path / "keys"), "--password-file", str(password_file)]

    def run(*argv: str) -> str:
        assert account.main(list(argv), SeededRng(23), cheap_keystore) == 0
        return capsys.readouterr().out.strip()

    created = run("new", *keys)
    imported = run("import", *keys, "--secret-file", str(secret_file))
    assert imported == account.checksum_address(REQUESTER.address)
    listed = run("list", "--keystore", str(tmp_path / "keys")).splitlines()
    assert sorted(listed) == sorted([created, imported])
    unlocked = Keystore(tmp_path / "keys").unlock(created, "pw")
    assert account.checksum_address(unlocked.address) == created
    # A v3 file from another keystore, unlocked by its own password.
    other = cheap_keystore(tmp_path / "other")
    pair = KeyPair.from_secret(Scalar(12345))
    other.import_secret(pair.secret, "pw")
    (v3_file,) = (tmp_path / "other").iterdir()
    assert run("import", *keys, str(v3_file)) == account.checksum_address(pair.address)


def test_account_files_are_private_whatever_the_umask(
    tmp_path: Path, password_file: Path, secret_file: Path
) -> None:
    directory = tmp_path / "keys"
    keys = ["--keystore", str(directory), "--password-file", str(password_file)]
    previous = os.umask(0)
    try:
        assert account.main(["new", *keys], SeededRng(24), cheap_keystore) == 0
        imported = ["import", *keys, "--secret-file", str(secret_file)]
        assert account.main(imported, None, cheap_keystore) == 0
    finally:
        os.umask(previous)
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    files = list(directory.iterdir())
    assert len(files) == 2
    assert {stat.S_IMODE(f.stat().st_mode) for f in files} == {0o600}


def test_account_errors(
    tmp_path: Path, password_file: Path, secret_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    keys = ["--keystore", str(tmp_path / "keys"), "--password-file", str(password_file)]
    assert (
        account.main(["import", *keys, "--secret-file", str(secret_file)], None, cheap_keystore)
        == 0
    )
    again = account.main(["import", *keys, "--secret-file", str(secret_file)], None, cheap_keystore)
    assert again == 1 and "already" in capsys.readouterr().err
    assert account.main(["new", "--keystore", str(tmp_path / "k2")], None, cheap_keystore) == 2
    assert account.main(["bogus"]) == 2
    assert account.main(["import", *keys]) == 2


# --- rpc (arguments only; the server runs in tests/integration/client) ---------------------


def test_rpc_arguments(tmp_path: Path) -> None:
    assert rpc.interface_host("local") == "127.0.0.1"
    assert rpc.interface_host("all") == "0.0.0.0"
    assert rpc.interface_host("10.0.0.5") == "10.0.0.5"
    assert rpc.main(["--keystore", str(tmp_path / "missing")]) == 2
    assert rpc.main(["--keystore", str(tmp_path), "--port", "70000"]) == 2
    assert rpc.main([]) == 2
