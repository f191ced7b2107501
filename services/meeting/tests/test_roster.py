"""How the meeting service learns a case's roster from the case's events (domain/roster.py).

Given the roster so far and one case event, then the `CaseRosterNoted` that records the change,
or none when the event changes nobody's place in the case. Pure: no NATS, no clock.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

from stafett_contracts.case import (
    AgencyJoined,
    AgencyLeft,
    BatonHolderAppointed,
    BrightSpotNoted,
    CaseClosed,
    CaseEvent,
    ConcernRaised,
    ConsentLapsed,
    ConsentNoted,
    CoordinatorAssigned,
    Escalated,
    MeasurePlanned,
)
from stafett_contracts.identity import Actor, Role
from stafett_contracts.meeting import CaseRosterNoted, MeetingType, StaffPost
from stafett_meeting.domain import Roster, fold_roster
from stafett_meeting.domain.roster import note
from stafett_runtime.domain import Context

NOW = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
UNIT = "barnehage-solsikke"
TEACHER = Actor(person="ped-1", role=Role.EMPLOYEE, service=UNIT)
POLICY = Actor(person="roster-policy", role=Role.SYSTEM, service="meeting")
CONSENT = UUID("00000000-0000-4000-8000-00000000c0c0")


class CaseHistory:
    """A case's events as the case service would write them, and the roster they leave."""

    def __init__(self) -> None:
        self.case_id = uuid4()
        self.version = 0
        self.roster_events: list[CaseRosterNoted] = []

    @property
    def roster(self) -> Roster | None:
        return fold_roster(self.roster_events)

    def then(self, event_type: type[CaseEvent], **fields: Any) -> list[CaseRosterNoted]:
        """Feed one case event to the roster; the roster events it gives are kept too."""
        self.version += 1
        event = event_type(
            event_id=uuid4(),
            aggregate_id=self.case_id,
            aggregate_version=self.version,
            occurred_at=NOW,
            actor=TEACHER,
            correlation_id="case-request",
            **fields,
        )
        context = Context(
            actor=POLICY, now=NOW, correlation_id="case-request", causation_id=str(event.event_id)
        )
        noted = note(self.roster, event, context)
        self.roster_events += noted
        return noted

    def raised(self) -> CaseHistory:
        self.then(ConcernRaised, child_id=uuid4(), unit=UNIT, concern="Uro")
        return self


def test_given_a_concern_raised_then_the_case_is_on_the_roster_with_its_unit() -> None:
    history = CaseHistory()
    (noted,) = history.then(ConcernRaised, child_id=uuid4(), unit=UNIT, concern="Uro")
    assert (noted.aggregate_id, noted.case_id, noted.aggregate_version) == (
        history.case_id,
        history.case_id,
        1,
    )
    assert (noted.unit, noted.level, noted.services) == (UNIT, 0, (UNIT,))
    assert noted.causation_id is not None
    assert noted.actor == POLICY


def test_given_a_case_when_a_log_entry_or_a_measure_is_added_then_no_roster_change() -> None:
    history = CaseHistory().raised()
    assert history.then(BrightSpotNoted, note="Lekte fint") == []
    measure = {"measure_id": uuid4(), "description": "Språkgruppe", "responsible": "ped-1"}
    assert history.then(MeasurePlanned, **measure, service=UNIT, evaluation_date=date.today()) == []


def test_given_a_case_when_a_redelivered_concern_arrives_then_no_roster_change() -> None:
    history = CaseHistory().raised()
    assert history.then(ConcernRaised, child_id=uuid4(), unit=UNIT, concern="Uro") == []


def test_given_a_case_when_it_moves_up_with_holder_and_coordinator_then_the_roster_has_them() -> (
    None
):
    history = CaseHistory().raised()
    history.then(BatonHolderAppointed, holder="ped-1", service=UNIT)
    history.then(Escalated, from_level=0, to_level=1, reason="Tiltak")
    history.then(AgencyJoined, service="ppt", basis="consent", consent_id=CONSENT)
    history.then(CoordinatorAssigned, coordinator="ppt-1", service="ppt")
    roster = history.roster
    assert roster is not None
    assert (roster.level, roster.services, roster.version) == (1, (UNIT, "ppt"), 5)
    assert roster.holder == StaffPost(person="ped-1", service=UNIT)
    assert roster.coordinator == StaffPost(person="ppt-1", service="ppt")
    # When PPT leaves, its coordinator goes with it
    history.then(AgencyLeft, service="ppt", reason="done")
    roster = history.roster
    assert roster is not None
    assert (roster.services, roster.coordinator) == ((UNIT,), None)


def test_given_a_consent_when_it_lapses_for_ppt_then_ppt_is_no_longer_covered() -> None:
    history = CaseHistory().raised()
    history.then(
        ConsentNoted,
        consent_id=CONSENT,
        services=(UNIT, "ppt", "helsestasjon"),
        purposes=("cooperation",),
        valid_from=NOW,
        valid_until=NOW + timedelta(days=365),
    )
    roster = history.roster
    assert roster is not None
    assert roster.covers("ppt", MeetingType.COOPERATION, NOW)
    history.then(ConsentLapsed, consent_id=CONSENT, services=("ppt",), reason="withdrawn")
    roster = history.roster
    assert roster is not None
    assert not roster.covers("ppt", MeetingType.COOPERATION, NOW)
    assert roster.covers("helsestasjon", MeetingType.COOPERATION, NOW)
    # When the consent lapses wholly, it is gone from the roster
    history.then(ConsentLapsed, consent_id=CONSENT, reason="expired")
    roster = history.roster
    assert roster is not None
    assert roster.consents == ()


def test_given_a_case_when_it_closes_then_the_roster_says_so() -> None:
    history = CaseHistory().raised()
    (noted,) = history.then(CaseClosed, at_level=0, reason="Bekymringen er borte")
    assert noted.closed
    assert noted.aggregate_version == 2
