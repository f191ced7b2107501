"""Action guides: the file format and its refusals, the guides Stafett ships, and where a case is
in its guide (stafett_contracts.guides).

Each test names the rule it checks.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4

import msgspec
import pytest

from stafett_contracts.case import (
    CaseClosed,
    CaseEvent,
    ConcernRaised,
    ConcernShared,
    Escalated,
    MeasurePlanned,
    ProblemDefined,
    WonderingConversationHeld,
)
from stafett_contracts.casefile import CaseFile, fold
from stafett_contracts.guides import (
    DEFAULT_GUIDES,
    DEFAULT_VERSION,
    GuideBook,
    GuideError,
    GuidePublished,
    StepStatus,
    evolve_book,
    parse,
    progress,
    skipped_before_decision,
)
from stafett_contracts.identity import Actor, Role
from stafett_contracts.people import ServiceKind

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
TEACHER = Actor(person="laerer", role=Role.EMPLOYEE, service="bhg-sol")
KINDERGARTEN = DEFAULT_GUIDES[ServiceKind.KINDERGARTEN]
KINDERGARTEN_TOML = (
    __import__("importlib.resources", fromlist=["files"])
    .files("stafett_contracts")
    .joinpath("guide_data/kindergarten.toml")
    .read_text(encoding="utf-8")
)


class Story:
    """The events of one case, a day apart."""

    def __init__(self) -> None:
        self.case_id = uuid4()
        self.events: list[CaseEvent] = []

    def add(self, cls: type[CaseEvent], **fields: Any) -> Story:
        self.events.append(
            cls(
                event_id=uuid4(),
                aggregate_id=self.case_id,
                aggregate_version=len(self.events) + 1,
                occurred_at=T0 + timedelta(days=len(self.events)),
                actor=TEACHER,
                correlation_id="c",
                **fields,
            )
        )
        return self

    def raised(self) -> Story:
        return self.add(
            ConcernRaised,
            child_id=uuid4(),
            unit="bhg-sol",
            concern="uro",
            guides={ServiceKind.KINDERGARTEN: 1},
        )

    @property
    def case(self) -> CaseFile:
        case = fold(self.events)
        assert case is not None
        return case


def statuses(case: CaseFile) -> dict[str, StepStatus]:
    shown = progress(KINDERGARTEN, DEFAULT_VERSION, case)
    assert shown is not None
    return {view.id: view.status for view in shown.steps}


# The guides Stafett ships.


@pytest.mark.parametrize(
    "service", [ServiceKind.KINDERGARTEN, ServiceKind.SCHOOL, ServiceKind.HEALTH_CLINIC]
)
def test_stafett_ships_a_guide_for_every_level_of_each_basic_service(service: ServiceKind) -> None:
    guide = DEFAULT_GUIDES[service]
    assert [level.level for level in guide.levels] == [0, 1, 2, 3]
    for level in guide.levels:
        assert level.title.nb
        assert level.title.en
        assert {exit.to for exit in level.decision.exits} >= {"close"}
    # A guide's tools are its own forms, and its forms fill real events (checked by parse).
    assert guide.form("wondering-note") is not None
    assert guide.form("measures-log") is not None


def test_the_kindergarten_guide_is_the_seeds_level_0_and_level_1() -> None:
    level_0, level_1 = KINDERGARTEN.levels[0], KINDERGARTEN.levels[1]
    assert [s.id for s in level_0.steps] == ["wondering", "share", "conversation"]
    assert level_0.steps[1].tools == ("wondering-note",)
    assert [e.to for e in level_0.decision.exits] == ["close", "level-1", "system-measure"]
    assert [s.id for s in level_1.steps] == [
        "define-problem",
        "plan-measures",
        "carry-out",
        "evaluate",
    ]
    assert [(e.id, e.to) for e in level_1.decision.exits][:3] == [
        ("A", "close"),
        ("B", "continue"),
        ("C", "level-2"),
    ]


def test_a_guide_reads_the_same_as_json() -> None:
    as_json = json.dumps(msgspec.to_builtins(KINDERGARTEN))
    assert parse(as_json, "json") == KINDERGARTEN


# Rule guide-is-valid: a guide that does not parse, or names an unknown level, exit, form or
# event, is refused with the line and the reason.


def test_a_guide_that_does_not_parse_is_refused_with_its_line() -> None:
    broken = KINDERGARTEN_TOML.replace('id = "share"', 'id = "share', 1)
    line = _line_of(KINDERGARTEN_TOML, 'id = "share"')
    with pytest.raises(GuideError) as refused:
        parse(broken)
    assert refused.value.line == line
    assert "not TOML" in refused.value.reason


def test_a_guide_naming_an_unknown_level_is_refused_with_its_line() -> None:
    wrong = KINDERGARTEN_TOML.replace("level = 3", "level = 7", 1)
    with pytest.raises(GuideError) as refused:
        parse(wrong)
    assert refused.value.line == _line_of(wrong, "level = 7")
    assert "<= 3" in refused.value.reason


def test_a_guide_naming_an_unknown_exit_is_refused_with_its_line() -> None:
    wrong = KINDERGARTEN_TOML.replace('to = "level-1"', 'to = "somewhere"', 1)
    with pytest.raises(GuideError) as refused:
        parse(wrong)
    assert refused.value.line == _line_of(wrong, 'to = "somewhere"')
    assert "somewhere" in refused.value.reason


def test_an_exit_the_staircase_does_not_allow_is_refused_with_its_line() -> None:
    wrong = KINDERGARTEN_TOML.replace('to = "level-1"', 'to = "level-3"', 1)
    with pytest.raises(GuideError) as refused:
        parse(wrong)
    assert refused.value.line == _line_of(wrong, 'to = "level-3"')
    assert "from level 0" in refused.value.reason


def test_a_tool_that_is_no_form_of_the_guide_is_refused_with_its_line() -> None:
    wrong = KINDERGARTEN_TOML.replace('tools = ["wondering-note"]', 'tools = ["crystal-ball"]')
    with pytest.raises(GuideError) as refused:
        parse(wrong)
    assert refused.value.line == _line_of(wrong, '"crystal-ball"')
    assert "crystal-ball" in refused.value.reason


def test_a_form_field_its_event_does_not_have_is_refused_with_its_line() -> None:
    wrong = KINDERGARTEN_TOML.replace('key = "shared_with"', 'key = "shared_on"')
    with pytest.raises(GuideError) as refused:
        parse(wrong)
    assert refused.value.line == _line_of(wrong, 'key = "shared_on"')
    assert "ConcernShared does not have" in refused.value.reason


def test_a_step_recording_an_event_that_does_not_exist_is_refused_with_its_line() -> None:
    wrong = KINDERGARTEN_TOML.replace('records = "ConcernShared"', 'records = "Gossip"')
    with pytest.raises(GuideError) as refused:
        parse(wrong)
    assert refused.value.line == _line_of(wrong, 'records = "Gossip"')


def _line_of(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), start=1) if needle in line)


# Versions: the shipped guide is version 1; each publication the next.


def test_without_a_published_guide_the_shipped_ones_are_version_1_and_publishing_adds_one() -> None:
    book = GuideBook()
    assert book.in_force()[ServiceKind.KINDERGARTEN] == 1
    own = msgspec.structs.replace(KINDERGARTEN, title=KINDERGARTEN.levels[0].title)
    published = GuidePublished(
        event_id=uuid4(),
        aggregate_id=uuid4(),
        aggregate_version=1,
        occurred_at=T0,
        actor=Actor(person="admin", role=Role.ADMINISTRATOR),
        correlation_id="c",
        service=ServiceKind.KINDERGARTEN,
        version=2,
        guide=own,
    )
    book = evolve_book(book, published)
    assert book.in_force()[ServiceKind.KINDERGARTEN] == 2
    assert book.in_force()[ServiceKind.SCHOOL] == 1
    assert book.guide(ServiceKind.KINDERGARTEN, 2) == own
    assert book.guide(ServiceKind.KINDERGARTEN, 1) == KINDERGARTEN  # older cases keep it


# Where a case is in its guide.


def test_a_new_concern_is_at_sharing_the_worry_then_the_conversation_then_the_decision() -> None:
    story = Story().raised()
    shown = progress(KINDERGARTEN, 1, story.case)
    assert shown is not None
    assert shown.current is not None
    assert shown.current.id == "share"
    assert shown.current.who_is.en == "every employee"
    assert [v.id for v in shown.next] == ["conversation", "decision"]
    assert statuses(story.case)["wondering"] == StepStatus.DONE


def test_a_step_passed_without_its_event_is_skipped() -> None:
    story = Story().raised()
    story.add(
        WonderingConversationHeld,
        held_on=T0.date(),
        with_guardians=True,
        with_child=False,
        summary="samtale",
    )
    assert statuses(story.case)["share"] == StepStatus.SKIPPED
    assert statuses(story.case)["decision"] == StepStatus.CURRENT
    assert skipped_before_decision(KINDERGARTEN, story.case) == ("share",)


def test_a_move_up_begins_the_next_level_at_its_first_step() -> None:
    story = Story().raised().add(ConcernShared, shared_with="styrer")
    story.add(Escalated, from_level=0, to_level=1, reason="samtykke gitt")
    shown = progress(KINDERGARTEN, 1, story.case)
    assert shown is not None
    assert shown.current is not None
    assert (shown.level, shown.current.id) == (1, "define-problem")
    story.add(ProblemDefined, description="språk", with_guardians=True)
    story.add(
        MeasurePlanned,
        measure_id=uuid4(),
        description="språkgruppe",
        responsible="ped-leder",
        service="bhg-sol",
        evaluation_date=T0.date() + timedelta(days=30),
    )
    # Carrying out is recorded by no event: the case is at it once the measures are planned.
    assert statuses(story.case)["carry-out"] == StepStatus.CURRENT


def test_a_closed_case_is_at_no_step() -> None:
    story = Story().raised().add(CaseClosed, at_level=0, reason="ingen grunn")
    shown = progress(KINDERGARTEN, 1, story.case)
    assert shown is not None
    assert shown.current is None
    assert shown.next == ()
