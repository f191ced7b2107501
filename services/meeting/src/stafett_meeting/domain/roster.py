"""The roster of a case: what the meeting service knows of who takes part in it, and under what.

The meeting service never asks the case service. It follows the CASE stream (policies.py) and
records each change that matters to meetings as a `CaseRosterNoted` in its own stream: the
case's unit and level, the services on it, the baton holder and coordinator, the consents that
cover services, and the legal bases. `learn` is that translation, pure: given the roster so far
and one case event, the roster after it.

Coverage follows the case's own rule (DOMAIN.md rules 1 and 3): the case's unit is always
covered; a legal basis covers its service; a consent covers a service in its scope (and not
lapsed) for one of the purposes, while `valid_from <= now < valid_until`. A TVIST meeting needs a
consent for the TVIST purpose; every other meeting, one for cooperation or referral.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from functools import singledispatch
from uuid import UUID

import msgspec

from stafett_contracts.case import (
    AgencyJoined,
    AgencyLeft,
    BatonHandedOver,
    BatonHolderAppointed,
    BatonVacated,
    CaseClosed,
    CaseEvent,
    CaseReopened,
    ConcernRaised,
    ConsentLapsed,
    ConsentNoted,
    CoordinatorAssigned,
    DeEscalated,
    Escalated,
    LegalBasisNoted,
)
from stafett_contracts.identity import STAFF, Actor
from stafett_contracts.meeting import (
    CaseRosterNoted,
    CoveringConsent,
    MeetingEvent,
    MeetingType,
    StaffPost,
)
from stafett_contracts.people import Directory
from stafett_runtime.domain import Context, envelope

TVIST_PURPOSES = ("tvist",)
MEETING_PURPOSES = ("cooperation", "referral")


class Roster(msgspec.Struct, frozen=True, kw_only=True):
    case_id: UUID
    version: int = 0  # of the roster in the MEETING stream; 0 before it is first noted
    raised_at: datetime  # when the case began: no date of its meetings lies before it
    unit: str
    level: int = 0
    closed: bool = False
    services: tuple[str, ...] = ()
    holder: StaffPost | None = None
    coordinator: StaffPost | None = None
    consents: tuple[CoveringConsent, ...] = ()
    legal_bases: tuple[str, ...] = ()

    def covers(self, service: str, meeting_type: MeetingType, now: datetime) -> bool:
        """May a person from `service` take part in a meeting of this type at `now`?"""
        if service == self.unit or service in self.legal_bases:
            return True
        purposes = TVIST_PURPOSES if meeting_type == MeetingType.TVIST else MEETING_PURPOSES
        return any(
            service in consent.services
            and any(purpose in consent.purposes for purpose in purposes)
            and consent.valid_from <= now < consent.valid_until
            for consent in self.consents
        )

    def is_decider(self, actor: Actor, directory: Directory) -> bool:
        """The baton holder, the coordinator, or the leader of the case's unit: the person the
        municipality directory names as its leader (a token's role does not make a leader)."""
        if actor.role not in STAFF:
            return False
        if actor.service == self.unit and directory.leads(actor.person, self.unit):
            return True
        return any(
            post is not None and (post.person, post.service) == (actor.person, actor.service)
            for post in (self.holder, self.coordinator)
        )


def fold_roster(history: Iterable[MeetingEvent]) -> Roster | None:
    """The roster as its latest `CaseRosterNoted` left it: each one is the whole roster. The
    first was noted as of the case's `ConcernRaised` (policies.py decides as of the case
    event), so its `occurred_at` is when the case was raised."""
    roster: Roster | None = None
    for event in history:
        if isinstance(event, CaseRosterNoted):
            roster = Roster(
                case_id=event.case_id,
                version=event.aggregate_version,
                raised_at=event.occurred_at if roster is None else roster.raised_at,
                unit=event.unit,
                level=event.level,
                closed=event.closed,
                services=event.services,
                holder=event.holder,
                coordinator=event.coordinator,
                consents=event.consents,
                legal_bases=event.legal_bases,
            )
    return roster


def note(roster: Roster | None, event: CaseEvent, context: Context) -> list[CaseRosterNoted]:
    """The `CaseRosterNoted` that records what `event` changed, or none if nothing changed."""
    if isinstance(event, ConcernRaised):
        if roster is not None:
            return []  # a redelivered start: the case is known already
        after = Roster(
            case_id=event.aggregate_id,
            raised_at=event.occurred_at,
            unit=event.unit,
            services=(event.unit,),
        )
    elif roster is None:
        return []  # a case whose start the meeting service never saw: nothing to add to
    else:
        after = learn(event, roster)
    if after == roster:
        return []
    return [
        CaseRosterNoted(
            **envelope(context, after.case_id, after.version + 1),
            case_id=after.case_id,
            unit=after.unit,
            level=after.level,
            closed=after.closed,
            services=after.services,
            holder=after.holder,
            coordinator=after.coordinator,
            consents=after.consents,
            legal_bases=after.legal_bases,
        )
    ]


@singledispatch
def learn(event: CaseEvent, roster: Roster) -> Roster:
    """Most of the relay log (entries, measures, referrals) changes nobody's place in it."""
    return roster


@learn.register(Escalated)
@learn.register(DeEscalated)
def _level(event: Escalated | DeEscalated, roster: Roster) -> Roster:
    return msgspec.structs.replace(roster, level=event.to_level)


@learn.register
def _joined(event: AgencyJoined, roster: Roster) -> Roster:
    if event.service in roster.services:
        return roster
    return msgspec.structs.replace(roster, services=(*roster.services, event.service))


@learn.register
def _left(event: AgencyLeft, roster: Roster) -> Roster:
    """A service that leaves takes its coordinator with it, as in the case."""
    coordinator = roster.coordinator
    if coordinator is not None and coordinator.service == event.service:
        coordinator = None
    return msgspec.structs.replace(
        roster,
        services=tuple(s for s in roster.services if s != event.service),
        coordinator=coordinator,
    )


@learn.register
def _appointed(event: BatonHolderAppointed, roster: Roster) -> Roster:
    return msgspec.structs.replace(
        roster, holder=StaffPost(person=event.holder, service=event.service)
    )


@learn.register
def _handed_over(event: BatonHandedOver, roster: Roster) -> Roster:
    return msgspec.structs.replace(
        roster, holder=StaffPost(person=event.to_person, service=event.to_service)
    )


@learn.register
def _vacated(event: BatonVacated, roster: Roster) -> Roster:
    return msgspec.structs.replace(roster, holder=None)


@learn.register
def _coordinator(event: CoordinatorAssigned, roster: Roster) -> Roster:
    coordinator = StaffPost(person=event.coordinator, service=event.service)
    return msgspec.structs.replace(roster, coordinator=coordinator)


@learn.register
def _consent_noted(event: ConsentNoted, roster: Roster) -> Roster:
    """A new scope replaces the consent's old one."""
    consent = CoveringConsent(
        consent_id=event.consent_id,
        services=event.services,
        purposes=event.purposes,
        valid_from=event.valid_from,
        valid_until=event.valid_until,
    )
    others = tuple(c for c in roster.consents if c.consent_id != event.consent_id)
    return msgspec.structs.replace(roster, consents=(*others, consent))


@learn.register
def _consent_lapsed(event: ConsentLapsed, roster: Roster) -> Roster:
    """The lapsed services drop out of the consent; a consent covering none is gone."""
    consents: list[CoveringConsent] = []
    for consent in roster.consents:
        if consent.consent_id == event.consent_id:
            lapsing = event.services or consent.services
            consent = msgspec.structs.replace(
                consent, services=tuple(s for s in consent.services if s not in lapsing)
            )
        if consent.services:
            consents.append(consent)
    return msgspec.structs.replace(roster, consents=tuple(consents))


@learn.register
def _legal_basis(event: LegalBasisNoted, roster: Roster) -> Roster:
    if event.service in roster.legal_bases:
        return roster
    return msgspec.structs.replace(roster, legal_bases=(*roster.legal_bases, event.service))


@learn.register
def _closed(event: CaseClosed, roster: Roster) -> Roster:
    return msgspec.structs.replace(roster, closed=True)


@learn.register
def _reopened(event: CaseReopened, roster: Roster) -> Roster:
    return msgspec.structs.replace(roster, closed=False)
