"""The case service's own NATS connection for children's keys, opened and closed with its HTTP app.

The API seals a child's personal data before a command reaches the domain, and opens it for the
few who may see it (DOMAIN.md rule 8). nats-py binds a connection to the event loop that made
it, so the connection is made on the app's loop, at start-up, never before.
"""

from __future__ import annotations

import os
import ssl
from collections.abc import Mapping
from typing import Any

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
        options: dict[str, Any] = {"servers": [s.nats_url], "name": f"{s.service}-keys"}
        if s.nats_user:
            options.update(user=s.nats_user, password=s.nats_password)
        if s.nats_creds:
            options["user_credentials"] = s.nats_creds
        if s.nats_tls_ca:
            options["tls"] = ssl.create_default_context(cafile=s.nats_tls_ca)
        self._nc = await nats.connect(**options)
        self._keys = await ChildKeys.bind(self._nc, environ=self._environ)

    async def close(self) -> None:
        if self._nc is not None:
            await self._nc.close()
        self._nc, self._keys = None, None

    async def check(self) -> CheckResult:
        """Ready while the key store's NATS connection is up."""
        if self._nc is not None and self._nc.is_connected:
            return CheckResult(ok=True, detail="connected")
        return CheckResult(ok=False, detail="not connected")
