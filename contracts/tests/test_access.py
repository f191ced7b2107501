"""The one access rule, given the events of a case: who may read it, and which entries they see.

Each test names the rule it checks (stafett_contracts.access).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

from stafett_contracts import access as rule
from stafett_contracts.access import Access, ReadRules, read_access, state_shown, visible
from stafett_contracts.case import (
    AgencyJoined,
    BrightSpotNoted,
    CaseEvent,
    ChildWelfareReportFiled,
    ConcernRaised,
    ConsentLapsed,
    ConsentNoted,
    CoordinatorAssigned,
    Escalated,
    LegalBasisNoted,
    MeasureEnded,
    MeasureEvaluated,
    MeasureOutcome,
    MeasurePlanned,
)
from stafett_contracts.casefile import CaseFile, fold, summary
from stafett_contracts.identity import Actor, Role
from stafett_contracts.people import Directory, RegisteredChild, ServiceKind, Unit

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
CASE_ID = uuid4()
CHILD = RegisteredChild(
    child_id=uuid4(),
    national_id="17051812345",
    name="Kari Nordmann",
    birth_date=date(2012, 5, 17),
    person="kari",
    guardians=("mor", "far"),
)
DIRECTORY = Directory(
    units={
        "barnehage-sol": Unit(name="Sol barnehage", kind=ServiceKind.KINDERGARTEN, leader="styrer"),
        "skole-lia": Unit(name="Lia skole", kind=ServiceKind.SCHOOL, leader="rektor"),
        "ppt": Unit(name="PPT", kind=ServiceKind.PPT, leader="ppt-leder"),
        "barnevern": Unit(name="Barnevernet", kind=ServiceKind.CHILD_WELFARE, leader="bv-leder"),
        "bup": Unit(name="BUP", kind=ServiceKind.CHILD_PSYCHIATRY, leader="bup-leder"),
    }
)
TEACHER = Actor(person="laerer", role=Role.EMPLOYEE, service="skole-lia")
PPT = Actor(person="ppt-1", role=Role.EMPLOYEE, service="ppt")
CHILD_WELFARE = Actor(person="bv-1", role=Role.EMPLOYEE, service="barnevern")
SYSTEM = Actor(person="consent-policy", role=Role.SYSTEM, service="case")


class Story:
    """The events of one case, each a given number of days after T0."""

    def __init__(self) -> None:
        self.events: list[CaseEvent] = []

    def add(self, cls: type[CaseEvent], day: float, actor: Actor = TEACHER, **fields: Any) -> None:
        self.events.append(
            cls(
                event_id=uuid4(),
                aggregate_id=CASE_ID,
                aggregate_version=len(self.events) + 1,
                occurred_at=T0 + timedelta(days=day),
                actor=actor,
                correlation_id="c",
                **fields,
            )
        )

    @property
    def case(self) -> CaseFile:
        case = fold(self.events)
        assert case is not None
        return case

    def read(self, actor: Actor, day: float, purpose: str | None = None, **kw: Any) -> Access:
        return read_access(
            self.case,
            actor,
            child=kw.get("child", CHILD),
            directory=DIRECTORY,
            now=T0 + timedelta(days=day),
            purpose=purpose,
            rules=kw.get("rules"),
        )

    def seen(self, access: Access) -> list[str]:
        return [type(e).__name__ for e in visible(access, self.events)]


def raised() -> Story:
    story = Story()
    story.add(ConcernRaised, 0, child_id=CHILD.child_id, unit="skole-lia", concern="uro")
    story.add(BrightSpotNoted, 1, note="en god dag")
    return story


def consent(story: Story, day: float, services: tuple[str, ...], purposes: tuple[str, ...]) -> UUID:
    consent_id = uuid4()
    story.add(
        ConsentNoted,
        day,
        SYSTEM,
        consent_id=consent_id,
        services=services,
        purposes=purposes,
        valid_from=T0 + timedelta(days=day),
        valid_until=T0 + timedelta(days=day + 365),
    )
    return consent_id


def test_guardian_of_the_child_sees_the_whole_case_with_or_without_consent() -> None:
    story = raised()
    mother = Actor(person="mor", role=Role.GUARDIAN)
    granted = story.read(mother, 2)
    assert (granted.granted, granted.whole_case, granted.identity) == (True, True, True)
    assert granted.rule == rule.GUARDIAN_OF_THE_CHILD


def test_guardian_of_the_child_refuses_a_guardian_of_another_child() -> None:
    story = raised()
    stranger = Actor(person="mor-til-en-annen", role=Role.GUARDIAN)
    refused = story.read(stranger, 2)
    assert (refused.granted, refused.rule) == (False, rule.GUARDIAN_OF_THE_CHILD)
    assert story.seen(refused) == []


def test_guardian_of_the_child_is_asked_of_the_register_not_of_consents() -> None:
    story = raised()
    consent(story, 2, ("ppt",), ("cooperation",))
    unregistered = RegisteredChild(**{**_fields(CHILD), "guardians": ()})
    assert not story.read(Actor(person="mor", role=Role.GUARDIAN), 3, child=unregistered).granted


def test_child_reads_from_age_by_the_registers_birth_date() -> None:
    story = raised()
    kari = Actor(person="kari", role=Role.CHILD)
    # Kari turns 15 on 17 May 2027; T0 is March 2026.
    too_young = story.read(kari, 2)
    assert (too_young.granted, too_young.rule) == (False, rule.CHILD_READS_FROM_AGE)
    assert story.read(kari, 2, rules=ReadRules(child_reads_from_age=13)).granted
    day_of_birthday = (datetime(2027, 5, 17, 12, tzinfo=UTC) - T0) / timedelta(days=1)
    assert story.read(kari, day_of_birthday).granted


def test_child_reads_from_age_only_as_the_case_child() -> None:
    story = raised()
    assert not story.read(Actor(person="ola", role=Role.CHILD), 2).granted


def test_own_unit_sees_its_whole_case() -> None:
    story = raised()
    granted = story.read(TEACHER, 2)
    assert (granted.granted, granted.rule, granted.whole_case) == (True, rule.OWN_UNIT, True)


def test_covered_now_refuses_a_service_without_consent() -> None:
    story = raised()
    refused = story.read(PPT, 2)
    assert (refused.granted, refused.rule) == (False, rule.COVERED_NOW)


def test_covered_now_shows_only_the_entries_from_the_consents_period() -> None:
    story = raised()
    consent(story, 2, ("ppt",), ("cooperation",))
    story.add(Escalated, 3, from_level=0, to_level=1, reason="tiltak")
    granted = story.read(PPT, 4)
    assert (granted.granted, granted.whole_case, granted.identity) == (True, False, True)
    assert story.seen(granted) == ["ConsentNoted", "Escalated"]


def test_covered_now_ends_when_consent_lapses_and_later_entries_stay_hidden() -> None:
    story = raised()
    consent_id = consent(story, 2, ("ppt", "skole-lia"), ("cooperation",))
    story.add(BrightSpotNoted, 3, note="mens samtykket gjaldt")
    story.add(
        ConsentLapsed, 4, SYSTEM, consent_id=consent_id, services=("ppt",), reason="withdrawn"
    )
    story.add(BrightSpotNoted, 5, note="etter tilbaketrekking")
    assert not story.read(PPT, 6).granted
    # Read while it held (as of day 3.5), the later entries are not shown either.
    before = story.read(PPT, 3.5)
    assert [e.note for e in visible(before, story.events) if isinstance(e, BrightSpotNoted)] == [
        "mens samtykket gjaldt"
    ]


def test_covered_now_counts_only_consents_for_the_purpose_named() -> None:
    story = raised()
    consent(story, 2, ("ppt",), ("tvist",))
    assert not story.read(PPT, 3, purpose="cooperation").granted
    anonymous = story.read(PPT, 3, purpose="tvist")
    assert (anonymous.granted, anonymous.identity) == (True, False)


def test_covered_now_by_a_report_shows_child_welfare_what_came_before() -> None:
    story = raised()
    assert not story.read(CHILD_WELFARE, 2).granted
    story.add(
        ChildWelfareReportFiled,
        3,
        reported_to="barnevern",
        legal_basis="barnevernsloven § 13-2",
        grounds="skader",
    )
    granted = story.read(CHILD_WELFARE, 4)
    assert (granted.granted, granted.identity) == (True, True)
    assert granted.basis == "report to child welfare: barnevernsloven § 13-2"
    assert story.seen(granted) == ["ConcernRaised", "BrightSpotNoted", "ChildWelfareReportFiled"]


def test_covered_now_by_a_legal_basis_shows_what_came_before() -> None:
    story = raised()
    story.add(LegalBasisNoted, 3, SYSTEM, service="bup", legal_basis="helsepersonelloven § 33")
    granted = story.read(Actor(person="bup-1", role=Role.EMPLOYEE, service="bup"), 4)
    assert granted.granted
    assert story.seen(granted)[:2] == ["ConcernRaised", "BrightSpotNoted"]


def test_unit_in_directory_refuses_a_unit_that_exists_nowhere() -> None:
    story = raised()
    consent(story, 2, ("nowhere",), ("cooperation",))
    refused = story.read(Actor(person="x", role=Role.EMPLOYEE, service="nowhere"), 3)
    assert (refused.granted, refused.rule) == (False, rule.UNIT_IN_DIRECTORY)


def test_auditor_states_purpose() -> None:
    story = raised()
    auditor = Actor(person="tilsyn", role=Role.AUDITOR)
    assert story.read(auditor, 2).rule == rule.AUDITOR_STATES_PURPOSE
    assert not story.read(auditor, 2, purpose="  ").granted
    assert story.read(auditor, 2, purpose="tilsyn 2026/14").whole_case


def test_role_reads_no_cases_for_administrators_and_the_system() -> None:
    story = raised()
    for actor in (Actor(person="admin", role=Role.ADMINISTRATOR), SYSTEM):
        refused = story.read(actor, 2)
        assert (refused.granted, refused.rule) == (False, rule.ROLE_READS_NO_CASES)


def test_a_summary_says_only_what_the_visible_entries_say() -> None:
    story = raised()
    old = uuid4()
    story.add(
        MeasurePlanned,
        1,
        measure_id=old,
        description="før samtykket",
        responsible="laerer",
        service="skole-lia",
        evaluation_date=date(2026, 4, 1),
    )
    story.add(MeasureEnded, 1.5, measure_id=old, reason="ferdig")
    consent(story, 2, ("ppt",), ("cooperation",))
    story.add(AgencyJoined, 2.5, PPT, service="ppt", basis="consent")
    story.add(
        MeasurePlanned,
        3,
        measure_id=uuid4(),
        description="etter samtykket",
        responsible="ppt-1",
        service="ppt",
        evaluation_date=date(2026, 5, 1),
    )
    ppt_sees = visible(story.read(PPT, 4), story.events)
    seen = summary(CASE_ID, ppt_sees)
    assert [m.description for m in seen.open_measures] == ["etter samtykket"]
    assert (seen.unit, seen.level) == (None, None)  # the ConcernRaised is not theirs to see
    whole = summary(CASE_ID, story.events)
    assert [m.description for m in whole.open_measures] == ["etter samtykket"]  # ended: not open
    assert (whole.unit, whole.level, whole.services) == ("skole-lia", 0, ("skole-lia", "ppt"))


def _fields(child: RegisteredChild) -> dict[str, Any]:
    return {f: getattr(child, f) for f in child.__struct_fields__}


KINDERGARTEN_TEACHER = Actor(person="pedleder", role=Role.EMPLOYEE, service="barnehage-sol")


def a_kindergarten_case_that_goes_to_school(purposes: tuple[str, ...]) -> Story:
    """A case of Sol barnehage, with what was tried there, and the guardians' consent to the
    school at the transition (day 10), for `purposes`."""
    story = Story()
    k = KINDERGARTEN_TEACHER
    story.add(ConcernRaised, 0, k, child_id=CHILD.child_id, unit="barnehage-sol", concern="uro")
    story.add(BrightSpotNoted, 1, k, note="en god dag")
    consent(story, 1, ("ppt",), ("cooperation",))
    story.add(Escalated, 2, k, from_level=0, to_level=1, reason="tiltak i barnehagen")
    worked, ended = uuid4(), uuid4()
    for measure_id, what in ((worked, "fast voksen"), (ended, "egen plass i samling")):
        story.add(
            MeasurePlanned,
            3,
            k,
            measure_id=measure_id,
            description=what,
            responsible="pedleder",
            service="barnehage-sol",
            evaluation_date=date(2026, 4, 1),
        )
    story.add(
        MeasureEvaluated,
        5,
        k,
        measure_id=worked,
        outcome=MeasureOutcome.WORKED,
        notes="roligere",
        next_evaluation_date=date(2026, 6, 1),
    )
    story.add(MeasureEnded, 6, k, measure_id=ended, reason="hjalp ikke")
    story.add(CoordinatorAssigned, 7, k, coordinator="ppt-1", service="ppt")
    consent(story, 10, ("skole-lia",), purposes)
    story.add(BrightSpotNoted, 11, k, note="gleder seg til skolen")
    return story


def test_a_receiving_unit_under_a_handover_consent_sees_what_was_tried_and_nothing_else() -> None:
    # Given a kindergarten case and the guardians' consent to the transition to Lia skole
    story = a_kindergarten_case_that_goes_to_school(("handover",))
    # When the school reads it after the transition
    access = story.read(TEACHER, 12)
    # Then the rule grants it under the consent, as a handover, naming the child
    assert (access.granted, access.rule, access.handover, access.identity) == (
        True,
        rule.COVERED_NOW,
        True,
        True,
    )
    # It sees the measures tried, their evaluations and the decisions, from the whole case, and
    # from before its consent nothing else: not the concern, the bright spot or the consents
    assert story.seen(access) == [
        "Escalated",
        "MeasurePlanned",
        "MeasurePlanned",
        "MeasureEvaluated",
        "MeasureEnded",
        "ConsentNoted",  # its own consent, and what came after it
        "BrightSpotNoted",
    ]
    # And the case's state now: its level, unit, coordinator and open measures
    state = state_shown(access, CASE_ID, story.events)
    assert (state.level, state.unit, state.coordinator) == (1, "barnehage-sol", "ppt-1")
    assert [m.description for m in state.open_measures] == ["fast voksen"]


def test_a_consent_for_cooperation_alone_shows_a_receiving_unit_nothing_from_before() -> None:
    # Given the same case, where the guardians consented to the school for cooperation only
    story = a_kindergarten_case_that_goes_to_school(("cooperation",))
    # When the school reads it, then it sees only what came from its consent on
    access = story.read(TEACHER, 12)
    assert (access.granted, access.handover) == (True, False)
    assert story.seen(access) == ["ConsentNoted", "BrightSpotNoted"]
    state = state_shown(access, CASE_ID, story.events)
    assert (state.level, state.unit, state.open_measures) == (None, None, ())
    # And a reader holding a handover consent who names another purpose gets no handover
    handover = a_kindergarten_case_that_goes_to_school(("cooperation", "handover"))
    assert handover.read(TEACHER, 12, purpose="cooperation").handover is False
    assert handover.read(TEACHER, 12, purpose="handover").handover is True


def test_a_handover_consent_that_ended_shows_nothing() -> None:
    # Given the school's handover consent, withdrawn on day 20 (rule 3)
    story = a_kindergarten_case_that_goes_to_school(("handover",))
    noted = story.events[-2]
    assert isinstance(noted, ConsentNoted)
    consent_id = noted.consent_id
    story.add(ConsentLapsed, 20, SYSTEM, consent_id=consent_id, reason="withdrawn")
    # When the school reads it after, then it is refused: the packet came with the consent
    refused = story.read(TEACHER, 21)
    assert (refused.granted, refused.rule, refused.handover) == (False, rule.COVERED_NOW, False)
    assert story.seen(refused) == []
