"""The async driver and the key server over the in-memory transport: every user operation,
each node keeping its audit log (in memory)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest

from secretstore.audit.chain import verify_log
from secretstore.audit.model import Operation
from secretstore.audit.receipts import NodeSigner
from secretstore.audit.recorder import AuditRecorder
from secretstore.audit.store import MemoryAuditStore
from secretstore.cluster.access import AllowAll
from secretstore.cluster.driver import ClusterDriver
from secretstore.cluster.presigner import Presigner
from secretstore.crypto.curve import Point, Scalar
from secretstore.crypto.document import decrypt_with_shadow_coefficients, encrypt_secret
from secretstore.crypto.ecies import ecies_decrypt
from secretstore.crypto.keys import KeyPair, recover_public, sign_recoverable
from secretstore.crypto.rng import SeededRng
from secretstore.crypto.schnorr import SchnorrSignature, verify_schnorr_signature
from secretstore.errors import (
    AccessDenied,
    AuditLogError,
    ConsensusUnreachable,
    DocumentKeyAlreadyStored,
    DocumentKeyNotFound,
    InvalidRequest,
    ProtocolViolation,
    ServerKeyAlreadyGenerated,
    ServerKeyNotFound,
    SessionTimeout,
    StorageError,
)
from secretstore.keyserver import KeyServer
from secretstore.mesh.memory import MemoryNetwork
from secretstore.sessions import decryption
from secretstore.sessions.base import SessionContext, short
from secretstore.sessions.core import NodeCore
from secretstore.sessions.presign import PresignPool
from secretstore.sessions.registry import MASTERS, SLAVES
from secretstore.storage.memory import MemoryKeyStorage
from secretstore.storage.model import KeyShare
from secretstore.types import Address, BlockRef, MessageHash, NodeId, ServerKeyId
from secretstore.wire import codec
from secretstore.wire.decryption import DecryptionRequest


@dataclass
class MemoryNode:
    key: KeyPair
    storage: MemoryKeyStorage
    driver: ClusterDriver
    server: KeyServer
    audit: MemoryAuditStore
    presigner: Presigner | None = None


class DenyList:
    def __init__(self, denied: set[Address]) -> None:
        self.denied = denied

    def pin(self) -> BlockRef | None:
        return None

    async def check(
        self, requester: Address, key_id: ServerKeyId, block: BlockRef | None = None
    ) -> bool:
        return requester not in self.denied

    def known(
        self, requester: Address, key_id: ServerKeyId, block: BlockRef | None = None
    ) -> bool | None:
        return None  # answered through `check`, as a contract would


async def make_cluster(
    n: int,
    seed: int = 1,
    denied: set[Address] | None = None,
    session_timeout: float = 5.0,
    presignatures: int = 0,
) -> tuple[MemoryNetwork, list[MemoryNode]]:
    rng = SeededRng(seed)
    keys = [KeyPair.generate(rng) for _ in range(n)]
    ids = frozenset(k.node_id for k in keys)
    network = MemoryNetwork(ids, rng=SeededRng(seed + 1))
    nodes = []
    for i, key in enumerate(keys):
        storage = MemoryKeyStorage()
        signer = NodeSigner(key)
        audit = MemoryAuditStore()
        pool = PresignPool(key.node_id, depth=presignatures) if presignatures else None
        ctx = SessionContext(
            key.node_id, SeededRng(seed * 100 + i), ids, audit=signer, presigns=pool
        )
        core = NodeCore(ctx, storage, MASTERS, SLAVES)
        transport = network.transport(key.node_id)
        access = DenyList(denied) if denied is not None else AllowAll()
        driver = ClusterDriver(
            core,
            transport,
            storage,
            access,
            session_timeout=session_timeout,
            audit=AuditRecorder(audit, signer),
        )
        transport.set_handler(driver)
        presigner = Presigner(driver, pool) if pool is not None else None
        server = KeyServer(
            driver,
            n,
            SeededRng(seed * 1000 + i),
            ecdsa_signed=presigner.used if presigner is not None else None,
        )
        nodes.append(MemoryNode(key, storage, driver, server, audit, presigner))
    for node in nodes:
        await network.transport(node.key.node_id).start()
    for _ in range(100):
        if all(len(network.transport(x).connected()) == n - 1 for x in ids):
            break
        await asyncio.sleep(0.001)
    return network, nodes


@pytest.fixture
async def cluster() -> AsyncIterator[tuple[MemoryNetwork, list[MemoryNode]]]:
    network, nodes = await make_cluster(3)
    yield network, nodes
    for node in nodes:
        await node.driver.close()


REQUESTER = KeyPair.generate(SeededRng(77))
OTHER = KeyPair.generate(SeededRng(78))


def key_id(i: int) -> ServerKeyId:
    return ServerKeyId(i.to_bytes(32, "big"))


def sig(key: KeyPair, kid: ServerKeyId) -> bytes:
    return sign_recoverable(key.secret, kid)


async def test_every_operation_end_to_end(cluster: tuple[MemoryNetwork, list[MemoryNode]]) -> None:
    _, nodes = cluster
    kid = key_id(1)
    s = sig(REQUESTER, kid)
    public = await nodes[0].server.generate_server_key(kid, s, 1)
    for node in nodes:
        share = node.storage.get(kid)
        assert share is not None and share.public == public and share.threshold == 1
    assert await nodes[2].server.retrieve_server_key(kid, s) == public

    document_key = KeyPair.generate(SeededRng(5)).public
    enc = encrypt_secret(document_key, public, SeededRng(6))
    await nodes[1].server.store_document_key(kid, s, enc.common_point, enc.encrypted_point)
    with pytest.raises(DocumentKeyAlreadyStored):
        await nodes[2].server.store_document_key(kid, s, enc.common_point, enc.encrypted_point)

    for node in nodes:
        encrypted = (await node.server.retrieve_document_key(kid, s)).encrypted
        assert Point.from_bytes(ecies_decrypt(REQUESTER.secret, encrypted)) == document_key
        shadow = await node.server.retrieve_document_key_shadow(kid, s)
        coefficients = [
            Scalar.from_bytes(ecies_decrypt(REQUESTER.secret, e)) for e in shadow.decrypt_shadows
        ]
        assert len(coefficients) == 2
        got = decrypt_with_shadow_coefficients(
            shadow.decrypted_secret, shadow.common_point, coefficients
        )
        assert got == document_key

    message = MessageHash(b"\x42" * 32)
    schnorr = (await nodes[0].server.sign_schnorr(kid, s, message)).encrypted
    signature = SchnorrSignature.from_bytes(ecies_decrypt(REQUESTER.secret, schnorr))
    assert verify_schnorr_signature(public, signature, message)


async def test_ecdsa_needs_two_t_plus_one_and_recovers_to_the_key() -> None:
    _, nodes = await make_cluster(3, seed=3)
    kid = key_id(2)
    s = sig(REQUESTER, kid)
    public = await nodes[0].server.generate_server_key(kid, s, 1)
    message = MessageHash(b"\x17" * 32)
    encrypted = (await nodes[1].server.sign_ecdsa(kid, s, message)).encrypted
    signature = ecies_decrypt(REQUESTER.secret, encrypted)
    assert len(signature) == 65
    assert recover_public(signature, message) == public


async def test_server_side_document_key_generation(
    cluster: tuple[MemoryNetwork, list[MemoryNode]],
) -> None:
    _, nodes = cluster
    kid = key_id(3)
    s = sig(REQUESTER, kid)
    encrypted = await nodes[0].server.generate_document_key(kid, s, 1)
    document_key = Point.from_bytes(ecies_decrypt(REQUESTER.secret, encrypted))
    again = (await nodes[1].server.retrieve_document_key(kid, s)).encrypted
    assert Point.from_bytes(ecies_decrypt(REQUESTER.secret, again)) == document_key


async def test_client_errors(cluster: tuple[MemoryNetwork, list[MemoryNode]]) -> None:
    _, nodes = cluster
    kid = key_id(4)
    s = sig(REQUESTER, kid)
    with pytest.raises(InvalidRequest):
        await nodes[0].server.generate_server_key(kid, s, 3)  # t must be < N
    with pytest.raises(ServerKeyNotFound):
        await nodes[0].server.retrieve_document_key(kid, s)
    await nodes[0].server.generate_server_key(kid, s, 1)
    with pytest.raises(ServerKeyAlreadyGenerated):
        await nodes[1].server.generate_server_key(kid, s, 1)
    with pytest.raises(DocumentKeyNotFound):
        await nodes[1].server.retrieve_document_key(kid, s)
    with pytest.raises(InvalidRequest):
        await nodes[1].server.retrieve_document_key(kid, b"\x00" * 65)
    # only the author may store a document key
    other_sig = sig(OTHER, kid)
    point = KeyPair.generate(SeededRng(9)).public
    with pytest.raises(AccessDenied):
        await nodes[2].server.store_document_key(kid, other_sig, point, point)
    for node in nodes:
        assert not node.storage.get(kid).has_document_key()  # type: ignore[union-attr]


async def test_access_denied_by_policy() -> None:
    _, nodes = await make_cluster(3, seed=4, denied={OTHER.address})
    kid = key_id(5)
    await nodes[0].server.generate_document_key(kid, sig(REQUESTER, kid), 1)
    with pytest.raises(AccessDenied):
        await nodes[0].server.retrieve_document_key(kid, sig(OTHER, kid))


async def test_one_node_down_generation_fails_retrieval_goes_on() -> None:
    network, nodes = await make_cluster(3, seed=5)
    kid = key_id(6)
    s = sig(REQUESTER, kid)
    encrypted = await nodes[0].server.generate_document_key(kid, s, 1)
    document_key = Point.from_bytes(ecies_decrypt(REQUESTER.secret, encrypted))
    network.isolate(nodes[2].key.node_id)
    await asyncio.sleep(0.01)
    got = (await nodes[0].server.retrieve_document_key(kid, s)).encrypted
    assert Point.from_bytes(ecies_decrypt(REQUESTER.secret, got)) == document_key
    with pytest.raises(ConsensusUnreachable):
        await nodes[0].server.generate_server_key(key_id(7), sig(REQUESTER, key_id(7)), 1)
    network.heal_all()


async def test_concurrent_sessions_of_different_keys() -> None:
    _, nodes = await make_cluster(3, seed=6)
    kids = [key_id(100 + i) for i in range(12)]
    publics = await asyncio.gather(
        *(
            nodes[i % 3].server.generate_server_key(k, sig(REQUESTER, k), 1)
            for i, k in enumerate(kids)
        )
    )
    assert len(set(publics)) == len(kids)
    results = await asyncio.gather(
        *(
            nodes[(i + 1) % 3].server.retrieve_server_key(k, sig(REQUESTER, k))
            for i, k in enumerate(kids)
        )
    )
    assert list(results) == list(publics)


async def test_a_node_silent_towards_a_slave_is_named_as_slave_clocks_run_out_first() -> None:
    # node 2 sends nothing to node 1 (the link stays up): node 1 waits for node 2's DKG keys,
    # node 2 and the master for node 1's share proof. The slaves' clocks run out first, each
    # reports the node it waited for, and the master's error carries node 1's report; with
    # the master's clock first it would name only node 1.
    network, nodes = await make_cluster(3, seed=9, session_timeout=0.5)
    ids = [node.key.node_id for node in nodes]
    network.set_drop_rate(ids[2], ids[1], 1.0)
    kid = key_id(9)
    with pytest.raises(SessionTimeout) as info:
        await nodes[0].server.generate_server_key(kid, sig(REQUESTER, kid), 1)
    assert info.value.node == short(ids[1])
    assert f"node {short(ids[1])} timed out first: node {short(ids[2])}" in str(info.value)
    for node in nodes:
        await node.driver.close()


class FailingStorage(MemoryKeyStorage):
    """A store whose writes fail, as a full or broken disk would."""

    def insert(self, key_id: ServerKeyId, share: KeyShare) -> None:
        raise StorageError("disk full")

    def update(self, key_id: ServerKeyId, share: KeyShare) -> None:
        raise StorageError("disk full")


@pytest.mark.parametrize("failing", [0, 2])  # the master's disk, or a slave's
async def test_a_failed_write_ends_the_session_at_once_not_at_its_timeout(failing: int) -> None:
    _network, nodes = await make_cluster(3, seed=8)
    broken = nodes[failing]
    broken.driver.storage = FailingStorage()
    kid = key_id(8)
    started = asyncio.get_running_loop().time()
    with pytest.raises((StorageError, ProtocolViolation)):
        await nodes[0].server.generate_server_key(kid, sig(REQUESTER, kid), 1)
    assert asyncio.get_running_loop().time() - started < 1.0  # the session timeout is 5 s
    await asyncio.sleep(0.05)
    for node in nodes:
        assert len(node.driver.core) == 0  # no session is left waiting anywhere


# --- the audit log ----------------------------------------------------------------------------


def _log_of(node: MemoryNode) -> list[tuple[Operation, bytes]]:
    report = verify_log(node.audit.records(), node.key.node_id)
    assert report.ok, report.problems
    return [(item.entry.facts.operation, item.entry.facts.key_id) for item in report.entries]


async def test_every_node_logs_what_it_took_part_in(
    cluster: tuple[MemoryNetwork, list[MemoryNode]],
) -> None:
    _, nodes = cluster
    kid = key_id(11)
    s = sig(REQUESTER, kid)
    public = await nodes[0].server.generate_server_key(kid, s, 1)
    enc = encrypt_secret(KeyPair.generate(SeededRng(5)).public, public, SeededRng(6))
    await nodes[1].server.store_document_key(kid, s, enc.common_point, enc.encrypted_point)
    for node in nodes:
        assert _log_of(node) == [(Operation.GENERATION, kid), (Operation.STORE, kid)]
    shadow = await nodes[2].server.retrieve_document_key_shadow(kid, s)
    signed = await nodes[0].server.sign_schnorr(kid, s, MessageHash(b"\x42" * 32))
    for released, operation in ((shadow, Operation.SHADOW_RETRIEVAL), (signed, Operation.SCHNORR)):
        receipts = released.receipts
        assert receipts is not None and receipts.facts.operation is operation
        for node in nodes:
            entries = _log_of(node)
            took_part = node.key.node_id in receipts.facts.participants
            assert ((operation, kid) in entries) == took_part


async def test_a_master_that_cannot_log_releases_nothing(
    cluster: tuple[MemoryNetwork, list[MemoryNode]],
) -> None:
    _, nodes = cluster
    kid = key_id(12)
    s = sig(REQUESTER, kid)
    public = await nodes[0].server.generate_server_key(kid, s, 1)
    enc = encrypt_secret(KeyPair.generate(SeededRng(5)).public, public, SeededRng(6))
    await nodes[0].server.store_document_key(kid, s, enc.common_point, enc.encrypted_point)
    before = len(_log_of(nodes[0]))
    nodes[0].audit.fail = "No space left on device"
    with pytest.raises(AuditLogError, match="No space left on device; nothing was released"):
        await nodes[0].server.retrieve_document_key_shadow(kid, s)
    with pytest.raises(AuditLogError, match="could not write audit entry"):
        await nodes[0].server.sign_ecdsa(kid, s, MessageHash(b"\x43" * 32))
    with pytest.raises(AuditLogError):
        await nodes[0].server.generate_server_key(key_id(13), sig(REQUESTER, key_id(13)), 1)
    assert len(_log_of(nodes[0])) == before
    for node in nodes:  # the refused generation stored nowhere
        assert node.storage.get(key_id(13)) is None
    nodes[0].audit.fail = None
    assert (await nodes[0].server.retrieve_document_key_shadow(kid, s)).receipts is not None


async def test_a_member_that_cannot_log_is_replaced_and_releases_nothing(
    cluster: tuple[MemoryNetwork, list[MemoryNode]],
) -> None:
    _, nodes = cluster
    kid = key_id(14)
    s = sig(REQUESTER, kid)
    public = await nodes[0].server.generate_server_key(kid, s, 1)
    enc = encrypt_secret(KeyPair.generate(SeededRng(5)).public, public, SeededRng(6))
    await nodes[0].server.store_document_key(kid, s, enc.common_point, enc.encrypted_point)
    broken = nodes[2]
    before = len(_log_of(broken))
    broken.audit.fail = "Input/output error"
    for i in range(4):
        shadow = await nodes[0].server.retrieve_document_key_shadow(kid, s)
        signed = await nodes[1].server.sign_schnorr(kid, s, MessageHash(bytes([i]) * 32))
        for released in (shadow, signed):
            assert released.receipts is not None
            assert broken.key.node_id not in released.receipts.facts.participants
    assert len(_log_of(broken)) == before


async def test_a_known_access_answer_comes_after_the_requests_left(
    cluster: tuple[MemoryNetwork, list[MemoryNode]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """With a policy that knows its answer at once ("none") no task waits for it, and the
    master computes its own part only after its requests to the group are out: the members
    work meanwhile."""
    network, nodes = cluster
    kid = key_id(11)
    s = sig(REQUESTER, kid)
    public = await nodes[0].server.generate_server_key(kid, s, 1)
    enc = encrypt_secret(KeyPair.generate(SeededRng(9)).public, public, SeededRng(10))
    await nodes[0].server.store_document_key(kid, s, enc.common_point, enc.encrypted_point)
    events: list[str] = []
    master = nodes[0].key.node_id
    transport = network.transport(master)
    real_send, real_compute = transport.send, decryption.compute_job_response

    def send(node: NodeId, payload: bytes) -> bool:
        if isinstance(codec.decode(payload), DecryptionRequest):
            events.append("request sent")
        return real_send(node, payload)

    def compute(ctx: SessionContext, *args: object, **kwargs: object) -> object:
        if ctx.self_id == master:
            events.append("own part")
            assert not nodes[0].driver._tasks  # the answer was known: nothing awaited it
        return real_compute(ctx, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(transport, "send", send)
    monkeypatch.setattr(decryption, "compute_job_response", compute)
    await nodes[0].server.retrieve_document_key_shadow(kid, s)
    assert events == ["request sent", "own part"]


async def test_after_a_signing_the_next_one_uses_a_presignature() -> None:
    """The presigner tops the master's pool up after an ECDSA signing; the next signing from
    that master then takes one round trip (no nonce generation) and still verifies."""
    network, nodes = await make_cluster(3, seed=5, presignatures=2)
    try:
        kid = key_id(12)
        s = sig(REQUESTER, kid)
        public = await nodes[0].server.generate_server_key(kid, s, 1)
        message = MessageHash(b"\x31" * 32)
        await nodes[0].server.sign_ecdsa(kid, s, message)  # no presignature yet: fresh nonces
        presigner = nodes[0].presigner
        assert presigner is not None
        for _ in range(500):
            if not presigner.busy:
                break
            await asyncio.sleep(0.01)
        assert presigner.made == 2 and presigner.failed == 0
        kinds: list[str] = []
        transport = network.transport(nodes[0].key.node_id)
        real_send = transport.send

        def send(node: NodeId, payload: bytes) -> bool:
            kinds.append(type(codec.decode(payload)).__name__)
            return real_send(node, payload)

        transport.send = send  # type: ignore[method-assign]
        other = MessageHash(b"\x32" * 32)
        encrypted = (await nodes[0].server.sign_ecdsa(kid, s, other)).encrypted
        transport.send = real_send  # type: ignore[method-assign]
        signature = ecies_decrypt(REQUESTER.secret, encrypted)
        assert recover_public(signature, other) == public
        assert "SigningNonceMessage" not in kinds and "SigningNonceRequest" not in kinds
        assert kinds.count("EcdsaSigningRequest") == 2  # the presignature's two members
    finally:
        for node in nodes:
            if node.presigner is not None:
                await node.presigner.close()
            await node.driver.close()
