"""Helpers for simulated runs of the key sessions: registries, generation, reconstruction."""

from __future__ import annotations

import itertools
from collections.abc import Iterable

from secretstore.crypto.curve import Point, Scalar
from secretstore.crypto.keys import KeyPair, sign_recoverable
from secretstore.crypto.rng import SeededRng
from secretstore.crypto.shamir import reconstruct_secret
from secretstore.sessions import encryption, generation, key_version, retrieval
from secretstore.sessions.base import Fail, Finish
from secretstore.storage.model import KeyShare
from secretstore.types import NodeId, ServerKeyId
from secretstore.wire.requester import RequesterProof
from tests.sim.harness import SimNetwork

MASTERS = {
    **generation.MASTERS,
    **encryption.MASTERS,
    **key_version.MASTERS,
    **retrieval.MASTERS,
}
SLAVES = {**generation.SLAVES, **encryption.SLAVES, **key_version.SLAVES, **retrieval.SLAVES}

KEY = ServerKeyId(bytes(range(32)))
AUTHOR_KEY = KeyPair.generate(SeededRng(b"sim author"))
AUTHOR = AUTHOR_KEY.address


def proof_of(requester: KeyPair = AUTHOR_KEY, key_id: ServerKeyId = KEY) -> RequesterProof:
    """The requester proof of Parity's form: `requester`'s signature over `key_id`."""
    return RequesterProof.signature(sign_recoverable(requester.secret, key_id))


AUTHOR_PROOF = proof_of()


def generate(net: SimNetwork, threshold: int, index: int = 0, key_id: ServerKeyId = KEY) -> Point:
    request = generation.GenerateServerKey(key_id, proof_of(key_id=key_id), threshold)
    sid = net.start(index, request)
    net.run()
    public = net.value(index, sid)
    assert isinstance(public, Point)
    return public


def stored_shares(net: SimNetwork, key_id: ServerKeyId = KEY) -> dict[NodeId, KeyShare]:
    out = {}
    for node_id, node in net.nodes.items():
        share = node.storage.get(key_id)
        if share is not None:
            out[node_id] = share
    return out


def reconstruct(shares: dict[NodeId, KeyShare], holders: Iterable[NodeId]) -> Scalar:
    """The secret of the last version from the shares of exactly t+1 `holders`."""
    chosen = sorted(holders)
    first = shares[chosen[0]]
    ids = first.last_version().id_numbers_map()
    return reconstruct_secret(
        first.threshold,
        [shares[node].last_version().secret_share for node in chosen],
        [ids[node] for node in chosen],
    )


def assert_consistent_key(
    shares: dict[NodeId, KeyShare], public: Point, max_subsets: int = 40
) -> None:
    """Every stored share agrees on the key, and t+1 shares give a secret whose public it is."""
    first = next(iter(shares.values()))
    for share in shares.values():
        assert share.public == public
        assert share.author == first.author and share.threshold == first.threshold
        assert [v.hash for v in share.versions] == [v.hash for v in first.versions]
        assert share.last_version().id_numbers == first.last_version().id_numbers
    t = first.threshold
    holders = sorted(shares)
    for subset in itertools.islice(itertools.combinations(holders, t + 1), max_subsets):
        assert Point.base_mul(reconstruct(shares, subset)) == public


def all_sessions_ended(net: SimNetwork) -> bool:
    return all(len(node.core) == 0 for node in net.nodes.values())


def outcome(net: SimNetwork, index: int, sid: bytes) -> Finish | Fail:
    result = net.result(index, sid)  # type: ignore[arg-type]
    assert result is not None, "the session has not ended"
    return result
