"""What the HTTP layer needs of the key server: one async method per Parity route."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from secretstore.audit.receipts import ReleaseReceipts
from secretstore.crypto.curve import Point
from secretstore.crypto.shadow_proofs import ShadowRetrievalProofs
from secretstore.types import MessageHash, NodeId, ServerKeyId


@dataclass(frozen=True, slots=True)
class ShadowRetrieval:
    """The answer of a document key shadow retrieval (Parity's EncryptedDocumentKeyShadow).

    `decrypted_secret` is D and `common_point` is C'; each of `decrypt_shadows` is an ECIES
    ciphertext (to the requester) of a 32-byte coefficient d_i, so that M = D + (Σ d_i)·C'.
    `proofs` (ours, for a key with commitments) lets the requester check every participant;
    `receipts` (ours) are every participant's signed receipt of the release.
    """

    decrypted_secret: Point
    common_point: Point
    decrypt_shadows: tuple[bytes, ...]
    proofs: ShadowRetrievalProofs | None = None
    receipts: ReleaseReceipts | None = None


@dataclass(frozen=True, slots=True)
class EncryptedRelease:
    """A release answered with Parity's bare JSON string: `encrypted` (ECIES to the
    requester: a document key or a signature) and every participant's receipt (ours)."""

    encrypted: bytes
    receipts: ReleaseReceipts | None = None


@dataclass(frozen=True, slots=True)
class KeyDeletion:
    """The answer of a key delete (ours): `confirmed`, the nodes that hold no share of the
    key now; `unconfirmed`, those that did not confirm (at most t of any version: they
    erase it when they come back)."""

    key_id: ServerKeyId
    confirmed: tuple[NodeId, ...]
    unconfirmed: tuple[NodeId, ...]


@dataclass(frozen=True, slots=True)
class RefreshSummary:
    """The answer of a refresh (ours): how many keys were refreshed, and the keys skipped
    with the reason (a key another session was writing, a holder away, …)."""

    refreshed: int
    skipped: tuple[tuple[ServerKeyId, str], ...]


class KeyServerApi(Protocol):
    """The key server operations behind Parity's HTTP routes.

    Every `signature` is the raw 65-byte requester signature taken from the URL (r‖s‖v, v as
    the client sent it); the key server recovers the requester from it. `bound_signature` is
    the optional signature over the whole request (the X-Secretstore-Bound-Signature header;
    None for Parity's form). Results that are
    bytes are already ECIES-encrypted to the requester. Failures are raised as
    secretstore.errors exceptions; the HTTP layer maps them to status codes.
    """

    async def generate_server_key(
        self,
        key_id: ServerKeyId,
        signature: bytes,
        threshold: int,
        bound_signature: bytes | None = None,
    ) -> Point: ...

    async def store_document_key(
        self,
        key_id: ServerKeyId,
        signature: bytes,
        common_point: Point,
        encrypted_point: Point,
        bound_signature: bytes | None = None,
    ) -> None: ...

    async def generate_document_key(
        self, key_id: ServerKeyId, signature: bytes, threshold: int
    ) -> bytes: ...

    async def retrieve_server_key(self, key_id: ServerKeyId, signature: bytes) -> Point: ...

    async def retrieve_document_key(
        self, key_id: ServerKeyId, signature: bytes
    ) -> EncryptedRelease: ...

    async def retrieve_document_key_shadow(
        self, key_id: ServerKeyId, signature: bytes
    ) -> ShadowRetrieval: ...

    async def sign_schnorr(
        self,
        key_id: ServerKeyId,
        signature: bytes,
        message_hash: MessageHash,
        bound_signature: bytes | None = None,
    ) -> EncryptedRelease: ...

    async def sign_ecdsa(
        self,
        key_id: ServerKeyId,
        signature: bytes,
        message_hash: MessageHash,
        bound_signature: bytes | None = None,
    ) -> EncryptedRelease: ...

    async def delete_key(
        self, key_id: ServerKeyId, signature: bytes, bound_signature: bytes | None = None
    ) -> KeyDeletion: ...

    async def refresh_keys(
        self, expires: int, signature: bytes, key_ids: tuple[ServerKeyId, ...] | None
    ) -> RefreshSummary: ...

    async def change_servers_set(
        self,
        old_set_signature: bytes,
        new_set_signature: bytes,
        new_servers_set: frozenset[NodeId],
    ) -> None: ...
