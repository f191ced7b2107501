"""A service is live while it answers, and ready only while every one of its checks passes."""

from __future__ import annotations

from litestar import Litestar
from litestar.testing import AsyncTestClient

from stafett_runtime.health import CheckResult, Readiness, health_routes


async def store_reachable() -> CheckResult:
    return CheckResult(ok=True, detail="stream CASE found")


async def projection_behind() -> CheckResult:
    return CheckResult(ok=False, detail="4012 events behind")


async def store_broken() -> CheckResult:
    raise ConnectionError("no responders")


def app_with(readiness: Readiness) -> Litestar:
    return Litestar(route_handlers=health_routes(readiness), logging_config=None)


async def test_a_serving_process_is_alive() -> None:
    async with AsyncTestClient(app_with(Readiness())) as client:
        response = await client.get("/health/live")

    assert response.status_code == 200
    assert response.json() == {"status": "alive"}


async def test_a_service_whose_checks_all_pass_is_ready() -> None:
    readiness = Readiness()
    readiness.add("store", store_reachable)

    async with AsyncTestClient(app_with(readiness)) as client:
        response = await client.get("/health/ready")

    assert response.status_code == 200
    assert response.json() == {
        "status": "ready",
        "checks": {"store": {"ok": True, "detail": "stream CASE found"}},
    }


async def test_a_service_with_one_failing_check_is_not_ready_and_says_which() -> None:
    readiness = Readiness()
    readiness.add("store", store_reachable)
    readiness.add("projection", projection_behind)

    async with AsyncTestClient(app_with(readiness)) as client:
        response = await client.get("/health/ready")

    assert response.status_code == 503
    assert response.json() == {
        "status": "not ready",
        "checks": {
            "store": {"ok": True, "detail": "stream CASE found"},
            "projection": {"ok": False, "detail": "4012 events behind"},
        },
    }


async def test_a_check_that_raises_makes_the_service_not_ready_with_the_error() -> None:
    readiness = Readiness()
    readiness.add("store", store_broken)

    async with AsyncTestClient(app_with(readiness)) as client:
        response = await client.get("/health/ready")

    assert response.status_code == 503
    assert response.json()["checks"]["store"] == {
        "ok": False,
        "detail": "ConnectionError: no responders",
    }
