"""The relay log's rules, each as given (a case's history) / when (a command) / then (events).

Pure: no NATS, no clock. Each test is named after the rule it shows (rules.py, access.py). The
municipality is the runtime's test directory: skole-lia led by rektor-1, PPT, BUP, barnevern ...
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from uuid import UUID, uuid4

import msgspec
import pytest

from stafett_case.domain import decide
from stafett_case.domain.commands import (
    AcceptBaton,
    AppointBatonHolder,
    AssignCoordinator,
    CloseCase,
    Command,
    DecideLevel,
    DeEscalate,
    EndMeasure,
    Escalate,
    EvaluateMeasure,
    FileChildWelfareReport,
    JoinAgency,
    LapseConsent,
    NoteBrightSpot,
    NoteConsent,
    NoteLegalBasis,
    OfferBaton,
    PlanMeasure,
    RaiseConcern,
    RecordWonderingConversation,
    ReopenCase,
    SendReferral,
)
from stafett_contracts.case import (
    AgencyJoined,
    AgencyLeft,
    BatonVacated,
    CaseEvent,
    ChildWelfareReportFiled,
    ReferralSent,
)
from stafett_contracts.case import MeasureOutcome as Outcome
from stafett_contracts.casefile import CaseFile, fold
from stafett_contracts.identity import Actor, Role
from stafett_contracts.inputs import MAX_YEARS_AHEAD
from stafett_runtime.domain import Context, NotAllowed, RuleViolation
from stafett_runtime.testing import TEST_DIRECTORY

NOW = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
TODAY = NOW.date()
UNIT = "skole-lia"
TEACHER = Actor(person="laerer-1", role=Role.EMPLOYEE, service=UNIT)
LEADER = Actor(person="rektor-1", role=Role.UNIT_LEADER, service=UNIT)
PPT_WORKER = Actor(person="ppt-1", role=Role.EMPLOYEE, service="ppt")
BUP_WORKER = Actor(person="bup-1", role=Role.EMPLOYEE, service="bup")
GUARDIAN = Actor(person="mor-1", role=Role.GUARDIAN)
POLICY = Actor(person="consent-policy", role=Role.SYSTEM, service="case")
CONSENT = UUID("00000000-0000-4000-8000-00000000c0c0")


class Relay:
    """A case's history, built by deciding commands one after another."""

    def __init__(self) -> None:
        self.case_id = uuid4()
        self.events: list[CaseEvent] = []

    @property
    def state(self) -> CaseFile | None:
        return fold(self.events)

    def given(self, actor: Actor, command: Command, now: datetime = NOW) -> Relay:
        self.events += self.when(actor, command, now)
        return self

    def when(self, actor: Actor, command: Command, now: datetime = NOW) -> list[CaseEvent]:
        context = Context(actor=actor, now=now, correlation_id="test", directory=TEST_DIRECTORY)
        return decide(self.state, command, context)

    def case(self) -> CaseFile:
        state = self.state
        assert state is not None
        return state


def names(events: list[CaseEvent]) -> list[str]:
    return [type(event).__name__ for event in events]


def consent(
    services: tuple[str, ...] = ("ppt",),
    purposes: tuple[str, ...] = ("cooperation", "referral"),
    until: datetime = NOW + timedelta(days=365),
    consent_id: UUID = CONSENT,
) -> NoteConsent:
    return NoteConsent(
        consent_id=consent_id,
        services=services,
        purposes=purposes,
        valid_from=NOW - timedelta(days=1),
        valid_until=until,
    )


def concern() -> Relay:
    """A teacher's worry at level 0, with the teacher as baton holder."""
    relay = Relay()
    relay.given(
        TEACHER, RaiseConcern(case_id=relay.case_id, child_id=uuid4(), concern="Trekker seg unna.")
    )
    return relay.given(LEADER, AppointBatonHolder(holder=TEACHER.person, service=UNIT))


def at_level_1() -> Relay:
    return (
        concern()
        .given(POLICY, consent())
        .given(LEADER, Escalate(to_level=1, reason="Samtykke innhentet"))
    )


def with_ppt() -> Relay:
    """Level 2, PPT referred and on the case."""
    return (
        at_level_1()
        .given(TEACHER, SendReferral(to_service="ppt", purpose="Utredning"))
        .given(PPT_WORKER, JoinAgency(service="ppt"))
        .given(TEACHER, Escalate(to_level=2, reason="Trenger PPT"))
    )


