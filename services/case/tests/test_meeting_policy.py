"""How the case carries out a meeting's decision (meeting_policy.py): which case command, and
that the case's own rules still hold for it.

Pure: the decision is a `DecisionRecorded` as the meeting service writes it; the case is folded
from its events. No NATS, no clock.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid4

import msgspec
import pytest

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
from stafett_case.meeting_policy import command_for
from stafett_contracts.case import CaseEvent, Escalated
from stafett_contracts.casefile import CaseFile, fold
from stafett_contracts.identity import Actor, Role
from stafett_contracts.meeting import DecisionKind, DecisionRecorded
from stafett_runtime.domain import Context, RuleViolation
from stafett_runtime.testing import TEST_DIRECTORY

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
    assert type(command_for(recorded(kind, to_level), case())) is expected


def test_given_a_case_at_level_3_when_a_meeting_moves_it_to_1_then_it_de_escalates() -> None:
    at_3 = msgspec.structs.replace(case(), level=3)
    down = command_for(recorded(DecisionKind.MOVE_TO_LEVEL, 1), at_3)
    assert isinstance(down, DeEscalate)
    assert (down.to_level, down.participants) == (1, (TEACHER.person, "mor-1"))


def test_given_a_case_when_a_meeting_moves_it_up_then_escalated_as_the_decider() -> None:
    event = recorded(DecisionKind.MOVE_TO_LEVEL, 2)
    context = Context(
        actor=event.actor, now=NOW, correlation_id="meeting-request", directory=TEST_DIRECTORY
    )
    (escalated,) = decide(case(), command_for(event, case()), context)
    assert isinstance(escalated, Escalated)
    assert (escalated.from_level, escalated.to_level, escalated.actor) == (1, 2, TEACHER)


def test_given_no_coordinator_when_a_meeting_moves_the_case_to_level_3_then_the_case_refuses() -> (
    None
):
    event = recorded(DecisionKind.MOVE_TO_LEVEL, 3)
    context = Context(
        actor=event.actor, now=NOW, correlation_id="meeting-request", directory=TEST_DIRECTORY
    )
    with pytest.raises(RuleViolation) as refused:
        decide(case(), command_for(event, case()), context)
    assert refused.value.rule == "level-3-needs-coordinator"
