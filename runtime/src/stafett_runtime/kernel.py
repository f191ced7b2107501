"""What every service process shares on its event loop: one NATS connection and the facts every
rule needs.

- the process's one NATS connection (`jetstream.client`), the same its eventsourcing
  applications and policy loops use, with the JetStream core over it (`jetstream.core`). The
  kernel takes its lease when the service's HTTP app starts and gives it back when it stops;
  the connection closes with the last lease. It lives on the store's loop thread when the
  applications made it first (they do, in `main`), otherwise on the service's loop; either way
  the kernel's calls (the access log, reads of the CASE stream, children's keys) reach it from
  the service's loop without blocking it (`core` hops between the loops). A service that cannot
  reach NATS at start gives up after seconds (and is started again); once connected, every call
  through it fails at once with `OperationalError` (503) while it is down, it reconnects by
  itself, and closing it takes seconds at most;
- the pool that runs the service's blocking calls (`threads`), sized by its settings;
- who is calling (`auth.TokenVerifier`), and the sources of record for facts about people: the
  population register (`register`) and the municipality directory (`directory`);
- the access rule's settings, the access log, and, for the services that seal or open a child's
  personal data, the children's keys (`keystore`): `seal` and `unseal`, and for free text
  `seal_text` and `open_texts`. The case service seals (its NATS user makes the
  bucket and writes keys); the projection only opens (its user reads keys, and binds to the
  bucket once the case service has made it); consent and meeting read keys too, and seal free
  text only under a key the case service made;
- `reads(...)`: the gate every read of case data goes through (`reads.CaseReads`).

    kernel = Kernel.from_env("meeting")
    app = http_app(service="meeting", kernel=kernel, route_handlers=[...], ...)

| variable | default | meaning |
|---|---|---|
| STAFETT_CHILD_READS_FROM_AGE | 15 | from this age a child reads their own case like a guardian |
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal, TypeVar
from uuid import uuid4

import msgspec
from eventsourcing.persistence import ProgrammingError
from nats.aio.client import Client

from stafett_contracts.access import ReadRules
from stafett_contracts.identity import Actor
from stafett_contracts.people import Directory
from stafett_contracts.personal import Erased, PersonalData, SealedPersonalData, SealedText
from stafett_runtime.accesslog import AccessLog
from stafett_runtime.auth import TokenVerifier
from stafett_runtime.directory import DirectorySource, FixedDirectory, directory_from_env
from stafett_runtime.domain import Context
from stafett_runtime.evidence import Checkpointer
from stafett_runtime.health import CheckResult
from stafett_runtime.jetstream.client import ConnectionSettings, JetStreamClient
from stafett_runtime.jetstream.core import JetStreamCore
from stafett_runtime.keystore import (
    ChildKeys,
    KeyStoreError,
    open_sealed_texts,
    seal_private_fields,
)
from stafett_runtime.logging import current_correlation_id
from stafett_runtime.natsaccess import owned_streams
from stafett_runtime.reads import CaseReads, CaseSource, StreamCases
from stafett_runtime.register import FileRegister, Register, register_from_env
from stafett_runtime.settings import Settings, SettingsError
from stafett_runtime.threads import use_workers

READS_FROM_AGE_VARIABLE = "STAFETT_CHILD_READS_FROM_AGE"
KeyUse = Literal["seal", "open"]  # what a service does with children's keys
T = TypeVar("T")
S = TypeVar("S", bound=msgspec.Struct)


class NotOpenError(RuntimeError):
    """Used before the service's app started (or after it stopped)."""


