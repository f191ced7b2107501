"""Events of the relay log (stafettlogg): the Case aggregate, owned by the case service.

Names are past tense and stable (DOMAIN.md, "The events"). Each event's aggregate is one case;
the child appears only by a pseudonymous id, and identifying data only sealed.
"""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Annotated, ClassVar, Literal
from uuid import UUID

import msgspec

from stafett_contracts.envelope import Event, PersonRef, PrivateText, ServiceRef, Text
from stafett_contracts.people import ServiceKind
from stafett_contracts.personal import SealedPersonalData

Level = Annotated[int, msgspec.Meta(ge=0, le=3, description="BTI level 0-3")]
# The name of a rule of the domain, as a refusal names it (e.g. "level-3-needs-coordinator").
RuleName = Annotated[str, msgspec.Meta(min_length=1, max_length=100, pattern=r"^[a-z0-9-]+$")]


# What a meeting may decide about a case (the meeting's DecisionRecorded); kept here, beside
# the case events that carry it out or refuse it, since the meeting's contracts build on these.
class DecisionKind(StrEnum):
    CLOSE = "close"  # the case closes
    CONTINUE = "continue"  # the case continues at its level
    MOVE_TO_LEVEL = "move_to_level"  # up or down the staircase, to `to_level`
    SYSTEM_MEASURE = "system_measure"  # a problem beyond the child, for management


class CaseEvent(Event, frozen=True, kw_only=True):
    CONTEXT: ClassVar[str] = "case"


class ConcernRaised(CaseEvent, frozen=True, kw_only=True):
    """An employee of a unit is worried about a child: the case begins, at level 0."""

    child_id: UUID  # pseudonymous: the same child has the same id in every case
    unit: ServiceRef  # the unit where the worry arose
    concern: PrivateText
    personal_data: SealedPersonalData | None = None  # name etc., only ever sealed
    # The version of each service's action guide in force when the case was opened: the case
    # follows these (`stafett_contracts.guides`); none for a case opened before guides existed.
    guides: dict[ServiceKind, int] | None = None


class ConcernShared(CaseEvent, frozen=True, kw_only=True):
    """The worry was shared with a colleague or the leader (del undring)."""

    shared_with: PersonRef
    note: PrivateText | None = None


class WonderingConversationHeld(CaseEvent, frozen=True, kw_only=True):
    """A conversation with the guardians and/or the child about the worry (undringssamtale)."""

    held_on: date
    with_guardians: bool
    with_child: bool
    summary: PrivateText


class ChildViewRecorded(CaseEvent, frozen=True, kw_only=True):
    """The child was heard (UN CRC art. 12)."""

    view: PrivateText
    how: Literal["conversation", "drawing", "observation", "other"] = "conversation"


class BrightSpotNoted(CaseEvent, frozen=True, kw_only=True):
    """A positive observation (lysglimt)."""

    note: PrivateText


class LevelDecided(CaseEvent, frozen=True, kw_only=True):
    """A decision to continue at the current level, after an evaluation."""

    level: Level
    reason: PrivateText
    participants: tuple[PersonRef, ...] = ()  # who took part; guardians take part
    child_view: PrivateText | None = None  # what the child thinks of it, heard (CRC art. 12)


class Escalated(CaseEvent, frozen=True, kw_only=True):
    """The case moved up the staircase."""

    from_level: Level
    to_level: Level
    reason: PrivateText
    participants: tuple[PersonRef, ...] = ()
    child_view: PrivateText | None = None  # what the child thinks of it, heard (CRC art. 12)


class DeEscalated(CaseEvent, frozen=True, kw_only=True):
    """The case moved down the staircase: as important as moving up."""

    from_level: Level
    to_level: Level
    reason: PrivateText
    participants: tuple[PersonRef, ...] = ()
    child_view: PrivateText | None = None  # what the child thinks of it, heard (CRC art. 12)


class DecisionRefused(CaseEvent, frozen=True, kw_only=True):
    """A meeting's decision that the case could not carry out, and the rule that refused it.

    Recorded by the case service for the meeting's DecisionRecorded (its `causation_id`), as the
    person who recorded the decision (its actor), who is told. An entry: the case is unchanged.
    """

    meeting_id: UUID
    decision_id: UUID
    kind: DecisionKind
    to_level: Level | None = None  # for move_to_level
    rule: RuleName  # the rule that refused, as the case service names it
    reason: Text  # the refusal in words


class ProblemDefined(CaseEvent, frozen=True, kw_only=True):
    """The unit has defined the problem, with the guardians or without them (level 1)."""

    description: PrivateText
    with_guardians: bool


class MeasurePlanned(CaseEvent, frozen=True, kw_only=True):
    """Every measure has a responsible person and an evaluation date (DOMAIN.md rule 6)."""

    measure_id: UUID
    description: PrivateText
    responsible: PersonRef
    service: ServiceRef
    evaluation_date: date


class MeasureOutcome(StrEnum):
    WORKED = "worked"
    PARTLY = "partly"
    DID_NOT_WORK = "did_not_work"


