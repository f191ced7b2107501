"""A 3-node NATS JetStream cluster on loopback, with the generated users, and services on it."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx
import msgspec

from deploy.tests.secured_nats import Credentials, create_streams, secured_server
from stafett_runtime.natscluster import cluster_block
from stafett_runtime.natsserver import NatsServer, free_port
from stafett_runtime.testing import TEST_DIRECTORY

T = TypeVar("T")


@dataclass
class Cluster:
    nodes: dict[str, NatsServer]
    credentials: Credentials

    @property
    def url(self) -> str:
        """Every node, as a service's NATS_URL names them."""
        return ",".join(node.url for node in self.nodes.values())

    def start(self, name: str) -> None:
        saved = dict(os.environ)
        os.environ.update(self.credentials.server_environment())  # passwords come from it
        try:
            self.nodes[name].start()
        finally:
            os.environ.clear()
            os.environ.update(saved)

    def running(self) -> list[NatsServer]:
        return [node for node in self.nodes.values() if node.running]

    def api(self, subject: str, payload: dict[str, Any] | None = None) -> dict[str, Any]:
        """One JetStream API request as the operators' admin, through any running node."""

        async def ask() -> dict[str, Any]:
            urls = [node.url for node in self.running()]
            nc = await self.credentials.connect("admin", urls)
            try:
                body = json.dumps(payload or {}).encode()
                answer = await nc.request(subject, body, timeout=5)
                reply: dict[str, Any] = json.loads(answer.data)
                return reply
            finally:
                await nc.close()

        return asyncio.run(ask())

    def leader(self, stream: str) -> str:
        return str(self.api(f"$JS.API.STREAM.INFO.{stream}")["cluster"]["leader"])

    def wait_for_leaders(self, streams: list[str]) -> None:
        """Until each stream has a leader on a running node (an election follows a loss)."""
        alive = {name for name, node in self.nodes.items() if node.running}

        def elected() -> bool:
            try:
                return all(self.leader(stream) in alive for stream in streams)
            except Exception:  # no quorum yet, or the node asked is itself electing
                return False

        eventually(elected, f"leaders for {streams} on {alive}")

    def replicas_current(self, stream: str) -> bool:
        info = self.api(f"$JS.API.STREAM.INFO.{stream}")
        replicas = info["cluster"].get("replicas", [])
        return len(replicas) == 2 and all(r.get("current") and not r.get("lag") for r in replicas)


def start_cluster(root: Path, credentials: Credentials, size: int = 3) -> Cluster:
    names = [f"n{i}" for i in range(1, size + 1)]
    route_ports = {name: free_port() for name in names}
    nodes = {}
    for name in names:
        block = cluster_block(name, route_ports[name], list(route_ports.values()))
        nodes[name] = secured_server(root / name, extra=block, log_file=root / f"{name}.log")
    cluster = Cluster(nodes, credentials)
    for name in names:
        cluster.start(name)

    async def create() -> list[str]:
        nc = await credentials.connect("streams", nodes["n1"].url)
        try:
            return await create_streams(nc, replicas=size)
        finally:
            await nc.close()

    # The cluster answers JetStream requests once it has elected its meta leader.
    eventually(lambda: _succeeds(lambda: asyncio.run(create())), "the streams are created")
    return cluster


def _succeeds(action: Callable[[], object]) -> bool:
    try:
        action()
    except Exception:
        return False
    return True


def eventually(condition: Callable[[], bool], what: str, seconds: float = 60.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {seconds} s: {what}")
        time.sleep(0.2)


@dataclass
class Service:
    name: str
    url: str
    log: Path
    process: subprocess.Popen[bytes] = field(repr=False)

    def ready(self) -> bool:
        if self.process.poll() is not None:
            raise AssertionError(
                f"{self.name} exited with {self.process.returncode}:\n{self.log.read_text()}"
            )
        try:
            return httpx.get(f"{self.url}/health/ready", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_services(names: list[str], cluster: Cluster, data_dir: Path) -> list[Service]:
    """`python -m stafett_<name>` for each, as its own NATS user with R3 streams, as in prod,
    with the test municipality's directory and the register file `<data_dir>/register.json`.

    They start side by side, and are returned once all are ready.
    """
    (data_dir / "directory.json").write_bytes(msgspec.json.encode(TEST_DIRECTORY))
    services = [_launch(name, cluster, data_dir) for name in names]
    for service in services:
        eventually(service.ready, f"{service.name} is ready")
    return services


def _launch(name: str, cluster: Cluster, data_dir: Path) -> Service:
    port = free_port()
    log = data_dir / f"{name}.log"
    env = {
        **os.environ,
        **cluster.credentials.service_env(name, cluster.url),
        "NATS_TIMEOUT": "10",
        "NATS_STREAM_REPLICAS": "3",
        "STAFETT_HTTP_PORT": str(port),
        "STAFETT_DATA_DIR": str(data_dir),
        "STAFETT_DIRECTORY_FILE": str(data_dir / "directory.json"),
        "STAFETT_REGISTER_FILE": str(data_dir / "register.json"),
        "STAFETT_LOG_FORMAT": "json",
    }
    with open(log, "ab") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", f"stafett_{name}"], env=env, stdout=out, stderr=out
        )
    return Service(name, f"http://127.0.0.1:{port}", log, process)
