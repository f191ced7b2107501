"""A reminder and a follow-up break as aggregates of the NOTIFY stream (pure).

Each is recorded once and never changes: `ScheduleReminder` (given by the policy for an event
that sets a date) records `ReminderScheduled`, `DetectBreak` (given by the timers when a
deadline is missed) records `FollowUpBreakDetected`. Their ids are derived from what they are
about (`reminder_id`, `domain.rules.BreakFound.id`), so a command given again, by a redelivered
event, a second round or another replica, decides nothing.
"""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

import msgspec

from stafett_contracts import notify as n
from stafett_contracts.envelope import Event
from stafett_notify.domain.ids import derived_id
from stafett_notify.domain.rules import Cause, Reminder, Stage
from stafett_runtime.domain import Context, envelope


class ScheduleReminder(msgspec.Struct, frozen=True, kw_only=True):
    """Remind `recipient` of what `about` names (a measure, an action item) at `due_at`."""

    reminder_id: UUID
    case_id: UUID
    kind: n.ReminderKind
    about: UUID
    due_at: datetime
    recipient: str


def schedule(case_id: UUID, reminder: Reminder, set_by: UUID) -> ScheduleReminder:
    """The command for a reminder the event `set_by` sets, its id derived from what it reminds
    of and from that event: the same event delivered again schedules nothing new, while a date
    moved away and back again is scheduled anew, and so is the newest reminder of its subject."""
    return ScheduleReminder(
        reminder_id=derived_id(
            "reminder", case_id, reminder.kind, reminder.about, reminder.due_at, set_by
        ),
        case_id=case_id,
        kind=reminder.kind,
        about=reminder.about,
        due_at=reminder.due_at,
        recipient=reminder.recipient,
    )


def evolve_reminder(state: n.ReminderScheduled | None, event: Event) -> n.ReminderScheduled | None:
    return event if isinstance(event, n.ReminderScheduled) else state


def decide_reminder(
    state: n.ReminderScheduled | None, command: ScheduleReminder, context: Context
) -> list[Event]:
    if state is not None:
        return []  # scheduled already
    return [
        n.ReminderScheduled(
            **envelope(context, command.reminder_id, 1),
            case_id=command.case_id,
            kind=command.kind,
            about=command.about,
            due_at=command.due_at,
            recipient=command.recipient,
        )
    ]


class DetectBreak(msgspec.Struct, frozen=True, kw_only=True):
    """Record the follow-up break `break_id` in a case: its cause, and the stage it is at."""

    break_id: UUID
    case_id: UUID
    unit: str | None
    last_activity_at: datetime
    stage: Stage
    cause: Cause


def evolve_break(
    state: n.FollowUpBreakDetected | None, event: Event
) -> n.FollowUpBreakDetected | None:
    return event if isinstance(event, n.FollowUpBreakDetected) else state


def decide_break(
    state: n.FollowUpBreakDetected | None, command: DetectBreak, context: Context
) -> list[Event]:
    if state is not None:
        return []  # detected already
    return [
        n.FollowUpBreakDetected(
            **envelope(context, command.break_id, 1),
            case_id=command.case_id,
            unit=command.unit,
            last_activity_at=command.last_activity_at,
            stage=command.stage,
            cause=command.cause,
        )
    ]
