"""A case as its events tell it: the one fold of the CASE stream, which every service reads.

The case service decides on it, and so does the meeting service (who decides on the case:
`CaseFile.decided_by`; which services a consent covers now: `CaseFile.coverage`); the access
rule (`stafett_contracts.access`) reads who was covered when from it; every service that shows
a case summarises it (`summary`). There is no other fold of a case's events.

Coverage is kept two ways, from the same events:
- `consents` and `legal_bases`: what the case knows of each consent's current scope, for the
  case's own rules (may a service join now?);
- `periods`: when each service was covered, and on what ground, over the whole life of the case,
  for the access rule (which entries may a service see?). A consent covers its services from
  `valid_from` until `valid_until`, or until it lapses for them (withdrawn, expired, or dropped
  from its scope); a new scope starts new periods from the moment it is noted. A legal basis,
  and a report to child welfare (which names its legal basis), cover the service named from the
  moment they are recorded on, with no end, and let it see what came before (DOMAIN.md rule 4:
  child welfare must assess the report on what the case knew).

The fold is tolerant of a history that does not begin at the start of the case, so a summary
can be folded from only the entries a viewer may see (`fold(events, start=CaseFile.unknown(id))`).
On a whole history it is exact.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime
from functools import singledispatch
from typing import Literal
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
    DecisionRefused,
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
from stafett_contracts.identity import STAFF, Actor
from stafett_contracts.people import Directory, ServiceKind
from stafett_contracts.personal import SealedPersonalData, SealedText

Basis = Literal["consent", "legal_basis", "report"]
_BEFORE_ANY_CASE = datetime.min.replace(tzinfo=UTC)


class Post(msgspec.Struct, frozen=True, kw_only=True):
    """A person in a role on the case (baton holder, coordinator), and the service they act for."""

    person: PersonRef
    service: ServiceRef


class NotedConsent(msgspec.Struct, frozen=True, kw_only=True):
    """What the case knows of one consent now; `lapsed` are its services it no longer covers."""

    services: tuple[ServiceRef, ...]
    purposes: tuple[str, ...]
    valid_from: datetime
    valid_until: datetime
    lapsed: tuple[ServiceRef, ...] = ()


class Measure(msgspec.Struct, frozen=True, kw_only=True):
    description: SealedText | str  # sealed, as the event has it (str: an old event's)
    responsible: PersonRef
    service: ServiceRef
    evaluation_date: date  # the next evaluation, or the last one when it is to end
    ended: bool = False
    to_end: bool = False  # evaluated with no next date: no evaluation is due any more


class Period(msgspec.Struct, frozen=True, kw_only=True):
    """A service covered from `start` up to, not including, `finish` (None: no end known)."""

    service: ServiceRef
    start: datetime
    finish: datetime | None
    basis: Basis
    ref: str  # the consent's id, or the legal provision named
    purposes: tuple[str, ...] = ()  # a consent's purposes; a legal basis serves any purpose
    sees_before: bool = False  # a legal basis or a report shows what came before it too

    def holds(self, at: datetime) -> bool:
        return self.start <= at and (self.finish is None or at < self.finish)

    def serves(self, purposes: Iterable[str]) -> bool:
        """A consent serves the purposes it was given for; a legal basis, any."""
        return self.basis != "consent" or any(p in self.purposes for p in purposes)

    def shows(self, at: datetime) -> bool:
        """Whether an entry made at `at` is visible under this period."""
        begins = _BEFORE_ANY_CASE if self.sees_before else self.start
        return begins <= at and (self.finish is None or at < self.finish)


class Coverage(msgspec.Struct, frozen=True, kw_only=True):
    """Why a service may take part: its own unit (both None), a consent, or a legal basis."""

    consent_id: UUID | None = None
    legal_basis: str | None = None


class CaseFile(msgspec.Struct, frozen=True, kw_only=True):
    id: UUID
    version: int
    child_id: UUID
    unit: ServiceRef  # where the worry arose; its leader is the case's unit leader
    raised_at: datetime
    concern: SealedText | str  # sealed, as the event has it (str: an old event's, or unknown)
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
    periods: tuple[Period, ...] = ()  # every service's coverage over time, in the order begun
    guides: dict[ServiceKind, int] = {}  # the action guides' versions it follows (the concern's)
    # The kinds of entry recorded since the case's last decision at its level (the concern, a
    # level decided, a move, a reopening), each once: the steps of its guide they complete.
    at_level: tuple[str, ...] = ()
    handed_to: tuple[ServiceRef, ...] = ()  # the services the baton was handed over to, in order

    @classmethod
    def unknown(cls, case_id: UUID) -> CaseFile:
        """Where a fold starts that may not begin at the case's start (a viewer's entries)."""
        return cls(
            id=case_id,
            version=0,
            child_id=UUID(int=0),
            unit="",
            raised_at=_BEFORE_ANY_CASE,
            concern="",
        )

    def coverage(self, service: str, purposes: Iterable[str], at: datetime) -> Coverage | None:
        """The ground on which `service` may take part at `at` for one of `purposes`, if any.

        The case's own unit always; then a legal basis (or a report to the service); then a
        consent in force that names the service and one of the purposes.
        """
        wanted = tuple(purposes)
        if service == self.unit:
            return Coverage()
        covering = [p for p in self.periods_of(service) if p.holds(at) and p.serves(wanted)]
        for period in covering:
            if period.basis != "consent":
                return Coverage(legal_basis=period.ref)
        for period in covering:
            return Coverage(consent_id=UUID(period.ref))
        return None

    def owning_unit(self, directory: Directory) -> ServiceRef:
        """The unit that owns the case now: where the worry arose, until the baton is handed
        over to a unit that takes it over (`Directory.takes_over`: kindergarten to school); a
        referral or a handover to a helper service (PPT, child welfare ...) leaves it there."""
        owner = self.unit
        for receiver in self.handed_to:
            if directory.takes_over(owner, receiver):
                owner = receiver
        return owner

    def periods_of(self, service: str) -> tuple[Period, ...]:
        return tuple(p for p in self.periods if p.service == service)

    def has_active_consent(self, at: datetime) -> bool:
        """A consent covers some service at `at`: what a case needs to reach level 1."""
        return any(p.basis == "consent" and p.holds(at) for p in self.periods)

    # Who decides on the case: its baton holder, its coordinator and the leader of its unit.

    def led_by(self, actor: Actor, directory: Directory) -> bool:
        """The actor is the leader the directory names for the case's unit, acting for it (a
        token's role `unit_leader` alone makes nobody the leader of a unit)."""
        return (
            actor.role in STAFF
            and actor.service == self.unit
            and directory.leads(actor.person, self.unit)
        )

    def decided_by(self, actor: Actor, directory: Directory) -> bool:
        """The actor is one of the case's deciders: the baton holder, the unit leader or the
        coordinator."""
        return (
            holds(self.holder, actor)
            or self.led_by(actor, directory)
            or holds(self.coordinator, actor)
        )


