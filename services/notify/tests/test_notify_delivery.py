"""Notifications over a real nats-server and a real SMTP server: told once, on time, no leaks.

The upstream streams are written by stand-ins named "case", "consent" and "meeting", with the
contracts' events, so the tests need nothing of those services but their contracts. The children
and their guardians are in a register file of each test's own; units and their leaders are the
test municipality's. Time is a clock the test moves; nothing sleeps.
"""

from __future__ import annotations

from datetime import date, timedelta
from uuid import UUID, uuid4

import httpx
import msgspec
import pytest
from eventsourcing.persistence import Tracking
from standardwebhooks import Webhook

from stafett_contracts import case as c
from stafett_contracts import consent as k
from stafett_contracts import meeting as m
from stafett_contracts import notify as n
from stafett_contracts.envelope import Event
from stafett_contracts.people import Directory
from stafett_notify.application import Notifications
from stafett_notify.channels import Outgoing, Sender, WebhookSender, senders
from stafett_notify.config import Contact, new_secret
from stafett_notify.policies import NotifyPolicy
from stafett_notify.testing import (
    CHILD_NAME,
    LEADER,
    MUNICIPALITY,
    T0,
    TEACHER,
    UNIT,
    Clock,
    Envelopes,
    Mailbox,
    Upstreams,
    address,
    assert_no_personal_data,
    calendar_in,
    make_config,
    notifications,
    notify_events,
    of_type,
    run_policies,
    with_deadlines,
)
from stafett_runtime.contracts import CONTRACT_ENV
from stafett_runtime.domain import event_id
from stafett_runtime.processing import ProcessingLoop, Upstream
from stafett_runtime.register import FileRegister
from stafett_runtime.testing import TEST_DIRECTORY, NatsTestServer, a_child

GUARDIAN, PPT_WORKER = "mor-1", "ppt-1"
FATHER, UNCLE, COORDINATOR = "far-1", "onkel-1", "koordinator-1"
PEOPLE = (LEADER, TEACHER, GUARDIAN, PPT_WORKER)


def raise_concern(
    upstreams: Upstreams, envelope: Envelopes, case_id: UUID, child_id: UUID | None = None
) -> list[Event]:
    events: list[Event] = [
        c.ConcernRaised(
            **envelope(case_id, T0),
            child_id=child_id or uuid4(),
            unit=UNIT,
            concern=f"{CHILD_NAME} trekker seg unna i lek og virker redd.",
        ),
        c.BatonHolderAppointed(**envelope(case_id, T0), holder=TEACHER, service=UNIT),
    ]
    upstreams.save(*events)
    return events


def test_a_scheduled_meeting_mails_each_invitee_once_with_a_valid_invitation(
    env: dict[str, str],
    upstreams: Upstreams,
    smtp: tuple[Mailbox, int],
    envelope: Envelopes,
    register: FileRegister,
) -> None:
    mailbox, port = smtp
    config = make_config(port, PEOPLE)
    clock = Clock(T0)
    # Given a case, and a meeting of it scheduled with two participants invited
    case_id, meeting_id = uuid4(), uuid4()
    raise_concern(upstreams, envelope, case_id)
    start = T0 + timedelta(days=7)
    upstreams.save(
        m.MeetingScheduled(
            **envelope(meeting_id, T0),
            case_id=case_id,
            meeting_type=m.MeetingType.COOPERATION,
            starts_at=start,
            ends_at=start + timedelta(hours=1),
            place="Hjemme hos familien, Storgata 5",
            leader=TEACHER,
            leader_service=UNIT,
            agenda=(f"Hvordan har {CHILD_NAME} det i friminuttene?",),
        ),
        m.ParticipantInvited(
            **envelope(meeting_id, T0), case_id=case_id, person=GUARDIAN, kind="guardian"
        ),
        m.ParticipantInvited(
            **envelope(meeting_id, T0),
            case_id=case_id,
            person=PPT_WORKER,
            kind="service",
            service="ppt",
        ),
    )
    app = notifications(env, config, clock)
    try:
        # When the policies run, and the courier delivers, twice over (a redelivery)
        run_policies(env, config, register)
        run_policies(env, config, register)
        app.deliver()
        app.deliver()

        # Then each invitee got exactly one email, with an invitation to the meeting
        invited = [m for m in mailbox.messages if calendar_in(m) is not None]
        assert sorted(m["X-Envelope-To"] for m in invited) == sorted(
            address(p) for p in (TEACHER, GUARDIAN, PPT_WORKER)
        )
        for message in invited:
            calendar = calendar_in(message)
            assert calendar is not None
            assert calendar["METHOD"] == "REQUEST"
            (event,) = calendar.walk("VEVENT")
            assert event["UID"] == f"{meeting_id}@stafett"
            assert event.decoded("DTSTART") == start
            assert event.decoded("DTEND") == start + timedelta(hours=1)
        # And besides: the unit's leader was told of the concern, the teacher of the baton
        assert len(mailbox.to(address(LEADER))) == 1
        assert len(mailbox.to(address(TEACHER))) == 2
        sent = of_type(notify_events(app), n.NotificationSent)
        assert len(sent) == len(mailbox.messages) == 5
        # And no message carries what the events say about the child
        assert_no_personal_data(mailbox.messages, upstreams.written)
    finally:
        app.close()


