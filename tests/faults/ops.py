"""Client operations of the fault tests: raw Parity requests with their answers and times."""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from dataclasses import dataclass

import aiohttp

from secretstore.crypto.curve import Point
from secretstore.crypto.document import encrypt_secret
from secretstore.crypto.ecies import ecies_decrypt
from secretstore.crypto.keys import KeyPair, sign_recoverable
from secretstore.crypto.rng import Rng, SeededRng, random_scalar
from tests.faults.cluster import Answer, NetNode, call

REQUESTER = KeyPair.generate(SeededRng(b"fault suite requester"))
#: Parity's texts the fault tests expect
NODE_DISCONNECTED = "node required for this operation is currently disconnected"
CONSENSUS_UNREACHABLE = "Consensus unreachable"


def key_id_of(label: str | int) -> bytes:
    return (str(label).encode() * 32)[:32] if isinstance(label, str) else label.to_bytes(32, "big")


def signature_of(key_id: bytes, requester: KeyPair = REQUESTER) -> str:
    return sign_recoverable(requester.secret, key_id).hex()


def public_of(answer: Answer) -> Point:
    return Point.from_bytes(bytes.fromhex(json.loads(answer.body)[2:]))


async def generate(
    session: aiohttp.ClientSession, node: NetNode, key_id: bytes, threshold: int = 1
) -> Answer:
    url = f"{node.url}/shadow/{key_id.hex()}/{signature_of(key_id)}/{threshold}"
    return await call(session, "POST", url)


async def store(
    session: aiohttp.ClientSession,
    node: NetNode,
    key_id: bytes,
    public: Point,
    secret: Point,
    rng: Rng,
) -> Answer:
    encrypted = encrypt_secret(secret, public, rng)
    common = encrypted.common_point.to_bytes().hex()
    point = encrypted.encrypted_point.to_bytes().hex()
    url = f"{node.url}/shadow/{key_id.hex()}/{signature_of(key_id)}/{common}/{point}"
    return await call(session, "POST", url)


async def retrieve(
    session: aiohttp.ClientSession, node: NetNode, key_id: bytes
) -> tuple[Answer, Point | None]:
    """Plain retrieval: the answer and the document key it carries (None when it failed)."""
    answer = await call(session, "GET", f"{node.url}/{key_id.hex()}/{signature_of(key_id)}")
    if not answer.ok:
        return answer, None
    cipher = bytes.fromhex(json.loads(answer.body)[2:])
    return answer, Point.from_bytes(ecies_decrypt(REQUESTER.secret, cipher))


@dataclass
class StoredKey:
    key_id: bytes
    secret: Point


async def create(
    session: aiohttp.ClientSession, node: NetNode, key_id: bytes, rng: Rng
) -> tuple[Answer, StoredKey | None]:
    """Generate a server key and store a fresh document key with it; the key when both were
    acknowledged (200), else the failing answer."""
    answer = await generate(session, node, key_id)
    if not answer.ok:
        return answer, None
    secret = Point.base_mul(random_scalar(rng))
    stored = await store(session, node, key_id, public_of(answer), secret, rng)
    if not stored.ok:
        return stored, None
    return stored, StoredKey(key_id, secret)


_labels = itertools.count(1)


def fresh_key(prefix: str) -> bytes:
    """A key id no test of this run used before."""
    return key_id_of(f"{prefix}-{next(_labels)}-")


async def until_generation_succeeds(
    session: aiohttp.ClientSession, node: NetNode, timeout: float = 60.0
) -> float:
    """Seconds until a generation at `node` answers 200 (one attempt at a time)."""
    began = time.monotonic()
    while True:
        answer = await generate(session, node, fresh_key("until"))
        if answer.ok:
            return time.monotonic() - began
        assert time.monotonic() - began < timeout, answer
        await asyncio.sleep(0.1)
