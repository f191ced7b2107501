"""Reading the streams: a durable pull consumer per stream, batched, with low latency.

Each stream is read by the durable consumer `projection-<stream>` (filter `<prefix>.events.>`, so
tracking records stay out). The database, not the consumer, is the record of how far each
stream is applied: at start the consumer is made (again) to begin just after the stored
position, and a redelivered message at or below it changes nothing.

Latency and throughput both come from how the pull is made. nats-py's `fetch(n, timeout)` waits
for all n messages (or the timeout) once the stream is quiet, which would hold a lone event back
for the whole timeout. Instead one pull request for up to BATCH messages stays open on the
server; the loop takes the first message that arrives and whatever else has already arrived,
applies them in one transaction, acknowledges the last (AckPolicy.ALL), and tops the request up.
A lone event is applied as soon as it arrives; a backlog is applied BATCH at a time.

Each batch applied is a span (`apply <STREAM>`), linked to the traces of the requests that wrote
its first LINKED events, and counted (`stafett_projection_applied_total`). While the feed runs,
how many events it has still to apply is the gauge `stafett_projection_lag`, read from its
consumer when metrics are collected (`behind`, what `/lag` says too).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Awaitable, Callable, Sequence
from uuid import uuid4

import structlog
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.errors import NotFoundError
from opentelemetry import propagate, trace

from stafett_projection.models import Message
from stafett_runtime import metrics
from stafett_runtime.jetstream.layout import StreamLayout

log = structlog.get_logger(__name__)
tracer = trace.get_tracer(__name__)

BATCH = 500  # messages applied in one transaction at most
PULL_EXPIRES = 5.0  # seconds an open pull request lives on the server before it is renewed
LINKED = 32  # a batch's span links to the traces of this many of its events at most
LAG_TIMEOUT = 2.0  # seconds to wait for the consumer's count when metrics are collected
Apply = Callable[[str, Sequence[Message]], Awaitable[int]]


def consumer_name(stream: str) -> str:
    return f"projection-{stream.lower()}"


def events_filter(stream: str) -> str:
    return StreamLayout(stream=stream, prefix=stream.lower()).all_events


class StreamFeed:
    """Follows one stream with its durable consumer and hands batches to `apply`."""

    def __init__(self, nc: Client, stream: str, position: int, apply: Apply) -> None:
        self.nc = nc
        self.stream = stream
        self.position = position
        self._apply = apply
        self._queue: asyncio.Queue[Msg] = asyncio.Queue()
        self._inbox = ""
        self._outstanding = 0
        self.error: BaseException | None = None

    async def run(self) -> None:
        """Apply the stream's events until cancelled; wait for the stream if it is not there."""
        js = self.nc.jetstream()
        while True:
            try:
                await js.stream_info(self.stream)
                break
            except NotFoundError:
                await asyncio.sleep(1.0)  # its service has not started yet
        await self._prepare_consumer()
        self._inbox = self.nc.new_inbox()
        subscription = await self.nc.subscribe(self._inbox, cb=self._queue.put)
        loop = asyncio.get_running_loop()
        stop_reporting = metrics.observe(
            "stafett.projection.lag",
            {"stream": self.stream},
            lambda: asyncio.run_coroutine_threadsafe(self.behind(), loop).result(LAG_TIMEOUT),
        )
        try:
            while True:
                await self._pull_more()
                batch = await self._next_batch()
                if batch:
                    await self._apply_batch(batch)
        except asyncio.CancelledError:
            raise
        except BaseException as error:
            self.error = error
            log.exception("feed stopped by an error", stream=self.stream)
            raise
        finally:
            stop_reporting()
            await subscription.unsubscribe()

    async def _apply_batch(self, batch: Sequence[Message]) -> None:
        links = [
            trace.Link(context)
            for message in batch[:LINKED]
            if message.msg is not None and (context := _span_context(message.msg)) is not None
        ]
        with tracer.start_as_current_span(
            f"apply {self.stream}",
            kind=trace.SpanKind.CONSUMER,
            links=links,
            attributes={
                "messaging.system": "nats",
                "messaging.destination.name": self.stream,
                "messaging.batch.message_count": len(batch),
                "first_position": batch[0].seq,
                "last_position": batch[-1].seq,
            },
        ):
            self.position = await self._apply(self.stream, batch)
            await batch_ack(batch)
        metrics.projection_applied(self.stream, len(batch))

    async def behind(self) -> int:
        """How many events of the stream the feed has still to apply (its consumer's count)."""
        info = await self.nc.jetstream().consumer_info(self.stream, consumer_name(self.stream))
        behind: int = info.num_pending + info.num_ack_pending
        return behind

    async def _prepare_consumer(self) -> None:
        """Make the durable consumer afresh, to begin just after the stored position.

        Made afresh at every start, because the database is the record of progress, and because
        deleting it also ends pull requests a previous process left open: a message delivered
        to such a dead inbox would otherwise be acknowledged with the batch after it.
        """
        js = self.nc.jetstream()
        name = consumer_name(self.stream)
        with contextlib.suppress(NotFoundError):
            await js.delete_consumer(self.stream, name)
        await js.add_consumer(
            self.stream,
            ConsumerConfig(
                durable_name=name,
                filter_subject=events_filter(self.stream),
                ack_policy=AckPolicy.ALL,
                deliver_policy=DeliverPolicy.BY_START_SEQUENCE,
                opt_start_seq=self.position + 1,
                ack_wait=30,
                max_ack_pending=-1,
                max_waiting=64,
            ),
        )

    async def _pull_more(self) -> None:
        if self._outstanding > BATCH // 2:
            return
        wanted = BATCH * 2 - self._outstanding
        request = {"batch": wanted, "expires": int(PULL_EXPIRES * 1e9)}
        subject = f"$JS.API.CONSUMER.MSG.NEXT.{self.stream}.{consumer_name(self.stream)}"
        await self.nc.publish(subject, json.dumps(request).encode(), reply=self._inbox)
        self._outstanding += wanted

    async def _next_batch(self) -> list[Message]:
        batch: list[Message] = []
        try:
            # asyncio.timeout, not wait_for: on Python 3.11 wait_for swallows a cancellation
            # that arrives as a message does, and the feed then ran on and `stop` waited forever.
            async with asyncio.timeout(PULL_EXPIRES + 1):
                first = await self._queue.get()
        except TimeoutError:
            self._outstanding = 0  # the request is gone: ask again
            return batch
        msgs = [first]
        while len(msgs) < BATCH and not self._queue.empty():
            msgs.append(self._queue.get_nowait())
        for msg in msgs:
            status = msg.headers.get("Status") if msg.headers else None
            if status is not None:
                if status == "100":
                    continue  # a heartbeat
                # 408/409: a pull request ended; it says how many it would still have brought.
                left = msg.headers.get("Nats-Pending-Messages") if msg.headers else None
                self._outstanding = max(0, self._outstanding - int(left)) if left else 0
                if status == "409":
                    await asyncio.sleep(0.05)  # e.g. too many waiting requests: do not spin
                continue
            self._outstanding -= 1
            meta = msg.metadata
            batch.append(Message(self.stream, meta.sequence.stream, msg.subject, msg.data, msg))
        return batch


