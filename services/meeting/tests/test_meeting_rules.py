"""The meeting's rules, each as given (a meeting's history, its case as the case's events tell it
and the municipality directory) / when (a command) / then (events or a refusal naming its rule);
and what a reader is shown of a meeting (`as_seen`).

Pure: no NATS, no clock. Each test is named after the rule it shows (domain/meeting.py).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import msgspec
import pytest

from stafett_contracts.access import COVERED_NOW, Access
from stafett_contracts.case import (
    BatonHolderAppointed,
    CaseClosed,
    CaseEvent,
    ConcernRaised,
    ConsentNoted,
    Escalated,
    LegalBasisNoted,
)
from stafett_contracts.casefile import CaseFile, Period
from stafett_contracts.casefile import fold as fold_case
from stafett_contracts.identity import Actor, Role
from stafett_contracts.inputs import MAX_YEARS_AHEAD
from stafett_contracts.meeting import (
    ActionItemAssigned,
    ActionItemCompleted,
    DecisionKind,
    DecisionRecorded,
    FeedbackGiven,
    MeetingEvent,
    MeetingHeld,
    MeetingRescheduled,
    MeetingScheduled,
    MeetingType,
    MinutesRecorded,
    ParticipantInvited,
)
from stafett_meeting.domain import Meeting, MeetingContext, as_seen, decide, fold
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
from stafett_meeting.domain.meeting import NotCovered
from stafett_runtime.domain import NotAllowed, RuleViolation
from stafett_runtime.testing import TEST_DIRECTORY

NOW = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
UNIT = "skole-lia"
HOLDER = Actor(person="laerer-1", role=Role.EMPLOYEE, service=UNIT)
LEADER = Actor(person="rektor-1", role=Role.UNIT_LEADER, service=UNIT)  # as the directory says
COLLEAGUE = Actor(person="laerer-2", role=Role.EMPLOYEE, service=UNIT)
PPT_WORKER = Actor(person="ppt-1", role=Role.EMPLOYEE, service="ppt")
GUARDIAN = Actor(person="mor-1", role=Role.GUARDIAN)
CHILD = Actor(person="barn-1", role=Role.CHILD)
CASE = UUID("00000000-0000-4000-8000-0000000ca5e0")
CONSENT = UUID("00000000-0000-4000-8000-00000000c0c0")
CONSENT_UNTIL = NOW + timedelta(days=300)
RAISED_AT = NOW - timedelta(days=30)


def on_the_case(version: int) -> dict[str, Any]:
    """The envelope of the case's event at `version`, as the case service wrote it."""
    return {
        "event_id": uuid4(),
        "aggregate_id": CASE,
        "aggregate_version": version,
        "occurred_at": RAISED_AT,
        "actor": HOLDER,
        "correlation_id": "case",
    }


# A case at level 0, its baton held by a teacher, PPT covered by the guardians' consent; and the
# same case once it went to level 1.
AT_LEVEL_0: list[CaseEvent] = [
    ConcernRaised(**on_the_case(1), child_id=uuid4(), unit=UNIT, concern="Uro"),
    ConsentNoted(
        **on_the_case(2),
        consent_id=CONSENT,
        services=(UNIT, "ppt"),
        purposes=("cooperation",),
        valid_from=RAISED_AT,
        valid_until=CONSENT_UNTIL,
    ),
    BatonHolderAppointed(**on_the_case(3), holder=HOLDER.person, service=UNIT),
]
AT_LEVEL_1 = [*AT_LEVEL_0, Escalated(**on_the_case(4), from_level=0, to_level=1, reason="Tiltak")]


def the_case(history: list[CaseEvent] = AT_LEVEL_1) -> CaseFile:
    case = fold_case(history)
    assert case is not None
    return case


SCHEDULE = ScheduleMeeting(
    case_id=CASE,
    meeting_type=MeetingType.COOPERATION,
    starts_at=NOW + timedelta(days=7),
    ends_at=NOW + timedelta(days=7, hours=1),
    place="Møterom 2",
    agenda=("Status", "Videre tiltak"),
)


