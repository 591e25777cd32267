// SPDX-License-Identifier: GPL-3.0-or-later
pragma solidity ^0.8.20;

/// @title KeyServerSet
/// @notice The current set of key servers: each has an address (keccak256(public)[12:]), a
/// 64-byte public key (its node id) and an "ip:port" where the other servers reach it.
interface KeyServerSet {
    event KeyServerAdded(address keyServer);
    event KeyServerRemoved(address keyServer);

    /// @notice The block of the last change of the current set (0 before any).
    function getCurrentLastChange() external view returns (uint256);
    /// @notice The index of a current key server; reverts for a non-member.
    function getCurrentKeyServerIndex(address keyServer) external view returns (uint8);
    function getCurrentKeyServersCount() external view returns (uint8);
    function getCurrentKeyServer(uint8 index) external view returns (address);
    function getCurrentKeyServers() external view returns (address[] memory);
    function getCurrentKeyServerPublic(address keyServer) external view returns (bytes memory);
    function getCurrentKeyServerAddress(address keyServer) external view returns (string memory);
}

/// @title KeyServerSetWithMigration
/// @notice A key server set that changes by migration: the owner edits the *new* set; a key
/// server starts a migration (the new set is copied into the *migration* set), the servers move
/// their key shares, and every migration server confirms; then the migration set becomes current.
interface KeyServerSetWithMigration is KeyServerSet {
    event MigrationStarted();
    event MigrationCompleted();

    function getMigrationKeyServers() external view returns (address[] memory);
    function getMigrationKeyServerPublic(address keyServer) external view returns (bytes memory);
    function getMigrationKeyServerAddress(address keyServer) external view returns (string memory);
    function getNewKeyServers() external view returns (address[] memory);
    function getNewKeyServerPublic(address keyServer) external view returns (bytes memory);
    function getNewKeyServerAddress(address keyServer) external view returns (string memory);
    /// @notice The id of the last migration started; reverts before the first.
    function getMigrationId() external view returns (bytes32);
    /// @notice The key server that started the running migration (zero when none runs).
    function getMigrationMaster() external view returns (address);
    function isMigrationConfirmed(address keyServer) external view returns (bool);
    function startMigration(bytes32 id) external;
    function confirmMigration(bytes32 id) external;
}

/// @title KeyServerSets
/// @notice Storage and rules shared by the set contracts: lists of servers with their public
/// keys and addresses, at most 256 per set; removal moves the last server into the freed index.
abstract contract KeyServerSets {
    uint256 internal constant MAX_KEY_SERVERS = 256;

    struct KeyServerEntry {
        uint8 index;
        bytes publicKey;
        string ip;
    }

    struct Set {
        address[] list;
        mapping(address => KeyServerEntry) map;
    }

    address public owner;

    error NotOwner();
    error NotAKeyServer(address keyServer);
    error KeyServerExists(address keyServer);
    error BadPublicKey();
    error EmptyAddress();
    error TooManyKeyServers();

    modifier onlyOwner() {
        if (msg.sender != owner) revert NotOwner();
        _;
    }

    constructor() {
        owner = msg.sender;
    }

    function setOwner(address newOwner) external onlyOwner {
        owner = newOwner;
    }

    function addressOf(bytes memory publicKey) internal pure returns (address) {
        if (publicKey.length != 64) revert BadPublicKey();
        return address(uint160(uint256(keccak256(publicKey))));
    }

    function contains(Set storage set, address keyServer) internal view returns (bool) {
        return bytes(set.map[keyServer].ip).length != 0;
    }

    function entry(Set storage set, address keyServer)
        internal
        view
        returns (KeyServerEntry storage)
    {
        if (!contains(set, keyServer)) revert NotAKeyServer(keyServer);
        return set.map[keyServer];
    }

    function insert(Set storage set, address keyServer, bytes memory publicKey, string memory ip)
        internal
    {
        if (bytes(ip).length == 0) revert EmptyAddress();
        if (contains(set, keyServer)) revert KeyServerExists(keyServer);
        if (set.list.length >= MAX_KEY_SERVERS) revert TooManyKeyServers();
        set.map[keyServer] = KeyServerEntry(uint8(set.list.length), publicKey, ip);
        set.list.push(keyServer);
    }

    function remove(Set storage set, address keyServer) internal {
        uint8 index = entry(set, keyServer).index;
        address last = set.list[set.list.length - 1];
        set.list[index] = last;
        set.map[last].index = index;
        set.list.pop();
        delete set.map[keyServer];
    }

    function clear(Set storage set) internal {
        while (set.list.length != 0) {
            delete set.map[set.list[set.list.length - 1]];
            set.list.pop();
        }
    }

    function copy(Set storage target, Set storage source) internal {
        clear(target);
        for (uint256 i = 0; i < source.list.length; i++) {
            KeyServerEntry storage item = source.map[source.list[i]];
            insert(target, source.list[i], item.publicKey, item.ip);
        }
    }

    function sameMembers(Set storage a, Set storage b) internal view returns (bool) {
        if (a.list.length != b.list.length) return false;
        for (uint256 i = 0; i < a.list.length; i++) {
            if (!contains(b, a.list[i])) return false;
        }
        return true;
    }

    function count(Set storage set) internal view returns (uint8) {
        if (set.list.length >= MAX_KEY_SERVERS) revert TooManyKeyServers();
        return uint8(set.list.length);
    }
}