def holds(post: Post | None, actor: Actor) -> bool:
    """The actor is the person in `post`, acting for its service."""
    return (
        post is not None
        and actor.role in STAFF
        and (actor.person, actor.service) == (post.person, post.service)
    )


def fold(history: Iterable[CaseEvent], start: CaseFile | None = None) -> CaseFile | None:
    state = start
    for event in history:
        state = evolve(state, event)
    return state


def evolve(state: CaseFile | None, event: CaseEvent) -> CaseFile:
    if isinstance(event, ConcernRaised):
        return CaseFile(
            id=event.aggregate_id,
            version=event.aggregate_version,
            child_id=event.child_id,
            unit=event.unit,
            raised_at=event.occurred_at,
            concern=event.concern,
            personal_data=event.personal_data,
            services=(event.unit,),
            guides=event.guides or {},
            at_level=(type(event).__name__,),
        )
    if state is None:
        raise ValueError(f"{type(event).__name__} before the case's ConcernRaised")
    after = _apply(event, state)
    return msgspec.structs.replace(
        after, version=event.aggregate_version, at_level=_at_level(state, event)
    )


_DECISIONS = (LevelDecided, Escalated, DeEscalated, CaseReopened)


def _at_level(state: CaseFile, event: CaseEvent) -> tuple[str, ...]:
    """What has been recorded at the level once `event` is: a decision begins it anew."""
    if isinstance(event, _DECISIONS):
        return ()
    kind = type(event).__name__
    return state.at_level if kind in state.at_level else (*state.at_level, kind)


@singledispatch
def _apply(event: CaseEvent, state: CaseFile) -> CaseFile:
    raise TypeError(f"no evolve branch for {type(event).__name__}")


@_apply.register(ConcernShared)
@_apply.register(WonderingConversationHeld)
@_apply.register(ChildViewRecorded)
@_apply.register(BrightSpotNoted)
@_apply.register(ProblemDefined)
@_apply.register(ResponsibilityGroupFormed)
@_apply.register(IndividualPlanRequested)
@_apply.register(SystemMeasureProposed)
@_apply.register(DecisionRefused)  # a meeting's decision not carried out leaves the case as it was
def _log_entry(event: CaseEvent, state: CaseFile) -> CaseFile:
    return state


