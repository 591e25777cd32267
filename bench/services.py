"""Figures of the service contracts: how long a request takes to be answered, and its gas.

A 3-node cluster (t = 1) of in-process nodes (real TCP mesh, LevelDB) on anvil mining a block
a second (`--block-time`), with the registry, the ACL, the migrating key server set and the
four service contracts; the nodes read the confirmed block `--confirmations` below the latest
(Parity: 3). A client using only the ClientApis (web3.py, in another thread) sends each
request after the previous one's answer: a server key generation, its retrieval, a document
key store, a shadow retrieval (the common event, then t + 1 personal events). Per service:
blocks from the request's block to the answer's, seconds from sending the request to seeing
the answer, and the gas each node's answer used (from the nodes' "answered … gas" lines).

Run: .venv/bin/python bench/services.py [--rounds 3] [--confirmations 3] [--block-time 1]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import re
import statistics
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

from secretstore.chain.devchain import (
    GRANT,
    Anvil,
    DevChain,
    deploy_secret_store,
    deploy_services,
    free_port,
)
from secretstore.chain.services.client import ServiceClient
from secretstore.cli.cluster import render_config
from secretstore.client.helpers import generate_document_key
from secretstore.config.loader import parse_config
from secretstore.config.model import NodeAddress
from secretstore.crypto.curve import Point
from secretstore.crypto.keys import KeyPair
from secretstore.crypto.rng import OsRng, SeededRng
from secretstore.node import Node

GAS = re.compile(r"answered (.+?) of key 0x([0-9a-f]{64}) on .*: (\w+) in block #\d+ .*gas (\d+)\)")


class GasLog(logging.Handler):
    """Collects (service, function) → gas of every answer the nodes log."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.gas: dict[str, list[int]] = defaultdict(list)

    def emit(self, record: logging.LogRecord) -> None:
        match = GAS.search(record.getMessage())
        if match:
            self.gas[match.group(3)].append(int(match.group(4)))


def build_nodes(root: Path, keys: list[KeyPair], options: dict[str, Any]) -> list[Node]:
    ports = [free_port() for _ in range(2 * len(keys))]
    peers = [NodeAddress(k.node_id, "127.0.0.1", ports[i]) for i, k in enumerate(keys)]
    nodes = []
    for i, key in enumerate(keys):
        text = render_config(
            key,
            index=i + 1,
            nodes=peers,
            mesh_port=ports[i],
            http_port=ports[len(keys) + i],
            path=f"db{i}",
            extra=options,
        )
        nodes.append(Node(parse_config(text, root), rng=OsRng()))
    return nodes


def run_loop_in_thread() -> tuple[asyncio.AbstractEventLoop, threading.Thread]:
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    return loop, thread


def timed(
    dev: DevChain, sent_block: int, sent_at: float, wait: Callable[[], Any]
) -> tuple[int, float, Any]:
    answer = wait()
    event = answer[0] if isinstance(answer, tuple) else answer
    last = answer[1][-1] if isinstance(answer, tuple) and answer[1] else event
    return last.block - sent_block, time.monotonic() - sent_at, event


