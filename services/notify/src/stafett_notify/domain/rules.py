"""Who is told what, for which event, and which timers are due (DOMAIN.md rules 6 and 8).

| event | who is told | reason |
|---|---|---|
| ConcernRaised | the unit's leader, as the municipality directory says | concern_raised |
| BatonHolderAppointed | the new holder | baton.appointed |
| BatonHandoverOffered | the receiver | baton.offered |
| BatonHandedOver | the previous holder | baton.accepted |
| BatonVacated | the leader of the case's unit, who appoints a new holder | baton.vacated |
| CoordinatorAssigned | the coordinator and the guardians, as the population register says | coordinator_assigned |
| MeasurePlanned | the responsible person (and two reminders) | measure_planned |
| MeasureEvaluated with a next date | (two reminders for the new date) | |
| BrightSpotNoted | the guardians, as the population register says | bright_spot |
| DecisionRefused | the person who recorded the meeting's decision the case refused | decision_refused |
| ConsentWithdrawn | every service that loses access; the leader of the case's unit | consent_withdrawn; consent_withdrawn.unit_leader |
| AgencyJoined, AgencyLeft, BatonHolderAppointed, BatonHandedOver, BatonVacated, ResponsibilityGroupFormed | the case's coordinator, unless they made the change | group.changed |
| MeetingScheduled | the leader, with an .ics | meeting.scheduled |
| ParticipantInvited | the invitee, with an .ics | meeting.scheduled |
| MeetingRescheduled / MeetingCancelled | the leader and every invitee, with an .ics | meeting.rescheduled / meeting.cancelled |
| ActionItemAssigned | the owner (and two reminders) | action_item_assigned |

A notification carries a reference and a link, never what happened in words (rule 8). The
guardians and the leaders come in as facts (`Concerned`): the policy asks the register and the
directory, never the events, who they are. Each person is told once per event, for the first
reason in the table that names them.
"""  # noqa: E501 (a table reads best on one line per row)

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Literal
from uuid import UUID

from stafett_contracts import case as c
from stafett_contracts import consent as k
from stafett_contracts import meeting as m
from stafett_contracts.casefile import CaseFile
from stafett_contracts.envelope import Event
from stafett_contracts.notify import ReminderKind, ReminderScheduled
from stafett_contracts.people import Directory
from stafett_notify.domain.facts import CaseFacts, MeetingFacts, Watch
from stafett_notify.domain.ids import derived_id


@dataclass(frozen=True)
class Invitation:
    """The calendar invitation a meeting notification carries."""

    meeting_id: UUID
    method: Literal["REQUEST", "CANCEL"]
    sequence: int
    starts_at: datetime
    ends_at: datetime
    video_link: str | None


@dataclass(frozen=True)
class Told:
    """One person (or service) to be told, why, and what caused it."""

    recipient: str
    reason: str
    case_id: UUID | None
    meeting_id: UUID | None = None
    invitation: Invitation | None = None


@dataclass(frozen=True)
class Reminder:
    kind: ReminderKind
    about: UUID
    due_at: datetime
    recipient: str


# The events whose notifications go to the child's guardians: only for these does the policy ask
# the population register.
TELLS_GUARDIANS: tuple[type[Event], ...] = (c.CoordinatorAssigned, c.BrightSpotNoted)

# Changes in who works on the case (the responsibility group and the baton), which its
# coordinator is told of.
GROUP_CHANGES: tuple[type[c.CaseEvent], ...] = (
    c.AgencyJoined,
    c.AgencyLeft,
    c.BatonHolderAppointed,
    c.BatonHandedOver,
    c.BatonVacated,
    c.ResponsibilityGroupFormed,
)


