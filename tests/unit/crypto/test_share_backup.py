"""Verifiable encryption of shares: an entry decrypts with the backup key to its share, and
anyone can check it without the key; a changed, moved or swapped entry, another share public
or backup key fails the check; a creator that makes a chunk undecryptable (out of range, or a
handle that does not fit) while keeping the chunks' sum cannot pass the check."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from secretstore.crypto.bulletproofs import VALUE_BASE
from secretstore.crypto.curve import N, Point, Scalar
from secretstore.crypto.keys import KeyPair
from secretstore.crypto.rng import SeededRng
from secretstore.crypto.share_backup import (
    CHUNKS,
    EncryptedShare,
    LinkProof,
    ShareCheck,
    ShareDecryptor,
    check_share,
    encrypt_share,
)
from secretstore.errors import DecryptionError, InvalidEncoding, InvalidRequest

RNG = SeededRng(b"share backup tests")
BACKUP = KeyPair.generate(RNG)
OTHER = KeyPair.generate(RNG)
DECRYPTOR = ShareDecryptor(BACKUP.secret)


def entry_of(secret: int, context: bytes = b"node/key/version") -> tuple[EncryptedShare, Point]:
    share = Scalar(secret)
    public = Point.base_mul(share)
    return encrypt_share(share, public, BACKUP.public, context, RNG), public


@given(st.integers(1, N - 1))
@settings(max_examples=5, deadline=None)
def test_an_entry_checks_and_decrypts_to_its_share(secret: int) -> None:
    entry, public = entry_of(secret)
    again = EncryptedShare.from_bytes(entry.to_bytes())
    assert again == entry
    assert check_share(again, public, BACKUP.public, b"node/key/version", RNG)
    assert DECRYPTOR.decrypt(again, public) == Scalar(secret)


@pytest.mark.parametrize("secret", [1, 2**16 - 1, 2**16, N - 1, 2**255])
def test_the_edges_decrypt(secret: int) -> None:
    entry, public = entry_of(secret)
    assert check_share(entry, public, BACKUP.public, b"node/key/version", RNG)
    assert DECRYPTOR.decrypt(entry, public) == Scalar(secret)


def test_an_entry_is_only_for_its_share_context_and_backup_key() -> None:
    entry, public = entry_of(12345)
    assert not check_share(entry, public, BACKUP.public, b"another key", RNG)
    assert not check_share(
        entry, Point.base_mul(Scalar(12346)), BACKUP.public, b"node/key/version", RNG
    )
    assert not check_share(entry, public, OTHER.public, b"node/key/version", RNG)
    with pytest.raises(DecryptionError):
        ShareDecryptor(OTHER.secret).decrypt(entry, public)


def test_the_share_must_fit_its_public() -> None:
    with pytest.raises(InvalidRequest):
        encrypt_share(Scalar(5), Point.base_mul(Scalar(6)), BACKUP.public, b"", RNG)


def test_every_changed_field_fails_the_check() -> None:
    entry, public = entry_of(987654321)
    context = b"node/key/version"
    one = Point.base_mul(Scalar(1))
    changes = []
    for j in (0, 7, CHUNKS - 1):
        commitments = list(entry.commitments)
        commitments[j] = commitments[j] + one
        changes.append(dataclasses.replace(entry, commitments=tuple(commitments)))
        handles = list(entry.handles)
        handles[j] = handles[j] + one
        changes.append(dataclasses.replace(entry, handles=tuple(handles)))
    for i in range(4):
        t = list(entry.link.t)
        t[i] = t[i] + one
        z = list(entry.link.z)
        z[i] = (z[i] + 1) % N
        changes.append(dataclasses.replace(entry, link=LinkProof(tuple(t), entry.link.z)))  # type: ignore[arg-type]
        changes.append(dataclasses.replace(entry, link=LinkProof(entry.link.t, tuple(z))))  # type: ignore[arg-type]
    changes.append(
        dataclasses.replace(
            entry, range_proof=dataclasses.replace(entry.range_proof, mu=entry.range_proof.mu ^ 1)
        )
    )
    other, _ = entry_of(987654321)
    changes.append(dataclasses.replace(entry, range_proof=other.range_proof))
    changes.append(dataclasses.replace(entry, link=other.link))
    for changed in changes:
        assert not check_share(changed, public, BACKUP.public, context, RNG)


def test_an_undecryptable_entry_that_keeps_the_sum_fails() -> None:
    """A dishonest creator moves 2^16 from chunk 1 into chunk 0 (chunk 0 now holds a value out
    of range, which the table cannot decrypt; the chunks' weighted sum, so the link to Y, is
    unchanged): the range proof and the weighted relation catch it."""
    entry, public = entry_of(3 << 16)
    commitments = list(entry.commitments)
    commitments[0] = commitments[0] + VALUE_BASE * Scalar(1 << 16)
    commitments[1] = commitments[1] - VALUE_BASE
    bent = dataclasses.replace(entry, commitments=tuple(commitments))
    assert not check_share(bent, public, BACKUP.public, b"node/key/version", RNG)
    with pytest.raises(DecryptionError):
        DECRYPTOR.decrypt(bent, public)


def test_a_handle_that_does_not_fit_its_chunk_fails() -> None:
    """Handles of other randomness, with the handles' sum kept (what an unweighted check would
    miss): the chunks would not decrypt."""
    entry, public = entry_of(424242)
    p = BACKUP.public
    handles = list(entry.handles)
    handles[2] = handles[2] + p
    handles[3] = handles[3] - p
    bent = dataclasses.replace(entry, handles=tuple(handles))
    assert not check_share(bent, public, BACKUP.public, b"node/key/version", RNG)


def test_a_batch_holds_only_when_every_entry_does() -> None:
    entries = [entry_of(1000 + i, b"ctx %d" % i) for i in range(4)]
    check = ShareCheck(BACKUP.public, RNG)
    for i, (entry, public) in enumerate(entries):
        assert check.add(entry, public, b"ctx %d" % i)
    assert check.holds()
    check = ShareCheck(BACKUP.public, RNG)
    for i, (entry, public) in enumerate(entries):
        context = b"ctx %d" % (1 if i == 2 else i)  # an entry moved under another context
        check.add(entry, public, context)
    assert not check.holds()


def test_malformed_entries_are_refused() -> None:
    entry, _ = entry_of(77)
    raw = entry.to_bytes()
    for data in (raw[:100], raw[:-1], raw + b"\x00", b"\x07" + raw[1:]):
        with pytest.raises(InvalidEncoding):
            EncryptedShare.from_bytes(data)
