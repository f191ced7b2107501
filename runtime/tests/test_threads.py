"""Blocking calls run on the service's own pool, sized by its setting, in the caller's context."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator

import pytest

from stafett_runtime.logging import correlation, current_correlation_id
from stafett_runtime.threads import DEFAULT_WORKERS, call, use_workers


@pytest.fixture
def twelve_workers() -> Iterator[None]:
    use_workers(12)
    yield
    use_workers(DEFAULT_WORKERS)


@pytest.mark.usefixtures("twelve_workers")
async def test_as_many_blocking_calls_run_at_once_as_the_setting_says_not_the_loops_six() -> None:
    # Given twelve calls that each wait until all twelve are running (more than the event loop's
    # default pool of six threads on two cores would ever run at once)
    all_running = threading.Barrier(12, timeout=30)
    # When they are called together
    waited = await asyncio.gather(*(call(all_running.wait) for _ in range(12)))
    # Then every one of them got through the barrier: they ran side by side
    assert sorted(waited) == list(range(12))


async def test_a_blocking_call_runs_under_the_callers_correlation_id() -> None:
    # Given a request's correlation id
    with correlation("request-7"):
        # When it calls blocking code
        seen = await call(current_correlation_id)
    # Then that code logs (and writes events) under the same id
    assert seen == "request-7"