class Given:
    """A meeting's history, built by deciding commands one after another, on its case."""

    def __init__(self, case: CaseFile | None = None) -> None:
        self.meeting_id = uuid4()
        self.case = case or the_case()
        self.events: list[MeetingEvent] = []

    @property
    def state(self) -> Meeting | None:
        return fold(self.events)

    def given(self, actor: Actor, command: Command, now: datetime = NOW) -> Given:
        self.events += self.when(actor, command, now)
        return self

    def when(self, actor: Actor, command: Command, now: datetime = NOW) -> list[MeetingEvent]:
        context = MeetingContext(
            actor=actor,
            now=now,
            correlation_id="test",
            directory=TEST_DIRECTORY,
            meeting_id=self.meeting_id,
            case=self.case,
        )
        return decide(self.state, command, context)

    def scheduled(self) -> Given:
        return self.given(HOLDER, SCHEDULE)

    def held(self, *attended: str) -> Given:
        invite = InviteParticipant(person=GUARDIAN.person, kind="guardian")
        self.scheduled().given(HOLDER, invite)
        held = RecordMeetingHeld(attended=attended or (HOLDER.person, GUARDIAN.person))
        return self.given(HOLDER, held, NOW + timedelta(days=7, hours=1))


def decision(kind: DecisionKind, to_level: int | None = None) -> RecordDecision:
    return RecordDecision(
        decision_id=UUID("00000000-0000-4000-8000-0000000dec15"),
        kind=kind,
        to_level=to_level,
        reason="Samarbeid med PPT trengs.",
    )


AFTER = NOW + timedelta(days=8)


# who-calls-meetings


def test_given_a_baton_holder_when_they_schedule_then_they_lead_the_meeting() -> None:
    (event,) = Given().when(HOLDER, SCHEDULE)
    assert isinstance(event, MeetingScheduled)
    assert (event.case_id, event.leader, event.leader_service) == (CASE, HOLDER.person, UNIT)
    assert (event.aggregate_version, event.place, event.agenda) == (1, "Møterom 2", SCHEDULE.agenda)


def test_given_the_unit_leader_when_they_schedule_with_a_ppt_leader_then_ppt_leads() -> None:
    command = msgspec.structs.replace(SCHEDULE, leader=PPT_WORKER.person, leader_service="ppt")
    (event,) = Given().when(LEADER, command)
    assert isinstance(event, MeetingScheduled)
    assert (event.leader, event.leader_service) == (PPT_WORKER.person, "ppt")


def test_given_a_colleague_who_decides_nothing_when_they_schedule_then_not_allowed() -> None:
    with pytest.raises(NotAllowed):
        Given().when(COLLEAGUE, SCHEDULE)


def test_given_a_unit_leader_token_the_directory_does_not_name_when_scheduling_then_refused() -> (
    None
):
    claims_to_lead = Actor(person=COLLEAGUE.person, role=Role.UNIT_LEADER, service=UNIT)
    assert TEST_DIRECTORY.leader_of(UNIT) == LEADER.person
    with pytest.raises(NotAllowed, match="leader of the case's unit"):
        Given().when(claims_to_lead, SCHEDULE)


def test_given_the_leader_the_directory_names_when_acting_for_another_unit_then_refused() -> None:
    elsewhere = Actor(person=LEADER.person, role=Role.UNIT_LEADER, service="ppt")
    with pytest.raises(NotAllowed):
        Given().when(elsewhere, SCHEDULE)


def test_given_a_scheduled_meeting_when_scheduled_again_alike_then_nothing_new() -> None:
    assert Given().scheduled().when(HOLDER, SCHEDULE) == []


def test_given_a_meeting_when_a_colleague_invites_then_not_allowed() -> None:
    invite = InviteParticipant(person=GUARDIAN.person, kind="guardian")
    with pytest.raises(NotAllowed):
        Given().scheduled().when(COLLEAGUE, invite)


# consent-covers-the-service


def test_given_ppt_covered_when_a_ppt_worker_is_invited_then_they_are() -> None:
    invite = InviteParticipant(person=PPT_WORKER.person, kind="service", service="ppt")
    (event,) = Given().scheduled().when(HOLDER, invite)
    assert isinstance(event, ParticipantInvited)
    assert (event.person, event.kind, event.service, event.aggregate_version) == (
        PPT_WORKER.person,
        "service",
        "ppt",
        2,
    )


def test_given_bup_not_covered_when_a_bup_worker_is_invited_then_refused_naming_the_rule() -> None:
    invite = InviteParticipant(person="bup-1", kind="service", service="bup")
    with pytest.raises(NotCovered, match=r"consent-covers-the-service: .* bup"):
        Given().scheduled().when(HOLDER, invite)


