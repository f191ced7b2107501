"""Group commit: appends made at the same time go to JetStream as one atomic batch.

Given writers appending at once, then their appends share batches (fewer batches than writes,
fewer fsyncs), each keeps its own guard: a writer whose guard fails alone gets the conflict and
the others' events are stored, two writers of one aggregate never both win, nothing is written
twice, and no batch holds more than JetStream's 1000 messages. A process application's events
and its tracking record stay together in one batch.
"""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from collections.abc import AsyncIterator, Iterator, Sequence
from uuid import UUID, uuid4

import pytest
from eventsourcing.persistence import StoredEvent, Tracking
from eventsourcing.utils import Environment

from stafett_runtime.jetstream import JetStreamFactory, JetStreamProcessRecorder
from stafett_runtime.jetstream.core import (
    MAX_BATCH,
    ConflictError,
    JetStreamCore,
    OutgoingMessage,
    StoredMessage,
    close_connection,
)
from stafett_runtime.jetstream.layout import (
    EXPECTED_SEQUENCE,
    EXPECTED_SUBJECT,
    ORIGINATOR_VERSION,
    TOPIC,
    StreamLayout,
)
from stafett_runtime.testing import NatsTestServer

LAYOUT = StreamLayout(stream="GROUPED", prefix="grouped")
BATCH_ID = "Nats-Batch-Id"


@pytest.fixture
async def core(nats_server: NatsTestServer) -> AsyncIterator[JetStreamCore]:
    core = await JetStreamCore.connect({"servers": [nats_server.url]})
    await core.ensure_stream(LAYOUT, 1)
    yield core
    await close_connection(core.nc, drain=False)


@pytest.fixture
def process_recorder(nats_server: NatsTestServer) -> Iterator[JetStreamProcessRecorder]:
    factory = JetStreamFactory(Environment("grouped", {"NATS_URL": nats_server.url}))
    recorder = factory.process_recorder()
    assert isinstance(recorder, JetStreamProcessRecorder)
    yield recorder
    factory.close()


def events_of(aggregate: UUID, count: int = 1, expected: int = 0) -> list[OutgoingMessage]:
    """An aggregate's next events as the store writes them: the first one guards the aggregate."""
    messages = []
    for version in range(1, count + 1):
        headers = {TOPIC: "example:Thing.Happened", ORIGINATOR_VERSION: str(version)}
        if version == 1:
            headers |= {
                EXPECTED_SEQUENCE: str(expected),
                EXPECTED_SUBJECT: LAYOUT.aggregate_filter(aggregate),
            }
        subject = LAYOUT.event_subject(aggregate, "example:Thing.Happened")
        messages.append(OutgoingMessage(subject, b"{}", headers))
    return messages


def batches(stored: Sequence[StoredMessage]) -> Counter[str]:
    """Messages per write: an atomic batch's messages share its id; a plain publish is alone."""
    return Counter(m.headers.get(BATCH_ID) or f"alone at {m.seq}" for m in stored)


async def test_appends_made_at_once_share_one_batch_each_with_its_own_sequences(
    core: JetStreamCore,
) -> None:
    # Given five writers of five new aggregates, appending at the same moment
    aggregates = [uuid4() for _ in range(5)]
    # When they append
    sequences = await asyncio.gather(
        *(core.append(LAYOUT.stream, events_of(a)) for a in aggregates)
    )
    # Then their events went as one batch, and each writer was told where its own event is
    stored = await core.read_all(LAYOUT.stream, LAYOUT.all_events)
    assert len(batches(stored)) == 1
    assert {m.seq: m.subject for m in stored} == {
        seq: LAYOUT.event_subject(a, "example:Thing.Happened")
        for seq, a in zip(sequences, aggregates, strict=True)
    }


async def test_a_writer_whose_guard_fails_alone_gets_the_conflict_and_the_others_are_stored(
    core: JetStreamCore,
) -> None:
    # Given an aggregate that already has an event
    taken = uuid4()
    await core.append(LAYOUT.stream, events_of(taken))
    # When five writers of new aggregates, and one who believes the taken one is new, append
    # at the same moment
    fresh = [uuid4() for _ in range(5)]
    outcomes = await asyncio.gather(
        *(core.append(LAYOUT.stream, events_of(a)) for a in fresh),
        core.append(LAYOUT.stream, events_of(taken)),
        return_exceptions=True,
    )
    # Then only the stale writer is refused, with the conflict
    *written, refused = outcomes
    assert isinstance(refused, ConflictError)
    sequences = [seq for seq in written if isinstance(seq, int)]
    assert len(sequences) == len(fresh)
    # And the others' events are stored once each, together in one batch
    stored = await core.read_all(LAYOUT.stream, LAYOUT.all_events)
    assert [m.seq for m in stored[1:]] == sorted(sequences)
    assert len(batches(stored[1:])) == 1
    assert len(await core.read_all(LAYOUT.stream, LAYOUT.aggregate_filter(taken))) == 1


