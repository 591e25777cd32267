"""The pure layers import no I/O, clock, logging or global randomness."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "secretstore"
PURE = [
    "crypto",
    "wire",
    "sessions",
    "mesh/handshake.py",
    "mesh/admission.py",
    "storage/model.py",
    "storage/codec.py",
    "parity_db/record.py",
    "parity_db/checks.py",
    "parity_db/publics.py",
    "audit/model.py",
    "audit/receipts.py",
    "audit/chain.py",
    "audit/jsonform.py",
    "backup/archive.py",
]
#: the audit modules sessions may use (the driver's recorder and the store do I/O)
PURE_AUDIT = {f"secretstore.audit.{name}" for name in ("model", "receipts", "chain", "jsonform")}
BANNED = {
    "asyncio",
    "aiohttp",
    "plyvel",
    "web3",
    "time",
    "logging",
    "random",
    "socket",
    "threading",
    "subprocess",
    "uvloop",
}
# Layers may only import downwards: crypto <- wire <- sessions <- cluster <- keyserver <- ...
LAYER_BANS = {
    "crypto": {
        "audit",
        "wire",
        "sessions",
        "cluster",
        "mesh",
        "storage",
        "chain",
        "http",
        "client",
        "config",
        "cli",
        "keyserver",
        "node",
    },
    "wire": {
        "audit",
        "sessions",
        "cluster",
        "mesh",
        "storage",
        "chain",
        "http",
        "client",
        "cli",
        "keyserver",
        "node",
    },
    "sessions": {
        "cluster",
        "mesh",
        "storage",
        "chain",
        "http",
        "client",
        "cli",
        "keyserver",
        "node",
    },
}

#: pure modules of a higher package that lower layers may use (the key-share data model)
ALLOWED_UPWARDS = {"secretstore.storage.model"}


def _pure_files() -> list[Path]:
    files: list[Path] = []
    for entry in PURE:
        path = PACKAGE / entry
        if path.is_dir():
            files.extend(sorted(path.rglob("*.py")))
        elif path.exists():
            files.append(path)
    return files


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


@pytest.mark.parametrize("path", _pure_files(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_pure_layer_has_no_io_imports(path: Path) -> None:
    bad = {name for name in _imports(path) if name.split(".")[0] in BANNED}
    assert not bad, f"{path.relative_to(PACKAGE)} imports {sorted(bad)}"


@pytest.mark.parametrize("layer", sorted(LAYER_BANS))
def test_layers_import_only_downwards(layer: str) -> None:
    for path in sorted((PACKAGE / layer).rglob("*.py")):
        for name in _imports(path):
            parts = name.split(".")
            if name in ALLOWED_UPWARDS:
                continue
            if parts[0] == "secretstore" and len(parts) > 1:
                assert parts[1] not in LAYER_BANS[layer], (
                    f"{path.relative_to(PACKAGE)} imports {name} from a higher layer"
                )


@pytest.mark.parametrize("layer", ["sessions", "audit"])
def test_pure_code_uses_only_the_pure_audit_modules(layer: str) -> None:
    paths = sorted((PACKAGE / layer).rglob("*.py"))
    if layer == "audit":
        paths = [PACKAGE / entry for entry in PURE if entry.startswith("audit/")]
    for path in paths:
        for name in _imports(path):
            if name.startswith("secretstore.audit."):
                assert name in PURE_AUDIT, f"{path.relative_to(PACKAGE)} imports {name}"


def test_only_the_chain_layer_uses_web3() -> None:
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.is_relative_to(PACKAGE / "chain"):
            continue
        chain_libraries = {n for n in _imports(path) if n.split(".")[0] in ("web3", "eth_abi")}
        assert not chain_libraries, f"{path.relative_to(PACKAGE)} imports {sorted(chain_libraries)}"


def test_the_rule_sees_a_banned_import(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text("import asyncio\nfrom time import monotonic\n")
    assert {"asyncio", "time"} <= _imports(sample)


def test_the_node_loads_the_chain_modules_only_for_a_chain() -> None:
    # web3 takes most of a second to import: a node without a chain does not pay it at start-up
    import subprocess
    import sys

    code = (
        "import sys, secretstore.cli.node\n"
        "print(sorted(m for m in sys.modules if m == 'web3' or m.startswith('secretstore.chain')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout
