"""One service process, from start to stop: what every service's `main` would otherwise repeat.

A service names its parts and the skeleton does the rest: the kernel (settings, the token
verifier, the register, the directory, the NATS connection: `stafett_runtime.kernel`), logging,
tracing, its eventsourcing applications on the store, its policies' loops (`follow`: readiness,
liveness, the parked events' route), its timers, and the order in which all of it starts and
stops. `stafett_runtime.service.http_app` adds health, metrics, the request log and the OpenAPI
document to the routes.

    def main() -> int:
        def wire(service: Service) -> Litestar:
            cases = service.application(Cases(service.env))
            service.follow(ConsentFollower(service.env, service.kernel.directory))
            return create_app(cases, service.kernel, service.readiness, **service.hooks)

        def document() -> Litestar:  # the OpenAPI document: no request is served
            return create_app(cast(Cases, None), Kernel.offline("case"))

        return run("case", wire, document, child_keys="seal")

`python -m stafett_<name>` serves; `python -m stafett_<name> openapi` prints the OpenAPI
document, made without connecting to anything.

Stopping goes in the reverse order of use: timers first (they issue commands), then the policies'
loops (a loop stopped mid-event leaves nothing half-written: its events and its position are one
atomic write), then the applications, and the kernel's connection last. Everything that blocks
on the store runs off the event loop (`threads.call`).
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol, TypedDict, TypeVar
from uuid import UUID

import msgspec
import structlog
from eventsourcing.utils import EnvType
from litestar import Litestar
from litestar.types import LifespanHook

from stafett_runtime.commands import AggregateType, Commands
from stafett_runtime.contracts import ContractApplication
from stafett_runtime.follower import Follower
from stafett_runtime.health import Readiness
from stafett_runtime.kernel import Kernel, KeyUse
from stafett_runtime.logging import configure_logging
from stafett_runtime.periodic import Periodic
from stafett_runtime.service import serve
from stafett_runtime.settings import SettingsError
from stafett_runtime.threads import call
from stafett_runtime.tracing import configure_tracing

log = structlog.get_logger(__name__)
# The eventsourcing library's own in-memory store: applications made only to be described.
IN_MEMORY = {"PERSISTENCE_MODULE": "eventsourcing.popo"}


class Hooks(TypedDict):
    """What the service's `create_app` passes on to `http_app`."""

    on_startup: Sequence[LifespanHook]
    on_shutdown: Sequence[LifespanHook]


class Closable(Protocol):
    def close(self) -> None: ...


A = TypeVar("A", bound=Closable)
P = TypeVar("P", bound=Periodic)


class Service:
    """A service's parts, registered while it is wired, started and stopped with its app."""

    def __init__(self, kernel: Kernel, env: Mapping[str, str] | None = None) -> None:
        self.kernel = kernel
        self.settings = kernel.settings
        # For its eventsourcing applications: the JetStream store its settings name.
        self.env = dict(env if env is not None else self.settings.eventsourcing_env())
        self.readiness = Readiness()
        self._applications: list[Closable] = []
        self._followers: list[Follower] = []
        self._timers: list[Periodic] = []
        self._closers: list[Callable[[], object]] = []

    def application(self, application: A) -> A:
        """An eventsourcing application (or anything that closes), closed when the service
        stops, after its loops."""
        self._applications.append(application)
        return application

    def follow(self, follower: Follower, name: str | None = None) -> Follower:
        """A policy's loop over another service's stream: started with the app, a readiness
        check and part of liveness (as `<upstream>-policy`), its parked events retried through
        the administrator's route."""
        self.readiness.add_policy(name or f"{follower.upstream.name}-policy", follower)
        self._followers.append(follower)
        return follower

    def timer(self, timer: P) -> P:
        """Work done every few seconds on the service's loop (`stafett_runtime.periodic`: a
        timer, a courier), from after the loops start until before they stop."""
        self._timers.append(timer)
        return timer

    def on_close(self, close: Callable[[], object]) -> None:
        """Something to close last, before the kernel (a client of its own)."""
        self._closers.append(close)

    @property
    def hooks(self) -> Hooks:
        """`on_startup` and `on_shutdown` for the service's `create_app`."""
        return Hooks(on_startup=[self._start], on_shutdown=[self._stop])

    async def _start(self) -> None:
        for follower in self._followers:
            follower.start()
        for timer in self._timers:
            await timer.start()

    async def _stop(self) -> None:
        for timer in reversed(self._timers):
            await timer.stop()
        for follower in self._followers:
            await call(follower.stop)
        for application in self._applications:
            await call(application.close)
        for close in self._closers:
            close()


class CommandApplication(ContractApplication):
    """The application of a service with one kind of aggregate: its stream, named after the
    aggregate (`feedback`: stream FEEDBACK), and the one command path on it (`commands`). A
    service with more (several kinds, a cache of another stream) writes its own."""

    def __init__(self, aggregate: AggregateType[Any, Any, Any], env: EnvType | None = None) -> None:
        self.name = aggregate.name  # the library names the stream, and reads settings, by it
        super().__init__(env)
        self.commands: Commands[Any, Any, Any] = Commands(self, aggregate)


class Written(msgspec.Struct, frozen=True, kw_only=True):
    """What a command answers: the aggregate it was given to, and its version after it."""

    id: UUID
    version: int


def run(
    name: str,
    wire: Callable[[Service], Litestar],
    document: Callable[[], Litestar] | None = None,
    *,
    child_keys: KeyUse | None = None,
    argv: Sequence[str] | None = None,
    environ: Mapping[str, str] = os.environ,
) -> int:
    """The service's command line: serve it, or (`openapi`) print its OpenAPI document, made
    by `document`, or else by `wire` on a kernel that is never opened and an in-memory store."""
    arguments = list(sys.argv[1:] if argv is None else argv)
    if arguments == ["openapi"]:
        offline = Service(Kernel.offline(name), env=IN_MEMORY)
        sys.stdout.write(openapi(document() if document else wire(offline)))
        return 0
    if arguments:
        print(f"usage: python -m stafett_{name} [openapi]", file=sys.stderr)
        return 2
    try:
        kernel = Kernel.from_env(name, child_keys=child_keys, environ=environ)
        settings = kernel.settings
        configure_logging(settings.service, settings.log_level, settings.log_format)
        configure_tracing(settings.service)
        log.info("starting", settings=repr(settings))
        app = wire(Service(kernel))  # reads the service's own settings too
    except SettingsError as error:  # misconfigured: say which variable, and do not start
        print(f"stafett {name}: {error}", file=sys.stderr)
        return 2
    serve(app, settings)
    return 0


def openapi(app: Litestar) -> str:
    """The app's OpenAPI document as the docs/ folder keeps it."""
    return json.dumps(app.openapi_schema.to_schema(), indent=2, sort_keys=True) + "\n"