@dataclass(frozen=True)
class Concerned:
    """What the policy knows around an event: the case and the meeting as they stand with it,
    and the people."""

    meeting: MeetingFacts | None = None
    case: CaseFile | None = None  # the case, with a case event folded in; now, for a consent's
    guardians: tuple[str, ...] = ()  # of the case's child, from the population register
    directory: Directory = field(default_factory=Directory)  # units and their leaders
    consent_services: tuple[str, ...] = ()  # the services a withdrawn consent covered
    consent_case_id: UUID | None = None  # the case a consent event belongs to

    @property
    def unit_leader(self) -> str | None:
        """The leader the directory names for the case's unit (where the worry arose)."""
        return None if self.case is None else self.directory.leader_of(self.case.unit)


def reference(case_id: UUID | None, about: UUID) -> str:
    """A short reference the recipient can quote: never a name."""
    return f"STF-{(case_id or about).hex[:8].upper()}"


def link(base: str, case_id: UUID | None, meeting_id: UUID | None = None) -> str:
    if case_id is None:
        return base
    if meeting_id is None:
        return f"{base}/cases/{case_id}"
    return f"{base}/cases/{case_id}/meetings/{meeting_id}"


def start_of(day: date) -> datetime:
    return datetime.combine(day, time(), tzinfo=UTC)


def tell(event: Event, around: Concerned) -> list[Told]:
    """Who is told about `event`, and why (the table above): each person once, for the first
    reason that names them (a notification's id is derived from the event and its recipient)."""
    told = _told(event, around) + _leader_and_coordinator(event, around)
    first = {t.recipient: t for t in reversed(told)}
    return [t for t in told if first[t.recipient] is t]


def _leader_and_coordinator(event: Event, around: Concerned) -> list[Told]:
    """The unit leader is told when the baton falls vacant and when consent is withdrawn; the
    coordinator, of every change in who works on the case, unless they made it themselves."""
    case, leader = around.case, around.unit_leader
    if case is None:
        return []
    told: list[Told] = []
    if isinstance(event, c.BatonVacated) and leader:
        told.append(Told(recipient=leader, reason="baton.vacated", case_id=case.id))
    if isinstance(event, k.ConsentWithdrawn) and leader:
        told.append(Told(recipient=leader, reason="consent_withdrawn.unit_leader", case_id=case.id))
    coordinator = case.coordinator
    if (
        isinstance(event, GROUP_CHANGES)
        and coordinator is not None
        and coordinator.person != event.actor.person
    ):
        told.append(Told(recipient=coordinator.person, reason="group.changed", case_id=case.id))
    return told


def _told(event: Event, around: Concerned) -> list[Told]:
    def to(people: Sequence[str | None], reason: str, case_id: UUID) -> list[Told]:
        seen = dict.fromkeys(p for p in people if p)  # once each, in order
        return [Told(recipient=p, reason=reason, case_id=case_id) for p in seen]

    match event:
        case c.ConcernRaised():
            leader = around.directory.leader_of(event.unit)
            return to([leader], "concern_raised", event.aggregate_id)
        case c.BatonHolderAppointed():
            return to([event.holder], "baton.appointed", event.aggregate_id)
        case c.BatonHandoverOffered():
            return to([event.to_person], "baton.offered", event.aggregate_id)
        case c.BatonHandedOver():
            return to([event.from_person], "baton.accepted", event.aggregate_id)
        case c.CoordinatorAssigned():
            people = [event.coordinator, *around.guardians]
            return to(people, "coordinator_assigned", event.aggregate_id)
        case c.MeasurePlanned():
            return to([event.responsible], "measure_planned", event.aggregate_id)
        case c.BrightSpotNoted():
            return to(around.guardians, "bright_spot", event.aggregate_id)
        case c.DecisionRefused():  # its actor is who recorded the decision
            return to([event.actor.person], "decision_refused", event.aggregate_id)
        case k.ConsentWithdrawn():
            case_id = around.consent_case_id
            lost = event.services or around.consent_services
            return [] if case_id is None else to(lost, "consent_withdrawn", case_id)
        case m.ActionItemAssigned():
            return to([event.owner], "action_item_assigned", event.case_id)
        case (
            m.MeetingScheduled()
            | m.ParticipantInvited()
            | m.MeetingRescheduled()
            | m.MeetingCancelled()
        ):
            return _meeting(event, around.meeting)
    return []


