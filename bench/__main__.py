"""`python -m bench`: the event store against raw NATS, and against eventsourcing's own stores.

Starts two local nats-servers (fsync before every acknowledgement, the project's default, and the
server's lazy default), measures the JetStream store through its eventsourcing recorders beside
the same work done with plain nats-py on the same server, then the same on a local 3-node
cluster with fsync always and streams of 3 replicas, as production runs them
(`stafett_runtime.natscluster`), then the same measurements for eventsourcing's SQLite store
and, when one answers on 127.0.0.1:5432, its PostgreSQL store (in a database of its own, created
and dropped). Then the NATS connections each service process holds (`bench.connections`) and the
projection (`bench.projection`). Prints a table with the targets of the kernel issue and writes
the figures as JSON to bench/results/<UTC timestamp>.json. `--only` runs some of these parts.

The store is measured as a service uses it (group commit on, every message signed), and for
the 32-writer append also with group commit off: one append, one write, which is what raw
nats-py does, so that ratio says what the store itself costs.

This is a benchmark, not a test: a missed target is reported, not raised.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import psycopg
from eventsourcing.persistence import ApplicationRecorder, InfrastructureFactory
from eventsourcing.utils import Environment

from bench import connections, projection, raw, services, store
from bench.stats import Latency, Rate
from stafett_runtime.jetstream import JetStreamFactory
from stafett_runtime.natscluster import local_cluster
from stafett_runtime.natsserver import NatsServerError, nats_server_binary

RESULTS = Path(__file__).resolve().parent / "results"
WRITERS = 32
APPLICATION = "Bench"
PG_HOST, PG_PORT, PG_USER = "127.0.0.1", 5432, "postgres"
REPLICAS = 3  # nodes of the local cluster, and replicas of its streams (as deploy/ runs them)
# What `--only` can choose, in the order they run.
PARTS = ("fsync", "lazy", "cluster", "sqlite", "postgres", "connections", "projection")

# Targets for the JetStream store (issue 15, "Benchmark").
APPEND_RATIO_TARGET = 0.8  # 32-writer append, fsync always, one write per append / raw
LAZY_APPEND_RATIO_TARGET = 0.6  # the same on the lazy server
GROUP_COMMIT_OVER_POSTGRES_TARGET = 10.0  # 32-writer append, group commit, fsync / PostgreSQL
LOAD_100_OVER_RAW_TARGET = 1.15  # 100-event load median / raw batched direct get median
REPLAY_RATIO_TARGET = 0.9  # replay, store / raw pull-consumer fetch


@dataclass(frozen=True)
class Sizes:
    append_seconds: float  # how long each append measurement runs
    append_most: int  # ... or until this many events
    aggregates: int  # aggregates of each length (10, 100) to load
    loads: int  # timed loads of each length
    events: int  # notifications to replay

    @classmethod
    def choose(cls, quick: bool, events: int | None) -> Sizes:
        if quick:
            return cls(
                append_seconds=0.3,
                append_most=3000,
                aggregates=10,
                loads=50,
                events=events or 2000,
            )
        return cls(
            append_seconds=3.0,
            append_most=60_000,
            aggregates=50,
            loads=500,
            events=events or 50_000,
        )


@dataclass
class Compared:
    """A rate through the store, and beside it the same work with plain nats-py."""

    store: Rate
    raw: Rate | None = None

    @property
    def ratio(self) -> float | None:
        return None if self.raw is None else self.store.per_second / self.raw.per_second

    def as_json(self) -> dict[str, Any]:
        return {
            "store": self.store.as_json(),
            "raw": None if self.raw is None else self.raw.as_json(),
            "store_over_raw": None if self.ratio is None else round(self.ratio, 3),
        }


@dataclass
class LoadCompared:
    store: Latency
    raw: Latency | None = None

    @property
    def over_raw(self) -> float | None:
        """The store's median over raw's: how many times as long (1.0 is no overhead)."""
        return None if self.raw is None else self.store.median_ms / self.raw.median_ms

    def as_json(self) -> dict[str, Any]:
        return {
            "store": self.store.as_json(),
            "raw": None if self.raw is None else self.raw.as_json(),
            "store_over_raw_median": None if self.over_raw is None else round(self.over_raw, 3),
        }


@dataclass
class Result:
    """Everything measured on one backend."""

    key: str
    label: str
    append_1: Compared
    append_32: Compared  # as the backend is used (JetStream: group commit on)
    load_10: LoadCompared
    load_100: LoadCompared
    replay: Compared
    replay_direct_get: Rate | None  # reference: the store's own read protocol, without the store
    fill: Rate  # how fast the replay's events were written (100-event appends, 8 threads)
    append_32_alone: Compared | None = None  # JetStream with group commit off: one write each
    append_32_unsigned: Compared | None = None  # ... and with SIGNING=no: what signing costs
    warm: WarmRead | None = None  # JetStream: a cached aggregate brought up to date
    append_ratio_target: float = APPEND_RATIO_TARGET
    notes: list[str] = field(default_factory=list)

    def targets(self) -> dict[str, dict[str, Any]]:
        found: dict[str, dict[str, Any]] = {}
        if self.append_32_alone is not None and self.append_32_alone.ratio is not None:
            found["append_32_writers_ratio"] = _target(
                self.append_32_alone.ratio, self.append_ratio_target, at_least=True
            )
        if self.replay.ratio is not None:
            found["replay_ratio"] = _target(self.replay.ratio, REPLAY_RATIO_TARGET, at_least=True)
        if self.load_100.over_raw is not None:
            found["load_100_over_raw"] = _target(
                self.load_100.over_raw, LOAD_100_OVER_RAW_TARGET, at_least=False
            )
        if self.warm is not None:
            found["warm_read_messages_per_new_event"] = _target(
                self.warm.messages_per_read - WARM_NEW_EVENTS, 1.0, at_least=False
            )
        return found

    def as_json(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "append_1_writer": self.append_1.as_json(),
            f"append_{WRITERS}_writers": self.append_32.as_json(),
            f"append_{WRITERS}_writers_group_commit_off": (
                None if self.append_32_alone is None else self.append_32_alone.as_json()
            ),
            f"append_{WRITERS}_writers_group_commit_off_unsigned": (
                None if self.append_32_unsigned is None else self.append_32_unsigned.as_json()
            ),
            "load_10_events": self.load_10.as_json(),
            "load_100_events": self.load_100.as_json(),
            "warm_read": None if self.warm is None else self.warm.as_json(),
            "replay": self.replay.as_json(),
            "replay_raw_direct_get": (
                None if self.replay_direct_get is None else self.replay_direct_get.as_json()
            ),
            "fill": self.fill.as_json(),
            "targets": self.targets(),
            "notes": self.notes,
        }


WARM_NEW_EVENTS = 1  # events written to a cached aggregate before each warm read


@dataclass(frozen=True)
class WarmRead:
    """A cached 100-event aggregate with one new event brought up to date (`gt=` its version),
    beside its full load: the time, and the messages the server sent for a read (its own count,
    /varz out_msgs, so every message on the wire is counted, the end marker included)."""

    latency: Latency
    messages_per_read: float
    full_messages_per_read: float

    def as_json(self) -> dict[str, Any]:
        return {
            **self.latency.as_json(),
            "messages_per_read": round(self.messages_per_read, 2),
            "full_load_messages_per_read": round(self.full_messages_per_read, 2),
        }


def _target(value: float, limit: float, *, at_least: bool) -> dict[str, Any]:
    passed = value >= limit if at_least else value <= limit
    return {
        "value": round(value, 3),
        "limit": limit,
        "kind": "at_least" if at_least else "at_most",
        "pass": passed,
    }


# Progress ------------------------------------------------------------------------------------

_STARTED = time.monotonic()


def progress(message: str) -> None:
    print(f"[{time.monotonic() - _STARTED:6.1f}s] {message}", flush=True)


# Measuring one backend -----------------------------------------------------------------------


@dataclass(frozen=True)
class RawTarget:
    """Where the raw nats-py baselines run: the server, and the store's stream and subjects."""

    url: str  # one server, or every node of a cluster, comma-separated
    stream: str
    aggregate_filter: Callable[[uuid.UUID], str]
    all_events: str
    replicas: int = 1  # of raw's own stream for the writes, as the store's


