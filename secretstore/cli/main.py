"""`secretstore`: the user's command line; each verb lives in its own module."""

from __future__ import annotations

import importlib
import sys

#: verb -> (module under secretstore.cli, one-line help). Each module has `main(argv) -> int`.
VERBS: dict[str, tuple[str, str]] = {
    "keygen": ("keygen", "print a new node key pair (secret, public = node id, address)"),
    "cluster": ("cluster", "write configs for a local N-node cluster and run it"),
    "chain-cluster": ("chain_cluster", "a local cluster on a local dev chain with contracts"),
    "account": ("account", "manage the accounts of a keystore directory (new, list, import)"),
    "import-parity": ("import_parity", "import a Parity Secret Store node's keys (its RocksDB)"),
    "audit": ("audit", "check a node's audit log of key releases (verify) or export it"),
    "rpc": ("rpc", "serve Parity's secretstore_* JSON-RPC helpers over a keystore"),
    "encrypt": ("client_cmds", "encrypt a file with a new document key held by the cluster"),
    "decrypt": ("client_cmds", "decrypt a file with its document key from the cluster"),
    "delete": ("client_cmds", "delete a server key and its document key on every node"),
    "sign-hash": ("client_cmds", "sign a 32-byte hash with an account key"),
    "servers-set-hash": ("client_cmds", "hash of a set of node ids, as the admin signs it"),
    "backup": ("backup", "a node's shares encrypted to a backup key, verifiable by anyone"),
    "restore": ("restore", "rebuild a node's key database from its backup"),
    "admin": ("admin", "change the node set of a cluster: set hashes, a signed change, progress"),
}


def _usage() -> str:
    lines = ["usage: secretstore <verb> [options]", "", "verbs:"]
    lines += [f"  {verb:<18} {text}" for verb, (_, text) in VERBS.items()]
    lines += ["", "`secretstore <verb> --help` shows a verb's options."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if not args or args[0] in ("-h", "--help", "help"):
        print(_usage())
        return 0
    verb, rest = args[0], args[1:]
    if verb not in VERBS:
        print(f"secretstore: unknown verb {verb!r}\n\n{_usage()}", file=sys.stderr)
        return 2
    module = importlib.import_module(f"secretstore.cli.{VERBS[verb][0]}")
    result: int = (
        module.main([verb, *rest]) if VERBS[verb][0] == "client_cmds" else module.main(rest)
    )
    return result


if __name__ == "__main__":
    sys.exit(main())
