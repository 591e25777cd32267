// SPDX-License-Identifier: GPL-3.0-or-later
pragma solidity ^0.8.20;

import "./SecretStoreServiceApis.sol";
import "./SecretStoreServiceBase.sol";

/// @title ServerKeyRetrievalService
/// @notice Server key retrieval: every current key server reports the public and threshold it
/// holds (or an error, a vote for "no such key"). The servers first agree on the threshold
/// (more than half of them), then on the public (threshold + 1 of them).
abstract contract ServerKeyRetrievalService is
    SecretStoreServiceBase,
    ServerKeyRetrievalServiceClientApi,
    ServerKeyRetrievalServiceKeyServerApi
{
    struct ServerKeyRetrievalRequest {
        bool isActive;
        RequestResponses thresholdResponses;
        RequestResponses responses;
        bytes publicWithMaxThreshold;
    }

    /// The threshold an error counts as.
    uint8 private constant NO_KEY = 0xFF;

    uint256 public serverKeyRetrievalFee = 0.1 ether;
    uint256 public maxServerKeyRetrievalRequests = 8;
    mapping(bytes32 => ServerKeyRetrievalRequest) private serverKeyRetrievalRequests;
    bytes32[] private serverKeyRetrievalRequestsKeys;

    function retrieveServerKey(bytes32 serverKeyId)
        external
        payable
        whenFeePaid(serverKeyRetrievalFee)
    {
        require(
            serverKeyRetrievalRequestsKeys.length < maxServerKeyRetrievalRequests,
            "too many pending retrieval requests"
        );
        ServerKeyRetrievalRequest storage request = serverKeyRetrievalRequests[serverKeyId];
        require(!request.isActive, "this key's retrieval is pending already");
        deposit();
        request.isActive = true;
        serverKeyRetrievalRequestsKeys.push(serverKeyId);
        emit ServerKeyRetrievalRequested(serverKeyId);
    }

    function serverKeyRetrieved(bytes32 serverKeyId, bytes calldata serverKeyPublic, uint8 threshold)
        external
        validPublic(serverKeyPublic)
    {
        ServerKeyRetrievalRequest storage request = serverKeyRetrievalRequests[serverKeyId];
        if (!request.isActive) return;
        uint8 keyServerIndex = requireKeyServer(msg.sender);
        (ResponseSupport support, bytes memory finalPublic) =
            insertServerKeyRetrievalResponse(request, keyServerIndex, serverKeyPublic, threshold);
        if (support == ResponseSupport.Unconfirmed) return;
        clearServerKeyRetrievalRequest(serverKeyId, request);
        if (support == ResponseSupport.Confirmed) {
            emit ServerKeyRetrieved(serverKeyId, finalPublic);
        } else {
            emit ServerKeyRetrievalError(serverKeyId);
        }
    }

    function serverKeyRetrievalError(bytes32 serverKeyId) external {
        ServerKeyRetrievalRequest storage request = serverKeyRetrievalRequests[serverKeyId];
        if (!request.isActive) return;
        uint8 keyServerIndex = requireKeyServer(msg.sender);
        (ResponseSupport support, ) =
            insertServerKeyRetrievalResponse(request, keyServerIndex, new bytes(64), NO_KEY);
        if (support == ResponseSupport.Unconfirmed) return;
        clearServerKeyRetrievalRequest(serverKeyId, request);
        emit ServerKeyRetrievalError(serverKeyId);
    }

    function serverKeyRetrievalRequestsCount() external view returns (uint256) {
        return serverKeyRetrievalRequestsKeys.length;
    }

    function getServerKeyRetrievalRequest(uint256 index) external view returns (bytes32) {
        return serverKeyRetrievalRequestsKeys[index];
    }

    function isServerKeyRetrievalResponseRequired(bytes32 serverKeyId, address keyServer)
        external
        view
        returns (bool)
    {
        uint8 keyServerIndex = requireKeyServer(keyServer);
        ServerKeyRetrievalRequest storage request = serverKeyRetrievalRequests[serverKeyId];
        // no answer to a request that is not pending (Parity's contracts say "required")
        if (!request.isActive) return false;
        return isResponseRequired(request.thresholdResponses, keyServerIndex);
    }

    function setServerKeyRetrievalFee(uint256 newFee) external onlyOwner {
        serverKeyRetrievalFee = newFee;
    }

    function setMaxServerKeyRetrievalRequests(uint256 newLimit) external onlyOwner {
        maxServerKeyRetrievalRequests = newLimit;
    }

    function deleteServerKeyRetrievalRequest(bytes32 serverKeyId) external onlyOwner {
        ServerKeyRetrievalRequest storage request = serverKeyRetrievalRequests[serverKeyId];
        require(request.isActive, "no such pending request");
        clearServerKeyRetrievalRequest(serverKeyId, request);
        emit ServerKeyRetrievalError(serverKeyId);
    }

    /// Vote on the threshold (more than half must agree), then on public ‖ threshold
    /// (threshold + 1 must agree).
    function insertServerKeyRetrievalResponse(
        ServerKeyRetrievalRequest storage request,
        uint8 keyServerIndex,
        bytes memory serverKeyPublic,
        uint8 threshold
    ) private returns (ResponseSupport, bytes memory) {
        ResponseSupport thresholdSupport = insertResponse(
            request.thresholdResponses,
            keyServerIndex,
            keyServersCount() / 2,
            bytes32(uint256(threshold))
        );
        if (thresholdSupport == ResponseSupport.Impossible) {
            return (thresholdSupport, serverKeyPublic);
        }
        bytes32 response = keccak256(abi.encodePacked(serverKeyPublic, threshold));
        ResponseSupport support =
            insertResponse(request.responses, keyServerIndex, threshold, response);
        if (thresholdSupport == ResponseSupport.Unconfirmed) {
            // remember the best-supported public, to publish it once its threshold is agreed
            if (
                threshold != NO_KEY &&
                request.responses.maxResponseSupport == request.responses.responsesSupport[response]
            ) {
                request.publicWithMaxThreshold = serverKeyPublic;
            }
            return (ResponseSupport.Unconfirmed, serverKeyPublic);
        }
        if (support == ResponseSupport.Unconfirmed) {
            if (uint256(request.responses.maxResponseSupport) >= uint256(threshold) + 1) {
                return (ResponseSupport.Confirmed, request.publicWithMaxThreshold);
            }
        }
        return (support, serverKeyPublic);
    }

    function clearServerKeyRetrievalRequest(
        bytes32 serverKeyId,
        ServerKeyRetrievalRequest storage request
    ) private {
        clearResponses(request.thresholdResponses);
        clearResponses(request.responses);
        delete serverKeyRetrievalRequests[serverKeyId];
        removeRequestKey(serverKeyRetrievalRequestsKeys, serverKeyId);
    }
}

/// @title SecretStoreServerKeyRetrievalService
contract SecretStoreServerKeyRetrievalService is ServerKeyRetrievalService {
    constructor(address keyServerSetAddress) SecretStoreServiceBase(keyServerSetAddress) {}
}