def _meeting(event: m.MeetingEvent, meeting: MeetingFacts | None) -> list[Told]:
    if meeting is None or meeting.starts_at is None or meeting.ends_at is None:
        return []
    if isinstance(event, m.ParticipantInvited):
        if meeting.cancelled:
            return []
        people, reason = [event.person], "meeting.scheduled"
    elif isinstance(event, m.MeetingScheduled):
        people, reason = [event.leader], "meeting.scheduled"
    elif isinstance(event, m.MeetingRescheduled):
        people, reason = meeting.everyone, "meeting.rescheduled"
    else:
        people, reason = meeting.everyone, "meeting.cancelled"
    invitation = Invitation(
        meeting_id=event.aggregate_id,
        method="CANCEL" if meeting.cancelled else "REQUEST",
        sequence=meeting.sequence,
        starts_at=meeting.starts_at,
        ends_at=meeting.ends_at,
        video_link=meeting.video_link,
    )
    return [
        Told(
            recipient=person,
            reason=reason,
            case_id=event.case_id,
            meeting_id=event.aggregate_id,
            invitation=invitation,
        )
        for person in dict.fromkeys(people)
    ]


def reminders_for(event: Event, lead: timedelta) -> list[Reminder]:
    """The reminders an event sets: one `lead` before the date, one when the day has passed."""
    match event:
        case c.MeasurePlanned():
            return _pair(event.measure_id, event.responsible, event.evaluation_date, lead, False)
        case m.ActionItemAssigned():
            return _pair(event.item_id, event.owner, event.due_on, lead, True)
    return []


def reminders_after_evaluation(
    event: c.MeasureEvaluated, case: CaseFile, lead: timedelta
) -> list[Reminder]:
    """A measure evaluated with a next date is reminded of again, for that date."""
    planned = case.measures.get(event.measure_id)
    if event.next_evaluation_date is None or planned is None:
        return []
    return _pair(event.measure_id, planned.responsible, event.next_evaluation_date, lead, False)


def _pair(about: UUID, owner: str, on: date, lead: timedelta, item: bool) -> list[Reminder]:
    kinds = (
        (ReminderKind.ACTION_ITEM_APPROACHING, ReminderKind.ACTION_ITEM_PASSED)
        if item
        else (ReminderKind.EVALUATION_APPROACHING, ReminderKind.EVALUATION_PASSED)
    )
    return [
        Reminder(kinds[0], about, start_of(on) - lead, owner),
        Reminder(kinds[1], about, start_of(on + timedelta(days=1)), owner),
    ]


def lead_of(directory: Directory) -> timedelta:
    """How long before an evaluation or due date its reminder comes, as the municipality says."""
    return timedelta(days=directory.deadlines.reminder_lead_days)


Stage = Literal["baton_holder", "unit_leader"]
Cause = Literal[
    "inactivity", "evaluation_overdue", "action_item_overdue", "decision_overdue", "minutes_overdue"
]


@dataclass(frozen=True)
class BreakFound:
    """A follow-up break, and whom to tell. Its `id` is derived, so it is detected once."""

    id: UUID
    case_id: UUID
    unit: str | None
    last_activity_at: datetime
    stage: Stage
    cause: Cause
    recipient: str | None


@dataclass(frozen=True)
class ReminderDue:
    reminder: ReminderScheduled


