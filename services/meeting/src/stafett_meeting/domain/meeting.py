"""The Meeting aggregate: state, `decide` (the rules), and `evolve` (how each event changes it).

`decide(state, command, context)` gets the meeting (None before it is scheduled) and a
`MeetingContext`: the meeting's id, its case as the case's events tell it now (the one fold of a
case, `stafett_contracts.casefile.CaseFile`) and the municipality directory, which names each
unit's leader. Who decides on the case (`CaseFile.decided_by`), which services a consent covers
(`CaseFile.coverage`) and where the case may move (`stafett_contracts.staircase`) are the
case's own rules, asked here, never copied.

| rule | holds |
|---|---|
| who-calls-meetings | the case's deciders (baton holder, coordinator, the leader the directory names for the case's unit) schedule meetings and record decisions; the meeting's leader or a decider run it (invite, reschedule, cancel, held, minutes, action items) |
| consent-covers-the-service | a person from a service is invited, leads, or owns an action item only if the case's unit is that service, a legal basis or a report to child welfare names it, or a consent covers it now for the meeting's purpose (`MeetingType.purposes`; TVIST: tvist; otherwise cooperation or referral): refused with 403 |
| case-is-open | a closed case gets no new meetings, invitations or decisions |
| meeting-not-cancelled, meeting-not-yet-held | a cancelled meeting takes nothing more; a held one is not invited to, moved or cancelled |
| meeting-held-first | minutes, decisions, action items and feedback follow the meeting |
| attended-were-invited | those who attended are the leader or invitees |
| held-once | a meeting is held once (the same record again changes nothing) |
| level-exits | a decision to move follows the staircase (`stafett_contracts.staircase`): 0 -> 1; 1 -> 2, 3; 2 -> 1, 3; 3 -> 1, 2; at level 0 the case does not continue |
| one-decision-per-id, one-item-per-id | a retry with the same id changes nothing; other content under the same id is refused |
| due-date-not-past | an action item is not due in the past |
| date-within-window | a meeting's start and end, when it was held, and an action item's due date lie in the case's window: not before the case was raised, at most `STAFETT_MAX_YEARS_AHEAD` years (default 5) ahead (`stafett_contracts.inputs`) |
| item-exists | only an assigned item is completed; its owner, the leader or a decider completes it (anyone else is refused first) |
| feedback-from-invited | feedback comes from an invited guardian or the invited child, once |

A viewer sees a meeting `as_seen`: folded from only the events the case's access rule lets them
see (`stafett_contracts.access`), so what is recorded while a service is not covered is never
shown to its people; a meeting whose scheduling they may not see is not shown at all.
"""  # noqa: E501 (a table reads best on one line per row)

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime
from functools import singledispatch
from typing import Any, Literal
from uuid import UUID

import msgspec

from stafett_contracts.access import Access, visible
from stafett_contracts.casefile import CaseFile
from stafett_contracts.identity import STAFF, Actor, Role
from stafett_contracts.inputs import DateWindow
from stafett_contracts.meeting import (
    ActionItemAssigned,
    ActionItemCompleted,
    CaseRosterNoted,
    DecisionKind,
    DecisionRecorded,
    FeedbackGiven,
    MeetingCancelled,
    MeetingEvent,
    MeetingHeld,
    MeetingRescheduled,
    MeetingScheduled,
    MeetingType,
    MinutesRecorded,
    ParticipantInvited,
)
from stafett_contracts.personal import SealedText
from stafett_contracts.staircase import LEVEL_EXITS, refusal_of_decision
from stafett_meeting.domain.commands import (
    AssignActionItem,
    CancelMeeting,
    Command,
    CompleteActionItem,
    GiveFeedback,
    InviteParticipant,
    RecordDecision,
    RecordMeetingHeld,
    RecordMinutes,
    RescheduleMeeting,
    ScheduleMeeting,
)
from stafett_runtime.domain import Context, NotAllowed, RuleViolation, envelope, require_within


class MeetingContext(Context, frozen=True, kw_only=True):
    """A meeting command's context: besides who acts and when, the meeting decided on (a new
    one's id is made by the application) and its case as the case's events tell it now."""

    meeting_id: UUID
    case: CaseFile

    @classmethod
    def of(cls, context: Context, *, meeting_id: UUID, case: CaseFile) -> MeetingContext:
        return cls(**msgspec.structs.asdict(context), meeting_id=meeting_id, case=case)


