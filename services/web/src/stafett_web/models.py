"""What the services answer, as the web app reads it: typed, from their OpenAPI documents.

Only the fields a page shows are declared; the rest of an answer is ignored, so a service may
add fields without breaking a page. The shapes are the services' (docs/openapi/*.json): the
projection's relay log, worklist, access log, consent status, overrides, unit overview and
figures; the meeting service's meetings; the consent service's consent.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any
from uuid import UUID

import msgspec

from stafett_contracts.guides import GuideProgress
from stafett_contracts.personal import Erased, PersonalData

# Free text about a child as a service answers it to a reader: opened, or, once the child is
# erased, `Erased` (the services keep it sealed; `Translator.words` shows either).
Words = str | Erased


class Entry(msgspec.Struct, frozen=True, kw_only=True):
    """One relay-log entry: an event as its service published it."""

    stream: str
    seq: int
    type: str
    occurred_at: datetime
    person: str
    role: str
    service: str | None = None
    event: dict[str, Any]


class OpenMeasure(msgspec.Struct, frozen=True, kw_only=True):
    measure_id: UUID
    description: Words
    responsible: str
    service: str
    evaluation_date: date


class CaseState(msgspec.Struct, frozen=True, kw_only=True):
    """The case as the reader may know it (`stafett_contracts.casefile.CaseSummary`), its
    measures' descriptions opened."""

    status: str = "open"
    level: int | None = None
    unit: str | None = None
    holder: str | None = None
    holder_service: str | None = None
    coordinator: str | None = None
    coordinator_service: str | None = None
    services: list[str] = []
    open_measures: list[OpenMeasure] = []


class RelayLog(msgspec.Struct, frozen=True, kw_only=True):
    case_id: UUID
    as_of: datetime | None = None
    basis: str | None = None
    state: CaseState
    child: PersonalData | None = None
    erased: Erased | None = None
    entries: list[Entry] = []
    guide: GuideProgress | None = None  # where the case is in its action guide


class WorkItem(msgspec.Struct, frozen=True, kw_only=True):
    case_id: UUID
    # baton_holder, coordinator, measure_evaluation, action_item, decision_due, minutes_due,
    # inactivity_due, guardian, child
    kind: str
    level: int | None = None
    status: str | None = None
    about: str | None = None
    due: date | None = None
    overdue: bool | None = None  # a deadline's, as the projection says (its date has come)

    def is_overdue(self, today: date) -> bool:
        """A deadline as the projection flags it; anything else once its date has passed."""
        if self.overdue is not None:
            return self.overdue
        return self.due is not None and self.due < today


class Reading(msgspec.Struct, frozen=True, kw_only=True):
    """One read of a case, or one refused attempt (the access log)."""

    seq: int
    at: datetime
    person: str
    role: str
    service: str | None = None
    what: str
    purpose: str | None = None
    outcome: str
    basis: str | None = None
    refusal: str | None = None
    rule: str | None = None
    served_by: str | None = None


class Party(msgspec.Struct, frozen=True, kw_only=True):
    kind: str  # guardian or child
    person: str


class ServiceCovered(msgspec.Struct, frozen=True, kw_only=True):
    service: str
    start: datetime = msgspec.field(name="from")
    until: datetime | None = None
    covered_now: bool = False


class ConsentRecord(msgspec.Struct, frozen=True, kw_only=True):
    consent_id: UUID
    given_by: Party
    purposes: list[str]
    valid_from: datetime
    valid_until: datetime
    ended_at: datetime | None = None
    end_reason: str | None = None
    services: list[ServiceCovered] = []

    @property
    def live(self) -> bool:
        return self.ended_at is None and any(s.covered_now for s in self.services)

    @property
    def services_now(self) -> list[str]:
        return [s.service for s in self.services if s.covered_now]


class Override(msgspec.Struct, frozen=True, kw_only=True):
    case_id: UUID
    service: str
    basis: str  # legal_basis or report
    provision: str
    since: datetime
    recorded_by: dict[str, Any] | None = None

    @property
    def recorder(self) -> str | None:
        person = (self.recorded_by or {}).get("person")
        return person if isinstance(person, str) else None


class ConsentStatus(msgspec.Struct, frozen=True, kw_only=True):
    consents: list[ConsentRecord] = []
    legal_bases: list[Override] = []
    services_covered_now: list[str] = []


class Scope(msgspec.Struct, frozen=True, kw_only=True):
    services: list[str]
    purposes: list[str]
    valid_until: datetime


class Consent(msgspec.Struct, frozen=True, kw_only=True):
    """One consent as the consent service tells it (GET /consents/{id})."""

    id: UUID
    case_id: UUID
    given_by: Party
    scopes: list[Scope]
    withdrawn_at: datetime | None = None
    expired_at: datetime | None = None

    @property
    def scope(self) -> Scope:
        return self.scopes[-1]


class Invitee(msgspec.Struct, frozen=True, kw_only=True):
    kind: str
    person: str
    service: str | None = None


class ActionItem(msgspec.Struct, frozen=True, kw_only=True):
    description: Words
    due_on: date
    owner: str
    owner_service: str | None = None
    completed: bool = False


class Decision(msgspec.Struct, frozen=True, kw_only=True):
    kind: str
    reason: Words
    to_level: int | None = None
    participants: list[str] = []


class Meeting(msgspec.Struct, frozen=True, kw_only=True):
    id: UUID
    case_id: UUID
    version: int
    meeting_type: str
    starts_at: datetime
    ends_at: datetime
    place: str | None = None
    video_link: str | None = None
    leader: str
    leader_service: str
    agenda: list[Words] = []
    invited: list[Invitee] = []
    cancelled: bool = False
    held_at: datetime | None = None
    attended: list[str] = []
    minutes: list[Words] = []
    decisions: dict[str, Decision] = {}
    action_items: dict[str, ActionItem] = {}
    feedback_from: list[str] = []

    def upcoming(self, now: datetime) -> bool:
        return not self.cancelled and self.held_at is None and self.ends_at >= now


class Overview(msgspec.Struct, frozen=True, kw_only=True):
    """A unit leader's overview."""

    unit: str
    open_cases_per_level: dict[str, int]
    follow_up_breaks: list[dict[str, Any]] = []
    evaluations_due: list[dict[str, Any]] = []


class Feedback(msgspec.Struct, frozen=True, kw_only=True):
    count: int | None = None
    mean_rating: float | None = None
    mean_heard: float | None = None


class Figures(msgspec.Struct, frozen=True, kw_only=True):
    """Management figures; a count too small to show is None."""

    min_group: int = 5
    concerns_per_unit_and_month: dict[str, dict[str, int | None]] = {}
    closed_cases: int | None = None
    share_resolved_at_levels_0_1: float | None = None
    days_from_concern_to_first_measure: float | None = None
    days_at_each_level: dict[str, float | None] = {}
    escalations: int | None = None
    de_escalations: int | None = None
    follow_up_breaks: dict[str, int | None] = {}
    consent_withdrawals: int | None = None
    system_measures: int | None = None
    child_welfare_reports: int | None = None
    feedback: Feedback = Feedback()


class Saved(msgspec.Struct, frozen=True, kw_only=True):
    """A command's answer: the aggregate and its version after the command."""

    id: UUID
    version: int
