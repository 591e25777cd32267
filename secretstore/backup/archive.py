"""A node's verifiable encrypted backup: its key records with every share encrypted to a backup
public key and proved to match the key's public commitments (pure).

Anyone holding the file can check it without the backup key (`verify_archive`): the node's
signature over the whole file, every record's invariants, and for every share version the
proofs of crypto/share_backup.py against the share's public ``Y = Σ_k C_k·x^k`` (the
version's Feldman commitments at this node's id number). A file that verifies decrypts, with
the backup secret, to exactly the shares behind those commitments (`decrypt_archive`), so a
restore cannot be handed something it would only find bad later.

Layout (integers unsigned big-endian):

    8    magic "SSBACKUP"
    u8   format version (1)
    64   node id (the node whose shares these are; it signs the file)
    33   backup public key (compressed)
    u64  created, Unix milliseconds
    u32  key count, then per key in ascending key id order:
         32   key id
         u32  record length, then the key's record (storage/codec.py) with every secret
              share written as zero: the public part of the record
         per version of the record, oldest first:
              u32  length, then the encrypted share (crypto/share_backup.py)
    u32  tombstone count, then per tombstone: u32 length, its record (storage/codec.py)
    65   the node key's recoverable signature over keccak256 of every byte before it

The proof context of a version's share is ``node id ‖ key id ‖ version hash``, so an entry
cannot be moved to another node, key or version. A version without commitments (a key
imported from Parity and not refreshed since) has no public commitment to prove against:
`build_archive` refuses it and names the key.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Final

from secretstore.crypto.curve import Point, Scalar
from secretstore.crypto.hashing import keccak256
from secretstore.crypto.keys import recover_public, sign_recoverable
from secretstore.crypto.rng import Rng
from secretstore.crypto.shamir import evaluate_point_polynomial
from secretstore.crypto.share_backup import (
    EncryptedShare,
    ShareCheck,
    ShareDecryptor,
    check_share,
    encrypt_share,
)
from secretstore.errors import CryptoError, DecryptionError, InvalidEncoding, SecretStoreError
from secretstore.storage.codec import (
    decode_key_share,
    decode_tombstone,
    encode_key_share,
    encode_tombstone,
)
from secretstore.storage.model import KeyShare, Tombstone
from secretstore.types import NodeId, ServerKeyId

MAGIC: Final = b"SSBACKUP"
FORMAT_VERSION: Final = 1
_U32: Final = struct.Struct(">I")
_U64: Final = struct.Struct(">Q")
_SIGNATURE: Final = 65
_ZERO: Final = Scalar(0)
#: Entries whose proofs are checked in one equation (bounds the memory a check holds).
CHECK_BATCH: Final = 256


class BackupError(SecretStoreError):
    """A backup that cannot be made, read or restored; the message names the key."""


@dataclass(frozen=True, slots=True, repr=False)
class BackupKey:
    """One key of a backup: the public record and an encrypted share per version."""

    key_id: ServerKeyId
    record: KeyShare  # every secret share zero
    shares: tuple[EncryptedShare, ...]

    def __repr__(self) -> str:
        return f"BackupKey(0x{self.key_id.hex()}, versions={len(self.shares)})"


@dataclass(frozen=True, slots=True)
class Archive:
    """A parsed backup file (its signature checked by `verify_archive`, not by parsing)."""

    node: NodeId
    backup_public: Point
    created_ms: int
    keys: tuple[BackupKey, ...]
    tombstones: tuple[Tombstone, ...]
    signed_digest: bytes
    signature: bytes


@dataclass(frozen=True, slots=True)
class ArchiveReport:
    """What `verify_archive` found: `problems` is empty when the whole file verifies."""

    node: NodeId
    keys: int
    versions: int
    tombstones: int
    problems: tuple[str, ...] = field(default=())

    @property
    def ok(self) -> bool:
        return not self.problems


def context(node: NodeId, key_id: bytes, version_hash: bytes) -> bytes:
    """The proof context binding an entry to its node, key and version."""
    return bytes(node) + key_id + version_hash


def share_public(record: KeyShare, node: NodeId, key_id: bytes) -> list[Point]:
    """``Y`` of every version of `record` at `node`'s id number (BackupError if none)."""
    publics = []
    for version in record.versions:
        number = version.id_number(node)
        if number is None:
            raise BackupError(f"key 0x{key_id.hex()} version 0x{version.hash.hex()}: "
                              "the node holds no share of it")  # fmt: skip
        if version.commitments is None:
            raise BackupError(
                f"key 0x{key_id.hex()} version 0x{version.hash.hex()} has no commitments "
                "(a key imported from Parity): refresh it first"
            )
        publics.append(evaluate_point_polynomial(version.commitments, number))
    return publics


