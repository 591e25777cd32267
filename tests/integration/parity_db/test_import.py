"""`secretstore import-parity` on real RocksDB databases in Parity's format and real LevelDB
targets: a 3-node cluster's worth imports with every share checked across nodes, twice; and
every bad input (a corrupt record, a wrong version hash, another node's database, a record that
differs at the target, Parity still running) is refused with a clear message, changing nothing.

The Parity databases are written by tests/parity_format.py from keys our own sessions made in
a simulated generation (tests/parity_keys.py): a reconstruction of Parity's format from its
source, not databases written by Parity.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

from secretstore.crypto.curve import Scalar
from secretstore.crypto.keys import KeyPair
from secretstore.crypto.rng import SeededRng
from secretstore.errors import ParityImportError
from secretstore.parity_db.importer import ImportRequest, PeerDatabase, run_import
from secretstore.parity_db.record import same_record
from secretstore.storage.leveldb import LevelDbKeyStorage
from secretstore.storage.model import KeyShare
from secretstore.types import NodeId, ServerKeyId
from tests.parity_format import (
    hold_open,
    parity_record,
    tree_state,
    write_parity_dir,
    write_parity_node,
)
from tests.parity_keys import KeySpec, MadeKey, key_id, make_keys, node_shares

SECRETSTORE = (sys.executable, "-m", "secretstore.cli.main", "import-parity")
AUTHOR = KeyPair.generate(SeededRng(b"parity import author"))
SPECS = [
    KeySpec(key_id("t1 with document key"), 1, True),
    KeySpec(key_id("t1 server key only"), 1, False),
    KeySpec(key_id("t2 with document key"), 2, True),
    KeySpec(key_id("t0 with document key"), 0, True),
]


@dataclass(frozen=True)
class Cluster:
    nodes: list[NodeId]
    keys: list[MadeKey]

    def shares(self, node: NodeId) -> dict[ServerKeyId, KeyShare]:
        return node_shares(self.keys, node)

    def all_secret_hex(self) -> list[str]:
        """Every share and id number of every key, as hex (none may ever be printed)."""
        out = []
        for key in self.keys:
            for share in key.shares.values():
                for version in share.versions:
                    out.append(version.secret_share.to_bytes().hex())
                    out.extend(number.to_bytes().hex() for _, number in version.id_numbers)
        return out


@pytest.fixture(scope="module")
def cluster() -> Cluster:
    pairs = sorted(
        (KeyPair.generate(SeededRng(f"parity import {i}".encode())) for i in range(3)),
        key=lambda pair: pair.node_id,
    )
    return Cluster([pair.node_id for pair in pairs], make_keys(pairs, AUTHOR, SPECS))


@pytest.fixture
def parity(cluster: Cluster, tmp_path: Path) -> list[Path]:
    """One Parity data directory per node, each with that node's shares."""
    return [
        write_parity_node(tmp_path / f"parity{i}", cluster.shares(node))
        for i, node in enumerate(cluster.nodes)
    ]


def peers_of(cluster: Cluster, parity: list[Path], index: int) -> list[PeerDatabase]:
    return [PeerDatabase(node, parity[i]) for i, node in enumerate(cluster.nodes) if i != index]


def stored(target: Path) -> dict[ServerKeyId, KeyShare]:
    with LevelDbKeyStorage(target) as storage:
        return {key: share for key in storage.ids() if (share := storage.get(key)) is not None}


def same_records(a: dict[ServerKeyId, KeyShare], b: dict[ServerKeyId, KeyShare]) -> bool:
    """The same keys with the same Parity records (fields Parity lacks are not compared: an
    imported version has none of them, a share our sessions made may)."""
    return a.keys() == b.keys() and all(same_record(a[key], b[key]) for key in a)


def cli(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*SECRETSTORE, *map(str, args)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        stdin=subprocess.DEVNULL,
    )


# --- a cluster's worth ------------------------------------------------------------------------


