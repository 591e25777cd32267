"""What a node stores per server key: its share of the key, in one or more versions (pure)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace

from secretstore.crypto.curve import Point, Scalar
from secretstore.crypto.hashing import keccak256
from secretstore.errors import CryptoError, DocumentKeyAlreadyStored, InvalidKeyShare
from secretstore.types import Address, NodeId, ServerKeyId

IdNumbers = tuple[tuple[NodeId, Scalar], ...]


def version_hash(id_numbers: Iterable[tuple[NodeId, Scalar]]) -> bytes:
    """The hash naming a key version: keccak256 of `node id ‖ id number` over the nodes in
    ascending node id order (as Parity's `DocumentKeyShareVersion::data_hash`)."""
    pairs = sorted(id_numbers, key=lambda pair: pair[0])
    return keccak256(b"".join(node + number.to_bytes() for node, number in pairs))


def _check_node_id(node: object) -> NodeId:
    if not isinstance(node, bytes) or len(node) != 64:
        raise InvalidKeyShare("a node id is 64 bytes")
    try:
        Point.from_bytes(node)
    except CryptoError as exc:
        raise InvalidKeyShare(f"node id 0x{node.hex()} is not a point on secp256k1") from exc
    return NodeId(node)


def _check_point(value: object, what: str) -> Point:
    if not isinstance(value, Point) or value.is_identity():
        raise InvalidKeyShare(f"{what} must be a point other than the identity")
    return value


@dataclass(frozen=True, slots=True, repr=False)
class KeyShareVersion:
    """One version of a node's share: the id number of every node holding the version
    (sorted by node id on construction), this node's secret share, and the Feldman
    commitments ``C_0..C_t`` of the version's key polynomial when the record has them
    (None for a key written before they were stored: its decryptions carry no proofs).

    Invariants: `hash` is 32 bytes; at least one node; node ids are distinct curve points;
    id numbers are nonzero and distinct; commitments, if any, are at least one point and
    none the identity (the KeyShare checks their number and ``C_0``).
    """

    hash: bytes
    id_numbers: IdNumbers
    secret_share: Scalar
    commitments: tuple[Point, ...] | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.hash, bytes) or len(self.hash) != 32:
            raise InvalidKeyShare("a version hash is 32 bytes")
        if not isinstance(self.secret_share, Scalar):
            raise InvalidKeyShare("the secret share must be a Scalar")
        if self.commitments is not None:
            commitments = tuple(self.commitments)
            if not commitments:
                raise InvalidKeyShare("a version's commitments are at least one point")
            for k, point in enumerate(commitments):
                _check_point(point, f"commitment {k}")
            object.__setattr__(self, "commitments", commitments)
        pairs: list[tuple[NodeId, Scalar]] = []
        for pair in self.id_numbers:
            if not isinstance(pair, tuple) or len(pair) != 2:
                raise InvalidKeyShare("id numbers are (node id, scalar) pairs")
            node, number = pair
            if not isinstance(number, Scalar) or number.is_zero():
                raise InvalidKeyShare("an id number must be a nonzero Scalar")
            pairs.append((_check_node_id(node), number))
        if not pairs:
            raise InvalidKeyShare("a key version needs at least one node")
        pairs.sort(key=lambda pair: pair[0])
        if len({node for node, _ in pairs}) != len(pairs):
            raise InvalidKeyShare("node ids of a key version must be distinct")
        if len({number for _, number in pairs}) != len(pairs):
            raise InvalidKeyShare("id numbers of a key version must be distinct")
        object.__setattr__(self, "id_numbers", tuple(pairs))

    @classmethod
    def create(
        cls,
        id_numbers: Mapping[NodeId, Scalar] | Iterable[tuple[NodeId, Scalar]],
        secret_share: Scalar,
        commitments: Iterable[Point] | None = None,
    ) -> KeyShareVersion:
        """A new version whose hash is computed from its id numbers (`version_hash`)."""
        pairs = tuple(id_numbers.items() if isinstance(id_numbers, Mapping) else id_numbers)
        points = None if commitments is None else tuple(commitments)
        version = cls(bytes(32), pairs, secret_share, points)
        return replace(version, hash=version_hash(version.id_numbers))

    @property
    def nodes(self) -> tuple[NodeId, ...]:
        """The nodes holding this version, in ascending node id order."""
        return tuple(node for node, _ in self.id_numbers)

    def id_number(self, node: NodeId) -> Scalar | None:
        """The id number of `node`, or None if it does not hold this version."""
        for candidate, number in self.id_numbers:
            if candidate == node:
                return number
        return None

    def id_numbers_map(self) -> dict[NodeId, Scalar]:
        """A fresh dict node id → id number (insertion order = ascending node id)."""
        return dict(self.id_numbers)

    def __repr__(self) -> str:
        return (
            f"KeyShareVersion(hash=0x{self.hash.hex()}, nodes={len(self.id_numbers)}, "
            f"commitments={self.commitments is not None})"
        )


