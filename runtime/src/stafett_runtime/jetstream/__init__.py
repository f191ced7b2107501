"""NATS JetStream as the event store of record: a persistence module for `eventsourcing`.

Select it with `PERSISTENCE_MODULE=stafett_runtime.jetstream`. Settings are listed in
`factory.py`; the stream and subject scheme in `layout.py`; how writes are checked and reads
are served in `recorders.py`; the asyncio bridge (its own loop thread and connection) in
`client.py`.

In short: one stream per application; the stream sequence is the notification id; each aggregate
has its own subjects and optimistic concurrency through `Nats-Expected-Last-Subject-Sequence`;
the events of one write, and a process application's tracking record, go in one atomic batch;
an aggregate is read by batched direct get, never through a consumer.
"""

from stafett_runtime.jetstream.factory import JetStreamFactory
from stafett_runtime.jetstream.layout import StreamLayout
from stafett_runtime.jetstream.recorders import (
    JetStreamAggregateRecorder,
    JetStreamApplicationRecorder,
    JetStreamNotification,
    JetStreamProcessRecorder,
    JetStreamSubscription,
    JetStreamTrackingRecorder,
)

__all__ = [
    "JetStreamAggregateRecorder",
    "JetStreamApplicationRecorder",
    "JetStreamFactory",
    "JetStreamNotification",
    "JetStreamProcessRecorder",
    "JetStreamSubscription",
    "JetStreamTrackingRecorder",
    "StreamLayout",
]
