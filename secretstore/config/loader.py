"""Read a Parity-format TOML file into a NodeConfig; every error names its key path."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any, Final

from secretstore.config.model import (
    DEFAULT_CHAIN_CONFIRMATIONS,
    DEFAULT_CHAIN_MIGRATION_DELAY,
    DEFAULT_CHAIN_POLL_INTERVAL,
    DEFAULT_CHAIN_RETRY_INTERVAL,
    DEFAULT_ECDSA_PRESIGNATURES,
    DEFAULT_HTTP_PORT,
    DEFAULT_KEEP_ALIVE_INTERVAL,
    DEFAULT_KEYS_PATH,
    DEFAULT_NODE_SET_CHANGE_KEYS_IN_FLIGHT,
    DEFAULT_PATH,
    DEFAULT_PORT,
    DEFAULT_REFRESH_BATCH_SIZE,
    DEFAULT_SESSION_TIMEOUT,
    MAX_ECDSA_PRESIGNATURES,
    MAX_NODE_SET_CHANGE_KEYS_IN_FLIGHT,
    MAX_REFRESH_BATCH_SIZE,
    MAX_REFRESH_INTERVAL,
    MIN_REFRESH_INTERVAL,
    Deadlines,
    NodeAddress,
    NodeConfig,
    ResourceLimits,
    SecretStoreConfig,
)
from secretstore.config.values import (
    expand_path,
    get_bool,
    get_int,
    get_interval,
    get_path,
    get_seconds,
    get_str,
    get_str_list,
    parse_address,
    parse_admin_public,
    parse_contract,
    parse_cors,
    parse_interface,
    parse_log_level,
    parse_node,
    parse_url,
    shifted_port,
)
from secretstore.crypto.curve import Scalar
from secretstore.crypto.keys import KeyPair
from secretstore.encoding import parse_hex
from secretstore.errors import (
    ConfigError,
    CryptoError,
    InvalidEncoding,
    KeystoreError,
    WrongPassword,
)
from secretstore.types import Address

#: Parity's top-level tables; the ones other than ours are accepted and ignored.
PARITY_TABLES: Final = frozenset(
    {
        "parity", "account", "ui", "network", "rpc", "websockets", "ipc", "dapps",
        "secretstore", "private_tx", "ipfs", "mining", "footprint", "snapshots", "vm", "misc",
        "stratum", "whisper", "light", "metrics",
    }
)  # fmt: skip
#: Parity's [secretstore] keys (parity/cli/mod.rs, struct SecretStore).
PARITY_SECRETSTORE_KEYS: Final = (
    "disable", "disable_http", "disable_auto_migrate", "acl_contract", "service_contract",
    "service_contract_srv_gen", "service_contract_srv_retr", "service_contract_doc_store",
    "service_contract_doc_sretr", "self_secret", "admin_public", "nodes", "server_set_contract",
    "interface", "port", "http_interface", "http_port", "path", "cors",
)  # fmt: skip
#: Our own [secretstore] keys (see docs/CONFIG.md).
OUR_SECRETSTORE_KEYS: Final = (
    "http_cors", "chain_rpc_url", "session_timeout", "keep_alive_interval", "log_level",
    "max_sessions_per_peer", "max_pending_handshakes", "max_pending_handshakes_per_address",
    "reserved_handshakes_for_nodes",
    "require_bound_requests",
    "peer_timeout", "handshake_timeout", "http_read_timeout", "http_max_requests",
    "node_set_change_keys_in_flight",
    "refresh_interval", "refresh_batch_size",
    "require_shadow_retrieval",
    "audit_sync",
    "ecdsa_presignatures",
    "registry_address", "chain_confirmations", "chain_migration_delay", "chain_retry_interval",
    "chain_poll_interval",
)  # fmt: skip
KNOWN_SECRETSTORE_KEYS: Final = frozenset(PARITY_SECRETSTORE_KEYS + OUR_SECRETSTORE_KEYS)
#: The options that need an Ethereum chain: (key, Parity's default when absent).
CHAIN_OPTIONS: Final = (
    ("acl_contract", "registry"),
    ("service_contract", "none"),
    ("service_contract_srv_gen", "none"),
    ("service_contract_srv_retr", "none"),
    ("service_contract_doc_store", "none"),
    ("service_contract_doc_sretr", "none"),
    ("server_set_contract", "registry"),
)


def load_config(path: Path) -> NodeConfig:
    """Read and validate a node's TOML config file. Raises ConfigError."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(str(path), "config file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(str(path), f"cannot read config file: {exc}") from None
    return parse_config(text, path.resolve().parent, source=path)