@dataclass(frozen=True, slots=True, repr=False)
class KeyShare:
    """A node's stored record of one server key (Parity's `DocumentKeyShare`).

    Invariants: `author` is 20 bytes; `threshold` ≥ 0 and below the node count of every
    version; `public` is not the identity; `common_point` and `encrypted_point` are both set
    (a document key is stored) or both None; at least one version; version hashes distinct;
    a version's commitments, when it has them, are ``t+1`` points with ``C_0 = public``.
    Versions are kept oldest first.
    """

    author: Address
    threshold: int
    public: Point
    common_point: Point | None
    encrypted_point: Point | None
    versions: tuple[KeyShareVersion, ...]

    def __post_init__(self) -> None:
        if not isinstance(self.author, bytes) or len(self.author) != 20:
            raise InvalidKeyShare("an author address is 20 bytes")
        if not isinstance(self.threshold, int) or isinstance(self.threshold, bool):
            raise InvalidKeyShare("the threshold must be an int")
        if self.threshold < 0:
            raise InvalidKeyShare("the threshold cannot be negative")
        _check_point(self.public, "the server key public")
        if (self.common_point is None) != (self.encrypted_point is None):
            raise InvalidKeyShare("common_point and encrypted_point are set together")
        if self.common_point is not None:
            _check_point(self.common_point, "common_point")
            _check_point(self.encrypted_point, "encrypted_point")
        versions = tuple(self.versions)
        if not versions:
            raise InvalidKeyShare("a key share needs at least one version")
        for version in versions:
            if not isinstance(version, KeyShareVersion):
                raise InvalidKeyShare("versions must be KeyShareVersion objects")
            if len(version.id_numbers) <= self.threshold:
                raise InvalidKeyShare(
                    f"threshold {self.threshold} needs more than {self.threshold} nodes, "
                    f"version 0x{version.hash.hex()} has {len(version.id_numbers)}"
                )
            commitments = version.commitments
            if commitments is not None:
                if len(commitments) != self.threshold + 1:
                    raise InvalidKeyShare(
                        f"threshold {self.threshold} needs {self.threshold + 1} commitments, "
                        f"version 0x{version.hash.hex()} has {len(commitments)}"
                    )
                if commitments[0] != self.public:
                    raise InvalidKeyShare(
                        f"the first commitment of version 0x{version.hash.hex()} is not the "
                        "server key public"
                    )
        if len({version.hash for version in versions}) != len(versions):
            raise InvalidKeyShare("version hashes must be distinct")
        object.__setattr__(self, "versions", versions)

    @classmethod
    def from_generation(
        cls,
        author: Address,
        threshold: int,
        public: Point,
        id_numbers: Mapping[NodeId, Scalar] | Iterable[tuple[NodeId, Scalar]],
        secret_share: Scalar,
        *,
        commitments: Iterable[Point] | None = None,
    ) -> KeyShare:
        """The share a node stores after key generation: one version (with the key's
        commitments when given), no document key."""
        version = KeyShareVersion.create(id_numbers, secret_share, commitments)
        return cls(author, threshold, public, None, None, (version,))

    def has_document_key(self) -> bool:
        return self.common_point is not None

    def last_version(self) -> KeyShareVersion:
        """The newest version."""
        return self.versions[-1]

    def version(self, hash_: bytes) -> KeyShareVersion | None:
        """The version with this hash, or None if this node does not hold it."""
        for version in reversed(self.versions):
            if version.hash == hash_:
                return version
        return None

    def with_document_key(self, common_point: Point, encrypted_point: Point) -> KeyShare:
        """This share with a document key stored; DocumentKeyAlreadyStored if it has one."""
        if self.has_document_key():
            raise DocumentKeyAlreadyStored("a document key is stored with this server key already")
        return replace(self, common_point=common_point, encrypted_point=encrypted_point)

    def with_version(self, version: KeyShareVersion) -> KeyShare:
        """This share with `version` appended as the newest (InvalidKeyShare if its hash is
        held already or it has too few nodes for the threshold)."""
        return replace(self, versions=(*self.versions, version))

    def __repr__(self) -> str:
        return (
            f"KeyShare(author=0x{self.author.hex()}, threshold={self.threshold}, "
            f"public={self.public!r}, document_key={self.has_document_key()}, "
            f"versions={[f'0x{v.hash.hex()}' for v in self.versions]})"
        )


@dataclass(frozen=True, slots=True, repr=False)
class Tombstone:
    """What a node keeps of a key it erased because its author deleted it: the key id, the
    server key public and author address of the erased record, and the author's bound
    delete signature (crypto/bound.py, operation DELETE_KEY over the key id and public).

    Every node checks a tombstone itself before it acts on one (sessions/admin/delete.py):
    it erases its own record of `key_id` only when the record has this public and this
    author and the signature recovers to the author. A later key generated under the same id
    has another public, so an old tombstone never touches it.
    """

    key_id: ServerKeyId
    public: Point
    author: Address
    signature: bytes

    def __post_init__(self) -> None:
        if not isinstance(self.key_id, bytes) or len(self.key_id) != 32:
            raise InvalidKeyShare("a tombstone's key id is 32 bytes")
        _check_point(self.public, "a tombstone's public")
        if not isinstance(self.author, bytes) or len(self.author) != 20:
            raise InvalidKeyShare("a tombstone's author is 20 bytes")
        if not isinstance(self.signature, bytes) or len(self.signature) != 65:
            raise InvalidKeyShare("a tombstone's signature is 65 bytes r‖s‖v")

    def __repr__(self) -> str:
        return f"Tombstone(key_id=0x{self.key_id.hex()}, author=0x{self.author.hex()})"