def test_a_cancelled_meeting_sends_every_invitee_a_cancellation(
    env: dict[str, str],
    upstreams: Upstreams,
    smtp: tuple[Mailbox, int],
    envelope: Envelopes,
    register: FileRegister,
) -> None:
    mailbox, port = smtp
    config = make_config(port, PEOPLE)
    case_id, meeting_id = uuid4(), uuid4()
    start = T0 + timedelta(days=3)
    upstreams.save(
        m.MeetingScheduled(
            **envelope(meeting_id, T0),
            case_id=case_id,
            meeting_type=m.MeetingType.NETWORK,
            starts_at=start,
            ends_at=start + timedelta(hours=2),
            video_link="https://video.example/rom-7",
            leader=TEACHER,
            leader_service=UNIT,
        ),
        m.ParticipantInvited(
            **envelope(meeting_id, T0), case_id=case_id, person=GUARDIAN, kind="guardian"
        ),
        m.MeetingCancelled(**envelope(meeting_id, T0), case_id=case_id, reason="Sykdom"),
    )
    app = notifications(env, config, Clock(T0))
    try:
        run_policies(env, config, register)
        app.deliver()
        calendars = [(m, calendar_in(m)) for m in mailbox.messages]
        cancellations = [m for m, cal in calendars if cal is not None and cal["METHOD"] == "CANCEL"]
        assert sorted(m["X-Envelope-To"] for m in cancellations) == [
            address(TEACHER),
            address(GUARDIAN),
        ]
        assert_no_personal_data(mailbox.messages, upstreams.written)
    finally:
        app.close()


