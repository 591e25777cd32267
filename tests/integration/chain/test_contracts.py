"""Our contracts on anvil: the registry, both ACLs and both key server sets behave as Parity's."""

from __future__ import annotations

import subprocess

import pytest

from secretstore.chain import abi
from secretstore.chain.devchain import (
    ADD_KEY_SERVER,
    COMPLETE_INITIALIZATION,
    CREATE_KEY,
    GRANT,
    REMOVE_KEY_SERVER,
    REVOKE,
    ROOT,
    TRANSFER_PERMISSION,
    DevChain,
    DevChainError,
)
from secretstore.crypto.keys import KeyPair
from secretstore.crypto.rng import SeededRng
from secretstore.types import Address

pytestmark = pytest.mark.chain

KEYS = [KeyPair.generate(SeededRng(f"contract-{i}".encode())) for i in range(5)]
PUBLIC = [key.node_id for key in KEYS]
ADDRESS = [key.address for key in KEYS]
KEY_ID = b"\x42" * 32
STRANGER = Address(bytes.fromhex("70997970c51812dc3a010c7d01b50e0d17dc79c8"))  # anvil's 2nd


def endpoint(i: int) -> str:
    return f"127.0.0.1:{12000 + i}"


def test_the_committed_build_is_fresh() -> None:
    """contracts/build is what contracts/src compiles to (run `make contracts` after an edit)."""
    result = subprocess.run(
        ["node", "contracts/build.js", "--check"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr


def test_registry_lookup_and_owner_only_setter(dev: DevChain) -> None:
    registry = dev.deploy("Registry")
    name = abi.registry_name(abi.ACL_ENTRY)
    assert dev.call(registry, abi.GET_ADDRESS, name, "A") == bytes(20)  # not set
    dev.transact(registry, abi.SET_ADDRESS, name, "A", ADDRESS[0])
    assert dev.call(registry, abi.GET_ADDRESS, name, "A") == ADDRESS[0]
    assert dev.call(registry, abi.GET_ADDRESS, name, "B") == bytes(20)
    with pytest.raises(DevChainError):
        dev.transact(registry, abi.SET_ADDRESS, name, "A", ADDRESS[1], sender=STRANGER)
    assert dev.call(registry, abi.GET_ADDRESS, name, "A") == ADDRESS[0]


def test_owned_permissions_grant_and_revoke(dev: DevChain) -> None:
    acl = dev.deploy("OwnedPermissions")
    assert dev.call(acl, abi.CHECK_PERMISSIONS, ADDRESS[0], KEY_ID) is False
    dev.transact(acl, GRANT, ADDRESS[0], KEY_ID)
    assert dev.call(acl, abi.CHECK_PERMISSIONS, ADDRESS[0], KEY_ID) is True
    assert dev.call(acl, abi.CHECK_PERMISSIONS, ADDRESS[1], KEY_ID) is False
    assert dev.call(acl, abi.CHECK_PERMISSIONS, ADDRESS[0], b"\x43" * 32) is False
    with pytest.raises(DevChainError):
        dev.transact(acl, GRANT, STRANGER, KEY_ID, sender=STRANGER)
    dev.transact(acl, REVOKE, ADDRESS[0], KEY_ID)
    assert dev.call(acl, abi.CHECK_PERMISSIONS, ADDRESS[0], KEY_ID) is False


def test_once_transferable_permission(dev: DevChain) -> None:
    acl = dev.deploy("OnceTransferablePermission")
    dev.fund(ADDRESS[0])
    dev.fund(STRANGER)
    dev.transact(acl, CREATE_KEY, KEY_ID, sender=ADDRESS[0])
    assert dev.call(acl, abi.CHECK_PERMISSIONS, ADDRESS[0], KEY_ID) is True
    with pytest.raises(DevChainError):  # created once only
        dev.transact(acl, CREATE_KEY, KEY_ID, sender=STRANGER)
    with pytest.raises(DevChainError):  # only the owner transfers
        dev.transact(acl, TRANSFER_PERMISSION, KEY_ID, STRANGER, sender=STRANGER)
    dev.transact(acl, TRANSFER_PERMISSION, KEY_ID, ADDRESS[1], sender=ADDRESS[0])
    assert dev.call(acl, abi.CHECK_PERMISSIONS, ADDRESS[0], KEY_ID) is False
    assert dev.call(acl, abi.CHECK_PERMISSIONS, ADDRESS[1], KEY_ID) is True
    with pytest.raises(DevChainError):  # transferred once only
        dev.transact(acl, TRANSFER_PERMISSION, KEY_ID, ADDRESS[0], sender=ADDRESS[0])
    assert dev.call(acl, abi.CHECK_PERMISSIONS, bytes(20), b"\x01" * 32) is False


def _current(dev: DevChain, contract: Address) -> list[Address]:
    return list(dev.call(contract, abi.GET_CURRENT_KEY_SERVERS))


def test_simple_set_edits_the_current_set(dev: DevChain) -> None:
    contract = dev.deploy("OwnedKeyServerSet")
    for i in range(3):
        dev.transact(contract, ADD_KEY_SERVER, PUBLIC[i], endpoint(i))
    assert _current(dev, contract) == ADDRESS[:3]
    assert dev.call(contract, abi.GET_CURRENT_KEY_SERVER_PUBLIC, ADDRESS[1]) == PUBLIC[1]
    assert dev.call(contract, abi.GET_CURRENT_KEY_SERVER_ADDRESS, ADDRESS[1]) == endpoint(1)
    dev.transact(contract, REMOVE_KEY_SERVER, ADDRESS[0])
    # the last server moves into the freed index
    assert _current(dev, contract) == [ADDRESS[2], ADDRESS[1]]
    assert dev.call(contract, abi.GET_CURRENT_KEY_SERVER_INDEX, ADDRESS[2]) == 0
    assert dev.call(contract, abi.GET_CURRENT_KEY_SERVERS_COUNT) == 2
    assert dev.call(contract, abi.GET_CURRENT_KEY_SERVER, 1) == ADDRESS[1]
    assert dev.call(contract, abi.GET_CURRENT_LAST_CHANGE) == dev.block_number
    for function, args in (
        (abi.GET_CURRENT_KEY_SERVER_PUBLIC, (ADDRESS[0],)),
        (abi.GET_CURRENT_KEY_SERVER_INDEX, (ADDRESS[0],)),
        (abi.GET_NEW_KEY_SERVERS, ()),  # no migration functions: Parity's trap
    ):
        with pytest.raises(DevChainError, match="reverted"):
            dev.call(contract, function, *args)
    with pytest.raises(DevChainError):  # the same server twice
        dev.transact(contract, ADD_KEY_SERVER, PUBLIC[1], endpoint(4))
    with pytest.raises(DevChainError):  # an empty address
        dev.transact(contract, ADD_KEY_SERVER, PUBLIC[3], "")
    with pytest.raises(DevChainError):  # not a 64-byte public key
        dev.transact(contract, ADD_KEY_SERVER, PUBLIC[3][:33], endpoint(3))
    with pytest.raises(DevChainError):
        dev.transact(contract, ADD_KEY_SERVER, PUBLIC[3], endpoint(3), sender=STRANGER)


def test_a_set_holds_at_most_256_servers(dev: DevChain) -> None:
    contract = dev.deploy("OwnedKeyServerSet")
    for i in range(256):
        dev.transact(
            contract, ADD_KEY_SERVER, i.to_bytes(64, "big"), f"10.0.{i // 256}.{i % 256}:1"
        )
    with pytest.raises(DevChainError):
        dev.transact(contract, ADD_KEY_SERVER, (256).to_bytes(64, "big"), "10.1.0.0:1")
    assert len(_current(dev, contract)) == 256


def _migrating_set(dev: DevChain, servers: int = 3) -> Address:
    contract = dev.deploy("OwnedKeyServerSetWithMigration")
    for i in range(servers):
        dev.transact(contract, ADD_KEY_SERVER, PUBLIC[i], endpoint(i))
        dev.fund(ADDRESS[i])
    dev.transact(contract, COMPLETE_INITIALIZATION)
    return contract


def test_before_initialization_edits_change_current_and_new(dev: DevChain) -> None:
    contract = dev.deploy("OwnedKeyServerSetWithMigration")
    dev.transact(contract, ADD_KEY_SERVER, PUBLIC[0], endpoint(0))
    dev.transact(contract, ADD_KEY_SERVER, PUBLIC[1], endpoint(1))
    dev.transact(contract, REMOVE_KEY_SERVER, ADDRESS[0])
    assert _current(dev, contract) == [ADDRESS[1]]
    assert list(dev.call(contract, abi.GET_NEW_KEY_SERVERS)) == [ADDRESS[1]]
    assert dev.call(contract, abi.GET_CURRENT_LAST_CHANGE) == 0
    dev.transact(contract, COMPLETE_INITIALIZATION)
    with pytest.raises(DevChainError):
        dev.transact(contract, COMPLETE_INITIALIZATION)


def test_migration_start_and_confirm_rules(dev: DevChain) -> None:
    contract = _migrating_set(dev)
    migration_id = b"\x11" * 32
    with pytest.raises(DevChainError):  # nothing to migrate: new == current
        dev.transact(contract, abi.START_MIGRATION, migration_id, sender=ADDRESS[0])
    dev.transact(contract, ADD_KEY_SERVER, PUBLIC[3], endpoint(3))
    dev.fund(ADDRESS[3])
    assert _current(dev, contract) == ADDRESS[:3]  # after initialization: the new set only
    assert list(dev.call(contract, abi.GET_NEW_KEY_SERVERS)) == ADDRESS[:4]
    assert list(dev.call(contract, abi.GET_MIGRATION_KEY_SERVERS)) == []
    with pytest.raises(DevChainError, match="reverted"):
        dev.call(contract, abi.GET_MIGRATION_ID)  # reverts before the first migration
    dev.fund(ADDRESS[4])
    with pytest.raises(DevChainError):  # not a key server of current or new
        dev.transact(contract, abi.START_MIGRATION, migration_id, sender=ADDRESS[4])
    with pytest.raises(DevChainError):  # a zero id
        dev.transact(contract, abi.START_MIGRATION, bytes(32), sender=ADDRESS[0])
    dev.transact(contract, abi.START_MIGRATION, migration_id, sender=ADDRESS[3])
    with pytest.raises(DevChainError):  # one migration at a time
        dev.transact(contract, abi.START_MIGRATION, b"\x12" * 32, sender=ADDRESS[0])
    assert dev.call(contract, abi.GET_MIGRATION_ID) == migration_id
    assert dev.call(contract, abi.GET_MIGRATION_MASTER) == ADDRESS[3]
    assert list(dev.call(contract, abi.GET_MIGRATION_KEY_SERVERS)) == ADDRESS[:4]
    assert dev.call(contract, abi.GET_MIGRATION_KEY_SERVER_PUBLIC, ADDRESS[3]) == PUBLIC[3]
    assert dev.call(contract, abi.GET_MIGRATION_KEY_SERVER_ADDRESS, ADDRESS[3]) == endpoint(3)

    with pytest.raises(DevChainError):  # another id
        dev.transact(contract, abi.CONFIRM_MIGRATION, b"\x12" * 32, sender=ADDRESS[0])
    with pytest.raises(DevChainError):  # not in the migration set
        dev.transact(contract, abi.CONFIRM_MIGRATION, migration_id, sender=ADDRESS[4])
    for i in range(3):
        dev.transact(contract, abi.CONFIRM_MIGRATION, migration_id, sender=ADDRESS[i])
        assert dev.call(contract, abi.IS_MIGRATION_CONFIRMED, ADDRESS[i]) is True
    with pytest.raises(DevChainError):  # twice
        dev.transact(contract, abi.CONFIRM_MIGRATION, migration_id, sender=ADDRESS[0])
    assert _current(dev, contract) == ADDRESS[:3]  # not all confirmed yet
    receipt = dev.transact(contract, abi.CONFIRM_MIGRATION, migration_id, sender=ADDRESS[3])
    assert _current(dev, contract) == ADDRESS[:4]
    assert list(dev.call(contract, abi.GET_MIGRATION_KEY_SERVERS)) == []
    assert dev.call(contract, abi.GET_MIGRATION_MASTER) == bytes(20)
    assert dev.call(contract, abi.GET_MIGRATION_ID) == migration_id  # not reset (as Parity)
    assert dev.call(contract, abi.GET_CURRENT_LAST_CHANGE) == receipt["blockNumber"]
    assert dev.call(contract, abi.IS_MIGRATION_CONFIRMED, ADDRESS[0]) is False  # cleared
    with pytest.raises(DevChainError):  # no migration now
        dev.transact(contract, abi.CONFIRM_MIGRATION, migration_id, sender=ADDRESS[0])


def test_a_removal_migrates_too(dev: DevChain) -> None:
    contract = _migrating_set(dev)
    dev.transact(contract, REMOVE_KEY_SERVER, ADDRESS[0])
    migration_id = b"\x21" * 32
    dev.transact(contract, abi.START_MIGRATION, migration_id, sender=ADDRESS[0])  # current
    assert sorted(dev.call(contract, abi.GET_MIGRATION_KEY_SERVERS)) == sorted(ADDRESS[1:3])
    with pytest.raises(DevChainError):  # the removed server does not confirm
        dev.transact(contract, abi.CONFIRM_MIGRATION, migration_id, sender=ADDRESS[0])
    for i in (1, 2):
        dev.transact(contract, abi.CONFIRM_MIGRATION, migration_id, sender=ADDRESS[i])
    assert sorted(_current(dev, contract)) == sorted(ADDRESS[1:3])
    with pytest.raises(DevChainError, match="reverted"):
        dev.call(contract, abi.GET_CURRENT_KEY_SERVER_PUBLIC, ADDRESS[0])