@_apply.register
def _level_decided(event: LevelDecided, state: CaseFile) -> CaseFile:
    return msgspec.structs.replace(state, level=event.level)


@_apply.register
def _escalated(event: Escalated, state: CaseFile) -> CaseFile:
    return msgspec.structs.replace(state, level=event.to_level)


@_apply.register
def _de_escalated(event: DeEscalated, state: CaseFile) -> CaseFile:
    return msgspec.structs.replace(state, level=event.to_level)


@_apply.register
def _measure_planned(event: MeasurePlanned, state: CaseFile) -> CaseFile:
    measure = Measure(
        description=event.description,
        responsible=event.responsible,
        service=event.service,
        evaluation_date=event.evaluation_date,
    )
    return _with_measure(state, event.measure_id, measure)


@_apply.register
def _measure_evaluated(event: MeasureEvaluated, state: CaseFile) -> CaseFile:
    measure = state.measures.get(event.measure_id)
    if measure is None:
        return state
    if event.next_evaluation_date is None:
        return _with_measure(state, event.measure_id, msgspec.structs.replace(measure, to_end=True))
    evaluated = msgspec.structs.replace(
        measure, evaluation_date=event.next_evaluation_date, to_end=False
    )
    return _with_measure(state, event.measure_id, evaluated)


@_apply.register
def _measure_ended(event: MeasureEnded, state: CaseFile) -> CaseFile:
    measure = state.measures.get(event.measure_id)
    if measure is None:
        return state
    return _with_measure(state, event.measure_id, msgspec.structs.replace(measure, ended=True))


def _with_measure(state: CaseFile, measure_id: UUID, measure: Measure) -> CaseFile:
    return msgspec.structs.replace(state, measures={**state.measures, measure_id: measure})


@_apply.register
def _referral_sent(event: ReferralSent, state: CaseFile) -> CaseFile:
    return msgspec.structs.replace(state, referrals=(*state.referrals, event.to_service))


@_apply.register
def _agency_joined(event: AgencyJoined, state: CaseFile) -> CaseFile:
    if event.service in state.services:
        return state
    return msgspec.structs.replace(state, services=(*state.services, event.service))


@_apply.register
def _agency_left(event: AgencyLeft, state: CaseFile) -> CaseFile:
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
def _baton_holder_appointed(event: BatonHolderAppointed, state: CaseFile) -> CaseFile:
    return msgspec.structs.replace(state, holder=Post(person=event.holder, service=event.service))


@_apply.register
def _baton_handover_offered(event: BatonHandoverOffered, state: CaseFile) -> CaseFile:
    offer = Post(person=event.to_person, service=event.to_service)
    return msgspec.structs.replace(state, offer=offer)


@_apply.register
def _baton_handed_over(event: BatonHandedOver, state: CaseFile) -> CaseFile:
    holder = Post(person=event.to_person, service=event.to_service)
    handed_to = (*state.handed_to, event.to_service)
    return msgspec.structs.replace(state, holder=holder, offer=None, handed_to=handed_to)


@_apply.register
def _baton_vacated(event: BatonVacated, state: CaseFile) -> CaseFile:
    return msgspec.structs.replace(state, holder=None, offer=None)


@_apply.register
def _coordinator_assigned(event: CoordinatorAssigned, state: CaseFile) -> CaseFile:
    coordinator = Post(person=event.coordinator, service=event.service)
    return msgspec.structs.replace(state, coordinator=coordinator)


# Coverage: consents, legal bases and reports (DOMAIN.md rules 1, 3 and 4).


@_apply.register
def _consent_noted(event: ConsentNoted, state: CaseFile) -> CaseFile:
    """The newest scope of a consent replaces the one noted before (a scope change), from now."""
    at = event.occurred_at
    earlier = state.consents.get(event.consent_id)
    consent = NotedConsent(
        services=event.services,
        purposes=event.purposes,
        valid_from=event.valid_from,
        valid_until=event.valid_until,
    )
    periods = state.periods
    begins = event.valid_from
    if earlier is not None:
        periods = _end_periods(periods, str(event.consent_id), earlier.services, at)
        begins = max(event.valid_from, at)
    periods += tuple(
        Period(
            service=service,
            start=begins,
            finish=event.valid_until,
            basis="consent",
            ref=str(event.consent_id),
            purposes=event.purposes,
        )
        for service in event.services
        if begins < event.valid_until
    )
    return msgspec.structs.replace(
        state, consents={**state.consents, event.consent_id: consent}, periods=periods
    )


