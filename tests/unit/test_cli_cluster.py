"""`secretstore cluster`: the configs it writes load as node configs, and a rerun keeps keys."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from secretstore.cli import cluster
from secretstore.cli.cluster import (
    check_ports,
    prepare_cluster,
    render_config,
    summary,
    table,
)
from secretstore.config.loader import load_config, parse_config
from secretstore.config.model import NodeAddress
from secretstore.crypto.keys import KeyPair
from secretstore.crypto.rng import SeededRng
from secretstore.errors import ConfigError


def _prepare(directory: Path, count: int = 3, seed: int = 1, base: int = 12000, http: int = 8082):
    return prepare_cluster(directory, count, base, http, SeededRng(seed))


def test_every_config_loads_as_a_runnable_node_of_the_cluster(tmp_path: Path) -> None:
    prepared = _prepare(tmp_path, count=4)
    assert prepared.actions == ("new",) * 4
    ids = {node.node_id for node in prepared.nodes}
    assert len(ids) == 4
    for index, node in enumerate(prepared.nodes, start=1):
        assert node.config_path == tmp_path / f"node{index}" / "node.toml"
        config = load_config(node.config_path)
        store = config.secretstore
        assert store.key_pair == node.key
        assert store.node_ids() == ids
        assert {(n.host, n.port) for n in store.nodes} == {
            ("127.0.0.1", 12000 + i) for i in range(4)
        }
        assert store.port == 12000 + index - 1
        assert store.http_port == 8082 + index - 1
        assert store.interface == "127.0.0.1"
        assert store.http_interface == "127.0.0.1"
        assert store.path == (tmp_path / f"node{index}" / "db").resolve()
        assert not store.uses_chain  # acl_contract and server_set_contract "none"
        assert not store.disable and not store.disable_http
        assert store.require_shadow_retrieval  # the example cluster turns the policy on


def test_configs_are_private_and_the_summary_holds_no_secret(tmp_path: Path) -> None:
    prepared = _prepare(tmp_path)
    for node in prepared.nodes:
        mode = stat.S_IMODE(node.config_path.stat().st_mode)
        assert mode == 0o600
        assert stat.S_IMODE(node.config_path.parent.stat().st_mode) == 0o700
    text = (tmp_path / "cluster.json").read_text()
    data = json.loads(text)
    assert [n["node_id"] for n in data["nodes"]] == ["0x" + n.node_id.hex() for n in prepared.nodes]
    assert [n["http"] for n in data["nodes"]] == [
        "http://127.0.0.1:8082",
        "http://127.0.0.1:8083",
        "http://127.0.0.1:8084",
    ]
    for node in prepared.nodes:
        assert node.key.secret.to_bytes().hex() not in text
        assert node.key.secret.to_bytes().hex() not in table(prepared.nodes)
    assert summary(prepared.nodes) == data


def test_a_rerun_keeps_keys_and_configs(tmp_path: Path) -> None:
    first = _prepare(tmp_path, seed=1)
    before = {n.config_path: n.config_path.read_bytes() for n in first.nodes}
    second = _prepare(tmp_path, seed=2)  # another rng: new keys would differ
    assert second.actions == ("kept",) * 3
    assert [n.key for n in second.nodes] == [n.key for n in first.nodes]
    assert {n.config_path: n.config_path.read_bytes() for n in second.nodes} == before


def test_a_kept_config_keeps_the_users_other_edits(tmp_path: Path) -> None:
    first = _prepare(tmp_path)
    path = first.nodes[0].config_path
    path.write_text(path.read_text() + 'log_level = "debug"\n')
    second = _prepare(tmp_path, seed=9)
    assert second.actions[0] == "kept"
    assert load_config(path).secretstore.log_level == "debug"


def test_growing_the_cluster_rewrites_old_configs_with_their_keys(tmp_path: Path) -> None:
    first = _prepare(tmp_path, count=2)
    grown = _prepare(tmp_path, count=3, seed=5)
    assert grown.actions == (
        "rewritten (the node set changed)",
        "rewritten (the node set changed)",
        "new",
    )
    assert [n.key for n in grown.nodes[:2]] == [n.key for n in first.nodes]
    for node in grown.nodes:
        assert load_config(node.config_path).secretstore.node_ids() == {
            n.node_id for n in grown.nodes
        }


def test_moving_the_ports_rewrites_the_configs(tmp_path: Path) -> None:
    first = _prepare(tmp_path)
    moved = _prepare(tmp_path, base=13000, http=9000)
    assert moved.actions == ("rewritten (the node set changed)",) * 3
    assert [n.key for n in moved.nodes] == [n.key for n in first.nodes]
    store = load_config(moved.nodes[2].config_path).secretstore
    assert (store.port, store.http_port) == (13002, 9002)


def test_only_the_ports_of_one_node_changed(tmp_path: Path) -> None:
    prepared = _prepare(tmp_path)
    node = prepared.nodes[1]
    text = node.config_path.read_text().replace("http_port = 8083", "http_port = 9999")
    node.config_path.write_text(text)
    again = _prepare(tmp_path)
    assert again.actions == ("kept", "rewritten (the ports changed)", "kept")
    assert load_config(node.config_path).secretstore.http_port == 8083


def test_an_unreadable_existing_config_is_an_error_and_is_left_alone(tmp_path: Path) -> None:
    prepared = _prepare(tmp_path)
    broken = prepared.nodes[1].config_path
    broken.write_text("[secretstore]\nself_secret = 12\n")
    with pytest.raises(ConfigError) as raised:
        _prepare(tmp_path)
    assert raised.value.key_path == "secretstore.self_secret"
    assert broken.read_text() == "[secretstore]\nself_secret = 12\n"


def test_two_nodes_with_one_key_are_refused(tmp_path: Path) -> None:
    prepared = _prepare(tmp_path)
    first, second = prepared.nodes[0].config_path, prepared.nodes[1].config_path
    second.write_text(first.read_text().replace("port = 12000", "port = 12001"))
    with pytest.raises(ConfigError, match="same key"):
        _prepare(tmp_path)


@pytest.mark.parametrize(
    ("count", "base", "http", "option"),
    [
        (0, 12000, 8082, "--nodes"),
        (257, 12000, 8082, "--nodes"),
        (3, 0, 8082, "--base-port"),
        (3, 65534, 8082, "--base-port"),
        (3, 12000, 65534, "--http-base-port"),
        (3, 12000, 12002, "--http-base-port"),  # overlaps the mesh ports
        (3, 12002, 12000, "--http-base-port"),
    ],
)
def test_bad_sizes_and_ports_are_refused(count: int, base: int, http: int, option: str) -> None:
    with pytest.raises(ConfigError) as raised:
        check_ports(count, base, http)
    assert raised.value.key_path == option


@given(
    count=st.integers(1, 256),
    base=st.integers(1, 65535),
    http=st.integers(1, 65535),
)
def test_accepted_port_ranges_fit_and_are_disjoint(count: int, base: int, http: int) -> None:
    try:
        check_ports(count, base, http)
    except ConfigError:
        return
    mesh, api = set(range(base, base + count)), set(range(http, http + count))
    assert not mesh & api
    assert max(mesh | api) <= 65535


@given(st.lists(st.integers(1, 2**64), min_size=1, max_size=5, unique=True))
def test_render_config_round_trips_through_the_loader(seeds: list[int]) -> None:
    keys = [KeyPair.generate(SeededRng(seed)) for seed in seeds]
    nodes = [NodeAddress(k.node_id, "127.0.0.1", 20000 + i) for i, k in enumerate(keys)]
    text = render_config(
        keys[0],
        index=1,
        nodes=nodes,
        mesh_port=20000,
        http_port=30000,
        extra={"keep_alive_interval": 0.5, "log_level": "debug", "disable_http": False},
    )
    store = parse_config(text, Path("/tmp")).secretstore
    assert store.key_pair == keys[0]
    assert set(store.nodes) == set(nodes)
    assert (store.port, store.http_port) == (20000, 30000)
    assert store.keep_alive_interval == 0.5
    assert store.log_level == "debug"


def test_main_write_only_prints_the_table_and_starts_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    directory = tmp_path / "c"
    argv = ["--nodes", "2", "--dir", str(directory), "--write-only"]
    assert cluster.main(argv, rng=SeededRng(3)) == 0
    out = capsys.readouterr().out
    assert "2 nodes in" in out and "(0 configs reused)" in out
    assert "http://127.0.0.1:8082" in out and "http://127.0.0.1:8083" in out
    assert not (directory / "node1" / "node.log").exists()
    assert cluster.main(argv, rng=SeededRng(4)) == 0
    assert "(2 configs reused)" in capsys.readouterr().out


def test_main_reports_bad_options_with_status_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["--nodes", "3", "--dir", str(tmp_path), "--base-port", "8082", "--write-only"]
    assert cluster.main(argv) == 2
    assert "--http-base-port" in capsys.readouterr().err
    assert not (tmp_path / "node1").exists()


def test_a_config_written_over_a_stale_temporary_file_is_private(tmp_path: Path) -> None:
    target = tmp_path / "node1" / "node.toml"
    target.parent.mkdir()
    stale = target.with_name(".node.toml.tmp")  # left by an interrupted earlier run
    stale.write_text("old")
    stale.chmod(0o644)
    cluster.write_private(target, "[secretstore]\n")
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert target.read_text() == "[secretstore]\n" and not stale.exists()