def test_an_overdue_evaluation_gives_the_reminder_and_then_the_escalation(
    nats_server: NatsTestServer,
    env: dict[str, str],
    upstreams: Upstreams,
    smtp: tuple[Mailbox, int],
    envelope: Envelopes,
    register: FileRegister,
) -> None:
    mailbox, port = smtp
    config = make_config(port, PEOPLE)
    clock = Clock(T0)
    # Only the evaluation is overdue: no inactivity, and the level-0 decision not yet due
    municipality = with_deadlines(inactivity_days=60, decision_days=60)
    # Given a measure the teacher answers for, to be evaluated on 20 November
    case_id, measure_id = uuid4(), uuid4()
    raise_concern(upstreams, envelope, case_id)
    evaluation = date(2026, 11, 20)
    upstreams.save(
        c.MeasurePlanned(
            **envelope(case_id, T0),
            measure_id=measure_id,
            description=f"Fast voksenkontakt for {CHILD_NAME} i friminuttene",
            responsible=TEACHER,
            service=UNIT,
            evaluation_date=evaluation,
        )
    )
    apps = [notifications(env, config, clock, directory=municipality)]  # restarted below
    try:
        run_policies(env, config, register, municipality)
        apps[-1].deliver()
        seen = list(mailbox.messages)  # the concern's and the measure's own notifications
        mailbox.messages.clear()

        def at(when: str) -> list[str]:
            """Move the clock, run a round, and say who was mailed why."""
            clock.now = {
                "before the lead": T0 + timedelta(days=1),
                "lead": T0 + timedelta(days=15),
                "evaluation passed": T0 + timedelta(days=19),
                "escalation": T0 + timedelta(days=26),
                "much later": T0 + timedelta(days=27),
            }[when]
            apps[-1].tick()
            apps[-1].deliver()
            told = [
                f"{m['X-Envelope-To']}: {' '.join(m['Subject'].split())}" for m in mailbox.messages
            ]
            seen.extend(mailbox.messages)
            mailbox.messages.clear()
            return sorted(told)

        def restart_everything() -> None:
            apps.pop().close()
            nats_server.restart()
            apps.append(notifications(env, config, clock, directory=municipality))

        reference = f"STF-{case_id.hex[:8].upper()}"
        holder, leader = (
            f"{address(TEACHER)}: Stafett {reference}",
            f"{address(LEADER)}: Stafett {reference}",
        )
        # When time passes, then: nothing early; the reminder ahead; the overdue reminder and the
        # baton holder told of the break; and, still nothing done, the unit leader. The service
        # and NATS restart between any two of these: the timers are in the events.
        assert at("before the lead") == []
        assert at("lead") == [f"{holder}: A measure's evaluation date is approaching"]
        restart_everything()
        assert at("evaluation passed") == [
            f"{holder}: A measure's evaluation date has passed",
            f"{holder}: Follow-up break: a case you hold needs attention",
        ]
        restart_everything()
        assert at("escalation") == [
            f"{leader}: Follow-up break: a case in your unit needs attention"
        ]
        restart_everything()
        assert at("much later") == []
        events = notify_events(apps[-1])
        breaks = of_type(events, n.FollowUpBreakDetected)
        assert [(b.stage, b.cause) for b in breaks] == [
            ("baton_holder", "evaluation_overdue"),
            ("unit_leader", "evaluation_overdue"),
        ]
        assert_no_personal_data(seen, upstreams.written)
    finally:
        apps[-1].close()


def test_an_evaluated_measure_is_not_reminded_of(
    env: dict[str, str],
    upstreams: Upstreams,
    smtp: tuple[Mailbox, int],
    envelope: Envelopes,
    register: FileRegister,
) -> None:
    config = make_config(smtp[1], PEOPLE)
    clock = Clock(T0)
    case_id, measure_id = uuid4(), uuid4()
    raise_concern(upstreams, envelope, case_id)
    upstreams.save(
        c.MeasurePlanned(
            **envelope(case_id, T0),
            measure_id=measure_id,
            description="Tiltak",
            responsible=TEACHER,
            service=UNIT,
            evaluation_date=date(2026, 11, 20),
        ),
        c.MeasureEvaluated(
            **envelope(case_id, T0 + timedelta(days=10)),
            measure_id=measure_id,
            outcome=c.MeasureOutcome.WORKED,
            notes="Bra",
        ),
    )
    app = notifications(env, config, clock)
    try:
        run_policies(env, config, register)
        clock.now = T0 + timedelta(days=19)
        app.tick()
        reasons = [e.reason for e in of_type(notify_events(app), n.NotificationRequested)]
        assert not [r for r in reasons if r.startswith(("reminder.", "follow_up_break."))]
    finally:
        app.close()


class CrashAfterSending:
    """Sends for real, then the process dies before it can record that it did."""

    def __init__(self, real: Sender) -> None:
        self.real = real

    def send(self, outgoing: Outgoing) -> None:
        self.real.send(outgoing)
        raise KeyboardInterrupt("killed mid-send")


def test_a_restart_in_the_middle_of_sending_sends_nothing_twice(
    env: dict[str, str],
    upstreams: Upstreams,
    smtp: tuple[Mailbox, int],
    envelope: Envelopes,
    register: FileRegister,
) -> None:
    mailbox, port = smtp
    config = make_config(port, PEOPLE)
    clock = Clock(T0)
    case_id = uuid4()
    raise_concern(upstreams, envelope, case_id)  # the leader and the holder are told
    run_policies(env, config, register)
    first = notifications(env, config, clock)
    crashing = CrashAfterSending(first._senders[n.Channel.EMAIL])
    first._senders = senders(crashing, WebhookSender(config.contacts.webhook_secrets()))
    try:
        # Given the service dies right after its first email left
        with pytest.raises(KeyboardInterrupt):
            first.deliver()
    finally:
        first.close()
    assert len(mailbox.messages) == 1

    # When it starts again, the policies run again and the courier runs, now and later
    run_policies(env, config, register)
    again = notifications(env, config, clock)
    try:
        again.deliver()
        clock.now += timedelta(minutes=5)
        again.deliver()
        again.deliver()
        # Then every person got one email: the interrupted one is not sent again, but failed
        assert sorted(m["X-Envelope-To"] for m in mailbox.messages) == sorted(
            [address(LEADER), address(TEACHER)]
        )
        events = notify_events(again)
        (failed,) = of_type(events, n.NotificationFailed)
        assert "interrupted" in failed.error
        assert len(of_type(events, n.NotificationSent)) == 1
        assert len(of_type(events, n.NotificationRequested)) == 2
        assert again.notification(failed.aggregate_id).status == "failed"
    finally:
        again.close()


