// SPDX-License-Identifier: GPL-3.0-or-later
pragma solidity ^0.8.20;

import "./SecretStoreServiceApis.sol";
import "./SecretStoreServiceBase.sol";

/// @title ServerKeyGenerationService
/// @notice Server key generation: a client asks (paying the fee), every current key server
/// reports the generated public, and the key is published once all of them reported the same
/// (a generation needs every server); one server's error ends the request.
abstract contract ServerKeyGenerationService is
    SecretStoreServiceBase,
    ServerKeyGenerationServiceClientApi,
    ServerKeyGenerationServiceKeyServerApi
{
    struct ServerKeyGenerationRequest {
        address author;
        uint256 threshold;
        RequestResponses responses;
    }

    uint256 public serverKeyGenerationFee = 0.2 ether;
    /// Pending requests at most (bounds the gas of reading them all).
    uint256 public maxServerKeyGenerationRequests = 4;
    mapping(bytes32 => ServerKeyGenerationRequest) private serverKeyGenerationRequests;
    bytes32[] private serverKeyGenerationRequestsKeys;

    // --- clients -------------------------------------------------------------------------

    function generateServerKey(bytes32 serverKeyId, uint8 threshold)
        external
        payable
        whenFeePaid(serverKeyGenerationFee)
    {
        require(uint256(threshold) + 1 <= keyServersCount(), "the threshold is too large");
        require(
            serverKeyGenerationRequestsKeys.length < maxServerKeyGenerationRequests,
            "too many pending generation requests"
        );
        ServerKeyGenerationRequest storage request = serverKeyGenerationRequests[serverKeyId];
        require(request.author == address(0), "this key's generation is pending already");
        deposit();
        request.author = msg.sender;
        request.threshold = threshold;
        serverKeyGenerationRequestsKeys.push(serverKeyId);
        emit ServerKeyGenerationRequested(serverKeyId, msg.sender, threshold);
    }

    // --- key servers ---------------------------------------------------------------------

    function serverKeyGenerated(bytes32 serverKeyId, bytes calldata serverKeyPublic)
        external
        validPublic(serverKeyPublic)
    {
        ServerKeyGenerationRequest storage request = serverKeyGenerationRequests[serverKeyId];
        if (request.author == address(0)) return;
        uint8 keyServerIndex = requireKeyServer(msg.sender);
        ResponseSupport support = insertResponse(
            request.responses,
            keyServerIndex,
            uint256(keyServersCount()) - 1,
            keccak256(serverKeyPublic)
        );
        if (support == ResponseSupport.Unconfirmed) return;
        clearServerKeyGenerationRequest(serverKeyId, request);
        if (support == ResponseSupport.Confirmed) {
            emit ServerKeyGenerated(serverKeyId, serverKeyPublic);
        } else {
            emit ServerKeyGenerationError(serverKeyId);
        }
    }

    function serverKeyGenerationError(bytes32 serverKeyId) external {
        requireKeyServer(msg.sender);
        ServerKeyGenerationRequest storage request = serverKeyGenerationRequests[serverKeyId];
        if (request.author == address(0)) return;
        // every server takes part in a generation: one error is final
        clearServerKeyGenerationRequest(serverKeyId, request);
        emit ServerKeyGenerationError(serverKeyId);
    }

    function serverKeyGenerationRequestsCount() external view returns (uint256) {
        return serverKeyGenerationRequestsKeys.length;
    }

    function getServerKeyGenerationRequest(uint256 index)
        external
        view
        returns (bytes32, address, uint256)
    {
        bytes32 serverKeyId = serverKeyGenerationRequestsKeys[index];
        ServerKeyGenerationRequest storage request = serverKeyGenerationRequests[serverKeyId];
        return (serverKeyId, request.author, request.threshold);
    }

    function isServerKeyGenerationResponseRequired(bytes32 serverKeyId, address keyServer)
        external
        view
        returns (bool)
    {
        uint8 keyServerIndex = requireKeyServer(keyServer);
        ServerKeyGenerationRequest storage request = serverKeyGenerationRequests[serverKeyId];
        // no answer to a request that is not pending (Parity's contracts say "required")
        if (request.author == address(0)) return false;
        return isResponseRequired(request.responses, keyServerIndex);
    }

    // --- the owner -----------------------------------------------------------------------

    function setServerKeyGenerationFee(uint256 newFee) external onlyOwner {
        serverKeyGenerationFee = newFee;
    }

    function setMaxServerKeyGenerationRequests(uint256 newLimit) external onlyOwner {
        maxServerKeyGenerationRequests = newLimit;
    }

    function deleteServerKeyGenerationRequest(bytes32 serverKeyId) external onlyOwner {
        ServerKeyGenerationRequest storage request = serverKeyGenerationRequests[serverKeyId];
        require(request.author != address(0), "no such pending request");
        clearServerKeyGenerationRequest(serverKeyId, request);
        emit ServerKeyGenerationError(serverKeyId);
    }

    function clearServerKeyGenerationRequest(
        bytes32 serverKeyId,
        ServerKeyGenerationRequest storage request
    ) private {
        clearResponses(request.responses);
        delete serverKeyGenerationRequests[serverKeyId];
        removeRequestKey(serverKeyGenerationRequestsKeys, serverKeyId);
    }
}

/// @title SecretStoreServerKeyGenerationService
contract SecretStoreServerKeyGenerationService is ServerKeyGenerationService {
    constructor(address keyServerSetAddress) SecretStoreServiceBase(keyServerSetAddress) {}
}
