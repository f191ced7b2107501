"""The embedded platform: a local nats-server and every service, as separate processes.

Data lives in one folder (default `./var`): the JetStream store under `nats/`, logs under `logs/`.
Starting again continues on the same data. A service that exits unexpectedly is started again.
"""

from __future__ import annotations

import importlib.util
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from stafett_runtime.natsserver import NatsServer, NatsServerError, port_is_free

# The services in start order; each listens on STAFETT_PORT_BASE + its position (8101, 8102, ...).
SERVICES = ["consent", "case", "meeting", "notify", "projection"]
RESTART_DELAY = 1.0


class PlatformError(RuntimeError):
    """The platform cannot start; the message says why and what to do."""


@dataclass(frozen=True)
class PlatformConfig:
    data_dir: Path
    nats_host: str = "127.0.0.1"
    nats_port: int = 14222  # not 4222, which a system NATS may already use
    port_base: int = 8100

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> PlatformConfig:
        env = os.environ if environ is None else environ
        return cls(
            data_dir=Path(env.get("STAFETT_DATA_DIR", "var")).resolve(),
            nats_port=_port(env, "STAFETT_NATS_PORT", "14222"),
            port_base=_port(env, "STAFETT_PORT_BASE", "8100", room=len(SERVICES)),
        )

    def service_port(self, name: str) -> int:
        return self.port_base + SERVICES.index(name) + 1


def _port(env: Mapping[str, str], name: str, default: str, room: int = 0) -> int:
    value = env.get(name, default)
    if not value.isdigit() or not 0 < int(value) < 65536 - room:
        raise PlatformError(f"{name}={value!r} is not a port number (1-{65535 - room})")
    return int(value)


@dataclass
class ServiceProcess:
    """One service, run as `python -m stafett_<name>`, restarted when it dies."""

    name: str
    env: dict[str, str]
    log_file: Path
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    restarts: int = 0

    @staticmethod
    def is_runnable(name: str) -> bool:
        return importlib.util.find_spec(f"stafett_{name}.__main__") is not None

    def start(self) -> None:
        with open(self.log_file, "ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", f"stafett_{self.name}"],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # Ctrl-C reaches the platform, which stops us in order
            )

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


class Platform:
    def __init__(self, config: PlatformConfig) -> None:
        self.config = config
        self.logs = config.data_dir / "logs"
        self.nats = NatsServer(
            store_dir=config.data_dir / "nats",
            host=config.nats_host,
            port=config.nats_port,
            log_file=self.logs / "nats-server.log",
        )
        self.services: list[ServiceProcess] = []
        self._stopping = threading.Event()

    def start(self) -> None:
        self._check_data_dir()
        runnable = [name for name in SERVICES if ServiceProcess.is_runnable(name)]
        self._check_port(self.config.nats_port, "STAFETT_NATS_PORT")
        for name in runnable:
            self._check_port(self.config.service_port(name), "STAFETT_PORT_BASE")
        try:
            self.nats.start()
        except NatsServerError as error:
            raise PlatformError(str(error)) from error
        env = {
            **os.environ,
            "NATS_URL": self.nats.url,
            "STAFETT_DATA_DIR": str(self.config.data_dir),
        }
        for name in runnable:
            service_env = {**env, "STAFETT_HTTP_PORT": str(self.config.service_port(name))}
            service = ServiceProcess(name, service_env, self.logs / f"{name}.log")
            service.start()
            self.services.append(service)

    def _check_port(self, port: int, setting: str) -> None:
        if not port_is_free(self.config.nats_host, port):
            raise PlatformError(
                f"port {port} is taken: stop what uses it, or choose another with {setting}"
            )

    def _check_data_dir(self) -> None:
        try:
            self.logs.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryFile(dir=self.config.data_dir):
                pass
        except OSError as error:
            raise PlatformError(
                f"the data folder {self.config.data_dir} is not writable ({error.strerror}); "
                "choose another with STAFETT_DATA_DIR"
            ) from error

    def screen(self) -> str:
        running = {s.name for s in self.services}
        lines = [
            "Stafett is running (embedded).",
            "",
            f"  NATS JetStream  {self.nats.url}",
            f"  event store     {self.nats.store_dir / 'jetstream'} (fsync before every ack)",
            f"  logs            {self.logs}",
            "",
            "  services:",
        ]
        for name in SERVICES:
            url = f"http://127.0.0.1:{self.config.service_port(name)}/schema"
            state = f"API docs {url}" if name in running else "not built yet"
            lines.append(f"    {name:<12} {state}")
        lines += ["", "Press Ctrl-C to stop. Starting again continues on the same data."]
        return "\n".join(lines)

    def supervise(self) -> None:
        """Wait until asked to stop; start again any service that died."""
        while not self._stopping.wait(0.5):
            if not self.nats.running:
                raise PlatformError(f"nats-server stopped; see {self.nats.log_file}")
            for service in self.services:
                if service.process is not None and service.process.poll() is not None:
                    code = service.process.returncode
                    print(f"{service.name} exited with {code}; starting it again", flush=True)
                    time.sleep(RESTART_DELAY)
                    service.restarts += 1
                    service.start()

    def request_stop(self) -> None:
        self._stopping.set()

    def stop(self) -> None:
        for service in reversed(self.services):
            service.stop()
        self.nats.stop()


def up() -> int:
    """Run the platform in the foreground until Ctrl-C (SIGINT) or SIGTERM."""
    try:
        platform = Platform(PlatformConfig.from_env())
        platform.start()
    except PlatformError as error:
        print(f"stafett: cannot start: {error}", file=sys.stderr)
        return 1
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: platform.request_stop())
    print(platform.screen(), flush=True)
    try:
        platform.supervise()
    except PlatformError as error:
        print(f"stafett: {error}", file=sys.stderr)
        return 1
    finally:
        print("stopping...", flush=True)
        platform.stop()
        print("stopped.", flush=True)
    return 0
