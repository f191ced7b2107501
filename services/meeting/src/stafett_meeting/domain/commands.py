"""What people ask of a meeting; each field is what a client sends.

The shape of a command is checked when it is made (or decoded from a request), so a request
with, say, no place and no video link is refused as invalid input (422) naming the field, before
any rule runs. The fields people send have the bounded shapes of `stafett_contracts.inputs`
(person and unit ids, free and short text, moments with their time zone); whether a date lies in
the case's window is the rules' to judge (`date-within-window`, meeting.py). `expected_version`
is optional everywhere: when given and stale, nothing is decided.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal
from uuid import UUID

import msgspec

from stafett_contracts.case import Level
from stafett_contracts.inputs import (
    TEXT_PATTERN,
    Moment,
    PersonId,
    PersonIds,
    PrivateFreeText,
    PrivateShortText,
    UnitId,
)
from stafett_contracts.meeting import DecisionKind, MeetingType, Score

Place = Annotated[
    str,
    msgspec.Meta(
        min_length=1,
        max_length=500,
        pattern=TEXT_PATTERN,
        description="where: a room, an address; 1-500 characters, at least one visible",
    ),
]
VideoLink = Annotated[
    str,
    msgspec.Meta(
        max_length=2_000,
        pattern=r"^https://[!-~]+(?![\s\S])",
        description="an https:// address, at most 2 000 printable characters, no space",
    ),
]
Agenda = Annotated[tuple[PrivateShortText, ...], msgspec.Meta(max_length=50)]


class Command(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    expected_version: Annotated[int, msgspec.Meta(ge=0)] | None = None


def _check_when(starts_at: datetime, ends_at: datetime) -> None:
    if ends_at <= starts_at:
        raise ValueError("ends_at must be after starts_at")


class ScheduleMeeting(Command, frozen=True, kw_only=True):
    """Call a meeting of the case. The leader is the caller unless named."""

    case_id: UUID
    meeting_type: MeetingType
    starts_at: Moment
    ends_at: Moment
    place: Place | None = None
    video_link: VideoLink | None = None
    leader: PersonId | None = None
    leader_service: UnitId | None = None
    agenda: Agenda = ()

    def __post_init__(self) -> None:
        _check_when(self.starts_at, self.ends_at)
        if self.place is None and self.video_link is None:
            raise ValueError("place or video_link: a meeting needs one of them, or both")
        if (self.leader is None) != (self.leader_service is None):
            raise ValueError("leader and leader_service go together: name both or neither")


class InviteParticipant(Command, frozen=True, kw_only=True):
    """Invite a guardian, the child, or a person from a service (covered by consent)."""

    person: PersonId
    kind: Literal["guardian", "child", "service"]
    service: UnitId | None = None

    def __post_init__(self) -> None:
        if self.kind == "service" and self.service is None:
            raise ValueError("service: a person from a service is invited with their service")
        if self.kind != "service" and self.service is not None:
            raise ValueError(f"service: a {self.kind} is invited without a service")


class RescheduleMeeting(Command, frozen=True, kw_only=True):
    """Move the meeting; the place and video link stay as they were unless given."""

    starts_at: Moment
    ends_at: Moment
    place: Place | None = None
    video_link: VideoLink | None = None
    reason: PrivateShortText | None = None

    def __post_init__(self) -> None:
        _check_when(self.starts_at, self.ends_at)


class CancelMeeting(Command, frozen=True, kw_only=True):
    reason: PrivateShortText


class RecordMeetingHeld(Command, frozen=True, kw_only=True):
    """The meeting took place: who attended (the leader and invitees), and when (default now)."""

    attended: Annotated[tuple[PersonId, ...], msgspec.Meta(min_length=1, max_length=100)]
    held_at: Moment | None = None


class RecordMinutes(Command, frozen=True, kw_only=True):
    """The meeting's entry in the relay log."""

    minutes: PrivateFreeText


class RecordDecision(Command, frozen=True, kw_only=True):
    """What the meeting decided about the case; the case service acts on it.

    `decision_id` is chosen by the client, so that a retry records the same decision once.
    Participants default to those who attended.
    """

    decision_id: UUID
    kind: DecisionKind
    to_level: Level | None = None
    reason: PrivateShortText
    participants: PersonIds = ()
    child_view: PrivateFreeText | None = None  # what the child thinks of it, heard

    def __post_init__(self) -> None:
        if self.kind == DecisionKind.MOVE_TO_LEVEL and self.to_level is None:
            raise ValueError("to_level: a decision to move to a level names the level")
        if self.kind != DecisionKind.MOVE_TO_LEVEL and self.to_level is not None:
            raise ValueError(f"to_level: a {self.kind.value} decision names no level")


class AssignActionItem(Command, frozen=True, kw_only=True):
    """Someone does something by a date; `item_id` is chosen by the client (retries)."""

    item_id: UUID
    description: PrivateFreeText
    owner: PersonId
    owner_service: UnitId | None = None  # None when a guardian owns it
    due_on: date


class CompleteActionItem(Command, frozen=True, kw_only=True):
    item_id: UUID
    note: PrivateFreeText | None = None


class GiveFeedback(Command, frozen=True, kw_only=True):
    """A guardian's or the child's experience of the meeting: who gives it is the caller."""

    rating: Score  # the meeting as a whole, 1 (poor) to 5 (very good)
    heard: Score  # did they feel heard, 1 to 5
    comment: PrivateFreeText | None = None


# The commands on an existing meeting, by the route that gives them.
ROUTES: dict[str, type[Command]] = {
    "invite": InviteParticipant,
    "reschedule": RescheduleMeeting,
    "cancel": CancelMeeting,
    "record-held": RecordMeetingHeld,
    "record-minutes": RecordMinutes,
    "record-decision": RecordDecision,
    "assign-action-item": AssignActionItem,
    "complete-action-item": CompleteActionItem,
    "give-feedback": GiveFeedback,
}