def test_a_failing_channel_is_retried_with_backoff_and_ends_in_notification_failed(
    env: dict[str, str], upstreams: Upstreams, envelope: Envelopes, register: FileRegister
) -> None:
    from stafett_runtime.natsserver import free_port

    config = make_config(free_port(), PEOPLE)  # nothing listens there
    clock = Clock(T0)
    case_id = uuid4()
    upstreams.save(
        c.ConcernRaised(**envelope(case_id, T0), child_id=uuid4(), unit=UNIT, concern="Uro")
    )
    run_policies(env, config, register)
    app = notifications(env, config, clock)
    try:
        assert app.deliver() == 1
        assert app.deliver() == 0  # the backoff holds the second attempt
        clock.now += timedelta(minutes=1)
        assert app.deliver() == 1
        clock.now += timedelta(minutes=1)
        assert app.deliver() == 0  # it doubled
        clock.now += timedelta(minutes=1)
        assert app.deliver() == 1
        clock.now += timedelta(days=1)
        assert app.deliver() == 0  # given up
        events = notify_events(app)
        assert [e.attempt for e in of_type(events, n.DeliveryAttemptFailed)] == [1, 2]
        (failed,) = of_type(events, n.NotificationFailed)
        assert failed.attempts == 3
        assert "smtp" in failed.error
        (view,) = app.notifications_of(case_id)
        assert (view.status, view.attempts, view.recipient) == ("failed", 3, LEADER)
    finally:
        app.close()


def test_a_withdrawn_consent_tells_each_service_that_loses_access_by_signed_webhook(
    env: dict[str, str], upstreams: Upstreams, envelope: Envelopes, register: FileRegister
) -> None:
    received: list[httpx.Request] = []

    def integrator(request: httpx.Request) -> httpx.Response:
        received.append(request)
        return httpx.Response(204)

    secrets = {s: new_secret() for s in ("ppt", "bup")}
    hooks = {
        s: Contact(webhook=f"https://{s}.example/hook", webhook_secret=secrets[s])
        for s in ("ppt", "bup")
    }
    config = make_config(1, PEOPLE, contacts=hooks)
    case_id, consent_id = uuid4(), uuid4()
    upstreams.save(
        k.ConsentGiven(
            **envelope(consent_id, T0),
            case_id=case_id,
            child_id=uuid4(),
            given_by=k.Party(kind="guardian", person=GUARDIAN),
            services=("ppt", "bup"),
            purposes=(k.Purpose.COOPERATION,),
            valid_from=T0,
            valid_until=T0 + timedelta(days=365),
            evidence=k.Evidence(form="oral", recorded_by=TEACHER),
        ),
        k.ConsentWithdrawn(**envelope(consent_id, T0 + timedelta(days=1)), reason="Vi flytter"),
    )
    run_policies(env, config, register)
    webhook = WebhookSender(
        config.contacts.webhook_secrets(), httpx.Client(transport=httpx.MockTransport(integrator))
    )
    app = Notifications(env, config, senders(webhook, webhook), MUNICIPALITY, Clock(T0))
    try:
        app.deliver()
        app.deliver()
        assert sorted(str(r.url) for r in received) == [
            "https://bup.example/hook",
            "https://ppt.example/hook",
        ]
        for request in received:
            # Each service verifies its webhook with its own secret, by Standard Webhooks'
            # reference library: signature, and a timestamp within its replay window
            service = str(request.url.host).split(".")[0]
            body = Webhook(secrets[service]).verify(request.content, dict(request.headers))
            assert request.headers["webhook-id"] == body["notification_id"]
            assert body["case_id"] == str(case_id)
            assert body["reason"] == "consent_withdrawn"
            assert "Vi flytter" not in request.content.decode()
    finally:
        app.close()


