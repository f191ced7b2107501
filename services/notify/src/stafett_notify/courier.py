"""The round that runs the timers and the deliveries: on start, then every `interval` seconds.

Nothing about it lives in memory across restarts: each round asks the application what is due
as of the clock, so a reminder whose time passed while the service (or NATS) was down is
recorded on the next round after the start, and exactly once.
"""

from __future__ import annotations

import structlog

from stafett_notify.application import Notifications
from stafett_runtime.periodic import Periodic
from stafett_runtime.service import call

log = structlog.get_logger(__name__)


class Courier(Periodic):
    """Each round: the timers that are due, then the deliveries that are due."""

    name = "notify-courier"

    def __init__(self, notifications: Notifications, interval: float) -> None:
        super().__init__(interval)
        self.notifications = notifications

    async def round(self) -> None:
        due = await call(self.notifications.tick)
        sent = await call(self.notifications.deliver)
        if due or sent:
            log.info("notify round", timers=due, attempts=sent)
