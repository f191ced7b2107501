"""The running projection: one feed per stream into the database; rebuilding while it serves.

Live: each stream's feed hands a batch to `apply`, which writes the batch's changes and the new
stream position in one transaction, on a worker thread (the database calls block). Queries can
wait for a position (`wait_for`), so that a caller reads its own writes, e.g. its own access.
The AUDIT stream is followed like the others; every service appends to it (its access log, made
as the store makes every stream), so the projection waits for it rather than making it.

The read models are also where the read gate finds a case (`case`, a runtime `CaseSource`): the
case folded from its CASE entries.

Rebuild (`rebuild`: `python -m stafett_projection rebuild`, `stafett replay`): the read models
are built afresh into the next generation (a new SQLite file beside the served one, or a new
PostgreSQL schema: `store`), from every stream, while the current one is served; then the
pointer is moved to it in one atomic step. An interrupted rebuild leaves the served generation
as it was; what it built is removed by the next rebuild.

The running service follows the pointer (`Projection._follow`, every second). When it names
another generation, the service stops its feeds, catches that generation up from its own
positions to the end of every stream (so it holds all the served one holds, and more), then
writes and reads it from then on, feeds it from its positions, and drops the old one. Queries
are answered throughout: from the old generation until the switch, from the new one after it,
so no read sees less than a read before it. They see nothing new for the moment of the catch-up:
the events that arrived since the rebuild finished.

After an upgrade that changes the tables (`store.SCHEMA_VERSION`) the service rebuilds the same
way by itself. A generation of another version is never fed nor read: until the rebuild is done
queries are answered 503 (try again shortly) and readiness says how far it is.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TextIO, TypeVar
from uuid import UUID

import structlog
from cachetools import LRUCache
from eventsourcing.persistence import OperationalError
from nats.aio.client import Client
from nats.js.errors import NotFoundError

from stafett_contracts.casefile import CaseFile
from stafett_projection import views
from stafett_projection.feed import StreamFeed, read_all
from stafett_projection.models import REMEMBERED, STREAMS, Message, Projector
from stafett_projection.store import SCHEMA_VERSION, Database, Held, Tx
from stafett_runtime.directory import DirectorySource

log = structlog.get_logger(__name__)
T = TypeVar("T")

FOLLOW_EVERY = 1.0  # seconds between two looks at which generation the pointer names
SWITCH_WAIT = 60.0  # seconds a rebuild waits for the running service to switch to its work


class WriterBusyError(RuntimeError):
    """Another process (the running service) writes the read models."""


class RebuildBusyError(RuntimeError):
    """Another process rebuilds the read models."""


class Projection:
    """The read models kept up to date from the streams."""

    def __init__(self, db: Database, streams: Sequence[str] = STREAMS) -> None:
        self.db = db
        self.streams = tuple(streams)
        self.projector = Projector()
        self.directory: DirectorySource | None = None
        self.feeds: dict[str, StreamFeed] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._follower: asyncio.Task[None] | None = None
        self._held: Held | None = None  # the writer's lock of the generation served
        self.serving = False  # False while only a generation of another version exists
        self.rebuilt: int | None = None  # events rebuilt so far, while this process rebuilds
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
        if not self.serving:
            raise OperationalError(
                "the read models are being rebuilt for this version of the projection"
            )

        def reading() -> T:
            with self.db.reading() as tx:
                return query(tx, *args)

        return await self.run(reading)

    async def case(self, case_id: UUID) -> CaseFile | None:
        """The case folded from its CASE entries (a `stafett_runtime.reads.CaseSource`)."""
        return await self.read(views.case_file, str(case_id))

    async def start(self, nc: Client, directory: DirectorySource | None = None) -> None:
        """Serve the generation the pointer names, and follow the pointer. `directory`: each
        unit's kind, for whether a handover moves a case to another unit."""
        self.nc = nc
        self.directory = directory
        self.projector = Projector(directory=directory)
        while True:
            generation = await self.run(self.db.current)
            held = await self.run(self.db.lock, generation)
            if held is None:
                raise WriterBusyError(
                    f"another process writes the read models in {self.db.describe(generation)}"
                )
            if await self.run(self.db.current) == generation:
                break
            await self.run(held.release)  # a rebuild moved the pointer meanwhile
        self._held = held
        version = await self.run(self.db.open_writer, generation)
        if version == SCHEMA_VERSION:
            await self._start_feeds()
        else:
            log.warning(
                "read models of another version: rebuilding them",
                found=version,
                version=SCHEMA_VERSION,
            )
        self._follower = asyncio.create_task(self._follow(), name="projection:follow")

    async def stop(self) -> None:
        if self._follower is not None:
            await _cancel([self._follower])
            self._follower = None
        await self._stop_feeds()
        self.serving = False
        if self._executor is not None:
            executor, self._executor = self._executor, None
            await asyncio.to_thread(executor.shutdown, wait=True)  # writes in flight finish
        await asyncio.to_thread(self.db.close)
        if self._held is not None:
            await asyncio.to_thread(self._held.release)
            self._held = None

    async def _start_feeds(self) -> None:
        assert self.nc is not None
        positions = await self.run(self.positions)
        self.feeds = {}
        for stream in self.streams:
            feed = StreamFeed(self.nc, stream, positions.get(stream, 0), self._apply)
            self.feeds[stream] = feed
            self._tasks.append(asyncio.create_task(feed.run(), name=f"feed:{stream}"))
        self.serving = True

    async def _stop_feeds(self) -> None:
        tasks, self._tasks = self._tasks, []
        await _cancel(tasks)

    def positions(self) -> dict[str, int]:
        with self.db.reading() as tx:
            return {s: int(p) for s, p in tx.all("SELECT stream, seq FROM positions")}

    # Following the pointer: a rebuilt generation, or a rebuild after an upgrade.

    async def _follow(self) -> None:
        while True:
            try:
                await self._keep_current()
            except asyncio.CancelledError:
                raise
            except Exception:
                # e.g. NATS or the database away for a moment: the next look tries again
                log.exception("could not switch to rebuilt read models; trying again")
            await asyncio.sleep(FOLLOW_EVERY)

    async def _keep_current(self) -> None:
        target = await self.run(self.db.current)
        if target == self.db.generation and self.serving:
            return
        if await self.run(self.db.version_of, target) != SCHEMA_VERSION:
            await self._rebuild_here()
        elif target != self.db.generation:
            await self._switch(target)

    async def _rebuild_here(self) -> None:
        """Build a generation of this version and point at it; the next look switches to it."""
        assert self.nc is not None
        held = await self.run(self.db.lock_rebuild)
        if held is None:
            return  # `stafett replay` is rebuilding: its generation is followed when done
        self.rebuilt = 0

        def counted(done: int) -> None:
            self.rebuilt = done

        try:
            _, counts = await build_next(
                self.db, self.nc, self.streams, self.directory, Progress(counted)
            )
            log.info("read models rebuilt", version=SCHEMA_VERSION, events=sum(counts.values()))
        finally:
            self.rebuilt = None
            await self.run(held.release)

    async def _switch(self, target: int) -> None:
        assert self.nc is not None
        held = await self.run(self.db.lock, target)
        if held is None:
            return  # its builder has not let go of it yet: the next look
        served, served_lock, was_serving = self.db.generation, self._held, self.serving
        projector = Projector(directory=self.directory)
        try:
            await self._stop_feeds()
            await build(self.db, target, self.nc, self.streams, projector)
        except BaseException:
            await self.run(held.release)
            if was_serving:
                await self._start_feeds()  # go on with the served generation
            raise
        await self.run(self._write_to, target)
        self._held = held
        self.projector = Projector(directory=self.directory)
        with self._case_versions_lock:
            self._case_versions.update(projector.touched)
        await self._start_feeds()
        self._wake(set(projector.touched))
        log.info("switched to rebuilt read models", generation=target, dropped=served)
        if served is not None and served_lock is not None:
            await self.run(_drop, self.db, served, served_lock)

    def _write_to(self, generation: int) -> None:
        with self._write_mutex:  # no batch is half written when the writer moves
            self.db.open_writer(generation)

    # Applying the live feeds.

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
        # A poll, not a Condition: a Condition waiter cancelled by a timeout can lose the wakeup
        # meant for another, or hold a feed back (seen as a hung test under load, Python 3.11).
        # The feed is looked up each time: a switch to a rebuilt generation replaces it.
        deadline = asyncio.get_running_loop().time() + seconds
        while (feed := self.feeds.get(stream)) is None or feed.position < seq:
            if asyncio.get_running_loop().time() >= deadline:
                return False
            await asyncio.sleep(0.01)
        return True

    async def wait_for_case_version(self, case_id: str, version: int, seconds: float) -> None:
        """Wait until the case's own event `version` is applied (read your own writes).

        Each waiter is woken only by a batch that touched its case: with many readers waiting,
        waking them all on every batch would cost more than the reads themselves.
        """
        if not self.serving:
            return  # the read that follows is asked to try again
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
        report: dict[str, dict[str, Any]] = {}
        for stream, feed in self.feeds.items():
            try:
                behind = await feed.behind()
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


