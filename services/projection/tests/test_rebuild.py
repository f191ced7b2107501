"""Rebuilding the read models from the streams gives exactly what the live feeds built.

Given a generated history of more than 10,000 events across the four services' streams, half of
it published before the projection starts and half while it runs, when the read models are
rebuilt from scratch, then every table equals the live-built one, in SQLite and in PostgreSQL.
"""

from __future__ import annotations

import asyncio
import io

import nats
import pytest
from nats.aio.client import Client

from stafett_projection.generate import ensure_streams, history, publish
from stafett_projection.projection import Projection, WriterBusyError, rebuild
from stafett_projection.store import Database, dump
from stafett_runtime.testing import NatsTestServer

CASES = 760  # about 15 events each


async def caught_up(projection: Projection, nc: Client) -> None:
    js = nc.jetstream()
    for stream in ("CASE", "CONSENT", "MEETING", "NOTIFY"):
        last = (await js.stream_info(stream)).state.last_seq
        assert await projection.wait_for(stream, last, seconds=60), f"{stream} not caught up"


async def test_a_rebuild_from_the_streams_equals_the_live_built_read_models(
    nats_server: NatsTestServer, database: Database
) -> None:
    nc = await nats.connect(nats_server.url)
    try:
        await ensure_streams(nc)
        events = list(history(CASES))
        assert len(events) >= 10_000
        half = len(events) // 2
        await publish(nc, events[:half])
        own = await nats.connect(nats_server.url)  # the service has its own connection
        live = Projection(database)
        await live.start(own)
        await publish(nc, events[half:])
        await caught_up(live, nc)
        built_live = await asyncio.to_thread(dump, database)

        # A rebuild is refused while the service holds the read models.
        with pytest.raises(WriterBusyError):
            await rebuild(database, nc)
        await live.stop()
        await own.close()

        out = io.StringIO()
        counts = await rebuild(database, nc, out=out)
        assert sum(counts.values()) == len(events)
        assert "events/s" in out.getvalue()
        assert await asyncio.to_thread(dump, database) == built_live
        assert len(built_live["entries"]) == len(events)
    finally:
        await nc.close()
