"""`secretstore rpc`: serve Parity's secretstore_* JSON-RPC helpers over a keystore."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
from pathlib import Path

from secretstore.client.rpc_server import start_rpc_server
from secretstore.keystore import Keystore

_EPILOG = """\
Methods: secretstore_signRawHash, secretstore_generateDocumentKey, secretstore_encrypt,
secretstore_decrypt, secretstore_shadowDecrypt, secretstore_serversSetHash (Parity's
parameters and results). Every call that uses an account carries its password, so only bind
to an interface that untrusted parties cannot reach. Stop with Ctrl-C or SIGTERM.
"""


def interface_host(interface: str) -> str:
    """Parity's interface names: `local` is 127.0.0.1, `all` is 0.0.0.0, else an address."""
    return {"local": "127.0.0.1", "all": "0.0.0.0"}.get(interface, interface)  # noqa: S104


async def serve(keystore: Keystore, host: str, port: int) -> None:
    server = await start_rpc_server(keystore, host, port)
    print(f"secretstore rpc: listening on {server.url}", file=sys.stderr, flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await server.stop()


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="secretstore rpc",
        description="Serve the secretstore_* JSON-RPC helpers (POST /) over a keystore.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--keystore", required=True, help="the keystore directory")
    parser.add_argument(
        "--interface", default="local", help="local (default), all, or an IP address to bind"
    )
    parser.add_argument("--port", type=int, default=8545, help="TCP port (default 8545)")
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:
        return int(exit_.code or 0)
    if not 0 <= args.port <= 65535:
        print("secretstore rpc: --port must be in 0..65535", file=sys.stderr)
        return 2
    keystore_dir = Path(args.keystore)
    if not keystore_dir.is_dir():
        print(f"secretstore rpc: no keystore directory {keystore_dir}", file=sys.stderr)
        return 2
    try:
        asyncio.run(serve(Keystore(keystore_dir), interface_host(args.interface), args.port))
    except OSError as exc:
        print(f"secretstore rpc: cannot listen: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        pass
    return 0
