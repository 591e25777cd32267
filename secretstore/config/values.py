"""Typed getters and value parsers for the config loader; each error names its key path."""

from __future__ import annotations

import ipaddress
import os
import re
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit

from secretstore.config.model import (
    DEFAULT_LOG_LEVEL,
    ContractAtAddress,
    ContractFromRegistry,
    ContractSource,
    CorsOrigins,
    NodeAddress,
)
from secretstore.crypto.curve import Point
from secretstore.encoding import parse_hex
from secretstore.errors import ConfigError, CryptoError, InvalidEncoding
from secretstore.types import Address, NodeId

_LOG_LEVELS: Final = {
    "error": "error",
    "warn": "warning",
    "warning": "warning",
    "info": "info",
    "debug": "debug",
    "trace": "debug",
}
_HOST_LABEL = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$")
_URL_SCHEMES: Final = frozenset({"http", "https", "ws", "wss"})


# --- typed getters ----------------------------------------------------------------------------


def leaf(key_path: str) -> str:
    return key_path.rsplit(".", 1)[-1]


def get_str(table: dict[str, Any], key_path: str) -> str | None:
    """The string at key_path's last part, or None when absent."""
    value = table.get(leaf(key_path))
    if value is None:
        return None
    if not isinstance(value, str):
        raise ConfigError(key_path, f"expected a string, got {kind_of(value)}")
    return value


def get_bool(table: dict[str, Any], key_path: str, default: bool) -> bool:
    value = table.get(leaf(key_path), default)
    if not isinstance(value, bool):
        raise ConfigError(key_path, f"expected true or false, got {kind_of(value)}")
    return value


def get_int(table: dict[str, Any], key_path: str, default: int, low: int, high: int) -> int:
    value = table.get(leaf(key_path), default)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(key_path, f"expected an integer, got {kind_of(value)}")
    if not low <= value <= high:
        raise ConfigError(key_path, f"expected {low}..{high}, got {value}")
    return value


def get_seconds(table: dict[str, Any], key_path: str, default: float) -> float:
    value = table.get(leaf(key_path), default)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(key_path, f"expected a number of seconds, got {kind_of(value)}")
    if not 0 < value <= 86400:
        raise ConfigError(key_path, f"expected more than 0 and at most 86400 seconds, got {value}")
    return float(value)


def get_interval(table: dict[str, Any], key_path: str, low: float, high: float) -> float:
    """A number of seconds that is 0 (off, the default) or in [low, high]."""
    value = table.get(leaf(key_path), 0)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(key_path, f"expected a number of seconds, got {kind_of(value)}")
    if value != 0 and not low <= value <= high:
        raise ConfigError(
            key_path, f"expected 0 (off) or {low:.0f}..{high:.0f} seconds, got {value}"
        )
    return float(value)


def get_str_list(table: dict[str, Any], key_path: str) -> list[str]:
    value = table.get(leaf(key_path), [])
    if not isinstance(value, list):
        raise ConfigError(key_path, f"expected a list of strings, got {kind_of(value)}")
    for index, item in enumerate(value):
        if not isinstance(item, str):
            raise ConfigError(f"{key_path}[{index}]", f"expected a string, got {kind_of(item)}")
    return value


def kind_of(value: object) -> str:
    names = {bool: "a boolean", int: "an integer", float: "a number", str: "a string"}
    names |= {list: "a list", dict: "a table"}
    return names.get(type(value), type(value).__name__)


# --- values -----------------------------------------------------------------------------------


def get_path(
    table: dict[str, Any], key_path: str, default: str, base_path: Path, base_dir: Path
) -> Path:
    """A path option ($HOME, $BASE and ~ expanded; relative to base_dir); empty is an error."""
    given = get_str(table, key_path)
    raw = default if given is None else given
    if not raw.strip():
        raise ConfigError(key_path, "expected a path, got an empty string")
    return expand_path(raw, base_path, base_dir, Path.home())


def expand_path(text: str, base_path: Path, base_dir: Path, home: Path) -> Path:
    """Parity's $HOME/$BASE substitution (and ~); relative paths are taken from base_dir."""
    expanded = text.replace("$HOME", str(home)).replace("$BASE", str(base_path))
    path = Path(os.path.expanduser(expanded))
    return path if path.is_absolute() else base_dir / path


def shifted_port(port: int, shift: int, key: str) -> int:
    if port + shift > 65535:
        raise ConfigError(f"secretstore.{key}", f"port {port} + misc.ports_shift {shift} > 65535")
    return port + shift if port else 0


def parse_interface(store: dict[str, Any], key: str, unsafe_expose: bool) -> str:
    raw = get_str(store, f"secretstore.{key}")
    raw = "local" if raw is None else raw
    if unsafe_expose:
        return "0.0.0.0"  # noqa: S104 - Parity's [misc] unsafe_expose asks for exactly this
    if raw == "local":
        return "127.0.0.1"
    if raw == "all":
        return "0.0.0.0"  # noqa: S104 - the user asked for every interface
    try:
        return str(ipaddress.ip_address(raw))
    except ValueError:
        raise ConfigError(
            f"secretstore.{key}",
            f'unknown interface "{raw}": expected "local", "all" or an IP address',
        ) from None


