"""ChaCha20-Poly1305 (RFC 8439) for mesh frames, over the `cryptography` package's AEAD.

`Aead(key)` keeps one cipher object per direction of a link (the key never changes there);
`seal`/`open_sealed` are the one-shot forms. Any authentication failure is a DecryptionError.
"""

from __future__ import annotations

from typing import Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

from secretstore.errors import DecryptionError, InvalidEncoding

KEY_SIZE: Final = 32
NONCE_SIZE: Final = 12
TAG_SIZE: Final = 16


class Aead:
    """ChaCha20-Poly1305 under one key. repr() shows no key."""

    __slots__ = ("_cipher",)

    def __init__(self, key: bytes) -> None:
        if len(key) != KEY_SIZE:
            raise InvalidEncoding(f"a ChaCha20-Poly1305 key is {KEY_SIZE} bytes")
        self._cipher = ChaCha20Poly1305(bytes(key))

    def seal(self, nonce: bytes, aad: bytes, plaintext: bytes) -> bytes:
        """ciphertext ‖ tag (16 bytes) of `plaintext`, authenticating `aad` too."""
        _check_nonce(nonce)
        return self._cipher.encrypt(nonce, plaintext, aad)

    def open(self, nonce: bytes, aad: bytes, sealed: bytes) -> bytes:
        """The plaintext of `sealed` (ciphertext ‖ tag); DecryptionError when it does not
        authenticate (wrong key, nonce or aad, or any changed byte)."""
        _check_nonce(nonce)
        if len(sealed) < TAG_SIZE:
            raise DecryptionError("a sealed message is at least its 16-byte tag")
        try:
            return self._cipher.decrypt(nonce, sealed, aad)
        except InvalidTag:
            raise DecryptionError("the message does not authenticate") from None

    def __repr__(self) -> str:
        return "Aead(<key hidden>)"


def _check_nonce(nonce: bytes) -> None:
    if len(nonce) != NONCE_SIZE:
        raise InvalidEncoding(f"a ChaCha20-Poly1305 nonce is {NONCE_SIZE} bytes")


def seal(key: bytes, nonce: bytes, aad: bytes, plaintext: bytes) -> bytes:
    return Aead(key).seal(nonce, aad, plaintext)


def open_sealed(key: bytes, nonce: bytes, aad: bytes, sealed: bytes) -> bytes:
    return Aead(key).open(nonce, aad, sealed)
