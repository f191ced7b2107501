"""Who takes part in a case and on what ground: referrals, services joining and leaving, the
baton (rule 5), the coordinator, and the consent facts the policy brings (rules 1-3).

The rules are named in rules.py's table.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal
from uuid import UUID

import msgspec

from stafett_case.domain.commands import (
    AcceptBaton,
    AppointBatonHolder,
    AssignCoordinator,
    JoinAgency,
    LapseConsent,
    LeaveAgency,
    NoteConsent,
    NoteLegalBasis,
    NoteScopeChange,
    OfferBaton,
    SendReferral,
)
from stafett_case.domain.deciding import Draft, decision, next_envelope, require_on_the_case
from stafett_contracts.case import (
    AgencyJoined,
    AgencyLeft,
    BatonHandedOver,
    BatonHandoverOffered,
    BatonHolderAppointed,
    BatonVacated,
    CaseEvent,
    ConsentLapsed,
    ConsentNoted,
    CoordinatorAssigned,
    LegalBasisNoted,
    ReferralSent,
)
from stafett_contracts.casefile import CaseFile, Coverage, NotedConsent, Post
from stafett_contracts.consent import REFERRED_TO, TAKING_PART
from stafett_runtime.domain import Context, RuleViolation

_LEFT_FOR: dict[str, Literal["consent_withdrawn", "consent_expired"]] = {
    "withdrawn": "consent_withdrawn",
    "expired": "consent_expired",
}


# Services on the case (rule 1).


@decision.register
def _send_referral(command: SendReferral, state: CaseFile, context: Context) -> list[CaseEvent]:
    if command.to_service in state.referrals:
        return []
    if command.to_service == state.unit:
        raise RuleViolation("referral-to-another-service", "a unit does not refer to itself")
    coverage = _covered(state, command.to_service, REFERRED_TO, context, "be referred to")
    return [
        ReferralSent(
            **next_envelope(state, context),
            to_service=command.to_service,
            purpose=command.purpose,
            consent_id=coverage.consent_id,
            legal_basis=coverage.legal_basis,
        )
    ]


@decision.register
def _join_agency(command: JoinAgency, state: CaseFile, context: Context) -> list[CaseEvent]:
    if command.service in state.services:
        return []
    coverage = _covered(state, command.service, TAKING_PART, context, "join")
    return [
        AgencyJoined(
            **next_envelope(state, context),
            service=command.service,
            basis="consent" if coverage.consent_id else "legal_basis",
            consent_id=coverage.consent_id,
        )
    ]


@decision.register
def _leave_agency(command: LeaveAgency, state: CaseFile, context: Context) -> list[CaseEvent]:
    if command.service not in state.services:
        return []
    if command.service == state.unit:
        raise RuleViolation("unit-stays-on-its-case", "the unit where the worry arose stays")
    if state.holder is not None and state.holder.service == command.service:
        raise RuleViolation(
            "holder-hands-over-before-leaving", "the baton holder's service hands over first"
        )
    return [
        AgencyLeft(
            **next_envelope(state, context),
            service=command.service,
            reason=command.reason,
            note=command.note,
        )
    ]


def _covered(
    state: CaseFile, service: str, purposes: Iterable[str], context: Context, doing: str
) -> Coverage:
    coverage = state.coverage(service, purposes, context.now)
    if coverage is None:
        raise RuleViolation(
            "consent-covers-the-service",
            f"no consent in force or legal basis lets {service} {doing} on this case",
        )
    return coverage


# The baton (rule 5) and the coordinator.


@decision.register
def _appoint_baton_holder(
    command: AppointBatonHolder, state: CaseFile, context: Context
) -> list[CaseEvent]:
    appointed = Post(person=command.holder, service=command.service)
    if state.holder == appointed:
        return []
    if state.holder is not None:
        raise RuleViolation(
            "one-baton-holder",
            "someone holds the baton: it passes only by a handover the receiver accepts",
        )
    require_on_the_case(state, command.service)
    _covered(state, command.service, TAKING_PART, context, "hold the baton")
    return [
        BatonHolderAppointed(
            **next_envelope(state, context), holder=command.holder, service=command.service
        )
    ]


@decision.register
def _offer_baton(command: OfferBaton, state: CaseFile, context: Context) -> list[CaseEvent]:
    offered = Post(person=command.to_person, service=command.to_service)
    if offered in (state.holder, state.offer):
        return []
    require_on_the_case(state, command.to_service)
    _covered(state, command.to_service, TAKING_PART, context, "take the baton")
    return [
        BatonHandoverOffered(
            **next_envelope(state, context),
            to_person=command.to_person,
            to_service=command.to_service,
            note=command.note,
        )
    ]


@decision.register
def _accept_baton(command: AcceptBaton, state: CaseFile, context: Context) -> list[CaseEvent]:
    holder, offer = state.holder, state.offer
    if offer is None or holder is None:
        return []  # access.py let only the holder through: it is accepted already
    _covered(state, offer.service, TAKING_PART, context, "take the baton")
    return [
        BatonHandedOver(
            **next_envelope(state, context),
            from_person=holder.person,
            from_service=holder.service,
            to_person=offer.person,
            to_service=offer.service,
        )
    ]


@decision.register
def _assign_coordinator(
    command: AssignCoordinator, state: CaseFile, context: Context
) -> list[CaseEvent]:
    if state.coordinator == Post(person=command.coordinator, service=command.service):
        return []
    require_on_the_case(state, command.service)
    return [
        CoordinatorAssigned(
            **next_envelope(state, context),
            coordinator=command.coordinator,
            service=command.service,
        )
    ]


# What the case learns from the consent service (rules 1-3).


@decision.register
def _note_consent(command: NoteConsent, state: CaseFile, context: Context) -> list[CaseEvent]:
    """A consent noted anew with another scope is a scope change: services it no longer
    covers lapse (as withdrawn) and leave, before the new scope is noted."""
    noted = state.consents.get(command.consent_id)
    scope = NotedConsent(
        services=command.services,
        purposes=command.purposes,
        valid_from=command.valid_from,
        valid_until=command.valid_until,
    )
    if noted is not None and msgspec.structs.replace(noted, lapsed=()) == scope:
        return []
    draft = Draft(state, context)
    dropped = () if noted is None else _still_covered(noted, noted.services)
    dropped = tuple(s for s in dropped if s not in command.services)
    if dropped:
        draft.add(
            ConsentLapsed(
                **draft.envelope(),
                consent_id=command.consent_id,
                services=dropped,
                reason="withdrawn",
            )
        )
    draft.add(
        ConsentNoted(
            **draft.envelope(),
            consent_id=command.consent_id,
            services=command.services,
            purposes=command.purposes,
            valid_from=command.valid_from,
            valid_until=command.valid_until,
        )
    )
    if noted is not None:
        _leave_when_uncovered(draft, noted.services, "withdrawn")
    return draft.events


@decision.register
def _note_scope_change(
    command: NoteScopeChange, state: CaseFile, context: Context
) -> list[CaseEvent]:
    noted = _noted(state, command.consent_id)
    new_scope = NoteConsent(
        consent_id=command.consent_id,
        services=command.services,
        purposes=command.purposes,
        valid_from=noted.valid_from,
        valid_until=command.valid_until or noted.valid_until,
    )
    return _note_consent(new_scope, state, context)


@decision.register
def _lapse_consent(command: LapseConsent, state: CaseFile, context: Context) -> list[CaseEvent]:
    noted = _noted(state, command.consent_id)
    named = command.services or noted.services
    lapsing = _still_covered(noted, tuple(s for s in named if s in noted.services))
    if not lapsing:
        return []
    draft = Draft(state, context)
    draft.add(
        ConsentLapsed(
            **draft.envelope(),
            consent_id=command.consent_id,
            services=lapsing if command.services else (),  # () says: the whole consent
            reason=command.reason,
        )
    )
    _leave_when_uncovered(draft, lapsing, command.reason)
    return draft.events


def _noted(state: CaseFile, consent_id: UUID) -> NotedConsent:
    noted = state.consents.get(consent_id)
    if noted is None:
        raise RuleViolation("consent-known", f"consent {consent_id} was never noted")
    return noted


def _still_covered(consent: NotedConsent, services: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(s for s in services if s not in consent.lapsed)


def _leave_when_uncovered(
    draft: Draft, services: Iterable[str], reason: Literal["withdrawn", "expired"]
) -> None:
    """Rule 3: from the instant consent lapses the service loses access; so does its holder."""
    left_for = _LEFT_FOR[reason]
    for service in services:
        state = draft.state
        if service == state.unit or service not in state.services:
            continue
        if state.coverage(service, TAKING_PART, draft.context.now) is not None:
            continue
        holder = state.holder
        draft.add(AgencyLeft(**draft.envelope(), service=service, reason=left_for))
        if holder is not None and holder.service == service:
            draft.add(
                BatonVacated(
                    **draft.envelope(),
                    previous_holder=holder.person,
                    service=service,
                    reason=left_for,
                )
            )


@decision.register
def _note_legal_basis(
    command: NoteLegalBasis, state: CaseFile, context: Context
) -> list[CaseEvent]:
    if command.legal_basis in state.legal_bases.get(command.service, ()):
        return []
    return [
        LegalBasisNoted(
            **next_envelope(state, context),
            service=command.service,
            legal_basis=command.legal_basis,
        )
    ]