def _span_context(msg: Msg) -> trace.SpanContext | None:
    """The span that wrote the message, from its headers, if it carries one."""
    context = trace.get_current_span(propagate.extract(msg.headers or {})).get_span_context()
    return context if context.is_valid else None


async def batch_ack(batch: Sequence[Message]) -> None:
    """With AckPolicy.ALL, acknowledging the last message acknowledges the batch."""
    last = batch[-1].msg
    if last is not None:
        await last.ack()


async def read_all(
    nc: Client,
    stream: str,
    apply: Callable[[Sequence[Message]], Awaitable[None]],
    progress: Callable[[int], None] = lambda _: None,
    batch: int = 1000,
    after: int = 0,
) -> int:
    """Every event in the stream now after position `after`, through an ephemeral consumer, in
    batches (a rebuild)."""
    js = nc.jetstream()
    try:
        info = await js.stream_info(stream)
    except NotFoundError:
        return 0
    if info.state.messages == 0 or info.state.last_seq <= after:
        return 0
    name = f"projection-rebuild-{uuid4().hex}"
    made = await js.add_consumer(
        stream,
        ConsumerConfig(
            name=name,
            filter_subject=events_filter(stream),
            ack_policy=AckPolicy.NONE,
            deliver_policy=DeliverPolicy.BY_START_SEQUENCE,
            opt_start_seq=after + 1,
        ),
    )
    subscription = await js.pull_subscribe_bind(consumer=name, stream=stream)
    count = 0
    try:
        if made.num_pending == 0:
            return 0  # only tracking records since `after`: do not wait for a fetch to time out
        while True:
            try:
                msgs = await subscription.fetch(batch, timeout=2.0)
            except TimeoutError:
                break
            messages = [
                Message(stream, m.metadata.sequence.stream, m.subject, m.data, m) for m in msgs
            ]
            await apply(messages)
            count += len(messages)
            progress(count)
            if msgs[-1].metadata.num_pending == 0:
                break  # everything there was when the rebuild began, and since
    finally:
        await subscription.unsubscribe()
    return count