class NotCovered(NotAllowed):
    """A person's service is not covered by the case's consent (or a legal basis): 403."""


class Invitee(msgspec.Struct, frozen=True, kw_only=True):
    person: str
    kind: Literal["guardian", "child", "service"]
    service: str | None = None


class Decision(msgspec.Struct, frozen=True, kw_only=True):
    kind: DecisionKind
    to_level: int | None
    reason: SealedText | str  # free text, sealed as the event has it (str: an old event's)
    participants: tuple[str, ...]
    child_view: SealedText | str | None = None  # what the child thinks of it, beside it


class ActionItem(msgspec.Struct, frozen=True, kw_only=True):
    description: SealedText | str
    owner: str
    owner_service: str | None
    due_on: date
    completed: bool = False


class Meeting(msgspec.Struct, frozen=True, kw_only=True):
    id: UUID
    version: int
    case_id: UUID
    meeting_type: MeetingType
    starts_at: datetime
    ends_at: datetime
    place: str | None
    video_link: str | None
    leader: str
    leader_service: str
    agenda: tuple[SealedText | str, ...] = ()
    invited: tuple[Invitee, ...] = ()
    cancelled: bool = False
    held_at: datetime | None = None
    attended: tuple[str, ...] = ()
    minutes: tuple[SealedText | str, ...] = ()
    decisions: dict[UUID, Decision] = {}
    action_items: dict[UUID, ActionItem] = {}
    feedback_from: tuple[str, ...] = ()

    def led_by(self, actor: Actor) -> bool:
        return actor.role in STAFF and (actor.person, actor.service) == (
            self.leader,
            self.leader_service,
        )

    def invitee(self, person: str) -> Invitee | None:
        return next((i for i in self.invited if i.person == person), None)


# Evolve: state is only ever rebuilt by folding the meeting's events.


def fold(history: Iterable[MeetingEvent]) -> Meeting | None:
    state: Meeting | None = None
    for event in history:
        state = evolve(state, event)
    return state


def as_seen(access: Access, history: Iterable[MeetingEvent]) -> Meeting | None:
    """The meeting as a viewer with `access` to its case may see it: folded from the events
    made while they were covered (its version is that of the last of them); None if they may
    not see that it was scheduled."""
    seen = visible(access, history)
    if not seen or not isinstance(seen[0], MeetingScheduled):
        return None
    return fold(seen)


def evolve(state: Meeting | None, event: MeetingEvent) -> Meeting | None:
    if isinstance(event, CaseRosterNoted):
        # What the meeting service noted of a case while it followed the CASE stream (it reads
        # the case itself now): such a record is no meeting's, so its id is no meeting.
        return state
    if isinstance(event, MeetingScheduled):
        return Meeting(
            id=event.aggregate_id,
            version=event.aggregate_version,
            case_id=event.case_id,
            meeting_type=event.meeting_type,
            starts_at=event.starts_at,
            ends_at=event.ends_at,
            place=event.place,
            video_link=event.video_link,
            leader=event.leader,
            leader_service=event.leader_service,
            agenda=event.agenda,
        )
    if state is None:
        raise ValueError(f"{type(event).__name__} before the meeting's MeetingScheduled")
    return msgspec.structs.replace(_apply(event, state), version=event.aggregate_version)


@singledispatch
def _apply(event: MeetingEvent, state: Meeting) -> Meeting:
    raise TypeError(f"no evolve branch for {type(event).__name__}")


@_apply.register
def _invited(event: ParticipantInvited, state: Meeting) -> Meeting:
    invitee = Invitee(person=event.person, kind=event.kind, service=event.service)
    return msgspec.structs.replace(state, invited=(*state.invited, invitee))


@_apply.register
def _rescheduled(event: MeetingRescheduled, state: Meeting) -> Meeting:
    return msgspec.structs.replace(
        state,
        starts_at=event.starts_at,
        ends_at=event.ends_at,
        place=event.place,
        video_link=event.video_link,
    )


@_apply.register
def _cancelled(event: MeetingCancelled, state: Meeting) -> Meeting:
    return msgspec.structs.replace(state, cancelled=True)


