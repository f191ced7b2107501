"""Rule: no two events in any stream share an event_id, and deciding again gives the same id.

An event id is derived from the stream, the aggregate and the version (`domain.event_id`): one
aggregate id has events in several streams (a case's CASE events, MEETING's `CaseRosterNoted`),
and an integrator who deduplicates by `event_id` must never drop one of them. The command path
(`stafett_runtime.commands`) names the stream, so a domain never does.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import cast
from uuid import UUID, uuid4

import msgspec

from stafett_contracts.case import CaseEvent, ConcernRaised
from stafett_contracts.casefile import CaseFile, evolve
from stafett_contracts.export import example_of
from stafett_contracts.identity import Actor, Role
from stafett_runtime.commands import AggregateType, Commands
from stafett_runtime.contracts import ContractApplication
from stafett_runtime.domain import Context, envelope, event_id
from stafett_runtime.testing import NatsTestServer

TEACHER = Actor(person="ped-1", role=Role.EMPLOYEE, service="barnehage-solsikke")
NOW = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


class Open(msgspec.Struct, frozen=True, kw_only=True):
    case_id: UUID


def decide(state: CaseFile | None, command: Open, context: Context) -> list[CaseEvent]:
    raised = cast(ConcernRaised, example_of(ConcernRaised))
    return [msgspec.structs.replace(raised, **envelope(context, command.case_id, 1))]


OPENING = AggregateType[CaseFile, Open, Context](
    name="case", evolve=evolve, decide=decide, creates=(Open,)
)


class CaseLog(ContractApplication):
    name = "case"


class MeetingLog(ContractApplication):
    name = "meeting"


def test_the_same_aggregate_and_version_in_two_streams_get_two_event_ids() -> None:
    aggregate = uuid4()

    in_case, in_meeting = event_id("CASE", aggregate, 1), event_id("MEETING", aggregate, 1)

    assert in_case != in_meeting
    assert event_id("CASE", aggregate, 1) == in_case  # deterministic: decided again, the same
    assert event_id("CASE", aggregate, 2) != in_case


def test_no_two_events_decided_on_the_command_path_of_two_streams_share_an_event_id(
    nats_server: NatsTestServer,
) -> None:
    env = {"PERSISTENCE_MODULE": "stafett_runtime.jetstream", "NATS_URL": nats_server.url}
    case_log, meeting_log = CaseLog(env), MeetingLog(env)
    try:
        # Given one aggregate id that both the CASE and the MEETING stream write to
        case_id = uuid4()
        context = Context(actor=TEACHER, now=NOW, correlation_id="test")

        # When each stream's command path decides its first event, and CASE's decides it again
        (from_case,) = (
            Commands(case_log, OPENING).decide(case_id, Open(case_id=case_id), context).events
        )
        (from_meeting,) = (
            Commands(meeting_log, OPENING).decide(case_id, Open(case_id=case_id), context).events
        )
        (again,) = (
            Commands(case_log, OPENING).decide(case_id, Open(case_id=case_id), context).events
        )

        # Then the two streams' events have ids of their own, and deciding again gives the same
        assert from_case.event_id != from_meeting.event_id
        assert from_case.event_id == event_id("CASE", case_id, 1)
        assert from_meeting.event_id == event_id("MEETING", case_id, 1)
        assert again.event_id == from_case.event_id
    finally:
        case_log.close()
        meeting_log.close()
