"""Liveness and readiness, so that an orchestrator restarts a stuck service and routes requests
only to one that can serve them.

Live means the process answers HTTP and none of its policies' loops has failed for good (a
programming error in the loop: `stafett_runtime.processing`); otherwise `/health/live` answers
503 naming them, and the orchestrator restarts the process. Ready means every registered check
passes, e.g. the NATS connection is up; a check that raises counts as failing, with its error as
the detail. A passing check may say the service is degraded (a policy has parked events): the
service is then `degraded`, still 200, so traffic keeps flowing while the detail says what to do.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Literal

import msgspec
from litestar import Response, get
from litestar.handlers import HTTPRouteHandler
from litestar.status_codes import HTTP_200_OK, HTTP_503_SERVICE_UNAVAILABLE

from stafett_runtime.checks import Check as Check
from stafett_runtime.checks import CheckResult as CheckResult

if TYPE_CHECKING:
    from stafett_runtime.follower import Follower


class ReadinessReport(msgspec.Struct, frozen=True):
    status: Literal["ready", "degraded", "not ready"]
    checks: dict[str, CheckResult]

    @property
    def ready(self) -> bool:
        """Takes work: ready, or degraded."""
        return self.status != "not ready"


class LivenessReport(msgspec.Struct, frozen=True, omit_defaults=True):
    status: Literal["alive", "failed"]
    failures: dict[str, str] = {}


class Readiness:
    """The named checks that must all pass before a service takes work, and the service's
    policies (`add_policy`), whose loops also decide whether the process is alive."""

    def __init__(self) -> None:
        self._checks: dict[str, Check] = {}
        self.policies: dict[str, Follower] = {}

    def add(self, name: str, check: Check) -> None:
        self._checks[name] = check

    def add_policy(self, name: str, follower: Follower) -> None:
        """A policy's loop: a readiness check, part of liveness, and its parked events retried
        through the service's admin route (`stafett_runtime.service`)."""
        self.add(name, follower.check)
        self.policies[name] = follower

    async def report(self) -> ReadinessReport:
        names = list(self._checks)
        results = await asyncio.gather(*(_run(self._checks[name]) for name in names))
        checks = dict(zip(names, results, strict=True))
        if not all(result.ok for result in results):
            return ReadinessReport(status="not ready", checks=checks)
        degraded = any(result.degraded for result in results)
        return ReadinessReport(status="degraded" if degraded else "ready", checks=checks)

    def liveness(self) -> LivenessReport:
        failures = {
            name: failure
            for name, follower in self.policies.items()
            if (failure := follower.failure()) is not None
        }
        return LivenessReport(status="failed" if failures else "alive", failures=failures)


async def _run(check: Check) -> CheckResult:
    try:
        return await check()
    except Exception as error:
        return CheckResult(ok=False, detail=f"{type(error).__name__}: {error}")


def health_routes(readiness: Readiness) -> list[HTTPRouteHandler]:
    """GET /health/live and GET /health/ready, left out of the service's OpenAPI document."""

    @get("/health/live", include_in_schema=False)
    async def live() -> Response[LivenessReport]:
        report = readiness.liveness()
        status = HTTP_200_OK if report.status == "alive" else HTTP_503_SERVICE_UNAVAILABLE
        return Response(report, status_code=status)

    @get("/health/ready", include_in_schema=False)
    async def ready() -> Response[ReadinessReport]:
        report = await readiness.report()
        status = HTTP_200_OK if report.ready else HTTP_503_SERVICE_UNAVAILABLE
        return Response(report, status_code=status)

    return [live, ready]
