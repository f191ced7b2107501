"""The index of a case's meetings is caught up without a lock held across a read of the store.

A read of the MEETING stream may wait on NATS; another request asking for a case's meetings
meanwhile must not wait behind it, and what both read is indexed once, in order.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from uuid import UUID, uuid4

import msgspec
import pytest

from stafett_contracts.export import example_of
from stafett_contracts.meeting import MeetingScheduled
from stafett_meeting.application import Meetings
from stafett_runtime.testing import HeldRead, NatsTestServer, store_read_held


@pytest.fixture
def meetings(nats_server: NatsTestServer) -> Iterator[Meetings]:
    app = Meetings({"PERSISTENCE_MODULE": "stafett_runtime.jetstream", "NATS_URL": nats_server.url})
    yield app
    app.close()


def scheduled(meetings: Meetings, case_id: UUID) -> UUID:
    meeting = msgspec.structs.replace(
        example_of(MeetingScheduled), event_id=uuid4(), aggregate_id=uuid4(), case_id=case_id
    )
    meetings.save(meeting)
    return meeting.aggregate_id


def test_a_request_does_not_wait_behind_a_catch_up_whose_store_read_waits(
    meetings: Meetings, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a case with two meetings
    case_id = uuid4()
    both = [scheduled(meetings, case_id), scheduled(meetings, case_id)]
    with store_read_held(monkeypatch, "MEETING") as read:
        # And a request whose read of the MEETING stream waits (on a slow server, say)
        first = threading.Thread(target=meetings.meetings_of, args=(case_id,), name=HeldRead.THREAD)
        first.start()
        assert read.holding.wait(30)
        # When another request asks for the case's meetings meanwhile
        answers: list[list[UUID]] = []
        other = threading.Thread(
            target=lambda: answers.append(
                [history[0].aggregate_id for history in meetings.meetings_of(case_id)]
            )
        )
        other.start()
        other.join(timeout=30)
        # Then it is answered without waiting for the first
        assert not other.is_alive(), "the second request waited behind the first one's read"
        assert answers == [both]
        # And once the first read returns, what it read (already indexed) is not indexed again
        read.release.set()
        first.join(timeout=30)
    assert [history[0].aggregate_id for history in meetings.meetings_of(case_id)] == both
