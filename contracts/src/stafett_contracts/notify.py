"""Events of notifications: the Notification aggregate, owned by the notify service.

A notification tells one person, over one channel, that something in a case needs them. It never
carries what happened in words that could identify the child (DOMAIN.md rule 8): it carries a
kind, a reference and a link; the recipient's address stays in the notify service's directory.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, ClassVar, Literal
from uuid import UUID

import msgspec

from stafett_contracts.envelope import Event, PersonRef, PrivateText, ServiceRef, Text


class NotifyEvent(Event, frozen=True, kw_only=True):
    CONTEXT: ClassVar[str] = "notify"


class Channel(StrEnum):
    EMAIL = "email"
    WEBHOOK = "webhook"


Reference = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
Link = Annotated[str, msgspec.Meta(min_length=1, max_length=2_000)]
Reason = Annotated[str, msgspec.Meta(min_length=1, max_length=100, pattern=r"^[a-z0-9_.-]+$")]


class NotificationRequested(NotifyEvent, frozen=True, kw_only=True):
    """Someone is to be told. `reason` names the rule (`concern_raised`, `reminder.overdue`, ...);
    `trigger` is the event that caused it, so the same trigger never notifies twice."""

    case_id: UUID | None = None  # None for a notification about no single case
    recipient: PersonRef  # a person, or for a webhook the integrator's service id
    channel: Channel
    reason: Reason
    trigger: UUID  # the event id that caused the notification
    reference: Reference  # a short reference the recipient can quote (never a name)
    link: Link  # where to read more, behind authentication
    calendar: bool = False  # an .ics invitation is attached (meetings)


class NotificationSent(NotifyEvent, frozen=True, kw_only=True):
    """The notification was delivered on its channel, after this many attempts."""

    channel: Channel
    attempts: Annotated[int, msgspec.Meta(ge=1)]
    sent_at: datetime


class NotificationFailed(NotifyEvent, frozen=True, kw_only=True):
    """Every attempt failed; the last error says why. Visible in the read models."""

    channel: Channel
    attempts: Annotated[int, msgspec.Meta(ge=1)]
    error: Text


class ReminderKind(StrEnum):
    EVALUATION_APPROACHING = "evaluation_approaching"
    EVALUATION_PASSED = "evaluation_passed"
    ACTION_ITEM_APPROACHING = "action_item_approaching"
    ACTION_ITEM_PASSED = "action_item_passed"


class ReminderScheduled(NotifyEvent, frozen=True, kw_only=True):
    """A reminder that fires at `due_at` unless what it is about is done first."""

    case_id: UUID
    kind: ReminderKind
    about: UUID  # the measure or action item
    due_at: datetime
    recipient: PersonRef


class FollowUpBreakDetected(NotifyEvent, frozen=True, kw_only=True):
    """A deadline of the municipality's missed (DOMAIN.md rule 6): no activity on a case, a
    measure past its evaluation, an action item overdue, no decision at level 0, or no minutes
    after a meeting, for too long. First the baton holder is told, then, if still nothing, the
    unit leader."""

    case_id: UUID
    unit: ServiceRef | None = None
    last_activity_at: datetime
    stage: Literal["baton_holder", "unit_leader"]
    cause: Literal[
        "inactivity",
        "evaluation_overdue",
        "action_item_overdue",
        "decision_overdue",
        "minutes_overdue",
    ] = "inactivity"
    # Never written: a notification and its events carry no free text about the child (rule 8).
    # Kept for the contract's evolution; were one ever written, it would be sealed text.
    note: PrivateText | None = None


class CalendarInvitationPrepared(NotifyEvent, frozen=True, kw_only=True):
    """The calendar invitation (.ics) a meeting notification carries, as of the meeting event
    that caused it: the sender builds the attachment from this alone (no place, no agenda).
    `sequence` grows with each change of the meeting, so calendars replace the earlier one."""

    meeting_id: UUID
    method: Literal["REQUEST", "CANCEL"]
    sequence: Annotated[int, msgspec.Meta(ge=0)]
    starts_at: datetime
    ends_at: datetime
    video_link: Link | None = None  # the place is behind the link: it may be a family's home


class DeliveryAttempted(NotifyEvent, frozen=True, kw_only=True):
    """Recorded before each send. An attempt with no outcome after it was interrupted (a crash
    mid-send): it is never sent again blindly, so nothing reaches anyone twice."""

    channel: Channel
    attempt: Annotated[int, msgspec.Meta(ge=1)]
    started_at: datetime


class DeliveryAttemptFailed(NotifyEvent, frozen=True, kw_only=True):
    """One attempt failed; the next one waits until `retry_at` (backoff)."""

    channel: Channel
    attempt: Annotated[int, msgspec.Meta(ge=1)]
    error: Text
    retry_at: datetime
