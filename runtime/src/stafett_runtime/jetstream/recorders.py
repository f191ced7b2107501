"""The eventsourcing recorders, over JetStream.

Writing. Every event of one `insert_events` call (and, for a process recorder, the tracking
record) is one append, all or nothing. The first message of each aggregate carries
`Nats-Expected-Last-Subject-Sequence` for the aggregate's subjects, so the server rejects the
append if anyone wrote to that aggregate since; the tracking record is guarded the same way. The
recorder remembers where each aggregate's head was when it last read or wrote it, so a
load-then-save costs one round trip, and a new aggregate is optimistically assumed empty. When
the server says a guess was stale, the heads are looked up and the versions compared: a real
conflict raises IntegrityError, a stale guess is retried.

With group commit (`NATS_GROUP_COMMIT`, on by default), appends made at the same time by other
threads go in the same atomic batch, each with its own guards (`core.py` says how a conflict in
a batch is told to the one append it concerns); without it, each append is written by itself (a
plain publish for one message, an atomic batch for more).

Reading. One aggregate is read with batched direct get (`next_by_subj` on its subject wildcard),
never by creating a consumer; the newest event (a snapshot lookup) with `last_by_subj`. The
application sequence is read by batched direct get by sequence alone, leaving out the tracking
records here (a wildcard filter costs the server a match per subject, slower in a stream of
many aggregates), or over one event type's subjects. `subscribe` follows the
stream live with one ordered consumer per subscription.

A known cost: a read bounded by version (`gt`, `lte`) still fetches the aggregate's whole
sequence and filters here, because a version does not say where in the stream it stands. So a
snapshot saves applying events, not fetching them; for the hundreds of events of a case that is
a few milliseconds (see the benchmark).

Signing. With a signer (`stafett_runtime.evidence`), every message is signed as it is guarded,
and names the digest of the message before it on its aggregate's subjects: the head the guard
expects, which the recorder remembers with its digest, or the message before it in the same
append. A stale head is refused by the server, so a chain never skips a message.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import queue
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from threading import Lock
from typing import Any
from uuid import UUID

from eventsourcing.persistence import (
    AggregateRecorder,
    ApplicationRecorder,
    IntegrityError,
    Notification,
    ProcessRecorder,
    ProgrammingError,
    StoredEvent,
    Subscription,
    Tracking,
    TrackingRecorder,
)
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription as NatsSubscription
from nats.js.api import ConsumerConfig, DeliverPolicy
from opentelemetry import propagate

from stafett_runtime import evidence, metrics, tracing
from stafett_runtime.jetstream.client import (
    ConflictError,
    JetStreamClient,
    OutgoingMessage,
    StoredMessage,
)
from stafett_runtime.jetstream.layout import (
    APPLICATION_NAME,
    EXPECTED_SEQUENCE,
    EXPECTED_SUBJECT,
    NOTIFICATION_ID,
    ORIGINATOR_ID,
    ORIGINATOR_VERSION,
    TOPIC,
    StreamLayout,
)

WRITE_ATTEMPTS = 3


@dataclass(frozen=True)
class JetStreamNotification(Notification):
    """A notification with the NATS headers it was stored with (trace context, among others)."""

    headers: Mapping[str, str] = field(default_factory=dict, compare=False, hash=False)


@dataclass(frozen=True)
class _Head:
    """The newest record on a subject: the version (or notification id) it carries, where, and
    its digest (the next message's `Stafett-Previous`)."""

    version: int
    seq: int
    digest: str | None = None


class _Heads:
    """A bounded memory of aggregate and tracking heads, to skip a lookup before a write."""

    def __init__(self, size: int = 10_000) -> None:
        self._heads: OrderedDict[str, _Head] = OrderedDict()
        self._size = size
        self._lock = Lock()

    def get(self, subject: str) -> _Head | None:
        with self._lock:
            return self._heads.get(subject)

    def put(self, subject: str, head: _Head | None) -> None:
        with self._lock:
            if head is None:
                self._heads.pop(subject, None)
                return
            current = self._heads.get(subject)
            if current is None or current.seq <= head.seq:
                self._heads[subject] = head
                self._heads.move_to_end(subject)
                if len(self._heads) > self._size:
                    self._heads.popitem(last=False)


@dataclass
class _Write:
    """One aggregate's (or one tracking subject's) part of an append."""

    subject: str  # the subject, or subject wildcard, whose head the part depends on
    first: int  # the first version (or notification id) it writes
    last: int
    first_index: int  # where its first and last messages stand in the append
    last_index: int


@dataclass
class _Appending:
    """The messages of one append, in the order given, and the part each aggregate plays.

    The order is kept, so the n-th event gets the n-th sequence. Only each part's first message
    carries the guard, which atomic batches allow: no earlier message writes to its subjects.
    """

    messages: list[OutgoingMessage]
    writes: list[_Write]

    def guarded(
        self, heads: dict[str, _Head | None], signer: evidence.Signer | None
    ) -> tuple[list[OutgoingMessage], dict[str, str]]:
        """The messages with their guards (and signed, with a signer), and the digest of each
        part's last message."""
        messages = list(self.messages)
        for write in self.writes:
            head = heads[write.subject]
            first = messages[write.first_index]
            guard = {EXPECTED_SEQUENCE: str(0 if head is None else head.seq)}
            if first.subject != write.subject:  # an aggregate: check its subjects' wildcard
                guard[EXPECTED_SUBJECT] = write.subject
            messages[write.first_index] = OutgoingMessage(
                first.subject, first.payload, {**first.headers, **guard}
            )
        if signer is None:
            return messages, {}
        return self._signed(messages, heads, signer)

    def _signed(
        self,
        messages: list[OutgoingMessage],
        heads: dict[str, _Head | None],
        signer: evidence.Signer,
    ) -> tuple[list[OutgoingMessage], dict[str, str]]:
        previous = {
            w.subject: evidence.GENESIS if heads[w.subject] is None else _digest(heads[w.subject])
            for w in self.writes
        }
        signed: list[OutgoingMessage] = []
        for message in messages:
            chain = _chain(message.subject, previous)
            headers, previous[chain] = signer.sign(
                message.subject, message.headers, message.payload, previous[chain]
            )
            signed.append(OutgoingMessage(message.subject, message.payload, headers))
        return signed, previous


class JetStreamRecorder:
    """What all the recorders share: a client, a stream, and the append with its checks."""

    def __init__(
        self,
        client: JetStreamClient,
        layout: StreamLayout,
        *,
        group_commit: bool = True,
        signer: evidence.Signer | None = None,
    ) -> None:
        self.client = client
        self.layout = layout
        self.group_commit = group_commit
        self.signer = signer
        self._heads = _Heads()

    def _append(self, events: Sequence[StoredEvent], tracking: Tracking | None) -> list[int]:
        if not events and tracking is None:
            return []
        count = len(events) + (tracking is not None)
        # The producer span is current while the messages are made, so they carry it onward.
        with tracing.publishing(self.layout.stream, count):
            appending = self._appending(events, tracking)
            last_seq = self._append_checked(appending)
        if events:
            metrics.events_appended(self.layout.stream, len(events))
        first_seq = last_seq - len(appending.messages) + 1
        return list(range(first_seq, first_seq + len(events)))

    def _append_checked(self, appending: _Appending) -> int:
        writes = appending.writes
        for attempt in range(1, WRITE_ATTEMPTS + 1):
            heads = {w.subject: self._heads.get(w.subject) for w in writes}
            for write in writes:
                head = heads[write.subject]
                if head is not None and head.version >= write.first:
                    raise IntegrityError(
                        f"{write.subject} is already at {head.version}; cannot write {write.first}"
                    )
            messages, digests = appending.guarded(heads, self.signer)
            try:
                last_seq = self.client.append(
                    self.layout.stream, messages, grouped=self.group_commit
                )
            except ConflictError:
                if attempt == WRITE_ATTEMPTS:
                    raise
                # A remembered or assumed head was stale: look them all up, then decide again.
                looked_up = self.client.run(self._heads_of([w.subject for w in writes]))
                for write, head in zip(writes, looked_up, strict=True):
                    self._heads.put(write.subject, head)
                continue
            first_seq = last_seq - len(appending.messages) + 1
            for write in writes:
                at = first_seq + write.last_index
                self._heads.put(write.subject, _Head(write.last, at, digests.get(write.subject)))
            return last_seq
        raise ProgrammingError("unreachable: the last attempt returns or raises")

    async def _heads_of(self, subjects: Sequence[str]) -> list[_Head | None]:
        found = await asyncio.gather(
            *(self.client.get_last(self.layout.stream, s) for s in subjects)
        )
        return [None if message is None else _head_of(message) for message in found]

    def _appending(self, events: Sequence[StoredEvent], tracking: Tracking | None) -> _Appending:
        messages: list[OutgoingMessage] = []
        writes: dict[str, _Write] = {}
        context: dict[str, str] = {}
        propagate.inject(context)  # the caller's trace continues wherever the events are read
        for event in events:
            subject = self.layout.aggregate_filter(event.originator_id)
            version = event.originator_version
            write = writes.get(subject)
            if write is None:
                index = len(messages)
                writes[subject] = _Write(subject, version, version, index, index)
            elif version > write.last:
                write.last, write.last_index = version, len(messages)
            else:
                raise IntegrityError(
                    f"events of {event.originator_id} are not unique and ascending in one write "
                    f"(version {version} after {write.last})"
                )
            headers = {**context, TOPIC: event.topic, ORIGINATOR_VERSION: str(version)}
            if not isinstance(event.originator_id, UUID):  # a UUID is read from the subject
                headers[ORIGINATOR_ID] = event.originator_id
            messages.append(
                OutgoingMessage(
                    subject=self.layout.event_subject(event.originator_id, event.topic),
                    payload=event.state,
                    headers=headers,
                )
            )
        if tracking is not None:
            subject = self.layout.tracking_subject(tracking.application_name)
            record = {
                "application_name": tracking.application_name,
                "notification_id": tracking.notification_id,
            }
            index, number = len(messages), tracking.notification_id
            writes[subject] = _Write(subject, number, number, index, index)
            messages.append(
                OutgoingMessage(
                    subject=subject,
                    payload=json.dumps(record).encode(),
                    headers={
                        APPLICATION_NAME: tracking.application_name,
                        NOTIFICATION_ID: str(number),
                    },
                )
            )
        return _Appending(messages, list(writes.values()))

    def _select_events(
        self,
        originator_id: UUID | str,
        gt: int | None,
        lte: int | None,
        desc: bool,
        limit: int | None,
    ) -> list[StoredEvent]:
        subject = self.layout.aggregate_filter(originator_id)
        if desc and limit == 1 and gt is None and lte is None:
            last = self.client.run(self.client.get_last(self.layout.stream, subject))
            messages = [] if last is None else [last]
        else:
            messages = self.client.run(self._read(subject, gt))
        if not messages:
            return []
        self._heads.put(subject, _head_of(messages[-1]))
        # Every message is the one aggregate's: its id is read once, not per event.
        aggregate = _originator_id(messages[0])
        events = [_stored_event(aggregate, m) for m in messages]
        if gt is not None or lte is not None:
            events = [
                e
                for e in events
                if (gt is None or e.originator_version > gt)
                and (lte is None or e.originator_version <= lte)
            ]
        if desc:
            events.reverse()
        return events if limit is None else events[:limit]

    async def _read(self, subject: str, gt: int | None) -> list[StoredMessage]:
        """The subject's messages; only those after version `gt` when its place is known.

        A reader that holds an aggregate up to version `gt` (a cache) asks only for what came
        after. When the remembered head is that very version, the rest lies beyond the head's
        sequence: one small read instead of the whole history. Anything unexpected (the head
        moved on, or the next version is not gt + 1) falls back to reading everything.
        """
        head = None if gt is None else self._heads.get(subject)
        if head is not None and head.version == gt:
            after = await self.client.read_all(self.layout.stream, subject, start=head.seq + 1)
            if not after or int(after[0].headers[ORIGINATOR_VERSION]) == gt + 1:
                return after
        return await self.client.read_all(self.layout.stream, subject)


def _head_of(message: StoredMessage) -> _Head:
    version = message.headers.get(ORIGINATOR_VERSION) or message.headers[NOTIFICATION_ID]
    return _Head(int(version), message.seq, evidence.digest_of(message))


def _digest(head: _Head | None) -> str:
    if head is None or head.digest is None:
        raise ProgrammingError("a head read or written by a signing recorder has a digest")
    return head.digest


def _chain(subject: str, parts: Mapping[str, str]) -> str:
    """The part of an append a message belongs to, and chains on: a tracking subject itself, or
    its aggregate's subject wildcard."""
    return subject if subject in parts else subject.rsplit(".", 1)[0] + ".*"


def _originator_id(message: StoredMessage) -> UUID | str:
    """A str id is in a header; a UUID is the aggregate's token in the subject."""
    value = message.headers.get(ORIGINATOR_ID)
    return value if value is not None else _uuid(message.subject.rsplit(".", 2)[-2])


@functools.lru_cache(maxsize=4096)
def _uuid(token: str) -> UUID:
    """Parsing a UUID costs more than the rest of an event's record, and a replay meets each
    aggregate's token many times in a row."""
    return UUID(token)


def _stored_event(originator_id: UUID | str, message: StoredMessage) -> StoredEvent:
    return StoredEvent(
        originator_id=originator_id,
        originator_version=int(message.headers[ORIGINATOR_VERSION]),
        topic=message.headers[TOPIC],
        state=message.data,
    )


def _notification(message: StoredMessage) -> JetStreamNotification:
    return JetStreamNotification(
        id=message.seq,
        originator_id=_originator_id(message),
        originator_version=int(message.headers[ORIGINATOR_VERSION]),
        topic=message.headers[TOPIC],
        state=message.data,
        headers=message.headers,
    )


class JetStreamAggregateRecorder(JetStreamRecorder, AggregateRecorder):
    def insert_events(
        self, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        self._append(stored_events, None)
        return None

    def select_events(
        self,
        originator_id: UUID | str,
        *,
        gt: int | None = None,
        lte: int | None = None,
        desc: bool = False,
        limit: int | None = None,
    ) -> Sequence[StoredEvent]:
        return self._select_events(originator_id, gt, lte, desc, limit)


class JetStreamApplicationRecorder(JetStreamAggregateRecorder, ApplicationRecorder):
    def insert_events(
        self, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        return self._append(stored_events, None)

    def select_notifications(
        self,
        start: int | None,
        limit: int,
        stop: int | None = None,
        topics: Sequence[str] = (),
        *,
        inclusive_of_start: bool = True,
    ) -> Sequence[Notification]:
        first = 1 if start is None else start if inclusive_of_start else start + 1
        return self.client.run(self._select_notifications(max(first, 1), limit, stop, topics))

    async def _select_notifications(
        self, first: int, limit: int, stop: int | None, topics: Sequence[str]
    ) -> list[Notification]:
        wanted = set(topics)
        # One topic narrows the read on the server. Otherwise it reads on by sequence, cheaper
        # for it than matching a wildcard, and tracking records and other topics are left here.
        subject = self.layout.type_filter(topics[0]) if len(topics) == 1 else None
        holds_event = self.layout.holds_event
        found: list[Notification] = []
        while len(found) < limit and (stop is None or first <= stop):
            batch = limit - len(found)
            if stop is not None:
                batch = min(batch, stop - first + 1)
            page, pending = await self.client.get_range(self.layout.stream, subject, first, batch)
            for message in page:
                if stop is not None and message.seq > stop:
                    return found
                if not holds_event(message.subject):
                    continue
                if not wanted or message.headers[TOPIC] in wanted:
                    found.append(_notification(message))
            if not page or pending == 0:
                break
            first = page[-1].seq + 1
        return found

    def max_notification_id(self) -> int | None:
        last = self.client.run(self.client.get_last(self.layout.stream, self.layout.all_events))
        return None if last is None else last.seq

    def subscribe(
        self, gt: int | None = None, topics: Sequence[str] = ()
    ) -> Subscription[ApplicationRecorder]:
        return JetStreamSubscription(self, gt=gt, topics=topics)


class JetStreamTrackingRecorder(JetStreamRecorder, TrackingRecorder):
    def insert_tracking(self, tracking: Tracking) -> None:
        self._append((), tracking)

    def max_tracking_id(self, application_name: str) -> int | None:
        subject = self.layout.tracking_subject(application_name)
        last = self.client.run(self.client.get_last(self.layout.stream, subject))
        return None if last is None else int(last.headers[NOTIFICATION_ID])


class JetStreamProcessRecorder(
    JetStreamTrackingRecorder, JetStreamApplicationRecorder, ProcessRecorder
):
    def insert_events(
        self, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        return self._append(stored_events, kwargs.get("tracking"))


_STOP = object()


class JetStreamSubscription(Subscription[JetStreamApplicationRecorder]):
    """Follows the application sequence live, through one ordered consumer.

    The consumer's messages cross from the client's loop to the iterating thread through a
    bounded queue; when the queue is full the consumer waits, and JetStream's flow control
    holds the rest on the server.
    """

    def __init__(
        self,
        recorder: JetStreamApplicationRecorder,
        gt: int | None = None,
        topics: Sequence[str] = (),
    ) -> None:
        super().__init__(recorder=recorder, gt=gt, topics=topics)
        self._client = recorder.client
        self._layout = recorder.layout
        self._wanted = set(topics)
        self._queue: queue.Queue[object] = queue.Queue(maxsize=1000)
        self._consumer: NatsSubscription = self._client.run(self._start((gt or 0) + 1))

    async def _start(self, first: int) -> NatsSubscription:
        js = self._client.nc.jetstream()
        subject = (
            self._layout.type_filter(self._topics[0])
            if len(self._topics) == 1
            else self._layout.all_events
        )
        return await js.subscribe(
            subject,
            stream=self._layout.stream,
            ordered_consumer=True,
            config=ConsumerConfig(
                deliver_policy=DeliverPolicy.BY_START_SEQUENCE, opt_start_seq=first
            ),
            cb=self._receive,
        )

    async def _receive(self, msg: Msg) -> None:
        if self._has_been_stopped:
            return
        headers = msg.headers or {}
        if self._wanted and headers.get(TOPIC) not in self._wanted:
            return
        stored = StoredMessage(msg.metadata.sequence.stream, msg.subject, headers, msg.data)
        notification = _notification(stored)
        try:
            self._queue.put_nowait(notification)
        except queue.Full:
            await asyncio.to_thread(self._put_unless_stopped, notification)

    def _put_unless_stopped(self, item: object) -> None:
        while not self._has_been_stopped:
            try:
                self._queue.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    def __next__(self) -> Notification:
        if self._has_been_stopped:
            raise StopIteration
        item = self._queue.get()
        if item is _STOP or self._has_been_stopped:
            raise StopIteration
        assert isinstance(item, Notification)
        return item

    def stop(self) -> None:
        if self._has_been_stopped:
            return
        super().stop()
        while True:  # make room for the stop marker, so a blocked __next__ wakes up
            try:
                self._queue.put_nowait(_STOP)
                break
            except queue.Full:
                self._drop_one()
        self._client.run(self._consumer.unsubscribe())

    def _drop_one(self) -> None:
        with contextlib.suppress(queue.Empty):
            self._queue.get_nowait()
