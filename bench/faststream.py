"""`python -m bench.faststream`: consuming a stream through FastStream beside plain nats-py.

The kernel issue asked for subscriptions through FastStream where it serves, or its removal if,
measured, it costs more than it brings. This is that measurement, kept so it can be repeated; it
needs FastStream installed, which the workspace no longer declares (`uv pip install
'faststream[nats]'` into a scratch environment). docs/store.md has the figures and the decision.

The same N events of the generated history (`bench.history`, the CASE stream), on the same
server, read four ways; all but the baseline decode every event's JSON:

- raw (the baseline, nothing decoded): an ephemeral pull consumer without acknowledgements,
  `fetch(1000)` (what the projection's rebuild does);
- feed: a durable pull consumer, AckPolicy.ALL, batches of 500, the last of each acknowledged
  (what the projection's live feed does);
- FastStream pull: a durable pull subscriber (`PullSub(batch=True)`, batches of 500), the
  handler given the batch as decoded JSON, FastStream acknowledging each message;
- FastStream push: a durable push subscriber, one handler call per event.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import msgspec
import nats
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from bench import raw
from bench.history import ensure_streams, history, publish
from bench.stats import Rate
from stafett_runtime.natsserver import NatsServer

STREAM, SUBJECT = "CASE", "case.events.>"
BATCH = 500
TIMEOUT = 60.0


async def _fill(url: str, events: int) -> int:
    nc = await nats.connect(url)
    try:
        await ensure_streams(nc)
        case_events = [e for e in history(events // 4 + 1) if e.CONTEXT == "case"][:events]
        await publish(nc, case_events, in_flight=1000)
        return len(case_events)
    finally:
        await nc.close()


async def _feed_like(url: str, total: int) -> Rate:
    """A durable pull consumer acknowledging the last of each batch (AckPolicy.ALL)."""
    nc = await nats.connect(url)
    try:
        js = nc.jetstream()
        config = ConsumerConfig(
            ack_policy=AckPolicy.ALL, deliver_policy=DeliverPolicy.ALL, max_ack_pending=-1
        )
        subscription = await js.pull_subscribe(SUBJECT, "bench-feed", STREAM, config=config)
        count = 0
        started = time.perf_counter()
        while count < total:
            msgs = await subscription.fetch(min(BATCH, total - count), timeout=TIMEOUT)
            for msg in msgs:
                msgspec.json.decode(msg.data)
            await msgs[-1].ack()
            count += len(msgs)
        return Rate(count, time.perf_counter() - started)
    finally:
        await nc.close()


async def _faststream(url: str, total: int, *, pull: bool) -> Rate:
    # Only this measurement needs FastStream; without it installed, it is Any to the type checker.
    from faststream.nats import (  # type: ignore[import-not-found, unused-ignore]
        JStream,
        NatsBroker,
        PullSub,
    )

    broker = NatsBroker(url, logger=None)
    done = asyncio.get_running_loop().create_future()
    count = 0

    def counted(n: int) -> None:
        nonlocal count
        count += n
        if count >= total and not done.done():
            done.set_result(None)

    async def handle_batch(bodies: list[dict[str, Any]]) -> None:
        counted(len(bodies))

    async def handle_one(body: dict[str, Any]) -> None:
        counted(1)

    stream = JStream(STREAM, declare=False)  # the store declares its streams, never FastStream
    if pull:
        broker.subscriber(
            SUBJECT,
            stream=stream,
            durable="bench-faststream-pull",
            pull_sub=PullSub(batch_size=BATCH, batch=True, timeout=1.0),
            deliver_policy=DeliverPolicy.ALL,
        )(handle_batch)
    else:
        broker.subscriber(
            SUBJECT,
            stream=stream,
            durable="bench-faststream-push",
            deliver_policy=DeliverPolicy.ALL,
        )(handle_one)

    started = time.perf_counter()
    await broker.start()
    try:
        await asyncio.wait_for(done, TIMEOUT * 5)
        return Rate(count, time.perf_counter() - started)
    finally:
        await broker.stop()


def measure(events: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="stafett-bench-faststream-") as name:
        server = NatsServer(Path(name) / "nats")
        server.start()
        try:
            total = asyncio.run(_fill(server.url, events))
            rates = {
                "raw_fetch_ack_none": asyncio.run(
                    raw.fetch_replay(server.url, STREAM, SUBJECT, total)
                ),
                "feed_like_ack_all": asyncio.run(_feed_like(server.url, total)),
                "faststream_pull_batch": asyncio.run(_faststream(server.url, total, pull=True)),
                "faststream_push": asyncio.run(_faststream(server.url, total, pull=False)),
            }
        finally:
            server.stop()
    base = rates["raw_fetch_ack_none"].per_second
    return {
        "events": total,
        **{
            key: {**rate.as_json(), "over_raw": round(rate.per_second / base, 3)}
            for key, rate in rates.items()
        },
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.faststream", description=__doc__)
    parser.add_argument("--events", type=int, default=20_000)
    args = parser.parse_args(argv)
    figures = measure(args.events)
    print(f"{figures.pop('events'):,} events of the CASE stream")
    for key, rate in figures.items():
        print(f"  {key:<24} {rate['per_second']:>10,.0f} events/s  {rate['over_raw']:.2f} of raw")
    return 0


if __name__ == "__main__":
    sys.exit(main())
