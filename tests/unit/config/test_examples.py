"""Every example under config/ loads as it is, passes the start-up rules and says what it
claims: the single node is alone, the three cluster nodes list the same set at their own ports,
the keystore example unlocks its account, the chain node reads everything through its registry
(tests/integration/chain/test_config_example.py runs it on anvil), and only it needs a chain;
each closes with the marked cluster policy block, which refuses plain retrieval and unbound
requests."""

from __future__ import annotations

from pathlib import Path

import pytest

from secretstore.config.loader import load_config
from secretstore.config.model import ContractFromRegistry, NodeConfig
from secretstore.node import check_supported

CONFIG = Path(__file__).resolve().parents[3] / "config"
EXAMPLES = sorted(p for p in CONFIG.rglob("*.toml") if "db" not in p.relative_to(CONFIG).parts)
POLICY_MARK = "# --- Cluster policy: every node of a cluster must have the same values here."


def load(name: str) -> NodeConfig:
    return load_config(CONFIG / name)


def test_there_are_examples_and_nothing_else_unexplained() -> None:
    names = {  # the key databases the examples make when run (git ignores them) aside
        str(path.relative_to(CONFIG))
        for path in CONFIG.rglob("*")
        if path.is_file() and "db" not in path.relative_to(CONFIG).parts
    }
    toml = {name for name in names if name.endswith(".toml")}
    assert toml == {
        "single-node.toml",
        "local-cluster/node1.toml",
        "local-cluster/node2.toml",
        "local-cluster/node3.toml",
        "keystore-account/node.toml",
        "chain-node/node.toml",
    }
    others = names - toml - {"README.md", "keystore-account/password.txt"}
    assert len(others) == 1 and next(iter(others)).startswith("keystore-account/keys/UTC--")


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: str(p.relative_to(CONFIG)))
def test_every_example_loads_and_marks_the_policy_block(path: Path) -> None:
    config = load_config(path)
    check_supported(config)  # the start-up rules
    store = config.secretstore
    assert store.uses_chain == (path.parent.name == "chain-node")  # only it needs a chain
    assert store.self_key is not None
    assert store.require_shadow_retrieval and store.require_bound_requests
    text = path.read_text()
    assert text.count(POLICY_MARK) == 1
    # the block closes [secretstore]: a policy line added there is a [secretstore] option
    block = text.split(POLICY_MARK, 1)[1].splitlines()[1:]
    assert block[0] == "# (Cluster-wide policy switches go in this block, one line each.)"
    assert [line.split("#")[0].strip() for line in block[1:]] == [
        "require_shadow_retrieval = true",
        "require_bound_requests = true",
    ]
    assert not any(line.lstrip().startswith("[") for line in block)
    assert text.rfind("[secretstore]") > max(text.rfind("[parity]"), text.rfind("[account]"))
    assert "EXAMPLE" in text  # the published keys say so


def test_the_single_node_is_a_cluster_of_one() -> None:
    store = load("single-node.toml").secretstore
    assert [n.node_id for n in store.nodes] == [store.self_node_id]
    assert (store.interface, store.port, store.http_port) == ("127.0.0.1", 12000, 8082)


def test_the_local_cluster_is_consistent() -> None:
    configs = [load(f"local-cluster/node{i}.toml").secretstore for i in (1, 2, 3)]
    sets = {tuple(c.nodes) for c in configs}
    assert len(sets) == 1  # the same node list everywhere
    [nodes] = sets
    assert len(nodes) == 3
    for store in configs:
        me = store.address_of_node(store.self_node_id)
        assert me is not None and (me.host, me.port) == (store.interface, store.port)
    ports = [c.port for c in configs] + [c.http_port for c in configs]
    assert len(set(ports)) == 6
    assert len({c.path for c in configs}) == 3


def test_the_chain_node_reads_its_set_and_acl_through_the_registry() -> None:
    store = load("chain-node/node.toml").secretstore
    assert isinstance(store.acl_contract, ContractFromRegistry)
    assert isinstance(store.server_set_contract, ContractFromRegistry)
    assert store.registry_address is not None and store.chain_rpc_url == "http://127.0.0.1:8545"
    assert [n.node_id for n in store.nodes] == [store.self_node_id]


def test_the_keystore_example_unlocks_its_account() -> None:
    config = load("keystore-account/node.toml")
    store = config.secretstore
    assert store.self_account is not None
    assert store.key_pair.address == store.self_account
    assert config.keys_path == CONFIG / "keystore-account" / "keys"
    assert config.password_files == (CONFIG / "keystore-account" / "password.txt",)
