"""Liveness and readiness, so that an orchestrator restarts a stuck service and routes requests
only to one that can serve them.

Live means the process answers HTTP. Ready means every registered check passes, e.g. the NATS
connection is up; a check that raises counts as failing, with its error as the detail.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Literal

import msgspec
from litestar import Response, get
from litestar.handlers import HTTPRouteHandler
from litestar.status_codes import HTTP_200_OK, HTTP_503_SERVICE_UNAVAILABLE
from nats.aio.client import Client as NatsClient


class CheckResult(msgspec.Struct, frozen=True):
    ok: bool
    detail: str


Check = Callable[[], Awaitable[CheckResult]]


class ReadinessReport(msgspec.Struct, frozen=True):
    status: Literal["ready", "not ready"]
    checks: dict[str, CheckResult]

    @property
    def ready(self) -> bool:
        return self.status == "ready"


class Readiness:
    """The named checks that must all pass before a service takes work."""

    def __init__(self) -> None:
        self._checks: dict[str, Check] = {}

    def add(self, name: str, check: Check) -> None:
        self._checks[name] = check

    async def report(self) -> ReadinessReport:
        names = list(self._checks)
        results = await asyncio.gather(*(_run(self._checks[name]) for name in names))
        checks = dict(zip(names, results, strict=True))
        ready = all(result.ok for result in results)
        return ReadinessReport(status="ready" if ready else "not ready", checks=checks)


async def _run(check: Check) -> CheckResult:
    try:
        return await check()
    except Exception as error:
        return CheckResult(ok=False, detail=f"{type(error).__name__}: {error}")


def nats_connection_check(nc: NatsClient) -> Check:
    """Ready while the NATS connection is up."""

    async def check() -> CheckResult:
        if nc.is_connected:
            return CheckResult(ok=True, detail="connected")
        return CheckResult(
            ok=False, detail="reconnecting" if nc.is_reconnecting else "not connected"
        )

    return check


def health_routes(readiness: Readiness) -> list[HTTPRouteHandler]:
    """GET /health/live and GET /health/ready, left out of the service's OpenAPI document."""

    @get("/health/live", include_in_schema=False)
    async def live() -> dict[str, str]:
        return {"status": "alive"}

    @get("/health/ready", include_in_schema=False)
    async def ready() -> Response[ReadinessReport]:
        report = await readiness.report()
        status = HTTP_200_OK if report.ready else HTTP_503_SERVICE_UNAVAILABLE
        return Response(report, status_code=status)

    return [live, ready]
