"""The Consent aggregate: one per case and consenting party (DOMAIN.md rules 1-3).

A consent is given by a guardian, or by the child at or over the age threshold, to services (never
to named employees) for purposes, from `valid_from` until `valid_until`, with evidence of how.
Its scope changes over time; each change, and each withdrawal for named services, starts a new
`Scope` from the instant it happened, so the scope at any past moment can still be read. A
wholly withdrawn or expired consent never changes again.

Who may act (docs/access.md, "Who may consent, change or withdraw") is decided from facts, never
from the request: the case as its events tell it and the register's record of its child
(`Facts`), and the units of the municipality directory (`Context.directory`). A refusal of who
may act is `NotAllowed` (403), naming its rule:
- a guardian or the child acts only in their own name (`party-acts-for-themselves`);
- a guardian gives consent only for a child the register names them guardian of
  (`guardian-of-the-child`);
- the child gives consent alone only as the register's child of the case, and only from the age
  threshold by the register's birth date (`child-consents-alone-from-age-threshold`);
- an employee or unit leader records, changes and withdraws a consent on the party's behalf only
  while their unit takes part in the case (`service-takes-part`), for a guardian the register
  knows (`guardian-in-the-register`) or the case's child old enough to consent alone; the
  evidence says how the party agreed (oral consent is recorded by the employee who heard it);
- a new scope is checked against the register as a new consent is; a withdrawal needs no more
  than the party, or someone taking part on their behalf;
- the expiry timer (role system) alone expires a consent;
- no other role (auditors, administrators) gives, changes or withdraws (`role-gives-no-consent`).

What a consent says is checked next (`RuleViolation`, 409): it names at least one service and
purpose, each service a unit in the directory (`service-in-directory`); it begins no earlier than
now less a tolerance (`consent-not-backdated`, five minutes unless configured), never before the
case was raised (`consent-not-before-the-case`), at most a year ahead
(`consent-begins-within-a-year`); it ends after it begins, in the future, and at most three
validity periods after it begins (`consent-ends-within-three-validity-periods`: 36 months by
default), a scope change included.

`decide(state, command, context)` gets a `ConsentContext`: besides who acts and when, the
consent's id (the application makes the id of a new consent, and the first event's envelope
needs it), the municipality's rules, the facts of the case (`Facts`: every command but the
expiry timer's needs them), and the case's consents as this instance has read them: a party
changes the scope of its live consent rather than giving a second one
(`one-live-consent-per-case-and-party`; two gives racing on two instances could both pass).
"""

from __future__ import annotations

import calendar
from collections.abc import Iterable
from datetime import datetime, timedelta
from functools import reduce, singledispatch
from typing import Annotated, Literal
from uuid import UUID

import msgspec

from stafett_consent.domain.facts import Facts
from stafett_contracts.access import GUARDIAN_OF_THE_CHILD
from stafett_contracts.casefile import CaseFile
from stafett_contracts.consent import (
    ConsentEvent,
    ConsentExpired,
    ConsentGiven,
    ConsentScopeChanged,
    ConsentWithdrawn,
    Evidence,
    LegalBasisRecorded,
    Party,
    Purpose,
)
from stafett_contracts.identity import FAMILY, STAFF, Actor, Role
from stafett_contracts.inputs import DocumentRef, Moment, PersonId, PrivateShortText, UnitId
from stafett_contracts.people import Directory, RegisteredChild
from stafett_runtime.domain import Context, NotAllowed, RuleViolation, envelope

# The rules, named as a refusal names them (NotAllowed.rule, RuleViolation.rule). A guardian
# acting in person is refused by the access rule's GUARDIAN_OF_THE_CHILD: the same fact.
PARTY_ACTS_FOR_THEMSELVES = "party-acts-for-themselves"
GUARDIAN_IN_THE_REGISTER = "guardian-in-the-register"
CHILD_CONSENTS_ALONE_FROM_AGE = "child-consents-alone-from-age-threshold"
SERVICE_TAKES_PART = "service-takes-part"
ROLE_GIVES_NO_CONSENT = "role-gives-no-consent"
SERVICE_IN_DIRECTORY = "service-in-directory"
CONSENT_NOT_BACKDATED = "consent-not-backdated"
CONSENT_NOT_BEFORE_THE_CASE = "consent-not-before-the-case"
CONSENT_BEGINS_WITHIN_A_YEAR = "consent-begins-within-a-year"
CONSENT_ENDS_WITHIN_THREE_VALIDITIES = "consent-ends-within-three-validity-periods"
VALID_UNTIL_AFTER_VALID_FROM = "valid-until-after-valid-from"
CONSENT_ENDS_IN_THE_FUTURE = "consent-ends-in-the-future"
WRITTEN_CONSENT_NEEDS_DOCUMENT = "written-consent-needs-document-and-hash"
ORAL_CONSENT_RECORDED_BY_EMPLOYEE = "oral-consent-recorded-by-employee"
CONSENT_NAMES_SERVICES_AND_PURPOSES = "consent-names-services-and-purposes"
ENDED_CONSENT_NEVER_CHANGES = "ended-consent-never-changes"
EXPIRY_ONLY_WHEN_DUE = "expiry-only-when-due"
CONSENT_GIVEN_FIRST = "consent-given-first"
ONE_LIVE_CONSENT_PER_PARTY = "one-live-consent-per-case-and-party"

