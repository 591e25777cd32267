"""The mesh handshake as a pure state machine: mutual node-key proof and ephemeral key agreement.

Both sides send HELLO at once, then PROOF once they have the peer's HELLO:

    HELLO = 0x01 ‖ version (1) ‖ node id (64) ‖ ephemeral public (33, SEC1) ‖ challenge (32)
    PROOF = 0x02 ‖ signature (65, r‖s‖v by the node key)

The transcript hash is sha256(label ‖ initiator HELLO ‖ responder HELLO), so it covers both
challenges, both ephemeral keys, both node ids and the protocol version. Each side signs
sha256(proof label ‖ its role ‖ transcript hash) with its node key; the role byte keeps a proof
from being reflected back. The session keys come from HKDF-SHA256 over the ephemeral ECDH secret
(forward secrecy) salted with the transcript hash: one key per direction.

A peer whose claimed node id is not allowed is refused before any proof is sent (UNKNOWN_NODE);
a proof that does not verify is refused as BAD_PROOF. Key confirmation is left to the first
encrypted frame (see connection.py): a peer that derived other keys cannot produce it.
"""

from __future__ import annotations

import enum
import hashlib
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import Final, NoReturn

from coincurve import PrivateKey, PublicKey
from Crypto.Hash import SHA256
from Crypto.Protocol.KDF import HKDF

from secretstore.crypto.keys import KeyPair
from secretstore.crypto.rng import Rng, random_scalar
from secretstore.errors import SecretStoreError
from secretstore.types import NodeId

#: The mesh protocol version carried in HELLO; a peer with another version is refused.
PROTOCOL_VERSION: Final = 1

MSG_HELLO: Final = 0x01
MSG_PROOF: Final = 0x02
HELLO_SIZE: Final = 1 + 1 + 64 + 33 + 32
PROOF_SIZE: Final = 1 + 65
#: The largest handshake message; framing may use it as the handshake frame limit.
MAX_HANDSHAKE_MESSAGE: Final = max(HELLO_SIZE, PROOF_SIZE)

_TRANSCRIPT_LABEL: Final = b"secretstore/mesh/v1/transcript"
_PROOF_LABEL: Final = b"secretstore/mesh/v1/proof"
_KEYS_LABEL: Final = b"secretstore/mesh/v1/session-keys"


class Role(enum.Enum):
    """Which side of the TCP connection: the dialer initiates, the listener responds."""

    INITIATOR = 0
    RESPONDER = 1


class RefusalReason(enum.Enum):
    """Why a handshake was refused; UNKNOWN_NODE and BAD_PROOF are deliberately distinct."""

    MALFORMED = "malformed handshake message"
    VERSION_MISMATCH = "unsupported mesh protocol version"
    UNKNOWN_NODE = "node is not in the allowed set"
    UNEXPECTED_NODE = "node is not the one that was dialed"
    SELF_CONNECTION = "connection to self"
    BAD_PROOF = "proof of the node key does not verify"
    UNEXPECTED_MESSAGE = "message out of order"


class HandshakeRefused(SecretStoreError):
    """The handshake failed; `reason` says why, `peer` is the claimed id when one was read."""

    def __init__(self, reason: RefusalReason, peer: NodeId | None = None, detail: str = "") -> None:
        who = f"node {peer.hex()[:16]}: " if peer is not None else ""
        extra = f" ({detail})" if detail else ""
        super().__init__(f"{who}{reason.value}{extra}")
        self.reason = reason
        self.peer = peer


@dataclass(frozen=True, slots=True)
class HandshakeResult:
    """The authenticated peer and the two directional session keys (hidden from repr)."""

    peer: NodeId
    send_key: bytes = field(repr=False)
    receive_key: bytes = field(repr=False)


