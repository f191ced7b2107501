"""Running Stafett's services as the benchmark measures them: each as its own process, started
through its public entry point (`python -m stafett_<name>`), configured only by environment.

The municipality is the test one (`stafett_runtime.testing`): its directory, and children in a
file register, written into the data folder the services are given.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import msgspec

from stafett_runtime.natsserver import NatsServer, free_port
from stafett_runtime.register import FileRegister
from stafett_runtime.testing import TEST_DIRECTORY, a_child

READY_WITHIN = 60.0  # seconds a service may take to answer /health/ready


def municipality(data_dir: Path, children: int) -> list[str]:
    """The test municipality's directory, and `children` children in the register: their ids."""
    (data_dir / "directory.json").write_bytes(msgspec.json.encode(TEST_DIRECTORY))
    register = FileRegister(data_dir / "register.json")
    registered = [a_child(f"forelder-{n}") for n in range(children)]
    register.add(*registered)
    return [str(c.child_id) for c in registered]


def service_environment(url: str, data_dir: Path, **extra: str) -> dict[str, str]:
    """What a service process is given: the NATS server, its data folder and the municipality."""
    env = {
        **os.environ,
        "NATS_URL": url,
        "STAFETT_DATA_DIR": str(data_dir),
        "STAFETT_DIRECTORY_FILE": str(data_dir / "directory.json"),
        "STAFETT_REGISTER_FILE": str(data_dir / "register.json"),
        "STAFETT_LOG_LEVEL": "WARNING",
        **extra,
    }
    env.pop("STAFETT_PROJECTION_DATABASE_URL", None)  # the projection keeps SQLite here
    env.pop("STAFETT_CONFIG", None)
    return env


def _get(url: str, timeout: float = 1.0) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as answer:
            return int(answer.status), bytes(answer.read())
    except urllib.error.HTTPError as refused:
        return refused.code, b""


def start(name: str, url: str, data_dir: Path) -> tuple[subprocess.Popen[bytes], str]:
    """Start `python -m stafett_<name>` and wait until it is ready: the process, its base URL."""
    port = free_port()
    env = service_environment(url, data_dir, STAFETT_HTTP_PORT=str(port))
    log = open(data_dir / f"{name}.log", "ab")  # noqa: SIM115 (the child process writes it)
    process = subprocess.Popen(
        [sys.executable, "-m", f"stafett_{name}"], env=env, stdout=log, stderr=log
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + READY_WITHIN
    while time.monotonic() < deadline and process.poll() is None:
        try:
            if _get(f"{base}/health/ready")[0] == 200:
                return process, base
        except OSError:
            pass
        time.sleep(0.2)
    process.kill()
    process.wait()
    tail = (data_dir / f"{name}.log").read_text(errors="replace")[-3000:]
    raise RuntimeError(f"{name} did not become ready; its log ends:\n{tail}")


def stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@contextmanager
def monitored_server(
    store_dir: Path, *, sync_always: bool = True, log_file: Path | None = None
) -> Iterator[Monitored]:
    """A nats-server with its monitoring endpoint on, stopped at the end."""
    port = free_port()
    server = NatsServer(
        store_dir=store_dir,
        sync_always=sync_always,
        log_file=log_file,
        extra_config=f"http: 127.0.0.1:{port}",
    )
    server.start()
    try:
        yield Monitored(server, f"http://127.0.0.1:{port}")
    finally:
        server.stop()


class Monitored:
    """A nats-server and what its monitoring endpoint says (/varz, /connz)."""

    def __init__(self, server: NatsServer, monitor: str) -> None:
        self.server = server
        self.monitor = monitor

    @property
    def url(self) -> str:
        return self.server.url

    def _json(self, path: str) -> Mapping[str, Any]:
        status, body = _get(f"{self.monitor}{path}", timeout=5.0)
        if status != 200:
            raise RuntimeError(f"nats-server monitoring {path} answered {status}")
        answer: Mapping[str, Any] = json.loads(body)
        return answer

    def messages_out(self) -> int:
        """Messages the server has delivered to clients so far (/varz out_msgs)."""
        return int(self._json("/varz")["out_msgs"])

    def connections(self) -> list[Mapping[str, Any]]:
        """The client connections open now (/connz), each with its name."""
        return list(self._json("/connz?limit=1024")["connections"] or [])
