// SPDX-License-Identifier: GPL-3.0-or-later
pragma solidity ^0.8.20;

import "./DocumentKeyShadowRetrievalService.sol";
import "./DocumentKeyStoreService.sol";
import "./ServerKeyGenerationService.sol";
import "./ServerKeyRetrievalService.sol";

/// @title SecretStoreService
/// @notice One contract serving all four services (the node's `service_contract` option,
/// registry entry "secretstore_service"): the same functions, events, fees and limits as the
/// four separate contracts, one owner and one balance per key server.
contract SecretStoreService is
    ServerKeyGenerationService,
    ServerKeyRetrievalService,
    DocumentKeyStoreService,
    DocumentKeyShadowRetrievalService
{
    constructor(address keyServerSetAddress) SecretStoreServiceBase(keyServerSetAddress) {}
}
