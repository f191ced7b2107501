"""nats-server started with the generated auth.conf, and the services' credentials for it."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import nats
from nats.aio.client import Client

from deploy.nats.access import DEPLOY
from stafett_runtime.natsaccess import generate_passwords, password_variable
from stafett_runtime.natsserver import NatsServer

STREAMS_DIR = DEPLOY / "k8s" / "base" / "streams"


class Credentials:
    """One password per generated user, as the Secret would hold them.

    nats-server parses a variable's value as a config value: a password starting with a digit
    reads as a number and stops the server. A letter and then hex (deploy/README.md) is safe.
    """

    def __init__(self) -> None:
        self.passwords = generate_passwords()

    def server_environment(self) -> dict[str, str]:
        return {password_variable(user): password for user, password in self.passwords.items()}

    def service_env(self, user: str, url: str) -> dict[str, str]:
        """What a service's container gets: its own user, password and inbox prefix."""
        return {
            "NATS_URL": url,
            "NATS_USER": user,
            "NATS_PASSWORD": self.passwords[user],
            "NATS_INBOX_PREFIX": f"_INBOX.{user}",
            "NATS_TIMEOUT": "5",
            "SIGNER": user,  # signs in its own name, as `Settings.eventsourcing_env` says
        }

    async def connect(
        self, user: str, url: str | list[str], errors: Errors | None = None, **options: Any
    ) -> Client:
        async def collect(error: Exception) -> None:
            if errors is not None:
                await errors.add(error)

        return await nats.connect(
            servers=url if isinstance(url, list) else [url],
            user=user,
            password=self.passwords[user],
            inbox_prefix=f"_INBOX.{user}",
            error_cb=collect,
            allow_reconnect=False,
            **options,
        )


def secured_server(store_dir: Path, extra: str = "", **kwargs: Any) -> NatsServer:
    auth = (DEPLOY / "nats" / "auth.conf").read_text()
    return NatsServer(store_dir, extra_config=f"{extra}\n{auth}", **kwargs)


async def create_streams(nc: Client, replicas: int) -> list[str]:
    """What the Job does: create every stream from its definition (idempotent: twice is fine)."""
    created = []
    for path in sorted(STREAMS_DIR.glob("*.json")):
        config = json.loads(path.read_text())
        config["num_replicas"] = replicas
        name = config["name"]
        answer = await nc.request(
            f"$JS.API.STREAM.CREATE.{name}", json.dumps(config).encode(), timeout=10
        )
        reply = json.loads(answer.data)
        assert "error" not in reply, f"{name}: {reply['error']}"
        created.append(name)
    return created


class Errors:
    """The errors the server sent a connection, such as permissions violations."""

    def __init__(self) -> None:
        self.errors: list[Exception] = []
        self._changed = asyncio.Condition()

    async def add(self, error: Exception) -> None:
        async with self._changed:
            self.errors.append(error)
            self._changed.notify_all()

    async def wait(self, count: int, seconds: float = 10.0) -> str:
        """Wait until `count` errors came (they come asynchronously); all of them, lower case."""
        async with asyncio.timeout(seconds), self._changed:
            await self._changed.wait_for(lambda: len(self.errors) >= count)
        return " ".join(str(error) for error in self.errors).lower()