def measure(
    key: str,
    label: str,
    recorder: ApplicationRecorder,
    sizes: Sizes,
    target: RawTarget | None,
    alone: ApplicationRecorder | None = None,
    server: services.Monitored | None = None,
    unsigned: ApplicationRecorder | None = None,
) -> Result:
    """The store's figures on one backend; with a RawTarget, each beside its raw baseline;
    with `alone` (the store with group commit off), the 32-writer append through it too, and
    through `unsigned` (group commit off, SIGNING=no); with the monitored `server`, the
    messages a warm read costs."""

    def step(what: str) -> None:
        progress(f"{label}: {what}")

    seconds, most = sizes.append_seconds, sizes.append_most
    step(f"append, 1 writer, {seconds:g}s")
    append_1 = Compared(store.append_sequential(recorder, seconds, most))
    if target:
        step("  raw publish, sequential")
        append_1.raw = asyncio.run(
            raw.publish_sequential(target.url, seconds, most, target.replicas)
        )

    step(f"append, {WRITERS} writers, {seconds:g}s")
    append_32 = Compared(store.append_concurrent(recorder, WRITERS, seconds, most))
    append_32_alone: Compared | None = None
    if alone is not None:
        step(f"append, {WRITERS} writers, group commit off, {seconds:g}s")
        append_32_alone = Compared(store.append_concurrent(alone, WRITERS, seconds, most))
    append_32_unsigned: Compared | None = None
    if unsigned is not None:
        step(f"append, {WRITERS} writers, group commit off, unsigned, {seconds:g}s")
        append_32_unsigned = Compared(store.append_concurrent(unsigned, WRITERS, seconds, most))
    if target:
        step(f"  raw publish, {WRITERS} asyncio publishers")
        append_32.raw = asyncio.run(
            raw.publish_concurrent(target.url, WRITERS, seconds, most, target.replicas)
        )
        for compared in (append_32_alone, append_32_unsigned):
            if compared is not None:
                compared.raw = append_32.raw

    loads: dict[int, LoadCompared] = {}
    warm: WarmRead | None = None
    for length in (10, 100):
        step(f"write {sizes.aggregates} aggregates of {length} events")
        ids, _ = store.create_aggregates(recorder, sizes.aggregates, length)
        step(f"load {length}-event aggregates x {sizes.loads}")
        loads[length] = LoadCompared(store.load_latency(recorder, ids, length, sizes.loads))
        if target:
            step("  raw batched direct get")
            subjects = [target.aggregate_filter(i) for i in ids]
            loads[length].raw = asyncio.run(
                raw.direct_get_latency(target.url, target.stream, subjects, length, sizes.loads)
            )
        if length == 100 and server is not None and alone is not None:
            step(f"  warm: {WARM_NEW_EVENTS} new event, then a read of what is new x {sizes.loads}")
            warm = _warm_read(recorder, alone, ids, length, sizes.loads, server)

    step(f"write {sizes.events:,} events to replay (100-event appends, 8 threads)")
    _, fill = store.create_aggregates(recorder, -(-sizes.events // 100), 100)
    step(f"  {fill.per_second:,.0f} events/s")
    step(f"replay {sizes.events:,} notifications, pages of 1000")
    replay = Compared(store.replay(recorder, sizes.events))
    direct: Rate | None = None
    if target:
        step("  raw pull-consumer fetch (ack none), batches of 1000")
        replay.raw = asyncio.run(
            raw.fetch_replay(target.url, target.stream, target.all_events, sizes.events)
        )
        step("  raw batched direct get, pages of 1000 (reference)")
        direct = asyncio.run(raw.direct_get_replay(target.url, target.stream, sizes.events))
    return Result(
        key=key,
        label=label,
        append_1=append_1,
        append_32=append_32,
        load_10=loads[10],
        load_100=loads[100],
        replay=replay,
        replay_direct_get=direct,
        fill=fill,
        append_32_alone=append_32_alone,
        append_32_unsigned=append_32_unsigned,
        warm=warm,
    )


def _warm_read(
    recorder: ApplicationRecorder,
    writer: ApplicationRecorder,
    ids: list[uuid.UUID],
    length: int,
    loads: int,
    server: services.Monitored,
) -> WarmRead:
    """What the command path does with a cached aggregate (`stafett_runtime.commands.States`):
    read only the events after the version it holds. `writer` (another recorder, so another
    cache of where aggregates end) writes the new events, as another process would."""
    full = store.messages_per_read(recorder, ids, server.messages_out)
    latency, per_read = store.warm_read(
        recorder, writer, ids, length, loads, WARM_NEW_EVENTS, server.messages_out
    )
    return WarmRead(latency, per_read, full)


# Backends ------------------------------------------------------------------------------------


def bench_jetstream(sizes: Sizes, tmp: Path, *, sync_always: bool) -> Result:
    key = "jetstream_fsync_always" if sync_always else "jetstream_lazy"
    label = "JetStream fsync=always" if sync_always else "JetStream lazy"
    progress(f"{label}: starting nats-server")
    with services.monitored_server(
        tmp / key, sync_always=sync_always, log_file=tmp / f"{key}.log"
    ) as server:
        result = _measure_store(key, label, sizes, server.url, server=server)
    if not sync_always:
        result.append_ratio_target = LAZY_APPEND_RATIO_TARGET
    result.notes.append(
        f"nats-server {'sync_interval: always' if sync_always else 'default sync (lazy)'}; "
        "raw writes go to a stream of their own configured like the store's; "
        "raw reads read the store's stream"
    )
    return result


def _measure_store(
    key: str,
    label: str,
    sizes: Sizes,
    url: str,
    *,
    replicas: int = 1,
    server: services.Monitored | None = None,
) -> Result:
    """The store as a service uses it (group commit on, signed), beside it the same stream and
    connection with each append written by itself, and that again unsigned."""
    env = {"NATS_URL": url, "NATS_STREAM_REPLICAS": str(replicas)}
    factories = [
        JetStreamFactory(Environment(APPLICATION, {**env, **settings}))
        for settings in (
            {},
            {"NATS_GROUP_COMMIT": "no"},
            {"NATS_GROUP_COMMIT": "no", "SIGNING": "no"},
        )
    ]
    grouped, alone, unsigned = (f.application_recorder() for f in factories)
    try:
        layout = factories[0].layout
        target = RawTarget(url, layout.stream, layout.aggregate_filter, layout.all_events, replicas)
        return measure(
            key, label, grouped, sizes, target, alone=alone, server=server, unsigned=unsigned
        )
    finally:
        for factory in factories:
            factory.close()


class BackendUnavailableError(RuntimeError):
    """A backend that could not be set up: skipped, with this reason."""


def bench_jetstream_cluster(sizes: Sizes, tmp: Path) -> Result:
    """The store as a service uses it on a cluster: NATS_URL names every node, its stream has
    3 replicas, group commit on, signing on; and with group commit off, one write per append.
    No warm read: the server's message count is per node, and the reads go to any node."""
    key, label = "jetstream_r3_fsync_always", f"JetStream R{REPLICAS} fsync=always"
    progress(f"{label}: starting a {REPLICAS}-node cluster")
    cluster = local_cluster(tmp / key, REPLICAS, sync_always=True)
    try:
        cluster.start()
    except NatsServerError as error:
        raise BackendUnavailableError(
            f"the {REPLICAS}-node cluster did not start: {error}"
        ) from error
    try:
        result = _measure_store(key, label, sizes, cluster.url, replicas=REPLICAS)
    finally:
        cluster.stop()
    result.notes.append(
        f"{REPLICAS} nats-servers on loopback (one machine), sync_interval: always; the store's "
        f"stream and raw's have {REPLICAS} replicas; NATS_URL names every node, so each "
        "connection lands on any node, the stream leader or not, as in production"
    )
    return result


def bench_sqlite(sizes: Sizes, tmp: Path) -> Result:
    path = tmp / "eventsourcing.sqlite"
    env = {"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": str(path)}
    factory: InfrastructureFactory[Any] = InfrastructureFactory.construct(
        Environment(APPLICATION, env)
    )
    try:
        result = measure("sqlite", "SQLite", factory.application_recorder(), sizes, None)
    finally:
        factory.close()
    result.notes.append("eventsourcing.sqlite, file database (WAL), library defaults")
    return result


def _admin_connection(connect_timeout: int = 10) -> psycopg.Connection[tuple[Any, ...]]:
    return psycopg.connect(
        host=PG_HOST,
        port=PG_PORT,
        user=PG_USER,
        dbname="postgres",
        autocommit=True,
        connect_timeout=connect_timeout,
    )


def postgres_version() -> str | None:
    """The server's version if PostgreSQL answers on 127.0.0.1:5432 (trust auth), else None."""
    try:
        with _admin_connection(connect_timeout=2) as conn:
            row = conn.execute("SHOW server_version").fetchone()
            return None if row is None else str(row[0])
    except psycopg.Error as error:
        progress(f"PostgreSQL: not reachable at 127.0.0.1:5432 ({str(error).strip()}); skipped")
        return None


@contextmanager
def scratch_database() -> Iterator[str]:
    name = f"stafett_bench_{uuid.uuid4().hex[:12]}"
    with _admin_connection() as conn:
        conn.execute(f'CREATE DATABASE "{name}"')  # a name of our own making, not input
    try:
        yield name
    finally:
        with _admin_connection() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def bench_postgres(sizes: Sizes) -> Result:
    with scratch_database() as dbname:
        progress(f"PostgreSQL: created database {dbname}")
        env = {
            "PERSISTENCE_MODULE": "eventsourcing.postgres",
            "POSTGRES_DBNAME": dbname,
            "POSTGRES_HOST": PG_HOST,
            "POSTGRES_PORT": str(PG_PORT),
            "POSTGRES_USER": PG_USER,
            "POSTGRES_PASSWORD": "",
            # One pooled connection per concurrent writer, as a service with 32 workers would.
            "POSTGRES_POOL_SIZE": str(WRITERS),
            "POSTGRES_MAX_OVERFLOW": "0",
        }
        factory: InfrastructureFactory[Any] = InfrastructureFactory.construct(
            Environment(APPLICATION, env)
        )
        try:
            result = measure("postgres", "PostgreSQL", factory.application_recorder(), sizes, None)
        finally:
            factory.close()
    progress(f"PostgreSQL: dropped database {dbname}")
    result.notes.append(
        f"eventsourcing.postgres, 127.0.0.1:5432, pool of {WRITERS} connections, server defaults"
    )
    return result


# Report ---------------------------------------------------------------------------------------

NOTE = """\
raw = plain nats-py on the same server, without the store.
  Append: JetStream publish with the headers the store sends for one event
  (Nats-Expected-Last-Subject-Sequence: 0 on the aggregate's subject wildcard, Es-* headers), into
  a stream of its own configured like the store's; the store runs in threads, raw in asyncio
  tasks on one connection. Load: one batched direct get of the aggregate's subjects.
  Messages on the wire: what the server sent per read (/varz out_msgs), the end marker included.
  Replay: ephemeral pull consumer, AckPolicy.NONE (no acks), fetch(1000); the reference row reads
  the same messages by batched direct get by sequence, the store's own protocol."""


def _rate(rate: Rate | None) -> str:
    return "-" if rate is None else f"{rate.per_second:,.0f}"


def _ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def _ms(latency: Latency | None, p99: bool = False) -> str:
    if latency is None:
        return "-"
    return f"{latency.p99_ms if p99 else latency.median_ms:.2f}"


def _store(compared: Compared | None) -> Rate | None:
    return None if compared is None else compared.store


def _ratio_of(compared: Compared | None) -> float | None:
    return None if compared is None else compared.ratio


def _messages(warm: WarmRead | None, *, full: bool) -> str:
    if warm is None:
        return "-"
    return f"{warm.full_messages_per_read if full else warm.messages_per_read:.1f}"


def targets(
    results: list[Result], connected: dict[str, Any] | None, rebuilt: dict[str, Any] | None
) -> list[dict[str, Any]]:
    """Every target of the kernel issue, with the figure it is judged on."""
    by_key = {r.key: r for r in results}
    found: list[dict[str, Any]] = []

    def add(what: str, verdict: dict[str, Any] | None, shown: str) -> None:
        if verdict is not None:
            found.append({"target": what, **verdict, "shown": shown})

    fsync, lazy = by_key.get("jetstream_fsync_always"), by_key.get("jetstream_lazy")
    replicated = by_key.get("jetstream_r3_fsync_always")
    pg = by_key.get("postgres")
    backends = ((fsync, "fsync always"), (lazy, "lazy server"), (replicated, f"R{REPLICAS} fsync"))
    for result, label in backends:
        if result is None:
            continue
        mine = result.targets()
        limit = result.append_ratio_target
        verdict = mine.get("append_32_writers_ratio")
        add(
            f"{WRITERS}-writer append, {label}, one write per append: >= {limit:.2f} of raw",
            verdict,
            "-" if verdict is None else f"{verdict['value']:.2f}",
        )
        verdict = mine.get("load_100_over_raw")
        add(
            f"100-event load, {label}: <= {LOAD_100_OVER_RAW_TARGET:.2f}x raw direct get",
            verdict,
            "-" if verdict is None else f"{verdict['value']:.2f}x",
        )
        verdict = mine.get("replay_ratio")
        add(
            f"replay, {label}: >= {REPLAY_RATIO_TARGET:.2f} of raw fetch",
            verdict,
            "-" if verdict is None else f"{verdict['value']:.2f}",
        )
        verdict = mine.get("warm_read_messages_per_new_event")
        add(
            f"warm aggregate, {label}: reads only its new event (+1 end marker)",
            verdict,
            "-" if result.warm is None else f"{result.warm.messages_per_read:.1f} messages",
        )
    for result, label in ((fsync, "fsync"), (replicated, f"R{REPLICAS} fsync")):
        if result is None or pg is None:
            continue
        times = result.append_32.store.per_second / pg.append_32.store.per_second
        add(
            f"{WRITERS}-writer append, group commit, {label}: >= "
            f"{GROUP_COMMIT_OVER_POSTGRES_TARGET:.0f}x eventsourcing's PostgreSQL store",
            _target(times, GROUP_COMMIT_OVER_POSTGRES_TARGET, at_least=True),
            f"{times:.1f}x",
        )
    if connected is not None:
        most = max((f["connections"] for f in connected["per_process"].values()), default=0)
        add(
            f"NATS connections per service process: {connections.TARGET}",
            _target(most, connections.TARGET, at_least=False),
            f"at most {most}",
        )
    if rebuilt:
        add(
            f"projection rebuild: >= {projection.REBUILD_RATIO_TARGET:.2f} of raw fetch",
            _target(rebuilt["ratio"], projection.REBUILD_RATIO_TARGET, at_least=True),
            f"{rebuilt['ratio']:.2f}",
        )
    return found


def describe_targets(found: list[dict[str, Any]]) -> str:
    width = max((len(t["target"]) for t in found), default=0)
    lines = ["Targets"]
    for t in found:
        verdict = "pass" if t["pass"] else "MISS"
        lines.append(f"  {t['target'].ljust(width)}  {verdict}  {t['shown']}")
    return "\n".join(lines)


def table(results: list[Result], sizes: Sizes) -> str:
    rows: list[tuple[str, Callable[[Result], str]]] = [
        ("Append, 1 writer (events/s)", lambda r: ""),
        ("  store", lambda r: _rate(r.append_1.store)),
        ("  raw nats-py publish", lambda r: _rate(r.append_1.raw)),
        ("  store / raw", lambda r: _ratio(r.append_1.ratio)),
        (f"Append, {WRITERS} writers (events/s)", lambda r: ""),
        ("  store (threads; JetStream: group commit)", lambda r: _rate(r.append_32.store)),
        ("  store, group commit off", lambda r: _rate(_store(r.append_32_alone))),
        ("  store, group commit off, unsigned", lambda r: _rate(_store(r.append_32_unsigned))),
        ("  raw nats-py publish (asyncio tasks)", lambda r: _rate(r.append_32.raw)),
        ("  store / raw", lambda r: _ratio(r.append_32.ratio)),
        ("  store, group commit off / raw", lambda r: _ratio(_ratio_of(r.append_32_alone))),
        ("  ... unsigned / raw", lambda r: _ratio(_ratio_of(r.append_32_unsigned))),
        ("Load 10-event aggregate (ms)", lambda r: ""),
        ("  store median", lambda r: _ms(r.load_10.store)),
        ("  store p99", lambda r: _ms(r.load_10.store, p99=True)),
        ("  raw direct get median", lambda r: _ms(r.load_10.raw)),
        ("  raw direct get p99", lambda r: _ms(r.load_10.raw, p99=True)),
        ("Load 100-event aggregate (ms)", lambda r: ""),
        ("  store median", lambda r: _ms(r.load_100.store)),
        ("  store p99", lambda r: _ms(r.load_100.store, p99=True)),
        ("  raw direct get median", lambda r: _ms(r.load_100.raw)),
        ("  raw direct get p99", lambda r: _ms(r.load_100.raw, p99=True)),
        ("  store median / raw median", lambda r: _ratio(r.load_100.over_raw)),
        ("  messages on the wire per load", lambda r: _messages(r.warm, full=True)),
        (f"Warm 100-event aggregate, {WARM_NEW_EVENTS} new event (ms)", lambda r: ""),
        ("  store median", lambda r: _ms(None if r.warm is None else r.warm.latency)),
        ("  store p99", lambda r: _ms(None if r.warm is None else r.warm.latency, p99=True)),
        ("  messages on the wire per read", lambda r: _messages(r.warm, full=False)),
        (f"Replay {sizes.events:,} events (events/s)", lambda r: ""),
        ("  store select_notifications", lambda r: _rate(r.replay.store)),
        ("  raw pull fetch, ack none", lambda r: _rate(r.replay.raw)),
        ("  store / raw fetch", lambda r: _ratio(r.replay.ratio)),
        ("  raw direct get pages (reference)", lambda r: _rate(r.replay_direct_get)),
        ("  (writing them: 100-event appends)", lambda r: _rate(r.fill)),
    ]
    header = ["", *(r.label for r in results)]
    body = [[name, *(cell(r) for r in results)] for name, cell in rows]
    widths = [max(len(row[i]) for row in [header, *body]) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        first, *rest = cells
        return "  ".join(
            [first.ljust(widths[0]), *(c.rjust(w) for c, w in zip(rest, widths[1:], strict=True))]
        ).rstrip()

    rule = "-" * len(line(header))
    return "\n".join([line(header), rule, *(line(row) for row in body)])


def environment(pg_version: str | None) -> dict[str, Any]:
    try:
        nats_version = subprocess.run(
            [str(nats_server_binary()), "--version"], capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError) as error:
        nats_version = f"unknown ({error})"

    def version(package: str) -> str:
        try:
            return metadata.version(package)
        except metadata.PackageNotFoundError:
            return "not installed"

    return {
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "nats_server": nats_version,
        "nats_py": version("nats-py"),
        "eventsourcing": version("eventsourcing"),
        "postgresql": pg_version,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="The JetStream event store against raw NATS and eventsourcing's own stores.",
    )
    parser.add_argument("--quick", action="store_true", help="small counts: a smoke run")
    parser.add_argument(
        "--events", type=int, metavar="N", help="notifications to replay (default 50000)"
    )
    parser.add_argument(
        "--only",
        action="append",
        choices=PARTS,
        metavar="PART",
        help=f"run only this part (again for several): {', '.join(PARTS)}; "
        "targets that compare two parts need both",
    )
    args = parser.parse_args(argv)
    if args.events is not None and args.events < 1:
        parser.error("--events must be at least 1")
    wanted = set(args.only or PARTS)
    sizes = Sizes.choose(args.quick, args.events)
    # A SIGTERM unwinds like Ctrl-C, so the nats-servers (own sessions) are stopped, not orphaned.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    started = datetime.now(UTC)
    progress(f"benchmark: {sizes}")

    results: list[Result] = []
    skipped: dict[str, str] = {}
    pg_version: str | None = None
    connected: dict[str, Any] | None = None
    projection_figures: dict[str, Any] | None = None
    with tempfile.TemporaryDirectory(prefix="stafett-bench-") as tmp_name:
        tmp = Path(tmp_name)
        if "fsync" in wanted:
            results.append(bench_jetstream(sizes, tmp, sync_always=True))
        if "lazy" in wanted:
            results.append(bench_jetstream(sizes, tmp, sync_always=False))
        if "cluster" in wanted:
            try:
                results.append(bench_jetstream_cluster(sizes, tmp))
            except BackendUnavailableError as error:
                progress(f"skipped: {error}")
                skipped["jetstream_r3_fsync_always"] = str(error)
        if "sqlite" in wanted:
            results.append(bench_sqlite(sizes, tmp))
        if "postgres" in wanted:
            pg_version = postgres_version()
            if pg_version is None:
                skipped["postgres"] = "no PostgreSQL at 127.0.0.1:5432 (user postgres, trust auth)"
            else:
                results.append(bench_postgres(sizes))

        if "connections" in wanted:
            progress("connections: each service process on a monitored nats-server")
            try:
                connected = connections.count(tmp)
            except RuntimeError as error:  # a service that does not start: say so, go on
                skipped["connections"] = str(error)
        if "projection" in wanted:
            progress("projection: rebuild vs raw fetch, then command-to-query latency")
            try:
                projection_figures = projection.bench_projection(args.quick, args.events)
            except RuntimeError as error:
                skipped["projection"] = str(error)

    finished = datetime.now(UTC)
    found = targets(results, connected, projection_figures and projection_figures["rebuild"])
    print()
    if results:
        print(table(results, sizes))
        print()
    if connected is not None:
        print(connections.describe(connected))
    if projection_figures is not None:
        print(projection.describe(projection_figures))
    print()
    print(describe_targets(found))
    print()
    print(NOTE)
    if any(r.key == "jetstream_r3_fsync_always" for r in results):
        print(f"  R{REPLICAS}: raw on the same cluster, its stream with {REPLICAS} replicas too.")
    for name, reason in skipped.items():
        print(f"skipped {name}: {reason}")

    report = {
        "started_utc": started.isoformat(),
        "finished_utc": finished.isoformat(),
        "duration_s": round((finished - started).total_seconds(), 1),
        "options": {
            "quick": args.quick,
            "only": sorted(wanted, key=PARTS.index),
            "writers": WRITERS,
            **sizes.__dict__,
        },
        "environment": environment(pg_version),
        "backends": {r.key: r.as_json() for r in results},
        "connections_per_service_process": connected,
        "projection": projection_figures,
        "targets": found,
        "skipped": skipped,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{started.strftime('%Y%m%dT%H%M%SZ')}.json"
    path.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nwrote {path.relative_to(Path.cwd()) if path.is_relative_to(Path.cwd()) else path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
