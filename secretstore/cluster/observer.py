"""The observer port: what the cluster driver tells the outside about its sessions and traffic.

The driver calls these synchronously as things happen; an observer must not block or raise
(metrics, the status page's recent sessions). `NullObserver` is the default. Session kinds
are short snake_case names derived from the request (master) or initialising message (slave)
type, so that every request type names one kind without a table to keep in step.
"""

from __future__ import annotations

import re
from typing import Final, Protocol

from secretstore.types import NodeId, SessionId


class ClusterObserver(Protocol):
    """Receives the driver's events; every method returns at once."""

    def session_started(self, session_id: SessionId, kind: str, master: bool) -> None:
        """A session joined this node's table (`master`: this node serves the request)."""

    def session_ended(self, session_id: SessionId, error: BaseException | None) -> None:
        """A session ended (None: it succeeded). May come twice for one session (its last
        effect, then its caller's return); only the first counts."""

    def key_created(self) -> None:
        """A new key share was written (the stored key count grew by one)."""

    def key_removed(self) -> None:
        """A key share was erased (a node set change left this node out of the key)."""

    def frame_received(self, node: NodeId, size: int) -> None:
        """A cluster message of `size` payload bytes arrived from `node`."""

    def frame_sent(self, node: NodeId, size: int) -> None:
        """A cluster message of `size` payload bytes was queued for `node`."""


class NullObserver:
    """Observes nothing."""

    def session_started(self, session_id: SessionId, kind: str, master: bool) -> None:
        pass

    def session_ended(self, session_id: SessionId, error: BaseException | None) -> None:
        pass

    def key_created(self) -> None:
        pass

    def key_removed(self) -> None:
        pass

    def frame_received(self, node: NodeId, size: int) -> None:
        pass

    def frame_sent(self, node: NodeId, size: int) -> None:
        pass


#: Request or message type names → the kind of session they start, where the name alone
#: does not say it well (a master request and its slaves' message share one kind).
_KINDS: Final = {
    "GenerateServerKey": "server_key_generation",
    "InitializeGeneration": "server_key_generation",
    "StoreDocumentKey": "document_key_store",
    "InitializeEncryption": "document_key_store",
    "RetrieveServerKey": "server_key_retrieval",
    "NegotiateKeyVersion": "key_version_negotiation",
    "RequestKeyVersions": "key_version_negotiation",
    "DecryptionRequest": "decryption",
    "SignSchnorr": "schnorr_signing",
    "SchnorrSigningRequest": "schnorr_signing",
    "SignEcdsa": "ecdsa_signing",
    "EcdsaSigningRequest": "ecdsa_signing",
    "DelegatedRequest": "delegation",
    "Presign": "ecdsa_presigning",
    "PresignRequest": "ecdsa_presigning",
    "ChangeNodeSet": "node_set_change",
    "NodeSetChangeInit": "node_set_change",
    "RefreshKeys": "key_refresh",
    "RefreshInit": "key_refresh",
    "DeleteKey": "key_deletion",
    "DeleteKeyInit": "key_deletion",
}
_CAMEL: Final = re.compile(r"(?<!^)(?=[A-Z])")


def session_kind(request: object) -> str:
    """The kind label of the session a request or initialising message starts."""
    name = type(request).__name__
    if name == "RetrieveDocumentKey":
        shadow = getattr(request, "shadow", False)
        return "document_key_shadow_retrieval" if shadow else "document_key_retrieval"
    return _KINDS.get(name) or _CAMEL.sub("_", name).lower()


def error_kind(error: BaseException | None) -> str:
    """The label of an outcome: "ok", or the error's class name (a small, fixed set)."""
    return "ok" if error is None else type(error).__name__
