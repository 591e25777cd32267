"""The backup file: it round-trips and verifies, decrypts to exactly the records it was made
of, and anyone can tell when it was changed: a flipped byte, an entry moved to another key,
a node (holding its own key) that signs entries which do not decrypt to its shares, another
node's file, a share in the clear, a wrong backup secret."""

from __future__ import annotations

from dataclasses import replace

import pytest

from secretstore.backup import archive as archive_module
from secretstore.backup.archive import (
    BackupError,
    BackupKey,
    backup_key,
    decode_archive,
    decrypt_archive,
    encode_archive,
    public_record,
    verify_archive,
)
from secretstore.crypto.curve import Point, Scalar
from secretstore.crypto.keys import KeyPair
from secretstore.crypto.rng import SeededRng, random_scalar
from secretstore.crypto.shamir import evaluate_polynomial
from secretstore.errors import InvalidEncoding
from secretstore.storage.codec import encode_key_share
from secretstore.storage.model import KeyShare, KeyShareVersion, Tombstone
from secretstore.types import Address, NodeId, ServerKeyId

RNG = SeededRng(b"backup archive tests")
NODES = [KeyPair.generate(RNG) for _ in range(3)]
ME = NODES[0]
BACKUP = KeyPair.generate(RNG)
OTHER = KeyPair.generate(RNG)


def version(threshold: int, secret: Scalar | None = None) -> tuple[KeyShareVersion, Scalar]:
    """A version of a random polynomial of degree `threshold` over the three nodes, with
    this node's share and the commitments."""
    coefficients = [secret or random_scalar(RNG)] + [random_scalar(RNG) for _ in range(threshold)]
    numbers = {n.node_id: random_scalar(RNG) for n in NODES}
    share = evaluate_polynomial(coefficients, numbers[ME.node_id])
    commitments = [Point.base_mul(c) for c in coefficients]
    return KeyShareVersion.create(numbers, share, commitments), coefficients[0]


def record(threshold: int = 1, versions: int = 1, document: bool = True) -> KeyShare:
    first, secret = version(threshold)
    made = [first] + [version(threshold, secret)[0] for _ in range(versions - 1)]
    point = Point.base_mul(random_scalar(RNG)) if document else None
    return KeyShare(
        Address(bytes(range(20))),
        threshold,
        Point.base_mul(secret),
        point,
        None if point is None else Point.base_mul(random_scalar(RNG)),
        tuple(made),
    )


KEYS = {
    ServerKeyId(bytes([i]) * 32): record(threshold=i % 2 + 1, versions=1 + i % 2, document=i != 2)
    for i in range(1, 5)
}
TOMBSTONE = Tombstone(
    ServerKeyId(b"\x77" * 32), Point.base_mul(Scalar(9)), Address(b"\x01" * 20), b"\x02" * 65
)


def entries(keys: dict[ServerKeyId, KeyShare] = KEYS) -> list[BackupKey]:
    return [backup_key(ME.node_id, k, r, BACKUP.public, RNG) for k, r in keys.items()]


def archive_bytes(items: list[BackupKey] | None = None, signer: KeyPair = ME) -> bytes:
    chosen = entries() if items is None else items
    return encode_archive(
        signer.secret, ME.node_id, BACKUP.public, created_ms=1234, keys=chosen,
        tombstones=[TOMBSTONE],
    )  # fmt: skip


DATA = archive_bytes()


def test_a_backup_verifies_and_restores_exactly_its_records() -> None:
    archive = decode_archive(DATA)
    report = verify_archive(archive, RNG, expected_node=ME.node_id)
    assert report.ok, report.problems
    assert (report.keys, report.versions, report.tombstones) == (4, 6, 1)
    assert archive.tombstones == (TOMBSTONE,)
    restored = dict(decrypt_archive(archive, BACKUP.secret))
    assert restored == KEYS


def test_the_file_holds_no_share_in_the_clear() -> None:
    for share in KEYS.values():
        for stored in share.versions:
            assert stored.secret_share.to_bytes() not in DATA