def refused(relay: Relay, actor: Actor, command: Command, now: datetime = NOW) -> str:
    with pytest.raises(RuleViolation) as refusal:
        relay.when(actor, command, now)
    return refusal.value.rule


def measure(evaluation_date: date = TODAY + timedelta(weeks=6)) -> PlanMeasure:
    return PlanMeasure(
        measure_id=uuid4(),
        description="Fast voksen i friminuttene",
        responsible=TEACHER.person,
        service=UNIT,
        evaluation_date=evaluation_date,
    )


# Rule 1: consent (or a legal basis) gates sharing.


def test_consent_covers_the_service_that_joins() -> None:
    relay = concern()
    join = JoinAgency(service="ppt")
    assert refused(relay, LEADER, join) == "consent-covers-the-service"
    relay.given(POLICY, consent())
    (joined,) = relay.when(LEADER, join)
    assert isinstance(joined, AgencyJoined)
    assert (joined.basis, joined.consent_id) == ("consent", CONSENT)


def test_consent_covers_the_service_only_while_it_is_valid() -> None:
    relay = concern().given(POLICY, consent(until=NOW + timedelta(days=30)))
    later = NOW + timedelta(days=30)
    assert refused(relay, LEADER, JoinAgency(service="ppt"), later) == "consent-covers-the-service"


def test_consent_covers_the_service_only_for_its_services() -> None:
    relay = concern().given(POLICY, consent(services=("ppt",)))
    assert refused(relay, LEADER, JoinAgency(service="bup")) == "consent-covers-the-service"


def test_consent_covers_a_referral_only_for_the_referral_purpose() -> None:
    relay = concern().given(POLICY, consent(purposes=("cooperation",)))
    referral = SendReferral(to_service="ppt", purpose="Utredning")
    assert refused(relay, LEADER, referral) == "consent-covers-the-service"


def test_consent_covers_the_service_that_takes_the_baton() -> None:
    relay = with_ppt()
    offer = OfferBaton(to_person=PPT_WORKER.person, to_service="ppt")
    expired = NOW + timedelta(days=366)
    assert refused(relay, TEACHER, offer, expired) == "consent-covers-the-service"


def test_a_legal_basis_covers_the_service_without_consent() -> None:
    relay = concern().given(POLICY, NoteLegalBasis(service="barnevern", legal_basis="bvl § 13-2"))
    (referral,) = relay.when(LEADER, SendReferral(to_service="barnevern", purpose="Melding"))
    assert isinstance(referral, ReferralSent)
    assert (referral.consent_id, referral.legal_basis) == (None, "bvl § 13-2")
    (joined,) = relay.when(LEADER, JoinAgency(service="barnevern"))
    assert isinstance(joined, AgencyJoined)
    assert joined.basis == "legal_basis"


# Rule 3: a lapsed consent takes the service off the case at once.


def test_consent_lapse_removes_the_service_and_vacates_its_baton() -> None:
    relay = with_ppt()
    relay.given(TEACHER, OfferBaton(to_person=PPT_WORKER.person, to_service="ppt"))
    relay.given(PPT_WORKER, AcceptBaton())
    events = relay.when(POLICY, LapseConsent(consent_id=CONSENT, reason="withdrawn"))
    assert names(events) == ["ConsentLapsed", "AgencyLeft", "BatonVacated"]
    left, vacated = events[1], events[2]
    assert isinstance(left, AgencyLeft)
    assert (left.service, left.reason) == ("ppt", "consent_withdrawn")
    assert isinstance(vacated, BatonVacated)
    assert (vacated.previous_holder, vacated.reason) == (PPT_WORKER.person, "consent_withdrawn")


def test_consent_lapse_removes_the_service_when_the_consent_expires() -> None:
    relay = with_ppt()
    events = relay.when(POLICY, LapseConsent(consent_id=CONSENT, reason="expired"))
    assert names(events) == ["ConsentLapsed", "AgencyLeft"]
    assert isinstance(events[1], AgencyLeft)
    assert events[1].reason == "consent_expired"


def test_consent_lapse_keeps_a_service_another_consent_still_covers() -> None:
    relay = with_ppt().given(POLICY, consent(consent_id=uuid4()))
    assert names(relay.when(POLICY, LapseConsent(consent_id=CONSENT, reason="withdrawn"))) == [
        "ConsentLapsed"
    ]


def test_consent_lapse_by_a_narrower_scope_removes_the_dropped_services() -> None:
    relay = with_ppt()
    narrower = consent(services=("helsestasjon",))
    assert names(relay.when(POLICY, narrower)) == ["ConsentLapsed", "ConsentNoted", "AgencyLeft"]


