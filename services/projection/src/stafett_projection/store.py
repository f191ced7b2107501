"""Where the read models live: SQLite by default, PostgreSQL by setting; and which generation of
them is served.

One set of tables, one SQL text for both: statements are written with `?` placeholders and
translated for psycopg. Timestamps are stored as ISO 8601 text in UTC with microseconds, so they
sort and compare as text in both databases.

The position of each stream (`positions`) is written in the same transaction as the change it
caused: a crash between the two is impossible, so the effect of every event is recorded once.

**Generations.** The read models are built in generations, each a whole database of its own with
its own positions: generation 0 is the SQLite file named (`projection.sqlite3`) or the schema
`projection`; generation n is the file `projection-<n>.sqlite3` beside it, or the schema
`projection_<n>`. A pointer names the one served (the file `projection.generation`, or the table
`projection_meta.generation`); moving it is one atomic step (a rename; a transaction). A rebuild
builds the next generation while the current one serves, then moves the pointer, and the running
service follows it (`projection.Projection`).

**Versions.** Each generation records the version of the tables it was made with
(`schema_version`). `SCHEMA_VERSION` is raised whenever a table, or what the projector writes
into one, changes; the service never feeds nor reads a generation of another version, and
rebuilds instead.

**Files.** The read models hold what people wrote about children: each SQLite file is created
readable by its owner only (0600; SQLite gives its -wal and -shm files the same mode), in a folder
of the owner's only (0700) when the projection makes the folder. So are the locks and the
pointer.

**Locks.** One process writes a generation (a file lock beside its file, a session advisory lock
in PostgreSQL), and one process builds a generation at a time (the rebuild lock).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import sqlite3
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import psycopg

DATABASE_URL_VARIABLE = "STAFETT_PROJECTION_DATABASE_URL"
SCHEMA = "projection"  # the PostgreSQL schema of generation 0; generation n's is projection_<n>
POINTER_SCHEMA = "projection_meta"  # where PostgreSQL keeps the pointer
# Raise it when a table, or what the projector writes into one, changes: the service then
# rebuilds its read models by itself.
SCHEMA_VERSION = 3
_LOCK_CLASS = 0x53746166  # the class of the projection's advisory locks ("Staf")
_REBUILD_LOCK = -1  # the advisory lock of the one rebuild (a generation's is its number)
_PRIVATE = 0o600

TABLES = (
    # How far each stream is applied, and the newest moment a message of it was appended (the
    # order of entries across streams: `Projector.apply`).
    "positions(stream TEXT PRIMARY KEY, seq BIGINT NOT NULL, appended TEXT)",
    # Every entry of every service, with the envelope columns the queries filter on.
    "entries(stream TEXT NOT NULL, seq BIGINT NOT NULL, case_id TEXT, aggregate_id TEXT NOT NULL,"
    " aggregate_version INTEGER NOT NULL, type TEXT NOT NULL, occurred_at TEXT NOT NULL,"
    " appended TEXT NOT NULL, person TEXT NOT NULL, role TEXT NOT NULL, service TEXT,"
    " subject TEXT NOT NULL, body TEXT NOT NULL, PRIMARY KEY (stream, seq))",
    # `unit`: the unit that owns the case now (`owners` says since when).
    "cases(case_id TEXT PRIMARY KEY, child_id TEXT NOT NULL, raised_unit TEXT NOT NULL,"
    " unit TEXT NOT NULL, raised_at TEXT NOT NULL, level INTEGER NOT NULL, status TEXT NOT NULL,"
    " closed_at TEXT, closed_level INTEGER, holder TEXT, holder_service TEXT, coordinator TEXT,"
    " coordinator_service TEXT, first_measure_at TEXT, level0_decided_at TEXT)",
    # Each stay at a level: from a move (`from_level`), the concern (none) or a reopening (none).
    "levels(case_id TEXT NOT NULL, since TEXT NOT NULL, level INTEGER NOT NULL, until TEXT,"
    " from_level INTEGER, PRIMARY KEY (case_id, since))",
    "owners(case_id TEXT NOT NULL, since TEXT NOT NULL, unit TEXT NOT NULL,"
    " PRIMARY KEY (case_id, since))",
    "consents(consent_id TEXT PRIMARY KEY, case_id TEXT NOT NULL, party_kind TEXT NOT NULL,"
    " party TEXT NOT NULL, purposes TEXT NOT NULL, valid_from TEXT NOT NULL,"
    " valid_until TEXT NOT NULL, ended_at TEXT, end_reason TEXT)",
    "measures(measure_id TEXT PRIMARY KEY, case_id TEXT NOT NULL, description TEXT NOT NULL,"
    " responsible TEXT NOT NULL, service TEXT NOT NULL, evaluation_date TEXT,"
    " status TEXT NOT NULL, outcome TEXT)",
    "meetings(meeting_id TEXT PRIMARY KEY, case_id TEXT NOT NULL, meeting_type TEXT NOT NULL,"
    " leader_service TEXT NOT NULL)",
    "action_items(item_id TEXT PRIMARY KEY, case_id TEXT NOT NULL, description TEXT NOT NULL,"
    " owner TEXT NOT NULL, owner_service TEXT, due_on TEXT NOT NULL, done INTEGER NOT NULL)",
    "notifications(notification_id TEXT PRIMARY KEY, case_id TEXT)",
    "breaks(notification_id TEXT PRIMARY KEY, case_id TEXT NOT NULL, unit TEXT,"
    " detected_at TEXT NOT NULL, last_activity_at TEXT NOT NULL, stage TEXT NOT NULL,"
    " cause TEXT NOT NULL)",
    "feedback(meeting_id TEXT NOT NULL, version INTEGER NOT NULL, case_id TEXT NOT NULL,"
    " given_at TEXT NOT NULL, given_by TEXT NOT NULL, rating INTEGER NOT NULL,"
    " heard INTEGER NOT NULL, PRIMARY KEY (meeting_id, version))",
    # Each closed case's deliveries to the archive (AUDIT's ArchiveDelivered): the version of
    # the case each delivered (`delivery`).
    "archived(case_id TEXT NOT NULL, case_version INTEGER NOT NULL, delivered_at TEXT NOT NULL,"
    " archive TEXT NOT NULL, reference TEXT, PRIMARY KEY (case_id, case_version))",
    # Every read of case data and every refusal, by whichever service answered it.
    "access(seq BIGINT PRIMARY KEY, case_id TEXT NOT NULL, occurred_at TEXT NOT NULL,"
    " person TEXT NOT NULL, role TEXT NOT NULL, service TEXT, what TEXT NOT NULL, purpose TEXT,"
    " outcome TEXT NOT NULL, basis TEXT, refusal TEXT, rule TEXT, served_by TEXT)",
)
INDEXES = (
    "entries_by_case ON entries(case_id, appended, stream, seq)",
    "entries_by_type ON entries(type)",
    "access_by_case ON access(case_id, seq)",
    "measures_by_person ON measures(responsible)",
    "items_by_person ON action_items(owner)",
    "cases_by_unit ON cases(unit)",
)
TABLE_NAMES = tuple(t.split("(", 1)[0] for t in TABLES)
_VERSION_TABLE = "schema_version"


class Tx:
    """One transaction: statements with `?` placeholders, translated for the database."""

    def __init__(self, connection: Any, postgres: bool) -> None:
        self._c = connection
        self._postgres = postgres

    def run(self, sql: str, params: Sequence[Any] = ()) -> None:
        self._c.execute(self._sql(sql), params)

    def all(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return [tuple(row) for row in self._c.execute(self._sql(sql), params).fetchall()]

    def one(self, sql: str, params: Sequence[Any] = ()) -> tuple[Any, ...] | None:
        row = self._c.execute(self._sql(sql), params).fetchone()
        return None if row is None else tuple(row)

    def _sql(self, sql: str) -> str:
        return sql.replace("?", "%s") if self._postgres else sql


class Held:
    """A lock held until released: a file lock, or a PostgreSQL session's advisory lock."""

    def __init__(self, release: Callable[[], None]) -> None:
        self._release: Callable[[], None] | None = release

    def release(self) -> None:
        if self._release is not None:
            release, self._release = self._release, None
            release()