def test_the_guardians_told_are_those_the_register_names_not_those_who_consented(
    env: dict[str, str],
    upstreams: Upstreams,
    smtp: tuple[Mailbox, int],
    envelope: Envelopes,
    register: FileRegister,
) -> None:
    mailbox, port = smtp
    config = make_config(port, (*PEOPLE, FATHER, UNCLE, COORDINATOR))
    # Given a child whose guardians, as the register says, are the mother and the father
    child = a_child(GUARDIAN, FATHER)
    register.add(child)
    case_id, consent_id = uuid4(), uuid4()
    raise_concern(upstreams, envelope, case_id, child.child_id)
    # And a consent given by the uncle, whom the register does not name; the parents gave none
    upstreams.save(
        k.ConsentGiven(
            **envelope(consent_id, T0),
            case_id=case_id,
            child_id=child.child_id,
            given_by=k.Party(kind="guardian", person=UNCLE),
            services=(UNIT,),
            purposes=(k.Purpose.COOPERATION,),
            valid_from=T0,
            valid_until=T0 + timedelta(days=365),
            evidence=k.Evidence(form="oral", recorded_by=TEACHER),
        ),
    )
    # When a bright spot is noted and a coordinator assigned
    upstreams.save(
        c.BrightSpotNoted(**envelope(case_id, T0), note=f"{CHILD_NAME} lo hele dagen"),
        c.CoordinatorAssigned(**envelope(case_id, T0), coordinator=COORDINATOR, service="ppt"),
    )
    app = notifications(env, config, Clock(T0))
    try:
        run_policies(env, config, register)
        app.deliver()

        # Then each guardian in the register is told of both, though neither consented
        def subjects(person: str) -> list[str]:
            return sorted(
                " ".join(str(m["Subject"]).split()[2:]) for m in mailbox.to(address(person))
            )

        for guardian in (GUARDIAN, FATHER):
            assert subjects(guardian) == [
                "A coordinator was assigned in a case",
                "Something good was noted in a case",
            ]
        assert subjects(COORDINATOR) == ["A coordinator was assigned in a case"]
        # And the uncle, who consented but is no guardian in the register, is told nothing
        assert subjects(UNCLE) == []
        assert_no_personal_data(mailbox.messages, upstreams.written)
    finally:
        app.close()


class Municipality:
    """The municipality directory as it stands: a leader may change while the service runs."""

    def __init__(self, directory: Directory) -> None:
        self.directory = directory

    def current(self) -> Directory:
        return self.directory


def test_the_leader_told_is_the_one_the_municipality_directory_names(
    env: dict[str, str],
    upstreams: Upstreams,
    smtp: tuple[Mailbox, int],
    envelope: Envelopes,
    register: FileRegister,
) -> None:
    mailbox, port = smtp
    new_leader = "rektor-fjell-2"
    config = make_config(port, (TEACHER, "rektor-fjell", new_leader))
    municipality = Municipality(TEST_DIRECTORY)
    clock = Clock(T0)
    # Given a concern raised at Fjell skole, which the directory says rektor-fjell leads
    case_id = uuid4()
    upstreams.save(
        c.ConcernRaised(
            **envelope(case_id, T0), child_id=uuid4(), unit="skole-fjell", concern="Uro"
        ),
        c.BatonHolderAppointed(**envelope(case_id, T0), holder=TEACHER, service="skole-fjell"),
    )
    app = notifications(env, config, clock, directory=municipality)
    try:
        # When the policies run, then rektor-fjell is told of the concern
        run_policies(env, config, register, municipality)
        app.deliver()
        assert [m["X-Envelope-To"] for m in mailbox.messages if "concern" in m["Subject"]] == [
            address("rektor-fjell")
        ]
        mailbox.messages.clear()

        # Given the municipality then names a new leader of Fjell skole
        fjell = TEST_DIRECTORY.units["skole-fjell"]
        units = {
            **TEST_DIRECTORY.units,
            "skole-fjell": msgspec.structs.replace(fjell, leader=new_leader),
        }
        municipality.directory = msgspec.structs.replace(TEST_DIRECTORY, units=units)
        # When the case's follow-up break is escalated to the unit leader
        clock.now = T0 + timedelta(days=21)
        app.tick()
        app.deliver()
        # Then the leader the directory names now is told, and no one else of the unit's past
        escalated = [m for m in mailbox.messages if "in your unit" in m["Subject"]]
        assert [m["X-Envelope-To"] for m in escalated] == [address(new_leader)]
        assert mailbox.to(address("rektor-fjell")) == []
    finally:
        app.close()


