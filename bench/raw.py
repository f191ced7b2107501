"""The baselines: the same work done with plain nats-py on the same server, without the store.

Writes go to a stream of their own (`RAW`, configured like the store's stream, with as many
replicas), so they never mix with the store's events; reads read the store's own stream and
messages. Each function connects (`url` may name every node of a cluster, comma-separated, as
`NATS_URL` does), measures, and closes; only the measured part is timed.
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from uuid import uuid4

import nats
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js.api import (
    AckPolicy,
    ConsumerConfig,
    DeliverPolicy,
    DiscardPolicy,
    RetentionPolicy,
    StorageType,
    StreamConfig,
)
from nats.js.errors import NotFoundError

from bench.stats import Latency, Rate, latency_of
from bench.store import PAYLOAD, TOPIC
from stafett_runtime.jetstream.client import server_urls

RAW_STREAM = "RAW"
RAW_PREFIX = "raw"
FETCH_BATCH = 1000
TIMEOUT = 10.0


async def _connect(url: str) -> Client:
    return await nats.connect(server_urls(url), name="bench-raw", connect_timeout=TIMEOUT)


async def _ensure_raw_stream(nc: Client, replicas: int = 1) -> None:
    """A stream like the store's: file storage, limits, discard new, atomic and direct on."""
    js = nc.jetstream()
    try:
        await js.stream_info(RAW_STREAM)
    except NotFoundError:
        await js.add_stream(
            StreamConfig(
                name=RAW_STREAM,
                subjects=[f"{RAW_PREFIX}.events.>"],
                storage=StorageType.FILE,
                retention=RetentionPolicy.LIMITS,
                discard=DiscardPolicy.NEW,
                num_replicas=replicas,
                allow_atomic=True,
                allow_direct=True,
                deny_delete=True,
                deny_purge=True,
            )
        )


def _new_aggregate_message() -> tuple[str, dict[str, str]]:
    """Subject and headers of a new aggregate's first event, as the store sends them."""
    originator_id = str(uuid4())
    aggregate = f"{RAW_PREFIX}.events.{originator_id}"
    headers = {
        "Es-Topic": TOPIC,
        "Es-Originator-Id": originator_id,
        "Es-Originator-Id-Type": "uuid",
        "Es-Originator-Version": "1",
        "Nats-Expected-Last-Subject-Sequence": "0",
        "Nats-Expected-Last-Subject-Sequence-Subject": f"{aggregate}.*",
    }
    return f"{aggregate}.Happened", headers


async def _publish_each(
    nc: Client, messages: Sequence[tuple[str, dict[str, str]]], deadline: float = math.inf
) -> int:
    """Publish one after the other, each waiting for its ack, until the deadline; how many."""
    js = nc.jetstream(timeout=TIMEOUT)
    done = 0
    for subject, headers in messages:
        await js.publish(subject, PAYLOAD, headers=headers)
        done += 1
        if time.perf_counter() >= deadline:
            break
    return done


async def publish_sequential(url: str, seconds: float, most: int, replicas: int = 1) -> Rate:
    """One publisher, one JetStream publish after the other, for `seconds` (at most `most`)."""
    nc = await _connect(url)
    try:
        await _ensure_raw_stream(nc, replicas)
        await _publish_each(nc, [_new_aggregate_message() for _ in range(20)])
        messages = [_new_aggregate_message() for _ in range(most)]
        started = time.perf_counter()
        done = await _publish_each(nc, messages, started + seconds)
        return Rate(done, time.perf_counter() - started)
    finally:
        await nc.close()