class _Phase(enum.Enum):
    NEW = "new"
    WAITING_FOR_HELLO = "waiting for hello"
    WAITING_FOR_PROOF = "waiting for proof"
    DONE = "done"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class _Hello:
    version: int
    node_id: NodeId
    ephemeral: bytes
    challenge: bytes


def _encode_hello(hello: _Hello) -> bytes:
    return bytes([MSG_HELLO, hello.version]) + hello.node_id + hello.ephemeral + hello.challenge


def _decode_hello(message: bytes) -> _Hello:
    if len(message) != HELLO_SIZE:
        raise HandshakeRefused(RefusalReason.MALFORMED, detail=f"hello of {len(message)} bytes")
    version = message[1]
    node_id = NodeId(bytes(message[2:66]))
    ephemeral = bytes(message[66:99])
    challenge = bytes(message[99:131])
    if version != PROTOCOL_VERSION:
        raise HandshakeRefused(RefusalReason.VERSION_MISMATCH, node_id, f"version {version}")
    return _Hello(version, node_id, ephemeral, challenge)


def _proof_digest(role: Role, transcript: bytes) -> bytes:
    return hashlib.sha256(_PROOF_LABEL + bytes([role.value]) + transcript).digest()


def _public_key(data: bytes) -> PublicKey | None:
    try:
        return PublicKey(data)
    except ValueError:
        return None