BEGINS_AT_MOST_MONTHS_AHEAD = 12
LASTS_AT_MOST_VALIDITIES = 3

Version = Annotated[int, msgspec.Meta(ge=0)]
Sha256 = Annotated[
    str,
    msgspec.Meta(pattern=r"^[0-9a-f]{64}(?![\s\S])", description="64 lowercase hex digits"),
]
ServicesInScope = Annotated[
    tuple[UnitId, ...], msgspec.Meta(min_length=1, max_length=50, description="1-50 units")
]
PurposesInScope = Annotated[
    tuple[Purpose, ...],
    msgspec.Meta(min_length=1, max_length=len(Purpose), description=f"1-{len(Purpose)} purposes"),
]


class ConsentRules(msgspec.Struct, frozen=True, kw_only=True):
    """What a municipality configures; the defaults are DOMAIN.md's.

    The age at which a child consents alone is `child_age`, unless a service in the scope asks
    for more (`child_age_by_service`, e.g. {"helsestasjon": 16} for health matters): the highest
    applies. Which service ids are health services is the municipality's register, so none are
    assumed. `backdating_tolerance`: how long before now a consent may say it began (the time
    between hearing it and recording it).
    """

    child_age: int = 15
    child_age_by_service: dict[str, int] = msgspec.field(default_factory=dict)
    validity_months: int = 12
    backdating_tolerance: timedelta = timedelta(minutes=5)

    def age_to_consent_alone(self, services: Iterable[str]) -> int:
        ages = [self.child_age_by_service.get(service, self.child_age) for service in services]
        return max([self.child_age, *ages])


# Commands: what a client sends, in the bounded shapes of `stafett_contracts.inputs` (422
# naming the field otherwise). `expected_version` is checked by the application. The child is
# the case's child, never a field of a command; the child's age is the register's.


