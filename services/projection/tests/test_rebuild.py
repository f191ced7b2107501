"""Rebuilding the read models from the streams: while the service serves, and by itself after an
upgrade that changes its tables.

Each in SQLite and in PostgreSQL (the `database` fixture's two kinds), against a real
nats-server, with the events published to the streams as the services would.
"""

from __future__ import annotations

import asyncio
import io
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import nats
import pytest
from eventsourcing.persistence import OperationalError
from litestar.testing import TestClient
from nats.aio.client import Client

from bench.history import ensure_streams, history, publish
from stafett_contracts.identity import Actor, Role
from stafett_projection.api import create_app
from stafett_projection.projection import Projection, RebuildBusyError, WriterBusyError, rebuild
from stafett_projection.store import SCHEMA_VERSION, Database, dump
from stafett_runtime.auth import DevelopmentKey
from stafett_runtime.register import FileRegister
from stafett_runtime.testing import NatsTestServer, kernel_for_tests

CASES = 760  # about 15 events each
AUDITOR = Actor(person="tilsyn-1", role=Role.AUDITOR)
LEADER = Actor(person="styrer-1", role=Role.UNIT_LEADER, service="barnehage-solsikke")


async def caught_up(projection: Projection, nc: Client) -> None:
    js = nc.jetstream()
    for stream in ("CASE", "CONSENT", "MEETING", "NOTIFY"):
        last = (await js.stream_info(stream)).state.last_seq
        assert await projection.wait_for(stream, last, seconds=60), f"{stream} not caught up"


async def test_a_rebuild_from_the_streams_equals_the_live_built_read_models(
    nats_server: NatsTestServer, database: Database
) -> None:
    # Given a generated history of more than 10,000 events, half published before the service
    # starts and half while it runs, and the read models the service built from them
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
        await live.stop()
        await own.close()

        # When they are rebuilt from scratch
        out = io.StringIO()
        counts = await rebuild(Database(database.url), nc, out=out)

        # Then every table equals the live-built one, and the rebuild said how fast it went
        assert sum(counts.values()) == len(events)
        assert "events/s" in out.getvalue()
        rebuilt = Database(database.url)
        assert await asyncio.to_thread(rebuilt.current) == 1
        assert await asyncio.to_thread(dump, rebuilt) == built_live
        assert len(built_live["entries"]) == len(events)
        # and nothing is left of the read models replaced
        assert await asyncio.to_thread(rebuilt.generations) == [1]
    finally:
        await nc.close()


class Service:
    """The projection service's query API, as a person reads it, in a thread of its own."""

    def __init__(self, client: TestClient[Any], key: DevelopmentKey) -> None:
        self.client, self.key = client, key
        self._lock = threading.Lock()

    def get(self, path: str, actor: Actor, **params: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.key.mint(actor)}"}
        with self._lock:  # the test client's portal serves one request at a time
            return self.client.get(path, headers=headers, params=params)


@pytest.fixture
def served(
    nats_server: NatsTestServer, tmp_path: Path, database: Database
) -> Iterator[tuple[Service, Projection]]:
    key = DevelopmentKey.load_or_create(tmp_path / "key.pem")
    register = FileRegister(tmp_path / "register.json")

    async def streams() -> None:
        nc = await nats.connect(nats_server.url)
        await ensure_streams(nc)
        await nc.close()

    asyncio.run(streams())
    kernel = kernel_for_tests("projection", nats_server.url, key=key, register=register)
    projection = Projection(database)
    with TestClient(create_app(projection, kernel)) as client:
        yield Service(client, key), projection


def published(url: str, events: list[Any], in_flight: int = 256) -> None:
    async def send() -> None:
        nc = await nats.connect(url)
        try:
            await publish(nc, events, in_flight=in_flight)
        finally:
            await nc.close()

    asyncio.run(send())


