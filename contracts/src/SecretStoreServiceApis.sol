// SPDX-License-Identifier: GPL-3.0-or-later
pragma solidity ^0.8.20;

/// The interfaces of the four Secret Store services, as Parity's key servers and clients use
/// them: the client view (request, and the events that answer it) and the key server view
/// (the "Requested" events, whose fields are not indexed, and the functions key servers call
/// and read). Selectors and event topics are Parity's.

/// @title ServerKeyGenerationServiceClientApi
interface ServerKeyGenerationServiceClientApi {
    /// The server key is generated: its 64-byte public.
    event ServerKeyGenerated(bytes32 indexed serverKeyId, bytes serverKeyPublic);
    /// The generation failed.
    event ServerKeyGenerationError(bytes32 indexed serverKeyId);

    /// Ask the key servers to generate server key `serverKeyId` (any threshold + 1 of them
    /// can use it); the caller becomes its author. Pays the generation fee.
    function generateServerKey(bytes32 serverKeyId, uint8 threshold) external payable;
}

/// @title ServerKeyGenerationServiceKeyServerApi
interface ServerKeyGenerationServiceKeyServerApi {
    event ServerKeyGenerationRequested(bytes32 serverKeyId, address author, uint8 threshold);

    function serverKeyGenerated(bytes32 serverKeyId, bytes calldata serverKeyPublic) external;
    function serverKeyGenerationError(bytes32 serverKeyId) external;
    function serverKeyGenerationRequestsCount() external view returns (uint256);
    /// (serverKeyId, author, threshold) of the pending request at `index`.
    function getServerKeyGenerationRequest(uint256 index)
        external
        view
        returns (bytes32, address, uint256);
    function isServerKeyGenerationResponseRequired(bytes32 serverKeyId, address keyServer)
        external
        view
        returns (bool);
}

/// @title ServerKeyRetrievalServiceClientApi
interface ServerKeyRetrievalServiceClientApi {
    /// The server key public. (Parity's interface file declares a 3-argument event with the
    /// threshold, but its contract emits this 2-argument one; clients listen for this.)
    event ServerKeyRetrieved(bytes32 indexed serverKeyId, bytes serverKeyPublic);
    event ServerKeyRetrievalError(bytes32 indexed serverKeyId);

    function retrieveServerKey(bytes32 serverKeyId) external payable;
}

/// @title ServerKeyRetrievalServiceKeyServerApi
interface ServerKeyRetrievalServiceKeyServerApi {
    event ServerKeyRetrievalRequested(bytes32 serverKeyId);

    function serverKeyRetrieved(bytes32 serverKeyId, bytes calldata serverKeyPublic, uint8 threshold)
        external;
    function serverKeyRetrievalError(bytes32 serverKeyId) external;
    function serverKeyRetrievalRequestsCount() external view returns (uint256);
    function getServerKeyRetrievalRequest(uint256 index) external view returns (bytes32);
    function isServerKeyRetrievalResponseRequired(bytes32 serverKeyId, address keyServer)
        external
        view
        returns (bool);
}

/// @title DocumentKeyStoreServiceClientApi
interface DocumentKeyStoreServiceClientApi {
    event DocumentKeyStored(bytes32 indexed serverKeyId);
    event DocumentKeyStoreError(bytes32 indexed serverKeyId);

    /// Store a document key encrypted with server key `serverKeyId` (both 64-byte points, as
    /// `secretstore_generateDocumentKey` makes them); only the server key's author may.
    function storeDocumentKey(
        bytes32 serverKeyId,
        bytes calldata commonPoint,
        bytes calldata encryptedPoint
    ) external payable;
}

/// @title DocumentKeyStoreServiceKeyServerApi
interface DocumentKeyStoreServiceKeyServerApi {
    event DocumentKeyStoreRequested(
        bytes32 serverKeyId, address author, bytes commonPoint, bytes encryptedPoint
    );

    function documentKeyStored(bytes32 serverKeyId) external;
    function documentKeyStoreError(bytes32 serverKeyId) external;
    function documentKeyStoreRequestsCount() external view returns (uint256);
    /// (serverKeyId, author, commonPoint, encryptedPoint) of the pending request at `index`.
    function getDocumentKeyStoreRequest(uint256 index)
        external
        view
        returns (bytes32, address, bytes memory, bytes memory);
    function isDocumentKeyStoreResponseRequired(bytes32 serverKeyId, address keyServer)
        external
        view
        returns (bool);
}

/// @title DocumentKeyShadowRetrievalServiceClientApi
interface DocumentKeyShadowRetrievalServiceClientApi {
    /// The common part: after it, wait for threshold + 1 DocumentKeyPersonalRetrieved events
    /// with the same `decryptedSecret`.
    event DocumentKeyCommonRetrieved(
        bytes32 indexed serverKeyId, address indexed requester, bytes commonPoint, uint8 threshold
    );
    /// One key server's part: its decrypt shadow, encrypted to the requester.
    event DocumentKeyPersonalRetrieved(
        bytes32 indexed serverKeyId, address indexed requester, bytes decryptedSecret, bytes shadow
    );
    event DocumentKeyShadowRetrievalError(bytes32 indexed serverKeyId, address indexed requester);

    /// Ask for the document key of `serverKeyId`; `requesterPublic` must be the caller's.
    function retrieveDocumentKeyShadow(bytes32 serverKeyId, bytes calldata requesterPublic)
        external
        payable;
}

/// @title DocumentKeyShadowRetrievalServiceKeyServerApi
interface DocumentKeyShadowRetrievalServiceKeyServerApi {
    event DocumentKeyCommonRetrievalRequested(bytes32 serverKeyId, address requester);
    event DocumentKeyPersonalRetrievalRequested(bytes32 serverKeyId, bytes requesterPublic);

    function documentKeyCommonRetrieved(
        bytes32 serverKeyId,
        address requester,
        bytes calldata commonPoint,
        uint8 threshold
    ) external;
    function documentKeyPersonalRetrieved(
        bytes32 serverKeyId,
        address requester,
        uint256 participants,
        bytes calldata decryptedSecret,
        bytes calldata shadow
    ) external;
    function documentKeyShadowRetrievalError(bytes32 serverKeyId, address requester) external;
    function documentKeyShadowRetrievalRequestsCount() external view returns (uint256);
    /// (serverKeyId, requesterPublic, isCommonRetrievalCompleted) of the pending request at
    /// `index`.
    function getDocumentKeyShadowRetrievalRequest(uint256 index)
        external
        view
        returns (bytes32, bytes memory, bool);
    /// Note the order on the wire: the requester before the key server (Parity's node calls it
    /// so; its JSON ABI names them the other way round, with the same selector).
    function isDocumentKeyShadowRetrievalResponseRequired(
        bytes32 serverKeyId,
        address requester,
        address keyServer
    ) external view returns (bool);
}