class Handshake:
    """One side of one handshake. Feed it the peer's messages; it returns messages to send.

    `start()` returns the HELLO to send. `receive(message)` returns the messages to send next
    and, once the peer's PROOF verifies, `result` is set. Any failure raises HandshakeRefused
    and leaves the handshake failed: every later call raises the same refusal.
    """

    def __init__(
        self,
        role: Role,
        node_key: KeyPair,
        allowed: Collection[NodeId],
        rng: Rng,
        expected_peer: NodeId | None = None,
    ) -> None:
        self._role = role
        self._node_secret = PrivateKey(node_key.secret.require_nonzero("node secret").to_bytes())
        self._node_id = NodeId(node_key.public.to_bytes())
        self._allowed = frozenset(allowed)
        self._expected = expected_peer
        self._ephemeral = PrivateKey(random_scalar(rng).to_bytes())
        self._hello = _Hello(
            PROTOCOL_VERSION,
            self._node_id,
            self._ephemeral.public_key.format(compressed=True),
            rng.random_bytes(32),
        )
        self._phase = _Phase.NEW
        self._failure: HandshakeRefused | None = None
        self._peer: NodeId | None = None
        self._transcript = b""
        self._keys: tuple[bytes, bytes] | None = None
        self._result: HandshakeResult | None = None

    @property
    def role(self) -> Role:
        return self._role

    @property
    def result(self) -> HandshakeResult | None:
        """The outcome once the peer has proven its node key; None before."""
        return self._result

    @property
    def done(self) -> bool:
        return self._result is not None

    def start(self) -> list[bytes]:
        """The HELLO to send first (both roles send it without waiting)."""
        self._check_live()
        if self._phase is not _Phase.NEW:
            self._fail(HandshakeRefused(RefusalReason.UNEXPECTED_MESSAGE, detail="started twice"))
        self._phase = _Phase.WAITING_FOR_HELLO
        return [_encode_hello(self._hello)]

    def receive(self, message: bytes) -> list[bytes]:
        """Process one handshake message from the peer; returns what to send next."""
        self._check_live()
        message = bytes(message)
        kind = message[0] if message else None
        transitions: dict[tuple[_Phase, int], Callable[[bytes], list[bytes]]] = {
            (_Phase.WAITING_FOR_HELLO, MSG_HELLO): self._on_hello,
            (_Phase.WAITING_FOR_PROOF, MSG_PROOF): self._on_proof,
        }
        try:
            if kind not in (MSG_HELLO, MSG_PROOF):
                raise HandshakeRefused(RefusalReason.MALFORMED, self._peer, "unknown message type")
            step = transitions.get((self._phase, kind))
            if step is None:
                raise HandshakeRefused(
                    RefusalReason.UNEXPECTED_MESSAGE,
                    self._peer,
                    f"type {kind} while {self._phase.value}",
                )
            return step(message)
        except HandshakeRefused as refusal:
            self._fail(refusal)

    # --- transitions (the table is in receive) -----------------------------------------

    def _on_hello(self, message: bytes) -> list[bytes]:
        peer = _decode_hello(message)
        if peer.node_id == self._node_id:
            raise HandshakeRefused(RefusalReason.SELF_CONNECTION, peer.node_id)
        if peer.node_id not in self._allowed:
            raise HandshakeRefused(RefusalReason.UNKNOWN_NODE, peer.node_id)
        if self._expected is not None and peer.node_id != self._expected:
            raise HandshakeRefused(RefusalReason.UNEXPECTED_NODE, peer.node_id)
        peer_ephemeral = _public_key(peer.ephemeral)
        if peer_ephemeral is None or peer.ephemeral[0] not in (2, 3):
            raise HandshakeRefused(RefusalReason.MALFORMED, peer.node_id, "bad ephemeral key")
        if peer.challenge == self._hello.challenge or peer.ephemeral == self._hello.ephemeral:
            raise HandshakeRefused(RefusalReason.MALFORMED, peer.node_id, "reflected hello")
        if self._role is Role.INITIATOR:
            ordered = _encode_hello(self._hello) + message
        else:
            ordered = message + _encode_hello(self._hello)
        self._transcript = hashlib.sha256(_TRANSCRIPT_LABEL + ordered).digest()
        self._peer = peer.node_id
        self._keys = self._derive_keys(peer_ephemeral)
        signature = self._node_secret.sign_recoverable(
            _proof_digest(self._role, self._transcript), hasher=None
        )
        self._phase = _Phase.WAITING_FOR_PROOF
        return [bytes([MSG_PROOF]) + signature]

    def _on_proof(self, message: bytes) -> list[bytes]:
        assert self._peer is not None and self._keys is not None
        if len(message) != PROOF_SIZE:
            raise HandshakeRefused(RefusalReason.MALFORMED, self._peer, "proof size")
        peer_role = Role.RESPONDER if self._role is Role.INITIATOR else Role.INITIATOR
        digest = _proof_digest(peer_role, self._transcript)
        try:
            signer = PublicKey.from_signature_and_message(message[1:], digest, hasher=None)
        except ValueError as exc:
            raise HandshakeRefused(RefusalReason.BAD_PROOF, self._peer) from exc
        if signer.format(compressed=False)[1:] != self._peer:
            raise HandshakeRefused(RefusalReason.BAD_PROOF, self._peer)
        send_key, receive_key = self._keys
        self._result = HandshakeResult(self._peer, send_key, receive_key)
        self._phase = _Phase.DONE
        return []

    def _derive_keys(self, peer_ephemeral: PublicKey) -> tuple[bytes, bytes]:
        shared = self._ephemeral.ecdh(peer_ephemeral.format(compressed=True))
        initiator_to_responder, responder_to_initiator = HKDF(
            shared, 32, self._transcript, SHA256, num_keys=2, context=_KEYS_LABEL
        )
        if self._role is Role.INITIATOR:
            return bytes(initiator_to_responder), bytes(responder_to_initiator)
        return bytes(responder_to_initiator), bytes(initiator_to_responder)

    # --- failure -----------------------------------------------------------------------
    def _check_live(self) -> None:
        if self._failure is not None:
            raise self._failure
        if self._phase is _Phase.DONE:
            raise HandshakeRefused(
                RefusalReason.UNEXPECTED_MESSAGE, self._peer, "handshake already finished"
            )

    def _fail(self, refusal: HandshakeRefused) -> NoReturn:
        self._phase = _Phase.FAILED
        self._failure = refusal
        self._keys = None
        raise refusal