def test_given_a_consent_that_has_ended_when_ppt_is_invited_then_refused() -> None:
    invite = InviteParticipant(person=PPT_WORKER.person, kind="service", service="ppt")
    meeting = Given().scheduled()
    with pytest.raises(NotCovered):
        meeting.when(HOLDER, invite, CONSENT_UNTIL)


def test_given_only_a_cooperation_consent_when_ppt_is_invited_to_tvist_then_refused() -> None:
    tvist = msgspec.structs.replace(SCHEDULE, meeting_type=MeetingType.TVIST)
    invite = InviteParticipant(person=PPT_WORKER.person, kind="service", service="ppt")
    with pytest.raises(NotCovered, match="TVIST"):
        Given().given(HOLDER, tvist).when(HOLDER, invite)


def test_given_a_legal_basis_for_child_welfare_when_invited_then_covered() -> None:
    basis = LegalBasisNoted(**on_the_case(5), service="barnevern", legal_basis="bvl § 2-1")
    invite = InviteParticipant(person="bv-1", kind="service", service="barnevern")
    assert len(Given(the_case([*AT_LEVEL_1, basis])).scheduled().when(HOLDER, invite)) == 1


def test_given_bup_not_covered_when_a_bup_worker_is_to_lead_then_refused() -> None:
    command = msgspec.structs.replace(SCHEDULE, leader="bup-1", leader_service="bup")
    with pytest.raises(NotCovered):
        Given().when(LEADER, command)


def test_given_bup_not_covered_when_a_bup_worker_is_to_own_an_action_item_then_refused() -> None:
    item = AssignActionItem(
        item_id=uuid4(),
        description="Vurdere utredning",
        owner="bup-1",
        owner_service="bup",
        due_on=date(2026, 12, 1),
    )
    with pytest.raises(NotCovered):
        Given().held().when(HOLDER, item, AFTER)


# invited-once, and the shape of an invitation


def test_given_an_invited_guardian_when_invited_again_then_nothing_new() -> None:
    invite = InviteParticipant(person=GUARDIAN.person, kind="guardian")
    assert Given().scheduled().given(HOLDER, invite).when(HOLDER, invite) == []


def test_given_an_invited_guardian_when_invited_as_staff_then_refused() -> None:
    meeting = Given().scheduled().given(HOLDER, InviteParticipant(person="x-1", kind="guardian"))
    with pytest.raises(RuleViolation, match="invited already") as refused:
        meeting.when(HOLDER, InviteParticipant(person="x-1", kind="service", service=UNIT))
    assert refused.value.rule == "invited-once"


def test_when_a_service_invitation_names_no_service_then_the_command_is_invalid() -> None:
    with pytest.raises(ValueError, match="service"):
        InviteParticipant(person=PPT_WORKER.person, kind="service")


def test_when_a_meeting_has_neither_place_nor_video_link_then_the_command_is_invalid() -> None:
    with pytest.raises(ValueError, match="place or video_link"):
        msgspec.structs.replace(SCHEDULE, place=None)


def test_when_a_meeting_ends_before_it_starts_then_the_command_is_invalid() -> None:
    with pytest.raises(ValueError, match="ends_at"):
        msgspec.structs.replace(SCHEDULE, ends_at=SCHEDULE.starts_at)


def test_when_a_video_link_is_not_https_then_the_command_is_invalid() -> None:
    sent = msgspec.json.encode(msgspec.structs.replace(SCHEDULE, video_link="http://video.x/rom"))
    with pytest.raises(msgspec.ValidationError, match=r"https.*video_link"):
        msgspec.json.decode(sent, type=ScheduleMeeting)


# case-is-open


def test_given_a_closed_case_when_a_meeting_is_scheduled_then_refused() -> None:
    closed = CaseClosed(**on_the_case(5), at_level=1, reason="Ferdig")
    with pytest.raises(RuleViolation) as refused:
        Given(the_case([*AT_LEVEL_1, closed])).when(HOLDER, SCHEDULE)
    assert refused.value.rule == "case-is-open"


# date-within-window: not before the case was raised, at most STAFETT_MAX_YEARS_AHEAD years ahead


def test_given_a_case_raised_last_month_when_a_meeting_is_scheduled_in_1970_then_refused() -> None:
    in_1970 = datetime(1970, 1, 1, 9, 0, tzinfo=UTC)
    old = msgspec.structs.replace(SCHEDULE, starts_at=in_1970, ends_at=in_1970 + timedelta(hours=1))
    with pytest.raises(RuleViolation, match="starts_at 1970-01-01") as refused:
        Given().when(HOLDER, old)
    assert refused.value.rule == "date-within-window"


