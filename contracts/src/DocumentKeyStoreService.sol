// SPDX-License-Identifier: GPL-3.0-or-later
pragma solidity ^0.8.20;

import "./SecretStoreServiceApis.sol";
import "./SecretStoreServiceBase.sol";

/// @title DocumentKeyStoreService
/// @notice Document key store: the server key's author hands in the encrypted document key
/// (common and encrypted point); every current key server stores it and reports, and the store
/// is published once all of them did; one server's error ends the request.
abstract contract DocumentKeyStoreService is
    SecretStoreServiceBase,
    DocumentKeyStoreServiceClientApi,
    DocumentKeyStoreServiceKeyServerApi
{
    struct DocumentKeyStoreRequest {
        address author;
        bytes commonPoint;
        bytes encryptedPoint;
        RequestResponses responses;
    }

    uint256 public documentKeyStoreFee = 0.1 ether;
    uint256 public maxDocumentKeyStoreRequests = 8;
    mapping(bytes32 => DocumentKeyStoreRequest) private documentKeyStoreRequests;
    bytes32[] private documentKeyStoreRequestsKeys;

    function storeDocumentKey(
        bytes32 serverKeyId,
        bytes calldata commonPoint,
        bytes calldata encryptedPoint
    )
        external
        payable
        whenFeePaid(documentKeyStoreFee)
        validPublic(commonPoint)
        validPublic(encryptedPoint)
    {
        require(
            documentKeyStoreRequestsKeys.length < maxDocumentKeyStoreRequests,
            "too many pending store requests"
        );
        DocumentKeyStoreRequest storage request = documentKeyStoreRequests[serverKeyId];
        require(request.author == address(0), "this key's store is pending already");
        deposit();
        request.author = msg.sender;
        request.commonPoint = commonPoint;
        request.encryptedPoint = encryptedPoint;
        documentKeyStoreRequestsKeys.push(serverKeyId);
        emit DocumentKeyStoreRequested(serverKeyId, msg.sender, commonPoint, encryptedPoint);
    }

    function documentKeyStored(bytes32 serverKeyId) external {
        DocumentKeyStoreRequest storage request = documentKeyStoreRequests[serverKeyId];
        if (request.author == address(0)) return;
        uint8 keyServerIndex = requireKeyServer(msg.sender);
        ResponseSupport support = insertResponse(
            request.responses, keyServerIndex, uint256(keyServersCount()) - 1, bytes32(0)
        );
        if (support == ResponseSupport.Unconfirmed) return;
        // every server only reports that it stored the key: there is one answer
        clearDocumentKeyStoreRequest(serverKeyId, request);
        emit DocumentKeyStored(serverKeyId);
    }

    function documentKeyStoreError(bytes32 serverKeyId) external {
        requireKeyServer(msg.sender);
        DocumentKeyStoreRequest storage request = documentKeyStoreRequests[serverKeyId];
        if (request.author == address(0)) return;
        clearDocumentKeyStoreRequest(serverKeyId, request);
        emit DocumentKeyStoreError(serverKeyId);
    }

    function documentKeyStoreRequestsCount() external view returns (uint256) {
        return documentKeyStoreRequestsKeys.length;
    }

    function getDocumentKeyStoreRequest(uint256 index)
        external
        view
        returns (bytes32, address, bytes memory, bytes memory)
    {
        bytes32 serverKeyId = documentKeyStoreRequestsKeys[index];
        DocumentKeyStoreRequest storage request = documentKeyStoreRequests[serverKeyId];
        return (serverKeyId, request.author, request.commonPoint, request.encryptedPoint);
    }

    function isDocumentKeyStoreResponseRequired(bytes32 serverKeyId, address keyServer)
        external
        view
        returns (bool)
    {
        uint8 keyServerIndex = requireKeyServer(keyServer);
        DocumentKeyStoreRequest storage request = documentKeyStoreRequests[serverKeyId];
        // no answer to a request that is not pending (Parity's contracts say "required")
        if (request.author == address(0)) return false;
        return isResponseRequired(request.responses, keyServerIndex);
    }

    function setDocumentKeyStoreFee(uint256 newFee) external onlyOwner {
        documentKeyStoreFee = newFee;
    }

    function setMaxDocumentKeyStoreRequests(uint256 newLimit) external onlyOwner {
        maxDocumentKeyStoreRequests = newLimit;
    }

    function deleteDocumentKeyStoreRequest(bytes32 serverKeyId) external onlyOwner {
        DocumentKeyStoreRequest storage request = documentKeyStoreRequests[serverKeyId];
        require(request.author != address(0), "no such pending request");
        clearDocumentKeyStoreRequest(serverKeyId, request);
        emit DocumentKeyStoreError(serverKeyId);
    }

    function clearDocumentKeyStoreRequest(
        bytes32 serverKeyId,
        DocumentKeyStoreRequest storage request
    ) private {
        clearResponses(request.responses);
        delete documentKeyStoreRequests[serverKeyId];
        removeRequestKey(documentKeyStoreRequestsKeys, serverKeyId);
    }
}

/// @title SecretStoreDocumentKeyStoreService
contract SecretStoreDocumentKeyStoreService is DocumentKeyStoreService {
    constructor(address keyServerSetAddress) SecretStoreServiceBase(keyServerSetAddress) {}
}
