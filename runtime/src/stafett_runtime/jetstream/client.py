"""The synchronous side of the store: one NATS connection on an event loop thread of its own.

The `eventsourcing` library is synchronous and services are async. This module is the bridge:
recorders call `JetStreamClient.run(coroutine)` from any thread, the coroutine runs on the
client's loop thread (with the JetStream operations of `core.py`), and the caller blocks until
it is done. Calling it from a thread that runs an event loop is refused, because it would stall
that loop: service code calls the application through `stafett_runtime.threads.call`.

While the connection is down, a call fails at once with `OperationalError` (`core.py` says how),
so a caller's thread is never held waiting for a server that is gone; closing takes seconds at
most, whatever the server does.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import ssl
import threading
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from eventsourcing.persistence import ProgrammingError
from nats.aio.client import Client

from stafett_runtime.jetstream.core import (
    MAX_BATCH,
    ConflictError,
    JetStreamCore,
    OutgoingMessage,
    StoredMessage,
    close_connection,
    stream_config,
)
from stafett_runtime.jetstream.layout import StreamLayout

__all__ = [
    "MAX_BATCH",
    "ConflictError",
    "ConnectionSettings",
    "JetStreamClient",
    "LoopThread",
    "OutgoingMessage",
    "StoredMessage",
    "server_urls",
    "stream_config",
]

T = TypeVar("T")


@dataclass(frozen=True)
class ConnectionSettings:
    url: str = "nats://127.0.0.1:4222"
    name: str = "eventsourcing"
    user: str | None = None
    password: str | None = None
    creds_file: str | None = None
    tls_ca_file: str | None = None
    inbox_prefix: str | None = None
    timeout: float = 10.0


def server_urls(url: str) -> list[str]:
    """`nats://a:4222,nats://b:4222` names several servers of one cluster, to try in turn."""
    return [part.strip() for part in url.split(",") if part.strip()]


class LoopThread:
    """An event loop running forever on a daemon thread, to run coroutines for sync callers."""

    def __init__(self, name: str) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name=name, daemon=True)
        self._thread.start()

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        """Run a coroutine on the loop and wait for it; refused on any thread that runs a loop."""
        if _running_loop() is not None:  # also true on the loop's own thread
            coroutine.close()
            raise ProgrammingError(
                "the event store blocks; call the application from a worker thread "
                "(stafett_runtime.threads.call, or asyncio.to_thread), never on a running "
                "event loop"
            )
        future = asyncio.run_coroutine_threadsafe(coroutine, self.loop)
        # A call in flight when the store is closed would otherwise wait forever: its loop no
        # longer runs to finish it. So the caller looks up now and then and is told instead.
        closed = ProgrammingError("the event store was closed while this call waited")
        while not concurrent.futures.wait([future], timeout=1.0).done:
            if not self._thread.is_alive():
                future.cancel()
                raise closed
        try:
            return future.result()
        except concurrent.futures.CancelledError:
            if self._thread.is_alive():
                raise
            raise closed from None  # cancelled by `stop`

    def stop_soon(self) -> None:
        """Stop the loop without waiting for it (safe from any thread, the loop's own too)."""
        self.loop.call_soon_threadsafe(self.loop.stop)

    def stop(self) -> None:
        self.stop_soon()
        self._thread.join(timeout=10)
        if self._thread.is_alive():
            return
        # Calls still in flight have been told (see `run`); end their coroutines too, so that
        # none is left pending (and reported as destroyed, in some other test's log) later.
        pending = asyncio.all_tasks(self.loop)
        for task in pending:
            task.cancel()
        if pending and not self.loop.is_running() and _running_loop() is None:
            self.loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        self.loop.close()


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


class JetStreamClient:
    """The store's NATS connection and the JetStream operations the recorders need."""

    def __init__(self, settings: ConnectionSettings) -> None:
        self.settings = settings
        self._thread = LoopThread(name=f"jetstream-store:{settings.name}")
        self._closed = False
        try:
            self.core: JetStreamCore = self.run(self._connect())
            self.nc: Client = self.core.nc
        except BaseException:
            self._thread.stop()
            raise

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return self._thread.run(coroutine)

    def close(self) -> None:
        """Drain the connection and stop the loop thread; closing twice is harmless."""
        if self._closed:
            return
        self._closed = True
        if _running_loop() is not None:
            # Closed on an event loop (an application garbage-collected there): that loop must
            # not block, so the store's own loop drains the connection and then stops itself.
            drained = asyncio.run_coroutine_threadsafe(
                close_connection(self.nc, drain=True), self._thread.loop
            )
            drained.add_done_callback(lambda _: self._thread.stop_soon())
            return
        try:
            self.run(close_connection(self.nc, drain=True))
        finally:
            self._thread.stop()

    async def _connect(self) -> JetStreamCore:
        s = self.settings
        options: dict[str, Any] = {
            "servers": server_urls(s.url),
            "name": s.name,
            "connect_timeout": s.timeout,
        }
        if s.user:
            options.update(user=s.user, password=s.password)
        if s.creds_file:
            options["user_credentials"] = s.creds_file
        if s.tls_ca_file:
            options["tls"] = ssl.create_default_context(cafile=s.tls_ca_file)
        if s.inbox_prefix:
            # Replies come to this service's own inboxes, so NATS can permit them narrowly.
            options["inbox_prefix"] = s.inbox_prefix
        return await JetStreamCore.connect(options, s.timeout)

    # The JetStream operations, run on this client's loop by the recorders.

    async def ensure_stream(self, layout: StreamLayout, replicas: int) -> None:
        await self.core.ensure_stream(layout, replicas)

    async def publish(self, stream: str, messages: Sequence[OutgoingMessage]) -> int:
        return await self.core.publish(stream, messages)

    async def get_last(self, stream: str, subject: str) -> StoredMessage | None:
        return await self.core.get_last(stream, subject)

    async def get_range(
        self, stream: str, subject: str, start: int, limit: int
    ) -> tuple[list[StoredMessage], int]:
        return await self.core.get_range(stream, subject, start, limit)

    async def read_all(
        self, stream: str, subject: str, page: int = 1000, start: int = 1
    ) -> list[StoredMessage]:
        return await self.core.read_all(stream, subject, page, start)
