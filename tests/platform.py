"""The five services as their own processes on one nats-server, for tests across services.

Each service runs `python -m stafett_<name>` as in production, connected as its own NATS user
with the permissions of `stafett_runtime.natsaccess` (the table `deploy/` and `stafett up` use),
and reads the same municipality directory and population register files. Tests talk to them over
HTTP with tokens from the development key, as an integrator would.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx
import msgspec
import nats
from eventsourcing.utils import Environment
from nats.aio.client import Client

from stafett_cli.platform import die_with_parent
from stafett_contracts.identity import Actor
from stafett_contracts.people import Directory, RegisteredChild
from stafett_runtime import natsaccess
from stafett_runtime.auth import DevelopmentKey
from stafett_runtime.jetstream import JetStreamFactory
from stafett_runtime.natsserver import NatsServer, free_port
from stafett_runtime.register import FileRegister
from stafett_runtime.testing import TEST_DIRECTORY

SERVICES = ("consent", "case", "meeting", "notify", "projection")
READY_WITHIN = 60.0


@dataclass
class ServiceRun:
    name: str
    url: str
    log: Path
    process: subprocess.Popen[bytes] = field(repr=False)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


class Platform:
    """nats-server with per-service users, and the five services, on one data folder."""

    def __init__(
        self,
        data: Path,
        directory: Directory = TEST_DIRECTORY,
        env: Mapping[str, str] | None = None,
        services: tuple[str, ...] = SERVICES,
    ) -> None:
        self.data = data
        self.key = DevelopmentKey.load_or_create(data / "dev-signing-key.pem")
        self.register = FileRegister(data / "register.json")
        self.directory_file = data / "directory.json"
        self.directory_file.write_bytes(msgspec.json.encode(directory))
        self.passwords = natsaccess.generate_passwords()
        self.nats = NatsServer(
            store_dir=data / "nats",
            log_file=data / "nats-server.log",
            extra_config=natsaccess.authorization_block(self.passwords),
            preexec=die_with_parent,  # a test killed midway leaves no server behind
        )
        self.env = dict(env or {})
        self.names = services
        self.services: dict[str, ServiceRun] = {}
        self.http = httpx.Client(timeout=30)

    # Running

    def start(self, *names: str) -> None:
        """Start nats-server, then the services named (all five when none are), each ready.

        The streams are made first, as the operator, as `stafett up` and deploy's Job make them:
        no service's NATS user may make more than its own."""
        if not self.nats.running:
            self.nats.start()
            asyncio.run(self._create_streams())
        starting = [self._start(n) for n in names or self.names if n not in self.services]
        for service in starting:
            self.services[service.name] = service
        for service in starting:
            self._wait_until_ready(service)

    def last_sequence(self, stream: str) -> int:
        """The stream's last sequence: what a test compares to say "nothing was written"."""

        async def read() -> int:
            nc = await self._admin()
            try:
                return int((await nc.jetstream().stream_info(stream)).state.last_seq)
            finally:
                await nc.close()

        return asyncio.run(read())

    async def _admin(self) -> Client:
        env = self.admin_env()
        return await nats.connect(
            env["NATS_URL"], user=env["NATS_USER"], password=env["NATS_PASSWORD"]
        )

    async def _create_streams(self) -> None:
        nc = await self._admin()
        try:
            await natsaccess.create_missing_streams(nc)
        finally:
            await nc.close()

    def kill(self, service: str) -> None:
        """A crash of one service (SIGKILL); `start(service)` runs it again."""
        run = self.services.pop(service)
        run.process.kill()
        run.process.wait()

    def url(self, service: str) -> str:
        return self.services[service].url

    def admin_env(self) -> dict[str, str]:
        """Settings to reach the server as the operator user (tests look at what was stored)."""
        return {
            "NATS_URL": self.nats.url,
            "NATS_USER": natsaccess.ADMIN_USER,
            "NATS_PASSWORD": self.passwords[natsaccess.ADMIN_USER],
        }

    def events(self, application: str, aggregate_id: UUID) -> list[dict[str, Any]]:
        """An aggregate's events as JSON, in order, read straight from the service's stream."""
        env = Environment(application, {**self.admin_env(), "CREATE_TABLE": "no"})
        factory = JetStreamFactory(env)
        try:
            stored = factory.application_recorder().select_events(aggregate_id)
            return [msgspec.json.decode(s.state) for s in stored]
        finally:
            factory.close()

    def event_types(self, application: str, aggregate_id: UUID) -> list[str]:
        return [e["type"] for e in self.events(application, aggregate_id)]

    def stop(self) -> None:
        self.http.close()
        for service in reversed(list(self.services.values())):
            service.stop()
        self.nats.stop()

    def _start(self, name: str) -> ServiceRun:
        port = free_port()
        log = self.data / f"{name}.log"
        env = {
            **os.environ,
            "NATS_URL": self.nats.url,
            "NATS_USER": name,
            "NATS_PASSWORD": self.passwords[name],
            "NATS_INBOX_PREFIX": f"_INBOX.{name}",
            "STAFETT_HTTP_PORT": str(port),
            "STAFETT_DATA_DIR": str(self.data),
            "STAFETT_DIRECTORY_FILE": str(self.directory_file),
            "STAFETT_REGISTER_FILE": str(self.register.path),
            "STAFETT_LOG_FORMAT": "json",
            **self.env,
        }
        with open(log, "ab") as out:
            process = subprocess.Popen(
                [sys.executable, "-m", f"stafett_{name}"],
                env=env,
                stdout=out,
                stderr=out,
                preexec_fn=die_with_parent,  # nor any service
            )
        return ServiceRun(name, f"http://127.0.0.1:{port}", log, process)

    def _wait_until_ready(self, service: ServiceRun) -> None:
        deadline = time.monotonic() + READY_WITHIN
        while time.monotonic() < deadline:
            if service.process.poll() is not None:
                raise AssertionError(
                    f"{service.name} exited with {service.process.returncode}:\n"
                    f"{service.log.read_text()[-4000:]}"
                )
            try:
                if httpx.get(f"{service.url}/health/ready", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise AssertionError(
            f"{service.name} not ready in time:\n{service.log.read_text()[-4000:]}"
        )

    # Talking to it

    def token(self, actor: Actor) -> str:
        return self.key.mint(actor)

    def post(
        self, service: str, path: str, actor: Actor, body: Mapping[str, Any], /
    ) -> httpx.Response:
        return self.http.post(
            f"{self.services[service].url}{path}",
            json=body,
            headers={"Authorization": f"Bearer {self.token(actor)}"},
        )

    def get(self, service: str, path: str, actor: Actor, /, **params: str | int) -> httpx.Response:
        return self.http.get(
            f"{self.services[service].url}{path}",
            params=params,
            headers={"Authorization": f"Bearer {self.token(actor)}"},
        )

    def register_child(self, child: RegisteredChild) -> None:
        self.register.add(child)