def test_every_flipped_byte_sampled_is_detected() -> None:
    for at in range(3, len(DATA), len(DATA) // 24):
        changed = bytearray(DATA)
        changed[at] ^= 0x01
        try:
            archive = decode_archive(bytes(changed))
        except InvalidEncoding:
            continue
        assert not verify_archive(archive, RNG).ok, f"a flip at byte {at} went unnoticed"


def test_a_node_that_signs_an_entry_of_another_share_is_caught() -> None:
    """The node key holder itself makes the file: the entry of key 1 is the honest entry of
    another share (it decrypts, but not to the share behind key 1's commitments)."""
    items = entries()
    key_id, share = next(iter(KEYS.items()))
    decoy = replace(share.versions[0], secret_share=share.versions[0].secret_share + Scalar(1))
    decoy_public = Point.base_mul(decoy.secret_share)
    from secretstore.backup.archive import context
    from secretstore.crypto.share_backup import encrypt_share

    bad = encrypt_share(
        decoy.secret_share, decoy_public, BACKUP.public,
        context(ME.node_id, key_id, decoy.hash), RNG,
    )  # fmt: skip
    items[0] = BackupKey(items[0].key_id, items[0].record, (bad, *items[0].shares[1:]))
    archive = decode_archive(archive_bytes(items))
    report = verify_archive(archive, RNG)
    assert [p for p in report.problems if key_id.hex() in p], report.problems
    assert len(report.problems) == 1
    with pytest.raises(BackupError):
        decrypt_archive(archive, BACKUP.secret)


def test_an_entry_moved_to_another_key_is_caught() -> None:
    items = entries()
    first, second = items[0], items[1]
    items[1] = BackupKey(second.key_id, second.record, (first.shares[0], *second.shares[1:]))
    report = verify_archive(decode_archive(archive_bytes(items)), RNG)
    assert len(report.problems) == 1 and second.key_id.hex() in report.problems[0]


def test_a_commitment_changed_and_signed_again_is_caught() -> None:
    items = entries()
    key = items[0]
    v = key.record.versions[0]
    assert v.commitments is not None
    bent = (v.commitments[0], v.commitments[1] + Point.base_mul(Scalar(1)), *v.commitments[2:])
    changed = replace(key.record, versions=(replace(v, commitments=bent), *key.record.versions[1:]))
    items[0] = BackupKey(key.key_id, changed, key.shares)
    report = verify_archive(decode_archive(archive_bytes(items)), RNG)
    assert not report.ok and key.key_id.hex() in report.problems[0]


def test_a_file_signed_by_another_key_or_of_another_node_is_refused() -> None:
    report = verify_archive(decode_archive(archive_bytes(signer=OTHER)), RNG)
    assert any("not signed by the node" in p for p in report.problems)
    report = verify_archive(decode_archive(DATA), RNG, expected_node=NodeId(OTHER.node_id))
    assert any("not the one expected" in p for p in report.problems)


def test_the_wrong_backup_secret_restores_nothing() -> None:
    with pytest.raises(BackupError, match="not the secret"):
        decrypt_archive(decode_archive(DATA), OTHER.secret)


def test_a_version_without_commitments_cannot_be_backed_up() -> None:
    share = next(iter(KEYS.values()))
    bare = replace(share, versions=(replace(share.versions[0], commitments=None),))
    with pytest.raises(BackupError, match="no commitments"):
        backup_key(ME.node_id, ServerKeyId(b"\x05" * 32), bare, BACKUP.public, RNG)


def test_a_share_that_does_not_fit_its_commitments_is_not_backed_up() -> None:
    share = next(iter(KEYS.values()))
    v = share.versions[0]
    wrong = replace(share, versions=(replace(v, secret_share=v.secret_share + Scalar(1)),))
    with pytest.raises(BackupError, match="does not match"):
        backup_key(ME.node_id, ServerKeyId(b"\x05" * 32), wrong, BACKUP.public, RNG)


def test_a_record_with_a_share_in_the_clear_is_refused() -> None:
    share = next(iter(KEYS.values()))
    raw = encode_key_share(public_record(share))
    clear = encode_key_share(share)
    data = DATA.replace(raw, clear)
    assert data != DATA
    with pytest.raises(InvalidEncoding, match="in the clear"):
        decode_archive(data)


@pytest.mark.parametrize(
    "data",
    [b"", b"SSBACKUP", DATA[:200], DATA[:-66] + DATA[-65:], DATA[:-65] + b"\x00" + DATA[-65:],
     b"XXBACKUP" + DATA[8:], DATA[:8] + b"\x02" + DATA[9:]],
)  # fmt: skip
def test_malformed_files_are_refused(data: bytes) -> None:
    with pytest.raises(InvalidEncoding):
        decode_archive(data)


def test_a_bad_entry_is_named_whichever_batch_holds_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(archive_module, "CHECK_BATCH", 2)
    items = entries()
    last, first = items[-1], items[0]
    items[-1] = BackupKey(last.key_id, last.record, (first.shares[0], *last.shares[1:]))
    report = verify_archive(decode_archive(archive_bytes(items)), RNG)
    assert len(report.problems) == 1 and last.key_id.hex() in report.problems[0]
    assert verify_archive(decode_archive(DATA), RNG).ok