def parse_config(text: str, base_dir: Path, *, source: Path | None = None) -> NodeConfig:
    """Validate TOML text; relative paths are relative to `base_dir`. Raises ConfigError."""
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(str(source or "config"), f"TOML syntax error: {exc}") from None
    for name, value in doc.items():
        if name not in PARITY_TABLES:
            raise ConfigError(name, f"unknown table; known: {', '.join(sorted(PARITY_TABLES))}")
        if not isinstance(value, dict):
            raise ConfigError(name, "expected a table, e.g. [" + name + "]")
    parity, account, misc = doc.get("parity", {}), doc.get("account", {}), doc.get("misc", {})
    store: dict[str, Any] = doc.get("secretstore", {})
    for key in store:
        if key not in KNOWN_SECRETSTORE_KEYS:
            known = ", ".join(sorted(KNOWN_SECRETSTORE_KEYS))
            raise ConfigError(f"secretstore.{key}", f"unknown option; known options: {known}")

    home = Path.home()
    base_path = get_path(parity, "parity.base_path", str(base_dir), base_dir, base_dir)
    keys_path = get_path(parity, "parity.keys_path", DEFAULT_KEYS_PATH, base_path, base_dir)
    password_files = tuple(
        expand_path(p, base_path, base_dir, home) for p in get_str_list(account, "account.password")
    )
    ports_shift = get_int(misc, "misc.ports_shift", 0, 0, 65535)
    unsafe_expose = get_bool(misc, "misc.unsafe_expose", False)

    disable = get_bool(store, "secretstore.disable", False)
    interface = parse_interface(store, "interface", unsafe_expose)
    port = shifted_port(
        get_int(store, "secretstore.port", DEFAULT_PORT, 0, 65535), ports_shift, "port"
    )
    self_key, self_account = _self_key(store, disable, keys_path, password_files)
    nodes = _nodes(store)
    if self_key is not None and all(n.node_id != self_key.node_id for n in nodes):
        # Parity adds this node to the set with its listening address.
        nodes = (*nodes, NodeAddress(self_key.node_id, interface, port))

    secretstore = SecretStoreConfig(
        disable=disable,
        disable_http=get_bool(store, "secretstore.disable_http", False),
        disable_auto_migrate=get_bool(store, "secretstore.disable_auto_migrate", False),
        acl_contract=parse_contract(store, "acl_contract", "registry"),
        service_contract=parse_contract(store, "service_contract", "none"),
        service_contract_srv_gen=parse_contract(store, "service_contract_srv_gen", "none"),
        service_contract_srv_retr=parse_contract(store, "service_contract_srv_retr", "none"),
        service_contract_doc_store=parse_contract(store, "service_contract_doc_store", "none"),
        service_contract_doc_sretr=parse_contract(store, "service_contract_doc_sretr", "none"),
        server_set_contract=parse_contract(store, "server_set_contract", "registry"),
        self_key=self_key,
        self_account=self_account,
        admin_public=parse_admin_public(store),
        nodes=tuple(sorted(nodes, key=lambda n: n.node_id)),
        interface=interface,
        port=port,
        http_interface=parse_interface(store, "http_interface", unsafe_expose),
        http_port=shifted_port(
            get_int(store, "secretstore.http_port", DEFAULT_HTTP_PORT, 0, 65535),
            ports_shift,
            "http_port",
        ),
        path=get_path(store, "secretstore.path", DEFAULT_PATH, base_path, base_dir),
        http_cors=parse_cors(store),
        chain_rpc_url=parse_url(store, "secretstore.chain_rpc_url"),
        session_timeout=get_seconds(store, "secretstore.session_timeout", DEFAULT_SESSION_TIMEOUT),
        keep_alive_interval=get_seconds(
            store, "secretstore.keep_alive_interval", DEFAULT_KEEP_ALIVE_INTERVAL
        ),
        log_level=parse_log_level(store),
        limits=_limits(store),
        require_bound_requests=get_bool(store, "secretstore.require_bound_requests", False),
        deadlines=_deadlines(store),
        node_set_change_keys_in_flight=get_int(
            store,
            "secretstore.node_set_change_keys_in_flight",
            DEFAULT_NODE_SET_CHANGE_KEYS_IN_FLIGHT,
            1,
            MAX_NODE_SET_CHANGE_KEYS_IN_FLIGHT,
        ),
        refresh_interval=get_interval(
            store, "secretstore.refresh_interval", MIN_REFRESH_INTERVAL, MAX_REFRESH_INTERVAL
        ),
        refresh_batch_size=get_int(
            store,
            "secretstore.refresh_batch_size",
            DEFAULT_REFRESH_BATCH_SIZE,
            1,
            MAX_REFRESH_BATCH_SIZE,
        ),
        require_shadow_retrieval=get_bool(store, "secretstore.require_shadow_retrieval", False),
        audit_sync=get_bool(store, "secretstore.audit_sync", False),
        ecdsa_presignatures=get_int(
            store,
            "secretstore.ecdsa_presignatures",
            DEFAULT_ECDSA_PRESIGNATURES,
            0,
            MAX_ECDSA_PRESIGNATURES,
        ),
        registry_address=parse_address(store, "secretstore.registry_address"),
        chain_confirmations=get_int(
            store, "secretstore.chain_confirmations", DEFAULT_CHAIN_CONFIRMATIONS, 0, 1000
        ),
        chain_migration_delay=get_int(
            store, "secretstore.chain_migration_delay", DEFAULT_CHAIN_MIGRATION_DELAY, 0, 10000
        ),
        chain_retry_interval=get_int(
            store, "secretstore.chain_retry_interval", DEFAULT_CHAIN_RETRY_INTERVAL, 1, 10000
        ),
        chain_poll_interval=get_seconds(
            store, "secretstore.chain_poll_interval", DEFAULT_CHAIN_POLL_INTERVAL
        ),
    )
    return NodeConfig(
        secretstore=secretstore,
        base_path=base_path,
        keys_path=keys_path,
        password_files=password_files,
        source=source,
    )