def public_record(record: KeyShare) -> KeyShare:
    """The record with every secret share zero."""
    versions = tuple(replace(version, secret_share=_ZERO) for version in record.versions)
    return replace(record, versions=versions)


def _framed(data: bytes) -> bytes:
    return _U32.pack(len(data)) + data


def backup_key(
    node: NodeId, key_id: ServerKeyId, record: KeyShare, backup_public: Point, rng: Rng
) -> BackupKey:
    """One key's entry: every version's share encrypted with its proofs."""
    publics = share_public(record, node, key_id)
    shares = []
    for version, public in zip(record.versions, publics, strict=True):
        if Point.base_mul(version.secret_share) != public:
            raise BackupError(
                f"key 0x{key_id.hex()} version 0x{version.hash.hex()}: the stored share does "
                "not match its commitments"
            )
        shares.append(
            encrypt_share(
                version.secret_share,
                public,
                backup_public,
                context(node, key_id, version.hash),
                rng,
            )
        )
    return BackupKey(key_id, public_record(record), tuple(shares))


def encode_archive(
    node_secret: Scalar,
    node: NodeId,
    backup_public: Point,
    *,
    created_ms: int,
    keys: Sequence[BackupKey],
    tombstones: Iterable[Tombstone],
) -> bytes:
    """The signed file."""
    buried = list(tombstones)
    out = bytearray(MAGIC)
    out.append(FORMAT_VERSION)
    out += node
    out += backup_public.to_sec1()
    out += _U64.pack(created_ms)
    out += _U32.pack(len(keys))
    for key in sorted(keys, key=lambda k: k.key_id):
        out += key.key_id
        out += _framed(encode_key_share(key.record))
        for share in key.shares:
            out += _framed(share.to_bytes())
    out += _U32.pack(len(buried))
    for tombstone in buried:
        out += _framed(encode_tombstone(tombstone))
    out += sign_recoverable(node_secret, keccak256(bytes(out)))
    return bytes(out)


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.at = 0

    def take(self, size: int, what: str) -> bytes:
        end = self.at + size
        if end > len(self.data):
            raise InvalidEncoding(f"the backup ends inside {what} (byte {self.at})")
        chunk = self.data[self.at : end]
        self.at = end
        return chunk

    def u32(self, what: str) -> int:
        value: int = _U32.unpack(self.take(4, what))[0]
        return value

    def framed(self, what: str) -> bytes:
        return self.take(self.u32(what), what)


def decode_archive(data: bytes) -> Archive:
    """The archive in `data`; InvalidEncoding naming the place for anything else."""
    if len(data) < len(MAGIC) + 1 + _SIGNATURE or not data.startswith(MAGIC):
        raise InvalidEncoding("not a secretstore backup (no SSBACKUP header)")
    body, signature = data[:-_SIGNATURE], data[-_SIGNATURE:]
    reader = _Reader(body)
    reader.take(len(MAGIC), "the magic")
    version = reader.take(1, "the format version")[0]
    if version != FORMAT_VERSION:
        raise InvalidEncoding(f"unknown backup format version {version}")
    node = NodeId(reader.take(64, "the node id"))
    try:
        Point.from_bytes(node)
        backup_public = Point.from_sec1(reader.take(33, "the backup public key"))
    except CryptoError as exc:
        raise InvalidEncoding(f"the backup header holds an invalid point: {exc}") from None
    created_ms: int = _U64.unpack(reader.take(8, "the creation time"))[0]
    keys = []
    previous = b""
    for _ in range(reader.u32("the key count")):
        key_id = ServerKeyId(reader.take(32, "a key id"))
        where = f"key 0x{key_id.hex()}"
        if key_id <= previous:
            raise InvalidEncoding(f"{where}: key ids are not in strictly ascending order")
        previous = key_id
        try:
            record = decode_key_share(reader.framed(f"{where}'s record"))
        except SecretStoreError as exc:
            raise InvalidEncoding(f"{where}: its record does not decode: {exc}") from None
        if any(not v.secret_share.is_zero() for v in record.versions):
            raise InvalidEncoding(f"{where}: its record holds a share in the clear")
        shares = []
        for index in range(len(record.versions)):
            raw = reader.framed(f"{where}'s share {index}")
            try:
                shares.append(EncryptedShare.from_bytes(raw))
            except SecretStoreError as exc:
                raise InvalidEncoding(f"{where}: share {index} does not decode: {exc}") from None
        keys.append(BackupKey(key_id, record, tuple(shares)))
    tombstones = []
    for _ in range(reader.u32("the tombstone count")):
        try:
            tombstones.append(decode_tombstone(reader.framed("a tombstone")))
        except SecretStoreError as exc:
            raise InvalidEncoding(f"a tombstone does not decode: {exc}") from None
    if reader.at != len(body):
        raise InvalidEncoding(f"{len(body) - reader.at} unexpected bytes after the tombstones")
    return Archive(
        node, backup_public, created_ms, tuple(keys), tuple(tombstones), keccak256(body), signature
    )


