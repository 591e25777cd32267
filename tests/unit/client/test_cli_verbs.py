"""The command line as a whole (every verb's help, usage errors, --version) and the key
verbs against the stand-in key server, including one that lies about a signature."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from secretstore.cli import key_cmds
from secretstore.cli.main import VERBS
from secretstore.cli.main import main as secretstore_main
from secretstore.client.helpers import key_from_shadow
from secretstore.crypto.curve import Point, Scalar
from secretstore.crypto.document import decrypt_document_key
from secretstore.crypto.keys import KeyPair
from secretstore.crypto.rng import SeededRng

from .standin import StandIn

REQUESTER = KeyPair.generate(SeededRng(31))
KEY_ID = "0x" + "5e" * 32
HASH = "0x" + "42" * 32


@pytest.fixture
def secret_file(tmp_path: Path) -> Path:
    path = tmp_path / "requester.secret"
    path.write_text(REQUESTER.secret.to_bytes().hex())
    return path


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert secretstore_main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == "secretstore 0.1.0"
    node = subprocess.run(
        [sys.executable, "-m", "secretstore.cli.node", "--version"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert (node.returncode, node.stdout.strip()) == (0, "secretstore-node 0.1.0")


@pytest.mark.parametrize("verb", sorted(VERBS))
def test_every_verb_describes_itself_and_exits_2_on_bad_usage(
    verb: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as raised:
        code = secretstore_main([verb, "--help"])
        raise SystemExit(code)
    assert raised.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: secretstore ")
    description = out.split("\n\n")[1].strip()  # argparse: usage, blank line, description
    assert len(description) > 20 and not description.startswith(("options:", "positional"))
    with pytest.raises(SystemExit) as raised:
        code = secretstore_main([verb, "--no-such-option"])
        raise SystemExit(code)
    assert raised.value.code == 2
    assert "error:" in capsys.readouterr().err


@pytest.mark.parametrize("sub", ["new", "list", "import"])
def test_account_sub_verbs_describe_themselves(
    sub: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert secretstore_main(["account", sub, "--help"]) == 0
    description = capsys.readouterr().out.split("\n\n")[1].strip()
    assert len(description) > 20 and not description.startswith("options:")


def test_no_verb_and_an_unknown_verb_are_usage_errors(capsys: pytest.CaptureFixture[str]) -> None:
    assert secretstore_main([]) == 2
    assert secretstore_main(["frobnicate"]) == 2
    assert "unknown verb 'frobnicate'" in capsys.readouterr().err
    assert secretstore_main(["--help"]) == 0
    listing = capsys.readouterr().out
    assert all(f"  {verb} " in listing for verb in VERBS)


def run(stand_in: StandIn, secret_file: Path, verb: str, *args: str) -> int:
    argv = [verb, "--node", stand_in.url, "--key-id", KEY_ID, "--secret-file", str(secret_file)]
    return key_cmds.main([*argv, *args], rng=SeededRng(7))


def test_server_key_generate_and_retrieve(
    stand_in: StandIn, secret_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(stand_in, secret_file, "server-key-generate", "--threshold", "1") == 0
    public = capsys.readouterr().out.strip()
    assert Point.from_bytes(bytes.fromhex(public[2:])) == Point.base_mul(
        stand_in.server_keys[bytes.fromhex(KEY_ID[2:])]
    )
    assert run(stand_in, secret_file, "server-key-retrieve") == 0
    assert capsys.readouterr().out.strip() == public
    assert run(stand_in, secret_file, "server-key-generate", "--threshold", "1") == 1
    assert "already generated" in capsys.readouterr().err


def test_document_key_store_made_here_then_shadow_retrieval(
    stand_in: StandIn, secret_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(stand_in, secret_file, "server-key-generate", "--threshold", "1") == 0
    capsys.readouterr()
    assert run(stand_in, secret_file, "document-key-store") == 0
    generated = json.loads(capsys.readouterr().out)
    document_key = decrypt_document_key(
        REQUESTER.secret, bytes.fromhex(generated["encrypted_key"][2:])
    )
    assert run(stand_in, secret_file, "document-key-shadow") == 0
    shadow = json.loads(capsys.readouterr().out)
    again = key_from_shadow(
        REQUESTER,
        Point.from_bytes(bytes.fromhex(shadow["decrypted_secret"][2:])),
        Point.from_bytes(bytes.fromhex(shadow["common_point"][2:])),
        [bytes.fromhex(s[2:]) for s in shadow["decrypt_shadows"]],
    )
    assert again == document_key


def test_document_key_store_of_given_points(
    stand_in: StandIn, secret_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    common, encrypted = (Point.base_mul(Scalar(n)).to_bytes().hex() for n in (5, 6))
    args = ("--common-point", common, "--encrypted-point", encrypted)
    assert run(stand_in, secret_file, "document-key-store", *args) == 0
    assert stand_in.documents[bytes.fromhex(KEY_ID[2:])][0] == Point.base_mul(Scalar(5))
    assert run(stand_in, secret_file, "document-key-store", "--common-point", common) == 2
    assert "give both" in capsys.readouterr().err


def test_signatures_are_verified_before_they_are_printed(
    stand_in: StandIn, secret_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(stand_in, secret_file, "server-key-generate", "--threshold", "1") == 0
    public = capsys.readouterr().out.strip()
    stand_in.real_schnorr = True
    assert run(stand_in, secret_file, "sign-schnorr", "--hash", HASH) == 0
    out = capsys.readouterr().out
    assert f"verified: against the server key {public}" in out and out.startswith("c: 0x")
    assert run(stand_in, secret_file, "sign-ecdsa", "--hash", HASH) == 0
    out = capsys.readouterr().out
    assert out.startswith("signature: 0x") and f"recovers to the server key {public}" in out


def test_a_lying_node_s_signatures_are_refused(
    stand_in: StandIn, secret_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(stand_in, secret_file, "server-key-generate", "--threshold", "1") == 0
    capsys.readouterr()
    stand_in.ecdsa_key = Scalar(99)  # signs with a key that is not the server key
    assert run(stand_in, secret_file, "sign-ecdsa", "--hash", HASH) == 1
    captured = capsys.readouterr()
    assert captured.out == "" and "does not recover to the server key" in captured.err
    stand_in.real_schnorr = False  # c‖s that are not a signature
    assert run(stand_in, secret_file, "sign-schnorr", "--hash", HASH) == 1
    captured = capsys.readouterr()
    assert captured.out == "" and "does not verify against the server key" in captured.err


def test_a_missing_server_key_is_the_server_s_message(
    stand_in: StandIn, secret_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(stand_in, secret_file, "sign-ecdsa", "--hash", HASH) == 1
    assert "Server key with this ID is not found" in capsys.readouterr().err
    assert run(stand_in, secret_file, "sign-ecdsa", "--hash", "0x12") == 2