def read_password_files(files: tuple[Path, ...]) -> list[str]:
    """Every line of every file, trimmed, in order (Parity's passwords_from_files)."""
    passwords: list[str] = []
    for index, path in enumerate(files):
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            raise ConfigError(
                f"account.password[{index}]", f"cannot read password file {path}: {reason}"
            ) from None
        passwords.extend(line.strip() for line in text.splitlines())
    return passwords


def _limits(store: dict[str, Any]) -> ResourceLimits:
    default = ResourceLimits()
    total = get_int(
        store, "secretstore.max_pending_handshakes", default.max_pending_handshakes, 1, 65536
    )
    return ResourceLimits(
        max_sessions_per_peer=get_int(
            store, "secretstore.max_sessions_per_peer", default.max_sessions_per_peer, 1, 1 << 20
        ),
        max_pending_handshakes=total,
        max_pending_handshakes_per_address=get_int(
            store,
            "secretstore.max_pending_handshakes_per_address",
            min(default.max_pending_handshakes_per_address, total),
            1,
            total,
        ),
        reserved_handshakes_for_nodes=get_int(
            store,
            "secretstore.reserved_handshakes_for_nodes",
            min(default.reserved_handshakes_for_nodes, total // 2),
            0,
            total,
        ),
    )


def _deadlines(store: dict[str, Any]) -> Deadlines:
    default = Deadlines()
    return Deadlines(
        peer_timeout=get_seconds(store, "secretstore.peer_timeout", default.peer_timeout),
        handshake_timeout=get_seconds(
            store, "secretstore.handshake_timeout", default.handshake_timeout
        ),
        http_read_timeout=get_seconds(
            store, "secretstore.http_read_timeout", default.http_read_timeout
        ),
        http_max_requests=get_int(
            store, "secretstore.http_max_requests", default.http_max_requests, 1, 65536
        ),
    )


def _nodes(store: dict[str, Any]) -> tuple[NodeAddress, ...]:
    nodes: list[NodeAddress] = []
    for index, entry in enumerate(get_str_list(store, "secretstore.nodes")):
        key_path = f"secretstore.nodes[{index}]"
        node = parse_node(entry, key_path)
        for other_index, other in enumerate(nodes):
            if other.node_id == node.node_id:
                raise ConfigError(
                    key_path, f"node listed twice (also secretstore.nodes[{other_index}])"
                )
            if (other.host, other.port) == (node.host, node.port):
                raise ConfigError(
                    key_path, f"address {node.host}:{node.port} also used by nodes[{other_index}]"
                )
        nodes.append(node)
    return tuple(nodes)


def _self_key(
    store: dict[str, Any], disable: bool, keys_path: Path, password_files: tuple[Path, ...]
) -> tuple[KeyPair | None, Address | None]:
    key_path = "secretstore.self_secret"
    form = "a 64-hex secret or the 40-hex address of a keystore account"
    raw = get_str(store, key_path)
    if raw is None:
        if disable:
            return None, None
        raise ConfigError(key_path, f"required: {form}")
    digits = raw.strip()
    digits = digits[2:] if digits[:2] in ("0x", "0X") else digits
    if len(digits) == 64:
        try:
            return KeyPair.from_secret(Scalar.secret_from_bytes(parse_hex(digits, 32))), None
        except InvalidEncoding:
            raise ConfigError(key_path, f"bad hex: expected {form}") from None
        except CryptoError:
            raise ConfigError(key_path, "not a valid secp256k1 secret (zero or >= n)") from None
    if len(digits) == 40:
        try:
            account = Address(parse_hex(digits, 20))
        except InvalidEncoding:
            raise ConfigError(key_path, f"bad hex: expected {form}") from None
        return _unlock(account, keys_path, password_files), account
    raise ConfigError(key_path, f"wrong length ({len(digits)} hex digits): expected {form}")


def _unlock(account: Address, keys_path: Path, password_files: tuple[Path, ...]) -> KeyPair:
    # Imported here: eth-account takes ~0.5 s to import, and a node with a raw secret
    # (every local cluster node) does not need it.
    from secretstore.keystore import Keystore

    key_path = "secretstore.self_secret"
    passwords = read_password_files(password_files)
    keystore = Keystore(keys_path)
    if not keystore.has_account(account):
        found = keystore.subdirectories_with(account)
        hint = f'; it is in {found[0]}: set [parity] keys_path = "{found[0]}"' if found else ""
        raise ConfigError(
            key_path, f"no keystore file for account 0x{account.hex()} in {keys_path}{hint}"
        )
    if not passwords:
        raise ConfigError(
            "account.password", f"no password file gives a password for account 0x{account.hex()}"
        )
    for password in passwords:  # like Parity: the first password that unlocks the account
        try:
            return keystore.unlock(account, password)
        except WrongPassword:
            continue
        except KeystoreError as exc:  # unreadable file, key not matching its address
            raise ConfigError(key_path, f"keystore: {exc}") from None
    raise ConfigError(
        key_path,
        f"none of the {len(passwords)} passwords from account.password unlocks account "
        f"0x{account.hex()}",
    )