@_apply.register
def _held(event: MeetingHeld, state: Meeting) -> Meeting:
    return msgspec.structs.replace(state, held_at=event.held_at, attended=event.attended)


@_apply.register
def _minutes(event: MinutesRecorded, state: Meeting) -> Meeting:
    return msgspec.structs.replace(state, minutes=(*state.minutes, event.minutes))


@_apply.register
def _decision_recorded(event: DecisionRecorded, state: Meeting) -> Meeting:
    decision = Decision(
        kind=event.kind,
        to_level=event.to_level,
        reason=event.reason,
        participants=event.participants,
        child_view=event.child_view,
    )
    return msgspec.structs.replace(
        state, decisions={**state.decisions, event.decision_id: decision}
    )


@_apply.register
def _item_assigned(event: ActionItemAssigned, state: Meeting) -> Meeting:
    item = ActionItem(
        description=event.description,
        owner=event.owner,
        owner_service=event.owner_service,
        due_on=event.due_on,
    )
    return msgspec.structs.replace(state, action_items={**state.action_items, event.item_id: item})


@_apply.register
def _item_completed(event: ActionItemCompleted, state: Meeting) -> Meeting:
    assigned = state.action_items.get(event.item_id)
    if assigned is None:  # assigned while the viewer may not see the meeting (`as_seen`)
        return state
    item = msgspec.structs.replace(assigned, completed=True)
    return msgspec.structs.replace(state, action_items={**state.action_items, event.item_id: item})


@_apply.register
def _feedback(event: FeedbackGiven, state: Meeting) -> Meeting:
    return msgspec.structs.replace(state, feedback_from=(*state.feedback_from, event.person))


# Decide.


def decide(state: Meeting | None, command: Command, context: MeetingContext) -> list[MeetingEvent]:
    """The events that record `command` on the meeting, or a refusal naming its rule."""
    if isinstance(command, ScheduleMeeting):
        return _schedule(state, command, context)
    if state is None:
        raise RuleViolation("meeting-exists", "there is no such meeting: schedule it first")
    return _rules(command, state, context)


def _schedule(
    state: Meeting | None, command: ScheduleMeeting, context: MeetingContext
) -> list[MeetingEvent]:
    actor, case = context.actor, context.case
    if not case.decided_by(actor, context.directory):
        raise NotAllowed(f"only {_DECIDERS} calls a meeting of the case")
    _require_open_case(case)
    leader = command.leader or actor.person
    leader_service = command.leader_service or actor.service
    if leader_service is None:  # a decider always acts for a service; kept for the type checker
        raise NotAllowed("a meeting is led by someone acting for a service")
    _require_covered(case, leader_service, command.meeting_type, context, "lead the meeting")
    _require_in_window(context, starts_at=command.starts_at, ends_at=command.ends_at)
    event = MeetingScheduled(
        **envelope(context, context.meeting_id, 1),
        case_id=case.id,
        meeting_type=command.meeting_type,
        starts_at=command.starts_at,
        ends_at=command.ends_at,
        place=command.place,
        video_link=command.video_link,
        leader=leader,
        leader_service=leader_service,
        agenda=command.agenda,
    )
    if state is not None:  # a retry of the same scheduling changes nothing
        if evolve(None, event) == msgspec.structs.replace(state, version=1):
            return []
        raise RuleViolation("meeting-already-scheduled", "this meeting was scheduled otherwise")
    return [event]


@singledispatch
def _rules(command: Command, state: Meeting, context: MeetingContext) -> list[MeetingEvent]:
    raise TypeError(f"no rules for {type(command).__name__}")


@_rules.register
def _invite(
    command: InviteParticipant, state: Meeting, context: MeetingContext
) -> list[MeetingEvent]:
    _require_runner(state, context, "invite to")
    _require_open_case(context.case)
    _require_upcoming(state)
    invitee = Invitee(person=command.person, kind=command.kind, service=command.service)
    already = state.invitee(command.person)
    if already == invitee:
        return []
    if already is not None:
        raise RuleViolation("invited-once", f"{command.person} is invited already, otherwise")
    if command.service is not None:
        _require_covered(context.case, command.service, state.meeting_type, context, "be invited")
    return [
        ParticipantInvited(
            **_next(state, context),
            person=command.person,
            kind=command.kind,
            service=command.service,
        )
    ]


