"""One NATS connection per process, and the bridge from synchronous code to it.

Every `JetStreamClient` made in a process with the same connection settings (where, as whom, how
long to wait; not the name) is a lease on the same connection: every eventsourcing application,
policy loop and upstream reader, and the service's kernel, share it. The last lease closed
closes it; closing one application leaves the connection under the others.

The connection lives on one event loop. Made from synchronous code (an application being
constructed), that is a loop thread of its own; made by an async opener (`JetStreamClient.open`,
the kernel of a service that has no application, such as the projection), it is the opener's
loop. Either way, any code reaches it:

- synchronous code (the eventsourcing recorders) with `run(coroutine)` from any thread that runs
  no event loop: the coroutine runs on the connection's loop while the caller waits. Calling it
  from a thread that runs a loop is refused, because it would stall that loop: service code
  calls the application through `stafett_runtime.threads.call`. Appends take a shorter way
  (`append`): no task is made per append, and many appends wake the loop once;
- async code on any loop through `core` (`core.py`), whose operations hop onto the
  connection's loop and back when they are awaited elsewhere.

While the connection is down, a call fails at once with `OperationalError` (`core.py` says how),
so a caller's thread is never held waiting for a server that is gone; closing takes seconds at
most, whatever the server does. A lease whose connection lived on a loop that has since ended
takes a new connection on its next call.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
import ssl
import threading
import time
from collections import deque
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from eventsourcing.persistence import OperationalError, ProgrammingError
from nats.aio.client import Client

from stafett_runtime.jetstream.core import (
    DEFAULT_TIMEOUT,
    MAX_BATCH,
    RECONNECT_WAIT,
    ConflictError,
    JetStreamCore,
    OutgoingMessage,
    StoredMessage,
    stream_config,
)
from stafett_runtime.jetstream.layout import StreamLayout

__all__ = [
    "MAX_BATCH",
    "ConflictError",
    "ConnectionSettings",
    "EventLoop",
    "JetStreamClient",
    "LoopThread",
    "OutgoingMessage",
    "StoredMessage",
    "connections_open",
    "server_urls",
    "stream_config",
]

T = TypeVar("T")

_CLOSED_WHILE_WAITING = "the event store was closed while this call waited"


@dataclass(frozen=True)
class ConnectionSettings:
    url: str = "nats://127.0.0.1:4222"
    name: str = "eventsourcing"
    user: str | None = None
    password: str | None = None
    creds_file: str | None = None
    tls_ca_file: str | None = None
    inbox_prefix: str | None = None
    timeout: float = DEFAULT_TIMEOUT

    def options(self) -> dict[str, Any]:
        """Keyword arguments for `nats.connect`: where, and as whom."""
        options: dict[str, Any] = {
            "servers": server_urls(self.url),
            "name": self.name,
            "connect_timeout": self.timeout,
        }
        if self.user:
            options.update(user=self.user, password=self.password)
        if self.creds_file:
            options["user_credentials"] = self.creds_file
        if self.tls_ca_file:
            options["tls"] = ssl.create_default_context(cafile=self.tls_ca_file)
        if self.inbox_prefix:
            # Replies come to this service's own inboxes, so NATS can permit them narrowly.
            options["inbox_prefix"] = self.inbox_prefix
        return options

    @property
    def shared_as(self) -> ConnectionSettings:
        """What makes two connections the same one: all but the name."""
        return dataclasses.replace(self, name="")


def server_urls(url: str) -> list[str]:
    """`nats://a:4222,nats://b:4222` names several servers of one cluster, to try in turn."""
    return [part.strip() for part in url.split(",") if part.strip()]


class EventLoop:
    """The loop a connection lives on, seen from threads that wait for it.

    This one is someone else's loop (an async opener's): it is alive while it runs, and not
    ours to stop. `LoopThread` runs a loop of its own.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop

    def alive(self) -> bool:
        return self.loop.is_running()

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        """Run a coroutine on the loop and wait for it; refused on any thread that runs a loop."""
        if _running_loop() is not None:  # also true on the loop's own thread
            coroutine.close()
            raise ProgrammingError(
                "the event store blocks; call the application from a worker thread "
                "(stafett_runtime.threads.call, or asyncio.to_thread), never on a running "
                "event loop"
            )
        if not self.alive():
            coroutine.close()
            raise ProgrammingError(_CLOSED_WHILE_WAITING)
        return self.wait(asyncio.run_coroutine_threadsafe(coroutine, self.loop))

    def wait(self, future: concurrent.futures.Future[T]) -> T:
        """The future's result. A call in flight when the loop ends would otherwise wait
        forever, so the caller looks up now and then and is told instead."""
        try:
            while not concurrent.futures.wait([future], timeout=1.0).done:
                if not self.alive():
                    future.cancel()
                    raise ProgrammingError(_CLOSED_WHILE_WAITING)
            return future.result()
        except concurrent.futures.CancelledError:
            if self.alive():
                raise
            raise ProgrammingError(_CLOSED_WHILE_WAITING) from None  # cancelled by `stop`

    def stop_soon(self) -> None:
        """Nothing to stop: the loop belongs to whoever runs it."""

    def stop(self) -> None:
        """Nothing to stop: the loop belongs to whoever runs it."""