/// @title OwnedKeyServerSet
/// @notice The simple set: the owner edits the current set directly; there is no migration
/// (run its key servers with disable_auto_migrate = true).
contract OwnedKeyServerSet is KeyServerSet, KeyServerSets {
    Set private current;
    uint256 private currentSetChangeBlock;

    function addKeyServer(bytes calldata keyServerPublic, string calldata keyServerIp)
        external
        onlyOwner
    {
        address keyServer = addressOf(keyServerPublic);
        insert(current, keyServer, keyServerPublic, keyServerIp);
        currentSetChangeBlock = block.number;
        emit KeyServerAdded(keyServer);
    }

    function removeKeyServer(address keyServer) external onlyOwner {
        remove(current, keyServer);
        currentSetChangeBlock = block.number;
        emit KeyServerRemoved(keyServer);
    }

    function getCurrentLastChange() external view returns (uint256) {
        return currentSetChangeBlock;
    }

    function getCurrentKeyServerIndex(address keyServer) external view returns (uint8) {
        return entry(current, keyServer).index;
    }

    function getCurrentKeyServersCount() external view returns (uint8) {
        return count(current);
    }

    function getCurrentKeyServer(uint8 index) external view returns (address) {
        return current.list[index];
    }

    function getCurrentKeyServers() external view returns (address[] memory) {
        return current.list;
    }

    function getCurrentKeyServerPublic(address keyServer) external view returns (bytes memory) {
        return entry(current, keyServer).publicKey;
    }

    function getCurrentKeyServerAddress(address keyServer) external view returns (string memory) {
        return entry(current, keyServer).ip;
    }
}