def test_a_replay_while_commands_flow_swaps_in_new_read_models_and_queries_are_answered_throughout(
    nats_server: NatsTestServer, served: tuple[Service, Projection], database: Database
) -> None:
    service, projection = served
    events = list(history(200))
    first, during, after = events[:1000], events[1000:2500], events[2500:]
    # Given a running projection service that has applied a first part of the history
    published(nats_server.url, first)
    wait_until_applied(service, len(first))
    served_before = projection.db.generation
    # each query's status, and what it counted: concerns in the figures, entries of a case
    answers: list[tuple[int, int]] = []
    entries: list[tuple[int, int]] = []
    case_id = first[0].aggregate_id
    stop = threading.Event()

    def ask() -> None:
        while not stop.is_set():
            answer = service.get("/figures", LEADER)
            answers.append((answer.status_code, concerns(answer)))
            log = service.get(f"/cases/{case_id}/relay-log", AUDITOR, purpose="Tilsyn")
            shown = len(log.json()["entries"]) if log.status_code == 200 else -1
            entries.append((log.status_code, shown))
            time.sleep(0.01)

    asker = threading.Thread(target=ask)
    flow = threading.Thread(target=published, args=(nats_server.url, during, 20))
    asker.start()
    flow.start()
    try:
        # When the read models are rebuilt (`stafett replay`) while commands flow
        out = io.StringIO()

        async def replay() -> None:
            nc = await nats.connect(nats_server.url)
            try:
                await rebuild(Database(database.url), nc, out=out)
            finally:
                await nc.close()

        asyncio.run(replay())
        flow.join()
        published(nats_server.url, after)
        wait_until_applied(service, len(events))
    finally:
        stop.set()
        asker.join()
        flow.join()

    # Then the running service switched to the rebuilt read models, without a restart
    assert projection.db.generation != served_before
    assert "removed the read models replaced" in out.getvalue()
    progress = [json.loads(line) for line in out.getvalue().splitlines() if line.startswith("{")]
    assert progress[0]["done"] == 0
    assert progress[-1]["done"] > 0
    # and every query was answered, never with a server error, never with less than before
    for asked in (answers, entries):
        statuses = {status for status, _ in asked}
        assert statuses == {200}, statuses
        counted = [n for _, n in asked]
        assert counted == sorted(counted)
    # and the events since the rebuild are applied once each, from the rebuilt positions on
    assert count_entries(projection) == len(events)


def concerns(answer: httpx.Response) -> int:
    """The concerns the municipal figures count (those of groups too small to show as none)."""
    if answer.status_code != 200:
        return -1
    per_unit: dict[str, dict[str, int | None]] = answer.json()["concerns_per_unit_and_month"]
    return sum(n or 0 for months in per_unit.values() for n in months.values())