def verify_archive(
    archive: Archive, rng: Rng, *, expected_node: NodeId | None = None
) -> ArchiveReport:
    """Every check a holder of the file alone can make (module docstring); every problem is
    named with its key."""
    problems: list[str] = []
    try:
        signer = recover_public(archive.signature, archive.signed_digest).to_bytes()
    except CryptoError:
        signer = b""
    if signer != archive.node:
        problems.append("the file is not signed by the node it names (changed after signing)")
    if expected_node is not None and archive.node != expected_node:
        problems.append(f"the backup is of node 0x{archive.node.hex()}, not the one expected")
    entries: list[tuple[BackupKey, int, Point]] = []
    for key in archive.keys:
        try:
            publics = share_public(key.record, archive.node, key.key_id)
        except BackupError as exc:
            problems.append(str(exc))
            continue
        entries.extend((key, index, public) for index, public in enumerate(publics))
    for start in range(0, len(entries), CHECK_BATCH):
        problems += _check_batch(archive, entries[start : start + CHECK_BATCH], rng)
    return ArchiveReport(
        archive.node,
        len(archive.keys),
        len(entries),
        len(archive.tombstones),
        tuple(problems),
    )


def _check_batch(
    archive: Archive, entries: Sequence[tuple[BackupKey, int, Point]], rng: Rng
) -> list[str]:
    """The proofs of `entries` checked together; when that fails, one by one to name them."""
    check = ShareCheck(archive.backup_public, rng)
    folded = True
    for key, index, public in entries:
        ctx = context(archive.node, key.key_id, key.record.versions[index].hash)
        folded = check.add(key.shares[index], public, ctx) and folded
    if folded and check.holds():
        return []
    problems = []
    for key, index, public in entries:
        version = key.record.versions[index]
        ctx = context(archive.node, key.key_id, version.hash)
        if not check_share(key.shares[index], public, archive.backup_public, ctx, rng):
            problems.append(
                f"key 0x{key.key_id.hex()} version 0x{version.hash.hex()}: its encrypted "
                "share does not prove to match the key's commitments"
            )
    return problems


def decrypt_archive(archive: Archive, backup_secret: Scalar) -> list[tuple[ServerKeyId, KeyShare]]:
    """Every key's record with its shares, decrypted with the backup secret (verify first);
    BackupError naming the key when the secret is not the backup key's or a share does not
    decrypt to the share behind its commitments."""
    if Point.base_mul(backup_secret) != archive.backup_public:
        raise BackupError("the backup secret is not the secret of the file's backup key")
    decryptor = ShareDecryptor(backup_secret)
    out = []
    for key in archive.keys:
        publics = share_public(key.record, archive.node, key.key_id)
        versions = []
        for version, share, public in zip(key.record.versions, key.shares, publics, strict=True):
            try:
                secret = decryptor.decrypt(share, public)
            except DecryptionError as exc:
                raise BackupError(
                    f"key 0x{key.key_id.hex()} version 0x{version.hash.hex()}: {exc}"
                ) from None
            versions.append(replace(version, secret_share=secret))
        out.append((key.key_id, replace(key.record, versions=tuple(versions))))
    return out
