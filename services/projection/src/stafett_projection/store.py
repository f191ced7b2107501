"""Where the read models live: SQLite by default, PostgreSQL by setting.

One set of tables, one SQL text for both: statements are written with `?` placeholders and
translated for psycopg. Timestamps are stored as ISO 8601 text in UTC with microseconds, so they
sort and compare as text in both databases.

The position of each stream (`positions`) is written in the same transaction as the change it
caused: a crash between the two is impossible, so the effect of every event is recorded once.

Exactly one process may write: the running service holds a lock (a file lock beside the SQLite
file, a session advisory lock in PostgreSQL), and a rebuild refuses to start while it is held.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import sqlite3
import threading
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

import psycopg

DATABASE_URL_VARIABLE = "STAFETT_PROJECTION_DATABASE_URL"
SCHEMA = "projection"  # the PostgreSQL schema the read models live in
_LOCK_KEY = 0x5374616665747450  # the advisory lock of the writing process ("StafettP")

TABLES = (
    "positions(stream TEXT PRIMARY KEY, seq BIGINT NOT NULL)",
    # Every entry of every service, with the envelope columns the queries filter on.
    "entries(stream TEXT NOT NULL, seq BIGINT NOT NULL, case_id TEXT, aggregate_id TEXT NOT NULL,"
    " aggregate_version INTEGER NOT NULL, type TEXT NOT NULL, occurred_at TEXT NOT NULL,"
    " person TEXT NOT NULL, role TEXT NOT NULL, service TEXT, subject TEXT NOT NULL,"
    " body TEXT NOT NULL, PRIMARY KEY (stream, seq))",
    "cases(case_id TEXT PRIMARY KEY, child_id TEXT NOT NULL, raised_unit TEXT NOT NULL,"
    " unit TEXT NOT NULL, raised_at TEXT NOT NULL, level INTEGER NOT NULL, status TEXT NOT NULL,"
    " closed_at TEXT, closed_level INTEGER, holder TEXT, holder_service TEXT, coordinator TEXT,"
    " coordinator_service TEXT, first_measure_at TEXT)",
    "levels(case_id TEXT NOT NULL, since TEXT NOT NULL, level INTEGER NOT NULL, until TEXT,"
    " PRIMARY KEY (case_id, since))",
    "consents(consent_id TEXT PRIMARY KEY, case_id TEXT NOT NULL, party_kind TEXT NOT NULL,"
    " party TEXT NOT NULL, purposes TEXT NOT NULL, valid_from TEXT NOT NULL,"
    " valid_until TEXT NOT NULL, ended_at TEXT, end_reason TEXT)",
    "measures(measure_id TEXT PRIMARY KEY, case_id TEXT NOT NULL, description TEXT NOT NULL,"
    " responsible TEXT NOT NULL, service TEXT NOT NULL, evaluation_date TEXT,"
    " status TEXT NOT NULL, outcome TEXT)",
    "action_items(item_id TEXT PRIMARY KEY, case_id TEXT NOT NULL, description TEXT NOT NULL,"
    " owner TEXT NOT NULL, owner_service TEXT, due_on TEXT NOT NULL, done INTEGER NOT NULL)",
    "notifications(notification_id TEXT PRIMARY KEY, case_id TEXT)",
    "breaks(notification_id TEXT PRIMARY KEY, case_id TEXT NOT NULL, unit TEXT,"
    " detected_at TEXT NOT NULL, last_activity_at TEXT NOT NULL, stage TEXT NOT NULL,"
    " cause TEXT NOT NULL)",
    "feedback(meeting_id TEXT NOT NULL, version INTEGER NOT NULL, case_id TEXT NOT NULL,"
    " given_by TEXT NOT NULL, rating INTEGER NOT NULL, heard INTEGER NOT NULL,"
    " PRIMARY KEY (meeting_id, version))",
    # Every read of case data and every refusal, by whichever service answered it.
    "access(seq BIGINT PRIMARY KEY, case_id TEXT NOT NULL, occurred_at TEXT NOT NULL,"
    " person TEXT NOT NULL, role TEXT NOT NULL, service TEXT, what TEXT NOT NULL, purpose TEXT,"
    " outcome TEXT NOT NULL, basis TEXT, refusal TEXT, rule TEXT, served_by TEXT)",
)
# Columns added to a table after it was first released: read models made before get them
# (empty in the rows already there), so an upgrade needs no rebuild.
ADDED_COLUMNS = (("access", "rule", "TEXT"), ("access", "served_by", "TEXT"))
INDEXES = (
    "entries_by_case ON entries(case_id, occurred_at)",
    "access_by_case ON access(case_id, seq)",
    "measures_by_person ON measures(responsible)",
    "items_by_person ON action_items(owner)",
    "cases_by_unit ON cases(unit)",
)
TABLE_NAMES = tuple(t.split("(", 1)[0] for t in TABLES)


class Cursor(Protocol):
    def fetchall(self) -> list[Any]: ...
    def fetchone(self) -> Any: ...


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


class Database:
    """A SQLite file or a PostgreSQL database, with the read-model tables in it."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.postgres = url.startswith(("postgresql://", "postgres://"))
        self.path = None if self.postgres else Path(url.removeprefix("sqlite:///"))
        self._write_connection: Any = None
        self._write_lock = threading.Lock()
        self._held_lock: Any = None
        self._readers = threading.local()
        self._reader_connections: list[Any] = []
        self._write_lock_for_list = threading.Lock()

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> Database:
        url = environ.get(DATABASE_URL_VARIABLE)
        if url:
            return cls(url)
        data_dir = Path(environ.get("STAFETT_DATA_DIR") or "var")
        return cls(f"sqlite:///{(data_dir / 'projection' / 'projection.sqlite3').resolve()}")

    def describe(self) -> str:
        if self.postgres:
            return "PostgreSQL " + self.url.rsplit("@", 1)[-1]  # never print a password
        return f"SQLite {self.path}"

    def connect(self, schema: str = SCHEMA) -> Any:
        if self.postgres:
            return psycopg.connect(self.url, options=f"-c search_path={schema}")
        assert self.path is not None
        if str(self.path) != ":memory:":
            self.path.parent.mkdir(parents=True, exist_ok=True)
        connection = sqlite3.connect(self.path, check_same_thread=False, timeout=30)
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("PRAGMA synchronous=NORMAL")  # WAL: durable at checkpoints, fast
        return connection

    def create(self, connection: Any, schema: str = SCHEMA) -> None:
        if self.postgres:
            connection.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
        for table in TABLES:
            connection.execute(f"CREATE TABLE IF NOT EXISTS {table}")
        for table, column, kind in ADDED_COLUMNS:
            if self.postgres:
                connection.execute(f"ALTER TABLE {table} ADD COLUMN IF NOT EXISTS {column} {kind}")
                continue
            present = {row[1] for row in connection.execute(f"PRAGMA table_info({table})")}
            if column not in present:
                connection.execute(f"ALTER TABLE {table} ADD COLUMN {column} {kind}")
        for index in INDEXES:
            connection.execute(f"CREATE INDEX IF NOT EXISTS {index}")
        connection.commit()

    # The writer: one connection, one transaction at a time.

    def open_writer(self) -> None:
        self._write_connection = self.connect()
        self.create(self._write_connection)

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
        kept for the thread's next query, because opening one costs more than most queries."""
        connection = getattr(self._readers, "connection", None)
        if connection is None:
            connection = self._readers.connection = self.connect()
            with self._write_lock_for_list:
                self._reader_connections.append(connection)
        try:
            yield Tx(connection, self.postgres)
        finally:
            connection.rollback()  # end the read transaction: the next query sees newer data

    def close(self) -> None:
        with self._write_lock_for_list:
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
        self.release()

    # Only one writer.

    def try_lock(self) -> bool:
        """Take the writer's lock for this process's life; False if another process has it."""
        if self.postgres:
            connection = psycopg.connect(self.url, autocommit=True)
            row = connection.execute("SELECT pg_try_advisory_lock(%s)", (_LOCK_KEY,)).fetchone()
            if not (row and row[0]):
                connection.close()
                return False
            self._held_lock = connection
            return True
        assert self.path is not None
        self.path.parent.mkdir(parents=True, exist_ok=True)
        file = open(f"{self.path}.lock", "a")  # noqa: SIM115 (held open for the process's life)
        try:
            fcntl.flock(file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            file.close()
            return False
        self._held_lock = file
        return True

    def release(self) -> None:
        if self._held_lock is not None:
            if self.postgres:
                # Unlock first: a closed session frees its locks only when the server's backend
                # has ended, a moment later, and a rebuild started at once would be refused.
                with contextlib.suppress(Exception):
                    self._held_lock.execute("SELECT pg_advisory_unlock(%s)", (_LOCK_KEY,))
            self._held_lock.close()  # closing the file or the session frees the lock
            self._held_lock = None


def dump(db: Database) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every read model, sorted: two builds are equal when their dumps are."""
    with db.reading() as tx:
        return {
            name: sorted(tx.all(f"SELECT * FROM {name}"), key=repr)
            for name in TABLE_NAMES
            if name != "positions"
        }
