"""Events of meetings: the Meeting aggregate, owned by the meeting service.

A meeting belongs to one case; every meeting event names its `case_id`, so a reader can follow a
case's meetings without looking anything up. People appear by reference only: a guardian or a
child by their person id, staff by person id and service. A decision recorded in a meeting is the
meeting's word; the case service turns it into the case's own event (DOMAIN.md, "The levels"),
or records it refused (`DecisionRefused`).
"""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Annotated, ClassVar, Literal
from uuid import UUID

import msgspec

from stafett_contracts.case import DecisionKind as DecisionKind  # re-exported: a meeting decides it
from stafett_contracts.case import Level
from stafett_contracts.consent import TAKING_PART, Purpose
from stafett_contracts.envelope import Event, PersonRef, PrivateText, ServiceRef

Url = Annotated[str, msgspec.Meta(min_length=1, max_length=2_000)]  # the service checks https
Place = Annotated[str, msgspec.Meta(min_length=1, max_length=500)]
Score = Annotated[int, msgspec.Meta(ge=1, le=5, description="1 (poor) to 5 (very good)")]


class MeetingEvent(Event, frozen=True, kw_only=True):
    CONTEXT: ClassVar[str] = "meeting"

    case_id: UUID  # the case the meeting belongs to


class MeetingType(StrEnum):
    PEDAGOGICAL_TEAM = "pedagogical_team"
    INTERDISCIPLINARY = "interdisciplinary"
    COOPERATION = "cooperation"
    RESPONSIBILITY_GROUP = "responsibility_group"
    TVIST = "tvist"
    NETWORK = "network"
    DIALOGUE = "dialogue"

    @property
    def purposes(self) -> tuple[Purpose, ...]:
        """The consent purposes under which a service's people take part in such a meeting: a
        TVIST discussion has a consent of its own."""
        return (Purpose.TVIST,) if self is MeetingType.TVIST else TAKING_PART


class MeetingScheduled(MeetingEvent, frozen=True, kw_only=True):
    """A meeting of the case is called: when, where (a place, a video link, or both), who leads."""

    meeting_type: MeetingType
    starts_at: datetime
    ends_at: datetime
    place: Place | None = None
    video_link: Url | None = None
    leader: PersonRef
    leader_service: ServiceRef
    agenda: tuple[PrivateText, ...] = ()


class ParticipantInvited(MeetingEvent, frozen=True, kw_only=True):
    """Guardians, the child where fitting, and people from services (covered by consent)."""

    person: PersonRef
    kind: Literal["guardian", "child", "service"]
    service: ServiceRef | None = None  # the service a staff participant comes from


class MeetingRescheduled(MeetingEvent, frozen=True, kw_only=True):
    """The meeting moved to a new time (and place or video link), and why."""

    starts_at: datetime
    ends_at: datetime
    place: Place | None = None
    video_link: Url | None = None
    reason: PrivateText | None = None


class MeetingCancelled(MeetingEvent, frozen=True, kw_only=True):
    """The meeting will not be held, and why."""

    reason: PrivateText


class MeetingHeld(MeetingEvent, frozen=True, kw_only=True):
    """The meeting was held, and who attended."""

    held_at: datetime
    attended: tuple[PersonRef, ...]


class MinutesRecorded(MeetingEvent, frozen=True, kw_only=True):
    """The meeting's entry in the relay log."""

    minutes: PrivateText


class DecisionRecorded(MeetingEvent, frozen=True, kw_only=True):
    """What the meeting decided about the case; the case service acts on it (a policy)."""

    decision_id: UUID
    kind: DecisionKind
    to_level: Level | None = None  # for move_to_level
    reason: PrivateText
    participants: tuple[PersonRef, ...] = ()  # who took part in deciding; guardians take part
    child_view: PrivateText | None = None  # what the child thinks of it, heard (CRC art. 12)


class ActionItemAssigned(MeetingEvent, frozen=True, kw_only=True):
    """A task agreed in the meeting: what, who owns it, and when it is due."""

    item_id: UUID
    description: PrivateText
    owner: PersonRef
    owner_service: ServiceRef | None = None  # None when a guardian owns it
    due_on: date


class ActionItemCompleted(MeetingEvent, frozen=True, kw_only=True):
    """An action item was done."""

    item_id: UUID
    note: PrivateText | None = None


class FeedbackGiven(MeetingEvent, frozen=True, kw_only=True):
    """How a guardian or the child experienced the meeting, collected systematically."""

    given_by: Literal["guardian", "child"]
    person: PersonRef
    rating: Score  # the meeting as a whole
    heard: Score  # did they feel heard
    comment: PrivateText | None = None


class StaffPost(msgspec.Struct, frozen=True, kw_only=True):
    """A person in a role on the case (baton holder, coordinator), and the service they act for."""

    person: PersonRef
    service: ServiceRef


class CoveringConsent(msgspec.Struct, frozen=True, kw_only=True):
    """A consent of the case, with only the services it still covers (lapsed ones left out)."""

    consent_id: UUID
    services: tuple[ServiceRef, ...]
    purposes: tuple[str, ...]  # cooperation, tvist, referral
    valid_from: datetime
    valid_until: datetime


class CaseRosterNoted(MeetingEvent, frozen=True, kw_only=True):
    """What the meeting service knows of a case, learned from the CASE stream: who takes part,
    who decides, and under which consents. Its aggregate is the case (`aggregate_id ==
    case_id`); each event is the whole roster, so the latest one is all a reader needs."""

    unit: ServiceRef  # the case's own unit: always covered, its leader decides
    level: Level
    closed: bool = False
    services: tuple[ServiceRef, ...] = ()  # on the case now, the unit first
    holder: StaffPost | None = None
    coordinator: StaffPost | None = None
    consents: tuple[CoveringConsent, ...] = ()
    legal_bases: tuple[ServiceRef, ...] = ()  # services taking part on a legal basis
