"""The case service's own NATS connection for children's keys, opened and closed with its HTTP app.

The API seals a child's personal data before a command reaches the domain, and opens it for the
few who may see it (DOMAIN.md rule 8). nats-py binds a connection to the event loop that made
it, so the connection is made on the app's loop, at start-up, never before.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

import nats
from nats.aio.client import Client

from stafett_runtime.health import CheckResult
from stafett_runtime.keystore import ChildKeys
from stafett_runtime.settings import Settings


class KeyStore:
    def __init__(self, settings: Settings, environ: Mapping[str, str] = os.environ) -> None:
        self._settings = settings
        self._environ = environ
        self._nc: Client | None = None
        self._keys: ChildKeys | None = None

    @property
    def keys(self) -> ChildKeys:
        if self._keys is None:
            raise RuntimeError("the key store is not open: the app has not started")
        return self._keys

    async def open(self) -> None:
        s = self._settings
        self._nc = await nats.connect(**s.nats_options(f"{s.service}-keys"))
        self._keys = await ChildKeys.bind(
            self._nc, replicas=s.nats_stream_replicas, environ=self._environ
        )

    async def close(self) -> None:
        if self._nc is not None:
            await self._nc.close()
        self._nc, self._keys = None, None

    async def check(self) -> CheckResult:
        """Ready while the key store's NATS connection is up."""
        if self._nc is not None and self._nc.is_connected:
            return CheckResult(ok=True, detail="connected")
        return CheckResult(ok=False, detail="not connected")
