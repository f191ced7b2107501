"""Exactly-once effect: a batch's changes and its stream position are one transaction.

Given a batch already applied, when it is delivered again, then nothing changes. Given a batch
that fails part-way, then neither its changes nor its position are kept, and applying it again
gives the same read models as applying it once. Given the projection stopped and started
again, then it resumes after the stored position without applying anything twice.
"""

from __future__ import annotations

from pathlib import Path

import msgspec
import nats
import pytest

from bench.history import ensure_streams, history, publish, subject_of
from stafett_projection.models import Message, Projector
from stafett_projection.projection import Projection
from stafett_projection.store import Database, dump
from stafett_runtime.testing import NatsTestServer

_encode = msgspec.json.Encoder()


def case_stream(cases: int) -> list[Message]:
    events = [e for e in history(cases) if e.CONTEXT == "case"]
    return [
        Message("CASE", seq, subject_of(e), _encode.encode(e))
        for seq, e in enumerate(events, start=1)
    ]


def apply(db: Database, projector: Projector, batch: list[Message]) -> int:
    with db.transaction() as tx:
        return projector.apply(tx, "CASE", batch)


@pytest.fixture
def db(tmp_path: Path) -> Database:
    database = Database(f"sqlite:///{tmp_path / 'p.sqlite3'}")
    database.open_writer()
    return database


def test_a_redelivered_batch_changes_nothing(db: Database) -> None:
    messages = case_stream(5)
    projector = Projector()
    assert apply(db, projector, messages) == len(messages)
    once = dump(db)
    assert apply(db, Projector(), messages[3:]) == len(messages)
    assert dump(db) == once


def test_a_batch_that_fails_part_way_leaves_neither_changes_nor_position(db: Database) -> None:
    messages = case_stream(5)
    broken = [*messages[:4], Message("CASE", 5, "case.events.x.Broken", b"{not json")]
    with pytest.raises(msgspec.DecodeError):
        apply(db, Projector(), broken)
    with db.reading() as tx:
        assert tx.all("SELECT * FROM positions") == []
        assert tx.all("SELECT * FROM entries") == []

    apply(db, Projector(), messages)
    reference = Database(f"sqlite:///{db.path}.reference")
    reference.open_writer()
    apply(reference, Projector(), messages)
    assert dump(db) == dump(reference)


def test_a_projector_that_forgets_every_id_builds_the_same_read_models(
    db: Database, tmp_path: Path
) -> None:
    # Given every stream of a generated history
    streams: dict[str, list[Message]] = {}
    for event in history(30):
        name = event.CONTEXT.upper()
        stream = streams.setdefault(name, [])
        stream.append(Message(name, len(stream) + 1, subject_of(event), _encode.encode(event)))
    reference = Database(f"sqlite:///{tmp_path / 'reference.sqlite3'}")
    reference.open_writer()
    # When one projection applies each event with a memory of one id, fresh each time (as if
    # restarted, or with its bounded memory full), and another applies them all in one go
    for name, messages in streams.items():
        for message in messages:
            with db.transaction() as tx:
                Projector(remembered=1).apply(tx, name, [message])
        with reference.transaction() as tx:
            Projector().apply(tx, name, messages)
    # Then what the first forgot it looked up: the read models are the same
    assert {"CONSENT", "NOTIFY"} <= streams.keys()
    assert dump(db) == dump(reference)


async def test_a_restarted_projection_resumes_after_its_stored_position(
    nats_server: NatsTestServer, tmp_path: Path
) -> None:
    db = Database(f"sqlite:///{tmp_path / 'p.sqlite3'}")
    events = list(history(40))
    nc = await nats.connect(nats_server.url)
    try:
        await ensure_streams(nc)
        await publish(nc, events[:200])
        own = await nats.connect(nats_server.url)  # the service has its own connection
        first = Projection(db)
        await first.start(own)
        assert await first.wait_for(
            "CASE", (await nc.jetstream().stream_info("CASE")).state.last_seq
        )
        await first.stop()
        await own.close()

        await publish(nc, events[200:])
        own = await nats.connect(nats_server.url)
        second = Projection(db)
        await second.start(own)
        for stream in ("CASE", "CONSENT", "MEETING", "NOTIFY"):
            last = (await nc.jetstream().stream_info(stream)).state.last_seq
            assert await second.wait_for(stream, last)
        await second.stop()
        await own.close()
    finally:
        await nc.close()
    with db.reading() as tx:
        assert tx.one("SELECT COUNT(*) FROM entries") == (len(events),)
