"""`secretstore admin` without a cluster: set hashes, the new set rules, progress lines, usage
errors; and `secretstore cluster` keeping the members add/remove left."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from secretstore.cli import admin, cluster
from secretstore.cli.cluster import prepare_cluster, recorded_members
from secretstore.crypto.keys import KeyPair, servers_set_hash
from secretstore.crypto.rng import SeededRng
from secretstore.types import NodeId

RNG = SeededRng(b"cli admin")
A, B, C = (KeyPair.generate(RNG).node_id for _ in range(3))


def test_hash_of_node_ids_is_the_servers_set_hash(capsys: pytest.CaptureFixture[str]) -> None:
    assert admin.main(["hash", A.hex(), "0x" + B.hex(), A.hex()]) == 0
    assert capsys.readouterr().out.strip() == "0x" + servers_set_hash([A, B]).hex()


def test_hash_needs_ids_or_a_node(capsys: pytest.CaptureFixture[str]) -> None:
    assert admin.main(["hash"]) == 2
    assert "give node ids" in capsys.readouterr().err
    assert admin.main(["hash", "abcd"]) == 2
    assert "node id" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--add", C.hex()], {A, B, C}),
        (["--remove", B.hex()], {A}),
        (["--new-set", B.hex(), C.hex()], {B, C}),
    ],
)
def test_the_new_set_from_the_old_one(argv: list[str], expected: set[NodeId]) -> None:
    args = admin._parser().parse_args(["change", "--node", "http://x", *argv])
    assert admin._new_set(args)(frozenset({A, B})) == expected


def test_a_change_needs_the_administrator_key(capsys: pytest.CaptureFixture[str]) -> None:
    assert admin.main(["change", "--node", "http://127.0.0.1:1", "--add", C.hex()]) == 2
    assert "administrator key is needed" in capsys.readouterr().err


def test_progress_lines_off_a_terminal() -> None:
    out = io.StringIO()
    progress = admin.Progress(out)
    change = {"master": "0x" + A.hex(), "phase": "moving keys", "keys_total": 10, "keys_done": 0}
    progress.show(change)
    progress.show(change)  # unchanged: not repeated
    progress.show({**change, "keys_done": 5})
    progress.show({**change, "keys_total": None, "phase": "waiting"})
    lines = out.getvalue().splitlines()
    assert len(lines) == 3
    assert lines[1].startswith("[###############...............] 5 of 10 keys (moving keys")
    assert "planning" in lines[2]


def test_a_cluster_keeps_the_members_add_and_remove_left(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    prepared = prepare_cluster(tmp_path, 0, 12000, 8082, SeededRng(1), members=[1, 3, 4])
    assert [n.name for n in prepared.nodes] == ["node1", "node3", "node4"]
    assert recorded_members(tmp_path) == [1, 3, 4]
    assert prepared.admin is not None
    admin_hex = prepared.admin.public.to_bytes().hex()
    assert f'admin_public = "{admin_hex}"' in prepared.nodes[0].config_path.read_text()
    assert prepared.admin.unlock().public == prepared.admin.public
    # without --nodes the members run; with --nodes, the command refuses to relayout them
    assert cluster.main(["--dir", str(tmp_path), "--write-only"], rng=SeededRng(2)) == 0
    assert "3 nodes in" in capsys.readouterr().out
    assert cluster.main(["--dir", str(tmp_path), "--nodes", "3", "--write-only"]) == 2
    assert "run without --nodes" in capsys.readouterr().err
    names = [
        entry["name"] for entry in json.loads((tmp_path / "cluster.json").read_text())["nodes"]
    ]
    assert names == ["node1", "node3", "node4"]


def test_add_and_remove_need_a_running_cluster(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    prepare_cluster(tmp_path, 2, 12000, 8082, SeededRng(1))
    assert cluster.main(["add", "--dir", str(tmp_path)]) == 2
    assert "no cluster runs" in capsys.readouterr().err
    assert cluster.main(["remove", "--dir", str(tmp_path), "--node", "2"]) == 2
