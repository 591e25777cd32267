"""The TOML config loader: every option, its default, and every kind of bad value."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from secretstore.config.loader import (
    CHAIN_OPTIONS,
    KNOWN_SECRETSTORE_KEYS,
    load_config,
    parse_config,
)
from secretstore.config.model import (
    ContractAtAddress,
    ContractFromRegistry,
    CorsOrigins,
    Deadlines,
    NodeAddress,
    NodeConfig,
    ResourceLimits,
)
from secretstore.crypto.curve import N
from secretstore.crypto.keys import KeyPair
from secretstore.crypto.rng import SeededRng
from secretstore.errors import ConfigError
from secretstore.keystore import Keystore
from secretstore.types import Address

SELF = KeyPair.generate(SeededRng(1))
PEER_A = KeyPair.generate(SeededRng(2))
PEER_B = KeyPair.generate(SeededRng(3))
CONTRACT = "0x" + "ab" * 20


def node(pair: KeyPair, host: str = "127.0.0.1", port: int = 9001) -> str:
    return f"{pair.node_id.hex()}@{host}:{port}"


def toml_value(value: object) -> str:
    """A TOML literal: strings escaped char by char, the rest as JSON writes them."""
    if isinstance(value, str):
        escaped = "".join(
            f"\\u{ord(c):04x}" if c in '"\\' or ord(c) < 0x20 or ord(c) == 0x7F else c
            for c in value
        )
        return f'"{escaped}"'
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(item) for item in value) + "]"
    return json.dumps(value)


def toml(secretstore: dict[str, object], extra: str = "", secret: bool = True) -> str:
    """A config text with [secretstore] from a dict."""
    values = dict(secretstore)
    if secret:
        values.setdefault("self_secret", SELF.secret.to_bytes().hex())
    lines = [f"{key} = {toml_value(value)}" for key, value in values.items()]
    return extra + "\n[secretstore]\n" + "\n".join(lines) + "\n"


def parse(secretstore: dict[str, object], tmp_path: Path, extra: str = "") -> NodeConfig:
    return parse_config(toml(secretstore, extra), tmp_path)


def fails(secretstore: dict[str, object], tmp_path: Path, key_path: str, extra: str = "") -> str:
    with pytest.raises(ConfigError) as info:
        parse(secretstore, tmp_path, extra)
    assert info.value.key_path == key_path, str(info.value)
    return info.value.problem


# --- defaults -------------------------------------------------------------------------------


def test_defaults_are_paritys(tmp_path: Path) -> None:
    config = parse({}, tmp_path)
    store = config.secretstore
    assert store.disable is False
    assert store.disable_http is False
    assert store.disable_auto_migrate is False
    assert store.acl_contract == ContractFromRegistry()
    assert store.server_set_contract == ContractFromRegistry()
    assert store.service_contract is None
    assert store.service_contract_srv_gen is None
    assert store.service_contract_srv_retr is None
    assert store.service_contract_doc_store is None
    assert store.service_contract_doc_sretr is None
    assert store.interface == "127.0.0.1"
    assert store.http_interface == "127.0.0.1"
    assert store.port == 8083
    assert store.http_port == 8082
    assert store.path == tmp_path / "secretstore"
    assert store.http_cors == CorsOrigins.none()
    assert store.admin_public is None
    assert store.self_key == SELF
    assert store.self_account is None
    assert store.nodes == (NodeAddress(SELF.node_id, "127.0.0.1", 8083),)
    assert store.chain_rpc_url is None
    assert store.session_timeout == 30.0
    assert store.keep_alive_interval == 10.0
    assert store.log_level == "info"
    assert store.limits == ResourceLimits(
        max_sessions_per_peer=256,
        max_pending_handshakes=64,
        max_pending_handshakes_per_address=4,
        reserved_handshakes_for_nodes=16,
    )
    assert store.require_bound_requests is False
    assert store.audit_sync is False
    assert store.require_shadow_retrieval is False  # Parity's behaviour by default
    assert store.ecdsa_presignatures == 4
    assert config.base_path == tmp_path
    assert config.keys_path == tmp_path / "keys"
    assert config.password_files == ()
    assert config.source is None


def test_default_contracts_need_the_chain(tmp_path: Path) -> None:
    store = parse({}, tmp_path).secretstore
    assert store.uses_chain
    assert store.acl_contract == store.server_set_contract == ContractFromRegistry()
    assert store.registry_address is None
    assert (store.chain_confirmations, store.chain_migration_delay) == (3, 5)
    assert (store.chain_retry_interval, store.chain_poll_interval) == (30, 1.0)


def test_chain_options_of_our_own(tmp_path: Path) -> None:
    store = parse(
        {
            "registry_address": "AB" * 20,
            "chain_confirmations": 0,
            "chain_migration_delay": 1,
            "chain_retry_interval": 2,
            "chain_poll_interval": 0.25,
        },
        tmp_path,
    ).secretstore
    assert store.registry_address == bytes.fromhex("ab" * 20)
    assert (store.chain_confirmations, store.chain_migration_delay) == (0, 1)
    assert (store.chain_retry_interval, store.chain_poll_interval) == (2, 0.25)
    assert "20 bytes" in fails(
        {"registry_address": "0x" + "ab" * 19}, tmp_path, "secretstore.registry_address"
    )
    assert "0..1000" in fails(
        {"chain_confirmations": -1}, tmp_path, "secretstore.chain_confirmations"
    )
    assert "1..10000" in fails(
        {"chain_retry_interval": 0}, tmp_path, "secretstore.chain_retry_interval"
    )


def test_local_cluster_options_need_no_chain(tmp_path: Path) -> None:
    config = parse({"acl_contract": "none", "server_set_contract": "none"}, tmp_path)
    assert not config.secretstore.uses_chain


# --- switches -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "key",
    ["disable", "disable_http", "disable_auto_migrate", "require_shadow_retrieval", "audit_sync"],
)
def test_switches(key: str, tmp_path: Path) -> None:
    assert getattr(parse({key: True}, tmp_path).secretstore, key) is True
    assert getattr(parse({key: False}, tmp_path).secretstore, key) is False
    assert "true or false" in fails({key: "yes"}, tmp_path, f"secretstore.{key}")


def test_ecdsa_presignatures(tmp_path: Path) -> None:
    assert parse({"ecdsa_presignatures": 0}, tmp_path).secretstore.ecdsa_presignatures == 0
    assert parse({"ecdsa_presignatures": 64}, tmp_path).secretstore.ecdsa_presignatures == 64
    fails({"ecdsa_presignatures": 65}, tmp_path, "secretstore.ecdsa_presignatures")
    fails({"ecdsa_presignatures": -1}, tmp_path, "secretstore.ecdsa_presignatures")


# --- contracts ------------------------------------------------------------------------------


@pytest.mark.parametrize("key", [key for key, _ in CHAIN_OPTIONS])
def test_contract_sources(key: str, tmp_path: Path) -> None:
    def source(value: str) -> object:
        return getattr(parse({key: value}, tmp_path).secretstore, key)

    assert source("none") is None
    assert source("registry") == ContractFromRegistry()
    expected = ContractAtAddress(Address(bytes.fromhex("ab" * 20)))
    assert source(CONTRACT) == expected
    assert source(CONTRACT[2:].upper()) == expected
    store = parse({key: CONTRACT, **{k: "none" for k, _ in CHAIN_OPTIONS if k != key}}, tmp_path)
    assert store.secretstore.uses_chain  # every contract option needs the chain
    assert store.secretstore.contract_sources()[key] == expected


@pytest.mark.parametrize(
    ("value", "problem"),
    [("0x" + "zz" * 20, "not hex"), ("0x" + "ab" * 19, "20 bytes"), ("regisrty", "registry")],
)
def test_bad_contract_address(value: str, problem: str, tmp_path: Path) -> None:
    assert problem in fails({"acl_contract": value}, tmp_path, "secretstore.acl_contract")


def test_contract_of_wrong_type(tmp_path: Path) -> None:
    assert "string" in fails(
        {"server_set_contract": 5}, tmp_path, "secretstore.server_set_contract"
    )


# --- self_secret ----------------------------------------------------------------------------


def test_self_secret_with_0x(tmp_path: Path) -> None:
    config = parse({"self_secret": "0x" + SELF.secret.to_bytes().hex().upper()}, tmp_path)
    assert config.secretstore.key_pair == SELF
    assert config.secretstore.self_node_id == SELF.node_id


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("g" * 64, "bad hex"),
        ("ab" * 31, "wrong length"),
        ("ab" * 33, "wrong length"),
        ("00" * 32, "not a valid secp256k1 secret"),
        (f"{N:064x}", "not a valid secp256k1 secret"),
        ("", "wrong length"),
    ],
)
def test_bad_self_secret(value: str, problem: str, tmp_path: Path) -> None:
    assert problem in fails({"self_secret": value}, tmp_path, "secretstore.self_secret")


def test_self_secret_is_required(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(toml({}, secret=False), tmp_path)
    assert info.value.key_path == "secretstore.self_secret"
    assert "required" in info.value.problem


def test_disabled_node_needs_no_secret(tmp_path: Path) -> None:
    store = parse_config(toml({"disable": True}, secret=False), tmp_path).secretstore
    assert store.disable is True
    assert store.self_key is None
    assert store.nodes == ()
    with pytest.raises(ConfigError, match="self_secret"):
        _ = store.key_pair


def test_secret_never_in_repr(tmp_path: Path) -> None:
    config = parse({}, tmp_path)
    assert SELF.secret.to_bytes().hex() not in repr(config)
    assert str(SELF.secret.to_int()) not in repr(config)


# --- self_secret from a keystore account ----------------------------------------------------


def make_account(directory: Path, pair: KeyPair, password: str) -> str:
    address = Keystore(directory, kdf="scrypt", iterations=2**10).import_secret(
        pair.secret, password
    )
    return address.hex()


def test_account_unlocked_with_a_password_file(tmp_path: Path) -> None:
    address = make_account(tmp_path / "keys", SELF, "right horse")
    (tmp_path / "pw").write_text("wrong one\n  right horse  \n")
    config = parse(
        {"self_secret": address},
        tmp_path,
        extra='[account]\npassword = ["pw"]\n',
    )
    assert config.secretstore.self_key == SELF
    assert config.secretstore.self_account == SELF.address
    assert config.password_files == (tmp_path / "pw",)


def test_account_with_0x_checksummed_address_and_second_file(tmp_path: Path) -> None:
    address = make_account(tmp_path / "keys", SELF, "second")
    (tmp_path / "a").write_text("first\n")
    (tmp_path / "b").write_text("second\n")
    config = parse(
        {"self_secret": "0x" + address.upper()},
        tmp_path,
        extra='[account]\npassword = ["a", "b"]\n',
    )
    assert config.secretstore.self_key == SELF


def test_keys_path_and_base_path(tmp_path: Path) -> None:
    base = tmp_path / "base"
    address = make_account(base / "mykeys", SELF, "pw")
    (base / "pwfile").write_text("pw\n")
    config = parse(
        {"self_secret": address},
        tmp_path,
        extra=f'[parity]\nbase_path = "{base}"\nkeys_path = "$BASE/mykeys"\n'
        '[account]\npassword = ["$BASE/pwfile"]\n',
    )
    assert config.base_path == base
    assert config.keys_path == base / "mykeys"
    assert config.secretstore.path == base / "secretstore"
    assert config.secretstore.self_key == SELF


def test_account_wrong_password(tmp_path: Path) -> None:
    address = make_account(tmp_path / "keys", SELF, "right")
    (tmp_path / "pw").write_text("wrong\nalso wrong\n")
    problem = fails(
        {"self_secret": address},
        tmp_path,
        "secretstore.self_secret",
        extra='[account]\npassword = ["pw"]\n',
    )
    assert "none of the 2 passwords" in problem
    assert "wrong" not in problem.replace("none of", "")  # no password echoed


def test_account_without_password_files(tmp_path: Path) -> None:
    address = make_account(tmp_path / "keys", SELF, "right")
    assert "no password" in fails({"self_secret": address}, tmp_path, "account.password")


def test_account_missing_password_file(tmp_path: Path) -> None:
    address = make_account(tmp_path / "keys", SELF, "right")
    problem = fails(
        {"self_secret": address},
        tmp_path,
        "account.password[0]",
        extra='[account]\npassword = ["missing.txt"]\n',
    )
    assert "missing.txt" in problem


def test_account_not_in_keystore(tmp_path: Path) -> None:
    (tmp_path / "pw").write_text("pw\n")
    problem = fails(
        {"self_secret": PEER_A.address.hex()},
        tmp_path,
        "secretstore.self_secret",
        extra='[account]\npassword = ["pw"]\n',
    )
    assert "no keystore file" in problem


def test_a_parity_keystore_subdirectory_is_pointed_out(tmp_path: Path) -> None:
    make_account(tmp_path / "keys" / "ethereum", SELF, "pw")  # Parity's keys/<chain>/ layout
    (tmp_path / "pw").write_text("pw\n")
    problem = fails(
        {"self_secret": SELF.address.hex()},
        tmp_path,
        "secretstore.self_secret",
        extra='[account]\npassword = ["pw"]\n',
    )
    wanted = tmp_path / "keys" / "ethereum"
    assert f'it is in {wanted}: set [parity] keys_path = "{wanted}"' in problem
    config = parse(
        {"self_secret": SELF.address.hex()},
        tmp_path,
        extra=f'[parity]\nkeys_path = "{wanted}"\n[account]\npassword = ["pw"]\n',
    )
    assert config.secretstore.self_key == SELF


def test_password_list_of_wrong_type(tmp_path: Path) -> None:
    fails({}, tmp_path, "account.password", extra='[account]\npassword = "pw"\n')
    fails({}, tmp_path, "account.password[1]", extra='[account]\npassword = ["pw", 3]\n')


# --- admin_public ---------------------------------------------------------------------------


def test_admin_public(tmp_path: Path) -> None:
    store = parse({"admin_public": PEER_A.node_id.hex()}, tmp_path).secretstore
    assert store.admin_public == PEER_A.public


@pytest.mark.parametrize(
    ("value", "problem"),
    [("zz" * 64, "not hex"), ("ab" * 63, "64 bytes"), ("01" * 64, "not on secp256k1")],
)
def test_bad_admin_public(value: str, problem: str, tmp_path: Path) -> None:
    assert problem in fails({"admin_public": value}, tmp_path, "secretstore.admin_public")


# --- nodes ----------------------------------------------------------------------------------


def test_nodes_sorted_and_self_added_with_listen_address(tmp_path: Path) -> None:
    nodes = [node(PEER_A, port=9001), node(PEER_B, "node-b.example", 9002)]
    store = parse({"nodes": nodes, "port": 9100}, tmp_path).secretstore
    expected = {
        NodeAddress(PEER_A.node_id, "127.0.0.1", 9001),
        NodeAddress(PEER_B.node_id, "node-b.example", 9002),
        NodeAddress(SELF.node_id, "127.0.0.1", 9100),
    }
    assert set(store.nodes) == expected
    assert [n.node_id for n in store.nodes] == sorted(n.node_id for n in expected)
    assert store.node_ids() == {PEER_A.node_id, PEER_B.node_id, SELF.node_id}
    assert store.address_of_node(PEER_B.node_id) == NodeAddress(
        PEER_B.node_id, "node-b.example", 9002
    )
    assert store.address_of_node(KeyPair.generate(SeededRng(9)).node_id) is None


def test_self_listed_keeps_its_listed_address(tmp_path: Path) -> None:
    nodes = [node(SELF, "10.0.0.1", 7000), node(PEER_A, port=9001)]
    store = parse({"nodes": nodes}, tmp_path).secretstore
    assert NodeAddress(SELF.node_id, "10.0.0.1", 7000) in store.nodes
    assert len(store.nodes) == 2


def test_node_with_0x_public_and_ipv6(tmp_path: Path) -> None:
    entry = f"0x{PEER_A.node_id.hex()}@[::1]:9001"
    store = parse({"nodes": [entry]}, tmp_path).secretstore
    assert NodeAddress(PEER_A.node_id, "::1", 9001) in store.nodes
    assert str(NodeAddress(PEER_A.node_id, "::1", 9001)) == f"{PEER_A.node_id.hex()}@[::1]:9001"


def test_node_listed_twice(tmp_path: Path) -> None:
    nodes = [node(PEER_A, port=9001), node(PEER_B, port=9002), node(PEER_A, port=9003)]
    problem = fails({"nodes": nodes}, tmp_path, "secretstore.nodes[2]")
    assert "listed twice" in problem and "nodes[0]" in problem


def test_two_nodes_at_one_address(tmp_path: Path) -> None:
    nodes = [node(PEER_A, port=9001), node(PEER_B, port=9001)]
    assert "also used" in fails({"nodes": nodes}, tmp_path, "secretstore.nodes[1]")


@pytest.mark.parametrize(
    ("entry", "problem"),
    [
        ("{a}", "expected <64-byte public key hex>@<host>:<port>"),
        ("{a}@127.0.0.1", "bad node address"),
        ("{a}@:9001", "bad node address"),
        ("{a}@1.2.3.4:9001@x", "bad node"),
        ("{a}@::1:9001", "bad node address"),
        ("{a}@127.0.0.1:0", "bad port"),
        ("{a}@127.0.0.1:65536", "bad port"),
        ("{a}@127.0.0.1:abc", "bad port"),
        ("{a}@127.0.0.1:-1", "bad port"),
        ("{a}@bad_host!:9001", "bad host"),
        ("{a}@-lead.example:9001", "bad host"),
        ("{short}@127.0.0.1:9001", "64 bytes"),
        ("{nothex}@127.0.0.1:9001", "not hex"),
        ("{offcurve}@127.0.0.1:9001", "not on secp256k1"),
    ],
)
def test_bad_node(entry: str, problem: str, tmp_path: Path) -> None:
    text = entry.format(
        a=PEER_A.node_id.hex(), short="ab" * 63, nothex="zz" * 64, offcurve="01" * 64
    )
    nodes = [node(PEER_B, port=9002), text]
    assert problem in fails({"nodes": nodes}, tmp_path, "secretstore.nodes[1]")


def test_nodes_of_wrong_type(tmp_path: Path) -> None:
    fails({"nodes": node(PEER_A)}, tmp_path, "secretstore.nodes")
    fails({"nodes": [node(PEER_A), 5]}, tmp_path, "secretstore.nodes[1]")


# --- listeners ------------------------------------------------------------------------------


@pytest.mark.parametrize("key", ["interface", "http_interface"])
@pytest.mark.parametrize(
    ("value", "resolved"),
    [("local", "127.0.0.1"), ("all", "0.0.0.0"), ("10.1.2.3", "10.1.2.3"), ("::1", "::1")],
)
def test_interfaces(key: str, value: str, resolved: str, tmp_path: Path) -> None:
    assert getattr(parse({key: value}, tmp_path).secretstore, key) == resolved


@pytest.mark.parametrize("key", ["interface", "http_interface"])
@pytest.mark.parametrize("value", ["eth0", "localhost", "300.1.1.1", ""])
def test_unknown_interface(key: str, value: str, tmp_path: Path) -> None:
    assert "unknown interface" in fails({key: value}, tmp_path, f"secretstore.{key}")


@pytest.mark.parametrize("key", ["port", "http_port"])
def test_ports(key: str, tmp_path: Path) -> None:
    assert getattr(parse({key: 12000}, tmp_path).secretstore, key) == 12000
    assert getattr(parse({key: 0}, tmp_path).secretstore, key) == 0  # the OS picks one
    assert "0..65535" in fails({key: 65536}, tmp_path, f"secretstore.{key}")
    assert "0..65535" in fails({key: -1}, tmp_path, f"secretstore.{key}")
    assert "integer" in fails({key: "8083"}, tmp_path, f"secretstore.{key}")
    assert "integer" in fails({key: True}, tmp_path, f"secretstore.{key}")


def test_misc_ports_shift_and_unsafe_expose(tmp_path: Path) -> None:
    store = parse(
        {"port": 9000, "http_port": 9001, "interface": "local"},
        tmp_path,
        extra="[misc]\nports_shift = 10\nunsafe_expose = true\n",
    ).secretstore
    assert (store.port, store.http_port) == (9010, 9011)
    assert store.interface == store.http_interface == "0.0.0.0"
    assert "65535" in fails(
        {"port": 65530}, tmp_path, "secretstore.port", extra="[misc]\nports_shift = 10\n"
    )


# --- path -----------------------------------------------------------------------------------


def test_path(tmp_path: Path) -> None:
    assert parse({"path": "db"}, tmp_path).secretstore.path == tmp_path / "db"
    assert parse({"path": "/var/ss"}, tmp_path).secretstore.path == Path("/var/ss")
    assert parse({"path": "$BASE/x"}, tmp_path).secretstore.path == tmp_path / "x"
    assert parse({"path": "$HOME/ss"}, tmp_path).secretstore.path == Path.home() / "ss"
    assert "string" in fails({"path": 1}, tmp_path, "secretstore.path")


# --- CORS -----------------------------------------------------------------------------------


def test_cors_parity_list(tmp_path: Path) -> None:
    cors = parse({"cors": ["http://a.io", "http://b.io"]}, tmp_path).secretstore.http_cors
    assert cors == CorsOrigins(False, ("http://a.io", "http://b.io"))
    assert cors.allows("http://a.io") and not cors.allows("http://c.io")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("all", CorsOrigins.all()),
        ("*", CorsOrigins.all()),
        (["any"], CorsOrigins.all()),
        ("none", CorsOrigins.none()),
        ([], CorsOrigins.none()),
        ("http://a.io, http://b.io", CorsOrigins(False, ("http://a.io", "http://b.io"))),
    ],
)
def test_http_cors(value: object, expected: CorsOrigins, tmp_path: Path) -> None:
    cors = parse({"http_cors": value}, tmp_path).secretstore.http_cors
    assert cors == expected
    assert cors.allows("http://x.io") is expected.allow_all


def test_bad_cors(tmp_path: Path) -> None:
    assert "either" in fails(
        {"cors": ["all"], "http_cors": "all"}, tmp_path, "secretstore.http_cors"
    )
    assert "alone" in fails({"cors": ["http://a.io", "all"]}, tmp_path, "secretstore.cors")
    assert "alone" in fails({"http_cors": "http://a b"}, tmp_path, "secretstore.http_cors")
    assert "list of origins" in fails({"http_cors": 3}, tmp_path, "secretstore.http_cors")


# --- our own options ------------------------------------------------------------------------


def test_chain_rpc_url(tmp_path: Path) -> None:
    url = "http://127.0.0.1:8545"
    assert parse({"chain_rpc_url": url}, tmp_path).secretstore.chain_rpc_url == url
    assert "bad URL" in fails(
        {"chain_rpc_url": "127.0.0.1:8545"}, tmp_path, "secretstore.chain_rpc_url"
    )
    assert "bad URL" in fails({"chain_rpc_url": "ftp://x"}, tmp_path, "secretstore.chain_rpc_url")


@pytest.mark.parametrize("key", ["session_timeout", "keep_alive_interval"])
def test_durations(key: str, tmp_path: Path) -> None:
    assert getattr(parse({key: 5}, tmp_path).secretstore, key) == 5.0
    assert getattr(parse({key: 0.25}, tmp_path).secretstore, key) == 0.25
    for bad in (0, -1, 86401):
        assert "seconds" in fails({key: bad}, tmp_path, f"secretstore.{key}")
    assert "number" in fails({key: "5s"}, tmp_path, f"secretstore.{key}")
    assert "number" in fails({key: True}, tmp_path, f"secretstore.{key}")


@pytest.mark.parametrize(
    ("value", "level"),
    [("info", "info"), ("WARN", "warning"), ("trace", "debug"), ("error", "error")],
)
def test_log_level(value: str, level: str, tmp_path: Path) -> None:
    assert parse({"log_level": value}, tmp_path).secretstore.log_level == level


def test_unknown_log_level(tmp_path: Path) -> None:
    assert "unknown level" in fails({"log_level": "loud"}, tmp_path, "secretstore.log_level")


# --- document shape -------------------------------------------------------------------------


def test_unknown_key_lists_the_known_ones(tmp_path: Path) -> None:
    problem = fails({"self_secrets": "x"}, tmp_path, "secretstore.self_secrets")
    assert "unknown option" in problem
    assert all(key in problem for key in KNOWN_SECRETSTORE_KEYS)


def test_other_parity_tables_are_ignored(tmp_path: Path) -> None:
    extra = '[network]\nport = 30303\n[rpc]\napis = ["web3"]\n[parity]\nchain = "dev"\n'
    assert parse({}, tmp_path, extra=extra).secretstore.self_key == SELF


def test_unknown_table(tmp_path: Path) -> None:
    assert "unknown table" in fails({}, tmp_path, "secretstor", extra="[secretstor]\nx = 1\n")


def test_section_that_is_not_a_table(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config("secretstore = 1\n", tmp_path)
    assert info.value.key_path == "secretstore"


def test_toml_syntax_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="TOML syntax error"):
        parse_config("[secretstore\nport = 1\n", tmp_path)


def test_load_config_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path / "nope.toml")
    assert info.value.key_path == str(tmp_path / "nope.toml")
    assert "not found" in info.value.problem


def test_load_config_reads_relative_to_the_file(tmp_path: Path) -> None:
    directory = tmp_path / "node1"
    directory.mkdir()
    file = directory / "config.toml"
    file.write_text(toml({"path": "db", "acl_contract": "none"}))
    config = load_config(file)
    assert config.source == file
    assert config.secretstore.path == directory / "db"
    assert config.secretstore.acl_contract is None


def test_load_config_syntax_error_names_the_file(tmp_path: Path) -> None:
    file = tmp_path / "bad.toml"
    file.write_text("port = = 1\n")
    with pytest.raises(ConfigError) as info:
        load_config(file)
    assert info.value.key_path == str(file)


# --- only ConfigError, whatever the value ---------------------------------------------------

_VALUES = st.one_of(
    st.text(max_size=140),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.booleans(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.lists(st.text(max_size=140), max_size=3),
)


@given(key=st.sampled_from(sorted(KNOWN_SECRETSTORE_KEYS - {"cors", "http_cors"})), value=_VALUES)
def test_any_value_loads_or_raises_config_error(key: str, value: object) -> None:
    base = Path("/nonexistent-base")
    try:
        config = parse_config(toml({key: value}), base)
    except ConfigError as exc:
        assert exc.key_path.startswith(("secretstore.", "account."))
    else:
        assert config.secretstore.key_pair is not None


@given(host=st.text(max_size=30), port=st.text(max_size=8))
def test_any_node_address_loads_or_raises_config_error(host: str, port: str) -> None:
    entry = f"{PEER_A.node_id.hex()}@{host}:{port}"
    try:
        store = parse_config(toml({"nodes": [entry]}), Path("/nonexistent-base")).secretstore
    except ConfigError as exc:
        assert exc.key_path == "secretstore.nodes[0]"
    else:
        listed = store.address_of_node(PEER_A.node_id)
        assert listed is not None and 1 <= listed.port <= 65535


@given(url=st.text(max_size=40))
def test_any_url_loads_or_raises_config_error(url: str) -> None:
    for candidate in (url, "http://" + url, "http://[" + url):
        try:
            parse_config(toml({"chain_rpc_url": candidate}), Path("/nonexistent-base"))
        except ConfigError as exc:
            assert exc.key_path == "secretstore.chain_rpc_url"


@given(text=st.text(max_size=200))
def test_any_text_loads_or_raises_config_error(text: str) -> None:
    try:
        config = parse_config(text, Path("/nonexistent-base"))
    except ConfigError as exc:
        assert exc.key_path and exc.problem
    else:
        assert isinstance(config, NodeConfig)


def test_limits_are_read(tmp_path: Path) -> None:
    limits = parse(
        {
            "max_sessions_per_peer": 3,
            "max_pending_handshakes": 10,
            "max_pending_handshakes_per_address": 2,
            "reserved_handshakes_for_nodes": 5,
        },
        tmp_path,
    ).secretstore.limits
    assert limits == ResourceLimits(3, 10, 2, 5)


def test_handshake_defaults_fit_a_small_total(tmp_path: Path) -> None:
    limits = parse({"max_pending_handshakes": 3}, tmp_path).secretstore.limits
    assert limits.max_pending_handshakes_per_address == 3
    assert limits.reserved_handshakes_for_nodes == 1


@pytest.mark.parametrize(
    ("options", "key", "expected"),
    [
        ({"max_sessions_per_peer": 0}, "max_sessions_per_peer", "expected 1.."),
        ({"max_sessions_per_peer": "many"}, "max_sessions_per_peer", "integer"),
        ({"max_pending_handshakes": 0}, "max_pending_handshakes", "expected 1.."),
        ({"max_pending_handshakes_per_address": 0}, "max_pending_handshakes_per_address", "1.."),
        (
            {"max_pending_handshakes": 8, "max_pending_handshakes_per_address": 9},
            "max_pending_handshakes_per_address",
            "expected 1..8, got 9",
        ),
        ({"reserved_handshakes_for_nodes": -1}, "reserved_handshakes_for_nodes", "0..64"),
        ({"reserved_handshakes_for_nodes": 65}, "reserved_handshakes_for_nodes", "0..64"),
    ],
)
def test_bad_limits(options: dict[str, object], key: str, expected: str, tmp_path: Path) -> None:
    assert expected in fails(options, tmp_path, f"secretstore.{key}")


def test_require_bound_requests(tmp_path: Path) -> None:
    assert parse({"require_bound_requests": True}, tmp_path).secretstore.require_bound_requests
    assert not parse({"require_bound_requests": False}, tmp_path).secretstore.require_bound_requests
    assert "true or false" in fails(
        {"require_bound_requests": "yes"}, tmp_path, "secretstore.require_bound_requests"
    )


def test_deadlines_default_and_are_read(tmp_path: Path) -> None:
    assert parse({}, tmp_path).secretstore.deadlines == Deadlines(2.0, 5.0, 10.0, 256)
    options = {
        "peer_timeout": 0.5,
        "handshake_timeout": 3,
        "http_read_timeout": 4.5,
        "http_max_requests": 7,
    }
    assert parse(options, tmp_path).secretstore.deadlines == Deadlines(0.5, 3.0, 4.5, 7)


@pytest.mark.parametrize(
    ("key", "value", "problem"),
    [
        ("peer_timeout", 0, "more than 0"),
        ("peer_timeout", "2", "a number of seconds"),
        ("handshake_timeout", -1, "more than 0"),
        ("http_read_timeout", True, "a number of seconds"),
        ("http_max_requests", 0, "1..65536"),
        ("http_max_requests", 1.5, "an integer"),
    ],
)
def test_bad_deadlines_name_their_key(
    key: str, value: object, problem: str, tmp_path: Path
) -> None:
    assert problem in fails({key: value}, tmp_path, f"secretstore.{key}")


def test_audit_sync(tmp_path: Path) -> None:
    assert parse({"audit_sync": True}, tmp_path).secretstore.audit_sync
    assert "true or false" in fails({"audit_sync": 1}, tmp_path, "secretstore.audit_sync")


def test_refresh_schedule_options(tmp_path: Path) -> None:
    store = parse({}, tmp_path).secretstore
    assert store.refresh_interval == 0.0 and store.refresh_batch_size == 256
    store = parse({"refresh_interval": 86400, "refresh_batch_size": 64}, tmp_path).secretstore
    assert store.refresh_interval == 86400.0 and store.refresh_batch_size == 64
    assert "0 (off) or 1..315360000" in fails(
        {"refresh_interval": 0.5}, tmp_path, "secretstore.refresh_interval"
    )
    assert "seconds" in fails({"refresh_interval": "1d"}, tmp_path, "secretstore.refresh_interval")
    assert "1..4096" in fails({"refresh_batch_size": 0}, tmp_path, "secretstore.refresh_batch_size")
