"""`secretstore`: the user's and operator's command line; each verb lives in a module."""

from __future__ import annotations

import importlib
import sys
from typing import Final

from secretstore import __version__

#: verb -> (module under secretstore.cli, one-line description). Modules serving several
#: verbs (MULTI) take argv with the verb first; the others take the verb's arguments.
VERBS: Final[dict[str, tuple[str, str]]] = {
    # running nodes
    "keygen": ("keygen", "print a new node key pair (secret, public = node id, address)"),
    "configs": ("configs", "generate keys and consistent configs for N nodes on any hosts"),
    "cluster": ("cluster", "write configs for a local N-node cluster and run it"),
    "chain-cluster": ("chain_cluster", "a local cluster on a local dev chain with contracts"),
    "status": ("status", "table of a cluster's nodes and their health"),
    "health": ("status", "one node's health (exit 0 if it answers); the image's health check"),
    "snapshot": ("snapshot", "copy a node's key database safely while the node runs, verified"),
    "backup": ("backup", "a node's shares encrypted to a backup key, verifiable by anyone"),
    "restore": ("restore", "rebuild a node's key database from its backup"),
    "import-parity": ("import_parity", "import a Parity Secret Store node's keys (its RocksDB)"),
    "audit": ("audit", "check a node's audit log of key releases (verify) or export it"),
    "admin": ("admin", "change the node set of a cluster: set hashes, a signed change, progress"),
    # keys on the cluster
    "server-key-generate": ("key_cmds", "generate a server key; prints its public key"),
    "server-key-retrieve": ("key_cmds", "print the public key of a server key"),
    "document-key-store": ("key_cmds", "store a document key (made here, or given as points)"),
    "document-key-shadow": ("key_cmds", "retrieve a document key as shadows (Parity's JSON)"),
    "sign-schnorr": ("key_cmds", "Schnorr-sign a hash with a server key, verified here"),
    "sign-ecdsa": ("key_cmds", "ECDSA-sign a hash with a server key, verified here"),
    "encrypt": ("client_cmds", "encrypt a file with a new document key held by the cluster"),
    "decrypt": ("client_cmds", "decrypt a file with its document key from the cluster"),
    "delete": ("client_cmds", "delete a server key and its document key on every node"),
    # local helpers
    "account": ("account", "manage the accounts of a keystore directory (new, list, import)"),
    "sign-hash": ("client_cmds", "sign a 32-byte hash with an account key"),
    "servers-set-hash": ("client_cmds", "hash of a set of node ids, as the admin signs it"),
    "rpc": ("rpc", "serve Parity's secretstore_* JSON-RPC helpers over a keystore"),
}
MULTI: Final = frozenset({"client_cmds", "key_cmds", "status"})
EXIT_USAGE: Final = 2


def _usage() -> str:
    lines = [
        f"secretstore {__version__}: the client and operator tools of a Secret Store cluster",
        "",
        "usage: secretstore <verb> [options]",
        "       secretstore --version",
        "",
        "verbs:",
    ]
    lines += [f"  {verb:<21} {text}" for verb, (_, text) in VERBS.items()]
    lines += [
        "",
        "`secretstore <verb> --help` shows a verb's options. Exit status: 0 success, 1 the",
        "operation failed, 2 usage. The node itself is `secretstore-node --config FILE`.",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if not args:
        print(_usage(), file=sys.stderr)
        return EXIT_USAGE
    if args[0] in ("-h", "--help", "help"):
        print(_usage())
        return 0
    if args[0] in ("-V", "--version", "version"):
        print(f"secretstore {__version__}")
        return 0
    verb, rest = args[0], args[1:]
    if verb not in VERBS:
        print(f"secretstore: unknown verb {verb!r}\n\n{_usage()}", file=sys.stderr)
        return EXIT_USAGE
    name = VERBS[verb][0]
    module = importlib.import_module(f"secretstore.cli.{name}")
    result: int = module.main([verb, *rest]) if name in MULTI else module.main(rest)
    return result


if __name__ == "__main__":
    sys.exit(main())