class LoopThread(EventLoop):
    """An event loop running forever on a daemon thread, to run coroutines for sync callers."""

    def __init__(self, name: str) -> None:
        super().__init__(asyncio.new_event_loop())
        self._thread = threading.Thread(target=self.loop.run_forever, name=name, daemon=True)
        self._thread.start()

    def alive(self) -> bool:
        return self._thread.is_alive()

    def stop_soon(self) -> None:
        """Stop the loop without waiting for it (safe from any thread, the loop's own too)."""
        if not self.loop.is_closed():
            self.loop.call_soon_threadsafe(self.loop.stop)

    def stop(self) -> None:
        self.stop_soon()
        self._thread.join(timeout=10)
        if self._thread.is_alive() or self.loop.is_closed() or self.loop.is_running():
            return  # still stopping, stopped already, or its thread ended with the interpreter
        # Calls still in flight have been told (see `wait`); end their coroutines too, so that
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


class _Connection:
    """The process's connection for one set of settings, and the loop it lives on."""

    def __init__(self, settings: ConnectionSettings, core: JetStreamCore, home: EventLoop):
        self.settings = settings
        self.core = core
        self.home = home
        self.leases = 0
        self._submitted: deque[tuple[str, Sequence[OutgoingMessage], bool, _Answer]] = deque()
        self._submitting = threading.Lock()
        self._draining = False

    @classmethod
    def on_own_thread(cls, settings: ConnectionSettings) -> _Connection:
        home = LoopThread(name=f"jetstream:{settings.name}")
        try:
            core = home.run(JetStreamCore.connect(settings.options(), settings.timeout))
        except BaseException:
            home.stop()
            raise
        return cls(settings, core, home)

    @classmethod
    async def here(cls, settings: ConnectionSettings) -> _Connection:
        core = await JetStreamCore.connect(settings.options(), settings.timeout)
        return cls(settings, core, EventLoop(asyncio.get_running_loop()))

    def usable(self) -> bool:
        return self.home.alive() and not self.core.nc.is_closed

    def append(self, stream: str, messages: Sequence[OutgoingMessage], grouped: bool) -> int:
        """Append from a thread: the messages wait in a queue that the loop empties in one go
        (woken once for all that came meanwhile), and this thread waits for its answer."""
        answer = _Answer()
        with self._submitting:
            self._submitted.append((stream, messages, grouped, answer))
            wake = not self._draining
            self._draining = True
        if wake:
            try:
                self.home.loop.call_soon_threadsafe(self._drain)
            except RuntimeError:  # the loop is closed
                raise ProgrammingError(_CLOSED_WHILE_WAITING) from None
        return answer.wait(self.home)

    def _drain(self) -> None:
        while True:
            with self._submitting:
                if not self._submitted:
                    self._draining = False
                    return
                stream, messages, grouped, answer = self._submitted.popleft()
            self.core.start_append(stream, messages, answer.settle, grouped=grouped)

    def close(self) -> None:
        """Close it, from any thread; on a running loop without waiting."""
        running = _running_loop()
        if running is self.home.loop:
            closing = running.create_task(self.core.close(drain=True))
            closing.add_done_callback(lambda _: self.home.stop_soon())
            return
        if not self.home.alive():
            self.home.stop()
            return
        if running is not None:
            # On another loop (an application collected there): that loop must not block, so
            # the connection's loop closes it and then stops, by itself.
            closing_elsewhere = asyncio.run_coroutine_threadsafe(
                self.core.close(drain=True), self.home.loop
            )
            closing_elsewhere.add_done_callback(lambda _: self.home.stop_soon())
            return
        try:
            self.home.run(self.core.close(drain=True))
        finally:
            self.home.stop()

    async def aclose(self) -> None:
        """Close it from async code, without blocking the caller's loop."""
        if self.home.alive():
            await self.core.close(drain=True)
        await asyncio.to_thread(self.home.stop)


