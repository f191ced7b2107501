"""The asyncio side of the store: JetStream operations over one NATS connection.

Everything the event store does on the wire is here, once: making a stream as the store needs it,
appending (a plain publish, or an atomic batch for several messages, ADR-50) and reading (direct
get of the newest message on a subject, and batched direct get of a range, ADR-31). nats-py has
helpers for neither atomic batches nor batched direct get, so both are spoken here with plain
messages and headers, over one wildcard reply subscription.

One connection per process (`client.py` shares it): a `JetStreamCore` lives on the event loop
its connection was made on, and may be called from any other loop as well (a service's loop,
when the connection lives on the store's loop thread): such a call hops onto the core's loop and
its answer hops back, without blocking the caller's loop.

Group commit. Appends that come while the stream's previous batch is on its way (concurrent
writers of different aggregates) go together as the next atomic batch, so many appends cost one
round trip and one fsync. Each append keeps its own guards
(`Nats-Expected-Last-Subject-Sequence` on its subjects); two appends that guard the same subject
never share a batch, because the server checks every guard of a batch against the stream as it
was before the batch (two writers of one aggregate would both pass). When the server refuses a
batch on a guard, the appends whose guards no longer hold are told (`ConflictError`), and the
others are sent again without them. A batch never holds more than MAX_BATCH messages.

Fail fast: while the connection is down (the server gone, paused or restarting), every operation
raises `OperationalError` at once instead of waiting (`http_app` answers 503 with Retry-After),
and one already waiting for the server when the connection drops is told within WATCH_INTERVAL.
The connection notices a server that stopped answering within seconds (`connection_options`: a
ping every PING_INTERVAL seconds, lost after MAX_OUTSTANDING_PINGS unanswered), and reconnects
by itself. A connected server that is merely slow gets the core's `timeout`.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import uuid
from collections import deque
from collections.abc import Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Concatenate, ParamSpec, Protocol, TypeVar

import msgspec
import nats
import nats.errors
from eventsourcing.persistence import (
    DataError,
    IntegrityError,
    OperationalError,
    PersistenceError,
    ProgrammingError,
)
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js.api import DiscardPolicy, RetentionPolicy, StorageType, StreamConfig
from nats.js.errors import NotFoundError

from stafett_runtime import metrics
from stafett_runtime.jetstream.layout import EXPECTED_SEQUENCE, EXPECTED_SUBJECT, StreamLayout

WRONG_LAST_SEQUENCE = 10071  # JetStream's answer to a failed optimistic concurrency check
MAX_BATCH = 1000  # the server's limit on messages in one atomic batch (ADR-50)
MAX_BATCHES_IN_FLIGHT = 40  # the server allows 50 per stream; stay below it in one process
DEFAULT_TIMEOUT = 10.0  # seconds to wait for the server
PING_INTERVAL = 2  # seconds between the client's pings to the server
MAX_OUTSTANDING_PINGS = 2  # unanswered pings after which the connection counts as lost
RECONNECT_WAIT = 0.25  # seconds between attempts to reach one server again
CLOSE_WITHIN = 3  # seconds a close may spend finishing what is in flight; a lost server has none
WATCH_INTERVAL = 0.2  # how often the core looks whether the connection under waiting calls is up
GROUP_WINDOW = 0.002  # seconds a batch waits for the writers of the one before to come back

# What nats-py raises when the connection, not the request, is the trouble.
_CONNECTION_ERRORS = (
    nats.errors.ConnectionClosedError,
    nats.errors.ConnectionDrainingError,
    nats.errors.ConnectionReconnectingError,
    nats.errors.OutboundBufferLimitError,
    nats.errors.StaleConnectionError,
    nats.errors.NoRespondersError,
    nats.errors.TimeoutError,
)

T = TypeVar("T")
P = ParamSpec("P")
Settle = Callable[[int | BaseException], None]  # told an append's last sequence, or its error


def connection_options() -> dict[str, Any]:
    """How every NATS connection of a service behaves, besides where it goes and as whom: it
    tries again forever, a few times a second, and counts a server that stopped answering as
    lost within seconds, not minutes."""
    return {
        "allow_reconnect": True,
        "max_reconnect_attempts": -1,  # a store of record waits for its server to return
        "reconnect_time_wait": RECONNECT_WAIT,
        "ping_interval": PING_INTERVAL,
        "max_outstanding_pings": MAX_OUTSTANDING_PINGS,
        "drain_timeout": CLOSE_WITHIN,
    }


async def close_connection(nc: Client, *, drain: bool) -> None:
    """Close `nc` within seconds whatever the server does; with `drain`, let what is in flight
    finish first while the server answers. A server that is gone has nothing to finish, and a
    service that waits for it cannot stop."""
    if drain and nc.is_connected:
        # A drain that runs out of time raises before closing; the close below then does it.
        with contextlib.suppress(Exception):
            await asyncio.wait_for(nc.drain(), CLOSE_WITHIN * 2)
    if not nc.is_closed:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(nc.close(), CLOSE_WITHIN)


def _state(nc: Client) -> str:
    if nc.is_reconnecting:
        return "reconnecting"
    if nc.is_closed:
        return "closed"
    if nc.is_draining:
        return "closing"
    return "not connected"


class ConflictError(IntegrityError):
    """The stream was not where a write expected it to be (err_code 10071)."""


# Structs, not dataclasses: one is made per message read or written, and a frozen dataclass
# costs ten times as much to make (2 us against 0.2 us), a tenth of a 100-event load.
class OutgoingMessage(msgspec.Struct, frozen=True):
    subject: str
    payload: bytes
    headers: dict[str, str] = msgspec.field(default_factory=dict)


class StoredMessage(msgspec.Struct, frozen=True):
    seq: int
    subject: str
    headers: Mapping[str, str]
    data: bytes


def stream_config(layout: StreamLayout, replicas: int) -> StreamConfig:
    """The stream the store needs; deploy/ generates its stream definitions from it too."""
    return StreamConfig(
        name=layout.stream,
        subjects=layout.subjects,
        storage=StorageType.FILE,
        retention=RetentionPolicy.LIMITS,
        discard=DiscardPolicy.NEW,  # a full stream refuses writes; it never drops events
        num_replicas=replicas,
        allow_atomic=True,
        allow_direct=True,
        deny_delete=True,  # events are immutable: erasure is by crypto-shredding
        deny_purge=True,
    )


class _Replies:
    """Routes replies from one wildcard inbox subscription to the request waiting for them."""

    def __init__(self) -> None:
        self._prefix = ""
        self._waiting: dict[str, _Reply] = {}
        self._counter = 0

    async def start(self, nc: Client) -> None:
        self._prefix = nc.new_inbox()
        await nc.subscribe(f"{self._prefix}.*", cb=self._dispatch)

    def expect(self, until: Callable[[Msg], bool] = lambda _: True) -> _Reply:
        self._counter += 1
        key = str(self._counter)
        reply = _Reply(f"{self._prefix}.{key}", until, lambda: self._waiting.pop(key, None))
        self._waiting[key] = reply
        return reply

    def fail_all(self, error: Exception) -> None:
        for reply in list(self._waiting.values()):
            reply.fail(error)

    @property
    def waiting(self) -> bool:
        return bool(self._waiting)

    async def _dispatch(self, msg: Msg) -> None:
        reply = self._waiting.get(msg.subject.rsplit(".", 1)[-1])
        if reply is not None:
            reply.feed(msg)


class _Reply:
    def __init__(self, subject: str, until: Callable[[Msg], bool], forget: Callable[[], Any]):
        self.subject = subject
        self.messages: list[Msg] = []
        self._until = until
        self._forget = forget
        self._done: asyncio.Future[list[Msg]] = asyncio.get_running_loop().create_future()

    def feed(self, msg: Msg) -> None:
        self.messages.append(msg)
        if not self._done.done() and (_status(msg) or self._until(msg)):
            self._done.set_result(self.messages)

    def fail(self, error: Exception) -> None:
        self.forget()
        if not self._done.done():
            self._done.set_exception(error)

    async def wait(self, seconds: float) -> list[Msg]:
        try:
            return await asyncio.wait_for(self._done, seconds)
        except TimeoutError:
            raise self._no_answer(seconds) from None
        finally:
            self.forget()

    def then(self, seconds: float, settle: Callable[[list[Msg] | Exception], None]) -> None:
        """Call `settle` with the answer, or the error, once there is one: no task waits."""
        timer = asyncio.get_running_loop().call_later(seconds, self.fail, self._no_answer(seconds))

        def answered(done: asyncio.Future[list[Msg]]) -> None:
            timer.cancel()
            self.forget()
            error = None if done.cancelled() else done.exception()
            if error is None and not done.cancelled():
                settle(done.result())
            else:
                closed = ProgrammingError("the event store was closed")
                settle(error if isinstance(error, Exception) else closed)

        self._done.add_done_callback(answered)

    def forget(self) -> None:
        self._forget()

    def _no_answer(self, seconds: float) -> OperationalError:
        return OperationalError(f"NATS did not answer on {self.subject} in {seconds}s")


def _status(msg: Msg) -> str | None:
    return msg.headers.get("Status") if msg.headers else None


class Connected(Protocol):
    """Something that holds a JetStream core once it is open (a service's kernel)."""

    @property
    def core(self) -> JetStreamCore: ...


def _on_own_loop(
    method: Callable[Concatenate[JetStreamCore, P], Coroutine[Any, Any, T]],
) -> Callable[Concatenate[JetStreamCore, P], Coroutine[Any, Any, T]]:
    """Run the method on the core's own loop, whichever loop awaits it."""

    async def on_own_loop(core: JetStreamCore, /, *args: P.args, **kwargs: P.kwargs) -> T:
        if asyncio.get_running_loop() is core.loop:
            return await method(core, *args, **kwargs)
        return await core.hop(method(core, *args, **kwargs))

    functools.update_wrapper(on_own_loop, method)
    return on_own_loop


@dataclass
class _Append:
    """One append waiting for its turn: its messages, and the subjects whose heads it checks."""

    messages: Sequence[OutgoingMessage]
    settle: Settle
    guards: dict[str, int]  # subject (or subject wildcard) -> the sequence it expects there

    @classmethod
    def of(cls, messages: Sequence[OutgoingMessage], settle: Settle) -> _Append:
        guards = {
            m.headers.get(EXPECTED_SUBJECT, m.subject): int(m.headers[EXPECTED_SEQUENCE])
            for m in messages
            if EXPECTED_SEQUENCE in m.headers
        }
        return cls(messages, settle, guards)


class _StreamAppends:
    """The appends to one stream: grouped ones one batch at a time, the others as they come."""

    def __init__(self, core: JetStreamCore, stream: str) -> None:
        self._core = core
        self._stream = stream
        self._grouped: deque[_Append] = deque()
        self._alone: deque[_Append] = deque()
        self._committing = False
        self._sending = False
        self._tasks: set[asyncio.Task[None]] = set()  # held, so that none is collected midway
        self._arrived: asyncio.Future[None] | None = None  # set once `_enough` appends wait
        self._enough = 0

    def add(self, append: _Append, *, grouped: bool) -> None:
        if grouped:
            self._grouped.append(append)
            if not self._committing:
                self._committing = True
                self._start(self._commit_all())
            elif (
                self._arrived is not None
                and not self._arrived.done()
                and len(self._grouped) >= self._enough
            ):
                self._arrived.set_result(None)
        else:
            self._alone.append(append)
            if not self._sending:
                self._sending = True
                self._start(self._send_all())

    def _start(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def fail_waiting(self, error: Exception) -> None:
        while self._grouped:
            self._grouped.popleft().settle(error)
        while self._alone:
            self._alone.popleft().settle(error)

    async def _send_all(self) -> None:
        """Each append as its own write, sent without waiting for the one before (pipelined)."""
        try:
            while self._alone:
                append = self._alone.popleft()
                if len(append.messages) == 1:
                    await self._core.send_one(append.messages[0], append.settle)
                else:
                    self._start(self._commit((append,)))
        finally:
            self._sending = False

    async def _commit_all(self) -> None:
        try:
            while self._grouped:
                group = self._next_group()
                await self._commit(group)
                await self._gather(len(group))
        finally:
            self._committing = False

    async def _gather(self, expected: int) -> None:
        """Wait a moment (GROUP_WINDOW at most) for as many appends as the last batch had: its
        writers are on their way back with their next ones, and one batch for all of them
        costs one round trip and one fsync instead of two."""
        if len(self._grouped) >= expected:
            return
        self._enough = expected
        self._arrived = asyncio.get_running_loop().create_future()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._arrived, GROUP_WINDOW)
        self._arrived = None

    def _next_group(self) -> list[_Append]:
        """The waiting appends that fit one batch, in order; two that guard the same subject
        never go together (the later waits for the next batch)."""
        group: list[_Append] = []
        guarded: set[str] = set()
        count = 0
        later: list[_Append] = []
        while self._grouped and count < MAX_BATCH:
            append = self._grouped.popleft()
            if count + len(append.messages) > MAX_BATCH or not guarded.isdisjoint(append.guards):
                later.append(append)
                continue
            group.append(append)
            guarded.update(append.guards)
            count += len(append.messages)
        self._grouped.extendleft(reversed(later))
        return group

    async def _commit(self, appends: Sequence[_Append]) -> None:
        """Write the appends as one batch; on a conflict, tell those whose guards failed and
        write the rest again."""
        group = list(appends)
        while group:
            messages = [m for append in group for m in append.messages]
            try:
                last_seq = await self._core.publish_now(self._stream, messages)
            except ConflictError as conflict:
                try:
                    stale = await self._stale(group) if len(group) > 1 else group
                except Exception as error:
                    _settle_all(group, error)
                    return
                # With no guard to blame, each writer looks for itself.
                _settle_all(stale or group, conflict)
                group = [append for append in group if stale and append not in stale]
                continue
            except Exception as error:
                _settle_all(group, error)
                return
            except BaseException:  # cancelled: the store closes
                _settle_all(group, ProgrammingError("the event store was closed"))
                raise
            seq = last_seq - len(messages)
            for append in group:
                seq += len(append.messages)
                append.settle(seq)
            return

    async def _stale(self, group: Sequence[_Append]) -> list[_Append]:
        """The appends with a guard that no longer holds, by a look at each guarded subject."""
        subjects = sorted({subject for append in group for subject in append.guards})
        heads = await asyncio.gather(*(self._core.last_seq(self._stream, s) for s in subjects))
        now = dict(zip(subjects, heads, strict=True))
        return [
            append
            for append in group
            if any(now[subject] != seq for subject, seq in append.guards.items())
        ]


def _settle_all(appends: Sequence[_Append], outcome: Exception) -> None:
    for append in appends:
        append.settle(outcome)


class JetStreamCore:
    """The JetStream operations of the store, over one connection."""

    def __init__(self, nc: Client, timeout: float = DEFAULT_TIMEOUT) -> None:  # seconds
        self.nc = nc
        self.timeout = timeout
        self.loop: asyncio.AbstractEventLoop | None = None  # where the connection lives
        self._replies = _Replies()
        self._batch_slots: dict[str, asyncio.Semaphore] = {}
        self._appends: dict[str, _StreamAppends] = {}
        self._watch: asyncio.TimerHandle | None = None

    @classmethod
    async def attach(cls, nc: Client, wait: float = DEFAULT_TIMEOUT) -> JetStreamCore:
        """The core over `nc`, listening for replies: call on the connection's own loop."""
        core = cls(nc, wait)
        core.loop = asyncio.get_running_loop()
        await core._replies.start(nc)
        core._watch_connection()
        return core

    @classmethod
    async def connect(
        cls, options: Mapping[str, Any], wait: float = DEFAULT_TIMEOUT
    ) -> JetStreamCore:
        """A connection with `options` (where, and as whom) that behaves as every connection of
        a service does (`connection_options`), and the core over it.

        Once made, it reconnects forever. The first connection is given up after `wait` seconds
        with `OperationalError`: a service that cannot reach its server at start exits, and is
        started again, rather than hang in its start, where a signal to stop never reaches it.
        """
        where = ", ".join(options.get("servers") or ["the default server"])
        name = str(options.get("name") or "stafett")

        async def reconnected() -> None:
            metrics.nats_reconnected(name)

        options = {**connection_options(), "reconnected_cb": reconnected, **options}
        try:
            nc = await asyncio.wait_for(nats.connect(**options), wait)
        except Exception as error:
            raise OperationalError(f"cannot connect to NATS at {where}: {error!r}") from error
        return await cls.attach(nc, wait)

    async def hop(self, coroutine: Coroutine[Any, Any, T]) -> T:
        """Run `coroutine` on the core's loop from another loop, without blocking this one."""
        loop = self.loop
        if loop is None or loop.is_closed() or not loop.is_running():
            coroutine.close()
            raise ProgrammingError("the event store's connection is closed")
        future = asyncio.run_coroutine_threadsafe(coroutine, loop)
        answer = asyncio.wrap_future(future)
        try:
            # The core's loop may stop under the call (the store closed): look now and then.
            while not (await asyncio.wait({answer}, timeout=1.0))[0]:
                if not loop.is_running():
                    future.cancel()
                    raise ProgrammingError("the event store was closed while this call waited")
            return answer.result()
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if future.cancelled() and task is not None and not task.cancelling():
                raise ProgrammingError(
                    "the event store was closed while this call waited"
                ) from None
            future.cancel()
            raise

    @_on_own_loop
    async def while_connected(self, operation: Coroutine[Any, Any, T]) -> T:
        """Run `operation` on the connection: refused at once while the connection is down,
        and given up within WATCH_INTERVAL if it drops while the operation waits.

        Either way the caller gets `OperationalError`: the server is unreachable for now, and
        the request may be tried again shortly.
        """
        if not self.nc.is_connected:
            operation.close()
            raise self._unreachable()
        task = asyncio.ensure_future(operation)
        try:
            while True:
                done, _ = await asyncio.wait({task}, timeout=WATCH_INTERVAL)
                if done:
                    return task.result()
                if not self.nc.is_connected:
                    raise self._unreachable()
        except _CONNECTION_ERRORS as error:
            raise OperationalError(f"NATS is unreachable: {error}") from error
        finally:
            if not task.done():
                task.cancel()
                # What it raises on its way out was superseded by the error given above.
                task.add_done_callback(lambda t: t.cancelled() or t.exception())

    @_on_own_loop
    async def close(self, *, drain: bool) -> None:
        """Close the connection (within seconds); appends still waiting are told."""
        if self._watch is not None:
            self._watch.cancel()
        closing = ProgrammingError("the event store was closed while this call waited")
        for appends in self._appends.values():
            appends.fail_waiting(closing)
        await close_connection(self.nc, drain=drain)
        self._replies.fail_all(closing)

    def _watch_connection(self) -> None:
        """Calls waiting for an answer are told within WATCH_INTERVAL when the connection drops:
        the answer would never come (a reconnected server does not resend it)."""
        if self.nc.is_closed:
            self._replies.fail_all(self._unreachable())
            return
        if not self.nc.is_connected and self._replies.waiting:
            self._replies.fail_all(self._unreachable())
        assert self.loop is not None
        self._watch = self.loop.call_later(WATCH_INTERVAL, self._watch_connection)

    def _unreachable(self) -> OperationalError:
        return OperationalError(f"NATS is unreachable: the connection is {_state(self.nc)}")

    async def _at_once(self, operation: Coroutine[Any, Any, T]) -> T:
        """`operation`, refused at once while the connection is down (its replies are told by
        the watch when it drops meanwhile)."""
        if not self.nc.is_connected:
            operation.close()
            raise self._unreachable()
        try:
            return await operation
        except _CONNECTION_ERRORS as error:
            raise OperationalError(f"NATS is unreachable: {error}") from error

    # Streams -------------------------------------------------------------------------------

    @_on_own_loop
    async def ensure_stream(self, layout: StreamLayout, replicas: int) -> None:
        """Create the stream, or switch on in an existing one what the store relies on.

        Never narrows what an operator configured: it only adds subjects and flags.
        """
        await self.while_connected(self._ensure_stream(layout, replicas))

    async def _ensure_stream(self, layout: StreamLayout, replicas: int) -> None:
        js = self.nc.jetstream()
        wanted = stream_config(layout, replicas)
        try:
            info = await js.stream_info(layout.stream)
        except NotFoundError:
            try:
                await js.add_stream(wanted)
                return
            except Exception:  # another process may have created it meanwhile
                info = await js.stream_info(layout.stream)
        config = info.config
        subjects = list(config.subjects or [])
        missing = [s for s in layout.subjects if s not in subjects]
        if missing or not config.allow_atomic or not config.allow_direct:
            config.subjects = subjects + missing
            config.allow_atomic = True
            config.allow_direct = True
            await js.update_stream(config)

    # Writing -------------------------------------------------------------------------------

    @_on_own_loop
    async def append(
        self, stream: str, messages: Sequence[OutgoingMessage], *, grouped: bool = True
    ) -> int:
        """Append messages, all or nothing, and return the stream sequence of the last one.

        `grouped`: go with the other appends waiting for this stream's next batch (group
        commit); otherwise this append is written by itself, at once. Either way its messages
        get contiguous sequences, and its guards are checked by the server.
        """
        answer: asyncio.Future[int] = asyncio.get_running_loop().create_future()

        def settle(outcome: int | BaseException) -> None:
            if answer.done():
                return
            if isinstance(outcome, BaseException):
                answer.set_exception(outcome)
            else:
                answer.set_result(outcome)

        self.start_append(stream, messages, settle, grouped=grouped)
        return await answer

    async def publish(self, stream: str, messages: Sequence[OutgoingMessage]) -> int:
        """Append messages by themselves, at once (not grouped): all or nothing, the sequence
        of the last returned. For writes whose headers a batch does not take (`Nats-Msg-Id`:
        a duplicate in an atomic batch fails the whole batch)."""
        return await self.append(stream, messages, grouped=False)

    def start_append(
        self, stream: str, messages: Sequence[OutgoingMessage], settle: Settle, *, grouped: bool
    ) -> None:
        """Start an append, on the core's loop; `settle` is told how it ended (the thread bridge
        of `client.py` uses this, so that no task is made per append)."""
        if not messages:
            settle(ProgrammingError("an append needs at least one message"))
        elif len(messages) > MAX_BATCH:
            settle(
                DataError(
                    f"{len(messages)} messages in one write; JetStream's atomic batch takes "
                    f"at most {MAX_BATCH}"
                )
            )
        elif not self.nc.is_connected:
            settle(self._unreachable())
        else:
            appends = self._appends.get(stream)
            if appends is None:
                appends = self._appends[stream] = _StreamAppends(self, stream)
            appends.add(_Append.of(messages, settle), grouped=grouped)

    async def publish_now(self, stream: str, messages: Sequence[OutgoingMessage]) -> int:
        """Write the messages now, all or nothing: one is a plain JetStream publish, more go as
        one atomic batch, whose messages get contiguous sequences. The last one's sequence."""
        return await self._at_once(self._publish_now(stream, messages))

    async def _publish_now(self, stream: str, messages: Sequence[OutgoingMessage]) -> int:
        if len(messages) == 1:
            (only,) = messages
            return await self._request_ack(only)
        async with self._slots(stream):
            return await self._publish_batch(messages)

    async def send_one(self, message: OutgoingMessage, settle: Settle) -> None:
        """Publish one message and return at once; `settle` gets its sequence when it is
        acknowledged (or the error)."""
        if not self.nc.is_connected:
            settle(self._unreachable())
            return
        reply = self._replies.expect()
        try:
            await self.nc.publish(
                message.subject, message.payload, reply.subject, headers=message.headers or None
            )
        except _CONNECTION_ERRORS as error:
            reply.forget()
            settle(OperationalError(f"NATS is unreachable: {error}"))
            return
        except Exception as error:  # not sent: its writer is told, the others go on
            reply.forget()
            settle(error)
            return

        def acknowledged(answer: list[Msg] | Exception) -> None:
            if isinstance(answer, Exception):
                settle(answer)
                return
            try:
                settle(int(_raise_for_error(answer)["seq"]))
            except Exception as error:
                settle(error)

        reply.then(self.timeout, acknowledged)

    def _slots(self, stream: str) -> asyncio.Semaphore:
        slots = self._batch_slots.get(stream)
        if slots is None:
            slots = self._batch_slots[stream] = asyncio.Semaphore(MAX_BATCHES_IN_FLIGHT)
        return slots

    async def _publish_batch(self, messages: Sequence[OutgoingMessage]) -> int:
        batch_id = uuid.uuid4().hex
        opened, committed = self._replies.expect(), self._replies.expect()
        last = len(messages)
        try:
            for number, message in enumerate(messages, start=1):
                headers = {
                    **message.headers,
                    "Nats-Batch-Id": batch_id,
                    "Nats-Batch-Sequence": str(number),
                }
                reply = ""
                if number == 1:
                    reply = opened.subject
                elif number == last:
                    headers["Nats-Batch-Commit"] = "1"
                    reply = committed.subject
                await self.nc.publish(message.subject, message.payload, reply, headers=headers)
            # The opening message's answer comes first and names the real cause (such as
            # atomic publish being off); the commit's answer is the PubAck of the whole batch.
            _raise_for_error(await opened.wait(self.timeout))
            ack = _raise_for_error(await committed.wait(self.timeout))
        finally:
            opened.forget()
            committed.forget()
        return int(ack["seq"])

    async def _request_ack(self, message: OutgoingMessage) -> int:
        reply = self._replies.expect()
        await self.nc.publish(
            message.subject, message.payload, reply=reply.subject, headers=message.headers or None
        )
        ack = _raise_for_error(await reply.wait(self.timeout))
        return int(ack["seq"])

    # Reading -------------------------------------------------------------------------------

    @_on_own_loop
    async def get_last(self, stream: str, subject: str) -> StoredMessage | None:
        """The newest message on a subject (wildcards allowed), by direct get."""
        messages = await self._at_once(self._direct_get(stream, {"last_by_subj": subject}))
        return messages[0] if messages else None

    async def last_seq(self, stream: str, subject: str) -> int:
        """The sequence of the newest message on a subject; 0 when there is none."""
        last = await self.get_last(stream, subject)
        return 0 if last is None else last.seq

    @_on_own_loop
    async def get_range(
        self, stream: str, subject: str | None, start: int, limit: int
    ) -> tuple[list[StoredMessage], int]:
        """Up to `limit` messages on a subject (None: any) from sequence `start` on, by batched
        direct get.

        Returns the messages and how many more match after them. Without a subject the server
        reads on by sequence; a wildcard filter costs it a match per subject, which, in a stream
        of many aggregates, made reading everything a fifth slower (measured in the benchmark).
        """
        return await self._at_once(self._get_range(stream, subject, start, limit))

    async def _get_range(
        self, stream: str, subject: str | None, start: int, limit: int
    ) -> tuple[list[StoredMessage], int]:
        request: dict[str, Any] = {"seq": max(start, 1), "batch": limit}
        if subject is not None:
            request["next_by_subj"] = subject
        found: list[StoredMessage] = []
        pending = 0
        # A batch ends with a status message: 204 (end of batch) or 404 (nothing matched).
        raw = await self._direct_request(stream, request, until=lambda _: False)
        for msg in raw:
            status = _status(msg)
            if status == "204":
                pending = int(msg.headers.get("Nats-Num-Pending", "0")) if msg.headers else 0
            elif status is None:
                found.append(_stored(msg))
        return found, pending

    @_on_own_loop
    async def read_all(
        self, stream: str, subject: str, page: int = 1000, start: int = 1
    ) -> list[StoredMessage]:
        """Every message on a subject from sequence `start` on, in stream order, page by page."""
        return await self._at_once(self._read_all(stream, subject, page, start))

    async def _read_all(
        self, stream: str, subject: str, page: int, start: int
    ) -> list[StoredMessage]:
        messages: list[StoredMessage] = []
        while True:
            found, pending = await self._get_range(stream, subject, start, page)
            messages.extend(found)
            if not found or pending == 0:
                return messages
            start = found[-1].seq + 1

    async def _direct_get(self, stream: str, request: dict[str, Any]) -> list[StoredMessage]:
        raw = await self._direct_request(stream, request, lambda _: True)
        return [_stored(msg) for msg in raw if _status(msg) is None]

    async def _direct_request(
        self, stream: str, request: dict[str, Any], until: Callable[[Msg], bool]
    ) -> list[Msg]:
        reply = self._replies.expect(until)
        await self.nc.publish(
            f"$JS.API.DIRECT.GET.{stream}", json.dumps(request).encode(), reply=reply.subject
        )
        messages = await reply.wait(self.timeout)
        last = messages[-1]
        status = _status(last)
        if status not in (None, "204", "404"):
            description = last.headers.get("Description", "") if last.headers else ""
            raise OperationalError(f"direct get from {stream} failed: {status} {description}")
        return messages


def _stored(msg: Msg) -> StoredMessage:
    headers = msg.headers or {}
    return StoredMessage(
        seq=int(headers["Nats-Sequence"]),
        subject=headers["Nats-Subject"],
        headers=headers,
        data=msg.data,
    )


def _raise_for_error(messages: Sequence[Msg]) -> dict[str, Any]:
    """Parse a JetStream reply; turn its error, if any, into the library's exception types."""
    msg = messages[-1]
    status = _status(msg)
    if status == "503":
        raise OperationalError(f"no JetStream stream answers on {msg.subject!r} (503)")
    if not msg.data:
        return {}
    answer: dict[str, Any] = json.loads(msg.data)
    error = answer.get("error")
    if error:
        code = error.get("err_code")
        text = f"JetStream refused the write: {error.get('description')} (err_code {code})"
        if code == WRONG_LAST_SEQUENCE:
            raise ConflictError(text)
        raise PersistenceError(text) if code is None else OperationalError(text)
    return answer