async def _cancel(tasks: Sequence[asyncio.Task[None]]) -> None:
    for task in tasks:
        task.cancel()
    for task in tasks:
        # On Python 3.11 a cancellation can be lost inside a library call (the feed then ran
        # on and stop waited forever, about one stop in ten under load): ask until it ends.
        while not task.done():
            await asyncio.wait([task], timeout=1.0)
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task


def _drop(db: Database, generation: int, held: Held) -> None:
    """Remove a generation nobody serves any more, then let go of its lock."""
    try:
        db.drop(generation)
    finally:
        held.release()


# Building a generation: a rebuild from scratch, and the catch-up before a switch.


class Progress:
    """Events applied so far in a build, told to `report` about every thousand."""

    def __init__(self, report: Callable[[int], None]) -> None:
        self._report = report
        self._before = 0  # in the streams already read
        self._told = 0
        self.done = 0

    def stream(self) -> Callable[[int], None]:
        """The counter of the next stream read (`feed.read_all` counts per stream)."""
        self._before = self.done

        def count(n: int) -> None:
            self.done = self._before + n
            if self.done - self._told >= 1000:
                self._told = self.done
                self._report(self.done)

        return count


async def build(
    db: Database,
    generation: int,
    nc: Client,
    streams: Sequence[str],
    projector: Projector,
    progress: Progress | None = None,
) -> dict[str, int]:
    """Apply every stream to `generation`, from its own positions to the end of the stream now:
    all of it for a new generation; what came since, for one about to be switched to."""
    connection = await asyncio.to_thread(db.connect, generation)
    try:
        version = await asyncio.to_thread(db.prepare, connection, generation)
        if version != SCHEMA_VERSION:
            raise RuntimeError(f"{db.describe(generation)} holds read models of version {version}")
        tx = Tx(connection, db.postgres)
        positions = dict(await asyncio.to_thread(tx.all, "SELECT stream, seq FROM positions"))
        await asyncio.to_thread(connection.rollback)
        counts: dict[str, int] = {}
        for stream in streams:

            async def apply(batch: Sequence[Message], stream: str = stream) -> None:
                await asyncio.to_thread(_apply_batch, connection, tx, projector, stream, batch)

            counted = progress.stream() if progress is not None else (lambda _: None)
            counts[stream] = await read_all(
                nc, stream, apply, counted, after=int(positions.get(stream, 0))
            )
        return counts
    finally:
        await asyncio.to_thread(connection.close)