class _Answer:
    """Where the loop puts an append's answer for the thread that waits: a lock the thread
    waits on, released once the answer is in (lighter than a Future, and there is one per
    append)."""

    __slots__ = ("_outcome", "_ready")

    def __init__(self) -> None:
        self._ready = threading.Lock()
        self._ready.acquire()
        self._outcome: int | BaseException | None = None

    def settle(self, outcome: int | BaseException) -> None:
        if self._outcome is None:
            self._outcome = outcome
            self._ready.release()

    def wait(self, home: EventLoop) -> int:
        while not self._ready.acquire(timeout=1.0):
            if not home.alive():  # the loop ended under the call: tell the caller
                raise ProgrammingError(_CLOSED_WHILE_WAITING)
        outcome = self._outcome
        if isinstance(outcome, BaseException):
            raise outcome
        assert outcome is not None
        return outcome


_connections: dict[ConnectionSettings, _Connection] = {}
_connections_lock = threading.Lock()


def connections_open() -> int:
    """How many NATS connections the store holds in this process (one per settings in use)."""
    with _connections_lock:
        return sum(1 for c in _connections.values() if c.usable())


def _registered(settings: ConnectionSettings) -> _Connection | None:
    with _connections_lock:
        current = _connections.get(settings.shared_as)
        if current is not None and current.usable():
            current.leases += 1
            return current
        return None


def _register(made: _Connection) -> tuple[_Connection, bool]:
    """Register a new connection, unless another was registered meanwhile: the one leased,
    and whether it is `made`."""
    with _connections_lock:
        current = _connections.get(made.settings.shared_as)
        if current is not None and current.usable():
            current.leases += 1
            return current, False
        _connections[made.settings.shared_as] = made
        made.leases = 1
        return made, True


def _release(connection: _Connection) -> bool:
    """Give back a lease; True when it was the last one (the connection is then to close)."""
    with _connections_lock:
        connection.leases -= 1
        if connection.leases > 0:
            return False
        if _connections.get(connection.settings.shared_as) is connection:
            del _connections[connection.settings.shared_as]
        return True


def _acquire(settings: ConnectionSettings) -> _Connection:
    connection = _registered(settings)
    if connection is None:
        made = _Connection.on_own_thread(settings)  # outside the lock: it takes a while
        connection, kept = _register(made)
        if not kept:  # another thread connected first: use theirs
            made.close()
    # A new lease waits for a connection that is reconnecting, as a new connection would.
    for _ in range(_looks(settings)):
        if connection.core.nc.is_connected:
            break
        time.sleep(_LOOK_EVERY)
    if not connection.core.nc.is_connected:
        _give_back(connection)
        raise _cannot_connect(settings)
    return connection


_LOOK_EVERY = RECONNECT_WAIT / 5  # seconds between looks at a connection that reconnects


def _looks(settings: ConnectionSettings) -> int:
    return int(settings.timeout / _LOOK_EVERY) + 1