class ConsentingParty(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Who consents, as a request names them: a guardian, or the child at or over the age
    threshold (the event records them as a `Party`)."""

    kind: Literal["guardian", "child"]
    person: PersonId

    def recorded(self) -> Party:
        return Party(kind=self.kind, person=self.person)


class EvidenceOfConsent(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """How the party agreed, as a request shows it. Written: the document and its hash. Oral:
    the employee who recorded it (the event records it as `Evidence`)."""

    form: Literal["written", "oral"]
    document_ref: DocumentRef | None = None
    document_sha256: Sha256 | None = None
    recorded_by: PersonId | None = None

    def recorded(self) -> Evidence:
        return Evidence(
            form=self.form,
            document_ref=self.document_ref,
            document_sha256=self.document_sha256,
            recorded_by=self.recorded_by,
        )


class GiveConsent(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    case_id: UUID
    given_by: ConsentingParty
    services: ServicesInScope
    purposes: PurposesInScope
    valid_from: Moment
    valid_until: Moment | None = None  # None: valid_from plus the configured validity
    evidence: EvidenceOfConsent


class ChangeScope(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    services: ServicesInScope
    purposes: PurposesInScope
    valid_until: Moment | None = None  # None keeps the current end
    expected_version: Version | None = None


class WithdrawConsent(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    services: Annotated[tuple[UnitId, ...], msgspec.Meta(max_length=50)] = ()  # none: wholly
    reason: PrivateShortText | None = None  # sealed by the API before any rule sees it
    expected_version: Version | None = None


class ExpireConsent(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Issued by the expiry timer once the consent's end has passed."""


Command = GiveConsent | ChangeScope | WithdrawConsent | ExpireConsent


# State


class Scope(msgspec.Struct, frozen=True, kw_only=True):
    """What the consent covered from `since` until the next scope began."""

    since: datetime
    services: tuple[str, ...]
    purposes: tuple[Purpose, ...]
    valid_until: datetime


class Consent(msgspec.Struct, frozen=True, kw_only=True):
    id: UUID
    version: int
    case_id: UUID
    child_id: UUID
    given_by: Party
    given_at: datetime
    valid_from: datetime
    evidence: Evidence
    scopes: tuple[Scope, ...]  # in the order they began; the last is the current one
    withdrawn_at: datetime | None = None  # wholly
    expired_at: datetime | None = None

    @property
    def scope(self) -> Scope:
        return self.scopes[-1]

    def has_ended(self, now: datetime) -> bool:
        return (
            self.withdrawn_at is not None
            or self.expired_at is not None
            or now >= self.scope.valid_until
        )


# Decide


class ConsentContext(Context, frozen=True, kw_only=True):
    """A consent command's context: the consent decided on, and what its decision reads."""

    consent_id: UUID
    rules: ConsentRules = ConsentRules()
    facts: Facts | None = None  # the case and its child; the expiry timer needs none
    case_consents: tuple[Consent, ...] = ()  # for a new consent: the case's others

    @classmethod
    def of(
        cls,
        context: Context,
        *,
        consent_id: UUID,
        rules: ConsentRules,
        facts: Facts | None = None,
        case_consents: tuple[Consent, ...] = (),
    ) -> ConsentContext:
        return cls(
            **msgspec.structs.asdict(context),
            consent_id=consent_id,
            rules=rules,
            facts=facts,
            case_consents=case_consents,
        )


def decide(state: Consent | None, command: Command, context: ConsentContext) -> list[ConsentEvent]:
    """The events that follow from `command`, or a refusal naming its rule."""
    rules = context.rules
    if isinstance(command, GiveConsent):
        if state is not None:
            raise RuleViolation(CONSENT_GIVEN_FIRST, "this consent has already been given")
        return _give(command, context, rules, _needed(context.facts))
    if state is None:
        raise RuleViolation(CONSENT_GIVEN_FIRST, "no consent has been given here")
    match command:
        case ChangeScope():
            return _change_scope(state, command, context, rules, _needed(context.facts))
        case WithdrawConsent():
            return _withdraw(state, command, context, _needed(context.facts))
        case ExpireConsent():
            return _expire(state, context)


def refuse_second_live_consent(
    existing: Iterable[Consent], party: ConsentingParty, now: datetime
) -> None:
    """A party changes the scope of its live consent rather than giving a second one."""
    if any(c.given_by == party.recorded() and not c.has_ended(now) for c in existing):
        raise RuleViolation(
            ONE_LIVE_CONSENT_PER_PARTY,
            "this party already has a live consent in this case: change its scope instead",
        )


def _needed(facts: Facts | None) -> Facts:
    if facts is None:
        raise TypeError("a person's command on a consent is decided on the facts of its case")
    return facts


def _give(
    command: GiveConsent, context: ConsentContext, rules: ConsentRules, facts: Facts
) -> list[ConsentEvent]:
    party, evidence = command.given_by.recorded(), command.evidence.recorded()
    _authorise(party, context.actor, facts.case)
    _require_entitled(party, command.services, context, facts.child, rules)
    _require_scope(command.services, command.purposes, context.directory)
    _require_evidence(evidence, context.actor)
    _require_valid_from(command.valid_from, context.now, facts.case, rules)
    valid_until = command.valid_until or add_months(command.valid_from, rules.validity_months)
    _require_valid_until(valid_until, command.valid_from, context.now, rules)
    refuse_second_live_consent(context.case_consents, command.given_by, context.now)
    return [
        ConsentGiven(
            **envelope(context, context.consent_id, 1),
            case_id=command.case_id,
            child_id=facts.case.child_id,
            given_by=party,
            services=command.services,
            purposes=command.purposes,
            valid_from=command.valid_from,
            valid_until=valid_until,
            evidence=evidence,
        )
    ]


def _change_scope(
    consent: Consent, command: ChangeScope, context: Context, rules: ConsentRules, facts: Facts
) -> list[ConsentEvent]:
    _authorise(consent.given_by, context.actor, facts.case)
    _require_entitled(consent.given_by, command.services, context, facts.child, rules)
    _require_not_ended(consent, context.now)
    _require_scope(command.services, command.purposes, context.directory)
    valid_until = command.valid_until or consent.scope.valid_until
    _require_valid_until(valid_until, consent.valid_from, context.now, rules)
    current = consent.scope
    if (
        set(command.services) == set(current.services)
        and set(command.purposes) == set(current.purposes)
        and valid_until == current.valid_until
    ):
        return []
    return [
        ConsentScopeChanged(
            **envelope(context, consent.id, consent.version + 1),
            services=command.services,
            purposes=command.purposes,
            valid_until=command.valid_until,
        )
    ]


def _withdraw(
    consent: Consent, command: WithdrawConsent, context: Context, facts: Facts
) -> list[ConsentEvent]:
    _authorise(consent.given_by, context.actor, facts.case)
    if consent.withdrawn_at is not None:
        return []  # already wholly withdrawn
    _require_not_ended(consent, context.now)
    services = tuple(dict.fromkeys(s for s in command.services if s in consent.scope.services))
    if command.services and not services:
        return []  # none of them is covered any longer
    return [
        ConsentWithdrawn(
            **envelope(context, consent.id, consent.version + 1),
            services=services,
            reason=command.reason,
        )
    ]


def _expire(consent: Consent, context: Context) -> list[ConsentEvent]:
    if context.actor.role != Role.SYSTEM:
        raise NotAllowed("only the expiry timer expires a consent")
    if consent.expired_at is not None or consent.withdrawn_at is not None:
        return []  # it has ended already
    if context.now < consent.scope.valid_until:
        raise RuleViolation(
            EXPIRY_ONLY_WHEN_DUE, f"this consent is valid until {consent.scope.valid_until}"
        )
    return [
        ConsentExpired(
            **envelope(context, consent.id, consent.version + 1),
            expired_at=consent.scope.valid_until,
        )
    ]


# Who may act


def _authorise(party: Party, actor: Actor, case: CaseFile) -> None:
    """The party in person, or someone of a unit taking part in the case on their behalf."""
    if actor.role in STAFF:
        if actor.service is None or actor.service not in case.services:
            raise NotAllowed(
                f"the unit {actor.service} does not take part in this case: only a unit taking "
                "part records, changes or withdraws a consent on the party's behalf",
                rule=SERVICE_TAKES_PART,
            )
        return
    if actor.role in FAMILY:
        if actor.role.value == party.kind and actor.person == party.person:
            return
        raise NotAllowed(
            "a guardian or child gives, changes and withdraws consent only in their own name",
            rule=PARTY_ACTS_FOR_THEMSELVES,
        )
    raise NotAllowed(
        f"the role {actor.role} does not give, change or withdraw consent",
        rule=ROLE_GIVES_NO_CONSENT,
    )


def _require_entitled(
    party: Party,
    services: Iterable[str],
    context: Context,
    child: RegisteredChild | None,
    rules: ConsentRules,
) -> None:
    """The register says the party may consent for the case's child, to these services."""
    in_person = context.actor.person == party.person
    if party.kind == "guardian":
        if child is not None and child.is_guardian(party.person):
            return
        if in_person:
            raise NotAllowed(
                "the register does not name you a guardian of the case's child",
                rule=GUARDIAN_OF_THE_CHILD,
            )
        raise NotAllowed(
            f"the register names no guardian {party.person} of the case's child",
            rule=GUARDIAN_IN_THE_REGISTER,
        )
    if child is None or not child.is_the_child(party.person):
        raise NotAllowed(
            "the register does not name this person as the case's child",
            rule=CHILD_CONSENTS_ALONE_FROM_AGE,
        )
    threshold = rules.age_to_consent_alone(services)
    if child.age_on(context.now.date()) < threshold:
        raise NotAllowed(
            f"a child consents alone to these services from the age of {threshold}",
            rule=CHILD_CONSENTS_ALONE_FROM_AGE,
        )


# What a consent says


def _require_scope(
    services: tuple[str, ...], purposes: tuple[str, ...], directory: Directory
) -> None:
    if not services or not purposes:
        raise RuleViolation(
            CONSENT_NAMES_SERVICES_AND_PURPOSES,
            "consent is given to at least one service for at least one purpose",
        )
    unknown = [service for service in services if directory.unit(service) is None]
    if unknown:
        raise RuleViolation(
            SERVICE_IN_DIRECTORY,
            f"consent is given to units of the directory, and {', '.join(unknown)} is none",
        )


def _require_evidence(evidence: Evidence, actor: Actor) -> None:
    if evidence.form == "written" and not (evidence.document_ref and evidence.document_sha256):
        raise RuleViolation(
            WRITTEN_CONSENT_NEEDS_DOCUMENT,
            "written consent needs the document's reference and its sha256",
        )
    if evidence.form == "oral" and (
        actor.role not in STAFF or evidence.recorded_by != actor.person
    ):
        raise RuleViolation(
            ORAL_CONSENT_RECORDED_BY_EMPLOYEE,
            "oral consent is recorded by the employee who heard it, named as recorded_by",
        )


def _require_valid_from(
    valid_from: datetime, now: datetime, case: CaseFile, rules: ConsentRules
) -> None:
    earliest = now - rules.backdating_tolerance
    if valid_from < earliest:
        raise RuleViolation(
            CONSENT_NOT_BACKDATED,
            f"valid_from is at the earliest {earliest.isoformat()}: a consent is recorded when "
            "it is given",
        )
    if valid_from < case.raised_at:
        raise RuleViolation(CONSENT_NOT_BEFORE_THE_CASE, "valid_from is before the case was raised")
    latest = add_months(now, BEGINS_AT_MOST_MONTHS_AHEAD)
    if valid_from > latest:
        raise RuleViolation(
            CONSENT_BEGINS_WITHIN_A_YEAR, f"valid_from is at the latest {latest.isoformat()}"
        )


def _require_valid_until(
    valid_until: datetime, valid_from: datetime, now: datetime, rules: ConsentRules
) -> None:
    if valid_until <= valid_from:
        raise RuleViolation(VALID_UNTIL_AFTER_VALID_FROM, "valid_until must be after valid_from")
    if valid_until <= now:
        raise RuleViolation(CONSENT_ENDS_IN_THE_FUTURE, "valid_until must be in the future")
    months = rules.validity_months * LASTS_AT_MOST_VALIDITIES
    latest = add_months(valid_from, months)
    if valid_until > latest:
        raise RuleViolation(
            CONSENT_ENDS_WITHIN_THREE_VALIDITIES,
            f"a consent lasts at most {months} months: valid_until is at the latest "
            f"{latest.isoformat()}",
        )


def _require_not_ended(consent: Consent, now: datetime) -> None:
    if consent.has_ended(now):
        raise RuleViolation(
            ENDED_CONSENT_NEVER_CHANGES,
            "this consent was withdrawn or has expired: a new consent is needed",
        )


def add_months(moment: datetime, months: int) -> datetime:
    """The same day `months` later, or the month's last day when it is shorter."""
    index = moment.month - 1 + months
    year, month = moment.year + index // 12, index % 12 + 1
    day = min(moment.day, calendar.monthrange(year, month)[1])
    return moment.replace(year=year, month=month, day=day)


# Evolve


def evolve(state: Consent | None, event: ConsentEvent) -> Consent | None:
    if isinstance(event, LegalBasisRecorded):
        return state  # a legal basis is a record of its own, no consent (legal_basis.py)
    return _evolve(event, state)


def fold(history: Iterable[ConsentEvent]) -> Consent | None:
    return reduce(evolve, history, None)


@singledispatch
def _evolve(event: ConsentEvent, state: Consent | None) -> Consent:
    raise TypeError(f"a Consent has no {type(event).__name__}")


@_evolve.register
def _given(event: ConsentGiven, _: Consent | None) -> Consent:
    return Consent(
        id=event.aggregate_id,
        version=event.aggregate_version,
        case_id=event.case_id,
        child_id=event.child_id,
        given_by=event.given_by,
        given_at=event.occurred_at,
        valid_from=event.valid_from,
        evidence=event.evidence,
        scopes=(
            Scope(
                since=event.occurred_at,
                services=event.services,
                purposes=event.purposes,
                valid_until=event.valid_until,
            ),
        ),
    )


@_evolve.register
def _scope_changed(event: ConsentScopeChanged, state: Consent | None) -> Consent:
    assert state is not None
    scope = Scope(
        since=event.occurred_at,
        services=event.services,
        purposes=event.purposes,
        valid_until=event.valid_until or state.scope.valid_until,
    )
    return msgspec.structs.replace(
        state, version=event.aggregate_version, scopes=(*state.scopes, scope)
    )


@_evolve.register
def _withdrawn(event: ConsentWithdrawn, state: Consent | None) -> Consent:
    assert state is not None
    remaining = tuple(s for s in state.scope.services if s not in event.services)
    if not event.services or not remaining:
        return msgspec.structs.replace(
            state, version=event.aggregate_version, withdrawn_at=event.occurred_at
        )
    scope = msgspec.structs.replace(state.scope, since=event.occurred_at, services=remaining)
    return msgspec.structs.replace(
        state, version=event.aggregate_version, scopes=(*state.scopes, scope)
    )


@_evolve.register
def _expired(event: ConsentExpired, state: Consent | None) -> Consent:
    assert state is not None
    return msgspec.structs.replace(
        state, version=event.aggregate_version, expired_at=event.expired_at
    )