def test_given_a_meeting_when_rescheduled_beyond_the_years_ahead_then_refused() -> None:
    later = NOW.replace(year=NOW.year + MAX_YEARS_AHEAD) + timedelta(days=1)
    move = RescheduleMeeting(starts_at=later, ends_at=later + timedelta(hours=1))
    with pytest.raises(RuleViolation) as refused:
        Given().scheduled().when(HOLDER, move)
    assert refused.value.rule == "date-within-window"


def test_given_a_held_meeting_when_an_item_is_due_in_year_9999_then_refused() -> None:
    with pytest.raises(RuleViolation, match="due_on 9999-12-31") as refused:
        Given().held().when(HOLDER, item(due_on=date(9999, 12, 31)), AFTER)
    assert refused.value.rule == "date-within-window"


def test_when_a_meeting_is_recorded_as_held_before_the_case_was_raised_then_refused() -> None:
    before_the_case = RecordMeetingHeld(
        attended=(HOLDER.person,), held_at=RAISED_AT - timedelta(days=1)
    )
    with pytest.raises(RuleViolation) as refused:
        Given().scheduled().when(HOLDER, before_the_case, AFTER)
    assert refused.value.rule == "date-within-window"


# meeting-not-cancelled, meeting-not-yet-held, reschedule


def test_given_a_meeting_when_rescheduled_then_place_stays_unless_given() -> None:
    later = RescheduleMeeting(
        starts_at=NOW + timedelta(days=9),
        ends_at=NOW + timedelta(days=9, hours=1),
        reason="Sykdom",
    )
    (event,) = Given().scheduled().when(HOLDER, later)
    assert isinstance(event, MeetingRescheduled)
    assert (event.starts_at, event.place, event.video_link) == (later.starts_at, "Møterom 2", None)


def test_given_a_meeting_when_rescheduled_to_the_same_time_and_place_then_nothing_new() -> None:
    same = RescheduleMeeting(starts_at=SCHEDULE.starts_at, ends_at=SCHEDULE.ends_at)
    assert Given().scheduled().when(HOLDER, same) == []


def test_given_a_cancelled_meeting_when_a_guardian_is_invited_then_refused() -> None:
    meeting = Given().scheduled().given(HOLDER, CancelMeeting(reason="Ikke lenger aktuelt"))
    assert meeting.when(HOLDER, CancelMeeting(reason="igjen")) == []
    with pytest.raises(RuleViolation) as refused:
        meeting.when(HOLDER, InviteParticipant(person=GUARDIAN.person, kind="guardian"))
    assert refused.value.rule == "meeting-not-cancelled"


def test_given_a_held_meeting_when_cancelled_then_refused() -> None:
    with pytest.raises(RuleViolation) as refused:
        Given().held().when(HOLDER, CancelMeeting(reason="For sent"), AFTER)
    assert refused.value.rule == "meeting-not-yet-held"


# attended-were-invited, held-once


def test_given_invitations_when_held_then_the_attendance_is_recorded() -> None:
    meeting = Given().held()
    held = meeting.events[-1]
    assert isinstance(held, MeetingHeld)
    assert held.attended == (HOLDER.person, GUARDIAN.person)
    assert held.held_at == NOW + timedelta(days=7, hours=1)


def test_when_someone_not_invited_is_recorded_as_attending_then_refused() -> None:
    meeting = Given().scheduled()
    with pytest.raises(RuleViolation, match="ukjent-1") as refused:
        meeting.when(HOLDER, RecordMeetingHeld(attended=(HOLDER.person, "ukjent-1")), AFTER)
    assert refused.value.rule == "attended-were-invited"


def test_given_a_held_meeting_when_held_again_with_others_then_refused() -> None:
    meeting = Given().held()
    again = RecordMeetingHeld(attended=(HOLDER.person, GUARDIAN.person))
    assert meeting.when(HOLDER, again, AFTER) == []
    with pytest.raises(RuleViolation) as refused:
        meeting.when(HOLDER, RecordMeetingHeld(attended=(HOLDER.person,)), AFTER)
    assert refused.value.rule == "held-once"


# meeting-held-first, minutes


def test_given_a_meeting_not_yet_held_when_minutes_are_recorded_then_refused() -> None:
    with pytest.raises(RuleViolation) as refused:
        Given().scheduled().when(HOLDER, RecordMinutes(minutes="Referat"))
    assert refused.value.rule == "meeting-held-first"


