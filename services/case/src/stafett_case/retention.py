"""The retention timer: children whose closed cases have been kept long enough are shredded
(DOMAIN.md rule 10), even when nobody asks.

Each round (on start, then every `interval` seconds; `stafett_runtime.periodic`) asks the
children's ledger, caught up from the streams, who is due as of the clock under the
municipality's retention (the directory's `retention`, read each round, so a change holds at
once), and erases each as an administrator's erasure would, with the reason
`retention_period_ended`: first `ChildErased` on the child's aggregate, then the child's key.

Nothing lives in memory across restarts. A round that fails, or a crash between the event and
the key, is made good by a later round: the first round of each process deletes the key of
every child recorded as erased (deleting an erased key changes nothing), so no key outlives its
record.

| variable | default | meaning |
|---|---|---|
| STAFETT_RETENTION_INTERVAL | 60 | seconds between two rounds |
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from uuid import UUID

import structlog

from stafett_case.children import Children
from stafett_runtime.directory import DirectorySource
from stafett_runtime.periodic import Periodic
from stafett_runtime.service import call
from stafett_runtime.settings import SettingsError

INTERVAL_VARIABLE = "STAFETT_RETENTION_INTERVAL"

log = structlog.get_logger(__name__)


def utc_now() -> datetime:
    return datetime.now(UTC)


def interval_from_env(environ: Mapping[str, str] = os.environ) -> float:
    text = environ.get(INTERVAL_VARIABLE) or "60"
    try:
        seconds = float(text)
    except ValueError:
        seconds = 0.0
    if not 0 < seconds <= 86_400:
        raise SettingsError(f"{INTERVAL_VARIABLE}={text!r}: expected seconds, from 0 to a day")
    return seconds


class RetentionTimer(Periodic):
    """Each round: erase every child due, then make sure no erased child keeps a key."""

    name = "retention"

    def __init__(
        self,
        children: Children,
        directory: DirectorySource,
        erase_key: Callable[[str, str], Awaitable[None]],
        interval: float,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        super().__init__(interval)
        self.children = children
        self._directory = directory
        self._erase_key = erase_key  # Kernel.erase: async (child id, reason)
        self._clock = clock
        self._keys_gone: set[UUID] = set()  # erased children whose key this process deleted

    async def round(self) -> None:
        retention = self._directory.current().retention
        shredded = await call(self.children.shred_due, retention, self._clock())
        if shredded:
            log.info("children shredded: retention period ended", count=len(shredded))
        erased = await call(self.children.erased)
        for child_id in sorted(erased - self._keys_gone, key=str):
            await self._erase_key(str(child_id), "recorded as erased")
            self._keys_gone.add(child_id)
