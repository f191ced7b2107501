"""The asyncio side of the store: JetStream operations over one NATS connection.

Everything the event store does on the wire is here, once: making a stream as the store needs it,
appending (a plain publish, or an atomic batch for several messages, ADR-50) and reading (direct
get of the newest message on a subject, and batched direct get of a range, ADR-31). nats-py has
helpers for neither atomic batches nor batched direct get, so both are spoken here with plain
messages and headers, over one wildcard reply subscription.

A `JetStreamCore` works on whatever event loop its connection belongs to: the store's own loop
thread (`client.py`, for the synchronous eventsourcing recorders) or a service's loop (its access
log, its reads of another service's aggregates).

Fail fast: while the connection is down (the server gone, paused or restarting), every operation
raises `OperationalError` at once instead of waiting (`http_app` answers 503 with Retry-After),
and one already waiting for the server when the connection drops is told within a moment. The
connection notices a server that stopped answering within seconds (`connection_options`: a
ping every PING_INTERVAL seconds, lost after MAX_OUTSTANDING_PINGS unanswered), and reconnects
by itself. A connected server that is merely slow gets the core's `timeout`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

import nats
import nats.errors
from eventsourcing.persistence import (
    DataError,
    IntegrityError,
    OperationalError,
    PersistenceError,
)
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js.api import DiscardPolicy, RetentionPolicy, StorageType, StreamConfig
from nats.js.errors import NotFoundError

from stafett_runtime.jetstream.layout import StreamLayout

WRONG_LAST_SEQUENCE = 10071  # JetStream's answer to a failed optimistic concurrency check
MAX_BATCH = 1000  # the server's limit on messages in one atomic batch (ADR-50)
MAX_BATCHES_IN_FLIGHT = 40  # the server allows 50 per stream; stay below it in one process
DEFAULT_TIMEOUT = 10.0  # seconds to wait for the server
PING_INTERVAL = 2  # seconds between the client's pings to the server
MAX_OUTSTANDING_PINGS = 2  # unanswered pings after which the connection counts as lost
RECONNECT_WAIT = 0.25  # seconds between attempts to reach one server again
CLOSE_WITHIN = 3  # seconds a close may spend finishing what is in flight; a lost server has none
WATCH_INTERVAL = 0.2  # how often a call waiting on the server looks whether the connection is up

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


def connection_options() -> dict[str, Any]:
    """How every NATS connection of a service behaves, besides where it goes and as whom (the
    store's and the kernel's alike): it tries again forever, a few times a second, and counts a
    server that stopped answering as lost within seconds, not minutes."""
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


@dataclass(frozen=True)
class OutgoingMessage:
    subject: str
    payload: bytes
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class StoredMessage:
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

    async def wait(self, seconds: float) -> list[Msg]:
        try:
            return await asyncio.wait_for(self._done, seconds)
        except TimeoutError:
            raise OperationalError(f"NATS did not answer on {self.subject} in {seconds}s") from None
        finally:
            self.forget()

    def forget(self) -> None:
        self._forget()


def _status(msg: Msg) -> str | None:
    return msg.headers.get("Status") if msg.headers else None


class Connected(Protocol):
    """Something that holds a JetStream core once it is open (a service's kernel)."""

    @property
    def core(self) -> JetStreamCore: ...


class JetStreamCore:
    """The JetStream operations of the store, over one connection."""

    def __init__(self, nc: Client, timeout: float = DEFAULT_TIMEOUT) -> None:  # seconds
        self.nc = nc
        self.timeout = timeout
        self._replies = _Replies()
        self._batch_slots: dict[str, asyncio.Semaphore] = {}

    @classmethod
    async def attach(cls, nc: Client, wait: float = DEFAULT_TIMEOUT) -> JetStreamCore:
        """The core over `nc`, listening for replies: call on the connection's own loop."""
        core = cls(nc, wait)
        await core._replies.start(nc)
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
        try:
            nc = await asyncio.wait_for(nats.connect(**{**connection_options(), **options}), wait)
        except Exception as error:
            raise OperationalError(f"cannot connect to NATS at {where}: {error!r}") from error
        return await cls.attach(nc, wait)

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

    def _unreachable(self) -> OperationalError:
        return OperationalError(f"NATS is unreachable: the connection is {_state(self.nc)}")

    # Streams -------------------------------------------------------------------------------

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

    async def publish(self, stream: str, messages: Sequence[OutgoingMessage]) -> int:
        """Append messages, all or nothing, and return the stream sequence of the last one.

        One message is a plain JetStream publish; more go as one atomic batch, whose messages
        get contiguous sequences.
        """
        return await self.while_connected(self._publish(stream, messages))

    async def _publish(self, stream: str, messages: Sequence[OutgoingMessage]) -> int:
        if len(messages) > MAX_BATCH:
            raise DataError(
                f"{len(messages)} messages in one write; JetStream's atomic batch takes "
                f"at most {MAX_BATCH}"
            )
        if len(messages) == 1:
            (only,) = messages
            return await self._request_ack(only, only.headers)
        async with self._slots(stream):
            return await self._publish_batch(messages)

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

    async def _request_ack(self, message: OutgoingMessage, headers: dict[str, str]) -> int:
        reply = self._replies.expect()
        await self.nc.publish(
            message.subject, message.payload, reply=reply.subject, headers=headers or None
        )
        ack = _raise_for_error(await reply.wait(self.timeout))
        return int(ack["seq"])

    # Reading -------------------------------------------------------------------------------

    async def get_last(self, stream: str, subject: str) -> StoredMessage | None:
        """The newest message on a subject (wildcards allowed), by direct get."""
        messages = await self.while_connected(self._direct_get(stream, {"last_by_subj": subject}))
        return messages[0] if messages else None

    async def get_range(
        self, stream: str, subject: str, start: int, limit: int
    ) -> tuple[list[StoredMessage], int]:
        """Up to `limit` messages on a subject from sequence `start` on, by batched direct get.

        Returns the messages and how many more match after them.
        """
        return await self.while_connected(self._get_range(stream, subject, start, limit))

    async def _get_range(
        self, stream: str, subject: str, start: int, limit: int
    ) -> tuple[list[StoredMessage], int]:
        request = {"seq": max(start, 1), "next_by_subj": subject, "batch": limit}
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

    async def read_all(
        self, stream: str, subject: str, page: int = 1000, start: int = 1
    ) -> list[StoredMessage]:
        """Every message on a subject from sequence `start` on, in stream order, page by page."""
        return await self.while_connected(self._read_all(stream, subject, page, start))

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
