"""The error hierarchy: one root, client faults apart from peer faults apart from local faults."""

from __future__ import annotations


class SecretStoreError(Exception):
    """Root of every error this package raises on purpose."""


def describe(error: BaseException) -> str:
    """An error's message with the notes added to it on its way (e.g. which node a session
    lost and why), as one text for logs and the HTTP cause header."""
    notes = [str(note) for note in getattr(error, "__notes__", ())]
    return "; ".join([str(error), *notes])


# --- crypto: malformed or invalid cryptographic input -------------------------------------


class CryptoError(SecretStoreError):
    """A cryptographic input is malformed or does not verify."""


class InvalidEncoding(CryptoError):
    """Bytes or hex of the wrong length or alphabet."""


class InvalidScalar(CryptoError):
    """A scalar is zero where it must not be, or not below the curve order."""


class InvalidPoint(CryptoError):
    """Bytes that are not a point on secp256k1, or the identity where a point is required."""


class InvalidSignature(CryptoError):
    """A signature that is malformed or does not recover/verify."""


class DecryptionError(CryptoError):
    """A ciphertext that is too short, of an unknown version, or whose MAC does not match."""


class ShadowVerificationError(CryptoError):
    """A shadow retrieval answer whose contributions do not verify. `node` is the 0x-hex id
    of the participant at fault, or None when the fault lies in values common to every
    participant (so with the key server that answered)."""

    def __init__(self, node: str | None, what: str) -> None:
        who = f"node {node}" if node is not None else "the answering key server"
        super().__init__(f"shadow retrieval does not verify: {who}: {what}")
        self.node = node
        self.what = what


class ReceiptVerificationError(CryptoError):
    """The receipts of a release do not verify: missing, not the named node's signature, or
    of other facts. `node` is the 0x-hex id of the node at fault, or None when the fault lies
    in facts common to every receipt (so with the key server that answered)."""

    def __init__(self, node: str | None, what: str) -> None:
        who = f"node {node}" if node is not None else "the answering key server"
        super().__init__(f"release receipts do not verify: {who}: {what}")
        self.node = node
        self.what = what


# --- client-facing outcomes (mapped to HTTP status codes in one place: http/errors) -------


class InvalidRequest(SecretStoreError):
    """The client's request is malformed or not acceptable (HTTP 400)."""


class AccessDenied(SecretStoreError):
    """The requester may not use this key (HTTP 403)."""


class PlainRetrievalRefused(AccessDenied):
    """A node's policy (`require_shadow_retrieval`) refuses plain document key retrieval,
    where a node computes the document key itself; shadow retrieval works (HTTP 403)."""


class ConsensusUnreachable(SecretStoreError):
    """Too few nodes agreed or are reachable to serve the request (HTTP 403)."""


class ServerKeyNotFound(SecretStoreError):
    """No server key with this id (HTTP 404)."""


class DocumentKeyNotFound(SecretStoreError):
    """The server key exists but no document key is stored with it (HTTP 404)."""


class ServerKeyAlreadyGenerated(InvalidRequest):
    """A server key with this id exists already (HTTP 400)."""


class DocumentKeyAlreadyStored(InvalidRequest):
    """A document key is stored with this server key already (HTTP 400)."""


class UnboundRequest(InvalidRequest):
    """The request carries no bound signature and this node's policy requires one
    (`require_bound_requests`; HTTP 400)."""


class ExclusiveSessionActive(SecretStoreError):
    """A node set change runs: no other session starts until it ends (HTTP 500)."""


class HasActiveSessions(SecretStoreError):
    """A node set change cannot start while other sessions run (HTTP 500)."""


class NodeDisconnected(SecretStoreError):
    """A node the operation needs is not connected (HTTP 500)."""


# --- peers and local faults ----------------------------------------------------------------


class ProtocolViolation(SecretStoreError):
    """A peer sent something the protocol forbids; names the node at fault."""

    def __init__(self, node: str, what: str) -> None:
        super().__init__(f"node {node}: {what}")
        self.node = node
        self.what = what


class MalformedMessage(SecretStoreError):
    """Bytes from a peer that do not decode as a cluster message."""


class SessionTimeout(SecretStoreError):
    """A session did not finish in time; `node` names the nodes it was still waiting for
    (short ids, comma-separated; empty when it waited for none)."""

    def __init__(self, what: str, node: str = "") -> None:
        super().__init__(f"node {node}: {what}" if node else what)
        self.node = node
        self.what = what


class SessionLimitReached(SecretStoreError):
    """A node refused to open another session for a master that already has as many open
    there as `max_sessions_per_peer` allows; the text names the node, the count and the limit."""


class ChainUnavailable(SecretStoreError):
    """The node has no trusted blockchain client right now: the chain's RPC does not answer,
    answers errors, or is still syncing (Parity: "without trusted blockchain client")."""


class ConfigError(SecretStoreError):
    """A configuration value is missing or invalid; names the key path and what was expected."""

    def __init__(self, key_path: str, problem: str) -> None:
        super().__init__(f"{key_path}: {problem}")
        self.key_path = key_path
        self.problem = problem


class StorageError(SecretStoreError):
    """The key storage failed or holds a record it cannot read."""


class CorruptRecord(StorageError):
    """A stored record does not decode: wrong schema version, truncated or inconsistent."""


class AuditLogError(StorageError):
    """This node could not append to its audit log: the operation that needed the entry
    ends, and nothing it would have released leaves the node."""


class KeystoreError(SecretStoreError):
    """An account keystore operation failed."""


class UnknownAccount(KeystoreError):
    """No keystore file for this address."""


class WrongPassword(KeystoreError):
    """The password does not unlock this account."""


class InvalidKeyShare(SecretStoreError):
    """A key share's fields are inconsistent (threshold, id numbers, versions, points)."""


class ParityImportError(SecretStoreError):
    """A Parity Secret Store data directory cannot be read or imported (its layout, version,
    lock or database), or the import was asked for something it cannot do."""


class ParityRecordError(SecretStoreError):
    """One record of a Parity Secret Store database is refused: it does not decode, or it
    fails a check (its version hash, this node's place in it, its share)."""
