"""Parity's ECIES: 0x04‖R‖iv‖AES-128-CTR‖HMAC-SHA256, concat-KDF over SHA-256."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable

from coincurve._libsecp256k1 import ffi, lib
from coincurve.context import GLOBAL_CONTEXT
from Crypto.Cipher import AES

from secretstore.crypto.curve import Point, Scalar
from secretstore.crypto.rng import Rng, random_scalar
from secretstore.errors import DecryptionError, InvalidEncoding, InvalidPoint

#: parity-crypto's DEFAULT_MAC, the `auth` data the key server and the JSON-RPC helpers use.
DEFAULT_MAC = b"\x00\x00"

#: The version byte Parity writes; decryption accepts 2, 3 and 4 as Parity does.
ENCRYPTION_VERSION = 0x04
_ACCEPTED_VERSIONS = (2, 3, 4)
_PUBLIC_LENGTH = 64
_IV_LENGTH = 16
_MAC_LENGTH = 32
#: Bytes an encryption adds to the plaintext: version, ephemeral public, iv and MAC.
OVERHEAD = 1 + _PUBLIC_LENGTH + _IV_LENGTH + _MAC_LENGTH  # 113

_KDF_COUNTER_1 = b"\x00\x00\x00\x01"


# --- ECDH: the raw x coordinate of secret·public ------------------------------------------


def _x_of_product_via_multiply(secret: bytes, public: Point) -> bytes:
    """x of secret·public by a (variable-time) point multiplication; the portable fallback."""
    return public.public_key().multiply(secret).format(compressed=True)[1:]


def _make_constant_time_ecdh() -> Callable[[bytes, Point], bytes] | None:
    """libsecp256k1's constant-time ECDH with a hash function that returns x unhashed."""
    try:
        copy_x = ffi.callback(
            "int(unsigned char *, const unsigned char *, const unsigned char *, void *)"
        )(_copy_x)
    except Exception:  # pragma: no cover - platforms that forbid run-time callbacks
        return None

    def shared_x(secret: bytes, public: Point) -> bytes:
        out = ffi.new("unsigned char[32]")
        key = public.public_key().public_key
        if not lib.secp256k1_ecdh(GLOBAL_CONTEXT.ctx, out, key, secret, copy_x, ffi.NULL):
            raise InvalidPoint("ECDH failed")  # pragma: no cover - secret checked by callers
        return bytes(ffi.buffer(out, 32))

    return shared_x


def _copy_x(output: object, x32: object, _y32: object, _data: object) -> int:
    ffi.memmove(output, x32, 32)
    return 1


_shared_x = _make_constant_time_ecdh() or _x_of_product_via_multiply


def ecdh_shared_x(secret: Scalar, public: Point) -> bytes:
    """Parity's `ecdh::agree`: the 32-byte x coordinate of secret·public (not hashed).

    Raises InvalidScalar for a zero secret and InvalidPoint for the identity.
    """
    secret.require_nonzero("ECDH secret")
    public.require_not_identity("ECDH public")
    return _shared_x(secret.to_bytes(), public)


# --- the scheme ---------------------------------------------------------------------------


def _derive_keys(shared_x: bytes) -> tuple[bytes, bytes]:
    """(AES key, MAC key) from the shared x: concat KDF (one SHA-256 block), then SHA-256."""
    key = hashlib.sha256(_KDF_COUNTER_1 + shared_x).digest()
    return key[:16], hashlib.sha256(key[16:]).digest()


def aes_128_ctr(key: bytes, iv: bytes, data: bytes | memoryview) -> bytes:
    """AES-128 in CTR mode as Parity's `encrypt_128_ctr`; it both encrypts and decrypts.

    The whole 16-byte iv is the initial counter block, incremented as one 128-bit big-endian
    number (RustCrypto's Ctr128). Raises InvalidEncoding unless key and iv are 16 bytes.
    """
    if len(key) != 16 or len(iv) != 16:
        raise InvalidEncoding("AES-128-CTR takes a 16-byte key and a 16-byte iv")
    out: bytes = AES.new(key, AES.MODE_CTR, nonce=b"", initial_value=iv).encrypt(data)
    return out


def ecies_encrypt(public: Point, plain: bytes, rng: Rng, auth: bytes = DEFAULT_MAC) -> bytes:
    """0x04 ‖ R ‖ iv ‖ AES-128-CTR(plain) ‖ HMAC-SHA256(iv ‖ cipher ‖ auth): 113 + len(plain).

    Raises InvalidPoint if `public` is the identity.
    """
    public.require_not_identity("ECIES recipient")
    ephemeral = random_scalar(rng)
    ekey, mkey = _derive_keys(_shared_x(ephemeral.to_bytes(), public))
    iv = rng.random_bytes(_IV_LENGTH)
    cipher = aes_128_ctr(ekey, iv, plain)
    mac = hmac.new(mkey, iv, hashlib.sha256)
    mac.update(cipher)
    mac.update(auth)
    return b"".join((b"\x04", Point.base_mul(ephemeral).to_bytes(), iv, cipher, mac.digest()))


def ecies_decrypt(secret: Scalar, cipher: bytes, auth: bytes = DEFAULT_MAC) -> bytes:
    """Raises DecryptionError on bad version byte, short input or MAC mismatch.

    Every fault of the ciphertext (too short, unknown version, an ephemeral key that is not a
    point, a MAC that does not match) raises DecryptionError; a zero secret raises InvalidScalar.
    """
    secret.require_nonzero("ECIES secret")
    if len(cipher) < OVERHEAD or cipher[0] not in _ACCEPTED_VERSIONS:
        raise DecryptionError("not an ECIES ciphertext")
    view = memoryview(cipher)
    try:
        ephemeral = Point.from_bytes(bytes(view[1 : 1 + _PUBLIC_LENGTH]))
    except InvalidPoint as exc:
        raise DecryptionError("not an ECIES ciphertext") from exc
    ekey, mkey = _derive_keys(_shared_x(secret.to_bytes(), ephemeral))
    body = view[1 + _PUBLIC_LENGTH : len(cipher) - _MAC_LENGTH]  # iv ‖ cipher
    mac = hmac.new(mkey, body, hashlib.sha256)
    mac.update(auth)
    if not hmac.compare_digest(mac.digest(), view[len(cipher) - _MAC_LENGTH :]):
        raise DecryptionError("ECIES MAC mismatch")
    return aes_128_ctr(ekey, bytes(body[:_IV_LENGTH]), body[_IV_LENGTH:])
