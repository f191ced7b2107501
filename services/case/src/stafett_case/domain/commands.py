"""What people (and the consent policy) ask of a case; each field is what a client sends.

A command names the decision in the imperative; `decide` (rules.py) answers with the events that
record it. `expected_version` is optional everywhere: when given and stale, nothing is decided.
`NoteConsent`, `NoteScopeChange`, `LapseConsent` and `NoteLegalBasis` come only from the consent
policy, which translates the consent service's events, and `CarryOutDecision` only from the
meeting policy, which translates a meeting's decisions; they are never offered over HTTP, and
keep the types of the events they come from.

The fields people send have the bounded shapes of `stafett_contracts.inputs` (person and unit
ids, free and short text), so a body that breaks a limit is refused (422) naming the field
before any rule runs. Dates are the rules' to judge: each lies in the case's date window
(`date-within-window`, rules.py).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal
from uuid import UUID

import msgspec

from stafett_contracts.case import DecisionKind, Level, MeasureOutcome
from stafett_contracts.envelope import PersonRef, PrivateText, ServiceRef, Text
from stafett_contracts.inputs import (
    PersonId,
    PersonIds,
    PrivateFreeText,
    PrivateShortText,
    ShortText,
    UnitId,
)
from stafett_contracts.people import ServiceKind
from stafett_contracts.personal import SealedPersonalData


class Command(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    expected_version: Annotated[int, msgspec.Meta(ge=0)] | None = None


class RaiseConcern(Command, frozen=True, kw_only=True):
    """Opens the case at level 0, for the unit the actor works in."""

    case_id: UUID
    child_id: UUID  # the register's pseudonym of the child
    concern: PrivateFreeText
    personal_data: SealedPersonalData | None = None  # the register's record, sealed by the API
    guides: dict[ServiceKind, int] = {}  # the guides' versions in force, as the API found them


class ShareConcern(Command, frozen=True, kw_only=True):
    shared_with: PersonId
    note: PrivateFreeText | None = None


class RecordWonderingConversation(Command, frozen=True, kw_only=True):
    held_on: date
    with_guardians: bool
    with_child: bool
    summary: PrivateFreeText


class RecordChildView(Command, frozen=True, kw_only=True):
    view: PrivateFreeText
    how: Literal["conversation", "drawing", "observation", "other"] = "conversation"


class NoteBrightSpot(Command, frozen=True, kw_only=True):
    note: PrivateFreeText


class DecideLevel(Command, frozen=True, kw_only=True):
    """Continue at the current level."""

    reason: PrivateShortText
    participants: PersonIds = ()
    child_view: PrivateFreeText | None = None  # what the child thinks of it


class Escalate(Command, frozen=True, kw_only=True):
    to_level: Level
    reason: PrivateShortText
    participants: PersonIds = ()
    child_view: PrivateFreeText | None = None  # what the child thinks of it


class DeEscalate(Command, frozen=True, kw_only=True):
    to_level: Level
    reason: PrivateShortText
    participants: PersonIds = ()
    child_view: PrivateFreeText | None = None  # what the child thinks of it


class DefineProblem(Command, frozen=True, kw_only=True):
    description: PrivateFreeText
    with_guardians: bool


class PlanMeasure(Command, frozen=True, kw_only=True):
    measure_id: UUID  # chosen by the client, so that a retry plans the same measure
    description: PrivateFreeText
    responsible: PersonId
    service: UnitId
    evaluation_date: date


class EvaluateMeasure(Command, frozen=True, kw_only=True):
    measure_id: UUID
    outcome: MeasureOutcome
    notes: PrivateFreeText
    next_evaluation_date: date | None = None


class EndMeasure(Command, frozen=True, kw_only=True):
    measure_id: UUID
    reason: PrivateShortText


class SendReferral(Command, frozen=True, kw_only=True):
    to_service: UnitId
    purpose: PrivateShortText


class JoinAgency(Command, frozen=True, kw_only=True):
    service: UnitId


class LeaveAgency(Command, frozen=True, kw_only=True):
    """A service's part is done. Leaving for lapsed consent is the policy's, not a person's."""

    service: UnitId
    reason: Literal["done", "other"] = "done"
    note: PrivateFreeText | None = None


class AppointBatonHolder(Command, frozen=True, kw_only=True):
    holder: PersonId
    service: UnitId


class OfferBaton(Command, frozen=True, kw_only=True):
    to_person: PersonId
    to_service: UnitId
    note: PrivateFreeText | None = None


class AcceptBaton(Command, frozen=True, kw_only=True):
    """Taken by the offered person: who accepts is the actor."""


class AssignCoordinator(Command, frozen=True, kw_only=True):
    coordinator: PersonId
    service: UnitId


class Member(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One of the responsibility group: a guardian (no service), or someone of a service."""

    person: PersonId
    service: UnitId | None = None
    task: PrivateShortText | None = None


class FormResponsibilityGroup(Command, frozen=True, kw_only=True):
    members: Annotated[tuple[Member, ...], msgspec.Meta(min_length=1, max_length=100)]


class RequestIndividualPlan(Command, frozen=True, kw_only=True):
    requested_by_guardian: bool
    note: PrivateFreeText | None = None


class ProposeSystemMeasure(Command, frozen=True, kw_only=True):
    description: PrivateFreeText  # about the unit, not the child; sealed all the same


class FileChildWelfareReport(Command, frozen=True, kw_only=True):
    legal_basis: ShortText  # e.g. "barnevernsloven § 13-2"
    grounds: PrivateFreeText
    reported_to: UnitId = "barnevern"  # a child welfare unit of the directory


class CloseCase(Command, frozen=True, kw_only=True):
    reason: PrivateShortText
    participants: PersonIds = ()
    child_view: PrivateFreeText | None = None  # what the child thinks of it


class ReopenCase(Command, frozen=True, kw_only=True):
    reason: PrivateShortText


class NoteConsent(Command, frozen=True, kw_only=True):
    """A consent, or its new scope, as the consent service recorded it."""

    consent_id: UUID
    services: tuple[ServiceRef, ...]
    purposes: tuple[str, ...]
    valid_from: datetime
    valid_until: datetime


class NoteScopeChange(Command, frozen=True, kw_only=True):
    """A consent's new scope: from the start the case noted, until its end unless a new one is
    given (a consent the case never noted has no scope to change)."""

    consent_id: UUID
    services: tuple[ServiceRef, ...]
    purposes: tuple[str, ...]
    valid_until: datetime | None = None


class LapseConsent(Command, frozen=True, kw_only=True):
    """A consent no longer covers these services (all of its services when none are named)."""

    consent_id: UUID
    reason: Literal["withdrawn", "expired"]
    services: tuple[ServiceRef, ...] = ()


class NoteLegalBasis(Command, frozen=True, kw_only=True):
    service: ServiceRef
    legal_basis: Text


CONSENT_FACTS = (NoteConsent, NoteScopeChange, LapseConsent, NoteLegalBasis)


class CarryOutDecision(Command, frozen=True, kw_only=True):
    """A decision a meeting recorded about the case, to be carried out as the case's own command
    by the person who recorded it (the context's actor); if the case refuses that command, the
    refusal is recorded instead (`DecisionRefused`)."""

    meeting_id: UUID
    decision_id: UUID
    kind: DecisionKind
    to_level: Level | None = None
    reason: PrivateText  # sealed by the meeting service, carried as it is
    participants: tuple[PersonRef, ...] = ()
    child_view: PrivateText | None = None  # as the meeting recorded it, sealed
