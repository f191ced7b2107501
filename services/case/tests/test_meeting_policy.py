"""How the case carries out a meeting's decision (meeting_policy.py): which case command, that
the case's own rules still hold for it, and that a decision it refuses is recorded, once.

The decision is a `DecisionRecorded` as the meeting service writes it; the case is folded from
its events. Pure, but for the last test, which records through a real nats-server.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid4

import msgspec
import pytest
from eventsourcing.persistence import IntegrityError, Tracking

from stafett_case.api import case_history
from stafett_case.application import Cases
from stafett_case.domain import decide
from stafett_case.domain.commands import (
    AppointBatonHolder,
    CloseCase,
    Command,
    DecideLevel,
    DeEscalate,
    Escalate,
    NoteConsent,
    ProposeSystemMeasure,
    RaiseConcern,
)
from stafett_case.domain.rules import command_for
from stafett_case.meeting_policy import MeetingPolicy, carrying_out
from stafett_contracts.case import CaseEvent, DecisionRefused, Escalated
from stafett_contracts.casefile import CaseFile, fold
from stafett_contracts.identity import Actor, Role
from stafett_contracts.meeting import DecisionKind, DecisionRecorded
from stafett_runtime.directory import FixedDirectory
from stafett_runtime.domain import Context
from stafett_runtime.testing import TEST_DIRECTORY, NatsTestServer

NOW = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
UNIT = "skole-lia"
TEACHER = Actor(person="laerer-1", role=Role.EMPLOYEE, service=UNIT)
LEADER = Actor(person="rektor-1", role=Role.UNIT_LEADER, service=UNIT)
POLICY = Actor(person="consent-policy", role=Role.SYSTEM, service="case")


def a_case_at_level_1() -> list[CaseEvent]:
    case_id = uuid4()
    events: list[CaseEvent] = []
    steps: list[tuple[Actor, Command]] = [
        (TEACHER, RaiseConcern(case_id=case_id, child_id=uuid4(), concern="Uro")),
        (
            POLICY,
            NoteConsent(
                consent_id=uuid4(),
                services=(UNIT, "ppt"),
                purposes=("cooperation",),
                valid_from=NOW - timedelta(days=1),
                valid_until=NOW + timedelta(days=365),
            ),
        ),
        (LEADER, AppointBatonHolder(holder=TEACHER.person, service=UNIT)),
        (TEACHER, Escalate(to_level=1, reason="Tiltak")),
    ]
    for actor, command in steps:
        context = Context(actor=actor, now=NOW, correlation_id="t", directory=TEST_DIRECTORY)
        events += decide(fold(events), command, context)
    return events


def recorded(kind: DecisionKind, to_level: int | None = None) -> DecisionRecorded:
    return DecisionRecorded(
        event_id=uuid4(),
        aggregate_id=uuid4(),
        aggregate_version=5,
        occurred_at=NOW,
        actor=TEACHER,
        correlation_id="meeting-request",
        case_id=UUID(int=1),
        decision_id=uuid4(),
        kind=kind,
        to_level=to_level,
        reason="Avgjort i samarbeidsmøtet",
        participants=(TEACHER.person, "mor-1"),
    )


def as_recorded(event: DecisionRecorded) -> Context:
    """The context the meeting policy gives a decision: its recorder, time, cause and request."""
    return Context(
        actor=event.actor,
        now=event.occurred_at,
        correlation_id=event.correlation_id,
        causation_id=str(event.event_id),
        directory=TEST_DIRECTORY,
    )


def case() -> CaseFile:
    state = fold(a_case_at_level_1())
    assert state is not None
    return state


@pytest.mark.parametrize(
    ("kind", "to_level", "expected"),
    [
        (DecisionKind.CLOSE, None, CloseCase),
        (DecisionKind.CONTINUE, None, DecideLevel),
        (DecisionKind.MOVE_TO_LEVEL, 2, Escalate),
        (DecisionKind.MOVE_TO_LEVEL, 1, DecideLevel),
        (DecisionKind.SYSTEM_MEASURE, None, ProposeSystemMeasure),
    ],
)
def test_given_a_case_at_level_1_when_a_meeting_decides_then_the_case_gets_the_matching_command(
    kind: DecisionKind, to_level: int | None, expected: type[Command]
) -> None:
    assert type(command_for(carrying_out(recorded(kind, to_level)), case())) is expected


def test_given_a_case_at_level_3_when_a_meeting_moves_it_to_1_then_it_de_escalates() -> None:
    at_3 = msgspec.structs.replace(case(), level=3)
    down = command_for(carrying_out(recorded(DecisionKind.MOVE_TO_LEVEL, 1)), at_3)
    assert isinstance(down, DeEscalate)
    assert (down.to_level, down.participants) == (1, (TEACHER.person, "mor-1"))


def test_given_a_case_when_a_meeting_moves_it_up_then_escalated_as_the_decider() -> None:
    event = recorded(DecisionKind.MOVE_TO_LEVEL, 2)
    context = Context(
        actor=event.actor, now=NOW, correlation_id="meeting-request", directory=TEST_DIRECTORY
    )
    (escalated,) = decide(case(), command_for(carrying_out(event), case()), context)
    assert isinstance(escalated, Escalated)
    assert (escalated.from_level, escalated.to_level, escalated.actor) == (1, 2, TEACHER)


def test_level_3_needs_coordinator_a_meeting_decision_the_case_refuses_is_recorded() -> None:
    # Given a case at level 1 with no coordinator
    event = recorded(DecisionKind.MOVE_TO_LEVEL, 3)
    # When a meeting decides to move it to level 3
    (refused,) = decide(case(), carrying_out(event), as_recorded(event))
    # Then the case records the decision refused, naming the rule, and stays at level 1
    assert isinstance(refused, DecisionRefused)
    assert refused.rule == "level-3-needs-coordinator"
    assert refused.reason == "assign a coordinator before going to level 3"
    assert (refused.meeting_id, refused.decision_id) == (event.aggregate_id, event.decision_id)
    assert (refused.kind, refused.to_level) == (DecisionKind.MOVE_TO_LEVEL, 3)
    # As the person who recorded it, caused by the meeting's decision, next on the case
    assert (refused.actor, refused.causation_id) == (TEACHER, str(event.event_id))
    assert refused.correlation_id == event.correlation_id
    assert refused.aggregate_version == case().version + 1
    after = fold([*a_case_at_level_1(), refused])
    assert after is not None
    assert after.level == 1


def test_who_may_act_a_decision_recorded_by_someone_who_may_not_decide_is_recorded_refused() -> (
    None
):
    # Given a case at level 1, and a decision recorded by someone who is no decider on it
    stranger = Actor(person="ppt-1", role=Role.EMPLOYEE, service="ppt")
    event = msgspec.structs.replace(recorded(DecisionKind.CLOSE), actor=stranger)
    # When the case carries it out
    (refused,) = decide(case(), carrying_out(event), as_recorded(event))
    # Then it is recorded refused by the rule of who may act, as that person
    assert isinstance(refused, DecisionRefused)
    assert (refused.rule, refused.actor) == ("who-may-act", stranger)


def test_a_decision_the_case_can_carry_out_is_not_recorded_refused() -> None:
    event = recorded(DecisionKind.MOVE_TO_LEVEL, 2)
    assert [type(e) for e in decide(case(), carrying_out(event), as_recorded(event))] == [Escalated]


def test_a_refused_decision_is_recorded_once_though_delivered_twice(
    nats_server: NatsTestServer,
) -> None:
    env = {"PERSISTENCE_MODULE": "stafett_runtime.jetstream", "NATS_URL": nats_server.url}
    cases, policy = Cases(env), MeetingPolicy(env, FixedDirectory(TEST_DIRECTORY))
    try:
        # Given a case at level 1 with no coordinator, in the CASE stream
        history = a_case_at_level_1()
        cases.save(*history)
        case_id = history[0].aggregate_id
        decision = msgspec.structs.replace(recorded(DecisionKind.MOVE_TO_LEVEL, 3), case_id=case_id)
        # When the meeting's decision to move it to level 3 reaches the meeting policy
        policy.process_event(decision, Tracking("meeting", 7))
        # Then the case records it refused, naming the rule
        refused = case_history(cases, case_id)[len(history) :]
        assert [(type(e), getattr(e, "rule", None)) for e in refused] == [
            (DecisionRefused, "level-3-needs-coordinator")
        ]
        # And when the same decision is delivered again, the store refuses the second record
        with pytest.raises(IntegrityError):
            policy.process_event(decision, Tracking("meeting", 7))
        # So the refusal is on the case once
        assert len(case_history(cases, case_id)) == len(history) + 1
    finally:
        policy.close()
        cases.close()
