"""The Case aggregate, the relay log (stafettlogg): its state, and how each event changes it.

State is only ever rebuilt by folding the case's events (`fold`), so it holds what the rules in
`rules.py` need to decide, and what the API shows, and nothing else: log entries such as a
bright spot change no state, only the version.

Coverage: a service may take part in a case when the case's own unit is that service (nothing is
shared when a unit works on its own worry), or a noted legal basis names it, or a consent covers
it at that moment: the service is in its scope and not lapsed, one of the purposes fits, and
`valid_from <= now < valid_until` (DOMAIN.md rules 1 and 3).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime
from functools import singledispatch
from uuid import UUID

import msgspec

from stafett_contracts.case import (
    AgencyJoined,
    AgencyLeft,
    BatonHandedOver,
    BatonHandoverOffered,
    BatonHolderAppointed,
    BatonVacated,
    BrightSpotNoted,
    CaseClosed,
    CaseEvent,
    CaseReopened,
    ChildViewRecorded,
    ChildWelfareReportFiled,
    ConcernRaised,
    ConcernShared,
    ConsentLapsed,
    ConsentNoted,
    CoordinatorAssigned,
    DeEscalated,
    Escalated,
    IndividualPlanRequested,
    LegalBasisNoted,
    LevelDecided,
    MeasureEnded,
    MeasureEvaluated,
    MeasurePlanned,
    ProblemDefined,
    ReferralSent,
    ResponsibilityGroupFormed,
    SystemMeasureProposed,
    WonderingConversationHeld,
)
from stafett_contracts.envelope import PersonRef, ServiceRef
from stafett_contracts.personal import SealedPersonalData


class Post(msgspec.Struct, frozen=True, kw_only=True):
    """A person in a role on the case (baton holder, coordinator), and the service they act for."""

    person: PersonRef
    service: ServiceRef


class NotedConsent(msgspec.Struct, frozen=True, kw_only=True):
    """What the case knows of one consent; `lapsed` are its services it no longer covers."""

    services: tuple[ServiceRef, ...]
    purposes: tuple[str, ...]
    valid_from: datetime
    valid_until: datetime
    lapsed: tuple[ServiceRef, ...] = ()

    def covers(self, service: str, purposes: Iterable[str], now: datetime) -> bool:
        return (
            service in self.services
            and service not in self.lapsed
            and any(purpose in self.purposes for purpose in purposes)
            and self.valid_from <= now < self.valid_until
        )

    def active(self, now: datetime) -> bool:
        """Still covering some service at `now`: the consent a case needs to reach level 1."""
        return any(s not in self.lapsed for s in self.services) and (
            self.valid_from <= now < self.valid_until
        )


class Measure(msgspec.Struct, frozen=True, kw_only=True):
    description: str
    responsible: PersonRef
    service: ServiceRef
    evaluation_date: date
    ended: bool = False


class Coverage(msgspec.Struct, frozen=True, kw_only=True):
    """Why a service may take part: its own unit (both None), a consent, or a legal basis."""

    consent_id: UUID | None = None
    legal_basis: str | None = None


class Case(msgspec.Struct, frozen=True, kw_only=True):
    id: UUID
    version: int
    child_id: UUID
    unit: ServiceRef  # where the worry arose; its leader is the case's unit leader
    concern: str
    personal_data: SealedPersonalData | None = None
    level: int = 0
    closed: bool = False
    holder: Post | None = None
    offer: Post | None = None  # a pending baton handover, to this person and service
    coordinator: Post | None = None
    services: tuple[ServiceRef, ...] = ()  # taking part now, the unit first
    referrals: tuple[ServiceRef, ...] = ()
    consents: dict[UUID, NotedConsent] = {}
    legal_bases: dict[ServiceRef, tuple[str, ...]] = {}
    measures: dict[UUID, Measure] = {}

    def coverage(self, service: str, purposes: Iterable[str], now: datetime) -> Coverage | None:
        """The ground on which `service` may take part at `now` for one of `purposes`, if any."""
        wanted = tuple(purposes)
        if service == self.unit:
            return Coverage()
        if service in self.legal_bases:
            return Coverage(legal_basis=self.legal_bases[service][0])
        for consent_id, consent in self.consents.items():
            if consent.covers(service, wanted, now):
                return Coverage(consent_id=consent_id)
        return None

    def has_active_consent(self, now: datetime) -> bool:
        return any(consent.active(now) for consent in self.consents.values())


def fold(history: Iterable[CaseEvent]) -> Case | None:
    state: Case | None = None
    for event in history:
        state = evolve(state, event)
    return state


def evolve(state: Case | None, event: CaseEvent) -> Case:
    if isinstance(event, ConcernRaised):
        return Case(
            id=event.aggregate_id,
            version=event.aggregate_version,
            child_id=event.child_id,
            unit=event.unit,
            concern=event.concern,
            personal_data=event.personal_data,
            services=(event.unit,),
        )
    if state is None:
        raise ValueError(f"{type(event).__name__} before the case's ConcernRaised")
    return msgspec.structs.replace(_apply(event, state), version=event.aggregate_version)


@singledispatch
def _apply(event: CaseEvent, state: Case) -> Case:
    raise TypeError(f"no evolve branch for {type(event).__name__}")


@_apply.register(ConcernShared)
@_apply.register(WonderingConversationHeld)
@_apply.register(ChildViewRecorded)
@_apply.register(BrightSpotNoted)
@_apply.register(LevelDecided)
@_apply.register(ProblemDefined)
@_apply.register(ResponsibilityGroupFormed)
@_apply.register(IndividualPlanRequested)
@_apply.register(SystemMeasureProposed)
@_apply.register(ChildWelfareReportFiled)
def _log_entry(event: CaseEvent, state: Case) -> Case:
    return state


@_apply.register
def _escalated(event: Escalated, state: Case) -> Case:
    return msgspec.structs.replace(state, level=event.to_level)


@_apply.register
def _de_escalated(event: DeEscalated, state: Case) -> Case:
    return msgspec.structs.replace(state, level=event.to_level)


@_apply.register
def _measure_planned(event: MeasurePlanned, state: Case) -> Case:
    measure = Measure(
        description=event.description,
        responsible=event.responsible,
        service=event.service,
        evaluation_date=event.evaluation_date,
    )
    return msgspec.structs.replace(state, measures={**state.measures, event.measure_id: measure})


@_apply.register
def _measure_evaluated(event: MeasureEvaluated, state: Case) -> Case:
    if event.next_evaluation_date is None:
        return state
    measure = msgspec.structs.replace(
        state.measures[event.measure_id], evaluation_date=event.next_evaluation_date
    )
    return msgspec.structs.replace(state, measures={**state.measures, event.measure_id: measure})


@_apply.register
def _measure_ended(event: MeasureEnded, state: Case) -> Case:
    measure = msgspec.structs.replace(state.measures[event.measure_id], ended=True)
    return msgspec.structs.replace(state, measures={**state.measures, event.measure_id: measure})


@_apply.register
def _referral_sent(event: ReferralSent, state: Case) -> Case:
    return msgspec.structs.replace(state, referrals=(*state.referrals, event.to_service))


@_apply.register
def _agency_joined(event: AgencyJoined, state: Case) -> Case:
    return msgspec.structs.replace(state, services=(*state.services, event.service))


@_apply.register
def _agency_left(event: AgencyLeft, state: Case) -> Case:
    """A service that leaves takes its pending offer and its coordinator with it."""

    def stays(post: Post | None) -> Post | None:
        return None if post is not None and post.service == event.service else post

    return msgspec.structs.replace(
        state,
        services=tuple(s for s in state.services if s != event.service),
        offer=stays(state.offer),
        coordinator=stays(state.coordinator),
    )


@_apply.register
def _baton_holder_appointed(event: BatonHolderAppointed, state: Case) -> Case:
    return msgspec.structs.replace(state, holder=Post(person=event.holder, service=event.service))


@_apply.register
def _baton_handover_offered(event: BatonHandoverOffered, state: Case) -> Case:
    offer = Post(person=event.to_person, service=event.to_service)
    return msgspec.structs.replace(state, offer=offer)


@_apply.register
def _baton_handed_over(event: BatonHandedOver, state: Case) -> Case:
    holder = Post(person=event.to_person, service=event.to_service)
    return msgspec.structs.replace(state, holder=holder, offer=None)


@_apply.register
def _baton_vacated(event: BatonVacated, state: Case) -> Case:
    return msgspec.structs.replace(state, holder=None, offer=None)


@_apply.register
def _coordinator_assigned(event: CoordinatorAssigned, state: Case) -> Case:
    coordinator = Post(person=event.coordinator, service=event.service)
    return msgspec.structs.replace(state, coordinator=coordinator)


@_apply.register
def _consent_noted(event: ConsentNoted, state: Case) -> Case:
    """The newest scope of a consent replaces the one noted before (a scope change)."""
    consent = NotedConsent(
        services=event.services,
        purposes=event.purposes,
        valid_from=event.valid_from,
        valid_until=event.valid_until,
    )
    return msgspec.structs.replace(state, consents={**state.consents, event.consent_id: consent})


@_apply.register
def _consent_lapsed(event: ConsentLapsed, state: Case) -> Case:
    consent = state.consents[event.consent_id]
    lapsing = event.services or consent.services
    lapsed = consent.lapsed + tuple(s for s in lapsing if s not in consent.lapsed)
    consent = msgspec.structs.replace(consent, lapsed=lapsed)
    return msgspec.structs.replace(state, consents={**state.consents, event.consent_id: consent})


@_apply.register
def _legal_basis_noted(event: LegalBasisNoted, state: Case) -> Case:
    bases = (*state.legal_bases.get(event.service, ()), event.legal_basis)
    return msgspec.structs.replace(state, legal_bases={**state.legal_bases, event.service: bases})


@_apply.register
def _case_closed(event: CaseClosed, state: Case) -> Case:
    return msgspec.structs.replace(state, closed=True)


@_apply.register
def _case_reopened(event: CaseReopened, state: Case) -> Case:
    return msgspec.structs.replace(state, closed=False)
