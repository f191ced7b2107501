"""Measurements through an `eventsourcing` application recorder, for any persistence module.

Everything here is synchronous and goes through the recorder's public interface only
(`insert_events`, `select_events`, `select_notifications`), as an application would use it.
Concurrent writers are threads, because the library is synchronous.
"""

from __future__ import annotations

import statistics
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from uuid import UUID, uuid4

from eventsourcing.persistence import ApplicationRecorder, StoredEvent

from bench.stats import Latency, Rate, latency_of

TOPIC = "bench.domain:Thing.Happened"
# About the size of a small domain event in plain JSON (the contracts' envelope and a few fields).
PAYLOAD = (
    b'{"event_id":"6f1c2f4e-2b1c-4d3e-9f8a-1b2c3d4e5f60","actor":{"person":"p-123",'
    b'"role":"caseworker","service":"case"},"correlation_id":"c-0001","causation_id":"c-0000",'
    b'"time":"2026-01-01T12:00:00Z","note":"a short note of about forty bytes.."}'
)


def event(originator_id: UUID, version: int) -> StoredEvent:
    return StoredEvent(
        originator_id=originator_id, originator_version=version, topic=TOPIC, state=PAYLOAD
    )


def append_sequential(recorder: ApplicationRecorder, seconds: float, most: int) -> Rate:
    """One writer appending new aggregates, one event per `insert_events` call, for `seconds`
    (or until `most` events)."""
    for _ in range(20):  # warm up: connection, statement caches
        recorder.insert_events([event(uuid4(), 1)])
    batches = [[event(uuid4(), 1)] for _ in range(most)]
    started = time.perf_counter()
    deadline = started + seconds
    done = 0
    for batch in batches:
        recorder.insert_events(batch)
        done += 1
        if time.perf_counter() >= deadline:
            break
    return Rate(done, time.perf_counter() - started)


def append_concurrent(
    recorder: ApplicationRecorder, writers: int, seconds: float, most: int
) -> Rate:
    """`writers` threads, each appending new aggregates of one event one by one, all for
    `seconds` (or until `most` events in all)."""
    plans = [[[event(uuid4(), 1)] for _ in range(most // writers)] for _ in range(writers)]
    clock = [0.0, 0.0]  # started, deadline: set as the barrier opens, before anyone reads them

    def start_clock() -> None:
        clock[0] = time.perf_counter()
        clock[1] = clock[0] + seconds

    ready = threading.Barrier(writers + 1, action=start_clock)

    def write(plan: list[list[StoredEvent]]) -> int:
        recorder.insert_events([event(uuid4(), 1)])  # warm up: a pooled connection per thread
        ready.wait()
        deadline = clock[1]
        done = 0
        for batch in plan:
            recorder.insert_events(batch)
            done += 1
            if time.perf_counter() >= deadline:
                break
        return done

    with ThreadPoolExecutor(max_workers=writers) as pool:
        futures = [pool.submit(write, plan) for plan in plans]
        ready.wait()
        done = sum(future.result() for future in futures)
        elapsed = time.perf_counter() - clock[0]
    return Rate(done, elapsed)


def create_aggregates(
    recorder: ApplicationRecorder, count: int, length: int, threads: int = 8
) -> tuple[list[UUID], Rate]:
    """`count` aggregates of `length` events, each written with one `insert_events` call."""
    ids = [uuid4() for _ in range(count)]

    def write(originator_id: UUID) -> None:
        recorder.insert_events([event(originator_id, v) for v in range(1, length + 1)])

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=threads) as pool:
        list(pool.map(write, ids))
    return ids, Rate(count * length, time.perf_counter() - started)


def load_latency(
    recorder: ApplicationRecorder, ids: Sequence[UUID], length: int, loads: int
) -> Latency:
    """Time `select_events(originator_id)` over the aggregates, round robin, one at a time."""
    for originator_id in ids[: min(len(ids), 20)]:  # warm up
        recorder.select_events(originator_id)
    samples: list[float] = []
    for i in range(loads):
        originator_id = ids[i % len(ids)]
        started = time.perf_counter()
        events = recorder.select_events(originator_id)
        samples.append(time.perf_counter() - started)
        if len(events) != length:
            raise AssertionError(f"{originator_id}: {len(events)} events, expected {length}")
    return latency_of(samples)


def replay(recorder: ApplicationRecorder, total: int, page: int = 1000) -> Rate:
    """Read the first `total` notifications, `page` at a time, as a follower catching up does."""
    recorder.select_notifications(None, 10)  # warm up
    count = 0
    last = 0
    started = time.perf_counter()
    while count < total:
        notifications = recorder.select_notifications(
            last, min(page, total - count), inclusive_of_start=False
        )
        if not notifications:
            raise AssertionError(f"replay ended after {count} of {total} notifications")
        if notifications[0].id <= last:
            raise AssertionError(f"replay went backwards: {notifications[0].id} after {last}")
        count += len(notifications)
        last = notifications[-1].id
    return Rate(count, time.perf_counter() - started)


def messages_per_read(
    recorder: ApplicationRecorder, ids: Sequence[UUID], messages_out: Callable[[], int]
) -> float:
    """The messages the server sends for one full `select_events`, on average (its own count)."""
    sample = ids[: min(len(ids), 10)]
    sent = 0
    for originator_id in sample:
        before = messages_out()
        recorder.select_events(originator_id)
        sent += messages_out() - before
    return sent / len(sample)


def warm_read(
    recorder: ApplicationRecorder,
    writer: ApplicationRecorder,
    ids: Sequence[UUID],
    length: int,
    loads: int,
    new: int,
    messages_out: Callable[[], int],
) -> tuple[Latency, float]:
    """A cached aggregate brought up to date, as the command path does: `new` events are written
    to it by someone else (`writer`, another recorder), then `select_events(id, gt=<the version
    held>)` is timed. The latency, and the median of the messages the server sent per read (the
    median, because a message of the server's own may now and then fall into one count)."""
    versions = {originator_id: length for originator_id in ids}
    for originator_id in ids:  # what a cache that held them would have read
        recorder.select_events(originator_id)
    samples: list[float] = []
    sent: list[int] = []
    for i in range(loads):
        originator_id = ids[i % len(ids)]
        held = versions[originator_id]
        writer.insert_events([event(originator_id, held + v) for v in range(1, new + 1)])
        before = messages_out()
        started = time.perf_counter()
        events = recorder.select_events(originator_id, gt=held)
        samples.append(time.perf_counter() - started)
        sent.append(messages_out() - before)
        if [e.originator_version for e in events] != list(range(held + 1, held + new + 1)):
            raise AssertionError(f"{originator_id}: read {len(events)} events after v{held}")
        versions[originator_id] = held + new
    return latency_of(samples), statistics.median(sent)
