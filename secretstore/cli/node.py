"""`secretstore-node`: run one key-server node from a TOML config until SIGINT or SIGTERM.

Exit status: 0 after a graceful shutdown (or when the config disables the secret store), 1 when
the node cannot start (key database in use, port taken) or fails, 2 for a bad config or
command line.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

from secretstore import __version__
from secretstore.config.loader import load_config
from secretstore.config.model import NodeConfig
from secretstore.errors import ConfigError, SecretStoreError
from secretstore.filemodes import restrict_umask
from secretstore.logs import LEVELS, configure_logging
from secretstore.node import check_supported, run_node

log = logging.getLogger("secretstore.node")

EXIT_OK = 0
#: Secrets below this are the examples' (config/ uses 1, 2, 3, 4): the node warns about them.
EXAMPLE_KEY_LIMIT = 256
EXIT_FAILED = 1
EXIT_CONFIG = 2

_EPILOG = """\
The config is Parity Ethereum's TOML with a [secretstore] table (see docs/CONFIG.md);
`secretstore cluster --write-only` writes working examples. Logs go to stderr, one line per
record. SIGINT or SIGTERM stops the node gracefully: the HTTP API stops, connections to other
nodes close, the key database is flushed and closed. SIGHUP reads the config again and applies
a changed `nodes` list (other options need a restart).
"""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="secretstore-node",
        description="Run one Secret Store key-server node.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--config",
        required=True,
        type=lambda text: Path(text).expanduser(),
        help="the node's TOML config",
    )
    parser.add_argument("--version", action="version", version=f"secretstore-node {__version__}")
    parser.add_argument(
        "--log-level",
        choices=sorted(LEVELS),
        type=str.lower,
        help="overrides [secretstore] log_level",
    )
    return parser


def _event_loop_runner() -> asyncio.Runner:
    """An asyncio runner on uvloop when it is installed, else on the default loop."""
    try:
        import uvloop
    except ImportError:
        return asyncio.Runner()
    factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
    return asyncio.Runner(loop_factory=factory)


async def _serve(config: NodeConfig) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()

    def on_signal(signum: int) -> None:
        if stop.is_set():
            log.info("%s received; already shutting down", signal.Signals(signum).name)
            return
        log.info("%s received", signal.Signals(signum).name)
        stop.set()
        # Shutdown has begun: ignore further SIGINT/SIGTERM (a terminal's Ctrl-C reaches every
        # process of the group, and a supervisor may add its SIGTERM) so that a second signal
        # cannot kill the node mid-shutdown. SIGKILL still ends it at once.
        _ignore_stop_signals()

    hangup = asyncio.Event()

    def on_hangup() -> None:
        log.info("SIGHUP received: reading the config's node set again")
        hangup.set()

    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, on_signal, signum)
    loop.add_signal_handler(signal.SIGHUP, on_hangup)
    await run_node(config, stop, hangup=hangup)


def _ignore_stop_signals() -> None:
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, signal.SIG_IGN)


def _run(main: Coroutine[Any, Any, None]) -> None:
    try:
        with _event_loop_runner() as runner:
            runner.run(main)
    finally:
        # Closing the loop restored the default handlers; keep ignoring the stop signals.
        _ignore_stop_signals()


def main(argv: list[str] | None = None) -> int:
    # Everything the node creates (the key database, LevelDB's files) is private to its user.
    restrict_umask()
    args = _parser().parse_args(argv)
    # Everything the node creates (key database, logs it may write) is its own alone.
    os.umask(0o077)
    configure_logging(args.log_level or "info")
    try:
        config = load_config(args.config)
        if not config.secretstore.disable:
            check_supported(config)
    except ConfigError as exc:
        print(f"secretstore-node: bad config: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    store = config.secretstore
    node_id = store.self_key.node_id if store.self_key is not None else None
    configure_logging(args.log_level or store.log_level, node_id=node_id)
    if store.self_key is not None and store.self_key.secret.to_int() < EXAMPLE_KEY_LIMIT:
        log.warning(
            "this node's key is a published example key (as in config/): anyone can act as "
            "this node; make a key of your own with `secretstore keygen`"
        )
    try:
        _run(_serve(config))
    except (SecretStoreError, OSError) as exc:
        log.error("node failed: %s", exc)
        return EXIT_FAILED
    except KeyboardInterrupt:  # a signal before the handlers were installed
        return EXIT_OK
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
