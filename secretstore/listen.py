"""Starting a listener (the mesh's, the HTTP API's): a failure to bind names the config
option to change, e.g. `secretstore.http_port: cannot listen on 127.0.0.1:8082: the port is
in use by another process; choose another http_port`."""

from __future__ import annotations

import errno
from collections.abc import Awaitable
from typing import TypeVar

from secretstore.errors import SecretStoreError

T = TypeVar("T")


def host_port(host: str, port: int) -> str:
    """`host:port`, with an IPv6 host in brackets."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class ListenError(SecretStoreError):
    """A listener could not bind; `key_path` names the option to change."""

    def __init__(self, key_path: str, problem: str) -> None:
        super().__init__(f"{key_path}: {problem}")
        self.key_path = key_path


async def listening(
    port_key: str, interface_key: str, address: tuple[str, int], starting: Awaitable[T]
) -> T:
    """Await a listener's start; a failure to bind raises ListenError naming the option."""
    try:
        return await starting
    except (OSError, SecretStoreError) as exc:
        failure = bind_failure(exc)
        if failure is None:
            raise
        raise listen_error(port_key, interface_key, address, failure) from exc


def bind_failure(exc: BaseException | None) -> OSError | None:
    """The OSError (with an errno) at the root of a listener's start failure, if any."""
    while exc is not None:
        if isinstance(exc, OSError) and exc.errno is not None:
            return exc
        exc = exc.__cause__
    return None


def listen_error(
    port_key: str, interface_key: str, address: tuple[str, int], error: OSError
) -> ListenError:
    """The error naming what to change for a bind failure of `address`."""
    host, port = address
    where = f"cannot listen on {host_port(host, port)}"
    option = port_key.rsplit(".", 1)[-1]
    if error.errno == errno.EADDRINUSE:
        return ListenError(
            port_key, f"{where}: the port is in use by another process; choose another {option}"
        )
    if error.errno == errno.EADDRNOTAVAIL:
        return ListenError(interface_key, f"{where}: {host} is not an address of this machine")
    if error.errno == errno.EACCES:
        return ListenError(port_key, f"{where}: permission denied (a port below 1024 needs root)")
    return ListenError(port_key, f"{where}: {error.strerror or error}")