def test_baton_holder_required_while_the_baton_is_vacant() -> None:
    relay = with_ppt()
    relay.given(TEACHER, OfferBaton(to_person=PPT_WORKER.person, to_service="ppt"))
    relay.given(PPT_WORKER, AcceptBaton())
    relay.given(POLICY, LapseConsent(consent_id=CONSENT, services=("ppt",), reason="withdrawn"))
    assert relay.case().holder is None
    assert refused(relay, LEADER, measure()) == "baton-holder-required"
    assert names(relay.given(LEADER, AppointBatonHolder(holder="laerer-2", service=UNIT)).events)[
        -1:
    ] == ["BatonHolderAppointed"]
    assert names(relay.when(LEADER, measure())) == ["MeasurePlanned"]


# Rule 4: the duty to report overrides consent.


def test_report_names_legal_basis_and_is_never_blocked_by_missing_consent() -> None:
    relay = concern()  # no consent at all
    report = FileChildWelfareReport(legal_basis="barnevernsloven § 13-2", grounds="Merker.")
    (filed,) = relay.when(TEACHER, report)
    assert isinstance(filed, ChildWelfareReportFiled)
    assert filed.legal_basis == "barnevernsloven § 13-2"
    blank = FileChildWelfareReport(legal_basis="  ", grounds="Merker.")
    assert refused(relay, TEACHER, blank) == "report-names-legal-basis"


# The levels: DOMAIN.md's exits table.

EXITS = [  # from level, command, the event it gives or the rule that refuses it
    (0, DecideLevel(reason="r"), "level-exits"),
    (0, Escalate(to_level=2, reason="r"), "level-exits"),
    (1, DecideLevel(reason="r"), "LevelDecided"),
    (1, Escalate(to_level=2, reason="r"), "Escalated"),
    (1, Escalate(to_level=3, reason="r"), "Escalated"),
    (1, DeEscalate(to_level=0, reason="r"), "level-exits"),
    (2, DecideLevel(reason="r"), "LevelDecided"),
    (2, DeEscalate(to_level=1, reason="r"), "DeEscalated"),
    (2, Escalate(to_level=3, reason="r"), "Escalated"),
    (3, DeEscalate(to_level=2, reason="r"), "DeEscalated"),
    (3, DeEscalate(to_level=1, reason="r"), "DeEscalated"),
    (3, DeEscalate(to_level=0, reason="r"), "level-exits"),
    (3, CloseCase(reason="r"), "CaseClosed"),
    (0, CloseCase(reason="r"), "CaseClosed"),
]


@pytest.mark.parametrize(("level", "command", "outcome"), EXITS)
def test_level_exits(level: int, command: Command, outcome: str) -> None:
    relay = concern().given(POLICY, consent())
    relay.given(LEADER, AssignCoordinator(coordinator=LEADER.person, service=UNIT))
    if level >= 1:
        relay.given(LEADER, Escalate(to_level=1, reason="r"))
    if level >= 2:
        relay.given(LEADER, Escalate(to_level=level, reason="r"))
    assert relay.case().level == level
    if outcome[0].isupper():
        assert names(relay.when(LEADER, command)) == [outcome]
    else:
        assert refused(relay, LEADER, command) == outcome


def test_level_1_needs_consent() -> None:
    relay = concern()
    assert refused(relay, LEADER, Escalate(to_level=1, reason="r")) == "level-1-needs-consent"


def test_level_3_needs_coordinator() -> None:
    relay = at_level_1()
    assert refused(relay, LEADER, Escalate(to_level=3, reason="r")) == "level-3-needs-coordinator"
    relay.given(LEADER, AssignCoordinator(coordinator=LEADER.person, service=UNIT))
    assert names(relay.when(LEADER, Escalate(to_level=3, reason="r"))) == ["Escalated"]


def test_closed_case_accepts_only_reopen() -> None:
    relay = at_level_1().given(LEADER, CloseCase(reason="Bedring"))
    assert refused(relay, TEACHER, NoteBrightSpot(note="Glad")) == "closed-case-accepts-only-reopen"
    assert names(relay.when(LEADER, ReopenCase(reason="Ny uro"))) == ["CaseReopened"]


# Rule 6: every measure has a responsible person and an evaluation date.