def _give_back(connection: _Connection) -> None:
    if _release(connection):
        connection.close()


def _cannot_connect(settings: ConnectionSettings) -> OperationalError:
    return OperationalError(
        f"cannot connect to NATS at {settings.url}: not connected after {settings.timeout}s"
    )


class JetStreamClient:
    """A lease on the process's store connection, with the JetStream operations the recorders
    need. Made from synchronous code; `await JetStreamClient.open(...)` from async code."""

    def __init__(self, settings: ConnectionSettings) -> None:
        self._lease(settings, _acquire(settings))

    def _lease(self, settings: ConnectionSettings, connection: _Connection) -> None:
        self.settings = settings
        self._connection = connection
        self._closed = False
        self._renewing = threading.Lock()

    @classmethod
    async def open(cls, settings: ConnectionSettings) -> JetStreamClient:
        """A lease from async code: made on this loop if the process has no connection yet."""
        connection = _registered(settings)
        if connection is None:
            made = await _Connection.here(settings)
            connection, kept = _register(made)
            if not kept:
                await made.aclose()
        for _ in range(_looks(settings)):  # reconnecting: wait, as a new connection would
            if connection.core.nc.is_connected:
                break
            await asyncio.sleep(_LOOK_EVERY)
        if not connection.core.nc.is_connected:
            if _release(connection):
                await connection.aclose()
            raise _cannot_connect(settings)
        client = cls.__new__(cls)
        client._lease(settings, connection)
        return client

    @property
    def core(self) -> JetStreamCore:
        return self._live().core

    @property
    def nc(self) -> Client:
        return self._live().core.nc

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        """The loop the connection lives on."""
        return self._live().home.loop

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        """Run a coroutine on the connection's loop and wait for it (not on a running loop)."""
        return self._live().home.run(coroutine)

    def append(
        self, stream: str, messages: Sequence[OutgoingMessage], *, grouped: bool = True
    ) -> int:
        """Append, waiting for the answer (not on a running loop): the sequence of the last
        message. `grouped`: with other appends to the stream, in one batch (`core.append`)."""
        if _running_loop() is not None:
            raise ProgrammingError(
                "the event store blocks; call the application from a worker thread "
                "(stafett_runtime.threads.call, or asyncio.to_thread), never on a running "
                "event loop"
            )
        return self._live().append(stream, messages, grouped)

    def close(self) -> None:
        """Give the lease back; the last one closes the connection. Closing twice is harmless."""
        if self._closed:
            return
        self._closed = True
        _give_back(self._connection)

    async def aclose(self) -> None:
        """`close`, from async code: the caller's loop is never blocked."""
        if self._closed:
            return
        self._closed = True
        if _release(self._connection):
            await self._connection.aclose()

    def _live(self) -> _Connection:
        """The leased connection; a new one if it lived on a loop that has ended (its opener's
        loop stopped while this lease was still in use)."""
        connection = self._connection
        if connection.home.alive() or self._closed or _running_loop() is not None:
            return connection
        with self._renewing:
            if self._connection is connection:
                self._connection = _acquire(self.settings)
                _give_back(connection)
            return self._connection

    # The JetStream operations, run on the connection's loop (by `run`, or awaited anywhere).

    async def ensure_stream(self, layout: StreamLayout, replicas: int) -> None:
        await self.core.ensure_stream(layout, replicas)

    async def publish(self, stream: str, messages: Sequence[OutgoingMessage]) -> int:
        return await self.core.publish(stream, messages)

    async def get_last(self, stream: str, subject: str) -> StoredMessage | None:
        return await self.core.get_last(stream, subject)

    async def get_range(
        self, stream: str, subject: str | None, start: int, limit: int
    ) -> tuple[list[StoredMessage], int]:
        return await self.core.get_range(stream, subject, start, limit)

    async def read_all(
        self, stream: str, subject: str, page: int = 1000, start: int = 1
    ) -> list[StoredMessage]:
        return await self.core.read_all(stream, subject, page, start)
