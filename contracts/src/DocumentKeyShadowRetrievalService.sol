// SPDX-License-Identifier: GPL-3.0-or-later
pragma solidity ^0.8.20;

import "./SecretStoreServiceApis.sol";
import "./SecretStoreServiceBase.sol";

/// @title DocumentKeyShadowRetrievalService
/// @notice Document key shadow retrieval, in two phases. Common: every current key server
/// reports the common point and threshold (or an error, a vote for "none"); once more than half
/// agree they are published (DocumentKeyCommonRetrieved), and the personal phase is asked for.
/// Personal: threshold + 1 servers decrypt together, and each of them reports the joint
/// `decryptedSecret`, the set of participants (a mask of their server indices) and its own
/// decrypt shadow encrypted to the requester, published as it comes
/// (DocumentKeyPersonalRetrieved); the request ends when threshold + 1 reports of the same
/// participants and decrypted secret are in. Errors in the personal phase end it once more than
/// half of the servers reported one.
abstract contract DocumentKeyShadowRetrievalService is
    SecretStoreServiceBase,
    DocumentKeyShadowRetrievalServiceClientApi,
    DocumentKeyShadowRetrievalServiceKeyServerApi
{
    struct DocumentKeyShadowRetrievalRequest {
        bytes32 serverKeyId;
        bytes requesterPublic;
        RequestResponses commonRetrievalResponses;
        bool isCommonRetrievalCompleted;
        uint8 threshold;
        uint256 personalRetrievalErrors;
        uint8 personalRetrievalErrorsCount;
        bytes32[] personalDataKeys;
        mapping(bytes32 => DocumentKeyShadowRetrievalData) personalData;
    }

    struct DocumentKeyShadowRetrievalData {
        uint256 participants;
        uint256 reported;
        uint8 reportedCount;
    }

    /// The common answer an error counts as.
    bytes32 private constant NO_COMMON = bytes32(type(uint256).max);

    uint256 public documentKeyShadowRetrievalFee = 0.2 ether;
    uint256 public maxDocumentKeyShadowRetrievalRequests = 4;
    mapping(bytes32 => DocumentKeyShadowRetrievalRequest) private documentKeyShadowRetrievalRequests;
    bytes32[] private documentKeyShadowRetrievalRequestsKeys;

    function retrievalId(bytes32 serverKeyId, address requester) private pure returns (bytes32) {
        return keccak256(abi.encodePacked(serverKeyId, requester));
    }

    function retrieveDocumentKeyShadow(bytes32 serverKeyId, bytes calldata requesterPublic)
        external
        payable
        whenFeePaid(documentKeyShadowRetrievalFee)
        validPublic(requesterPublic)
    {
        require(
            address(uint160(uint256(keccak256(requesterPublic)))) == msg.sender,
            "the requester public is not the caller's"
        );
        require(
            documentKeyShadowRetrievalRequestsKeys.length < maxDocumentKeyShadowRetrievalRequests,
            "too many pending shadow retrieval requests"
        );
        bytes32 id = retrievalId(serverKeyId, msg.sender);
        DocumentKeyShadowRetrievalRequest storage request = documentKeyShadowRetrievalRequests[id];
        require(request.requesterPublic.length == 0, "this retrieval is pending already");
        deposit();
        request.serverKeyId = serverKeyId;
        request.requesterPublic = requesterPublic;
        documentKeyShadowRetrievalRequestsKeys.push(id);
        emit DocumentKeyCommonRetrievalRequested(serverKeyId, msg.sender);
    }

    function documentKeyCommonRetrieved(
        bytes32 serverKeyId,
        address requester,
        bytes calldata commonPoint,
        uint8 threshold
    ) external validPublic(commonPoint) {
        bytes32 id = retrievalId(serverKeyId, requester);
        DocumentKeyShadowRetrievalRequest storage request = documentKeyShadowRetrievalRequests[id];
        if (request.isCommonRetrievalCompleted || request.requesterPublic.length == 0) return;
        uint8 keyServerIndex = requireKeyServer(msg.sender);
        ResponseSupport support = insertResponse(
            request.commonRetrievalResponses,
            keyServerIndex,
            keyServersCount() / 2,
            keccak256(abi.encodePacked(commonPoint, threshold))
        );
        if (support == ResponseSupport.Unconfirmed) return;
        if (support == ResponseSupport.Impossible) {
            clearDocumentKeyShadowRetrievalRequest(id, request);
            emit DocumentKeyShadowRetrievalError(serverKeyId, requester);
            return;
        }
        request.isCommonRetrievalCompleted = true;
        request.threshold = threshold;
        emit DocumentKeyCommonRetrieved(serverKeyId, requester, commonPoint, threshold);
        // ...which also asks the key servers for the personal part
        emit DocumentKeyPersonalRetrievalRequested(serverKeyId, request.requesterPublic);
    }

    function documentKeyPersonalRetrieved(
        bytes32 serverKeyId,
        address requester,
        uint256 participants,
        bytes calldata decryptedSecret,
        bytes calldata shadow
    ) external validPublic(decryptedSecret) {
        bytes32 id = retrievalId(serverKeyId, requester);
        DocumentKeyShadowRetrievalRequest storage request = documentKeyShadowRetrievalRequests[id];
        if (request.requesterPublic.length == 0) return;
        require(request.isCommonRetrievalCompleted, "the common part is not retrieved yet");
        // exactly threshold + 1 servers decrypt (Parity left this check as a to-do)
        require(
            popCount(participants) == uint256(request.threshold) + 1,
            "the participants are not threshold + 1 key servers"
        );
        uint8 keyServerIndex = requireKeyServer(msg.sender);
        uint256 mask = uint256(1) << keyServerIndex;
        require((participants & mask) != 0, "the caller is not among the participants");

        bytes32 dataId = keccak256(abi.encodePacked(participants, decryptedSecret));
        DocumentKeyShadowRetrievalData storage data = request.personalData[dataId];
        if (data.participants == 0) {
            request.personalDataKeys.push(dataId);
            data.participants = participants;
        } else {
            require((data.reported & mask) == 0, "this key server reported already");
        }
        data.reportedCount += 1;
        data.reported |= mask;
        emit DocumentKeyPersonalRetrieved(serverKeyId, requester, decryptedSecret, shadow);
        if (uint256(data.reportedCount) == uint256(request.threshold) + 1) {
            clearDocumentKeyShadowRetrievalRequest(id, request);
        }
    }

    function documentKeyShadowRetrievalError(bytes32 serverKeyId, address requester) external {
        bytes32 id = retrievalId(serverKeyId, requester);
        DocumentKeyShadowRetrievalRequest storage request = documentKeyShadowRetrievalRequests[id];
        if (request.requesterPublic.length == 0) return;
        uint8 keyServerIndex = requireKeyServer(msg.sender);
        if (!request.isCommonRetrievalCompleted) {
            ResponseSupport support = insertResponse(
                request.commonRetrievalResponses, keyServerIndex, keyServersCount() / 2, NO_COMMON
            );
            if (support == ResponseSupport.Unconfirmed) return;
            clearDocumentKeyShadowRetrievalRequest(id, request);
            emit DocumentKeyShadowRetrievalError(serverKeyId, requester);
            return;
        }
        // the personal phase: more than half of the servers must report an error
        uint256 mask = uint256(1) << keyServerIndex;
        if ((request.personalRetrievalErrors & mask) != 0) return;
        request.personalRetrievalErrors |= mask;
        request.personalRetrievalErrorsCount += 1;
        if (uint256(request.personalRetrievalErrorsCount) < uint256(keyServersCount()) / 2 + 1) {
            return;
        }
        clearDocumentKeyShadowRetrievalRequest(id, request);
        emit DocumentKeyShadowRetrievalError(serverKeyId, requester);
    }

    function documentKeyShadowRetrievalRequestsCount() external view returns (uint256) {
        return documentKeyShadowRetrievalRequestsKeys.length;
    }

    function getDocumentKeyShadowRetrievalRequest(uint256 index)
        external
        view
        returns (bytes32, bytes memory, bool)
    {
        bytes32 id = documentKeyShadowRetrievalRequestsKeys[index];
        DocumentKeyShadowRetrievalRequest storage request = documentKeyShadowRetrievalRequests[id];
        return (request.serverKeyId, request.requesterPublic, request.isCommonRetrievalCompleted);
    }

    function isDocumentKeyShadowRetrievalResponseRequired(
        bytes32 serverKeyId,
        address requester,
        address keyServer
    ) external view returns (bool) {
        uint8 keyServerIndex = requireKeyServer(keyServer);
        DocumentKeyShadowRetrievalRequest storage request =
            documentKeyShadowRetrievalRequests[retrievalId(serverKeyId, requester)];
        // no answer to a request that is not pending (Parity's contracts say "required");
        // in the personal phase a response is always wanted (a new decryption may be needed)
        if (request.requesterPublic.length == 0) return false;
        return request.isCommonRetrievalCompleted ||
            isResponseRequired(request.commonRetrievalResponses, keyServerIndex);
    }

    function setDocumentKeyShadowRetrievalFee(uint256 newFee) external onlyOwner {
        documentKeyShadowRetrievalFee = newFee;
    }

    function setMaxDocumentKeyShadowRetrievalRequests(uint256 newLimit) external onlyOwner {
        maxDocumentKeyShadowRetrievalRequests = newLimit;
    }

    function deleteDocumentKeyShadowRetrievalRequest(bytes32 serverKeyId, address requester)
        external
        onlyOwner
    {
        bytes32 id = retrievalId(serverKeyId, requester);
        DocumentKeyShadowRetrievalRequest storage request = documentKeyShadowRetrievalRequests[id];
        require(request.requesterPublic.length != 0, "no such pending request");
        clearDocumentKeyShadowRetrievalRequest(id, request);
        emit DocumentKeyShadowRetrievalError(serverKeyId, requester);
    }

    function clearDocumentKeyShadowRetrievalRequest(
        bytes32 id,
        DocumentKeyShadowRetrievalRequest storage request
    ) private {
        for (uint256 i = 0; i < request.personalDataKeys.length; ++i) {
            delete request.personalData[request.personalDataKeys[i]];
        }
        delete request.personalDataKeys;
        clearResponses(request.commonRetrievalResponses);
        delete documentKeyShadowRetrievalRequests[id];
        removeRequestKey(documentKeyShadowRetrievalRequestsKeys, id);
    }

    function popCount(uint256 value) private pure returns (uint256 count) {
        while (value != 0) {
            value &= value - 1;
            count++;
        }
    }
}

/// @title SecretStoreDocumentKeyShadowRetrievalService
contract SecretStoreDocumentKeyShadowRetrievalService is DocumentKeyShadowRetrievalService {
    constructor(address keyServerSetAddress) SecretStoreServiceBase(keyServerSetAddress) {}
}
