"""The node's contract interfaces are Parity's, and our compiled contracts implement them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from secretstore.chain import abi
from secretstore.crypto.hashing import keccak256

BUILD = Path(__file__).resolve().parents[3] / "contracts" / "build"

#: Parity's selectors (res/*.json, checked against its deployed bytecode).
PARITY_SELECTORS = {
    abi.GET_ADDRESS: "6795dbcd",
    abi.SET_ADDRESS: "f6d339e4",
    abi.CHECK_PERMISSIONS: "b36a9a7c",
    abi.GET_CURRENT_LAST_CHANGE: "6452e821",
    abi.GET_CURRENT_KEY_SERVER_INDEX: "287fb40c",
    abi.GET_CURRENT_KEY_SERVERS_COUNT: "5560c965",
    abi.GET_CURRENT_KEY_SERVER: "c66198dc",
    abi.GET_CURRENT_KEY_SERVERS: "5e9f171d",
    abi.GET_CURRENT_KEY_SERVER_PUBLIC: "75de2a06",
    abi.GET_CURRENT_KEY_SERVER_ADDRESS: "a86560be",
    abi.GET_MIGRATION_KEY_SERVERS: "447f5b18",
    abi.GET_MIGRATION_KEY_SERVER_PUBLIC: "1455eb9a",
    abi.GET_MIGRATION_KEY_SERVER_ADDRESS: "2ac4ecd8",
    abi.GET_NEW_KEY_SERVERS: "362b282d",
    abi.GET_NEW_KEY_SERVER_PUBLIC: "ab55cb48",
    abi.GET_NEW_KEY_SERVER_ADDRESS: "8416e7c2",
    abi.GET_MIGRATION_ID: "2b73af52",
    abi.GET_MIGRATION_MASTER: "0ec71f82",
    abi.IS_MIGRATION_CONFIRMED: "529377d0",
    abi.START_MIGRATION: "1d7f7673",
    abi.CONFIRM_MIGRATION: "3a3f7201",
}
#: Parity's registry names and their keccak256 (secret-store acl_storage.rs, key_server_set.rs).
REGISTRY_NAMES = {
    abi.ACL_ENTRY: "7942baef32fbbcea49e4e1499add5d45575185dd09e9821cb639a9cd448aaaf1",
    abi.SERVER_SET_ENTRY: "8cb8685fcb019a3c921c91072c90b48d3e21caeebd32285b04f964fa8c4b01c3",
}
#: Other contracts' selectors users call (the ACLs, the registry setter).
ACL_SELECTORS = {
    "createKey(bytes32)": "9cd19074",
    "transferPermission(bytes32,address)": "ec9cb2ce",
}


@pytest.mark.parametrize("function", list(PARITY_SELECTORS), ids=lambda f: f.name)
def test_selectors_are_paritys(function: abi.Function) -> None:
    assert function.selector.hex() == PARITY_SELECTORS[function]


def test_registry_names_and_the_acl_lookup_calldata() -> None:
    for entry, digest in REGISTRY_NAMES.items():
        assert abi.registry_name(entry).hex() == digest
    data = abi.GET_ADDRESS.calldata(abi.registry_name(abi.ACL_ENTRY), abi.REGISTRY_KEY)
    # Parity's 132-byte call: selector, name, offset 0x40, length 1, "A" padded
    assert len(data) == 132
    assert data[:4].hex() == "6795dbcd"
    assert data[4:36].hex() == REGISTRY_NAMES[abi.ACL_ENTRY]
    assert int.from_bytes(data[36:68], "big") == 0x40
    assert int.from_bytes(data[68:100], "big") == 1
    assert data[100:132] == b"A" + bytes(31)


def test_results_decode_addresses_as_bytes() -> None:
    address = bytes.fromhex("ab" * 20)
    encoded = bytes(12) + address
    assert abi.GET_ADDRESS.result(encoded) == (address,)
    many = abi.GET_CURRENT_KEY_SERVERS.result(
        (32).to_bytes(32, "big") + (2).to_bytes(32, "big") + encoded + bytes(12) + bytes(20)
    )
    assert many == ((address, bytes(20)),)
    with pytest.raises(TypeError):
        abi.CHECK_PERMISSIONS.calldata(address)


def _abi_of(name: str) -> list[dict[str, object]]:
    artifact = json.loads((BUILD / f"{name}.json").read_text())
    entries: list[dict[str, object]] = artifact["abi"]
    return entries


def _selectors(name: str) -> set[str]:
    out = set()
    for entry in _abi_of(name):
        if entry["type"] == "function":
            inputs = ",".join(str(i["type"]) for i in entry["inputs"])  # type: ignore[attr-defined]
            out.add(keccak256(f"{entry['name']}({inputs})".encode())[:4].hex())
    return out


def _events(name: str) -> set[str]:
    return {
        f"{e['name']}({','.join(str(i['type']) for i in e['inputs'])})"  # type: ignore[attr-defined]
        for e in _abi_of(name)
        if e["type"] == "event"
    }


@pytest.mark.parametrize(
    ("contract", "functions"),
    [
        ("Registry", [abi.GET_ADDRESS, abi.SET_ADDRESS]),
        ("OwnedPermissions", [abi.CHECK_PERMISSIONS]),
        ("OnceTransferablePermission", [abi.CHECK_PERMISSIONS]),
        ("OwnedKeyServerSet", list(abi.KEY_SERVER_SET)),
        (
            "OwnedKeyServerSetWithMigration",
            [*abi.KEY_SERVER_SET, *abi.KEY_SERVER_SET_MIGRATION],
        ),
    ],
)
def test_our_contracts_implement_paritys_interfaces(
    contract: str, functions: list[abi.Function]
) -> None:
    have = _selectors(contract)
    assert {f.selector.hex() for f in functions} <= have


def test_the_simple_set_has_no_migration_functions() -> None:
    """So reading it with auto-migration on fails the way Parity's trap describes."""
    have = _selectors("OwnedKeyServerSet")
    assert not {f.selector.hex() for f in abi.KEY_SERVER_SET_MIGRATION} & have


def test_events_and_acl_functions() -> None:
    assert set(abi.KEY_SERVER_SET_EVENTS) <= _events("OwnedKeyServerSetWithMigration")
    assert {"KeyServerAdded(address)", "KeyServerRemoved(address)"} <= _events("OwnedKeyServerSet")
    assert set(ACL_SELECTORS.values()) <= _selectors("OnceTransferablePermission")
    for signature, selector in ACL_SELECTORS.items():
        assert keccak256(signature.encode())[:4].hex() == selector