def main(rounds: int, confirmations: int, block_time: int) -> None:
    keys = sorted((KeyPair.generate(OsRng()) for _ in range(3)), key=lambda k: k.node_id)
    alice = KeyPair.generate(SeededRng(b"bench services alice"))
    gas = GasLog()
    logging.getLogger("secretstore.chain.services.contracts").addHandler(gas)
    logging.getLogger("secretstore.chain.services.contracts").setLevel(logging.INFO)
    with tempfile.TemporaryDirectory() as tmp, Anvil(block_time=None) as anvil:
        dev = DevChain(anvil.url)
        members = [(k.node_id, f"127.0.0.1:{9100 + i}") for i, k in enumerate(keys)]
        deployment = deploy_secret_store(dev, members, server_set="OwnedKeyServerSet")
        services = deploy_services(dev, deployment.registry, deployment.server_set)
        dev.fund(alice.address)
        dev.mine_every(block_time)
        options = {
            "log_level": "warning",
            "acl_contract": "registry",
            "server_set_contract": "none",
            "disable_auto_migrate": True,
            "service_contract_srv_gen": "registry",
            "service_contract_srv_retr": "registry",
            "service_contract_doc_store": "registry",
            "service_contract_doc_sretr": "registry",
            "chain_rpc_url": anvil.url,
            "registry_address": "0x" + deployment.registry.hex(),
            "chain_poll_interval": 0.2,
            "chain_confirmations": confirmations,
        }
        nodes = build_nodes(Path(tmp), keys, options)
        loop, _ = run_loop_in_thread()

        async def start() -> None:
            for node in nodes:
                await node.start()
            while not all(node.health().ready for node in nodes):
                await asyncio.sleep(0.05)

        asyncio.run_coroutine_threadsafe(start(), loop).result(60)
        client = ServiceClient(
            anvil.url,
            alice,
            generation=services["secretstore_service_srv_gen"],
            retrieval=services["secretstore_service_srv_retr"],
            store=services["secretstore_service_doc_store"],
            shadow_retrieval=services["secretstore_service_doc_sretr"],
        )
        samples: dict[str, list[tuple[int, float]]] = defaultdict(list)
        try:
            for round_ in range(rounds):
                key_id = bytes([0x90 + round_]) * 32
                dev.transact(deployment.acl, GRANT, alice.address, key_id)
                sent = client.generate_server_key(key_id, 1)
                blocks, seconds, event = timed(
                    dev,
                    sent.block,
                    sent.sent_at,
                    lambda k=key_id, b=sent.block: client.generated(k, b),
                )
                samples["server key generation"].append((blocks, seconds))
                public = Point.from_bytes(bytes(event.args["serverKeyPublic"]))

                sent = client.retrieve_server_key(key_id)
                blocks, seconds, _ = timed(
                    dev,
                    sent.block,
                    sent.sent_at,
                    lambda k=key_id, b=sent.block: client.retrieved(k, b),
                )
                samples["server key retrieval"].append((blocks, seconds))

                generated = generate_document_key(alice, public, OsRng())
                sent = client.store_document_key(
                    key_id, generated.common_point.to_bytes(), generated.encrypted_point.to_bytes()
                )
                blocks, seconds, _ = timed(
                    dev,
                    sent.block,
                    sent.sent_at,
                    lambda k=key_id, b=sent.block: client.stored(k, b),
                )
                samples["document key store"].append((blocks, seconds))

                sent = client.retrieve_document_key_shadow(key_id)
                blocks, seconds, _ = timed(
                    dev,
                    sent.block,
                    sent.sent_at,
                    lambda k=key_id, b=sent.block: client.shadow_retrieved(k, b),
                )
                samples["shadow retrieval (t + 1 personal parts)"].append((blocks, seconds))
            time.sleep(3)  # the last answers' receipts (each node logs its gas then)
        finally:

            async def stop() -> None:
                for node in nodes:
                    await node.stop()

            asyncio.run_coroutine_threadsafe(stop(), loop).result(60)
            loop.call_soon_threadsafe(loop.stop)

    print(
        f"{rounds} rounds, 3 in-process nodes, t = 1, anvil --block-time {block_time}, "
        f"chain_confirmations = {confirmations}"
    )
    print(f"  {'request → answer':42} {'blocks p50':>10} {'seconds p50':>12} {'max s':>7}")
    for name, values in samples.items():
        blocks = statistics.median(b for b, _ in values)
        seconds = [s for _, s in values]
        print(f"  {name:42} {blocks:10.1f} {statistics.median(seconds):12.2f} {max(seconds):7.2f}")
    print(f"  {'answer (per node)':42} {'gas p50':>10} {'gas max':>12} {'count':>7}")
    for function, values in sorted(gas.gas.items()):
        print(
            f"  {function:42} {statistics.median(values):10.0f} {max(values):12d} {len(values):7d}"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--confirmations", type=int, default=3)
    parser.add_argument("--block-time", type=int, default=1)
    args = parser.parse_args()
    main(args.rounds, args.confirmations, args.block_time)