def test_measure_has_evaluation_date_not_in_the_past() -> None:
    relay = at_level_1()
    past = measure(evaluation_date=TODAY - timedelta(days=1))
    assert refused(relay, TEACHER, past) == "measure-has-evaluation-date"
    assert names(relay.when(TEACHER, measure(evaluation_date=TODAY))) == ["MeasurePlanned"]


def test_date_within_window_an_evaluation_date_at_most_the_configured_years_ahead() -> None:
    # Given a case at level 1, and the window's years ahead (STAFETT_MAX_YEARS_AHEAD, default 5)
    relay = at_level_1()
    last_day = TODAY.replace(year=TODAY.year + MAX_YEARS_AHEAD)
    # When a measure is planned for the day after the window's last, then it is refused
    assert refused(relay, TEACHER, measure(last_day + timedelta(days=1))) == "date-within-window"
    assert refused(relay, TEACHER, measure(date(9999, 12, 31))) == "date-within-window"
    # And on its last day it is planned
    planned = measure(last_day)
    assert names(relay.given(TEACHER, planned).events[-1:]) == ["MeasurePlanned"]
    # And its next evaluation is held to the same window
    again = EvaluateMeasure(
        measure_id=planned.measure_id,
        outcome=Outcome.PARTLY,
        notes="Litt bedre",
        next_evaluation_date=date(9999, 12, 31),
    )
    assert refused(relay, TEACHER, again) == "date-within-window"


def test_date_within_window_a_wondering_conversation_not_before_the_case() -> None:
    relay = concern()
    before = RecordWonderingConversation(
        held_on=date(1970, 1, 1), with_guardians=True, with_child=False, summary="Samtale"
    )
    assert refused(relay, TEACHER, before) == "date-within-window"
    today = msgspec.structs.replace(before, held_on=TODAY)
    assert names(relay.when(TEACHER, today)) == ["WonderingConversationHeld"]


def test_measure_is_open_to_be_evaluated_or_ended() -> None:
    relay = at_level_1()
    unknown = EvaluateMeasure(measure_id=uuid4(), outcome=Outcome.WORKED, notes="n")
    assert refused(relay, TEACHER, unknown) == "measure-is-open"
    planned = measure()
    relay.given(TEACHER, planned).given(
        TEACHER, EndMeasure(measure_id=planned.measure_id, reason="Virket")
    )
    ended = EndMeasure(measure_id=planned.measure_id, reason="igjen")
    assert refused(relay, TEACHER, ended) == "measure-is-open"


# Rule 5: one baton holder at a time; a handover is offered and accepted.


def test_one_baton_holder_so_a_held_baton_is_not_appointed_anew() -> None:
    relay = concern()
    again = AppointBatonHolder(holder="laerer-2", service=UNIT)
    assert refused(relay, LEADER, again) == "one-baton-holder"


def test_one_baton_holder_and_only_the_offered_person_accepts() -> None:
    relay = with_ppt().given(TEACHER, OfferBaton(to_person=PPT_WORKER.person, to_service="ppt"))
    colleague = Actor(person="ppt-2", role=Role.EMPLOYEE, service="ppt")
    with pytest.raises(NotAllowed):
        relay.when(colleague, AcceptBaton())
    assert names(relay.when(PPT_WORKER, AcceptBaton())) == ["BatonHandedOver"]


def test_one_baton_holder_hands_over_only_to_a_service_on_the_case() -> None:
    relay = at_level_1().given(POLICY, consent(services=("ppt", "bup"), consent_id=uuid4()))
    offer = OfferBaton(to_person=BUP_WORKER.person, to_service="bup")
    assert refused(relay, TEACHER, offer) == "service-on-the-case"


# Who decides (DOMAIN.md roles).


def test_who_decides_an_employee_of_a_service_not_on_the_case_is_not_allowed() -> None:
    relay = with_ppt()
    for command in [NoteBrightSpot(note="Glad"), Escalate(to_level=3, reason="r")]:
        with pytest.raises(NotAllowed):
            relay.when(BUP_WORKER, command)


def test_who_decides_an_employee_who_is_not_holder_leader_or_coordinator_does_not() -> None:
    relay = at_level_1()
    colleague = Actor(person="laerer-2", role=Role.EMPLOYEE, service=UNIT)
    assert names(relay.when(colleague, NoteBrightSpot(note="Glad"))) == ["BrightSpotNoted"]
    with pytest.raises(NotAllowed):
        relay.when(colleague, DecideLevel(reason="r"))


