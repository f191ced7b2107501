"""`stafett up` looks after its services as Kubernetes would: a service whose liveness check fails
is stopped and started again, with backoff, and the screen says so."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest

from stafett_cli.config import PlatformConfig
from stafett_cli.platform import Platform, ServiceProcess
from stafett_runtime.natsserver import free_port


class Liveness(BaseHTTPRequestHandler):
    failing = False

    def do_GET(self) -> None:
        status = 503 if Liveness.failing and self.path == "/health/live" else 200
        self.send_response(status)
        self.end_headers()
        self.wfile.write(b'{"status": "failed", "failures": {"policy": "broken"}}')

    def log_message(self, *_: object) -> None:
        pass


@pytest.fixture
def health() -> Iterator[str]:
    server = HTTPServer(("127.0.0.1", free_port()), Liveness)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    Liveness.failing = False


class Sleeper(ServiceProcess):
    """A stand-in service process: it runs until stopped; its health is the test's server."""

    def start(self) -> None:
        self.process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
        self.started_at = time.monotonic()
        self.restart_at = None
        self.awaiting_ready = False


def test_a_service_that_fails_its_liveness_check_is_stopped_and_started_again(
    tmp_path: Path, health: str
) -> None:
    said: list[str] = []
    platform = Platform(PlatformConfig(data_dir=tmp_path), say=said.append)
    service = Sleeper("notify", {}, tmp_path / "notify.log", health)
    service.start()
    first = service.pid
    try:
        # Given a running service that answers its liveness check
        platform._look_after(service, time.monotonic())
        assert service.process is not None
        assert service.process.poll() is None

        # When its liveness check fails (a loop that cannot recover)
        Liveness.failing = True
        service.live_checked_at = 0.0
        platform._look_after(service, time.monotonic())

        # Then it is stopped, and started again after its backoff
        assert "notify failed its liveness check" in said[-1]
        assert service.process.poll() is not None
        platform._look_after(service, time.monotonic())
        assert "notify exited" in said[-1]
        assert service.restart_at is not None
        platform._look_after(service, service.restart_at)
        assert service.pid != first
        assert said[-1].startswith("notify restarted")
    finally:
        service.stop()
