"""The running projection: one feed per stream into the database, and a rebuild from scratch.

Live: each stream's feed hands a batch to `apply`, which writes the batch's changes and the new
stream position in one transaction, on a worker thread (the database calls block). Queries can
wait for a position (`wait_for`), so that a caller reads its own writes, e.g. its own access.
The AUDIT stream is followed like the others; every service appends to it (its access log, made
as the store makes every stream), so the projection waits for it rather than making it.

The read models are also where the read gate finds a case (`case`, a runtime `CaseSource`): the
case folded from its CASE entries.

Rebuild: the read models are built afresh into a new database (a new SQLite file, a new
PostgreSQL schema) and swapped in only when complete, so an interrupted rebuild leaves the old
ones intact. It refuses to run while the service holds the writer's lock.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar
from uuid import UUID

import structlog
from cachetools import LRUCache
from nats.aio.client import Client

from stafett_contracts.casefile import CaseFile
from stafett_projection import views
from stafett_projection.feed import StreamFeed, consumer_name, read_all
from stafett_projection.models import REMEMBERED, STREAMS, Message, Projector
from stafett_projection.store import SCHEMA, Database, Tx

log = structlog.get_logger(__name__)
T = TypeVar("T")


class WriterBusyError(RuntimeError):
    """Another process (the running service) writes the read models."""


class Projection:
    """The read models kept up to date from the streams."""

    def __init__(self, db: Database, streams: Sequence[str] = STREAMS) -> None:
        self.db = db
        self.streams = tuple(streams)
        self.projector = Projector()
        self.feeds: dict[str, StreamFeed] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self.nc: Client | None = None
        # The database blocks: its calls run here, apart from the default pool, so that
        # queries and the writer have room and stop() can wait for what is in flight.
        self._executor: ThreadPoolExecutor | None = None
        self._version_waiters: dict[str, list[tuple[int, asyncio.Future[None]]]] = {}
        self._write_mutex = threading.Lock()
        # Each recent case's newest version applied, so a query can wait for its own write
        # cheaply; a case forgotten here is looked up in the read models.
        self._case_versions: LRUCache[str, int] = LRUCache(REMEMBERED)
        self._case_versions_lock = threading.Lock()

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """Run a blocking database call on the projection's own threads."""
        if self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=16, thread_name_prefix="projection")
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    async def read(self, query: Callable[..., T], *args: Any) -> T:
        """A query over the read models (a function of a Tx and `args`), on a worker thread."""

        def reading() -> T:
            with self.db.reading() as tx:
                return query(tx, *args)

        return await self.run(reading)

    async def case(self, case_id: UUID) -> CaseFile | None:
        """The case folded from its CASE entries (a `stafett_runtime.reads.CaseSource`)."""
        return await self.read(views.case_file, str(case_id))

    async def start(self, nc: Client) -> None:
        if not await self.run(self.db.try_lock):
            raise WriterBusyError(f"another process writes the read models in {self.db.describe()}")
        await self.run(self.db.open_writer)
        self.nc = nc
        positions = await self.run(self.positions)
        for stream in self.streams:
            feed = StreamFeed(nc, stream, positions.get(stream, 0), self._apply)
            self.feeds[stream] = feed
            self._tasks.append(asyncio.create_task(feed.run(), name=f"feed:{stream}"))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            # On Python 3.11 a cancellation can be lost inside a library call (the feed then ran
            # on and stop waited forever, about one stop in ten under load): ask until it ends.
            while not task.done():
                await asyncio.wait([task], timeout=1.0)
                task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()
        if self._executor is not None:
            executor, self._executor = self._executor, None
            await asyncio.to_thread(executor.shutdown, wait=True)  # writes in flight finish
        await asyncio.to_thread(self.db.close)

    def positions(self) -> dict[str, int]:
        with self.db.reading() as tx:
            return {s: int(p) for s, p in tx.all("SELECT stream, seq FROM positions")}

    async def _apply(self, stream: str, batch: Sequence[Message]) -> int:
        position, touched = await self.run(self._write, stream, batch)
        self._wake(touched)
        return position

    def _write(self, stream: str, batch: Sequence[Message]) -> tuple[int, set[str]]:
        # One batch at a time, from the start of its transaction until its versions are
        # published: feeds of several streams write on several threads.
        with self._write_mutex:
            self.projector.touched = {}
            with self.db.transaction() as tx:
                position = self.projector.apply(tx, stream, batch)
            touched = self.projector.touched
            with self._case_versions_lock:
                self._case_versions.update(touched)
        return position, set(touched)

    def _known_version(self, case_id: str) -> int | None:
        with self._case_versions_lock:
            return self._case_versions.get(case_id)

    async def wait_for(self, stream: str, seq: int, seconds: float = 5.0) -> bool:
        """Wait until `stream` is applied up to `seq`; False if that took longer than `seconds`."""
        feed = self.feeds.get(stream)
        if feed is None:
            return False
        # A poll, not a Condition: a Condition waiter cancelled by a timeout can lose the wakeup
        # meant for another, or hold a feed back (seen as a hung test under load, Python 3.11).
        deadline = asyncio.get_running_loop().time() + seconds
        while feed.position < seq:
            if asyncio.get_running_loop().time() >= deadline:
                return False
            await asyncio.sleep(0.01)
        return True

    async def wait_for_case_version(self, case_id: str, version: int, seconds: float) -> None:
        """Wait until the case's own event `version` is applied (read your own writes).

        Each waiter is woken only by a batch that touched its case: with many readers waiting,
        waking them all on every batch would cost more than the reads themselves.
        """
        known = self._known_version(case_id)
        if known is None:  # applied long ago, or not yet
            stored = await self.run(self._newest_version, case_id)
            # A batch may have been applied (and its waiters woken) during that read.
            known = max(stored or 0, self._known_version(case_id) or 0)
        if known >= version:
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        entry = (version, waiter)
        self._version_waiters.setdefault(case_id, []).append(entry)
        try:
            await asyncio.wait_for(waiter, seconds)
        except TimeoutError:
            pass
        finally:
            waiting = self._version_waiters.get(case_id, [])
            if entry in waiting:
                waiting.remove(entry)
            if not waiting:
                self._version_waiters.pop(case_id, None)

    def _wake(self, cases: set[str]) -> None:
        for case_id in cases:
            waiting = self._version_waiters.get(case_id)
            if not waiting:
                continue
            newest = self._known_version(case_id) or 0
            for version, waiter in waiting:
                if version <= newest and not waiter.done():
                    waiter.set_result(None)

    def _newest_version(self, case_id: str) -> int | None:
        with self.db.reading() as tx:
            row = tx.one(
                "SELECT MAX(aggregate_version) FROM entries WHERE case_id = ? AND stream = 'CASE'",
                (case_id,),
            )
        return None if row is None or row[0] is None else int(row[0])

    async def lag(self) -> dict[str, dict[str, Any]]:
        """How far each stream's read models are behind: events not yet applied."""
        assert self.nc is not None
        js = self.nc.jetstream()
        report: dict[str, dict[str, Any]] = {}
        for stream, feed in self.feeds.items():
            try:
                info = await js.consumer_info(stream, consumer_name(stream))
                behind = info.num_pending + info.num_ack_pending
                report[stream] = {"position": feed.position, "behind": behind, "running": True}
            except Exception as error:  # the stream's service has not started yet
                report[stream] = {
                    "position": feed.position,
                    "behind": None,
                    "running": False,
                    "detail": type(error).__name__,
                }
            if feed.error is not None:
                report[stream].update(running=False, detail=str(feed.error))
        return report


