"""The expiry timer: consents lapse at their end even when nobody asks (DOMAIN.md rule 2).

It runs in every instance of the service, on start and then every `interval` seconds. Nothing
about it lives in memory across restarts: each round asks the consents what is due, so a consent
whose end passed while the service was down is expired on the next start, and exactly once.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from datetime import UTC, datetime

import structlog

from stafett_consent.application import Consents
from stafett_runtime.service import call

log = structlog.get_logger(__name__)


def utc_now() -> datetime:
    return datetime.now(UTC)


class ExpiryTimer:
    def __init__(
        self, consents: Consents, interval: float, clock: Callable[[], datetime] = utc_now
    ) -> None:
        self.consents = consents
        self.interval = interval
        self._clock = clock
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="consent-expiry")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            try:
                expired = await call(self.consents.expire_due, self._clock())
            except Exception:
                log.exception("expiry round failed; the next round tries again")
            else:
                if expired:
                    log.info("consents expired", count=len(expired))
            await asyncio.sleep(self.interval)
