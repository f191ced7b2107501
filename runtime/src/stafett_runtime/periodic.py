"""Work a service does every few seconds on its event loop: timers, deliveries.

The state such work acts on lives in events, so a round that is missed (a restart) or fails is
made good by the next one; nothing is kept between rounds.
"""

from __future__ import annotations

import asyncio
import contextlib

import structlog

log = structlog.get_logger(__name__)


class Periodic:
    """Runs `round` every `interval` seconds from `start` until `stop`; a failed round is logged."""

    name = "periodic"

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self._task: asyncio.Task[None] | None = None

    async def round(self) -> None:
        raise NotImplementedError

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=self.name)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            try:
                await self.round()
            except Exception:
                log.exception("round failed; the next round tries again", task=self.name)
            await asyncio.sleep(self.interval)