def test_a_redelivered_event_requests_nothing_twice(
    env: dict[str, str], upstreams: Upstreams, envelope: Envelopes, register: FileRegister
) -> None:
    config = make_config(1, PEOPLE)
    case_id = uuid4()
    # Given a case with a measure, whose events the policy has processed
    raise_concern(upstreams, envelope, case_id)
    upstreams.save(
        c.MeasurePlanned(
            **envelope(case_id, T0),
            measure_id=uuid4(),
            description="Fast voksenkontakt",
            responsible=TEACHER,
            service=UNIT,
            evaluation_date=date(2026, 11, 20),
        )
    )
    run_policies(env, config, register)
    policy = NotifyPolicy(env, config, register, MUNICIPALITY)
    case_stream = Upstream.named("case", {**env, **CONTRACT_ENV})
    try:
        before = notify_events_of(policy)
        processed = case_stream.recorder.select_notifications(1, 3)
        # When the first event comes again: through the loop, which knows it processed it,
        loop = ProcessingLoop(policy, case_stream)
        loop.process_once(processed[0])
        # and each as if its tracking were lost (another replica): decided again, on the
        # notifications and reminders its first processing made, whose ids are derived from it
        for lost, notification in enumerate(processed, start=10_000):
            event = case_stream.mapper.to_domain_event(notification)
            policy.process_event(event, Tracking("case", lost))
            # Then nothing new is decided: only the position is recorded
            assert policy.recorder.has_tracking_id("case", lost)
        assert notify_events_of(policy) == before
        requested = of_type(before, n.NotificationRequested)
        reminders = of_type(before, n.ReminderScheduled)
        assert (len(requested), len(reminders)) == (3, 2)
        # And each event's id is the one its stream, aggregate and version derive
        made = [*requested, *reminders]
        assert all(e.event_id == event_id("NOTIFY", e.aggregate_id, 1) for e in made)
    finally:
        policy.close()
        case_stream.close()


def test_a_due_break_is_recorded_once_with_its_notification_whichever_replica_ticks(
    env: dict[str, str], upstreams: Upstreams, envelope: Envelopes, register: FileRegister
) -> None:
    config = make_config(1, PEOPLE)
    # Given a case the teacher holds, with nothing done on it for 15 days (a break after 14)
    case_id = uuid4()
    raise_concern(upstreams, envelope, case_id)
    run_policies(env, config, register)
    clock = Clock(T0 + timedelta(days=15))
    replicas = [notifications(env, config, clock) for _ in range(2)]
    try:
        # When both replicas' timers come round, one after the other
        recorded = [replica.tick() for replica in replicas]
        events = notify_events(replicas[1])
    finally:
        for replica in replicas:
            replica.close()
    # Then the first records the break, the second nothing
    assert recorded == [1, 0]
    (detected,) = of_type(events, n.FollowUpBreakDetected)
    assert (detected.cause, detected.stage) == ("inactivity", "baton_holder")
    assert detected.event_id == event_id("NOTIFY", detected.aggregate_id, 1)
    # And its holder is told once, caused by the detection and in its correlation
    told = [e for e in of_type(events, n.NotificationRequested) if e.trigger == detected.event_id]
    assert [(e.recipient, e.reason) for e in told] == [(TEACHER, "follow_up_break.baton_holder")]
    assert (told[0].causation_id, told[0].correlation_id) == (
        str(detected.event_id),
        detected.correlation_id,
    )


def notify_events_of(policy: NotifyPolicy) -> list[Event]:
    found = policy.recorder.select_notifications(1, 10_000)
    return [e for e in map(policy.mapper.to_domain_event, found) if isinstance(e, Event)]
