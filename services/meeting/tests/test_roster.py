"""The roster a client reads of a case (domain/roster.py): the case as its events tell it, through
the one fold of a case, never a fold of the meeting service's own.

Given a case's events / then the roster they show. Pure: no NATS, no clock.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

from stafett_contracts.case import (
    AgencyJoined,
    AgencyLeft,
    BatonHolderAppointed,
    CaseClosed,
    CaseEvent,
    ConcernRaised,
    ConsentLapsed,
    ConsentNoted,
    CoordinatorAssigned,
    Escalated,
    LegalBasisNoted,
)
from stafett_contracts.casefile import fold
from stafett_contracts.identity import Actor, Role
from stafett_contracts.meeting import StaffPost
from stafett_meeting.domain import Roster, roster_of

NOW = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
UNIT = "barnehage-solsikke"
TEACHER = Actor(person="ped-1", role=Role.EMPLOYEE, service=UNIT)
CONSENT = UUID("00000000-0000-4000-8000-00000000c0c0")


class CaseHistory:
    """A case's events as the case service would write them, and the roster they show."""

    def __init__(self) -> None:
        self.case_id = uuid4()
        self.events: list[CaseEvent] = []

    @property
    def roster(self) -> Roster:
        case = fold(self.events)
        assert case is not None
        return roster_of(case)

    def then(self, event_type: type[CaseEvent], **fields: Any) -> CaseHistory:
        self.events.append(
            event_type(
                event_id=uuid4(),
                aggregate_id=self.case_id,
                aggregate_version=len(self.events) + 1,
                occurred_at=NOW,
                actor=TEACHER,
                correlation_id="case-request",
                **fields,
            )
        )
        return self

    def raised(self) -> CaseHistory:
        return self.then(ConcernRaised, child_id=uuid4(), unit=UNIT, concern="Uro")


def test_given_a_concern_raised_then_the_roster_has_the_case_with_its_unit() -> None:
    roster = CaseHistory().raised().roster
    assert (roster.unit, roster.level, roster.services, roster.version) == (UNIT, 0, (UNIT,), 1)
    assert roster.raised_at == NOW


def test_given_a_case_that_moved_up_with_holder_and_coordinator_then_the_roster_has_them() -> None:
    history = CaseHistory().raised()
    history.then(BatonHolderAppointed, holder="ped-1", service=UNIT)
    history.then(Escalated, from_level=0, to_level=1, reason="Tiltak")
    history.then(AgencyJoined, service="ppt", basis="consent", consent_id=CONSENT)
    history.then(CoordinatorAssigned, coordinator="ppt-1", service="ppt")
    roster = history.roster
    assert (roster.level, roster.services, roster.version) == (1, (UNIT, "ppt"), 5)
    assert roster.holder == StaffPost(person="ped-1", service=UNIT)
    assert roster.coordinator == StaffPost(person="ppt-1", service="ppt")
    # When PPT leaves, its coordinator goes with it
    history.then(AgencyLeft, service="ppt", reason="done")
    assert (history.roster.services, history.roster.coordinator) == ((UNIT,), None)


def test_given_a_consent_that_lapsed_for_ppt_then_the_roster_shows_only_what_it_still_covers() -> (
    None
):
    history = CaseHistory().raised()
    history.then(
        ConsentNoted,
        consent_id=CONSENT,
        services=(UNIT, "ppt", "helsestasjon"),
        purposes=("cooperation",),
        valid_from=NOW,
        valid_until=NOW + timedelta(days=365),
    )
    history.then(ConsentLapsed, consent_id=CONSENT, services=("ppt",), reason="withdrawn")
    (consent,) = history.roster.consents
    assert consent.services == (UNIT, "helsestasjon")
    # When the consent lapses wholly, it is gone from the roster
    history.then(ConsentLapsed, consent_id=CONSENT, reason="expired")
    assert history.roster.consents == ()


def test_given_a_legal_basis_and_a_closed_case_then_the_roster_says_so() -> None:
    history = CaseHistory().raised()
    history.then(LegalBasisNoted, service="barnevern", legal_basis="barnevernsloven § 2-1")
    history.then(CaseClosed, at_level=0, reason="Bekymringen er borte")
    roster = history.roster
    assert (roster.legal_bases, roster.closed) == (("barnevern",), True)
