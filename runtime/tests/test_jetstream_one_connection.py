"""One NATS connection per service process.

Given a service's applications, its policy loop, its upstream reader and its kernel, then the
process holds exactly one connection (as nats-server's monitoring endpoint counts them); closing
one application leaves it to the others, and the last one closed closes it.
"""

from __future__ import annotations

import asyncio
import json
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from uuid import uuid4

import pytest
from eventsourcing.persistence import ProgrammingError

from example_apps import Orders, Tallies
from stafett_contracts.access import Access
from stafett_contracts.identity import Actor, Role
from stafett_runtime.accesslog import AUDIT
from stafett_runtime.auth import DevelopmentKey
from stafett_runtime.kernel import Kernel
from stafett_runtime.natsserver import NatsServer, free_port
from stafett_runtime.processing import ProcessingLoop, Upstream
from stafett_runtime.register import FileRegister
from stafett_runtime.settings import Settings
from stafett_runtime.testing import kernel_for_tests


class MonitoredServer(NatsServer):
    """A nats-server that also answers its monitoring endpoint, which counts connections."""

    monitor_port: int = 0

    def connections(self) -> int:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.monitor_port}/connz") as answer:
            count: int = json.load(answer)["num_connections"]
            return count


@pytest.fixture
def server(tmp_path: Path) -> Iterator[MonitoredServer]:
    port = free_port()
    server = MonitoredServer(tmp_path / "nats", extra_config=f"http: 127.0.0.1:{port}")
    server.monitor_port = port
    with server:
        yield server


def service_env(server: NatsServer) -> dict[str, str]:
    """An application's environment as a service makes it from its settings."""
    return Settings(service="orders", nats_url=server.url).eventsourcing_env()


def a_kernel(server: NatsServer, tmp_path: Path) -> Kernel:
    return kernel_for_tests(
        "orders",
        server.url,
        key=DevelopmentKey.load_or_create(tmp_path / "key.pem"),
        register=FileRegister(tmp_path / "register.json"),
    )


def eventually(condition: Callable[[], bool], seconds: float = 15) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


async def test_a_service_process_holds_one_connection_with_its_apps_policies_and_kernel_open(
    server: MonitoredServer, tmp_path: Path
) -> None:
    # Given a service as its main wires it: applications, an upstream reader and a policy
    # loop following it, then the kernel opened with the HTTP app
    env = service_env(server)
    orders = await asyncio.to_thread(Orders, env)
    tallies = await asyncio.to_thread(Tallies, env)
    upstream = await asyncio.to_thread(Upstream.named, "orders", env)
    policy = ProcessingLoop(tallies, upstream)
    await asyncio.to_thread(policy.start)
    kernel = a_kernel(server, tmp_path)
    await kernel.open()
    try:
        order_id = await asyncio.to_thread(orders.place)
        await asyncio.to_thread(eventually, lambda: policy.lag() == 0)
        # When the kernel writes the access log and reads a stream, from the service's loop
        sequence = await kernel.access_log.record(
            actor=Actor(person="p-1", role=Role.EMPLOYEE, service="skole-lia"),
            case_id=uuid4(),
            what="case",
            purpose=None,
            access=Access(granted=True, basis="test", rule="test"),
            correlation_id="c-1",
        )
        audited = await kernel.core.read_all(AUDIT.stream, AUDIT.all_events)
        # Then all of it went over one NATS connection
        assert [m.seq for m in audited] == [sequence]
        assert await asyncio.to_thread(tallies.counted, order_id) == [1]
        assert await asyncio.to_thread(server.connections) == 1
    finally:
        await kernel.close()
        await asyncio.to_thread(policy.stop)
        await asyncio.to_thread(tallies.close)
        await asyncio.to_thread(upstream.close)
        await asyncio.to_thread(orders.close)
    # And the last of them closed it
    await asyncio.to_thread(eventually, lambda: server.connections() == 0)


def test_closing_one_application_leaves_the_connection_to_the_others(
    server: MonitoredServer,
) -> None:
    # Given two applications of one process
    env = service_env(server)
    first, second = Orders(env), Orders(env)
    first.place()
    assert server.connections() == 1
    # When the first closes
    first.close()
    # Then the second still writes and reads, over the same connection
    order_id = second.place()
    assert second.repository.get(order_id).lines == 1
    assert server.connections() == 1
    # And closing the last one closes the connection
    second.close()
    eventually(lambda: server.connections() == 0)


async def test_without_applications_the_connection_lives_on_the_services_loop(
    server: MonitoredServer, tmp_path: Path
) -> None:
    # Given a service without applications (the projection): its kernel opens the connection
    kernel = a_kernel(server, tmp_path)
    await kernel.open()
    try:
        # Then code on the service's loop may use the connection itself
        assert (await kernel.nc.jetstream().stream_info(AUDIT.stream)).config.name == "AUDIT"
        # And an application made later in the process shares it, from a worker thread
        orders = await asyncio.to_thread(Orders, service_env(server))
        order_id = await asyncio.to_thread(orders.place)
        assert (await asyncio.to_thread(orders.repository.get, order_id)).lines == 1
        assert await asyncio.to_thread(server.connections) == 1
        await asyncio.to_thread(orders.close)
    finally:
        await kernel.close()
    await asyncio.to_thread(eventually, lambda: server.connections() == 0)


async def test_the_connection_itself_is_refused_on_another_loop_than_its_own(
    server: MonitoredServer, tmp_path: Path
) -> None:
    # Given a service whose applications made the connection (on the store's loop thread)
    orders = await asyncio.to_thread(Orders, service_env(server))
    kernel = a_kernel(server, tmp_path)
    await kernel.open()
    try:
        # Then the connection itself is refused on the service's loop, which would misuse it
        with pytest.raises(ProgrammingError, match=r"kernel\.core"):
            kernel.nc.jetstream()
        # While the core reaches it from here
        assert await kernel.core.read_all("ORDERS", "orders.events.>") == []
    finally:
        await kernel.close()
        await asyncio.to_thread(orders.close)


def test_an_application_outlives_the_loop_its_connection_was_made_on(
    server: MonitoredServer, tmp_path: Path
) -> None:
    # Given an application that shares the connection a kernel made on the service's loop
    kernel = a_kernel(server, tmp_path)

    async def service() -> Orders:
        await kernel.open()
        orders = await asyncio.to_thread(Orders, service_env(server))
        await asyncio.to_thread(orders.place)
        return orders

    # When that loop ends (the kernel never closed)
    orders = asyncio.run(service())
    # Then the application takes a new connection and goes on
    order_id = orders.place()
    assert orders.repository.get(order_id).lines == 1
    orders.close()