def test_given_a_held_meeting_when_minutes_are_recorded_then_they_enter_the_log() -> None:
    (event,) = Given().held().when(HOLDER, RecordMinutes(minutes="Vi ble enige om ..."), AFTER)
    assert isinstance(event, MinutesRecorded)
    assert event.minutes == "Vi ble enige om ..."


# decisions and level-exits


def test_given_a_held_meeting_when_moving_to_level_2_then_decided_with_those_who_attended() -> None:
    (event,) = Given().held().when(HOLDER, decision(DecisionKind.MOVE_TO_LEVEL, 2), AFTER)
    assert isinstance(event, DecisionRecorded)
    assert (event.kind, event.to_level) == (DecisionKind.MOVE_TO_LEVEL, 2)
    assert event.participants == (HOLDER.person, GUARDIAN.person)
    assert event.case_id == CASE


def test_given_level_1_when_moving_to_level_0_then_refused_by_the_staircase() -> None:
    with pytest.raises(RuleViolation, match="from level 1") as refused:
        Given().held().when(HOLDER, decision(DecisionKind.MOVE_TO_LEVEL, 0), AFTER)
    assert refused.value.rule == "level-exits"


def test_given_level_0_when_deciding_to_continue_then_refused_by_the_staircase() -> None:
    meeting = Given(the_case(AT_LEVEL_0)).held()
    with pytest.raises(RuleViolation) as refused:
        meeting.when(HOLDER, decision(DecisionKind.CONTINUE), AFTER)
    assert refused.value.rule == "level-exits"


def test_given_a_recorded_decision_when_retried_then_nothing_new() -> None:
    meeting = Given().held().given(HOLDER, decision(DecisionKind.CLOSE), AFTER)
    assert meeting.when(HOLDER, decision(DecisionKind.CLOSE), AFTER) == []
    with pytest.raises(RuleViolation) as refused:
        meeting.when(HOLDER, decision(DecisionKind.CONTINUE), AFTER)
    assert refused.value.rule == "one-decision-per-id"


def test_given_a_ppt_leader_who_does_not_decide_when_recording_a_decision_then_not_allowed() -> (
    None
):
    command = msgspec.structs.replace(SCHEDULE, leader=PPT_WORKER.person, leader_service="ppt")
    meeting = Given().given(LEADER, command)
    meeting.given(PPT_WORKER, RecordMeetingHeld(attended=(PPT_WORKER.person,)), AFTER)
    with pytest.raises(NotAllowed):
        meeting.when(PPT_WORKER, decision(DecisionKind.SYSTEM_MEASURE), AFTER)


def test_when_a_move_names_no_level_then_the_command_is_invalid() -> None:
    with pytest.raises(ValueError, match="to_level"):
        decision(DecisionKind.MOVE_TO_LEVEL)


# action items: one-item-per-id, due-date-not-past, item-exists


def item(owner: Actor = HOLDER, due_on: date = date(2026, 11, 20)) -> AssignActionItem:
    return AssignActionItem(
        item_id=UUID("00000000-0000-4000-8000-00000000a11e"),
        description="Kartlegge språk",
        owner=owner.person,
        owner_service=owner.service,
        due_on=due_on,
    )


def test_given_a_held_meeting_when_an_item_is_assigned_and_completed_by_its_owner_then_done() -> (
    None
):
    meeting = Given().held().given(HOLDER, item(PPT_WORKER), AFTER)
    assigned = meeting.events[-1]
    assert isinstance(assigned, ActionItemAssigned)
    assert (assigned.owner, assigned.owner_service) == (PPT_WORKER.person, "ppt")
    (done,) = meeting.when(PPT_WORKER, CompleteActionItem(item_id=assigned.item_id), AFTER)
    assert isinstance(done, ActionItemCompleted)
    meeting.events.append(done)
    assert meeting.when(PPT_WORKER, CompleteActionItem(item_id=assigned.item_id), AFTER) == []


def test_when_an_item_is_due_in_the_past_then_refused() -> None:
    with pytest.raises(RuleViolation) as refused:
        Given().held().when(HOLDER, item(due_on=date(2026, 11, 1)), AFTER)
    assert refused.value.rule == "due-date-not-past"


