"""The presigner's policy with a runner that makes presignatures by hand: it waits for the
signings to pause, tops each key up to the pool's depth, and stops a key on a failure."""

from __future__ import annotations

import asyncio
from typing import Any

from secretstore.cluster.presigner import Presigner
from secretstore.crypto.curve import ONE
from secretstore.crypto.keys import KeyPair
from secretstore.crypto.rng import SeededRng
from secretstore.errors import ConsensusUnreachable
from secretstore.sessions.presign import Presignature, PresignPool
from secretstore.sessions.signing_presign import Presign
from secretstore.types import ServerKeyId, SessionId

ME = KeyPair.generate(SeededRng(1)).node_id
KEY = ServerKeyId(b"\x05" * 32)


class Runner:
    def __init__(self, pool: PresignPool, fail: bool = False) -> None:
        self.pool = pool
        self.fail = fail
        self.asked: list[tuple[float, ServerKeyId]] = []

    async def request(self, request: Any) -> Any:
        assert isinstance(request, Presign)
        self.asked.append((asyncio.get_running_loop().time(), request.key_id))
        if self.fail:
            raise ConsensusUnreachable("a holder is away")
        number = len(self.asked)
        made = Presignature(
            SessionId(number.to_bytes(32, "big")), ME, request.key_id, b"\x01" * 32, (ME,), (),
            inversed_nonce_coeff=ONE,
        )  # fmt: skip
        self.pool.put(made)
        return made


async def test_it_waits_for_the_signings_to_pause_then_tops_up() -> None:
    pool = PresignPool(ME, depth=3)
    runner = Runner(pool)
    presigner = Presigner(runner, pool, idle=0.05)
    loop = asyncio.get_running_loop()
    started = loop.time()
    presigner.used(KEY)
    await asyncio.sleep(0.02)
    presigner.used(KEY)  # another signing: the pause starts again
    await asyncio.sleep(0.03)
    assert runner.asked == []  # 0.05 s have not passed since the last signing
    for _ in range(100):
        if not presigner.busy:
            break
        await asyncio.sleep(0.01)
    assert pool.count(KEY) == 3 and presigner.made == 3
    assert runner.asked[0][0] - started >= 0.07
    await presigner.close()


async def test_a_failure_stops_the_key_until_its_next_signing() -> None:
    pool = PresignPool(ME, depth=2)
    runner = Runner(pool, fail=True)
    presigner = Presigner(runner, pool, idle=0.0)
    presigner.used(KEY)
    for _ in range(100):
        if not presigner.busy:
            break
        await asyncio.sleep(0.01)
    assert presigner.failed == 1 and len(runner.asked) == 1
    runner.fail = False
    presigner.used(KEY)
    for _ in range(100):
        if not presigner.busy:
            break
        await asyncio.sleep(0.01)
    assert pool.count(KEY) == 2
    await presigner.close()
    presigner.used(KEY)  # closed: nothing starts
    assert not presigner.busy