def test_three_nodes_import_with_every_share_checked_across_nodes(
    cluster: Cluster, parity: list[Path], tmp_path: Path
) -> None:
    for index, node in enumerate(cluster.nodes):
        target = tmp_path / f"leveldb{index}"
        request = ImportRequest(parity[index], target, node, peers_of(cluster, parity, index))
        report = run_import(request)
        assert report.refused == [] and report.warnings == []
        assert (report.records, len(report.imported), len(report.present)) == (4, 4, 0)
        assert (report.cross_checked, report.cross_unchecked, report.peers) == (4, 0, 2)
        assert report.written and report.db_version == 4
        assert same_records(stored(target), cluster.shares(node))
        assert (target.stat().st_mode & 0o777) == 0o700
    assert list(tmp_path.glob(".parity-import-*")) == []  # the private copies are gone


def test_importing_twice_changes_nothing(
    cluster: Cluster, parity: list[Path], tmp_path: Path
) -> None:
    node, target = cluster.nodes[0], tmp_path / "leveldb"
    first = cli("--from", parity[0], "--to", target, "--node-id", node.hex())
    assert first.returncode == 0, first.stderr
    assert "imported: 4\nalready present and identical: 0\nrefused: 0\n" in first.stdout
    before = stored(target)
    second = cli("--from", parity[0], "--to", target, "--node-id", "0x" + node.hex())
    assert second.returncode == 0, second.stderr
    assert "imported: 0\nalready present and identical: 4\nrefused: 0\n" in second.stdout
    assert stored(target) == before
    assert same_records(before, cluster.shares(node))


def test_version_3_databases_import_too(cluster: Cluster, tmp_path: Path) -> None:
    node = cluster.nodes[1]
    source = write_parity_node(tmp_path / "legacy", cluster.shares(node), version=3)
    assert not (source / "db_version").exists()
    report = run_import(ImportRequest(source, tmp_path / "leveldb", node))
    assert report.db_version == 3 and len(report.imported) == 4 and report.refused == []
    assert same_records(stored(tmp_path / "leveldb"), cluster.shares(node))