def wait_until_applied(service: Service, count: int, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while True:
        lag = service.get("/lag", AUDITOR).json()
        if lag and sum(s["position"] for n, s in lag.items() if n != "AUDIT") >= count:
            return
        assert time.monotonic() < deadline, f"the projection did not catch up: {lag}"
        time.sleep(0.05)


def count_entries(projection: Projection) -> int:
    with projection.db.reading() as tx:
        row = tx.one("SELECT COUNT(*) FROM entries")
    assert row is not None
    return int(row[0])


async def test_after_an_upgrade_that_changes_the_tables_the_service_rebuilds_by_itself(
    nats_server: NatsTestServer, database: Database
) -> None:
    # Given read models built by a service, which then stops
    nc = await nats.connect(nats_server.url)
    try:
        await ensure_streams(nc)
        await publish(nc, list(history(60)))
        own = await nats.connect(nats_server.url)
        before = Projection(database)
        await before.start(own)
        await caught_up(before, nc)
        built = await asyncio.to_thread(dump, database)
        await before.stop()
        # and an upgrade whose tables are of another version than those read models'
        older = Database(database.url)
        older.open_writer()
        with older.transaction() as tx:
            tx.run("UPDATE schema_version SET version = ?", (SCHEMA_VERSION - 1,))
        older.close()

        # When the upgraded service starts
        upgraded = Projection(Database(database.url))
        await upgraded.start(own)
        try:
            # Then it reads nothing of the old tables: a query is asked to try again (503)
            with pytest.raises(OperationalError, match="being rebuilt"):
                await upgraded.read(lambda tx: tx.one("SELECT 1"))
            # until it has rebuilt them by itself, into a new generation of this version
            deadline = time.monotonic() + 60
            while not upgraded.serving:
                assert time.monotonic() < deadline, "the service did not rebuild its read models"
                await asyncio.sleep(0.05)
            await caught_up(upgraded, nc)
            assert upgraded.db.generation == 1
            version = await asyncio.to_thread(upgraded.db.version_of, 1)
            assert version == SCHEMA_VERSION
            assert await asyncio.to_thread(dump, upgraded.db) == built
            assert await asyncio.to_thread(upgraded.db.generations) == [1]
        finally:
            await upgraded.stop()
            await own.close()
    finally:
        await nc.close()


async def test_one_service_writes_the_read_models_and_one_rebuild_runs_at_a_time(
    nats_server: NatsTestServer, database: Database
) -> None:
    nc = await nats.connect(nats_server.url)
    try:
        await ensure_streams(nc)
        own = await nats.connect(nats_server.url)
        running = Projection(database)
        await running.start(own)
        try:
            # Given a running service, when a second one starts on the same read models
            with pytest.raises(WriterBusyError):
                await Projection(Database(database.url)).start(own)
            # Given a rebuild under way, when another one starts, then it is refused
            held = Database(database.url).lock_rebuild()
            assert held is not None
            try:
                with pytest.raises(RebuildBusyError):
                    await rebuild(Database(database.url), nc)
            finally:
                held.release()
        finally:
            await running.stop()
            await own.close()
    finally:
        await nc.close()


def test_read_model_files_are_readable_by_their_owner_only(tmp_path: Path) -> None:
    # Given read models of people's cases in SQLite, one file made before files were private
    path = tmp_path / "projection" / "projection.sqlite3"
    path.parent.mkdir(mode=0o755)
    path.touch(mode=0o644)
    db = Database(f"sqlite:///{path}")
    # When the service writes them
    db.open_writer()
    with db.transaction() as tx:
        tx.run("INSERT INTO positions(stream, seq) VALUES ('CASE', 1)")
    # Then the database, its write-ahead log and its shared memory are the owner's only
    files = [path, Path(f"{path}-wal"), Path(f"{path}-shm")]
    assert {f.name: oct(f.stat().st_mode & 0o777) for f in files} == {
        f.name: "0o600" for f in files
    }
    # and so is a new generation, in a folder the projection makes for it
    fresh = Database(f"sqlite:///{tmp_path / 'new' / 'projection.sqlite3'}")
    fresh.open_writer(fresh.next_generation())
    made = tmp_path / "new" / "projection-1.sqlite3"
    assert oct(made.stat().st_mode & 0o777) == "0o600"
    assert oct(made.parent.stat().st_mode & 0o777) == "0o700"
    fresh.publish(1)
    assert oct((tmp_path / "new" / "projection.generation").stat().st_mode & 0o777) == "0o600"
    db.close()
    fresh.close()


def test_the_pointer_names_the_generation_served_and_moves_in_one_step(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'projection.sqlite3'}")
    assert db.current() == 0  # read models made before generations: the file itself
    db.publish(3)
    assert db.current() == 3
    assert Database(db.url).name(3) == str(tmp_path / "projection-3.sqlite3")
    assert not list(tmp_path.glob(".*.new"))  # written aside, then renamed over


def test_an_unserved_generation_left_by_a_crash_is_removed_by_the_next_rebuild(
    tmp_path: Path,
) -> None:
    # Given a served generation, and one a rebuild that crashed left half built
    db = Database(f"sqlite:///{tmp_path / 'projection.sqlite3'}")
    db.open_writer(0)
    db.open_writer(2)
    db.close()
    assert db.generations() == [0, 2]
    # When the next rebuild clears the way, then only the served one is left
    db.drop_unserved()
    assert db.generations() == [0]
