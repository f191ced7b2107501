"""`python -m bench`: the event store against raw NATS, and against eventsourcing's own stores.

Starts two local nats-servers (fsync before every acknowledgement, the project's default, and the
server's lazy default), measures the JetStream store through its eventsourcing recorders beside
the same work done with plain nats-py, then the same measurements for eventsourcing's SQLite store
and, when one answers on 127.0.0.1:5432, its PostgreSQL store. Prints a table and writes the
figures as JSON to bench/results/<UTC timestamp>.json.

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

from bench import projection, raw, store
from bench.stats import Latency, Rate
from stafett_runtime.jetstream import JetStreamFactory
from stafett_runtime.natsserver import NatsServer, nats_server_binary

RESULTS = Path(__file__).resolve().parent / "results"
WRITERS = 32
APPLICATION = "Bench"
PG_HOST, PG_PORT, PG_USER = "127.0.0.1", 5432, "postgres"

# Targets for the JetStream store.
APPEND_RATIO_TARGET = 0.5  # 32-writer append, store / raw
REPLAY_RATIO_TARGET = 0.5  # replay, store / raw pull-consumer fetch
LOAD_100_MEDIAN_MS_TARGET = 5.0


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
            events=events or 100_000,
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

    def as_json(self) -> dict[str, Any]:
        return {
            "store": self.store.as_json(),
            "raw": None if self.raw is None else self.raw.as_json(),
        }


@dataclass
class Result:
    """Everything measured on one backend."""

    key: str
    label: str
    append_1: Compared
    append_32: Compared
    load_10: LoadCompared
    load_100: LoadCompared
    replay: Compared
    replay_direct_get: Rate | None  # reference: the store's own read protocol, without the store
    fill: Rate  # how fast the replay's events were written (100-event appends, 8 threads)
    notes: list[str] = field(default_factory=list)

    def targets(self) -> dict[str, dict[str, Any]]:
        found: dict[str, dict[str, Any]] = {}
        if self.append_32.ratio is not None:
            found["append_32_writers_ratio"] = _target(
                self.append_32.ratio, APPEND_RATIO_TARGET, at_least=True
            )
        if self.replay.ratio is not None:
            found["replay_ratio"] = _target(self.replay.ratio, REPLAY_RATIO_TARGET, at_least=True)
        found["load_100_median_ms"] = _target(
            self.load_100.store.median_ms, LOAD_100_MEDIAN_MS_TARGET, at_least=False
        )
        return found

    def as_json(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "append_1_writer": self.append_1.as_json(),
            f"append_{WRITERS}_writers": self.append_32.as_json(),
            "load_10_events": self.load_10.as_json(),
            "load_100_events": self.load_100.as_json(),
            "replay": self.replay.as_json(),
            "replay_raw_direct_get": (
                None if self.replay_direct_get is None else self.replay_direct_get.as_json()
            ),
            "fill": self.fill.as_json(),
            "targets": self.targets(),
            "notes": self.notes,
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

    url: str
    stream: str
    aggregate_filter: Callable[[uuid.UUID], str]
    all_events: str


def measure(
    key: str,
    label: str,
    recorder: ApplicationRecorder,
    sizes: Sizes,
    target: RawTarget | None,
) -> Result:
    """The store's figures on one backend; with a RawTarget, each beside its raw baseline."""

    def step(what: str) -> None:
        progress(f"{label}: {what}")

    seconds, most = sizes.append_seconds, sizes.append_most
    step(f"append, 1 writer, {seconds:g}s")
    append_1 = Compared(store.append_sequential(recorder, seconds, most))
    if target:
        step("  raw publish, sequential")
        append_1.raw = asyncio.run(raw.publish_sequential(target.url, seconds, most))

    step(f"append, {WRITERS} writers, {seconds:g}s")
    append_32 = Compared(store.append_concurrent(recorder, WRITERS, seconds, most))
    if target:
        step(f"  raw publish, {WRITERS} asyncio publishers")
        append_32.raw = asyncio.run(raw.publish_concurrent(target.url, WRITERS, seconds, most))

    loads: dict[int, LoadCompared] = {}
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
        direct = asyncio.run(
            raw.direct_get_replay(target.url, target.stream, target.all_events, sizes.events)
        )
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
    )


# Backends ------------------------------------------------------------------------------------


