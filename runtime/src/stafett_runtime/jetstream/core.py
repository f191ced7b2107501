"""The asyncio side of the store: JetStream operations over one NATS connection.

Everything the event store does on the wire is here, once: making a stream as the store needs it,
appending (a plain publish, or an atomic batch for several messages, ADR-50) and reading (direct
get of the newest message on a subject, and batched direct get of a range, ADR-31). nats-py has
helpers for neither atomic batches nor batched direct get, so both are spoken here with plain
messages and headers, over one wildcard reply subscription.

A `JetStreamCore` works on whatever event loop its connection belongs to: the store's own loop
thread (`client.py`, for the synchronous eventsourcing recorders) or a service's loop (its access
log, its reads of another service's aggregates).
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

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

    # Streams -------------------------------------------------------------------------------

    async def ensure_stream(self, layout: StreamLayout, replicas: int) -> None:
        """Create the stream, or switch on in an existing one what the store relies on.

        Never narrows what an operator configured: it only adds subjects and flags.
        """
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
        messages = await self._direct_get(stream, {"last_by_subj": subject})
        return messages[0] if messages else None

    async def get_range(
        self, stream: str, subject: str, start: int, limit: int
    ) -> tuple[list[StoredMessage], int]:
        """Up to `limit` messages on a subject from sequence `start` on, by batched direct get.

        Returns the messages and how many more match after them.
        """
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
        messages: list[StoredMessage] = []
        while True:
            found, pending = await self.get_range(stream, subject, start, page)
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
