"""The presigning pool's rules by hand: used once, bound to its master, key, version and
group, bounded per key, per key count and per master."""

from __future__ import annotations

import pytest

from secretstore.crypto.curve import ONE, G, Scalar
from secretstore.crypto.keys import KeyPair
from secretstore.crypto.rng import SeededRng
from secretstore.errors import InvalidRequest, ProtocolViolation
from secretstore.sessions.presign import Presignature, PresignedNonces, PresignPool, StoredNonce
from secretstore.types import NodeId, ServerKeyId, SessionId
from secretstore.wire.signing import NonceKind

NODES = sorted(KeyPair.generate(SeededRng(i)).node_id for i in range(4))
ME, OTHER = NODES[0], NODES[1]
KEY = ServerKeyId(b"\x01" * 32)
VERSION = b"\x02" * 32


def presignature(
    number: int,
    *,
    master: NodeId = ME,
    key: ServerKeyId = KEY,
    version: bytes = VERSION,
    nodes: tuple[NodeId, ...] = tuple(NODES[:3]),
) -> Presignature:
    nonce = StoredNonce(Scalar(number), G, tuple((node, G) for node in nodes))
    return Presignature(
        presign_id=SessionId(number.to_bytes(32, "big")),
        master=master,
        key_id=key,
        version=version,
        nodes=nodes,
        nonces=((NonceKind.INVERSION_NONCE, nonce),),
        inversed_nonce_coeff=ONE if master == ME else None,
    )


def test_a_master_takes_each_presignature_once_oldest_first() -> None:
    pool = PresignPool(ME, depth=3)
    for i in range(5):
        pool.put(presignature(i))
    assert pool.count(KEY) == 3 and pool.missing(KEY) == 0  # the depth bounds it
    taken = [pool.take(KEY, VERSION, lambda nodes: True) for _ in range(4)]
    assert [p.presign_id[-1] if p else None for p in taken] == [0, 1, 2, None]
    assert pool.missing(KEY) == 3


def test_take_skips_groups_that_cannot_take_part_and_drops_other_versions() -> None:
    pool = PresignPool(ME, depth=4)
    pool.put(presignature(1, version=b"\x09" * 32))
    pool.put(presignature(2, nodes=(NODES[0], NODES[1], NODES[3])))
    pool.put(presignature(3))
    away = NODES[3]
    found = pool.take(KEY, VERSION, lambda nodes: away not in nodes)
    assert found is not None and found.presign_id[-1] == 3
    assert pool.count(KEY) == 1  # the other version's is gone, the unusable one stays
    assert pool.take(KEY, VERSION, lambda nodes: away not in nodes) is None


def test_the_least_recently_used_key_goes_first() -> None:
    pool = PresignPool(ME, depth=1, max_keys=2)
    keys = [ServerKeyId(bytes([i]) * 32) for i in range(3)]
    pool.put(presignature(0, key=keys[0]))
    pool.put(presignature(1, key=keys[1]))
    pool.take(keys[0], VERSION, lambda nodes: False)  # key 0 used lately
    pool.put(presignature(2, key=keys[2]))
    assert [pool.count(k) for k in keys] == [1, 0, 1]


def test_a_member_claims_its_part_once_and_only_for_its_master() -> None:
    pool = PresignPool(ME, max_held=2)
    part = presignature(7, master=OTHER)
    pool.hold(part)
    assert pool.claim(part.presign_id, NODES[2]) is None  # another master names it
    assert pool.claim(part.presign_id, OTHER) is part
    assert pool.claim(part.presign_id, OTHER) is None  # used: gone
    for i in range(3):
        pool.hold(presignature(10 + i, master=OTHER))
    assert pool.held_from(OTHER) == 2  # a master cannot make it hold more
    assert pool.claim(SessionId((10).to_bytes(32, "big")), OTHER) is None  # the oldest went


def test_forget_drops_a_key_everywhere_and_roles_are_checked() -> None:
    pool = PresignPool(ME)
    pool.put(presignature(1))
    pool.hold(presignature(2, master=OTHER))
    pool.forget(KEY)
    assert pool.sizes() == {"own": 0, "held": 0, "keys": 0}
    with pytest.raises(InvalidRequest):
        pool.put(presignature(3, master=OTHER))  # a master keeps only its own
    with pytest.raises(InvalidRequest):
        pool.hold(presignature(4))  # and a member only another master's
    with pytest.raises(ValueError):
        PresignPool(ME, depth=-1)


def test_presigned_nonces_end_at_once_and_take_no_messages() -> None:
    nonces = PresignedNonces(presignature(5), attempt=1)
    assert nonces.done and nonces.attempt == 1 and nonces.nodes == tuple(NODES[:3])
    assert nonces.start() == []
    assert nonces.result(NonceKind.INVERSION_NONCE).share_public(NODES[1]) == G
    with pytest.raises(InvalidRequest):
        nonces.result(NonceKind.SIGNATURE_ZERO)
    with pytest.raises(ProtocolViolation):
        nonces.on_message(NODES[1], NonceKind.SIGNATURE_NONCE, object())
    assert "Scalar" not in repr(nonces.result(NonceKind.INVERSION_NONCE))
    assert "Scalar" not in repr(presignature(5))  # no secret in a repr
