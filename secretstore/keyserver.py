"""The key server: one async method per user operation, over the cluster driver.

The HTTP API, the chain services and the CLI call only this. It checks what only it can
(the requester's signature, the threshold against the cluster size), runs the session that
serves the operation, and encrypts results to the requester as Parity does.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from secretstore.crypto.curve import Point
from secretstore.crypto.document import encrypt_secret
from secretstore.crypto.ecies import ecies_encrypt
from secretstore.crypto.keys import KeyPair
from secretstore.crypto.rng import Rng
from secretstore.errors import InvalidRequest
from secretstore.http.port import ShadowRetrieval
from secretstore.sessions.admin.node_set_change import ChangeNodeSet
from secretstore.sessions.consensus import Requester, recover_requester_of
from secretstore.sessions.decryption import RetrieveDocumentKey, ShadowResult
from secretstore.sessions.encryption import StoreDocumentKey
from secretstore.sessions.generation import GenerateServerKey
from secretstore.sessions.retrieval import RetrieveServerKey
from secretstore.sessions.signing_ecdsa import SignEcdsa
from secretstore.sessions.signing_schnorr import SignSchnorr
from secretstore.types import MessageHash, NodeId, ServerKeyId


class SessionRunner(Protocol):
    """What the key server needs of the cluster: run a session as master, return its result."""

    async def request(self, request: Any) -> Any: ...


def _requester(signature: bytes, key_id: ServerKeyId) -> Requester:
    """InvalidRequest for a signature that recovers no key. The master session of the same
    request finds the requester remembered (`recover_requester_of`), so it is recovered once
    on this node."""
    return recover_requester_of(signature, key_id)


class KeyServer:
    """Serves Parity's user operations on one node (the master of the sessions it starts)."""

    def __init__(
        self, cluster: SessionRunner, cluster_size: int | Callable[[], int], rng: Rng
    ) -> None:
        """`cluster_size`: the number of key servers (a function of none when the set can
        change at run time)."""
        self._cluster = cluster
        self._cluster_size = cluster_size if callable(cluster_size) else lambda: cluster_size
        self._rng = rng

    def _check_threshold(self, threshold: int) -> None:
        size = self._cluster_size()
        if not 0 <= threshold < size:
            raise InvalidRequest(f"threshold {threshold} is not below the number of nodes ({size})")

    # --- server keys ------------------------------------------------------------------------
    async def generate_server_key(
        self, key_id: ServerKeyId, signature: bytes, threshold: int
    ) -> Point:
        author = _requester(signature, key_id).address
        self._check_threshold(threshold)
        public: Point = await self._cluster.request(GenerateServerKey(key_id, author, threshold))
        return public

    async def retrieve_server_key(self, key_id: ServerKeyId, signature: bytes) -> Point:
        requester = _requester(signature, key_id).address
        public: Point = await self._cluster.request(RetrieveServerKey(key_id, requester))
        return public

    # --- document keys ----------------------------------------------------------------------
    async def store_document_key(
        self,
        key_id: ServerKeyId,
        signature: bytes,
        common_point: Point,
        encrypted_point: Point,
    ) -> None:
        author = _requester(signature, key_id).address
        await self._cluster.request(StoreDocumentKey(key_id, author, common_point, encrypted_point))

    async def generate_document_key(
        self, key_id: ServerKeyId, signature: bytes, threshold: int
    ) -> bytes:
        """Server key generation, then a random document key stored with it (this node knows
        the document key, as Parity's server-side generation does), returned encrypted."""
        requester = _requester(signature, key_id).public
        public = await self.generate_server_key(key_id, signature, threshold)
        document_key = KeyPair.generate(self._rng).public
        encrypted = encrypt_secret(document_key, public, self._rng)
        await self.store_document_key(
            key_id, signature, encrypted.common_point, encrypted.encrypted_point
        )
        return ecies_encrypt(requester, document_key.to_bytes(), self._rng)

    async def retrieve_document_key(self, key_id: ServerKeyId, signature: bytes) -> bytes:
        requester = _requester(signature, key_id).public
        document_key: Point = await self._cluster.request(
            RetrieveDocumentKey(key_id, signature, shadow=False)
        )
        return ecies_encrypt(requester, document_key.to_bytes(), self._rng)

    async def retrieve_document_key_shadow(
        self, key_id: ServerKeyId, signature: bytes
    ) -> ShadowRetrieval:
        _requester(signature, key_id)
        result: ShadowResult = await self._cluster.request(
            RetrieveDocumentKey(key_id, signature, shadow=True)
        )
        return ShadowRetrieval(
            result.decrypted_secret, result.common_point, tuple(result.decrypt_shadows)
        )

    # --- signing ----------------------------------------------------------------------------
    async def sign_schnorr(
        self, key_id: ServerKeyId, signature: bytes, message_hash: MessageHash
    ) -> bytes:
        requester = _requester(signature, key_id).public
        result = await self._cluster.request(SignSchnorr(key_id, signature, message_hash))
        return ecies_encrypt(requester, result.to_bytes(), self._rng)

    async def sign_ecdsa(
        self, key_id: ServerKeyId, signature: bytes, message_hash: MessageHash
    ) -> bytes:
        requester = _requester(signature, key_id).public
        result: bytes = await self._cluster.request(SignEcdsa(key_id, signature, message_hash))
        return ecies_encrypt(requester, result, self._rng)

    # --- administration ---------------------------------------------------------------------
    async def change_servers_set(
        self,
        old_set_signature: bytes,
        new_set_signature: bytes,
        new_servers_set: frozenset[NodeId],
    ) -> None:
        """Move every key to `new_servers_set` (Parity's servers set change); returns when the
        whole change is done on every node."""
        await self._cluster.request(
            ChangeNodeSet(frozenset(new_servers_set), old_set_signature, new_set_signature)
        )
