"""The node's configuration as frozen dataclasses: Parity's [secretstore] options, resolved."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Final

from secretstore.crypto.curve import Point
from secretstore.crypto.keys import KeyPair
from secretstore.errors import ConfigError
from secretstore.types import Address, NodeId

# --- defaults (Parity's, from parity/cli/mod.rs, unless marked "ours") ------------------------

DEFAULT_PORT: Final = 8083
DEFAULT_HTTP_PORT: Final = 8082
DEFAULT_INTERFACE: Final = "127.0.0.1"  # Parity's "local"
DEFAULT_PATH: Final = "$BASE/secretstore"
DEFAULT_KEYS_PATH: Final = "$BASE/keys"
#: ours: how long a session may run before it fails with SessionTimeout (Parity: 60 s, fixed).
DEFAULT_SESSION_TIMEOUT: Final = 30.0
#: ours: how often an idle mesh connection sends a keep-alive.
DEFAULT_KEEP_ALIVE_INTERVAL: Final = 10.0
#: ours: how many keys a node set change moves at once (Parity: 64, fixed).
DEFAULT_NODE_SET_CHANGE_KEYS_IN_FLIGHT: Final = 64
MAX_NODE_SET_CHANGE_KEYS_IN_FLIGHT: Final = 4096
#: Keys per batch of a refresh of every key (and the most: the refresh's MAX_LISTED_KEYS).
DEFAULT_REFRESH_BATCH_SIZE: Final = 256
MAX_REFRESH_BATCH_SIZE: Final = 4096
#: The shortest and longest refresh_interval (a second, for tests; ten years).
MIN_REFRESH_INTERVAL: Final = 1.0
MAX_REFRESH_INTERVAL: Final = 10 * 365 * 86400.0
#: ours: the logging level of the node process.
DEFAULT_LOG_LEVEL: Final = "info"
LOG_LEVELS: Final = ("error", "warning", "info", "debug")
#: ours: sessions one peer may have open on this node as their master. Honest load stays far
#: below: a session holds its slot only while it runs, so a master with 32 concurrent HTTP
#: requests has about 32 open on each peer; 256 leaves 8 times that before a refusal.
DEFAULT_MAX_SESSIONS_PER_PEER: Final = 256
#: ours: inbound mesh handshakes pending at once, in total.
DEFAULT_MAX_PENDING_HANDSHAKES: Final = 64
#: ours: inbound mesh handshakes pending at once from one source address (per configured node
#: at that address).
DEFAULT_MAX_PENDING_HANDSHAKES_PER_ADDRESS: Final = 4
#: ours: of the pending handshakes, how many only configured nodes' addresses may use.
DEFAULT_RESERVED_HANDSHAKES_FOR_NODES: Final = 16
#: Parity's: contract state is read this many blocks below the latest (registry, requests).
DEFAULT_CHAIN_CONFIRMATIONS: Final = 3
#: Parity's: a changed new key server set waits this many blocks before a migration starts.
DEFAULT_CHAIN_MIGRATION_DELAY: Final = 5
#: Parity's: a migration transaction is sent again after this many blocks.
DEFAULT_CHAIN_RETRY_INTERVAL: Final = 30
#: ours: how often the node asks the chain for its latest block (seconds).
DEFAULT_CHAIN_POLL_INTERVAL: Final = 1.0


# --- contract address sources -----------------------------------------------------------------


#: Presignatures per key by default (`ecdsa_presignatures`), and the most allowed.
DEFAULT_ECDSA_PRESIGNATURES: Final = 4
MAX_ECDSA_PRESIGNATURES: Final = 64


@dataclass(frozen=True, slots=True)
class ContractFromRegistry:
    """The contract's address is read from the chain's registry (Parity's "registry")."""


@dataclass(frozen=True, slots=True)
class ContractAtAddress:
    """The contract lives at a fixed 20-byte address."""

    address: Address


#: Where a contract is found; None means the option is off (Parity's "none").
ContractSource = ContractFromRegistry | ContractAtAddress | None


# --- small value types ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NodeAddress:
    """A key server of the set: its node id (64-byte public key) and where peers reach it."""

    node_id: NodeId
    host: str
    port: int

    def __str__(self) -> str:
        """Parity's `nodes` form: <public hex>@<host>:<port> (IPv6 hosts in brackets)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.node_id.hex()}@{host}:{self.port}"

    def __repr__(self) -> str:
        return f"NodeAddress({self})"


@dataclass(frozen=True, slots=True)
class CorsOrigins:
    """The origins the HTTP API accepts (Parity's `cors` / `--secretstore-http-cors`).

    `allow_all` is Parity's "all"/"any"/"*"; no origins and not allow_all is Parity's "none".
    """

    allow_all: bool
    origins: tuple[str, ...]

    @classmethod
    def none(cls) -> CorsOrigins:
        return cls(allow_all=False, origins=())

    @classmethod
    def all(cls) -> CorsOrigins:
        return cls(allow_all=True, origins=())

    def allows(self, origin: str) -> bool:
        return self.allow_all or origin in self.origins


@dataclass(frozen=True, slots=True)
class ResourceLimits:
    """How much one peer or one stranger may make this node hold (see docs/CONFIG.md)."""

    max_sessions_per_peer: int = DEFAULT_MAX_SESSIONS_PER_PEER
    max_pending_handshakes: int = DEFAULT_MAX_PENDING_HANDSHAKES
    max_pending_handshakes_per_address: int = DEFAULT_MAX_PENDING_HANDSHAKES_PER_ADDRESS
    reserved_handshakes_for_nodes: int = DEFAULT_RESERVED_HANDSHAKES_FOR_NODES


@dataclass(frozen=True, slots=True)
class Deadlines:
    """How long a node waits on a silent peer, a handshake and a slow HTTP client, and how many
    HTTP requests it serves at once (see docs/CONFIG.md, "Deadlines")."""

    #: a peer that a session waits on and that sends nothing for this long is lost for it
    peer_timeout: float = 2.0
    #: an inbound or outbound mesh handshake must end within this
    handshake_timeout: float = 5.0
    #: an HTTP request's headers, and then its body, must arrive within this
    http_read_timeout: float = 10.0
    #: HTTP requests served at once; one more is answered 503 at once
    http_max_requests: int = 256


# --- the [secretstore] section ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SecretStoreConfig:
    """Every [secretstore] option, resolved (interfaces to IPs, paths absolute, keys parsed).

    Field names follow Parity's TOML keys; see docs/CONFIG.md for each one's meaning.
    """

    # Parity's switches
    disable: bool
    disable_http: bool
    disable_auto_migrate: bool
    # contracts (need the chain: chain_rpc_url, and registry_address for "registry")
    acl_contract: ContractSource
    service_contract: ContractSource
    service_contract_srv_gen: ContractSource
    service_contract_srv_retr: ContractSource
    service_contract_doc_store: ContractSource
    service_contract_doc_sretr: ContractSource
    server_set_contract: ContractSource
    # this node's key (from self_secret: a raw secret or an unlocked keystore account);
    # None only when `disable = true` and no self_secret is given
    self_key: KeyPair | None
    #: the keystore account self_secret named, or None for a raw secret
    self_account: Address | None
    admin_public: Point | None
    #: the configured key servers, sorted by node id; always includes this node (when keyed)
    nodes: tuple[NodeAddress, ...]
    # listeners
    interface: str
    port: int
    http_interface: str
    http_port: int
    #: where the key storage (database) lives
    path: Path
    http_cors: CorsOrigins
    # ours
    chain_rpc_url: str | None
    session_timeout: float
    keep_alive_interval: float
    log_level: str
    limits: ResourceLimits
    #: refuse server key generations, document key stores and signings that carry no bound
    #: signature (every node
    #: checks with its own setting); off by default, as Parity's clients send none
    require_bound_requests: bool = False
    deadlines: Deadlines = Deadlines()
    #: refuse plain document key retrieval (as master and as slave): only shadow retrieval
    require_shadow_retrieval: bool = False
    #: ours: fsync every audit log entry before the release it records (off: an entry
    #: survives a crash of the node, not a power loss just after it)
    audit_sync: bool = False
    #: ECDSA presignatures this node keeps per key it signs with (0: none; sessions/presign.py)
    ecdsa_presignatures: int = DEFAULT_ECDSA_PRESIGNATURES
    #: ours: where the registry contract is (Parity read it from the chain spec)
    registry_address: Address | None = None
    #: ours: the block constants, Parity's by default (overridable for tests)
    chain_confirmations: int = DEFAULT_CHAIN_CONFIRMATIONS
    chain_migration_delay: int = DEFAULT_CHAIN_MIGRATION_DELAY
    chain_retry_interval: int = DEFAULT_CHAIN_RETRY_INTERVAL
    chain_poll_interval: float = DEFAULT_CHAIN_POLL_INTERVAL
    node_set_change_keys_in_flight: int = DEFAULT_NODE_SET_CHANGE_KEYS_IN_FLIGHT
    #: ours: refresh every key's shares every this many seconds (0: never on a schedule)
    refresh_interval: float = 0.0
    #: ours: keys per batch of a refresh of every key
    refresh_batch_size: int = DEFAULT_REFRESH_BATCH_SIZE

    @property
    def uses_chain(self) -> bool:
        """True when a contract option other than "none" needs the chain."""
        return any(source is not None for source in self.contract_sources().values())

    def contract_sources(self) -> dict[str, ContractSource]:
        """Every contract option by its key (None: "none")."""
        return {
            "acl_contract": self.acl_contract,
            "service_contract": self.service_contract,
            "service_contract_srv_gen": self.service_contract_srv_gen,
            "service_contract_srv_retr": self.service_contract_srv_retr,
            "service_contract_doc_store": self.service_contract_doc_store,
            "service_contract_doc_sretr": self.service_contract_doc_sretr,
            "server_set_contract": self.server_set_contract,
        }

    @property
    def auto_migrates(self) -> bool:
        """True when the node set follows a key server set contract that migrates by itself
        (a contract set, `disable_auto_migrate` false)."""
        return self.server_set_contract is not None and not self.disable_auto_migrate

    @property
    def key_pair(self) -> KeyPair:
        """This node's key pair; only a disabled config may lack one."""
        if self.self_key is None:
            raise ConfigError("secretstore.self_secret", "required unless disable = true")
        return self.self_key

    @property
    def self_node_id(self) -> NodeId:
        return self.key_pair.node_id

    def node_ids(self) -> frozenset[NodeId]:
        return frozenset(n.node_id for n in self.nodes)

    def address_of_node(self, node_id: NodeId) -> NodeAddress | None:
        for node in self.nodes:
            if node.node_id == node_id:
                return node
        return None


# --- the whole file ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NodeConfig:
    """A node's whole configuration: the [secretstore] section plus the directories it uses."""

    secretstore: SecretStoreConfig
    #: Parity's [parity] base_path ($BASE); ours defaults to the config file's directory
    base_path: Path
    #: the keystore directory (Parity's [parity] keys_path, default $BASE/keys)
    keys_path: Path
    #: Parity's [account] password files (one password per line); the passwords are not kept
    password_files: tuple[Path, ...]
    #: the file this was read from, if any
    source: Path | None
