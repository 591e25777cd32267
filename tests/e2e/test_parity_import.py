"""Switching a 3-node Parity Secret Store cluster: import each node's Parity database, start
real `secretstore-node` processes on the imported LevelDBs, and serve every key; and a node
pointed at a Parity directory refuses to start, naming it and the importer.

The Parity databases are written by tests/parity_format.py (a reconstruction of Parity 1.0's
format from its source, not databases Parity wrote) from keys our own sessions generated in a
simulated run among the cluster's node keys (tests/parity_keys.py), with document keys stored.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from secretstore.client.http_client import KeyServerClient
from secretstore.crypto.hashing import keccak256
from secretstore.crypto.keys import KeyPair, recover_public
from secretstore.crypto.rng import SeededRng
from secretstore.crypto.schnorr import SchnorrSignature, verify_schnorr_signature
from tests.e2e.conftest import ClusterFactory
from tests.parity_format import tree_state, write_parity_node
from tests.parity_keys import KeySpec, key_id, make_keys, node_shares

pytestmark = pytest.mark.e2e

IMPORT = (sys.executable, "-m", "secretstore.cli.main", "import-parity")
REQUESTER = KeyPair.generate(SeededRng(b"parity import requester"))
SPECS = [
    KeySpec(key_id("document, threshold 1"), 1, True),
    KeySpec(key_id("server key, threshold 1"), 1, False),
    KeySpec(key_id("document, threshold 2"), 2, True),
    KeySpec(key_id("document, threshold 0"), 0, True),
]


def import_node(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*IMPORT, *map(str, args)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        stdin=subprocess.DEVNULL,
    )


async def test_an_imported_cluster_serves_every_key(
    make_cluster: ClusterFactory, tmp_path: Path
) -> None:
    cluster = make_cluster(3, seed=31)
    made = make_keys([node.key for node in cluster], REQUESTER, SPECS)
    parity = {
        node.name: write_parity_node(
            tmp_path / "parity" / node.name, node_shares(made, node.node_id)
        )
        for node in cluster
    }
    # Each node's import, with the other two nodes' databases for the cross-node check; the
    # target is the [secretstore] path of the node's config (db/ beside it).
    for run in ("first", "second"):
        for node in cluster:
            peers = [
                arg
                for other in cluster
                if other is not node
                for arg in ("--peer", f"{other.node_id.hex()}={parity[other.name]}")
            ]
            result = import_node("--from", parity[node.name], "--config", node.config_path, *peers)
            assert result.returncode == 0, (run, result.stdout, result.stderr)
            imported, present = (4, 0) if run == "first" else (0, 4)
            assert f"imported: {imported}\nalready present and identical: {present}\n" in (
                result.stdout
            )
            assert "checked across nodes (2 other nodes): 4 keys" in result.stdout
            assert f"-> {node.directory / 'db'}" in result.stdout

    cluster.start()
    cluster.wait_ready()
    message = keccak256(b"signed after the switch")
    for index, key in enumerate(made):
        spec = key.spec
        served_by = cluster[index % 3]
        async with KeyServerClient(served_by.url) as client:
            assert await client.retrieve_server_key(spec.key_id, REQUESTER) == key.public
            if key.document_key is not None:
                plain = await client.retrieve_document_key(spec.key_id, REQUESTER)
                shadow = await client.retrieve_document_key_shadow(spec.key_id, REQUESTER)
                assert plain == shadow == key.document_key
            c, s = await client.sign_schnorr(spec.key_id, REQUESTER, message)
            assert verify_schnorr_signature(key.public, SchnorrSignature(c, s), message)
            if spec.threshold == 1:  # ECDSA needs 2t+1 signers: all three nodes here
                signature = await client.sign_ecdsa(spec.key_id, REQUESTER, message)
                assert recover_public(signature, message) == key.public
    assert cluster.terminate_all() == [0, 0, 0]


async def test_a_node_refuses_to_start_on_a_parity_directory(
    make_cluster: ClusterFactory, tmp_path: Path
) -> None:
    cluster = make_cluster(1, seed=32)
    node = cluster[0]
    (key,) = make_keys([node.key], REQUESTER, [KeySpec(key_id("solo"), 0, True)])
    parity = write_parity_node(tmp_path / "secretstore", node_shares([key], node.node_id))
    node.write_config(cluster.addresses, {"path": str(parity)})
    before = tree_state(parity)
    node.start()
    assert node.wait_exit(timeout=30) == 1
    log = node.log_text()
    assert re.search(
        rf"node failed: {re.escape(str(parity))} holds a Parity Secret Store key database", log
    ), log
    assert f"secretstore import-parity --from {parity} --to NEW_DIR" in log
    assert tree_state(parity) == before