class Database:
    """The read models of one SQLite file's place or one PostgreSQL database: their generations,
    the pointer to the one served, and this process's connections to the one it serves."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.postgres = url.startswith(("postgresql://", "postgres://"))
        # SQLite: generation 0's file, which the others live beside.
        self.path = None if self.postgres else Path(url.removeprefix("sqlite:///"))
        self.generation: int | None = None  # the one this process writes and reads
        self._write_connection: Any = None
        self._write_lock = threading.Lock()
        self._readers = threading.local()
        self._reader_connections: list[Any] = []
        self._reader_list_lock = threading.Lock()

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> Database:
        url = environ.get(DATABASE_URL_VARIABLE)
        if url:
            return cls(url)
        data_dir = Path(environ.get("STAFETT_DATA_DIR") or "var")
        return cls(f"sqlite:///{(data_dir / 'projection' / 'projection.sqlite3').resolve()}")

    def describe(self, generation: int | None = None) -> str:
        if self.postgres:
            where = "PostgreSQL " + self.url.rsplit("@", 1)[-1]  # never print a password
            return where if generation is None else f"{where}, schema {self.name(generation)}"
        return f"SQLite {self.path if generation is None else self.name(generation)}"

    # Generations, and the pointer to the one served.

    def name(self, generation: int) -> str:
        """The generation's SQLite file, or its PostgreSQL schema."""
        if self.postgres:
            return SCHEMA if generation == 0 else f"{SCHEMA}_{generation}"
        path = self._sqlite_path
        if generation == 0:
            return str(path)
        return str(path.with_name(f"{path.stem}-{generation}{path.suffix}"))

    def current(self) -> int:
        """The generation the pointer names (0 where no rebuild has moved it yet)."""
        if self.postgres:
            with psycopg.connect(self.url, autocommit=True) as connection:
                exists = connection.execute(
                    "SELECT to_regclass(%s)", (f"{POINTER_SCHEMA}.generation",)
                ).fetchone()
                if not (exists and exists[0]):
                    return 0
                row = connection.execute(f"SELECT n FROM {POINTER_SCHEMA}.generation").fetchone()
                return int(row[0]) if row else 0
        try:
            return int(self._pointer_file.read_text().strip())
        except FileNotFoundError:
            return 0

    def publish(self, generation: int) -> None:
        """Point at `generation`: one atomic step, durable before it returns."""
        if self.postgres:
            with psycopg.connect(self.url) as connection:  # one transaction, committed at exit
                connection.execute(f"CREATE SCHEMA IF NOT EXISTS {POINTER_SCHEMA}")
                connection.execute(
                    f"CREATE TABLE IF NOT EXISTS {POINTER_SCHEMA}.generation(n INTEGER NOT NULL)"
                )
                connection.execute(f"DELETE FROM {POINTER_SCHEMA}.generation")
                connection.execute(
                    f"INSERT INTO {POINTER_SCHEMA}.generation(n) VALUES (%s)", (generation,)
                )
            return
        pointer = self._pointer_file
        written = pointer.with_name(f".{pointer.name}.new")
        descriptor = os.open(written, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, _PRIVATE)
        with os.fdopen(descriptor, "w") as file:
            file.write(f"{generation}\n")
            file.flush()
            os.fsync(file.fileno())
        os.replace(written, pointer)
        folder = os.open(pointer.parent, os.O_RDONLY)
        try:
            os.fsync(folder)  # the rename itself survives a crash
        finally:
            os.close(folder)

    def generations(self) -> list[int]:
        """Every generation there is, served or not."""
        if self.postgres:
            with psycopg.connect(self.url, autocommit=True) as connection:
                rows = connection.execute(
                    "SELECT schema_name FROM information_schema.schemata"
                    " WHERE schema_name = %s OR schema_name LIKE %s",
                    (SCHEMA, f"{SCHEMA}\\_%"),
                ).fetchall()
            names = [row[0] for row in rows]
            pattern = re.compile(rf"^{SCHEMA}(?:_(\d+))?$")
        else:
            path = self._sqlite_path
            names = [p.name for p in path.parent.glob(f"{path.stem}*{path.suffix}")]
            pattern = re.compile(rf"^{re.escape(path.stem)}(?:-(\d+))?{re.escape(path.suffix)}$")
        found = [pattern.match(name) for name in names]
        return sorted(int(m[1] or 0) for m in found if m is not None)

    def next_generation(self) -> int:
        return max([self.current(), *self.generations()]) + 1

    def version_of(self, generation: int) -> int | None:
        """The version of the tables `generation` was made with; None if it has none yet."""
        if not self.postgres and not Path(self.name(generation)).exists():
            return None
        connection = self.connect(generation)
        try:
            return self._version(connection, generation)
        finally:
            connection.close()

    def drop(self, generation: int) -> None:
        """Remove a generation that nobody serves (the caller holds its lock)."""
        if self.postgres:
            with psycopg.connect(self.url, autocommit=True) as connection:
                connection.execute(f"DROP SCHEMA IF EXISTS {self.name(generation)} CASCADE")
            return
        for suffix in ("", "-wal", "-shm", ".lock"):
            with contextlib.suppress(FileNotFoundError):
                os.remove(f"{self.name(generation)}{suffix}")

    def drop_unserved(self) -> None:
        """Remove every generation but the one served that no process holds: what a crash or an
        interrupted rebuild left behind."""
        served = self.current()
        for generation in self.generations():
            if generation == served:
                continue
            held = self.lock(generation)
            if held is not None:
                try:
                    self.drop(generation)
                finally:
                    held.release()

    # Connections.

    def connect(self, generation: int) -> Any:
        if self.postgres:
            return psycopg.connect(self.url, options=f"-c search_path={self.name(generation)}")
        name = self.name(generation)
        if name != ":memory:":
            _private_file(Path(name))
        connection = sqlite3.connect(name, check_same_thread=False, timeout=30)
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("PRAGMA synchronous=NORMAL")  # WAL: durable at checkpoints, fast
        return connection

    def create(self, connection: Any, generation: int) -> None:
        """The tables of this version, in a generation that has none yet."""
        if self.postgres:
            connection.execute(f"CREATE SCHEMA IF NOT EXISTS {self.name(generation)}")
        for table in TABLES:
            connection.execute(f"CREATE TABLE IF NOT EXISTS {table}")
        for index in INDEXES:
            connection.execute(f"CREATE INDEX IF NOT EXISTS {index}")
        connection.execute(f"CREATE TABLE IF NOT EXISTS {_VERSION_TABLE}(version INTEGER NOT NULL)")
        connection.execute(f"DELETE FROM {_VERSION_TABLE}")
        connection.execute(f"INSERT INTO {_VERSION_TABLE}(version) VALUES ({SCHEMA_VERSION})")
        connection.commit()

    def prepare(self, connection: Any, generation: int) -> int:
        """Make the tables of a new generation; the version of the generation's tables."""
        version = self._version(connection, generation)
        if version is None:
            self.create(connection, generation)
            return SCHEMA_VERSION
        return version

    def _version(self, connection: Any, generation: int) -> int | None:
        if self.postgres:
            rows = connection.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = %s",
                (self.name(generation),),
            ).fetchall()
        else:
            rows = connection.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table'"
            ).fetchall()
        tables = {row[0] for row in rows}
        version = None
        if _VERSION_TABLE in tables:
            row = connection.execute(f"SELECT version FROM {_VERSION_TABLE}").fetchone()
            version = int(row[0]) if row else 0
        elif "positions" in tables:
            version = 0  # made before read models recorded their version
        connection.rollback()
        return version

    # The generation this process serves: one writer connection, and a reader per thread.

    def open_writer(self, generation: int | None = None) -> int:
        """Write and read `generation` (by default the one the pointer names) from now on,
        making its tables if it is new; the version of its tables."""
        generation = self.current() if generation is None else generation
        connection = self.connect(generation)
        version = self.prepare(connection, generation)
        with self._write_lock:
            previous, self._write_connection = self._write_connection, connection
            self.generation = generation
        if previous is not None:
            previous.close()
        return version

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Tx]:
        with self._write_lock:
            connection = self._write_connection
            try:
                yield Tx(connection, self.postgres)
                connection.commit()
            except BaseException:
                connection.rollback()
                raise

    @contextlib.contextmanager
    def reading(self) -> Iterator[Tx]:
        """A connection of the calling thread's own, so that queries never wait for the writer;
        kept for the thread's next query, because opening one costs more than most queries, and
        opened again once the process serves another generation."""
        generation = self.generation if self.generation is not None else self.current()
        connection = getattr(self._readers, "connection", None)
        if connection is not None and self._readers.generation != generation:
            self._forget_reader(connection)
            connection = None
        if connection is None:
            connection = self.connect(generation)
            self._readers.connection, self._readers.generation = connection, generation
            with self._reader_list_lock:
                self._reader_connections.append(connection)
        try:
            yield Tx(connection, self.postgres)
        finally:
            connection.rollback()  # end the read transaction: the next query sees newer data

    def _forget_reader(self, connection: Any) -> None:
        with self._reader_list_lock:
            if connection in self._reader_connections:
                self._reader_connections.remove(connection)
        with contextlib.suppress(Exception):
            connection.close()

    def close(self) -> None:
        with self._reader_list_lock:
            for connection in self._reader_connections:
                with contextlib.suppress(Exception):
                    connection.close()
            self._reader_connections.clear()
            self._readers = threading.local()
        # A write cancelled by its caller still runs on its thread: let it finish first.
        with self._write_lock:
            if self._write_connection is not None:
                self._write_connection.close()
                self._write_connection = None

    # Locks: one writer of a generation, one rebuild at a time.

    def lock(self, generation: int) -> Held | None:
        """The writer's lock of `generation`, or None if another process holds it."""
        if self.postgres:
            return self._advisory_lock(generation)
        return _file_lock(Path(f"{self.name(generation)}.lock"))

    def lock_rebuild(self) -> Held | None:
        """The lock of the one rebuild, or None while another process rebuilds."""
        if self.postgres:
            return self._advisory_lock(_REBUILD_LOCK)
        path = self._sqlite_path
        return _file_lock(path.with_name(f"{path.stem}.rebuild.lock"))

    def _advisory_lock(self, key: int) -> Held | None:
        connection = psycopg.connect(self.url, autocommit=True)
        row = connection.execute(
            "SELECT pg_try_advisory_lock(%s, %s)", (_LOCK_CLASS, key)
        ).fetchone()
        if not (row and row[0]):
            connection.close()
            return None

        def release() -> None:
            # Unlock first: a closed session frees its locks only when the server's backend has
            # ended, a moment later, and a process asking at once would be refused.
            with contextlib.suppress(Exception):
                connection.execute("SELECT pg_advisory_unlock(%s, %s)", (_LOCK_CLASS, key))
            connection.close()

        return Held(release)

    @property
    def _sqlite_path(self) -> Path:
        assert self.path is not None
        return self.path

    @property
    def _pointer_file(self) -> Path:
        path = self._sqlite_path
        return path.with_name(f"{path.stem}.generation")


def _private_file(path: Path) -> None:
    """`path` exists and only its owner may read it; a folder made for it is the owner's only."""
    if not path.parent.exists():
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.close(os.open(path, os.O_RDWR | os.O_CREAT, _PRIVATE))
    # Read models made before files were private: make them so, with their -wal and -shm.
    for suffix in ("", "-wal", "-shm"):
        with contextlib.suppress(FileNotFoundError):
            os.chmod(f"{path}{suffix}", _PRIVATE)


def _file_lock(path: Path) -> Held | None:
    if not path.parent.exists():
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, _PRIVATE)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(descriptor)
        return None
    return Held(lambda: os.close(descriptor))  # closing the file frees the lock


def dump(db: Database) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every read model, sorted: two builds are equal when their dumps are (the
    rebuild and exactly-once tests compare builds this way)."""
    with db.reading() as tx:
        return {
            name: sorted(tx.all(f"SELECT * FROM {name}"), key=repr)
            for name in TABLE_NAMES
            if name != "positions"
        }