def test_the_cross_node_check_from_exported_share_publics(
    cluster: Cluster, parity: list[Path], tmp_path: Path
) -> None:
    """Nodes on different machines: each exports its share publics (a dry run), then each
    import checks against the others' files."""
    files = []
    for index, node in enumerate(cluster.nodes):
        exported = tmp_path / f"node{index}.json"
        result = cli(
            "--from", parity[index], "--to", tmp_path / f"leveldb{index}",
            "--node-id", node.hex(), "--export-publics", exported, "--dry-run",
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        assert "dry run: nothing written (4 records to import)" in result.stdout
        assert not (tmp_path / f"leveldb{index}").exists()
        files.append(exported)
    result = cli(
        "--from", parity[2], "--to", tmp_path / "leveldb2", "--node-id", cluster.nodes[2].hex(),
        "--peer-publics", files[0], "--peer-publics", files[1],
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "checked across nodes (2 other nodes): 4 keys" in result.stdout
    assert same_records(stored(tmp_path / "leveldb2"), cluster.shares(cluster.nodes[2]))
    text = "".join(path.read_text() for path in files)
    assert not any(secret in text for secret in cluster.all_secret_hex())


# --- bad input: a clear error, nothing changed ------------------------------------------------


def test_a_corrupt_record_is_refused_and_nothing_is_written(
    cluster: Cluster, tmp_path: Path
) -> None:
    node = cluster.nodes[0]
    records = {key: parity_record(share) for key, share in cluster.shares(node).items()}
    broken_key = SPECS[1].key_id
    records[broken_key] = records[broken_key][:-7]  # a truncated record
    source = write_parity_dir(tmp_path / "parity", records)
    before = tree_state(source)
    target = tmp_path / "leveldb"
    result = cli("--from", source, "--to", target, "--node-id", node.hex())
    assert result.returncode == 1
    assert f"key 0x{broken_key.hex()}: the record is not JSON" in result.stdout
    assert "refused: 1\n" in result.stdout
    assert "nothing written: 1 records refused (--skip-refused imports the others)" in result.stdout
    assert not target.exists()
    assert tree_state(source) == before
    output = result.stdout + result.stderr
    assert not any(secret in output for secret in cluster.all_secret_hex())
    # The operator may import the others and leave that key to the other nodes.
    result = cli("--from", source, "--to", target, "--node-id", node.hex(), "--skip-refused")
    assert result.returncode == 1 and "imported: 3\n" in result.stdout
    assert set(stored(target)) == {spec.key_id for spec in SPECS} - {broken_key}
    assert tree_state(source) == before


def test_a_wrong_version_hash_is_refused_naming_the_key(cluster: Cluster, tmp_path: Path) -> None:
    node = cluster.nodes[0]
    share = cluster.shares(node)[SPECS[0].key_id]
    version = share.last_version()
    forged = replace(share, versions=(replace(version, hash=bytes(32)),))
    source = write_parity_node(tmp_path / "parity", {SPECS[0].key_id: forged})
    report = run_import(ImportRequest(source, tmp_path / "leveldb", node))
    (refusal,) = report.refused
    assert refusal.key == SPECS[0].key_id
    assert f"version 0x{bytes(32).hex()} (versions[0]): the hash does not match" in str(refusal)
    assert f"they hash to 0x{version.hash.hex()}" in str(refusal)
    assert not report.written and not (tmp_path / "leveldb").exists()


def test_another_nodes_database_is_refused_by_the_cross_node_check(
    cluster: Cluster, parity: list[Path], tmp_path: Path
) -> None:
    """Node B's database imported with node A's id, the other two given as peers."""
    a, b = cluster.nodes[0], cluster.nodes[1]
    before = tree_state(parity[1])
    target = tmp_path / "leveldb"
    result = cli(
        "--from", parity[1], "--to", target, "--node-id", a.hex(),
        "--peer", f"{b.hex()}={parity[1]}", "--peer", f"{cluster.nodes[2].hex()}={parity[2]}",
    )  # fmt: skip
    assert result.returncode == 1, result.stderr
    # With threshold 0 every node holds the same record, so that one is B's and A's alike.
    assert "refused: 3\n" in result.stdout
    for spec in SPECS[:2]:
        assert f"key 0x{spec.key_id.hex()}: this node's share of version" in result.stdout
    assert "is this another node's database, or the wrong node id?" in result.stdout
    assert f"key 0x{SPECS[2].key_id.hex()}: no 3 of the shares of version" in result.stdout
    assert not target.exists()
    assert tree_state(parity[1]) == before


def test_another_nodes_database_is_refused_alone_where_the_node_holds_no_share(
    cluster: Cluster, tmp_path: Path
) -> None:
    """Without other nodes' shares, one node's database shows a swap only where a key's
    version lacks the given node: here a key generated by nodes B and C alone."""
    pairs = sorted(
        (KeyPair.generate(SeededRng(f"parity import {i}".encode())) for i in range(3)),
        key=lambda pair: pair.node_id,
    )
    a, b, c = pairs
    (pair_key,) = make_keys([b, c], AUTHOR, [KeySpec(key_id("b and c"), 1, False)], seed=9)
    source = write_parity_node(
        tmp_path / "parity_b", {pair_key.spec.key_id: pair_key.shares[b.node_id]}
    )
    report = run_import(ImportRequest(source, tmp_path / "leveldb", a.node_id))
    (refusal,) = report.refused
    assert f"node 0x{a.node_id.hex()[:16]}… is not among the 2 nodes of version" in str(refusal)
    assert "this is another node's database, or the wrong node id was given" in str(refusal)
    assert not (tmp_path / "leveldb").exists()


def test_a_different_record_at_the_target_is_refused_never_overwritten(
    cluster: Cluster, parity: list[Path], tmp_path: Path
) -> None:
    node, target = cluster.nodes[0], tmp_path / "leveldb"
    assert run_import(ImportRequest(parity[0], target, node)).refused == []
    before = stored(target)
    changed = dict(cluster.shares(node))
    share = changed[SPECS[0].key_id]
    version = share.last_version()
    changed[SPECS[0].key_id] = replace(
        share, versions=(replace(version, secret_share=version.secret_share + Scalar(1)),)
    )
    source = write_parity_node(tmp_path / "changed", changed)
    report = run_import(ImportRequest(source, target, node))
    (refusal,) = report.refused
    assert refusal.key == SPECS[0].key_id
    assert "a different record of this key is stored at the target already" in refusal.reason
    assert len(report.present) == 3 and not report.written
    assert stored(target) == before
    assert same_record(stored(target)[SPECS[0].key_id], share)


@pytest.fixture
def running_parity(parity: list[Path]) -> Iterator[Path]:
    """Node 0's Parity database held open read-write by this process, as a running Parity."""
    db = hold_open(parity[0])
    try:
        yield parity[0]
    finally:
        db.close()


def test_a_database_parity_still_runs_on_is_refused(
    cluster: Cluster, running_parity: Path, tmp_path: Path
) -> None:
    result = cli(
        "--from", running_parity, "--to", tmp_path / "l", "--node-id", cluster.nodes[0].hex()
    )
    assert result.returncode == 2
    assert f"the database {running_parity / 'db'} is in use" in result.stderr
    assert "stop the Parity node first" in result.stderr
    assert not (tmp_path / "l").exists()


def test_cannot_run_cases_exit_2_with_the_reason(
    cluster: Cluster, parity: list[Path], tmp_path: Path
) -> None:
    node = cluster.nodes[0].hex()
    cases = [
        (("--from", parity[0], "--to", parity[1], "--node-id", node), "holds a Parity database"),
        (
            ("--from", parity[0] / "db", "--to", tmp_path / "x", "--node-id", node),
            "pass the directory",
        ),
        (("--from", tmp_path, "--to", tmp_path / "x", "--node-id", node), "is not a Parity Secret"),
        (("--from", parity[0], "--node-id", node), "--to is required with --node-id"),
        (("--from", parity[0], "--to", tmp_path / "x", "--node-id", "12"), "expected 64 bytes"),
        (
            (
                "--from",
                parity[0],
                "--to",
                tmp_path / "x",
                "--node-id",
                node,
                "--peer",
                node + "=" + str(parity[0]),
            ),
            "is given twice",
        ),
    ]
    for args, expected in cases:
        result = cli(*args)
        assert result.returncode == 2, (args, result.stdout, result.stderr)
        assert expected in result.stderr, (args, result.stderr)
    assert not (tmp_path / "x").exists()


def test_a_legacy_database_of_an_older_format_is_refused(cluster: Cluster, tmp_path: Path) -> None:
    records = {key: parity_record(share) for key, share in cluster.shares(cluster.nodes[0]).items()}
    source = write_parity_dir(tmp_path / "old", records, version=3, legacy_format=2)
    with pytest.raises(ParityImportError, match="holds records of format 2"):
        run_import(ImportRequest(source, tmp_path / "leveldb", cluster.nodes[0]))


def test_without_rocksdict_the_import_says_what_to_install(
    cluster: Cluster, parity: list[Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "rocksdict", None)
    with pytest.raises(ParityImportError, match=r"pip install 'secretstore\[parity-import\]'"):
        run_import(ImportRequest(parity[0], tmp_path / "leveldb", cluster.nodes[0]))
    assert list(tmp_path.glob(".parity-import-*")) == []


def test_records_only_in_the_write_ahead_log_are_read(cluster: Cluster, tmp_path: Path) -> None:
    """Parity killed before RocksDB flushed: the records are in its WAL only (synced writes)."""
    node = cluster.nodes[0]
    source = write_parity_dir(tmp_path / "parity", {})
    records = {
        key.hex(): parity_record(share).decode() for key, share in cluster.shares(node).items()
    }
    script = f"""
import json, os
from rocksdict import Options, Rdict, WriteOptions
raw = Options(raw_mode=True)
db = Rdict({str(source / "db")!r}, raw, column_families={{"col0": Options(raw_mode=True)}})
column, sync = db.get_column_family("col0"), WriteOptions()
sync.sync = True
for key, value in json.loads({json.dumps(records)!r}).items():
    column.put(bytes.fromhex(key), value.encode(), sync)
os._exit(0)
"""
    subprocess.run([sys.executable, "-c", script], check=True, timeout=60)
    db_files = list((source / "db").iterdir())
    assert not [path for path in db_files if path.suffix == ".sst"]
    assert any(path.suffix == ".log" and path.stat().st_size > 1000 for path in db_files)
    report = run_import(ImportRequest(source, tmp_path / "leveldb", node))
    assert report.refused == [] and len(report.imported) == 4
    assert same_records(stored(tmp_path / "leveldb"), cluster.shares(node))
