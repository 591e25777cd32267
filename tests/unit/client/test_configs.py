"""`secretstore configs`: the configs it writes load, agree on the node set, and close with
the cluster policy block: shadow retrieval only unless told otherwise, and the policy options
given with --option, the same on every node."""

from __future__ import annotations

from pathlib import Path

import pytest

from secretstore.cli import configs
from secretstore.config.loader import load_config
from secretstore.config.model import ContractFromRegistry
from secretstore.crypto.rng import SeededRng


def write(out: Path, *options: str, args: tuple[str, ...] = ()) -> list[str]:
    """Configs for 3 nodes with these --option values and other arguments."""
    argv = ["--out", str(out), "--nodes", "3", "--host", "127.0.0.1", *args]
    argv += [item for option in options for item in ("--option", option)]
    assert configs.main(argv, rng=SeededRng(5)) == 0
    return [(out / f"node{i}" / "node.toml").read_text() for i in (1, 2, 3)]


def policy_block(text: str) -> list[str]:
    header, note = configs.POLICY_HEADER
    block = text.split(header + "\n", 1)[1].splitlines()
    assert block[0] == note
    return block[1:]


def test_written_configs_refuse_plain_retrieval_by_default(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    texts = write(tmp_path)
    assert {tuple(policy_block(t)) for t in texts} == {("require_shadow_retrieval = true",)}
    stores = [load_config(tmp_path / f"node{i}" / "node.toml").secretstore for i in (1, 2, 3)]
    assert all(s.require_shadow_retrieval and not s.require_bound_requests for s in stores)
    assert len({tuple(s.nodes) for s in stores}) == 1


def test_policy_options_join_the_policy_block_and_may_replace_the_default(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    texts = write(
        tmp_path,
        "require_bound_requests=true",
        "session_timeout = 60",
        "require_shadow_retrieval = false",
    )
    for text in texts:
        assert policy_block(text) == [
            "require_shadow_retrieval = false",
            "require_bound_requests = true",
        ]
        before = text.split(configs.POLICY_HEADER[0])[0].splitlines()
        assert "session_timeout = 60" in before  # a per-node option: before the block
    store = load_config(tmp_path / "node2" / "node.toml").secretstore
    assert store.require_bound_requests and not store.require_shadow_retrieval


def test_an_option_the_command_writes_itself_is_a_usage_error_and_nothing_is_written(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["--out", str(tmp_path / "d"), "--nodes", "2", "--option", "port=1"]
    assert configs.main(argv, rng=SeededRng(5)) == 2
    assert capsys.readouterr().err.startswith(
        "secretstore configs: --option port: `secretstore configs` writes it itself"
    )
    assert not (tmp_path / "d" / "node1" / "node.toml").exists()


def test_configs_for_a_chain_read_everything_through_the_registry(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    registry = "0x" + "ab" * 20
    write(tmp_path, args=("--chain-rpc", "http://10.0.0.9:8545", "--registry", registry))
    out = capsys.readouterr().out
    assert f"chain http://10.0.0.9:8545, registry {registry}" in out
    store = load_config(tmp_path / "node1" / "node.toml").secretstore
    assert isinstance(store.acl_contract, ContractFromRegistry)
    assert isinstance(store.server_set_contract, ContractFromRegistry)
    assert store.chain_rpc_url == "http://10.0.0.9:8545"
    assert store.registry_address is not None and store.registry_address.hex() == "ab" * 20


@pytest.mark.parametrize(
    ("extra", "complaint"),
    [
        (["--registry", "0x" + "ab" * 20], "--registry and --deploy-dev-contracts need"),
        (["--deploy-dev-contracts"], "--registry and --deploy-dev-contracts need"),
        (["--chain-rpc", "http://127.0.0.1:8545"], "needs --registry ADDRESS or"),
        (["--chain-rpc", "127.0.0.1:8545", "--registry", "0x" + "ab" * 20], "http(s):// URL"),
        (["--chain-rpc", "http://x", "--registry", "0x12"], "registry_address"),
        (["--option", 'acl_contract="registry"'], "--option acl_contract: "),
    ],
)
def test_chain_arguments_that_do_not_fit_are_usage_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str], complaint: str
) -> None:
    argv = ["--out", str(tmp_path / "d"), "--nodes", "2", *extra]
    assert configs.main(argv, rng=SeededRng(5)) == 2
    assert complaint in capsys.readouterr().err
    assert not (tmp_path / "d" / "node1" / "node.toml").exists()


def test_dev_contracts_need_ip_addresses_and_a_chain_that_answers(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["--out", str(tmp_path / "d"), "--hosts", "ks1.example.org,ks2.example.org"]
    argv += ["--chain-rpc", "http://127.0.0.1:9", "--deploy-dev-contracts"]
    assert configs.main(argv, rng=SeededRng(5)) == 2
    assert "lists IP addresses only, not 'ks1.example.org'" in capsys.readouterr().err
