// SPDX-License-Identifier: GPL-3.0-or-later
pragma solidity ^0.8.20;

/// @title Registry
/// @notice A name registry with the lookup Parity's nodes call: getAddress(keccak256(name), "A").
/// The owner sets entries; an entry never set reads as the zero address ("not set").
contract Registry {
    address public owner;
    mapping(bytes32 => mapping(string => address)) private entries;

    event DataChanged(bytes32 indexed name, string indexed key, string plainKey);
    event OwnerChanged(address indexed oldOwner, address indexed newOwner);

    error NotOwner();

    modifier onlyOwner() {
        if (msg.sender != owner) revert NotOwner();
        _;
    }

    constructor() {
        owner = msg.sender;
    }

    /// @notice The address stored under (name, key); zero when none is.
    function getAddress(bytes32 name, string calldata key) external view returns (address) {
        return entries[name][key];
    }

    /// @notice Store `value` under (name, key); the zero address clears the entry.
    function setAddress(bytes32 name, string calldata key, address value)
        external
        onlyOwner
        returns (bool)
    {
        entries[name][key] = value;
        emit DataChanged(name, key, key);
        return true;
    }

    function setOwner(address newOwner) external onlyOwner {
        emit OwnerChanged(owner, newOwner);
        owner = newOwner;
    }
}
