// SPDX-License-Identifier: GPL-3.0-or-later
pragma solidity ^0.8.20;

import "./KeyServerSet.sol";

/// @title SecretStoreServiceBase
/// @notice What the four services share: the key server set they serve, the fee each request
/// pays (split equally among the current key servers, the remainder to the last; each server
/// `drain`s its balance), the owner, and response voting.
///
/// Response voting, per request: a bitmask of the key servers that answered (by their index in
/// the current set) and the support of every distinct answer. An answer is Confirmed once
/// `threshold + 1` servers gave it, Impossible once the servers that have not answered cannot
/// bring any answer there any more; a server's second answer is ignored. Every answer given
/// before the key server set last changed is forgotten (the set's `getCurrentLastChange`).
abstract contract SecretStoreServiceBase {
    enum ResponseSupport {
        Confirmed,
        Unconfirmed,
        Impossible
    }

    struct RequestResponses {
        /// The set's last change when the first of these answers came.
        uint256 keyServerSetChangeBlock;
        uint256 respondedKeyServersMask;
        uint8 respondedKeyServersCount;
        mapping(bytes32 => uint8) responsesSupport;
        uint8 maxResponseSupport;
        /// Every distinct answer (the keys of responsesSupport), to clear them.
        bytes32[] responses;
    }

    address public owner;
    /// The KeyServerSet whose current servers answer and share the fees.
    address public immutable keyServerSet;
    mapping(address => uint256) private balances;

    modifier onlyOwner() {
        require(msg.sender == owner, "only the owner may do this");
        _;
    }

    modifier whenFeePaid(uint256 amount) {
        require(msg.value >= amount, "the fee is not paid");
        _;
    }

    modifier validPublic(bytes calldata publicKey) {
        require(publicKey.length == 64, "a public key (point) is 64 bytes");
        _;
    }

    constructor(address keyServerSetAddress) {
        owner = msg.sender;
        keyServerSet = keyServerSetAddress;
    }

    function setOwner(address newOwner) external onlyOwner {
        owner = newOwner;
    }

    /// The number of current key servers.
    function keyServersCount() public view returns (uint8) {
        return KeyServerSet(keyServerSet).getCurrentKeyServersCount();
    }

    /// The index of a current key server; reverts for anyone else.
    function requireKeyServer(address keyServer) public view returns (uint8) {
        return KeyServerSet(keyServerSet).getCurrentKeyServerIndex(keyServer);
    }

    /// The fees a key server has earned and not drained yet.
    function keyServerBalance(address keyServer) external view returns (uint256) {
        return balances[keyServer];
    }

    /// Send the caller its earned fees.
    function drain() external {
        uint256 balance = balances[msg.sender];
        require(balance != 0, "nothing to drain");
        balances[msg.sender] = 0;
        (bool sent, ) = payable(msg.sender).call{value: balance}("");
        require(sent, "the transfer failed");
    }

    /// Split msg.value equally among the current key servers (the remainder to the last).
    function deposit() internal {
        uint8 count = keyServersCount();
        require(count != 0, "no key servers");
        uint256 amount = msg.value;
        uint256 share = amount / count;
        KeyServerSet set = KeyServerSet(keyServerSet);
        for (uint8 i = 0; i + 1 < count; i++) {
            balances[set.getCurrentKeyServer(i)] += share;
            amount -= share;
        }
        balances[set.getCurrentKeyServer(count - 1)] += amount;
    }

    /// Whether the server at `keyServerIndex` still has to answer.
    function isResponseRequired(RequestResponses storage responses, uint8 keyServerIndex)
        internal
        view
        returns (bool)
    {
        uint256 changed = KeyServerSet(keyServerSet).getCurrentLastChange();
        if (changed != responses.keyServerSetChangeBlock) return true;
        return (responses.respondedKeyServersMask & (uint256(1) << keyServerIndex)) == 0;
    }

    /// Count one server's answer; Confirmed at `threshold + 1` supporting servers.
    function insertResponse(
        RequestResponses storage responses,
        uint8 keyServerIndex,
        uint256 threshold,
        bytes32 response
    ) internal returns (ResponseSupport) {
        uint256 changed = KeyServerSet(keyServerSet).getCurrentLastChange();
        if (responses.respondedKeyServersCount == 0) {
            responses.keyServerSetChangeBlock = changed;
        } else if (responses.keyServerSetChangeBlock != changed) {
            resetResponses(responses, changed);
        }

        uint256 mask = uint256(1) << keyServerIndex;
        if ((responses.respondedKeyServersMask & mask) != 0) return ResponseSupport.Unconfirmed;

        uint8 support = responses.responsesSupport[response] + 1;
        responses.respondedKeyServersMask |= mask;
        responses.respondedKeyServersCount += 1;
        responses.responsesSupport[response] = support;
        if (support == 1) responses.responses.push(response);
        if (support >= responses.maxResponseSupport) {
            responses.maxResponseSupport = support;
            if (threshold + 1 <= support) return ResponseSupport.Confirmed;
        }

        uint256 count = keyServersCount();
        uint256 responded = responses.respondedKeyServersCount;
        uint256 left = responded < count ? count - responded : 0;
        if (threshold + 1 > uint256(responses.maxResponseSupport) + left) {
            return ResponseSupport.Impossible;
        }
        return ResponseSupport.Unconfirmed;
    }

    /// Forget every answer (before a request is deleted, or when the set changed).
    function clearResponses(RequestResponses storage responses) internal {
        for (uint256 i = 0; i < responses.responses.length; ++i) {
            delete responses.responsesSupport[responses.responses[i]];
        }
        delete responses.responses;
        responses.respondedKeyServersMask = 0;
        responses.respondedKeyServersCount = 0;
        responses.maxResponseSupport = 0;
    }

    function resetResponses(RequestResponses storage responses, uint256 changed) private {
        clearResponses(responses);
        responses.keyServerSetChangeBlock = changed;
    }

    /// Remove `request` from the list of pending request keys (the last one takes its place).
    function removeRequestKey(bytes32[] storage requests, bytes32 request) internal {
        for (uint256 i = 0; i < requests.length; ++i) {
            if (requests[i] == request) {
                requests[i] = requests[requests.length - 1];
                requests.pop();
                break;
            }
        }
    }
}