def _apply_batch(
    connection: Any, tx: Tx, projector: Projector, stream: str, batch: Sequence[Message]
) -> None:
    try:
        projector.apply(tx, stream, batch)
        connection.commit()
    except BaseException:
        connection.rollback()
        raise


async def build_next(
    db: Database,
    nc: Client,
    streams: Sequence[str],
    directory: DirectorySource | None,
    progress: Progress,
) -> tuple[int, dict[str, int]]:
    """Build the next generation from every stream and point at it (the caller holds the
    rebuild lock); its number and the events read from each stream."""
    await asyncio.to_thread(db.drop_unserved)
    generation = await asyncio.to_thread(db.next_generation)
    held = await asyncio.to_thread(db.lock, generation)
    if held is None:
        raise RebuildBusyError(f"another process holds {db.describe(generation)}")
    try:
        counts = await build(db, generation, nc, streams, Projector(directory=directory), progress)
        await asyncio.to_thread(db.publish, generation)
    finally:
        await asyncio.to_thread(held.release)
    return generation, counts


async def rebuild(
    db: Database,
    nc: Client,
    streams: Sequence[str] = STREAMS,
    out: TextIO | None = None,
    directory: DirectorySource | None = None,
) -> dict[str, int]:
    """Rebuild the read models from the streams into a new generation while the served one
    stays in use, swap it in, and wait (a while) for a running service to switch to it.

    Prints to `out` what it does, progress as JSON lines (`{"done": n, "total": t}`, `t` the
    messages in the streams, tracking records included) and the rate.
    """

    def say(text: str) -> None:
        if out is not None:
            print(text, file=out, flush=True)

    held = await asyncio.to_thread(db.lock_rebuild)
    if held is None:
        raise RebuildBusyError(f"another rebuild of the read models in {db.describe()} is running")
    try:
        served = await asyncio.to_thread(db.current)
        total = await _messages_in(nc, streams)
        say(f"rebuilding the read models beside {db.describe(served)}, which stays in use")
        say(json.dumps({"done": 0, "total": total}))
        started = time.perf_counter()
        progress = Progress(lambda done: say(json.dumps({"done": done, "total": total})))
        generation, counts = await build_next(db, nc, streams, directory, progress)
        seconds = time.perf_counter() - started
        events = sum(counts.values())
        say(
            f"rebuilt {events} events in {seconds:.2f} s ({events / max(seconds, 1e-9):,.0f}"
            " events/s)"
        )
        say(f"swapped in: {db.describe(generation)} now holds the read models")
        say(await _handed_over(db, served))
    finally:
        await asyncio.to_thread(held.release)
    return counts


async def _messages_in(nc: Client, streams: Sequence[str]) -> int:
    js = nc.jetstream()
    total = 0
    for stream in streams:
        with contextlib.suppress(NotFoundError):
            total += (await js.stream_info(stream)).state.messages
    return total


async def _handed_over(db: Database, served: int, seconds: float = SWITCH_WAIT) -> str:
    """Wait until nobody serves the generation that was served (a running service has switched
    away from it, or none runs), and remove it; what became of it, in words."""
    deadline = time.monotonic() + seconds
    while True:
        held = await asyncio.to_thread(db.lock, served)
        if held is not None:
            await asyncio.to_thread(_drop, db, served, held)
            return f"removed the read models replaced ({db.describe(served)})"
        if time.monotonic() >= deadline:
            return (
                "the running projection service has not switched yet; it does once it can reach"
                " NATS, and removes the read models replaced"
            )
        await asyncio.sleep(0.2)