class Kernel:
    def __init__(
        self,
        settings: Settings,
        *,
        verifier: TokenVerifier,
        register: Register,
        directory: DirectorySource,
        read_rules: ReadRules | None = None,
        child_keys: KeyUse | None = None,
        environ: Mapping[str, str] = os.environ,
    ) -> None:
        self.settings = settings
        self.verifier = verifier
        self.register = register
        self.directory = directory
        self.read_rules = read_rules or ReadRules()
        self.access_log = AccessLog(
            self, settings.service, settings.nats_stream_replicas, settings.signing_key_file
        )
        self._checkpoints: Checkpointer | None = None
        self._key_use = child_keys
        self._environ = environ
        self._client: JetStreamClient | None = None
        self._keys: ChildKeys | None = None

    @classmethod
    def from_env(
        cls,
        service: str,
        *,
        child_keys: KeyUse | None = None,
        environ: Mapping[str, str] = os.environ,
    ) -> Kernel:
        return cls(
            Settings.from_env(service, environ),
            verifier=TokenVerifier.from_env(environ),
            register=register_from_env(environ),
            directory=directory_from_env(environ),
            read_rules=read_rules_from_env(environ),
            child_keys=child_keys,
            environ=environ,
        )

    @classmethod
    def offline(cls, service: str) -> Kernel:
        """A kernel that is never opened: enough to make a service's OpenAPI document."""
        return cls(
            Settings(service=service),
            verifier=TokenVerifier("https://identity.invalid/jwks.json"),
            register=FileRegister(Path("/nonexistent/register.json")),
            directory=FixedDirectory(Directory()),
            environ={},
        )

    # Opened with the app, on its loop.

    async def open(self) -> None:
        s = self.settings
        use_workers(s.blocking_workers)
        self._client = await JetStreamClient.open(connection_settings(s))
        await self.access_log.open()  # and publishes the service's signing key
        await self._start_checkpoints()
        if self._key_use is not None:
            with contextlib.suppress(KeyStoreError):  # an opener binds once the bucket is made
                await self.core.while_connected(self._child_keys())

    async def _start_checkpoints(self) -> None:
        """Checkpoint the stream this service owns (`evidence.Checkpointer`), if it owns one."""
        s, signer = self.settings, self.access_log.signer
        streams = owned_streams(s.service)
        if s.checkpoint_interval > 0 and streams and signer is not None:
            self._checkpoints = Checkpointer(
                self, signer, streams, s.checkpoint_interval, s.nats_stream_replicas
            )
            await self._checkpoints.open()

    async def close(self) -> None:
        checkpoints, self._checkpoints = self._checkpoints, None
        if checkpoints is not None and self._client is not None:
            await checkpoints.close()  # a last checkpoint of what was written
        client, self._client, self._keys = self._client, None, None
        if client is not None:
            await client.aclose()

    async def check(self) -> CheckResult:
        """Ready while the NATS connection is up."""
        nc = None if self._client is None else self._client.nc
        if nc is not None and nc.is_connected:
            return CheckResult(ok=True, detail="connected")
        reconnecting = nc is not None and nc.is_reconnecting
        return CheckResult(ok=False, detail="reconnecting" if reconnecting else "not connected")

    @property
    def nc(self) -> Client:
        """The connection itself, for code that runs on its loop (the projection's feeds run
        there: in a process without applications the connection lives on the service's loop).
        Anywhere else, use `core`, whose calls hop onto the connection's loop."""
        client = self._opened()
        running = _running_loop()
        if running is not None and running is not client.loop:
            raise ProgrammingError(
                "the NATS connection lives on another event loop: use kernel.core from here"
            )
        return client.nc

    @property
    def core(self) -> JetStreamCore:
        return self._opened().core

    def _opened(self) -> JetStreamClient:
        if self._client is None:
            raise NotOpenError("the service's NATS connection is not open")
        return self._client

    async def seal(self, data: PersonalData, child_id: str) -> SealedPersonalData:
        """Seal a child's personal data with the child's own key (made if it is the first)."""
        return await self.core.while_connected(self._seal(data, child_id))

    async def unseal(self, sealed: SealedPersonalData) -> PersonalData | Erased:
        """Open sealed personal data; `Erased` once the child's key is deleted."""
        return await self.core.while_connected(self._unseal(sealed))

    async def seal_text(self, text: str, child_id: str, context: str = "") -> SealedText:
        """Seal free text about a child with the child's key; the same text in the same
        `context` (say, the aggregate it is written to) seals to the same value, so a command
        retried decides the same events (`ChildKeys.seal_text`)."""
        return await self.core.while_connected(self._seal_text(text, child_id, context))

    async def seal_texts(self, value: S, child_id: str, context: str = "") -> S:
        """`value` (a command) with every field of free text about the child sealed: each
        field the contract marks `"x-sealed"` (`stafett_contracts.inputs.PrivateFreeText`)."""

        async def seal(text: str) -> SealedText:
            return await self.seal_text(text, child_id, context)

        return await seal_private_fields(value, seal)

    async def open_texts(self, value: T, erased_as: str | None = None) -> T:
        """`value` with every sealed text in it (in structs, tuples, lists and dicts, however
        deep) opened: its text, or `Erased` (`erased_as`, if given) once the child's key is
        gone. For answers only: what is stored stays sealed."""
        return await self.core.while_connected(self._open_texts(value, erased_as))

    async def _seal_text(self, text: str, child_id: str, context: str) -> SealedText:
        return await (await self._child_keys()).seal_text(text, child_id, context)

    async def _open_texts(self, value: T, erased_as: str | None) -> T:
        opener: Callable[[SealedText], Awaitable[str | Erased]] | None = None

        async def open_text(sealed: SealedText) -> str | Erased:
            nonlocal opener  # the key store is asked for only when there is text to open
            if opener is None:
                opener = (await self._child_keys()).one_answer()
            return await opener(sealed)

        return await open_sealed_texts(value, open_text, erased_as)

    async def erase(self, child_id: str, reason: str) -> None:
        """Delete the child's key for good: all sealed with it reads as erased, everywhere."""
        await self.core.while_connected(self._erase(child_id, reason))

    async def _seal(self, data: PersonalData, child_id: str) -> SealedPersonalData:
        return await (await self._child_keys()).seal(data, child_id)

    async def _unseal(self, sealed: SealedPersonalData) -> PersonalData | Erased:
        return await (await self._child_keys()).open(sealed)

    async def _erase(self, child_id: str, reason: str) -> None:
        await (await self._child_keys()).erase(child_id, reason)

    async def _child_keys(self) -> ChildKeys:
        """The key store, bound on the connection's loop (its calls run there)."""
        if self._key_use is None:
            raise NotOpenError("this service does not seal or open children's personal data")
        if self._keys is None:
            self._keys = await ChildKeys.bind(
                self._opened().nc,
                replicas=self.settings.nats_stream_replicas,
                environ=self._environ,
                create=self._key_use == "seal",
            )
        return self._keys

    def context(self, actor: Actor, causation_id: str | None = None) -> Context:
        """The context of a command `actor` gives now, in the current request's correlation."""
        return Context(
            actor=actor,
            now=datetime.now(UTC),
            correlation_id=current_correlation_id() or uuid4().hex,
            causation_id=causation_id,
            directory=self.directory.current(),
        )

    def reads(self, cases: CaseSource | None = None) -> CaseReads:
        """The gate for reads of case data; cases come from the CASE stream unless given."""
        return CaseReads(
            cases=cases or StreamCases(self),
            register=self.register,
            directory=self.directory,
            access_log=self.access_log,
            rules=self.read_rules,
        )


def connection_settings(settings: Settings) -> ConnectionSettings:
    """The connection the service's eventsourcing applications make from the same settings
    (`Settings.eventsourcing_env`), so that the kernel shares it."""
    return ConnectionSettings(
        url=settings.nats_url,
        name=settings.service,
        user=settings.nats_user,
        password=settings.nats_password,
        creds_file=settings.nats_creds,
        tls_ca_file=settings.nats_tls_ca,
        inbox_prefix=settings.nats_inbox_prefix,
    )


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


def read_rules_from_env(environ: Mapping[str, str] = os.environ) -> ReadRules:
    value = environ.get(READS_FROM_AGE_VARIABLE) or "15"
    if not value.isdigit() or not 0 < int(value) <= 18:
        raise SettingsError(f"{READS_FROM_AGE_VARIABLE}={value!r}: expected an age from 1 to 18")
    return ReadRules(child_reads_from_age=int(value))
