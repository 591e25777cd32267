// SPDX-License-Identifier: GPL-3.0-or-later
pragma solidity ^0.8.20;

/// @title SecretStorePermissions
/// @notice The interface a key server asks before it releases anything derived from a key:
/// may `user` use the server key `document`? (Parity's AclStorage, selector 0xb36a9a7c.)
interface SecretStorePermissions {
    function checkPermissions(address user, bytes32 document) external view returns (bool);
}

/// @title OwnedPermissions
/// @notice An access list managed by its owner: grant and revoke (user, key) pairs.
contract OwnedPermissions is SecretStorePermissions {
    address public owner;
    mapping(bytes32 => mapping(address => bool)) private allowed;

    event PermissionGranted(address indexed user, bytes32 indexed document);
    event PermissionRevoked(address indexed user, bytes32 indexed document);
    event OwnerChanged(address indexed oldOwner, address indexed newOwner);

    error NotOwner();

    modifier onlyOwner() {
        if (msg.sender != owner) revert NotOwner();
        _;
    }

    constructor() {
        owner = msg.sender;
    }

    function checkPermissions(address user, bytes32 document) external view returns (bool) {
        return allowed[document][user];
    }

    function grant(address user, bytes32 document) external onlyOwner {
        allowed[document][user] = true;
        emit PermissionGranted(user, document);
    }

    function revoke(address user, bytes32 document) external onlyOwner {
        allowed[document][user] = false;
        emit PermissionRevoked(user, document);
    }

    function setOwner(address newOwner) external onlyOwner {
        emit OwnerChanged(owner, newOwner);
        owner = newOwner;
    }
}

/// @title OnceTransferablePermission
/// @notice Whoever creates a key owns it and alone may use it; the owner may hand the key over
/// to another address once. (The behaviour of the ACL Parity's public test deployment used.)
contract OnceTransferablePermission is SecretStorePermissions {
    struct Permission {
        address owner;
        bool transferred;
    }

    mapping(bytes32 => Permission) private permissions;

    event KeyCreated(bytes32 indexed document, address indexed owner);
    event PermissionTransferred(bytes32 indexed document, address indexed from, address indexed to);

    error KeyExists();
    error NotKeyOwner();
    error AlreadyTransferred();

    /// @notice Claim `document`; fails when it has been claimed before.
    function createKey(bytes32 document) external {
        if (permissions[document].owner != address(0)) revert KeyExists();
        permissions[document].owner = msg.sender;
        emit KeyCreated(document, msg.sender);
    }

    /// @notice Hand `document` over to `to`; only its owner, and only once.
    function transferPermission(bytes32 document, address to) external {
        Permission storage permission = permissions[document];
        if (permission.owner != msg.sender) revert NotKeyOwner();
        if (permission.transferred) revert AlreadyTransferred();
        permission.owner = to;
        permission.transferred = true;
        emit PermissionTransferred(document, msg.sender, to);
    }

    function checkPermissions(address user, bytes32 document) external view returns (bool) {
        address keyOwner = permissions[document].owner;
        return keyOwner != address(0) && keyOwner == user;
    }
}
