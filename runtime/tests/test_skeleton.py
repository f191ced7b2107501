"""The one service skeleton (`stafett_runtime.skeleton`): a service names its parts; the skeleton
starts and stops them in order, refuses to start misconfigured, and describes the service's API
without connecting to anything."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import cast
from uuid import uuid4

import pytest
from litestar import Litestar
from test_commands import CASE, Open, by

from stafett_runtime.health import Readiness
from stafett_runtime.jetstream.recorders import JetStreamRecorder
from stafett_runtime.kernel import Kernel
from stafett_runtime.periodic import Periodic
from stafett_runtime.service import http_app
from stafett_runtime.skeleton import CommandApplication, Service, run


class Recorder:
    """Notes what is started, stopped and closed, in order."""

    def __init__(self) -> None:
        self.said: list[str] = []


class Timer(Periodic):
    def __init__(self, recorder: Recorder) -> None:
        super().__init__(interval=60)
        self.recorder = recorder

    async def round(self) -> None:
        pass

    async def start(self) -> None:
        self.recorder.said.append("timer started")
        await super().start()

    async def stop(self) -> None:
        await super().stop()
        self.recorder.said.append("timer stopped")


class Closing:
    def __init__(self, recorder: Recorder, name: str) -> None:
        self.recorder, self.name = recorder, name

    def close(self) -> None:
        self.recorder.said.append(f"{self.name} closed")


async def test_a_service_stops_its_timers_before_it_closes_its_applications(
    env: dict[str, str],
) -> None:
    # Given a service with an application on the store, a timer and a client of its own
    recorder = Recorder()
    service = Service(Kernel.offline("test"), env=env)
    service.application(Closing(recorder, "application"))
    service.timer(Timer(recorder))
    service.on_close(lambda: recorder.said.append("client closed"))
    [start], [stop] = service.hooks["on_startup"], service.hooks["on_shutdown"]

    # When its app starts and then stops
    # (Litestar's hooks may take the app; these take nothing, so they are called as they are.)
    await cast(Callable[[], Awaitable[None]], start)()
    await cast(Callable[[], Awaitable[None]], stop)()

    # Then what issues commands stops first, and what they write to closes after
    assert recorder.said == [
        "timer started",
        "timer stopped",
        "application closed",
        "client closed",
    ]


def test_a_command_application_keeps_its_aggregate_in_a_stream_named_after_it(
    env: dict[str, str],
) -> None:
    app = CommandApplication(CASE, env)
    try:
        case_id = uuid4()
        decision = app.commands.handle(case_id, Open(case_id=case_id), by())

        assert decision.version == 1
        assert app.name == "case"
        assert isinstance(app.recorder, JetStreamRecorder)
        assert app.recorder.layout.stream == "CASE"
    finally:
        app.close()


def test_a_misconfigured_service_refuses_to_start_naming_the_variable(
    capsys: pytest.CaptureFixture[str],
) -> None:
    def wire(service: Service) -> Litestar:
        raise AssertionError("nothing is wired for a service that cannot start")

    code = run("test", wire, argv=[], environ={"STAFETT_HTTP_PORT": "eighty"})

    assert code == 2
    assert "STAFETT_HTTP_PORT='eighty' is not a port" in capsys.readouterr().err


def test_the_openapi_document_is_made_from_the_wiring_without_connecting(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Given a service whose wiring makes its application (no document of its own)
    def wire(service: Service) -> Litestar:
        app = service.application(CommandApplication(CASE, service.env))
        assert app.commands.aggregate is CASE
        return http_app(
            service="test", kernel=service.kernel, route_handlers=[], readiness=Readiness()
        )

    # When it is asked for its OpenAPI document, with no NATS anywhere
    code = run("test", wire, argv=["openapi"])

    # Then it prints it, made on the library's in-memory store
    assert code == 0
    assert json.loads(capsys.readouterr().out)["info"]["title"] == "Stafett test"