async def publish_concurrent(
    url: str, publishers: int, seconds: float, most: int, replicas: int = 1
) -> Rate:
    """`publishers` asyncio tasks on one connection, each publishing one after the other,
    all for `seconds` (at most `most` in all)."""
    nc = await _connect(url)
    try:
        await _ensure_raw_stream(nc, replicas)
        await _publish_each(nc, [_new_aggregate_message() for _ in range(20)])
        plans = [
            [_new_aggregate_message() for _ in range(most // publishers)] for _ in range(publishers)
        ]
        started = time.perf_counter()
        deadline = started + seconds
        done = await asyncio.gather(*(_publish_each(nc, plan, deadline) for plan in plans))
        return Rate(sum(done), time.perf_counter() - started)
    finally:
        await nc.close()


@dataclass
class _Batch:
    """The replies to one batched direct get, collected until the end-of-batch status."""

    messages: list[Msg]
    done: asyncio.Future[str]


class _DirectGet:
    """Batched direct get (ADR-31) over one reply subscription, one request at a time."""

    def __init__(self, nc: Client, stream: str) -> None:
        self._nc = nc
        self._subject = f"$JS.API.DIRECT.GET.{stream}"
        self._inbox = nc.new_inbox()
        self._batch: _Batch | None = None

    async def start(self) -> None:
        await self._nc.subscribe(self._inbox, cb=self._receive)

    async def _receive(self, msg: Msg) -> None:
        batch = self._batch
        if batch is None or batch.done.done():
            return
        status = msg.headers.get("Status") if msg.headers else None
        if status is None:
            batch.messages.append(msg)
        else:
            batch.done.set_result(status)

    async def get(self, first: int, subject: str | None, batch: int) -> list[Msg]:
        """Up to `batch` messages on `subject` (None: any) from sequence `first` on."""
        pending = self._batch = _Batch([], asyncio.get_running_loop().create_future())
        request: dict[str, Any] = {"seq": first, "batch": batch}
        if subject is not None:
            request["next_by_subj"] = subject
        await self._nc.publish(self._subject, json.dumps(request).encode(), reply=self._inbox)
        status = await asyncio.wait_for(pending.done, TIMEOUT)
        if status not in ("204", "404"):
            raise RuntimeError(f"direct get of {subject} ended with status {status}")
        return pending.messages


async def direct_get_latency(
    url: str, stream: str, subjects: Sequence[str], length: int, loads: int
) -> Latency:
    """One batched direct get per aggregate (its subject wildcard), round robin."""
    nc = await _connect(url)
    try:
        getter = _DirectGet(nc, stream)
        await getter.start()
        for subject in subjects[: min(len(subjects), 20)]:  # warm up
            await getter.get(1, subject, length)
        samples: list[float] = []
        for i in range(loads):
            subject = subjects[i % len(subjects)]
            started = time.perf_counter()
            messages = await getter.get(1, subject, length)
            samples.append(time.perf_counter() - started)
            if len(messages) != length:
                raise AssertionError(f"{subject}: {len(messages)} messages, expected {length}")
        return latency_of(samples)
    finally:
        await nc.close()


async def fetch_replay(url: str, stream: str, subject: str, total: int) -> Rate:
    """The first `total` messages through an ephemeral pull consumer, `fetch` 1000 at a time.

    The consumer has AckPolicy.NONE: a reader that catches up keeps its own position, as the
    store's followers do, so no acknowledgements travel.
    """
    nc = await _connect(url)
    try:
        js = nc.jetstream(timeout=TIMEOUT)
        consumer = await js.pull_subscribe(
            subject,
            stream=stream,
            config=ConsumerConfig(
                ack_policy=AckPolicy.NONE,
                deliver_policy=DeliverPolicy.ALL,
            ),
        )
        count = 0
        started = time.perf_counter()
        while count < total:
            messages = await consumer.fetch(min(FETCH_BATCH, total - count), timeout=TIMEOUT)
            count += len(messages)
        seconds = time.perf_counter() - started
        await consumer.unsubscribe()
        return Rate(count, seconds)
    finally:
        await nc.close()


async def direct_get_replay(url: str, stream: str, total: int) -> Rate:
    """The first `total` messages by batched direct get by sequence, 1000 at a time: the store's
    protocol for its notification log."""
    nc = await _connect(url)
    try:
        getter = _DirectGet(nc, stream)
        await getter.start()
        count = 0
        first = 1
        started = time.perf_counter()
        while count < total:
            messages = await getter.get(first, None, min(FETCH_BATCH, total - count))
            if not messages:
                raise AssertionError(f"direct get replay ended after {count} of {total}")
            count += len(messages)
            last = messages[-1].headers["Nats-Sequence"] if messages[-1].headers else ""
            first = int(last) + 1
        return Rate(count, time.perf_counter() - started)
    finally:
        await nc.close()