async def test_two_writers_of_one_aggregate_never_share_a_batch_so_never_both_win(
    core: JetStreamCore,
) -> None:
    # Given two writers who both believe the same aggregate is new (the server would pass both
    # guards if they were in one batch: it checks a batch against the stream before it)
    aggregate = uuid4()
    # When they append at the same moment
    outcomes = await asyncio.gather(
        core.append(LAYOUT.stream, events_of(aggregate)),
        core.append(LAYOUT.stream, events_of(aggregate)),
        return_exceptions=True,
    )
    # Then one wins and the other gets the conflict
    assert sorted(type(outcome).__name__ for outcome in outcomes) == ["ConflictError", "int"]
    # And the aggregate holds one event
    assert len(await core.read_all(LAYOUT.stream, LAYOUT.aggregate_filter(aggregate))) == 1


async def test_no_batch_holds_more_than_jetstreams_limit(core: JetStreamCore) -> None:
    # Given three writers of 400 events each, appending at the same moment
    aggregates = [uuid4() for _ in range(3)]
    # When they append
    await asyncio.gather(*(core.append(LAYOUT.stream, events_of(a, 400)) for a in aggregates))
    # Then every event is stored, in batches of at most 1000 messages
    stored = await core.read_all(LAYOUT.stream, LAYOUT.all_events)
    assert len(stored) == 1200
    assert max(batches(stored).values()) <= MAX_BATCH
    # And each writer's events are contiguous, in one batch of their own writer's order
    for aggregate in aggregates:
        mine = await core.read_all(LAYOUT.stream, LAYOUT.aggregate_filter(aggregate))
        assert [m.seq - mine[0].seq for m in mine] == list(range(400))
        assert len(batches(mine)) == 1


def test_concurrent_process_writes_are_grouped_with_their_tracking_records_and_written_once(
    process_recorder: JetStreamProcessRecorder,
) -> None:
    # Given 16 writers (threads), each a process application of its own following an upstream
    writers, each = 16, 10
    ready = threading.Barrier(writers)

    def write(writer: int) -> None:
        ready.wait()
        for position in range(1, each + 1):
            event = StoredEvent(uuid4(), 1, "example:Thing.Happened", b"{}")
            tracking = Tracking(f"upstream-{writer}", position)
            process_recorder.insert_events([event], tracking=tracking)

    # When they all write at once
    threads = [threading.Thread(target=write, args=(w,)) for w in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # Then every event and every tracking record is stored once
    client, layout = process_recorder.client, process_recorder.layout
    stored = client.run(client.read_all(layout.stream, f"{layout.prefix}.>"))
    assert len(stored) == writers * each * 2
    events = [m for m in stored if ".events." in m.subject]
    assert len({m.subject for m in events}) == writers * each
    for writer in range(writers):
        assert process_recorder.max_tracking_id(f"upstream-{writer}") == each
    # And each event sits with its tracking record, in one batch
    by_seq = {m.seq: m for m in stored}
    for event in events:
        tracking = by_seq[event.seq + 1]
        assert ".tracking." in tracking.subject
        assert tracking.headers[BATCH_ID] == event.headers[BATCH_ID]
    # And the writes were committed in fewer batches than there were writes
    assert len(batches(stored)) < writers * each


async def test_writers_of_one_aggregate_win_one_each_version_among_writers_of_others(
    core: JetStreamCore,
) -> None:
    # Given 24 writers of aggregates of their own and 8 writers of one shared aggregate,
    # arriving one after another, so that their appends spread over several batches
    own = [uuid4() for _ in range(24)]
    shared = uuid4()
    versions = 5

    async def write(aggregate: UUID, expected: int, arrival: int) -> int:
        for _ in range(arrival):
            await asyncio.sleep(0)  # arrive after those before
        return await core.append(LAYOUT.stream, events_of(aggregate, expected=expected))

    # When, version after version, all 32 append at once, each writer of the shared aggregate
    # expecting it where the last version left it
    heads = dict.fromkeys([*own, shared], 0)
    winners = []
    for _ in range(versions):
        writers = [*own, *[shared] * 8]
        outcomes = await asyncio.gather(
            *(write(a, heads[a], arrival) for arrival, a in enumerate(writers)),
            return_exceptions=True,
        )
        for aggregate, outcome in zip(own, outcomes, strict=False):
            assert isinstance(outcome, int)
            heads[aggregate] = outcome
        sharing = outcomes[len(own) :]
        # Then exactly one writer of the shared aggregate wins each version, the others get
        # the conflict
        assert sorted(type(outcome).__name__ for outcome in sharing) == [
            *["ConflictError"] * 7,
            "int",
        ]
        won = [outcome for outcome in sharing if isinstance(outcome, int)]
        heads[shared] = won[0]
        winners.append(won[0])
    # And the shared aggregate holds one event per version, the winners' own
    stored = await core.read_all(LAYOUT.stream, LAYOUT.aggregate_filter(shared))
    assert [m.seq for m in stored] == winners
    # And every own aggregate holds all its versions
    assert len(await core.read_all(LAYOUT.stream, LAYOUT.all_events)) == versions * 25