@_rules.register
def _reschedule(
    command: RescheduleMeeting, state: Meeting, context: MeetingContext
) -> list[MeetingEvent]:
    _require_runner(state, context, "reschedule")
    _require_upcoming(state)
    place = command.place if command.place or command.video_link else state.place
    video_link = command.video_link if command.place or command.video_link else state.video_link
    if (command.starts_at, command.ends_at, place, video_link) == (
        state.starts_at,
        state.ends_at,
        state.place,
        state.video_link,
    ):
        return []
    _require_in_window(context, starts_at=command.starts_at, ends_at=command.ends_at)
    return [
        MeetingRescheduled(
            **_next(state, context),
            starts_at=command.starts_at,
            ends_at=command.ends_at,
            place=place,
            video_link=video_link,
            reason=command.reason,
        )
    ]


@_rules.register
def _cancel(command: CancelMeeting, state: Meeting, context: MeetingContext) -> list[MeetingEvent]:
    _require_runner(state, context, "cancel")
    if state.cancelled:
        return []
    _require_upcoming(state)
    return [MeetingCancelled(**_next(state, context), reason=command.reason)]


@_rules.register
def _record_held(
    command: RecordMeetingHeld, state: Meeting, context: MeetingContext
) -> list[MeetingEvent]:
    _require_runner(state, context, "record as held")
    _require_not_cancelled(state)
    if state.held_at is not None:
        if command.attended == state.attended and command.held_at in (None, state.held_at):
            return []  # a retry
        raise RuleViolation("held-once", "the meeting is recorded as held already")
    held_at = command.held_at or context.now
    if held_at > context.now:
        raise RuleViolation("held-in-the-past", "a meeting is recorded as held after it was")
    _require_in_window(context, held_at=held_at)
    invited = {state.leader, *(i.person for i in state.invited)}
    strangers = [person for person in command.attended if person not in invited]
    if strangers:
        raise RuleViolation(
            "attended-were-invited", f"not the leader or invited: {', '.join(strangers)}"
        )
    return [MeetingHeld(**_next(state, context), held_at=held_at, attended=command.attended)]


@_rules.register
def _record_minutes(
    command: RecordMinutes, state: Meeting, context: MeetingContext
) -> list[MeetingEvent]:
    _require_runner(state, context, "record minutes of")
    _require_held(state)
    if state.minutes and state.minutes[-1] == command.minutes:
        return []  # a retry
    return [MinutesRecorded(**_next(state, context), minutes=command.minutes)]


@_rules.register
def _record_decision(
    command: RecordDecision, state: Meeting, context: MeetingContext
) -> list[MeetingEvent]:
    if not context.case.decided_by(context.actor, context.directory):
        raise NotAllowed(f"only {_DECIDERS} records a decision about the case")
    _require_held(state)
    participants = command.participants or state.attended
    decision = Decision(
        kind=command.kind,
        to_level=command.to_level,
        reason=command.reason,
        participants=participants,
        child_view=command.child_view,
    )
    recorded = state.decisions.get(command.decision_id)
    if recorded == decision:
        return []
    if recorded is not None:
        raise RuleViolation("one-decision-per-id", "another decision has this decision_id")
    _require_open_case(context.case)
    refusal = refusal_of_decision(command.kind, context.case.level, command.to_level)
    if refusal is not None:
        raise RuleViolation(LEVEL_EXITS, refusal)
    return [
        DecisionRecorded(
            **_next(state, context),
            decision_id=command.decision_id,
            kind=command.kind,
            to_level=command.to_level,
            reason=command.reason,
            participants=participants,
            child_view=command.child_view,
        )
    ]


