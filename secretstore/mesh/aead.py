"""ChaCha20-Poly1305 (RFC 8439) sealing of one message with one cipher object per message.

The same construction and bytes as pycryptodome's `ChaCha20_Poly1305`, with a third of its
per-message setup: block 0 of the ChaCha20 key stream gives the one-time Poly1305 key, the
message is encrypted from block 1 on with the same cipher object, the MAC input is built in
one piece, and the tag is compared in constant time (`hmac.compare_digest`).
"""

from __future__ import annotations

import hmac
import struct
from typing import Final

from Crypto.Cipher import ChaCha20
from Crypto.Hash.Poly1305 import Poly1305_MAC

from secretstore.errors import DecryptionError, InvalidEncoding

KEY_SIZE: Final = 32
NONCE_SIZE: Final = 12
TAG_SIZE: Final = 16
_BLOCK_ZERO: Final = bytes(64)
_LENGTHS: Final = struct.Struct("<QQ")
_PAD: Final = tuple(bytes(-n % 16) for n in range(16))


def _check(key: bytes, nonce: bytes) -> None:
    if len(key) != KEY_SIZE:
        raise InvalidEncoding(f"a ChaCha20-Poly1305 key is {KEY_SIZE} bytes")
    if len(nonce) != NONCE_SIZE:
        raise InvalidEncoding(f"a ChaCha20-Poly1305 nonce is {NONCE_SIZE} bytes")


def _tag(one_time_key: bytes, aad: bytes, ciphertext: bytes) -> bytes:
    mac_input = b"".join(
        (
            aad,
            _PAD[len(aad) % 16],
            ciphertext,
            _PAD[len(ciphertext) % 16],
            _LENGTHS.pack(len(aad), len(ciphertext)),
        )
    )
    # r and s are 16-byte strings (pycryptodome's stub calls them ints).
    r, s = one_time_key[:16], one_time_key[16:32]
    tag: bytes = Poly1305_MAC(r, s, mac_input).digest()  # type: ignore[arg-type]
    return tag


def seal(key: bytes, nonce: bytes, aad: bytes, plaintext: bytes) -> bytes:
    """ciphertext ‖ tag (16 bytes) of `plaintext`, authenticating `aad` too."""
    _check(key, nonce)
    cipher = ChaCha20.new(key=key, nonce=nonce)
    one_time_key: bytes = cipher.encrypt(_BLOCK_ZERO)
    ciphertext: bytes = cipher.encrypt(plaintext)
    return ciphertext + _tag(one_time_key, aad, ciphertext)


def open_sealed(key: bytes, nonce: bytes, aad: bytes, sealed: bytes) -> bytes:
    """The plaintext of `sealed` (ciphertext ‖ tag); DecryptionError when it does not
    authenticate (wrong key, nonce or aad, or any changed byte)."""
    _check(key, nonce)
    if len(sealed) < TAG_SIZE:
        raise DecryptionError("a sealed message is at least its 16-byte tag")
    ciphertext, tag = sealed[:-TAG_SIZE], sealed[-TAG_SIZE:]
    cipher = ChaCha20.new(key=key, nonce=nonce)
    one_time_key: bytes = cipher.decrypt(_BLOCK_ZERO)
    if not hmac.compare_digest(_tag(one_time_key, aad, ciphertext), tag):
        raise DecryptionError("the message does not authenticate")
    plaintext: bytes = cipher.decrypt(ciphertext)
    return plaintext
