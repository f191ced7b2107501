"""An index (`stafett_runtime.index`), against a real nats-server: what a service remembers of
some streams beyond their aggregates, caught up on use.

Each event of a source is taken in once, in the stream's order, however many threads catch up
at once; a source that is another service's stream, not made yet, is read as empty until it is.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from uuid import UUID, uuid4

import pytest
from eventsourcing.persistence import OperationalError

from stafett_contracts.case import ConcernRaised
from stafett_contracts.envelope import Event
from stafett_contracts.identity import Actor, Role
from stafett_runtime.contracts import CONTRACT_ENV, ContractApplication
from stafett_runtime.domain import Context, envelope
from stafett_runtime.index import Index, Source
from stafett_runtime.processing import Upstream
from stafett_runtime.testing import HeldRead, store_read_held

TEACHER = Actor(person="ped-1", role=Role.EMPLOYEE, service="barnehage-solsikke")
NOW = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


class CaseLog(ContractApplication):
    name = "case"


class MeetingLog(ContractApplication):
    name = "meeting"


class Seen:
    """A memory that remembers which cases it was told of, in the order it was told."""

    def __init__(self) -> None:
        self.cases: list[UUID] = []

    def take_in(self, event: Event) -> None:
        self.cases.append(event.aggregate_id)


@pytest.fixture
def cases(env: dict[str, str]) -> Iterator[CaseLog]:
    app = CaseLog(env)
    yield app
    app.close()


def raise_concerns(app: ContractApplication, count: int) -> list[UUID]:
    """`count` new cases in the app's stream, one event each; their ids, in the stream's order."""
    context = Context(actor=TEACHER, now=NOW, correlation_id="test", stream=app.name.upper())
    case_ids = [uuid4() for _ in range(count)]
    for case_id in case_ids:
        app.save(
            ConcernRaised(
                **envelope(context, case_id, 1),
                child_id=uuid4(),
                unit="barnehage-solsikke",
                concern="Uro.",
            )
        )
    return case_ids


def test_a_reader_whose_page_is_overtaken_takes_in_nothing_twice(
    cases: CaseLog, monkeypatch: pytest.MonkeyPatch
) -> None:
    index = Index(Seen(), Source(cases))
    first = raise_concerns(cases, 3)
    with store_read_held(monkeypatch, "CASE") as held:
        # Given a reader that holds the first three events read, not yet taken in
        slow = threading.Thread(target=index.catch_up, name=HeldRead.THREAD)
        slow.start()
        assert held.holding.wait(10)
        # When two more are written and another reader catches up meanwhile, unhindered
        later = raise_concerns(cases, 2)
        with index.caught_up() as seen:
            assert seen.cases == [*first, *later]
        # And then the first reader takes in the page it held
        held.release.set()
        slow.join(10)
        assert not slow.is_alive()
    # Then each event was taken in once, in the stream's order
    with index.holding() as seen:
        assert seen.cases == [*first, *later]


def test_many_readers_at_once_take_in_each_event_once_in_order(cases: CaseLog) -> None:
    # Given an index that eight threads catch up at once, while events are being written
    index = Index(Seen(), Source(cases))
    written: list[UUID] = []
    failures: list[BaseException] = []
    start = threading.Barrier(9)

    def read() -> None:
        start.wait()
        try:
            for _ in range(5):
                index.catch_up()
        except BaseException as error:  # the test's failure, not a thread's silence
            failures.append(error)

    readers = [threading.Thread(target=read) for _ in range(8)]
    for reader in readers:
        reader.start()
    start.wait()
    for _ in range(4):
        written += raise_concerns(cases, 5)
    for reader in readers:
        reader.join(30)
    # When it is caught up once more after the last write
    with index.caught_up() as seen:
        # Then it holds every event once, in the order the stream holds them
        assert failures == []
        assert seen.cases == written


def test_an_optional_source_not_made_yet_is_empty_until_it_is(
    cases: CaseLog, env: dict[str, str]
) -> None:
    # Given an index of the case stream and of the meeting stream, which no one has made yet
    meetings = Upstream.named("meeting", {**env, **CONTRACT_ENV})
    index = Index(Seen(), Source(cases), Source(meetings, optional=True))
    try:
        case_ids = raise_concerns(cases, 2)
        # When it catches up, then it has the cases, and nothing of the missing stream
        with index.caught_up() as seen:
            assert seen.cases == case_ids
        # And once the meeting service makes its stream and writes to it, that is taken in too
        owner = MeetingLog(env)
        try:
            meeting_ids = raise_concerns(owner, 1)
        finally:
            owner.close()
        with index.caught_up() as seen:
            assert seen.cases == [*case_ids, *meeting_ids]
    finally:
        meetings.close()


def test_a_required_source_that_cannot_be_read_is_an_error_not_an_empty_stream(
    cases: CaseLog, env: dict[str, str]
) -> None:
    # Given an index of a stream that must be there, and is not (the case service's store is up)
    missing = Upstream.named("meeting", {**env, **CONTRACT_ENV})
    index = Index(Seen(), Source(missing))
    try:
        # When it catches up, then the failure is the caller's: nothing is taken for empty
        with pytest.raises(OperationalError):
            index.catch_up()
    finally:
        missing.close()