@_apply.register
def _consent_lapsed(event: ConsentLapsed, state: CaseFile) -> CaseFile:
    consent = state.consents.get(event.consent_id)
    if consent is None:
        return state
    lapsing = event.services or consent.services
    lapsed = consent.lapsed + tuple(s for s in lapsing if s not in consent.lapsed)
    consent = msgspec.structs.replace(consent, lapsed=lapsed)
    return msgspec.structs.replace(
        state,
        consents={**state.consents, event.consent_id: consent},
        periods=_end_periods(state.periods, str(event.consent_id), lapsing, event.occurred_at),
    )


def _end_periods(
    periods: tuple[Period, ...], ref: str, services: Iterable[str], at: datetime
) -> tuple[Period, ...]:
    """The consent `ref` covers `services` no more from `at`; what would begin later never does."""
    ending = set(services)
    kept: list[Period] = []
    for period in periods:
        if period.ref != ref or period.service not in ending:
            kept.append(period)
        elif period.start < at:
            finish = at if period.finish is None else min(period.finish, at)
            kept.append(msgspec.structs.replace(period, finish=finish))
    return tuple(kept)


@_apply.register
def _legal_basis_noted(event: LegalBasisNoted, state: CaseFile) -> CaseFile:
    bases = (*state.legal_bases.get(event.service, ()), event.legal_basis)
    period = Period(
        service=event.service,
        start=event.occurred_at,
        finish=None,
        basis="legal_basis",
        ref=event.legal_basis,
        sees_before=True,
    )
    return msgspec.structs.replace(
        state,
        legal_bases={**state.legal_bases, event.service: bases},
        periods=(*state.periods, period),
    )


@_apply.register
def _report_filed(event: ChildWelfareReportFiled, state: CaseFile) -> CaseFile:
    period = Period(
        service=event.reported_to,
        start=event.occurred_at,
        finish=None,
        basis="report",
        ref=event.legal_basis,
        sees_before=True,
    )
    return msgspec.structs.replace(state, periods=(*state.periods, period))


@_apply.register
def _case_closed(event: CaseClosed, state: CaseFile) -> CaseFile:
    return msgspec.structs.replace(state, closed=True)


@_apply.register
def _case_reopened(event: CaseReopened, state: CaseFile) -> CaseFile:
    return msgspec.structs.replace(state, closed=False)


# What a viewer is shown of the case's state.


class OpenMeasure(msgspec.Struct, frozen=True, kw_only=True):
    measure_id: UUID
    # Sealed in the fold; a reader's answer has it opened: the text, or `Erased`'s object.
    description: SealedText | str
    responsible: PersonRef
    service: ServiceRef
    evaluation_date: date


class CaseSummary(msgspec.Struct, frozen=True, kw_only=True):
    """The state of a case as a viewer may know it: folded only from the entries they may see
    (an entry they may not see changes nothing here), so it never says more than they read."""

    status: Literal["open", "closed"] = "open"
    level: int | None = None  # None: no entry the viewer may see says it
    unit: ServiceRef | None = None
    holder: PersonRef | None = None
    holder_service: ServiceRef | None = None
    coordinator: PersonRef | None = None
    coordinator_service: ServiceRef | None = None
    services: tuple[ServiceRef, ...] = ()
    open_measures: tuple[OpenMeasure, ...] = ()


def summary(case_id: UUID, visible: Iterable[CaseEvent]) -> CaseSummary:
    """The summary of a case folded from `visible`, the case events a viewer may see."""
    events = list(visible)
    state = fold(events, start=CaseFile.unknown(case_id))
    if state is None or not events:
        return CaseSummary()
    return summarise(state, knows_level=says_level(events))


def says_level(events: Iterable[CaseEvent]) -> bool:
    """Whether any of `events` tells the case's level (the concern, or a decision on it)."""
    telling = ConcernRaised | Escalated | DeEscalated | LevelDecided
    return any(isinstance(e, telling) for e in events)


def summarise(state: CaseFile, *, knows_level: bool) -> CaseSummary:
    """The summary of a case file already folded (`level` None unless `knows_level`)."""
    return CaseSummary(
        status="closed" if state.closed else "open",
        level=state.level if knows_level else None,
        unit=state.unit or None,
        holder=state.holder.person if state.holder else None,
        holder_service=state.holder.service if state.holder else None,
        coordinator=state.coordinator.person if state.coordinator else None,
        coordinator_service=state.coordinator.service if state.coordinator else None,
        services=tuple(s for s in state.services if s),
        open_measures=tuple(
            OpenMeasure(
                measure_id=measure_id,
                description=m.description,
                responsible=m.responsible,
                service=m.service,
                evaluation_date=m.evaluation_date,
            )
            for measure_id, m in state.measures.items()
            if not m.ended
        ),
    )