def test_who_decides_a_concern_is_raised_by_someone_acting_for_their_unit() -> None:
    raise_it = RaiseConcern(case_id=uuid4(), child_id=uuid4(), concern="Uro")
    with pytest.raises(NotAllowed):
        Relay().when(GUARDIAN, raise_it)
    (raised,) = Relay().when(TEACHER, raise_it)
    assert raised.aggregate_id == raise_it.case_id


def test_unit_in_directory_a_concern_from_a_unit_that_exists_nowhere_is_not_allowed() -> None:
    # Given an employee whose token names a unit the municipality's directory does not list
    outsider = Actor(person="laerer-x", role=Role.EMPLOYEE, service="skole-finnes-ikke")
    # When they raise a concern
    with pytest.raises(NotAllowed) as refusal:
        Relay().when(outsider, RaiseConcern(case_id=uuid4(), child_id=uuid4(), concern="Uro"))
    # Then it is refused by the rule, and no case begins
    assert refusal.value.rule == "unit-in-directory"


def test_unit_leader_is_who_the_directory_names_so_they_appoint_the_baton_holder() -> None:
    # Given a concern at skole-lia, whose leader the directory says is rektor-1
    relay = Relay()
    relay.given(
        TEACHER, RaiseConcern(case_id=relay.case_id, child_id=uuid4(), concern="Trekker seg unna.")
    )
    appoint = AppointBatonHolder(holder=TEACHER.person, service=UNIT)
    # When tokens claim unit_leader for skole-lia for people the directory does not name
    pretenders = [
        Actor(person="laerer-1", role=Role.UNIT_LEADER, service=UNIT),
        Actor(person="rektor-fjell", role=Role.UNIT_LEADER, service=UNIT),  # leads another school
        Actor(person="rektor-1", role=Role.UNIT_LEADER, service="skole-fjell"),  # acts elsewhere
    ]
    # Then none of them may appoint the baton holder
    for pretender in pretenders:
        with pytest.raises(NotAllowed):
            relay.when(pretender, appoint)
    # And the leader the directory names may
    assert names(relay.when(LEADER, appoint)) == ["BatonHolderAppointed"]


def test_report_to_child_welfare_refuses_a_unit_that_is_not_child_welfare() -> None:
    # Given a case
    relay = concern()
    # When the teacher files a report to PPT
    report = FileChildWelfareReport(
        legal_basis="barnevernsloven § 13-2", grounds="Merker.", reported_to="ppt"
    )
    with pytest.raises(RuleViolation) as refusal:
        relay.when(TEACHER, report)
    # Then it is refused, naming the units that would do
    assert refusal.value.rule == "report-to-child-welfare"
    assert "barnevern" in refusal.value.message
    # And a report to the directory's child welfare unit is filed
    filed = msgspec.structs.replace(report, reported_to="barnevern")
    assert names(relay.when(TEACHER, filed)) == ["ChildWelfareReportFiled"]


def test_refuse_first_a_stranger_asking_to_escalate_a_closed_case_is_not_told_it_is_closed() -> (
    None
):
    # Given a closed case
    relay = at_level_1().given(LEADER, CloseCase(reason="Bedring"))
    # When someone of a service not on the case asks to escalate it
    with pytest.raises(NotAllowed):
        relay.when(BUP_WORKER, Escalate(to_level=2, reason="r"))
    # Then they are not allowed, and only the leader is told the case is closed
    assert refused(relay, LEADER, Escalate(to_level=2, reason="r")) == (
        "closed-case-accepts-only-reopen"
    )


def test_who_decides_consent_facts_come_only_from_the_consent_policy() -> None:
    with pytest.raises(NotAllowed):
        concern().when(LEADER, consent())


# A command already satisfied adds nothing.


@pytest.mark.parametrize(
    ("actor", "command"),
    [
        (POLICY, consent()),
        (POLICY, NoteLegalBasis(service="barnevern", legal_basis="bvl § 13-2")),
        (PPT_WORKER, JoinAgency(service="ppt")),
        (TEACHER, SendReferral(to_service="ppt", purpose="Utredning")),
        (LEADER, Escalate(to_level=2, reason="r")),
        (LEADER, AppointBatonHolder(holder=TEACHER.person, service=UNIT)),
    ],
)
def test_already_satisfied_commands_add_nothing(actor: Actor, command: Command) -> None:
    relay = with_ppt().given(POLICY, NoteLegalBasis(service="barnevern", legal_basis="bvl § 13-2"))
    assert relay.when(actor, command) == []