/// @title OwnedKeyServerSetWithMigration
/// @notice The owner edits the new set (and, until completeInitialization, the current set
/// too); key servers start and confirm migrations.
contract OwnedKeyServerSetWithMigration is KeyServerSetWithMigration, KeyServerSets {
    Set private current;
    Set private pending; // the "new" set
    Set private migration;
    mapping(address => bool) private migrationConfirmations;
    address private migrationMaster;
    bytes32 private migrationId;
    uint256 private currentSetChangeBlock;
    bool public isInitialized;

    error AlreadyInitialized();
    error MigrationActive();
    error NoActiveMigration();
    error WrongMigrationId();
    error ZeroMigrationId();
    error NoChange();
    error EmptyNewSet();
    error NotAParticipant(address sender);
    error AlreadyConfirmed(address sender);

    modifier noActiveMigration() {
        if (migrationMaster != address(0)) revert MigrationActive();
        _;
    }

    modifier activeMigration(bytes32 id) {
        if (migrationMaster == address(0)) revert NoActiveMigration();
        if (id != migrationId) revert WrongMigrationId();
        _;
    }

    // --- the owner ---------------------------------------------------------------------------

    function addKeyServer(bytes calldata keyServerPublic, string calldata keyServerIp)
        external
        onlyOwner
    {
        address keyServer = addressOf(keyServerPublic);
        insert(pending, keyServer, keyServerPublic, keyServerIp);
        if (!isInitialized) insert(current, keyServer, keyServerPublic, keyServerIp);
        emit KeyServerAdded(keyServer);
    }

    function removeKeyServer(address keyServer) external onlyOwner {
        remove(pending, keyServer);
        if (!isInitialized) remove(current, keyServer);
        emit KeyServerRemoved(keyServer);
    }

    /// @notice From now on the owner edits only the new set; the current one changes by
    /// migration.
    function completeInitialization() external onlyOwner {
        if (isInitialized) revert AlreadyInitialized();
        isInitialized = true;
    }

    // --- key servers -------------------------------------------------------------------------

    function startMigration(bytes32 id) external noActiveMigration {
        if (id == bytes32(0)) revert ZeroMigrationId();
        if (sameMembers(current, pending)) revert NoChange();
        if (!contains(current, msg.sender) && !contains(pending, msg.sender)) {
            revert NotAParticipant(msg.sender);
        }
        if (pending.list.length == 0) revert EmptyNewSet();
        migrationMaster = msg.sender;
        migrationId = id;
        copy(migration, pending);
        emit MigrationStarted();
    }

    function confirmMigration(bytes32 id) external activeMigration(id) {
        if (!contains(migration, msg.sender)) revert NotAParticipant(msg.sender);
        if (migrationConfirmations[msg.sender]) revert AlreadyConfirmed(msg.sender);
        migrationConfirmations[msg.sender] = true;
        for (uint256 i = 0; i < migration.list.length; i++) {
            if (!migrationConfirmations[migration.list[i]]) return;
        }
        for (uint256 i = 0; i < migration.list.length; i++) {
            delete migrationConfirmations[migration.list[i]];
        }
        migrationMaster = address(0);
        copy(current, migration);
        clear(migration);
        currentSetChangeBlock = block.number;
        emit MigrationCompleted();
    }

    // --- reads -------------------------------------------------------------------------------

    function getCurrentLastChange() external view returns (uint256) {
        return currentSetChangeBlock;
    }

    function getCurrentKeyServerIndex(address keyServer) external view returns (uint8) {
        return entry(current, keyServer).index;
    }

    function getCurrentKeyServersCount() external view returns (uint8) {
        return count(current);
    }

    function getCurrentKeyServer(uint8 index) external view returns (address) {
        return current.list[index];
    }

    function getCurrentKeyServers() external view returns (address[] memory) {
        return current.list;
    }

    function getCurrentKeyServerPublic(address keyServer) external view returns (bytes memory) {
        return entry(current, keyServer).publicKey;
    }

    function getCurrentKeyServerAddress(address keyServer) external view returns (string memory) {
        return entry(current, keyServer).ip;
    }

    function getMigrationKeyServers() external view returns (address[] memory) {
        return migration.list;
    }

    function getMigrationKeyServerPublic(address keyServer) external view returns (bytes memory) {
        return entry(migration, keyServer).publicKey;
    }

    function getMigrationKeyServerAddress(address keyServer)
        external
        view
        returns (string memory)
    {
        return entry(migration, keyServer).ip;
    }

    function getNewKeyServers() external view returns (address[] memory) {
        return pending.list;
    }

    function getNewKeyServerPublic(address keyServer) external view returns (bytes memory) {
        return entry(pending, keyServer).publicKey;
    }

    function getNewKeyServerAddress(address keyServer) external view returns (string memory) {
        return entry(pending, keyServer).ip;
    }

    function getMigrationId() external view returns (bytes32) {
        if (migrationId == bytes32(0)) revert NoActiveMigration();
        return migrationId;
    }

    function getMigrationMaster() external view returns (address) {
        return migrationMaster;
    }

    function isMigrationConfirmed(address keyServer) external view returns (bool) {
        return migrationConfirmations[keyServer];
    }
}