async def rebuild(
    db: Database, nc: Client, streams: Sequence[str] = STREAMS, out: Any = None
) -> dict[str, int]:
    """Drop the read models and build them again from the streams; print progress and rate."""
    if not db.try_lock():
        raise WriterBusyError(
            f"the projection service is running on {db.describe()}: stop it, then rebuild"
        )
    try:
        return await _rebuild_locked(db, nc, streams, out)
    finally:
        db.release()


async def _rebuild_locked(
    db: Database, nc: Client, streams: Sequence[str], out: Any
) -> dict[str, int]:
    fresh = _fresh(db)
    projector = Projector()
    connection = fresh.connect(_FRESH_SCHEMA if db.postgres else SCHEMA)
    try:
        if db.postgres:
            connection.execute(f"DROP SCHEMA IF EXISTS {_FRESH_SCHEMA} CASCADE")
        else:
            connection.execute("PRAGMA synchronous=OFF")  # nothing is read before the swap
        fresh.create(connection, _FRESH_SCHEMA if db.postgres else SCHEMA)
        counts: dict[str, int] = {}
        started = time.perf_counter()
        total = 0
        for stream in streams:

            def progress(n: int, stream: str = stream, before: int = total) -> None:
                if out is not None and n % 10_000 < 1000:
                    rate = (before + n) / max(time.perf_counter() - started, 1e-9)
                    print(f"  {stream}: {n} events ({rate:,.0f}/s)", file=out, flush=True)

            async def apply(batch: Sequence[Message], stream: str = stream) -> None:
                tx = Tx(connection, db.postgres)
                projector.apply(tx, stream, batch)
                connection.commit()

            counts[stream] = await read_all(nc, stream, apply, progress)
            total += counts[stream]
        seconds = time.perf_counter() - started
        if out is not None:
            print(
                f"rebuilt {total} events in {seconds:.2f} s ({total / max(seconds, 1e-9):,.0f}"
                " events/s)",
                file=out,
                flush=True,
            )
        if db.postgres:
            connection.execute(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE")
            connection.execute(f"ALTER SCHEMA {_FRESH_SCHEMA} RENAME TO {SCHEMA}")
            connection.commit()
    finally:
        connection.close()
    if not db.postgres:
        assert db.path is not None
        assert fresh.path is not None
        for suffix in ("-wal", "-shm"):
            with contextlib.suppress(FileNotFoundError):
                os.remove(f"{db.path}{suffix}")
        shutil.move(fresh.path, db.path)  # an atomic rename on one file system
    await _reset_consumers(nc, streams)
    return counts


_FRESH_SCHEMA = f"{SCHEMA}_rebuild"


def _fresh(db: Database) -> Database:
    if db.postgres:
        return Database(db.url)
    assert db.path is not None
    path = db.path.with_name(db.path.name + ".rebuild")
    for suffix in ("", "-wal", "-shm"):
        with contextlib.suppress(FileNotFoundError):
            os.remove(f"{path}{suffix}")
    return Database(f"sqlite:///{path}")


async def _reset_consumers(nc: Client, streams: Sequence[str]) -> None:
    """The durable consumers start again from the rebuilt positions when the service starts."""
    js = nc.jetstream()
    for stream in streams:
        with contextlib.suppress(Exception):
            await js.delete_consumer(stream, consumer_name(stream))
