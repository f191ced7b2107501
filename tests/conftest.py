"""Fixtures for tests across services: each service runs as its own process, as in production."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from stafett_runtime.natsserver import free_port
from stafett_runtime.testing import NatsTestServer


@dataclass
class RunningService:
    name: str
    url: str
    log: Path
    process: subprocess.Popen[bytes] = field(repr=False)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@pytest.fixture
def run_service(
    nats_server: NatsTestServer, tmp_path: Path
) -> Iterator[Callable[[str], RunningService]]:
    """Start `python -m stafett_<name>` on the test's nats-server; wait until it is ready."""
    started: list[RunningService] = []

    def start(name: str) -> RunningService:
        port = free_port()
        log = tmp_path / f"{name}.log"
        env = {
            **os.environ,
            "NATS_URL": nats_server.url,
            "STAFETT_HTTP_PORT": str(port),
            "STAFETT_DATA_DIR": str(tmp_path),  # the development signing key lives here
            "STAFETT_LOG_FORMAT": "json",
        }
        with open(log, "ab") as out:
            process = subprocess.Popen(
                [sys.executable, "-m", f"stafett_{name}"], env=env, stdout=out, stderr=out
            )
        service = RunningService(name, f"http://127.0.0.1:{port}", log, process)
        started.append(service)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise AssertionError(f"{name} exited with {process.returncode}:\n{log.read_text()}")
            try:
                if httpx.get(f"{service.url}/health/ready", timeout=1).status_code == 200:
                    return service
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"{name} was not ready in 30 s:\n{log.read_text()}")

    yield start
    for service in reversed(started):
        service.stop()