def test_given_an_item_when_assigned_again_otherwise_then_refused() -> None:
    meeting = Given().held().given(HOLDER, item(), AFTER)
    assert meeting.when(HOLDER, item(), AFTER) == []
    with pytest.raises(RuleViolation) as refused:
        meeting.when(HOLDER, item(due_on=date(2026, 11, 30)), AFTER)
    assert refused.value.rule == "one-item-per-id"


def test_when_an_unknown_item_is_completed_then_refused() -> None:
    with pytest.raises(RuleViolation) as refused:
        Given().held().when(HOLDER, CompleteActionItem(item_id=uuid4()), AFTER)
    assert refused.value.rule == "item-exists"


def test_given_an_item_when_someone_else_completes_it_then_not_allowed() -> None:
    meeting = Given().held().given(HOLDER, item(), AFTER)
    with pytest.raises(NotAllowed):
        meeting.when(COLLEAGUE, CompleteActionItem(item_id=item().item_id), AFTER)


def test_when_someone_else_completes_an_unknown_item_then_refused_before_it_is_looked_up() -> None:
    with pytest.raises(NotAllowed):
        Given().held().when(COLLEAGUE, CompleteActionItem(item_id=uuid4()), AFTER)


# feedback-from-invited


def test_given_an_invited_guardian_when_they_give_feedback_then_it_is_recorded_once() -> None:
    meeting = Given().held()
    feedback = GiveFeedback(rating=4, heard=5, comment="Vi ble lyttet til.")
    (event,) = meeting.when(GUARDIAN, feedback, AFTER)
    assert isinstance(event, FeedbackGiven)
    assert (event.given_by, event.person, event.rating, event.heard) == (
        "guardian",
        GUARDIAN.person,
        4,
        5,
    )
    meeting.events.append(event)
    with pytest.raises(RuleViolation) as refused:
        meeting.when(GUARDIAN, feedback, AFTER)
    assert refused.value.rule == "feedback-from-invited"


def test_given_a_child_not_invited_when_it_gives_feedback_then_not_allowed() -> None:
    with pytest.raises(NotAllowed):
        Given().held().when(CHILD, GiveFeedback(rating=3, heard=3), AFTER)


def test_given_a_meeting_not_yet_held_when_a_guardian_gives_feedback_then_refused() -> None:
    meeting = (
        Given().scheduled().given(HOLDER, InviteParticipant(person=CHILD.person, kind="child"))
    )
    with pytest.raises(RuleViolation) as refused:
        meeting.when(CHILD, GiveFeedback(rating=3, heard=3))
    assert refused.value.rule == "meeting-held-first"


# as_seen: a reader is shown a meeting folded from only the events the access rule shows them


def covered(*spans: tuple[datetime, datetime | None]) -> Access:
    """What the access rule grants PPT while a consent covers it over `spans` (start, finish)."""
    periods = tuple(
        Period(
            service="ppt",
            start=start,
            finish=finish,
            basis="consent",
            ref=str(CONSENT),
            purposes=("cooperation",),
        )
        for start, finish in spans
    )
    return Access(granted=True, rule=COVERED_NOW, periods=periods)


def test_given_minutes_after_ppts_consent_lapsed_when_ppt_reads_then_they_are_not_shown() -> None:
    meeting = Given().held().given(HOLDER, RecordMinutes(minutes="Før"), AFTER)
    meeting.given(HOLDER, RecordMinutes(minutes="Etter"), AFTER + timedelta(days=2))
    lapsed_at = AFTER + timedelta(days=1)
    seen = as_seen(covered((NOW - timedelta(days=30), lapsed_at)), meeting.events)
    assert seen is not None
    assert seen.minutes == ("Før",)


def test_given_a_meeting_scheduled_before_ppt_was_covered_when_ppt_reads_then_not_shown() -> None:
    meeting = Given().held()
    assert as_seen(covered((NOW + timedelta(days=1), None)), meeting.events) is None


def test_given_an_item_assigned_out_of_ppts_sight_when_ppt_sees_it_completed_then_no_item() -> None:
    meeting = Given().held().given(HOLDER, item(PPT_WORKER), AFTER)
    completed_at = AFTER + timedelta(days=2)
    meeting.given(PPT_WORKER, CompleteActionItem(item_id=item().item_id), completed_at)
    # PPT was covered until the item was assigned, and again from its completion
    access = covered((NOW - timedelta(days=30), AFTER), (completed_at, None))
    seen = as_seen(access, meeting.events)
    assert seen is not None
    assert seen.action_items == {}
    assert seen.version == len(meeting.events)  # the completion was folded, the gap tolerated
