# ruff: noqa: E501  (the topics are Parity's 32-byte vectors, one a line)
"""The service APIs are Parity's (selectors, topics, registry names), and our compiled
service contracts carry every one of them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from secretstore.chain.abi import Function
from secretstore.chain.services import abi
from secretstore.chain.services.abi import Event, ServiceApi
from secretstore.crypto.hashing import keccak256

BUILD = Path(__file__).resolve().parents[3] / "contracts" / "build"

#: Parity's selectors (secretstore-service's ABIs; several checked against its Kovan bytecode).
SELECTORS = {
    abi.GENERATE_SERVER_KEY: "b8020be5",
    abi.SERVER_KEY_GENERATED: "ebbcc2e1",
    abi.SERVER_KEY_GENERATION_ERROR: "3fbd7ecd",
    abi.SERVER_KEY_GENERATION_REQUESTS_COUNT: "195a40f2",
    abi.GET_SERVER_KEY_GENERATION_REQUEST: "64124c86",
    abi.IS_SERVER_KEY_GENERATION_RESPONSE_REQUIRED: "ec6b0360",
    abi.RETRIEVE_SERVER_KEY: "ffaff0f7",
    abi.SERVER_KEY_RETRIEVED: "a45362f6",
    abi.SERVER_KEY_RETRIEVAL_ERROR: "15eb5309",
    abi.SERVER_KEY_RETRIEVAL_REQUESTS_COUNT: "1b544bb0",
    abi.GET_SERVER_KEY_RETRIEVAL_REQUEST: "50f6a134",
    abi.IS_SERVER_KEY_RETRIEVAL_RESPONSE_REQUIRED: "3b68c427",
    abi.STORE_DOCUMENT_KEY: "0fe7db4a",
    abi.DOCUMENT_KEY_STORED: "8a9a9a0f",
    abi.DOCUMENT_KEY_STORE_ERROR: "87f76b1a",
    abi.DOCUMENT_KEY_STORE_REQUESTS_COUNT: "663c87cd",
    abi.GET_DOCUMENT_KEY_STORE_REQUEST: "fb2f439b",
    abi.IS_DOCUMENT_KEY_STORE_RESPONSE_REQUIRED: "8ba9e398",
    abi.RETRIEVE_DOCUMENT_KEY_SHADOW: "153f333b",
    abi.DOCUMENT_KEY_COMMON_RETRIEVED: "7b97eecc",
    abi.DOCUMENT_KEY_PERSONAL_RETRIEVED: "b9b36c42",
    abi.DOCUMENT_KEY_SHADOW_RETRIEVAL_ERROR: "e2f1d4f9",
    abi.DOCUMENT_KEY_SHADOW_RETRIEVAL_REQUESTS_COUNT: "e3c20cf2",
    abi.GET_DOCUMENT_KEY_SHADOW_RETRIEVAL_REQUEST: "f3d33171",
    abi.IS_DOCUMENT_KEY_SHADOW_RETRIEVAL_RESPONSE_REQUIRED: "77dc782b",
    abi.DRAIN: "9890220b",
    abi.REQUIRE_KEY_SERVER: "2b4f030a",
    abi.KEY_SERVERS_COUNT: "5aa8404c",
}
TOPICS = {
    abi.SERVER_KEY_GENERATION_REQUESTED: "7e7d18cca7d509b32b27d10d4c0f1dfed4d779294388818f23941d13450dacb1",
    abi.SERVER_KEY_GENERATED_EVENT: "20da9149b09a59e39dbfed5cfa1e68c9d9984736b0f73a0b1d9f7a063f093fc5",
    abi.SERVER_KEY_GENERATION_ERROR_EVENT: "c79a8674b4a757f1b4372e9f51be17ee6d43b631ca0a97b477580f18fc76e1b8",
    abi.SERVER_KEY_RETRIEVAL_REQUESTED: "abca19cd1a35cd8001bfc77e38ae9f56a162e022292a67e1152f1512776d6808",
    abi.SERVER_KEY_RETRIEVED_EVENT: "bc454e03c5f94d0bd23c53b4fed1f5af23e7cd378eac46203f25d406c4a92118",
    abi.DOCUMENT_KEY_STORE_REQUESTED: "adc87e5ceadda3a573403a1ad2d7e815d4482b89ea2034e49d188de6843ee43d",
    abi.DOCUMENT_KEY_STORED_EVENT: "f97081917a769be6d07eefdd63666c32b011f9dba0bb0eed6cf1b9c9b987461c",
    abi.DOCUMENT_KEY_STORE_ERROR_EVENT: "1accba7cc95d8cf1f4f927b53957972a0d92aa6f96636f1fd988dad93d263e97",
    abi.DOCUMENT_KEY_COMMON_RETRIEVAL_REQUESTED: "cce4f642c73cab3eae4e6ef3d59cc746b5e7d035447b1c226b5aafb4c0915709",
    abi.DOCUMENT_KEY_PERSONAL_RETRIEVAL_REQUESTED: "1b73b7e683137318af868187d364e5f3d25de1c54913fb552bfbca47d44f3321",
    abi.DOCUMENT_KEY_COMMON_RETRIEVED_EVENT: "72e320c3dc51ffa2396051490d47becef092ea73f671957a2dafda7e567aff51",
    abi.DOCUMENT_KEY_PERSONAL_RETRIEVED_EVENT: "04ad358f86bfdff4535760571ca0e7940d88e47306f2df3fc9ed9247039ecda7",
    abi.DOCUMENT_KEY_SHADOW_RETRIEVAL_ERROR_EVENT: "0fdd54511745997b3c6f05f62e17c608b6d402b5d02dfa60009997c1ae89edc2",
}
REGISTRY = {
    abi.SERVICE_ENTRY: "8cd73899c531fa9aa35a41626d22bb9c8935626104e0502d7cc187cbee27a62f",
    abi.SERVICE_ENTRIES[
        ServiceApi.SERVER_KEY_GENERATION
    ]: "30ba09792ca8c0282a606afd2effd8dd9bb95b7bf01e4ff004703a2a38d375ff",
    abi.SERVICE_ENTRIES[
        ServiceApi.SERVER_KEY_RETRIEVAL
    ]: "f11542b632d1789d7057b7e08e3f9e9df1c510b7012dea2c74abf04159e2e47b",
    abi.SERVICE_ENTRIES[
        ServiceApi.DOCUMENT_KEY_STORE
    ]: "adaefe3d0370488358168bc746caf77d367350db31f08712dc1b1dc2f8f5db52",
    abi.SERVICE_ENTRIES[
        ServiceApi.DOCUMENT_KEY_SHADOW_RETRIEVAL
    ]: "250510affcaaeabe89f12b46c8063d1f0850f4e456021f706fad0d5a0c42d33d",
}
CONTRACTS = {
    ServiceApi.SERVER_KEY_GENERATION: "SecretStoreServerKeyGenerationService",
    ServiceApi.SERVER_KEY_RETRIEVAL: "SecretStoreServerKeyRetrievalService",
    ServiceApi.DOCUMENT_KEY_STORE: "SecretStoreDocumentKeyStoreService",
    ServiceApi.DOCUMENT_KEY_SHADOW_RETRIEVAL: "SecretStoreDocumentKeyShadowRetrievalService",
}
CLIENT_FUNCTIONS = {
    ServiceApi.SERVER_KEY_GENERATION: abi.GENERATE_SERVER_KEY,
    ServiceApi.SERVER_KEY_RETRIEVAL: abi.RETRIEVE_SERVER_KEY,
    ServiceApi.DOCUMENT_KEY_STORE: abi.STORE_DOCUMENT_KEY,
    ServiceApi.DOCUMENT_KEY_SHADOW_RETRIEVAL: abi.RETRIEVE_DOCUMENT_KEY_SHADOW,
}

CLIENT_EVENTS = {
    ServiceApi.SERVER_KEY_GENERATION: (
        abi.SERVER_KEY_GENERATED_EVENT,
        abi.SERVER_KEY_GENERATION_ERROR_EVENT,
    ),
    ServiceApi.SERVER_KEY_RETRIEVAL: (
        abi.SERVER_KEY_RETRIEVED_EVENT,
        abi.SERVER_KEY_RETRIEVAL_ERROR_EVENT,
    ),
    ServiceApi.DOCUMENT_KEY_STORE: (
        abi.DOCUMENT_KEY_STORED_EVENT,
        abi.DOCUMENT_KEY_STORE_ERROR_EVENT,
    ),
    ServiceApi.DOCUMENT_KEY_SHADOW_RETRIEVAL: (
        abi.DOCUMENT_KEY_COMMON_RETRIEVED_EVENT,
        abi.DOCUMENT_KEY_PERSONAL_RETRIEVED_EVENT,
        abi.DOCUMENT_KEY_SHADOW_RETRIEVAL_ERROR_EVENT,
    ),
}


@pytest.mark.parametrize("function", list(SELECTORS), ids=lambda f: f.name)
def test_selectors_are_paritys(function: Function) -> None:
    assert function.selector.hex() == SELECTORS[function]


@pytest.mark.parametrize("event", list(TOPICS), ids=lambda e: e.name)
def test_topics_are_paritys(event: Event) -> None:
    assert event.topic.hex() == TOPICS[event]


def test_registry_names_are_paritys() -> None:
    for entry, digest in REGISTRY.items():
        assert keccak256(entry.encode()).hex() == digest


def _compiled(name: str) -> tuple[set[str], set[str]]:
    artifact = json.loads((BUILD / f"{name}.json").read_text())
    functions, events = set(), set()
    for item in artifact["abi"]:
        signature = f"{item.get('name')}({','.join(i['type'] for i in item.get('inputs', []))})"
        if item["type"] == "function":
            functions.add(signature)
        elif item["type"] == "event":
            events.add(signature)
    return functions, events


@pytest.mark.parametrize("api", list(ServiceApi), ids=lambda a: a.value)
def test_our_contracts_carry_every_function_and_event(api: ServiceApi) -> None:
    wanted_functions = {f.signature for f in abi.KEY_SERVER_FUNCTIONS[api]}
    wanted_functions |= {CLIENT_FUNCTIONS[api].signature}
    wanted_functions |= {abi.DRAIN.signature, abi.REQUIRE_KEY_SERVER.signature}
    wanted_events = {e.signature for e in abi.REQUEST_EVENTS[api]}
    wanted_events |= {e.signature for e in CLIENT_EVENTS[api]}
    for name in (CONTRACTS[api], "SecretStoreService"):
        functions, events = _compiled(name)
        assert wanted_functions <= functions, name
        assert wanted_events <= events, name


def test_the_retrieval_contract_emits_the_two_argument_event_only() -> None:
    _, events = _compiled("SecretStoreServerKeyRetrievalService")
    assert "ServerKeyRetrieved(bytes32,bytes)" in events
    assert "ServerKeyRetrieved(bytes32,bytes,uint256)" not in events