def parse_contract(store: dict[str, Any], key: str, default: str) -> ContractSource:
    key_path = f"secretstore.{key}"
    given = get_str(store, key_path)
    raw = (default if given is None else given).strip()
    if raw.lower() == "none":
        return None
    if raw.lower() == "registry":
        return ContractFromRegistry()
    try:
        return ContractAtAddress(Address(parse_hex(raw, 20, what="contract address")))
    except InvalidEncoding as exc:
        raise ConfigError(
            key_path, f'expected "none", "registry" or a 20-byte hex address ({exc})'
        ) from None


def parse_address(store: dict[str, Any], key_path: str) -> Address | None:
    """An optional 20-byte hex address (0x optional, any case)."""
    raw = get_str(store, key_path)
    if raw is None:
        return None
    try:
        return Address(parse_hex(raw.strip(), 20, what="address"))
    except InvalidEncoding as exc:
        raise ConfigError(key_path, f"expected a 20-byte hex address ({exc})") from None


def parse_public(raw: str, key_path: str) -> Point:
    try:
        return Point.from_bytes(parse_hex(raw.strip(), 64, what="public key"))
    except InvalidEncoding as exc:
        raise ConfigError(key_path, f"expected a 64-byte public key in hex ({exc})") from None
    except CryptoError:
        raise ConfigError(key_path, "not a public key: the point is not on secp256k1") from None


def parse_admin_public(store: dict[str, Any]) -> Point | None:
    raw = get_str(store, "secretstore.admin_public")
    return None if raw is None else parse_public(raw, "secretstore.admin_public")


def parse_host(raw: str, key_path: str) -> str:
    try:
        return str(ipaddress.ip_address(raw))
    except ValueError:
        pass
    labels = raw.rstrip(".").split(".")
    if len(raw) > 253 or not all(_HOST_LABEL.match(label) for label in labels):
        raise ConfigError(key_path, f'bad host "{raw}": expected an IP address or a host name')
    return raw.rstrip(".").lower()


def parse_node(entry: str, key_path: str) -> NodeAddress:
    form = "expected <64-byte public key hex>@<host>:<port>"
    public_hex, at, address = entry.strip().partition("@")
    if not at or "@" in address:
        raise ConfigError(key_path, f'bad node "{entry}": {form}')
    node_id = NodeId(parse_public(public_hex, key_path).to_bytes())
    if address.startswith("["):  # [IPv6]:port
        host, bracket, port_text = address[1:].partition("]:")
        if not bracket or ":" not in host:
            raise ConfigError(key_path, f'bad node address "{address}": {form}')
    else:
        host, colon, port_text = address.rpartition(":")
        if not colon or not host or ":" in host:
            raise ConfigError(key_path, f'bad node address "{address}": {form}')
    if not (port_text.isascii() and port_text.isdigit()) or not 1 <= int(port_text) <= 65535:
        raise ConfigError(key_path, f'bad port "{port_text}": expected 1..65535')
    return NodeAddress(node_id, parse_host(host, key_path), int(port_text))


def parse_cors(store: dict[str, Any]) -> CorsOrigins:
    if "cors" in store and "http_cors" in store:
        raise ConfigError("secretstore.http_cors", "give either cors (Parity) or http_cors")
    key = "http_cors" if "http_cors" in store else "cors"
    key_path = f"secretstore.{key}"
    value = store.get(key, "none")
    if isinstance(value, str):
        items = [item.strip() for item in value.split(",")]
    elif isinstance(value, list) and all(isinstance(item, str) for item in value):
        items = [item.strip() for item in value]
    else:
        raise ConfigError(key_path, f"expected a string or a list of origins, got {kind_of(value)}")
    items = [item for item in items if item]
    if not items or items == ["none"]:
        return CorsOrigins.none()
    if len(items) == 1 and items[0] in ("all", "any", "*"):
        return CorsOrigins.all()
    for item in items:
        if item in ("none", "all", "any", "*") or any(c.isspace() for c in item):
            raise ConfigError(
                key_path, f'bad origin "{item}": use "all", "none" or a list of origins alone'
            )
    return CorsOrigins(allow_all=False, origins=tuple(dict.fromkeys(items)))


def parse_url(store: dict[str, Any], key_path: str) -> str | None:
    raw = get_str(store, key_path)
    if raw is None:
        return None
    try:
        parts = urlsplit(raw.strip())
    except ValueError:  # e.g. an unclosed [IPv6 bracket
        parts = None
    if parts is None or parts.scheme not in _URL_SCHEMES or not parts.netloc:
        raise ConfigError(key_path, f'bad URL "{raw}": expected http(s):// or ws(s)://host[:port]')
    return raw.strip()


def parse_log_level(store: dict[str, Any]) -> str:
    given = get_str(store, "secretstore.log_level")
    raw = DEFAULT_LOG_LEVEL if given is None else given
    level = _LOG_LEVELS.get(raw.strip().lower())
    if level is None:
        raise ConfigError(
            "secretstore.log_level",
            f'unknown level "{raw}": expected one of {", ".join(_LOG_LEVELS)}',
        )
    return level