@_rules.register
def _assign_item(
    command: AssignActionItem, state: Meeting, context: MeetingContext
) -> list[MeetingEvent]:
    _require_runner(state, context, "assign action items of")
    _require_held(state)
    item = ActionItem(
        description=command.description,
        owner=command.owner,
        owner_service=command.owner_service,
        due_on=command.due_on,
    )
    assigned = state.action_items.get(command.item_id)
    if assigned is not None:
        if msgspec.structs.replace(assigned, completed=False) == item:
            return []
        raise RuleViolation("one-item-per-id", "another action item has this item_id")
    if command.due_on < context.now.date():
        raise RuleViolation("due-date-not-past", "an action item is not due in the past")
    _require_in_window(context, due_on=command.due_on)
    if command.owner_service is not None:
        _require_covered(
            context.case, command.owner_service, state.meeting_type, context, "own an action item"
        )
    return [
        ActionItemAssigned(
            **_next(state, context),
            item_id=command.item_id,
            description=command.description,
            owner=command.owner,
            owner_service=command.owner_service,
            due_on=command.due_on,
        )
    ]


@_rules.register
def _complete_item(
    command: CompleteActionItem, state: Meeting, context: MeetingContext
) -> list[MeetingEvent]:
    item = state.action_items.get(command.item_id)
    # Refused before anything is said of the item, even whether it exists.
    owns = item is not None and context.actor.person == item.owner
    if not (owns or _runs(state, context)):
        raise NotAllowed(f"only its owner, the meeting's leader or {_DECIDERS} completes it")
    if item is None:
        raise RuleViolation("item-exists", "no action item of this meeting has this item_id")
    if item.completed:
        return []
    return [
        ActionItemCompleted(**_next(state, context), item_id=command.item_id, note=command.note)
    ]


@_rules.register
def _give_feedback(
    command: GiveFeedback, state: Meeting, context: MeetingContext
) -> list[MeetingEvent]:
    actor = context.actor
    invitee = state.invitee(actor.person)
    kind: Literal["guardian", "child"] | None = (
        "guardian" if actor.role == Role.GUARDIAN else "child" if actor.role == Role.CHILD else None
    )
    if kind is None or invitee is None or invitee.kind != kind:
        raise NotAllowed("feedback comes from a guardian or the child invited to the meeting")
    _require_held(state)
    if actor.person in state.feedback_from:
        raise RuleViolation("feedback-from-invited", "feedback on this meeting is given already")
    return [
        FeedbackGiven(
            **_next(state, context),
            given_by=kind,
            person=actor.person,
            rating=command.rating,
            heard=command.heard,
            comment=command.comment,
        )
    ]


# What several rules share.

_DECIDERS = "the baton holder, the coordinator or the leader of the case's unit"


def _next(state: Meeting, context: Context) -> dict[str, Any]:
    return {**envelope(context, state.id, state.version + 1), "case_id": state.case_id}


def _runs(state: Meeting, context: MeetingContext) -> bool:
    """The meeting's leader or a decider of the case runs the meeting."""
    actor = context.actor
    return state.led_by(actor) or context.case.decided_by(actor, context.directory)


def _require_runner(state: Meeting, context: MeetingContext, doing: str) -> None:
    if not _runs(state, context):
        raise NotAllowed(f"only the meeting's leader or {_DECIDERS} may {doing} the meeting")


def _require_open_case(case: CaseFile) -> None:
    if case.closed:
        raise RuleViolation("case-is-open", "the case is closed: reopen it first")


def _require_not_cancelled(state: Meeting) -> None:
    if state.cancelled:
        raise RuleViolation("meeting-not-cancelled", "the meeting is cancelled")


def _require_upcoming(state: Meeting) -> None:
    _require_not_cancelled(state)
    if state.held_at is not None:
        raise RuleViolation("meeting-not-yet-held", "the meeting has been held already")


def _require_held(state: Meeting) -> None:
    _require_not_cancelled(state)
    if state.held_at is None:
        raise RuleViolation("meeting-held-first", "record the meeting as held first")


def _require_in_window(context: MeetingContext, **dates: date | datetime) -> None:
    window = DateWindow.of_case(context.case.raised_at, context.now)
    for field, value in dates.items():
        require_within(window, field, value)


def _require_covered(
    case: CaseFile, service: str, meeting_type: MeetingType, context: Context, doing: str
) -> None:
    if case.coverage(service, meeting_type.purposes, context.now) is None:
        purpose = "TVIST" if meeting_type == MeetingType.TVIST else "cooperation"
        raise NotCovered(
            f"consent-covers-the-service: no consent of the case covers {service} for "
            f"{purpose} now (nor a legal basis), so a person from {service} may not {doing}"
        )
