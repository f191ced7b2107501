"""What the notify service knows about cases and meetings, folded from their events.

`MeetingFacts` answers "who is concerned" when a meeting event arrives (the policy folds the
meeting up to that event; a case it reads with the one fold of a case,
`stafett_contracts.casefile`). `CaseFacts` is what the timers need of a case: the case itself,
folded with that same fold (its unit, baton holder, whether it is closed, its measures and their
evaluation dates), and what its meetings add (their open action items) and when anything last
happened on either. `Watch` holds what the timers and the read model need, folded from the CASE,
MEETING and NOTIFY streams: it is rebuilt from events after a restart, so no timer lives only in
memory.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from uuid import UUID

from stafett_contracts import case as c
from stafett_contracts import meeting as m
from stafett_contracts import notify as n
from stafett_contracts.casefile import CaseFile, evolve
from stafett_contracts.envelope import Event


@dataclass
class Due:
    """A measure's evaluation or an action item: who answers for it, and by when."""

    owner: str
    on: date


@dataclass
class CaseFacts:
    case: CaseFile  # `CaseFile.unknown` until its ConcernRaised is read
    last_activity_at: datetime | None = None
    items: dict[UUID, Due] = field(default_factory=dict)  # open action items of its meetings
    decided_at_level_0: bool = False  # closed, continued or moved on from level 0
    held_without_minutes: dict[UUID, datetime] = field(default_factory=dict)  # meeting: held at

    @property
    def unit(self) -> str | None:
        return self.case.unit or None

    @property
    def holder(self) -> str | None:
        return self.case.holder.person if self.case.holder else None

    @property
    def closed(self) -> bool:
        return self.case.closed

    @property
    def raised(self) -> bool:
        """Its ConcernRaised has been read (a meeting's events may come first)."""
        return self.case.version > 0

    @property
    def measures(self) -> dict[UUID, Due]:
        """The measures whose evaluation is due, by whom and when."""
        return {
            measure_id: Due(measure.responsible, measure.evaluation_date)
            for measure_id, measure in self.case.measures.items()
            if not (measure.ended or measure.to_end)
        }

    def take_in(self, event: Event) -> None:
        if self.last_activity_at is None or event.occurred_at > self.last_activity_at:
            self.last_activity_at = event.occurred_at
        match event:
            case c.CaseEvent():
                self.case = evolve(self.case, event)
                self.decided_at_level_0 |= _decides_at_level_0(event)
            case m.MeetingHeld():
                self.held_without_minutes[event.aggregate_id] = event.held_at
            case m.MinutesRecorded():
                self.held_without_minutes.pop(event.aggregate_id, None)
            case m.ActionItemAssigned():
                self.items[event.item_id] = Due(event.owner, event.due_on)
            case m.ActionItemCompleted():
                self.items.pop(event.item_id, None)


def _decides_at_level_0(event: c.CaseEvent) -> bool:
    """The level-0 decision: continue at level 0, move on from it, or close the case there."""
    match event:
        case c.LevelDecided():
            return event.level == 0
        case c.Escalated():
            return event.from_level == 0
        case c.CaseClosed():
            return event.at_level == 0
    return False


@dataclass
class MeetingFacts:
    """A meeting as its events leave it; `sequence` counts the changes an invitee has seen.
    Its place is not kept: it may be a family's home, and it stays behind the link."""

    leader: str | None = None
    invitees: list[str] = field(default_factory=list)
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    video_link: str | None = None
    sequence: int = 0
    cancelled: bool = False

    def take_in(self, event: Event) -> None:
        match event:
            case m.MeetingScheduled():
                self.leader = event.leader
                self.starts_at, self.ends_at = event.starts_at, event.ends_at
                self.video_link = event.video_link
            case m.ParticipantInvited():
                if event.person not in self.invitees and event.person != self.leader:
                    self.invitees.append(event.person)
            case m.MeetingRescheduled():
                self.starts_at, self.ends_at = event.starts_at, event.ends_at
                self.video_link = event.video_link
                self.sequence += 1
            case m.MeetingCancelled():
                self.cancelled = True
                self.sequence += 1

    @property
    def everyone(self) -> list[str]:
        return ([self.leader] if self.leader else []) + self.invitees


@dataclass
class NotificationView:
    """One notification as the read model shows it: never its message, only its outline."""

    id: UUID
    case_id: UUID | None
    recipient: str
    channel: str
    reason: str
    reference: str
    link: str
    requested_at: datetime
    status: str = "requested"  # requested, sending, retrying, sent, failed
    attempts: int = 0
    retry_at: datetime | None = None
    sent_at: datetime | None = None
    error: str | None = None


@dataclass
class Watch:
    """Everything the timers and the read model need, folded from events in any stream order."""

    cases: dict[UUID, CaseFacts] = field(default_factory=dict)
    reminders: dict[UUID, n.ReminderScheduled] = field(default_factory=dict)
    breaks: set[UUID] = field(default_factory=set)
    triggers: set[UUID] = field(default_factory=set)  # events that caused a notification
    notifications: dict[UUID, NotificationView] = field(default_factory=dict)

    def take_in(self, event: Event) -> None:
        match event:
            case c.CaseEvent():
                self._case(event.aggregate_id).take_in(event)
            case m.MeetingEvent():
                self._case(event.case_id).take_in(event)
            case n.ReminderScheduled():
                self.reminders[event.aggregate_id] = event
            case n.FollowUpBreakDetected():
                self.breaks.add(event.aggregate_id)
            case n.NotificationRequested():
                self.triggers.add(event.trigger)
                self.notifications[event.aggregate_id] = NotificationView(
                    id=event.aggregate_id,
                    case_id=event.case_id,
                    recipient=event.recipient,
                    channel=str(event.channel),
                    reason=event.reason,
                    reference=event.reference,
                    link=event.link,
                    requested_at=event.occurred_at,
                )
            case n.DeliveryAttempted():
                self._update(event.aggregate_id, status="sending", attempts=event.attempt)
            case n.DeliveryAttemptFailed():
                self._update(
                    event.aggregate_id,
                    status="retrying",
                    error=event.error,
                    retry_at=event.retry_at,
                )
            case n.NotificationSent():
                self._update(event.aggregate_id, status="sent", sent_at=event.sent_at, error=None)
            case n.NotificationFailed():
                self._update(event.aggregate_id, status="failed", error=event.error)

    def _case(self, case_id: UUID) -> CaseFacts:
        return self.cases.setdefault(case_id, CaseFacts(case=CaseFile.unknown(case_id)))

    def _update(self, notification_id: UUID, **changes: object) -> None:
        view = self.notifications.get(notification_id)
        if view is not None:
            for name, value in changes.items():
                setattr(view, name, value)

    def pending(self) -> list[NotificationView]:
        return [v for v in self.notifications.values() if v.status not in ("sent", "failed")]