class MeasureEvaluated(CaseEvent, frozen=True, kw_only=True):
    """A measure was evaluated: how it worked, and when it is evaluated next (none when it
    is to end)."""

    measure_id: UUID
    outcome: MeasureOutcome
    notes: PrivateText
    next_evaluation_date: date | None = None  # None when the measure is to end


class MeasureEnded(CaseEvent, frozen=True, kw_only=True):
    """A measure ended, and why."""

    measure_id: UUID
    reason: PrivateText


class ReferralSent(CaseEvent, frozen=True, kw_only=True):
    """A referral to a helper service, covered by consent (or a legal basis)."""

    to_service: ServiceRef
    purpose: PrivateText
    consent_id: UUID | None = None
    legal_basis: Text | None = None


class AgencyJoined(CaseEvent, frozen=True, kw_only=True):
    """A service takes part in the case, under a consent or a legal basis (rule 1)."""

    service: ServiceRef
    basis: Literal["consent", "legal_basis"]
    consent_id: UUID | None = None


class AgencyLeft(CaseEvent, frozen=True, kw_only=True):
    """A service's part in the case ended: done, or its consent was withdrawn or expired
    (rule 3)."""

    service: ServiceRef
    reason: Literal["done", "consent_withdrawn", "consent_expired", "other"]
    note: PrivateText | None = None


class BatonHolderAppointed(CaseEvent, frozen=True, kw_only=True):
    """The unit leader appoints the first holder, or a new one when the baton is vacant."""

    holder: PersonRef
    service: ServiceRef


class BatonHandoverOffered(CaseEvent, frozen=True, kw_only=True):
    """The holder offers the baton; it passes only when the receiver accepts (rule 5)."""

    to_person: PersonRef
    to_service: ServiceRef
    note: PrivateText | None = None


class BatonHandedOver(CaseEvent, frozen=True, kw_only=True):
    """The offered person accepted the baton: they hold it now (rule 5)."""

    from_person: PersonRef
    from_service: ServiceRef
    to_person: PersonRef
    to_service: ServiceRef


class BatonVacated(CaseEvent, frozen=True, kw_only=True):
    """The holder's service lost access (consent withdrawn): a new holder must be appointed."""

    previous_holder: PersonRef
    service: ServiceRef
    reason: Literal["consent_withdrawn", "consent_expired"]


class CoordinatorAssigned(CaseEvent, frozen=True, kw_only=True):
    """A coordinator was appointed for the case (level 3, may be level 2)."""

    coordinator: PersonRef
    service: ServiceRef


class GroupMember(msgspec.Struct, frozen=True, kw_only=True):
    person: PersonRef
    service: ServiceRef | None = None  # None for a guardian
    task: PrivateText | None = None


class ResponsibilityGroupFormed(CaseEvent, frozen=True, kw_only=True):
    """The responsibility group was formed: its members and their tasks (level 3)."""

    members: tuple[GroupMember, ...]


class IndividualPlanRequested(CaseEvent, frozen=True, kw_only=True):
    """An individual plan was requested, by the guardians or by the services."""

    requested_by_guardian: bool
    note: PrivateText | None = None


class SystemMeasureProposed(CaseEvent, frozen=True, kw_only=True):
    """A problem beyond the child (e.g. a bullying culture), for management: no personal data."""

    unit: ServiceRef
    description: PrivateText  # sealed too: it is often a meeting's reason about a child


class ChildWelfareReportFiled(CaseEvent, frozen=True, kw_only=True):
    """A report to child welfare under the duty to report: never blocked by consent (rule 4)."""

    reported_to: ServiceRef
    legal_basis: Text  # e.g. "barnevernsloven § 13-2"
    grounds: PrivateText


class ConsentNoted(CaseEvent, frozen=True, kw_only=True):
    """The case learned of a consent (from the consent service) that lets services take part."""

    consent_id: UUID
    services: tuple[ServiceRef, ...]
    purposes: tuple[str, ...]  # the consent's purposes: cooperation, tvist, referral
    valid_from: datetime
    valid_until: datetime


class ConsentLapsed(CaseEvent, frozen=True, kw_only=True):
    """A consent no longer covers these services (all of the consent's, when none are named)."""

    consent_id: UUID
    services: tuple[ServiceRef, ...] = ()
    reason: Literal["withdrawn", "expired"]


class LegalBasisNoted(CaseEvent, frozen=True, kw_only=True):
    """A service may take part without consent, on a legal basis (such as the duty to report)."""

    service: ServiceRef
    legal_basis: Text


class CaseClosed(CaseEvent, frozen=True, kw_only=True):
    """The case was closed at its level, with the reason and who took part in deciding."""

    at_level: Level
    reason: PrivateText
    participants: tuple[PersonRef, ...] = ()
    child_view: PrivateText | None = None  # what the child thinks of it, heard (CRC art. 12)


class CaseReopened(CaseEvent, frozen=True, kw_only=True):
    """A closed case was opened again, and why."""

    reason: PrivateText