def due(watch: Watch, now: datetime, directory: Directory) -> list[ReminderDue | BreakFound]:
    """What is due at `now` and has not happened yet, judged from the events and the
    municipality's deadlines (`Directory.deadlines`, at each case's level); a break's unit
    leader is the one the municipality directory names now."""
    found: list[ReminderDue | BreakFound] = []
    newest = _newest_reminders(watch)
    for reminder in watch.reminders.values():
        if reminder.event_id in watch.triggers or reminder.due_at > now:
            continue
        case = watch.cases.get(reminder.case_id)
        if case is not None and not case.closed and _still_due(case, reminder, newest):
            found.append(ReminderDue(reminder))
    for case_id, case in watch.cases.items():
        if not case.closed and case.last_activity_at is not None:
            found += _breaks(watch, case_id, case, now, directory)
    return found


def _breaks(
    watch: Watch, case_id: UUID, case: CaseFacts, now: datetime, directory: Directory
) -> list[BreakFound]:
    assert case.last_activity_at is not None
    leader = directory.leader_of(case.unit)
    deadlines = directory.deadlines.at_level(case.case.level)
    # (cause, what it is about, since when it is a break); new activity starts a new inactivity.
    overdue: list[tuple[Cause, object, datetime]] = [
        (
            "inactivity",
            case.last_activity_at,
            case.last_activity_at + timedelta(days=deadlines.inactivity_days),
        )
    ]
    grace = timedelta(days=1 + deadlines.evaluation_overdue_days)
    overdue += [
        ("evaluation_overdue", f"{about}@{d.on}", start_of(d.on + grace))
        for about, d in case.measures.items()
    ]
    overdue += [
        ("action_item_overdue", f"{about}@{d.on}", start_of(d.on + timedelta(days=1)))
        for about, d in case.items.items()
    ]
    if case.raised and case.case.level == 0 and not case.decided_at_level_0:
        decide_by = case.case.raised_at + timedelta(days=deadlines.decision_days)
        overdue.append(("decision_overdue", "level-0", decide_by))
    overdue += [
        ("minutes_overdue", meeting_id, held_at + timedelta(days=deadlines.minutes_days))
        for meeting_id, held_at in case.held_without_minutes.items()
    ]
    escalation = timedelta(days=deadlines.escalation_days)
    found = []
    for cause, about, since in overdue:
        stages: tuple[tuple[Stage, datetime, str | None], ...] = (
            ("baton_holder", since, case.holder or leader),
            ("unit_leader", since + escalation, leader),
        )
        for stage, at, recipient in stages:
            break_id = derived_id("break", case_id, cause, about, stage)
            if at <= now and break_id not in watch.breaks:
                found.append(
                    BreakFound(
                        id=break_id,
                        case_id=case_id,
                        unit=case.unit,
                        last_activity_at=case.last_activity_at,
                        stage=stage,
                        cause=cause,
                        recipient=recipient,
                    )
                )
    return found


def _newest_reminders(watch: Watch) -> set[UUID]:
    """The reminder last scheduled of each kind about each thing: a new date replaces the one
    before, whatever the reminders' lead was when each was set."""
    newest: dict[tuple[ReminderKind, UUID], ReminderScheduled] = {}
    for reminder in watch.reminders.values():
        key = (reminder.kind, reminder.about)
        if key not in newest or reminder.occurred_at >= newest[key].occurred_at:
            newest[key] = reminder
    return {r.aggregate_id for r in newest.values()}


def _still_due(case: CaseFacts, reminder: ReminderScheduled, newest: set[UUID]) -> bool:
    """A reminder lapses when what it is about was done or moved to another date."""
    if reminder.kind in (ReminderKind.EVALUATION_APPROACHING, ReminderKind.EVALUATION_PASSED):
        current = case.measures.get(reminder.about)
    else:
        current = case.items.get(reminder.about)
    if current is None:
        return False
    if reminder.kind in (ReminderKind.EVALUATION_PASSED, ReminderKind.ACTION_ITEM_PASSED):
        return reminder.due_at == start_of(current.on + timedelta(days=1))
    return reminder.aggregate_id in newest and reminder.due_at < start_of(current.on)
