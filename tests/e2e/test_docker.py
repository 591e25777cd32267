"""The Docker image and the compose cluster, for real: a dockerd of the test's own, the image
built from the Dockerfile on a base made here (no registry is reachable: scripts/make-base-image
makes Debian bookworm's python3 with mmdebstrap, cached by content), then docker-compose.yml's
3-node cluster from scripts/compose-configs, a document key stored and retrieved through it
with the project's client, a snapshot of a running node's database copied out of its container
(scripts/snapshot-node --container), a restart that keeps the keys on the volumes, and
`down -v`; and the `chain` profile: the dev chain in a container (anvil from npm on the same
local base, as scripts/make-anvil-image makes it), the contracts deployed by
`compose-configs --chain`, and the three nodes serving a key only once the ACL contract grants it.

Installs docker.io, docker-compose and mmdebstrap with apt-get when they are missing. The
figures (base image, build, image size, start-up) are printed at the end of the run.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from secretstore.chain.devchain import DEPLOYMENT_NAME, GRANT, DevChain
from secretstore.client.http_client import SyncKeyServerClient, requester_from_secret
from secretstore.crypto.rng import SeededRng
from secretstore.errors import AccessDenied
from secretstore.storage.snapshot import verify_snapshot
from secretstore.types import Address
from tests.e2e.cluster import free_ports, free_ranges, http, wait_until
from tests.e2e.system import FIGURES, ROOT, Docker, running_dockerd

pytestmark = [pytest.mark.e2e, pytest.mark.docker, pytest.mark.slow]

CONFIG_IN_IMAGE = "/etc/secretstore/node.toml"


@pytest.fixture(scope="module")
def docker() -> Iterator[Docker]:
    with running_dockerd() as daemon:
        yield daemon


@pytest.fixture(scope="module")
def image(docker: Docker) -> str:
    started = time.monotonic()
    made = subprocess.run(
        [str(ROOT / "scripts" / "make-base-image")],
        capture_output=True,
        text=True,
        env=docker.env,
        timeout=900,
        check=False,
    )
    assert made.returncode == 0, made.stderr
    base = made.stdout.strip().splitlines()[-1]
    built_base = "building" in made.stderr
    FIGURES.append(
        (
            "base image "
            + ("built (mmdebstrap) and imported" if built_base else "imported from cache"),
            f"{time.monotonic() - started:.1f} s ({base})",
        )
    )
    tag = f"secretstore:test-{os.getpid()}"
    started = time.monotonic()
    docker.run(
        "build",
        "--network",
        "host",
        "--build-arg",
        f"BASE_IMAGE={base}",
        "-t",
        tag,
        ".",
        timeout=900,
    )
    FIGURES.append(("image build (pip from PyPI)", f"{time.monotonic() - started:.1f} s"))
    size = int(docker.run("image", "inspect", "-f", "{{.Size}}", tag).stdout)
    FIGURES.append(("image size", f"{size / 1e6:.0f} MB"))
    return tag


def test_the_image_runs_the_node_unprivileged_with_a_health_check(
    docker: Docker, image: str, tmp_path: Path
) -> None:
    config = json.loads(docker.run("image", "inspect", image).stdout)[0]["Config"]
    assert config["User"] == "10001:10001"
    assert config["Entrypoint"] == ["secretstore-node"]
    assert config["Cmd"] == ["--config", CONFIG_IN_IMAGE]
    assert "/var/lib/secretstore" in config["Volumes"]
    assert config["Healthcheck"]["Test"] == [
        "CMD",
        "secretstore",
        "health",
        "--config",
        CONFIG_IN_IMAGE,
    ]
    version = docker.run("run", "--rm", image, "--version")
    assert version.stdout.strip() == "secretstore-node 0.1.0"
    whoami = docker.run("run", "--rm", "--entrypoint", "id", image)
    assert whoami.stdout.startswith("uid=10001(secretstore) gid=10001")
    # A mounted config with a mistake: the node says which key, and exits 2.
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "node.toml").write_text('[secretstore]\nport = "twelve thousand"\n')
    (tmp_path / "bad" / "node.toml").chmod(0o644)
    bad = docker.run(
        "run",
        "--rm",
        "--network",
        "host",
        "-v",
        f"{tmp_path / 'bad'}:/etc/secretstore:ro",
        image,
        check=False,
    )
    assert bad.returncode == 2
    assert "bad config: secretstore.port: expected an integer, got a string" in bad.stderr


def _health_states(docker: Docker, project: str) -> list[str]:
    names = [f"{project}_node{i}_1" for i in (1, 2, 3)]
    answer = docker.run("inspect", "-f", "{{.State.Health.Status}}", *names, check=False)
    return answer.stdout.split()


def test_the_compose_cluster_stores_and_returns_a_document_key(
    docker: Docker, image: str, tmp_path: Path
) -> None:
    mesh, http_base = free_ranges(3)
    configs = tmp_path / "configs"
    project = f"sstest{os.getpid()}"
    env = {
        "SECRETSTORE_CONFIGS": str(configs),
        "SECRETSTORE_IMAGE": image,
        "COMPOSE_PROJECT_NAME": project,
        "MESH_PORT": str(mesh),
        "HTTP_PORT": str(http_base),
    }
    made = subprocess.run(
        [str(ROOT / "scripts" / "compose-configs")],
        capture_output=True,
        text=True,
        env={**docker.env, **env},
        timeout=120,
        check=False,
    )
    assert made.returncode == 0, made.stderr
    urls = [f"http://127.0.0.1:{http_base + i}" for i in range(3)]

    def ready() -> bool:
        answers = [http("GET", f"{url}/health", timeout=2) for url in urls]
        return all(status == 200 and body["ready"] for status, body in answers)

    def logs() -> str:
        return docker.compose_run("logs", "--no-color", "--tail", "30", env=env, check=False).stdout

    started = time.monotonic()
    try:
        docker.compose_run("up", "-d", "--no-build", env=env)
        up = time.monotonic() - started
        wait_until(ready, 60, "the compose cluster to be ready", logs())
        FIGURES.append(
            ("compose up / every node ready", f"{up:.1f} s / {time.monotonic() - started:.1f} s")
        )
        wait_until(
            lambda: _health_states(docker, project) == ["healthy"] * 3,
            60,
            "docker to report every container healthy",
            docker.run(
                "inspect", "-f", "{{json .State.Health}}", f"{project}_node1_1", check=False
            ).stdout,
        )
        FIGURES.append(
            (
                "node containers start to healthy (health check)",
                f"{time.monotonic() - started:.1f} s",
            )
        )
        for i in (1, 2, 3):
            status = docker.run("exec", f"{project}_node{i}_1", "cat", "/proc/1/status").stdout
            assert any(line.split()[:2] == ["Uid:", "10001"] for line in status.splitlines())
            mode = docker.run(
                "exec", f"{project}_node{i}_1", "stat", "-c", "%a %u", "/var/lib/secretstore/db"
            )
            assert mode.stdout.split() == ["700", "10001"]

        requester = requester_from_secret(SeededRng(b"compose requester").random_bytes(32))
        key_id = bytes.fromhex("c0" * 32)
        document = b"stored through a compose cluster"
        with SyncKeyServerClient(urls[0], rng=SeededRng(1)) as client:
            encrypted = client.encrypt_document(key_id, requester, 1, document)
        with SyncKeyServerClient(urls[2]) as client:
            assert client.decrypt_document(key_id, requester, encrypted) == document  # shadow

        # A snapshot of a running node's database, made in its container and copied out.
        snapshot = tmp_path / "node1-snapshot"
        copied = subprocess.run(
            [
                str(ROOT / "scripts" / "snapshot-node"),
                *("--container", f"{project}_node1_1", "--out", str(snapshot)),
            ],
            capture_output=True,
            text=True,
            env=docker.env,
            timeout=120,
            check=False,
        )
        assert copied.returncode == 0, copied.stderr
        assert ": 1 key, " in copied.stdout and "verified" in copied.stdout, copied.stdout
        assert stat.S_IMODE(snapshot.stat().st_mode) == 0o700
        assert verify_snapshot(snapshot) == 1
        listing = docker.run("exec", f"{project}_node1_1", "ls", "-a", "/var/lib/secretstore")
        assert not [name for name in listing.stdout.split() if name.startswith(".snapshot")]

        # The keys live on the volumes: down (keeping them) and up again, still there.
        docker.compose_run("down", env=env, timeout=120)
        restarted = time.monotonic()
        docker.compose_run("up", "-d", "--no-build", env=env)
        wait_until(ready, 60, "the cluster to be ready again", logs())
        FIGURES.append(("compose restart to ready", f"{time.monotonic() - restarted:.1f} s"))
        with SyncKeyServerClient(urls[1]) as client:
            assert client.decrypt_document(key_id, requester, encrypted) == document
            # the configs' policy: no node computes a document key (plain retrieval refused)
            with pytest.raises(AccessDenied, match="plain document key retrieval"):
                client.decrypt_document(key_id, requester, encrypted, shadow=False)
    finally:
        docker.compose_run("down", "-v", env=env, timeout=180, check=False)
    volumes = docker.run("volume", "ls", "-q").stdout.split()
    assert not [v for v in volumes if v.startswith(project)]
    FIGURES.append(("compose test in all", f"{time.monotonic() - started:.1f} s"))


@pytest.fixture(scope="module")
def anvil_image(docker: Docker, image: str) -> str:
    started = time.monotonic()
    made = subprocess.run(
        [str(ROOT / "scripts" / "make-anvil-image")],
        capture_output=True,
        text=True,
        env=docker.env,
        timeout=300,
        check=False,
    )
    assert made.returncode == 0, made.stderr
    FIGURES.append(
        ("anvil image (local base + npm's anvil)", f"{time.monotonic() - started:.1f} s")
    )
    return made.stdout.strip().splitlines()[-1]


def test_the_compose_chain_profile_serves_keys_as_the_acl_contract_allows(
    docker: Docker, image: str, anvil_image: str, tmp_path: Path
) -> None:
    mesh, http_base = free_ranges(3)
    [chain_port] = free_ports(1)
    configs = tmp_path / "configs"
    project = f"sschain{os.getpid()}"
    env = {
        "SECRETSTORE_CONFIGS": str(configs),
        "SECRETSTORE_IMAGE": image,
        "ANVIL_IMAGE": anvil_image,
        "COMPOSE_PROJECT_NAME": project,
        "MESH_PORT": str(mesh),
        "HTTP_PORT": str(http_base),
        "CHAIN_PORT": str(chain_port),
    }
    urls = [f"http://127.0.0.1:{http_base + i}" for i in range(3)]

    def chains() -> list[dict[str, Any]]:
        """Every node's chain state when it is ready ({} when not, or not answering)."""
        answers = [http("GET", f"{url}/health", timeout=2) for url in urls]
        return [
            body["chain"] if status == 200 and body.get("ready") else {} for status, body in answers
        ]

    def logs() -> str:
        answer = docker.compose_run(
            "--profile", "chain", "logs", "--no-color", "--tail", "30", env=env, check=False
        )
        return answer.stdout

    started = time.monotonic()
    try:
        docker.compose_run("--profile", "chain", "up", "-d", "--no-build", "chain", env=env)
        made = subprocess.run(
            [str(ROOT / "scripts" / "compose-configs"), "--chain"],
            capture_output=True,
            text=True,
            env={**docker.env, **env},
            timeout=120,
            check=False,
        )
        assert made.returncode == 0, made.stderr
        assert "contracts deployed" in made.stdout
        docker.compose_run("--profile", "chain", "up", "-d", "--no-build", env=env)
        wait_until(
            lambda: all(chain.get("trusted") for chain in chains()),
            90,
            "the nodes to be ready on the chain's key server set",
            logs(),
        )
        FIGURES.append(("compose chain profile up to ready", f"{time.monotonic() - started:.1f} s"))

        requester = requester_from_secret(SeededRng(b"compose chain requester").random_bytes(32))
        key_id = bytes.fromhex("c1" * 32)
        document = b"released as the ACL contract says"
        with SyncKeyServerClient(urls[0], rng=SeededRng(2)) as client:
            encrypted = client.encrypt_document(key_id, requester, 1, document)
        with SyncKeyServerClient(urls[2]) as client, pytest.raises(AccessDenied):
            client.decrypt_document(key_id, requester, encrypted)  # nothing granted yet
        deployment = json.loads((configs / DEPLOYMENT_NAME).read_text())
        dev = DevChain(f"http://127.0.0.1:{chain_port}")
        acl = Address(bytes.fromhex(deployment["acl"][2:]))
        granted = int(dev.transact(acl, GRANT, requester.address, key_id)["blockNumber"])
        wait_until(
            lambda: all((chain.get("block") or 0) >= granted for chain in chains()),
            30,
            "every node to see the grant's block",
            logs(),
        )
        with SyncKeyServerClient(urls[2]) as client:
            assert client.decrypt_document(key_id, requester, encrypted) == document
    finally:
        docker.compose_run("--profile", "chain", "down", "-v", env=env, timeout=180, check=False)
    FIGURES.append(("compose chain test in all", f"{time.monotonic() - started:.1f} s"))
