"""Who is told what, and which timers are due: the pure rules, in the domain's words."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import msgspec

from stafett_contracts import case as c
from stafett_contracts import consent as k
from stafett_contracts import meeting as m
from stafett_contracts.envelope import Event
from stafett_contracts.identity import Actor, Role
from stafett_contracts.notify import (
    Channel,
    NotificationRequested,
    ReminderKind,
    ReminderScheduled,
)
from stafett_contracts.people import Directory, LevelDeadlines
from stafett_notify.domain.delivery import (
    Command,
    Delivery,
    DeliveryContext,
    DeliveryRules,
    GiveUpInterrupted,
    RecordOutcome,
    StartAttempt,
    decide,
    evolve,
    fold,
    message_of,
    next_step,
    retry_at,
)
from stafett_notify.domain.facts import MeetingFacts, Watch
from stafett_notify.domain.rules import (
    BreakFound,
    Concerned,
    ReminderDue,
    due,
    reminders_for,
    tell,
)
from stafett_runtime.domain import Context
from stafett_runtime.testing import TEST_DIRECTORY

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
UNIT = "skole-lia"  # led by rektor-1 in the test municipality
ACTOR = Actor(person="laerer-1", role=Role.EMPLOYEE, service=UNIT)


def stamp(aggregate_id: UUID, version: int = 1, at: datetime = T0) -> dict[str, Any]:
    return {
        "event_id": uuid4(),
        "aggregate_id": aggregate_id,
        "aggregate_version": version,
        "occurred_at": at,
        "actor": ACTOR,
        "correlation_id": "req",
    }


def recipients(event: Event, around: Concerned) -> list[tuple[str, str]]:
    return [(t.recipient, t.reason) for t in tell(event, around)]


def test_a_concern_raised_tells_the_leader_the_municipality_directory_names() -> None:
    case_id = uuid4()
    raised = c.ConcernRaised(**stamp(case_id), child_id=uuid4(), unit="skole-fjell", concern="Uro")
    assert recipients(raised, Concerned(directory=TEST_DIRECTORY)) == [
        ("rektor-fjell", "concern_raised")
    ]
    # A unit the directory does not know has no leader to tell
    assert recipients(raised, Concerned()) == []


def test_a_coordinator_assigned_tells_the_coordinator_and_each_guardian_once() -> None:
    assigned = c.CoordinatorAssigned(**stamp(uuid4()), coordinator="koord-1", service="ppt")
    around = Concerned(guardians=("mor-1", "far-1", "mor-1"))
    assert recipients(assigned, around) == [
        ("koord-1", "coordinator_assigned"),
        ("mor-1", "coordinator_assigned"),
        ("far-1", "coordinator_assigned"),
    ]


def test_a_consent_withdrawn_wholly_tells_every_service_it_covered() -> None:
    case_id = uuid4()
    withdrawn = k.ConsentWithdrawn(**stamp(uuid4(), 2))
    around = Concerned(consent_case_id=case_id, consent_services=("ppt", "bup"))
    told = tell(withdrawn, around)
    assert [(t.recipient, t.case_id) for t in told] == [("ppt", case_id), ("bup", case_id)]
    partly = k.ConsentWithdrawn(**stamp(uuid4(), 2), services=("bup",))
    assert recipients(partly, around) == [("bup", "consent_withdrawn")]


def test_a_decision_refused_tells_the_person_who_recorded_it_and_no_one_else() -> None:
    # Given a meeting's decision to move a case to level 3, recorded by the teacher, which the
    # case refused
    case_id = uuid4()
    refused = c.DecisionRefused(
        **stamp(case_id, 5),
        meeting_id=uuid4(),
        decision_id=uuid4(),
        kind=c.DecisionKind.MOVE_TO_LEVEL,
        to_level=3,
        rule="level-3-needs-coordinator",
        reason="assign a coordinator before going to level 3",
    )
    # When notify learns of it
    around = Concerned(guardians=("mor-1",), directory=TEST_DIRECTORY)
    told = tell(refused, around)
    # Then the teacher who recorded it is told, about the case, and nobody else
    assert [(t.recipient, t.reason, t.case_id) for t in told] == [
        (ACTOR.person, "decision_refused", case_id)
    ]
    # In a fixed sentence that leaves the refusal's words behind the link (rule 8)
    message = message_of(
        NotificationRequested(
            **stamp(uuid4()),
            recipient=ACTOR.person,
            channel=Channel.EMAIL,
            reason="decision_refused",
            trigger=refused.event_id,
            reference="STF-1",
            link=f"https://stafett.example/cases/{case_id}",
        )
    )
    assert "A decision you recorded in a meeting was not carried out" in message.subject
    assert refused.reason not in message.body


def test_a_rescheduled_meeting_tells_everyone_invited_with_a_newer_invitation() -> None:
    case_id, meeting_id = uuid4(), uuid4()
    start = T0 + timedelta(days=5)
    meeting = MeetingFacts()
    history: list[Event] = [
        m.MeetingScheduled(
            **stamp(meeting_id),
            case_id=case_id,
            meeting_type=m.MeetingType.DIALOGUE,
            starts_at=start,
            ends_at=start + timedelta(hours=1),
            leader="laerer-1",
            leader_service=UNIT,
        ),
        m.ParticipantInvited(
            **stamp(meeting_id, 2), case_id=case_id, person="mor-1", kind="guardian"
        ),
        m.MeetingRescheduled(
            **stamp(meeting_id, 3),
            case_id=case_id,
            starts_at=start + timedelta(days=1),
            ends_at=start + timedelta(days=1, hours=1),
        ),
    ]
    for event in history:
        meeting.take_in(event)
    told = tell(history[-1], Concerned(meeting=meeting))
    assert [t.recipient for t in told] == ["laerer-1", "mor-1"]
    invitation = told[0].invitation
    assert invitation is not None
    assert (invitation.method, invitation.sequence) == ("REQUEST", 1)
    assert invitation.starts_at == start + timedelta(days=1)


def test_a_measure_planned_sets_a_reminder_ahead_and_one_when_its_day_has_passed() -> None:
    planned = c.MeasurePlanned(
        **stamp(uuid4()),
        measure_id=uuid4(),
        description="Tiltak",
        responsible="laerer-1",
        service=UNIT,
        evaluation_date=date(2026, 11, 20),
    )
    reminders = reminders_for(planned, timedelta(days=3))
    assert [(r.kind, r.due_at, r.recipient) for r in reminders] == [
        (ReminderKind.EVALUATION_APPROACHING, datetime(2026, 11, 17, tzinfo=UTC), "laerer-1"),
        (ReminderKind.EVALUATION_PASSED, datetime(2026, 11, 21, tzinfo=UTC), "laerer-1"),
    ]


def watch_of(*events: Event) -> Watch:
    watch = Watch()
    for event in events:
        watch.take_in(event)
    return watch


def test_an_inactive_case_is_a_break_for_the_holder_then_for_the_unit_leader() -> None:
    case_id = uuid4()
    watch = watch_of(
        c.ConcernRaised(**stamp(case_id), child_id=uuid4(), unit=UNIT, concern="Uro"),
        c.BatonHolderAppointed(**stamp(case_id, 2), holder="laerer-1", service=UNIT),
    )

    def breaks(days: int) -> list[tuple[str, str | None]]:
        found = due(watch, T0 + timedelta(days=days), TEST_DIRECTORY)
        return [(f.stage, f.recipient) for f in found if isinstance(f, BreakFound)]

    assert breaks(13) == []
    assert breaks(14) == [("baton_holder", "laerer-1")]
    assert breaks(21) == [("baton_holder", "laerer-1"), ("unit_leader", "rektor-1")]
    # Activity starts the count again
    watch.take_in(c.BrightSpotNoted(**stamp(case_id, 3, T0 + timedelta(days=20)), note="Fin dag"))
    assert breaks(21) == []


def test_a_reminder_lapses_once_its_measure_is_evaluated() -> None:
    case_id, measure_id = uuid4(), uuid4()
    planned = c.MeasurePlanned(
        **stamp(case_id),
        measure_id=measure_id,
        description="Tiltak",
        responsible="laerer-1",
        service=UNIT,
        evaluation_date=date(2026, 11, 20),
    )
    reminder = ReminderScheduled(
        **stamp(uuid4()),
        case_id=case_id,
        kind=ReminderKind.EVALUATION_APPROACHING,
        about=measure_id,
        due_at=datetime(2026, 11, 17, tzinfo=UTC),
        recipient="laerer-1",
    )
    watch = watch_of(planned, reminder)
    now = datetime(2026, 11, 18, tzinfo=UTC)

    def reminders() -> list[ReminderDue]:
        return [f for f in due(watch, now, TEST_DIRECTORY) if isinstance(f, ReminderDue)]

    assert [r.reminder for r in reminders()] == [reminder]
    watch.take_in(
        c.MeasureEvaluated(
            **stamp(case_id, 2), measure_id=measure_id, outcome=c.MeasureOutcome.WORKED, notes="Ok"
        )
    )
    assert reminders() == []


def test_an_attempt_with_no_outcome_is_never_sent_again_only_given_up() -> None:
    from stafett_contracts.notify import DeliveryAttempted

    notification_id = uuid4()
    requested = NotificationRequested(
        **stamp(notification_id),
        recipient="rektor-1",
        channel=Channel.EMAIL,
        reason="concern_raised",
        trigger=uuid4(),
        reference="STF-1",
        link="https://stafett.example/cases/1",
    )
    attempted = DeliveryAttempted(
        **stamp(notification_id, 2), channel=Channel.EMAIL, attempt=1, started_at=T0
    )
    rules = DeliveryRules(
        max_attempts=3, backoff=timedelta(minutes=1), attempt_timeout=timedelta(minutes=2)
    )
    delivery = fold([requested, attempted])
    assert delivery is not None
    assert next_step(delivery, T0 + timedelta(minutes=1), rules) == "wait"
    assert next_step(delivery, T0 + timedelta(minutes=2), rules) == "interrupted"
    assert retry_at(1, T0, rules) == T0 + timedelta(minutes=1)
    assert retry_at(2, T0, rules) == T0 + timedelta(minutes=2)
    assert retry_at(3, T0, rules) is None
    message = message_of(requested)
    assert "STF-1" in message.subject
    assert "https://stafett.example/cases/1" in message.body


def municipality(**deadlines: Any) -> Directory:
    """The test municipality, with these deadlines of its own (in days)."""
    set_ = msgspec.structs.replace(TEST_DIRECTORY.deadlines, **deadlines)
    return msgspec.structs.replace(TEST_DIRECTORY, deadlines=set_)


def breaks_at(watch: Watch, days: float, directory: Directory) -> list[tuple[str, str, str | None]]:
    found = due(watch, T0 + timedelta(days=days), directory)
    return [(f.cause, f.stage, f.recipient) for f in found if isinstance(f, BreakFound)]


def test_no_decision_at_level_0_within_the_municipality_s_days_is_a_break_then_for_the_leader() -> (
    None
):
    # Given a concern the teacher holds, in a municipality that decides at level 0 within 10
    # days and escalates after 3 (and is patient about inactivity)
    case_id = uuid4()
    watch = watch_of(
        c.ConcernRaised(**stamp(case_id), child_id=uuid4(), unit=UNIT, concern="Uro"),
        c.BatonHolderAppointed(**stamp(case_id, 2), holder="laerer-1", service=UNIT),
    )
    directory = municipality(decision_days=10, escalation_days=3, inactivity_days=60)
    # Then nothing before the tenth day; then the baton holder; three days on, the unit leader
    assert breaks_at(watch, 9.9, directory) == []
    assert breaks_at(watch, 10, directory) == [("decision_overdue", "baton_holder", "laerer-1")]
    assert breaks_at(watch, 13, directory) == [
        ("decision_overdue", "baton_holder", "laerer-1"),
        ("decision_overdue", "unit_leader", "rektor-1"),
    ]
    # When the case goes on to level 1 (the level-0 decision), then that deadline is met
    watch.take_in(
        c.Escalated(
            **stamp(case_id, 3, T0 + timedelta(days=11)), from_level=0, to_level=1, reason="x"
        )
    )
    assert breaks_at(watch, 13, directory) == []


def test_a_meeting_held_without_minutes_for_the_municipality_s_days_is_a_break() -> None:
    # Given a meeting held on a case the teacher holds, where minutes are due within 5 days
    case_id, meeting_id = uuid4(), uuid4()
    watch = watch_of(
        c.ConcernRaised(**stamp(case_id), child_id=uuid4(), unit=UNIT, concern="Uro"),
        c.BatonHolderAppointed(**stamp(case_id, 2), holder="laerer-1", service=UNIT),
        c.Escalated(**stamp(case_id, 3), from_level=0, to_level=1, reason="x"),
        m.MeetingHeld(**stamp(meeting_id), case_id=case_id, held_at=T0, attended=("laerer-1",)),
    )
    directory = municipality(minutes_days=5, inactivity_days=60)
    # Then on the fifth day with no minutes, the baton holder is told
    assert breaks_at(watch, 4, directory) == []
    assert breaks_at(watch, 5, directory) == [("minutes_overdue", "baton_holder", "laerer-1")]
    # When the minutes are recorded, then the deadline is met
    watch.take_in(m.MinutesRecorded(**stamp(meeting_id, 2), case_id=case_id, minutes="Referat"))
    assert breaks_at(watch, 5, directory) == []


def test_a_level_s_own_deadline_wins_at_that_level_only() -> None:
    # Given a municipality that waits 30 days for activity at level 3, 14 elsewhere
    levels = {"3": LevelDeadlines(inactivity_days=30)}
    directory = municipality(levels=levels, decision_days=60)
    at_level_0, at_level_3 = uuid4(), uuid4()
    watch = watch_of(
        c.ConcernRaised(**stamp(at_level_0), child_id=uuid4(), unit=UNIT, concern="Uro"),
        c.ConcernRaised(**stamp(at_level_3), child_id=uuid4(), unit=UNIT, concern="Uro"),
        c.Escalated(**stamp(at_level_3, 2), from_level=0, to_level=3, reason="x"),
    )
    # Then after 14 days only the case at level 0 is a break; after 30, both
    found = due(watch, T0 + timedelta(days=14), directory)
    assert {f.case_id for f in found if isinstance(f, BreakFound)} == {at_level_0}
    found = due(watch, T0 + timedelta(days=30), directory)
    assert {f.case_id for f in found if isinstance(f, BreakFound)} == {at_level_0, at_level_3}


def test_a_reminder_set_before_the_lead_changed_still_comes_once() -> None:
    # Given a reminder set 3 days ahead, and the municipality then setting a 5-day lead
    case_id, measure_id = uuid4(), uuid4()
    planned = c.MeasurePlanned(
        **stamp(case_id),
        measure_id=measure_id,
        description="Tiltak",
        responsible="laerer-1",
        service=UNIT,
        evaluation_date=date(2026, 11, 20),
    )
    (ahead, _) = reminders_for(planned, timedelta(days=3))
    reminder = ReminderScheduled(
        **stamp(uuid4()),
        case_id=case_id,
        kind=ahead.kind,
        about=measure_id,
        due_at=ahead.due_at,
        recipient="laerer-1",
    )
    watch = watch_of(planned, reminder)
    directory = municipality(reminder_lead_days=5)
    # Then it is still due on its day: the lead it was set with holds for it
    found = due(watch, datetime(2026, 11, 17, 12, tzinfo=UTC), directory)
    assert [f.reminder for f in found if isinstance(f, ReminderDue)] == [reminder]


def test_a_delivery_records_one_attempt_before_sending_and_settles_it_by_the_channels_word() -> (
    None
):
    from stafett_contracts.notify import (
        DeliveryAttempted,
        DeliveryAttemptFailed,
        NotificationFailed,
        NotificationSent,
    )

    rules = DeliveryRules(
        max_attempts=2, backoff=timedelta(minutes=1), attempt_timeout=timedelta(minutes=2)
    )

    def context(at: datetime) -> DeliveryContext:
        return DeliveryContext(actor=ACTOR, now=at, correlation_id="req", rules=rules)

    def step(state: Delivery | None, command: Command, at: datetime) -> list[Event]:
        events = decide(state, command, context(at))
        assert [e.aggregate_version for e in events] == [
            (state.version if state else 0) + i for i in range(1, len(events) + 1)
        ]
        return events

    # Given a notification requested
    notification_id = uuid4()
    requested = NotificationRequested(
        **stamp(notification_id),
        recipient="rektor-1",
        channel=Channel.EMAIL,
        reason="concern_raised",
        trigger=uuid4(),
        reference="STF-1",
        link="https://stafett.example/cases/1",
    )
    delivery = fold([requested])
    # When an attempt is started, then it is recorded, as the first, before anything is sent
    (attempted,) = step(delivery, StartAttempt(), T0)
    assert isinstance(attempted, DeliveryAttempted)
    assert (attempted.attempt, attempted.started_at) == (1, T0)
    delivery = evolve(delivery, attempted)
    # And a second round, or replica, that starts one meanwhile decides nothing: one send
    assert step(delivery, StartAttempt(), T0) == []
    # When the channel failed, then the next attempt waits for the backoff the rules give
    (failed,) = step(delivery, RecordOutcome(attempt=1, error="smtp: refused"), T0)
    assert isinstance(failed, DeliveryAttemptFailed)
    assert failed.retry_at == T0 + timedelta(minutes=1)
    delivery = evolve(delivery, failed)
    assert step(delivery, StartAttempt(), T0) == []
    # And the outcome of an attempt already settled is not recorded twice
    assert step(delivery, RecordOutcome(attempt=1), T0) == []
    # When the last attempt the rules allow fails too, then the notification failed
    (second,) = step(delivery, StartAttempt(), T0 + timedelta(minutes=1))
    delivery = evolve(delivery, second)
    (given_up,) = step(delivery, RecordOutcome(attempt=2, error="smtp: refused"), T0)
    assert isinstance(given_up, NotificationFailed)
    assert given_up.attempts == 2
    # Had the channel taken it instead, it is sent, and nothing more is attempted after
    (sent,) = step(delivery, RecordOutcome(attempt=2), T0)
    assert isinstance(sent, NotificationSent)
    assert step(evolve(delivery, sent), StartAttempt(), T0 + timedelta(days=1)) == []


def test_an_interrupted_attempt_is_given_up_only_after_its_timeout_and_never_sent_again() -> None:
    from stafett_contracts.notify import DeliveryAttempted, NotificationFailed

    rules = DeliveryRules(
        max_attempts=3, backoff=timedelta(minutes=1), attempt_timeout=timedelta(minutes=2)
    )
    notification_id = uuid4()
    delivery = fold(
        [
            NotificationRequested(
                **stamp(notification_id),
                recipient="rektor-1",
                channel=Channel.EMAIL,
                reason="concern_raised",
                trigger=uuid4(),
                reference="STF-1",
                link="https://stafett.example/cases/1",
            ),
            DeliveryAttempted(
                **stamp(notification_id, 2), channel=Channel.EMAIL, attempt=1, started_at=T0
            ),
        ]
    )

    def at(moment: datetime) -> DeliveryContext:
        return DeliveryContext(actor=ACTOR, now=moment, correlation_id="req", rules=rules)

    # Given an attempt with no outcome: before its timeout nothing is given up, or sent again
    assert decide(delivery, GiveUpInterrupted(), at(T0 + timedelta(minutes=1))) == []
    assert decide(delivery, StartAttempt(), at(T0 + timedelta(minutes=5))) == []
    # When its timeout has passed, then it ends in NotificationFailed, saying why
    (failed,) = decide(delivery, GiveUpInterrupted(), at(T0 + timedelta(minutes=2)))
    assert isinstance(failed, NotificationFailed)
    assert (failed.aggregate_version, failed.attempts) == (3, 1)
    assert "interrupted" in failed.error


def test_a_notification_a_reminder_and_a_break_are_each_recorded_once_whoever_asks_again() -> None:
    from stafett_contracts.notify import CalendarInvitationPrepared
    from stafett_notify.domain.delivery import requests_for
    from stafett_notify.domain.rules import Invitation, Reminder, Told
    from stafett_notify.domain.timers import (
        DetectBreak,
        decide_break,
        decide_reminder,
        evolve_break,
        evolve_reminder,
        schedule,
    )

    rules = DeliveryRules(
        max_attempts=2, backoff=timedelta(minutes=1), attempt_timeout=timedelta(minutes=2)
    )
    context = DeliveryContext(
        actor=ACTOR, now=T0, correlation_id="req", rules=rules, stream="NOTIFY"
    )
    # Given a meeting's invitation to tell a guardian of, on two channels
    case_id, meeting_id = uuid4(), uuid4()
    trigger = m.ParticipantInvited(
        **stamp(meeting_id, 2), case_id=case_id, person="mor-1", kind="guardian"
    )
    invitation = Invitation(meeting_id, "REQUEST", 0, T0, T0 + timedelta(hours=1), None)
    told = Told("mor-1", "meeting.scheduled", case_id, meeting_id, invitation)
    channels = [Channel.EMAIL, Channel.WEBHOOK]
    email, webhook = requests_for(told, trigger, trigger.event_id, channels, "https://s.example")
    # When it is requested, then it is recorded with its invitation, on the id its trigger,
    # recipient and channel derive, so the same request again is for the same notification
    requested, prepared = decide(None, email, context)
    assert isinstance(requested, NotificationRequested)
    assert isinstance(prepared, CalendarInvitationPrepared)
    assert requested.aggregate_id == email.notification_id != webhook.notification_id
    assert (requested.trigger, requested.calendar) == (trigger.event_id, True)
    again = requests_for(told, trigger, trigger.event_id, channels, "https://s.example")
    assert again == [email, webhook]
    # And once requested, requesting it again decides nothing
    assert decide(fold([requested, prepared]), email, context) == []
    # Likewise a reminder scheduled, and a follow-up break detected
    reminder = schedule(
        case_id, Reminder(ReminderKind.EVALUATION_PASSED, uuid4(), T0, "laerer-1"), uuid4()
    )
    (scheduled,) = decide_reminder(None, reminder, context)
    assert decide_reminder(evolve_reminder(None, scheduled), reminder, context) == []
    detect = DetectBreak(
        break_id=uuid4(),
        case_id=case_id,
        unit=UNIT,
        last_activity_at=T0,
        stage="baton_holder",
        cause="inactivity",
    )
    (detected,) = decide_break(None, detect, context)
    assert decide_break(evolve_break(None, detected), detect, context) == []


def test_an_evaluation_date_moved_away_and_back_is_reminded_of_on_its_restored_date() -> None:
    from stafett_notify.domain.rules import Reminder
    from stafett_notify.domain.timers import decide_reminder, schedule

    # Given a measure due on 20 November, moved to 4 December, then back to 20 November
    case_id, measure_id = uuid4(), uuid4()
    day = date(2026, 11, 20)
    planned = c.MeasurePlanned(
        **stamp(case_id),
        measure_id=measure_id,
        description="Tiltak",
        responsible="laerer-1",
        service=UNIT,
        evaluation_date=day,
    )
    moved, back = (
        c.MeasureEvaluated(
            **stamp(case_id, version, T0 + timedelta(days=version)),
            measure_id=measure_id,
            outcome=c.MeasureOutcome.PARTLY,
            notes="Fortsetter",
            next_evaluation_date=next_date,
        )
        for version, next_date in ((2, date(2026, 12, 4)), (3, day))
    )

    def scheduled(setting: Event, on: date, at: datetime) -> Event:
        due_at = datetime(on.year, on.month, on.day, tzinfo=UTC) - timedelta(days=3)
        ahead = Reminder(ReminderKind.EVALUATION_APPROACHING, measure_id, due_at, "laerer-1")
        context = Context(actor=ACTOR, now=at, correlation_id="req", stream="NOTIFY")
        (recorded,) = decide_reminder(None, schedule(case_id, ahead, setting.event_id), context)
        return recorded

    first = scheduled(planned, day, T0)
    away = scheduled(moved, date(2026, 12, 4), T0 + timedelta(days=2))
    restored = scheduled(back, day, T0 + timedelta(days=3))
    # Then the restored date is a reminder of its own, not the first one found again
    assert restored.aggregate_id not in (first.aggregate_id, away.aggregate_id)
    # And it is the one that comes, three days ahead of the restored date
    watch = watch_of(planned, moved, back, first, away, restored)
    found = due(watch, datetime(2026, 11, 17, 12, tzinfo=UTC), TEST_DIRECTORY)
    assert [f.reminder for f in found if isinstance(f, ReminderDue)] == [restored]
