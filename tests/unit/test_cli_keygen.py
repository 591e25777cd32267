"""`secretstore keygen`: a fresh, consistent key pair in plain or JSON form."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from secretstore.cli import keygen
from secretstore.cli.main import main as dispatch
from secretstore.config.loader import parse_config
from secretstore.crypto.curve import Scalar
from secretstore.crypto.keys import KeyPair
from secretstore.crypto.rng import SeededRng


def check_consistent(secret_hex: str, public_hex: str, address_hex: str) -> KeyPair:
    pair = KeyPair.from_secret(Scalar.secret_from_bytes(bytes.fromhex(secret_hex)))
    assert pair.node_id.hex() == public_hex
    assert pair.address.hex() == address_hex
    assert len(bytes.fromhex(public_hex)) == 64
    return pair


def test_plain_output(capsys: pytest.CaptureFixture[str]) -> None:
    assert keygen.main([]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(":")[0] for line in lines] == ["secret", "public", "address"]
    values = [line.split()[1] for line in lines]
    assert not any(value.startswith("0x") for value in values)
    check_consistent(*values)


def test_json_output(capsys: pytest.CaptureFixture[str]) -> None:
    assert keygen.main(["--json"]) == 0
    fields = json.loads(capsys.readouterr().out)
    assert set(fields) == {"secret", "public", "address"}
    assert all(value.startswith("0x") for value in fields.values())
    check_consistent(fields["secret"][2:], fields["public"][2:], fields["address"][2:])


def test_each_run_gives_a_new_key(capsys: pytest.CaptureFixture[str]) -> None:
    keygen.main(["--json"])
    first = json.loads(capsys.readouterr().out)
    keygen.main(["--json"])
    second = json.loads(capsys.readouterr().out)
    assert first["secret"] != second["secret"]


def test_injected_rng_is_used(capsys: pytest.CaptureFixture[str]) -> None:
    keygen.main(["--json"], rng=SeededRng(5))
    fields = json.loads(capsys.readouterr().out)
    assert fields["public"] == "0x" + KeyPair.generate(SeededRng(5)).node_id.hex()


def test_through_the_dispatcher(capsys: pytest.CaptureFixture[str]) -> None:
    assert dispatch(["keygen", "--json"]) == 0
    assert set(json.loads(capsys.readouterr().out)) == {"secret", "public", "address"}


def test_help_and_bad_option(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        keygen.main(["--help"])
    assert info.value.code == 0
    assert "self_secret" in capsys.readouterr().out
    with pytest.raises(SystemExit) as info:
        keygen.main(["--yaml"])
    assert info.value.code == 2


def test_output_pastes_into_a_config(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    keygen.main([])
    values = {line.split(":")[0]: line.split()[1] for line in capsys.readouterr().out.splitlines()}
    text = (
        "[secretstore]\n"
        f'self_secret = "{values["secret"]}"\n'
        f'nodes = ["{values["public"]}@127.0.0.1:8083"]\n'
    )
    store = parse_config(text, tmp_path).secretstore
    assert store.key_pair.node_id.hex() == values["public"]
    assert len(store.nodes) == 1


def test_keygen_writes_no_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # The key pair only goes to standard output: no key file is left on disk to protect.
    monkeypatch.chdir(tmp_path)
    assert keygen.main([]) == 0
    assert keygen.main(["--json"]) == 0
    assert list(tmp_path.iterdir()) == []
    assert "secret" in capsys.readouterr().out
