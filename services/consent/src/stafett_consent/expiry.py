"""The expiry timer: consents lapse at their end even when nobody asks (DOMAIN.md rule 2).

It runs in every instance of the service, on start and then every `interval` seconds. Nothing
about it lives in memory across restarts: each round asks the consents what is due, so a consent
whose end passed while the service was down is expired on the next start, and exactly once.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import structlog

from stafett_consent.application import Consents
from stafett_runtime.periodic import Periodic
from stafett_runtime.service import call

log = structlog.get_logger(__name__)


def utc_now() -> datetime:
    return datetime.now(UTC)


class ExpiryTimer(Periodic):
    """Each round: every consent whose validity has ended by now expires (exactly once)."""

    name = "consent-expiry"

    def __init__(
        self, consents: Consents, interval: float, clock: Callable[[], datetime] = utc_now
    ) -> None:
        super().__init__(interval)
        self.consents = consents
        self._clock = clock

    async def round(self) -> None:
        expired = await call(self.consents.expire_due, self._clock())
        if expired:
            log.info("consents expired", count=len(expired))
