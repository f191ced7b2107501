"""The round that runs the timers and the deliveries: on start, then every `interval` seconds.

Nothing about it lives in memory across restarts: each round asks the application what is due
as of the clock, so a reminder whose time passed while the service (or NATS) was down is
recorded on the next round after the start, and exactly once.
"""

from __future__ import annotations

import asyncio
import contextlib

import structlog

from stafett_notify.application import Notifications
from stafett_runtime.service import call

log = structlog.get_logger(__name__)


class Courier:
    def __init__(self, notifications: Notifications, interval: float) -> None:
        self.notifications = notifications
        self.interval = interval
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="notify-courier")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            try:
                due = await call(self.notifications.tick)
                sent = await call(self.notifications.deliver)
            except Exception:
                log.exception("notify round failed; the next round tries again")
            else:
                if due or sent:
                    log.info("notify round", timers=due, attempts=sent)
            await asyncio.sleep(self.interval)