def bench_jetstream(sizes: Sizes, tmp: Path, *, sync_always: bool) -> Result:
    key = "jetstream_fsync_always" if sync_always else "jetstream_lazy"
    label = "JetStream fsync=always" if sync_always else "JetStream lazy"
    server = NatsServer(store_dir=tmp / key, sync_always=sync_always, log_file=tmp / f"{key}.log")
    progress(f"{label}: starting nats-server")
    server.start()
    try:
        factory = JetStreamFactory(Environment(APPLICATION, {"NATS_URL": server.url}))
        try:
            recorder = factory.application_recorder()
            layout = factory.layout
            target = RawTarget(
                server.url, layout.stream, layout.aggregate_filter, layout.all_events
            )
            result = measure(key, label, recorder, sizes, target)
        finally:
            factory.close()
    finally:
        server.stop()
    result.notes.append(
        f"nats-server {'sync_interval: always' if sync_always else 'default sync (lazy)'}; "
        "raw writes go to a stream of their own configured like the store's; "
        "raw reads read the store's stream"
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
  Replay: ephemeral pull consumer, AckPolicy.NONE (no acks), fetch(1000); the reference row reads
  the same messages by batched direct get, the store's own protocol."""


def _rate(rate: Rate | None) -> str:
    return "-" if rate is None else f"{rate.per_second:,.0f}"


def _ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def _ms(latency: Latency | None, p99: bool = False) -> str:
    if latency is None:
        return "-"
    return f"{latency.p99_ms if p99 else latency.median_ms:.2f}"


def _verdict(target: dict[str, Any] | None, percent: bool) -> str:
    if target is None:
        return "-"
    value = f"{target['value']:.0%}" if percent else f"{target['value']:.2f} ms"
    return f"{'pass' if target['pass'] else 'MISS'} ({value})"


def table(results: list[Result], sizes: Sizes) -> str:
    rows: list[tuple[str, Callable[[Result], str]]] = [
        ("Append, 1 writer (events/s)", lambda r: ""),
        ("  store", lambda r: _rate(r.append_1.store)),
        ("  raw nats-py publish", lambda r: _rate(r.append_1.raw)),
        ("  store / raw", lambda r: _ratio(r.append_1.ratio)),
        (f"Append, {WRITERS} writers (events/s)", lambda r: ""),
        ("  store (threads)", lambda r: _rate(r.append_32.store)),
        ("  raw nats-py publish (asyncio tasks)", lambda r: _rate(r.append_32.raw)),
        ("  store / raw", lambda r: _ratio(r.append_32.ratio)),
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
        (f"Replay {sizes.events:,} events (events/s)", lambda r: ""),
        ("  store select_notifications", lambda r: _rate(r.replay.store)),
        ("  raw pull fetch, ack none", lambda r: _rate(r.replay.raw)),
        ("  store / raw fetch", lambda r: _ratio(r.replay.ratio)),
        ("  raw direct get pages (reference)", lambda r: _rate(r.replay_direct_get)),
        ("  (writing them: 100-event appends)", lambda r: _rate(r.fill)),
        ("Targets", lambda r: ""),
        (
            f"  {WRITERS}-writer append >= 50% of raw",
            lambda r: _verdict(r.targets().get("append_32_writers_ratio"), percent=True),
        ),
        (
            "  replay >= 50% of raw fetch",
            lambda r: _verdict(r.targets().get("replay_ratio"), percent=True),
        ),
        (
            "  100-event load median <= 5 ms",
            lambda r: _verdict(r.targets().get("load_100_median_ms"), percent=False),
        ),
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
        "--events", type=int, metavar="N", help="notifications to replay (default 100000)"
    )
    args = parser.parse_args(argv)
    if args.events is not None and args.events < 1:
        parser.error("--events must be at least 1")
    sizes = Sizes.choose(args.quick, args.events)
    # A SIGTERM unwinds like Ctrl-C, so the nats-servers (own sessions) are stopped, not orphaned.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    started = datetime.now(UTC)
    progress(f"benchmark: {sizes}")

    results: list[Result] = []
    skipped: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="stafett-bench-") as tmp_name:
        tmp = Path(tmp_name)
        results.append(bench_jetstream(sizes, tmp, sync_always=True))
        results.append(bench_jetstream(sizes, tmp, sync_always=False))
        results.append(bench_sqlite(sizes, tmp))
        pg_version = postgres_version()
        if pg_version is None:
            skipped["postgres"] = "no PostgreSQL at 127.0.0.1:5432 (user postgres, trust auth)"
        else:
            results.append(bench_postgres(sizes))

        progress("projection: rebuild vs raw fetch, then command-to-query latency")
        projection_figures = projection.bench_projection(args.quick, args.events)

    finished = datetime.now(UTC)
    print()
    print(table(results, sizes))
    print()
    print(projection.describe(projection_figures))
    print()
    print(NOTE)
    for name, reason in skipped.items():
        print(f"skipped {name}: {reason}")

    report = {
        "started_utc": started.isoformat(),
        "finished_utc": finished.isoformat(),
        "duration_s": round((finished - started).total_seconds(), 1),
        "options": {"quick": args.quick, "writers": WRITERS, **sizes.__dict__},
        "environment": environment(pg_version),
        "backends": {r.key: r.as_json() for r in results},
        "projection": projection_figures,
        "skipped": skipped,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{started.strftime('%Y%m%dT%H%M%SZ')}.json"
    path.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nwrote {path.relative_to(Path.cwd()) if path.is_relative_to(Path.cwd()) else path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
