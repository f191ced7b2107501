"""The notify service's eventsourcing application: notifications, timers and their read model.

Synchronous, on worker threads. It writes the NOTIFY stream and reads, never writes, the CASE
and MEETING streams. Everything it knows (pending notifications, reminders, follow-up breaks,
the cases' last activity) is folded from those streams into a `Watch` on start and kept up to
date by reading on from where it left off: no timer lives only in memory, so they survive a
restart of the service and of NATS.

Two rounds do the work, both called with the time from outside (a clock the tests drive):
`tick(now)` records the reminders and follow-up breaks that are due, each as a notification
request (to a unit's leader as the municipality directory names them then); `deliver(now)`
sends what is requested. Every id is derived from what it is about (`domain.ids`), so doing a
round twice, or in two replicas, collides instead of repeating.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any
from uuid import UUID, uuid4

import structlog
from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.persistence import IntegrityError
from eventsourcing.utils import EnvType

from stafett_contracts import notify as n
from stafett_contracts.envelope import Event
from stafett_contracts.identity import Actor, Role
from stafett_notify.channels import ChannelError, Outgoing, Sender
from stafett_notify.config import NotifyConfig
from stafett_notify.domain.delivery import Delivery, fold, next_step, retry_at
from stafett_notify.domain.facts import NotificationView, Watch
from stafett_notify.domain.ids import derived_id
from stafett_notify.domain.rules import BreakFound, ReminderDue, Told, due, link, reference
from stafett_runtime.contracts import CONTRACT_ENV, ContractApplication
from stafett_runtime.directory import DirectorySource
from stafett_runtime.processing import Upstream

SYSTEM = Actor(person="notify", role=Role.SYSTEM, service="notify")
_PAGE = 500

log = structlog.get_logger(__name__)


def utc_now() -> datetime:
    return datetime.now(UTC)


def stamp(
    aggregate_id: UUID, version: int, at: datetime, correlation_id: str, causation_id: str | None
) -> dict[str, Any]:
    """The envelope of an event the notify service records (DOMAIN.md rule 9)."""
    return {
        "event_id": uuid4(),
        "aggregate_id": aggregate_id,
        "aggregate_version": version,
        "occurred_at": at,
        "actor": SYSTEM,
        "correlation_id": correlation_id,
        "causation_id": causation_id,
    }


def request_events(
    told: Told,
    trigger: Event,
    key: object,
    config: NotifyConfig,
    at: datetime,
) -> list[Event]:
    """A NotificationRequested per channel the recipient has (and its invitation), each with an
    id derived from `key`, recipient and channel: requesting it again is a conflict."""
    events: list[Event] = []
    for channel in config.contacts.channels_for(told.recipient):
        notification_id = derived_id("notification", key, told.recipient, channel)
        envelope = stamp(notification_id, 1, at, trigger.correlation_id, str(trigger.event_id))
        about = told.meeting_id or told.case_id or trigger.aggregate_id
        events.append(
            n.NotificationRequested(
                **envelope,
                case_id=told.case_id,
                recipient=told.recipient,
                channel=channel,
                reason=told.reason,
                trigger=trigger.event_id,
                reference=reference(told.case_id, about),
                link=link(config.link_base, told.case_id, told.meeting_id),
                calendar=told.invitation is not None,
            )
        )
        if told.invitation is not None:
            invitation = told.invitation
            events.append(
                n.CalendarInvitationPrepared(
                    **{**envelope, "event_id": uuid4(), "aggregate_version": 2},
                    meeting_id=invitation.meeting_id,
                    method=invitation.method,
                    sequence=invitation.sequence,
                    starts_at=invitation.starts_at,
                    ends_at=invitation.ends_at,
                    video_link=invitation.video_link,
                )
            )
    return events


class Notifications(ContractApplication):
    name = "notify"  # stream NOTIFY, subjects notify.events.<id>.<EventType>

    def __init__(
        self,
        env: EnvType | None,
        config: NotifyConfig,
        senders: Mapping[n.Channel, Sender],
        directory: DirectorySource,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        super().__init__(env)
        self.config = config
        self._senders = senders
        self._directory = directory
        self._clock = clock
        upstream_env = {**(env or {}), **CONTRACT_ENV}
        self._upstreams: list[Application[Any]] = [
            Upstream.named("case", upstream_env),
            Upstream.named("meeting", upstream_env),
        ]
        self._watch = Watch()
        self._positions: dict[str, int] = {}
        self._lock = threading.Lock()

    def close(self) -> None:
        for upstream in self._upstreams:
            upstream.close()
        super().close()

    # The read model.

    def catch_up(self) -> None:
        """Fold what the streams hold beyond where the watch left off, in order per stream.

        Pages are read with no lock held (a read may wait on NATS, and other requests must not
        wait behind it); each page is taken in under the lock, in order, skipping what another
        thread took in meanwhile, so every event is folded once.
        """
        for app in (self, *self._upstreams):
            self._read_on(app)

    def _read_on(self, app: Application[Any]) -> None:
        while True:
            with self._lock:
                position = self._positions.get(app.name, 0)
            try:
                page = app.recorder.select_notifications(position + 1, _PAGE)
            except Exception as error:  # a stream not made yet by its service: read it later
                log.debug("stream not readable yet", stream=app.name, reason=str(error))
                return
            with self._lock:
                for notification in page:
                    if notification.id <= self._positions.get(app.name, 0):
                        continue  # another thread took it in already
                    event = app.mapper.to_domain_event(notification)
                    if isinstance(event, Event):
                        self._watch.take_in(event)
                    self._positions[app.name] = notification.id
            if len(page) < _PAGE:
                return

    def notifications_of(self, case_id: UUID) -> list[NotificationView]:
        self.catch_up()
        with self._lock:
            views = [v for v in self._watch.notifications.values() if v.case_id == case_id]
        return sorted(views, key=lambda v: v.requested_at)

    def notification(self, notification_id: UUID) -> NotificationView:
        self.catch_up()
        with self._lock:
            view = self._watch.notifications.get(notification_id)
        if view is None:
            raise AggregateNotFoundError(f"notification {notification_id}")
        return view

    # The timers.

    def tick(self, now: datetime | None = None) -> int:
        """Record the reminders and follow-up breaks due at `now`; how many were new."""
        now = now or self._clock()
        self.catch_up()
        with self._lock:
            found = due(self._watch, now, self.config.timers, self._directory.current())
        recorded = 0
        for item in found:
            try:
                self.save(*self._events_of(item, now))
            except IntegrityError:
                log.info("already recorded elsewhere", item=repr(item))
                continue
            recorded += 1
        self.catch_up()
        return recorded

    def _events_of(self, item: ReminderDue | BreakFound, now: datetime) -> list[Event]:
        if isinstance(item, ReminderDue):
            reminder = item.reminder
            told = Told(
                recipient=reminder.recipient,
                reason=f"reminder.{reminder.kind}",
                case_id=reminder.case_id,
            )
            return request_events(told, reminder, reminder.aggregate_id, self.config, now)
        detected = n.FollowUpBreakDetected(
            **stamp(item.id, 1, now, f"follow-up-break-{item.case_id}", None),
            case_id=item.case_id,
            unit=item.unit,
            last_activity_at=item.last_activity_at,
            stage=item.stage,
            cause=item.cause,
        )
        if item.recipient is None:
            log.warning("follow-up break with nobody to tell", case_id=item.case_id)
            return [detected]
        told = Told(
            recipient=item.recipient, reason=f"follow_up_break.{item.stage}", case_id=item.case_id
        )
        return [detected, *request_events(told, detected, item.id, self.config, now)]

    # Delivery.

    def deliver(self, now: datetime | None = None) -> int:
        """Send what is requested and due; how many attempts were made."""
        self.catch_up()
        with self._lock:
            pending = [v.id for v in self._watch.pending()]
        attempts = 0
        for notification_id in pending:
            history = [e for e in self.events.get(notification_id) if isinstance(e, Event)]
            delivery = fold(history)
            if delivery is None:
                continue
            step = next_step(delivery, now or self._clock(), self.config.delivery)
            if step == "send":
                attempts += self._attempt(delivery)
            elif step == "interrupted":
                self._finish_interrupted(delivery)
        self.catch_up()
        return attempts

    def _next(self, delivery: Delivery, at: datetime) -> dict[str, Any]:
        requested = delivery.requested
        return stamp(
            requested.aggregate_id,
            delivery.version + 1,
            at,
            requested.correlation_id,
            str(requested.event_id),
        )

    def _attempt(self, delivery: Delivery) -> int:
        requested, attempt = delivery.requested, delivery.attempts + 1
        started = n.DeliveryAttempted(
            **self._next(delivery, self._clock()),
            channel=requested.channel,
            attempt=attempt,
            started_at=self._clock(),
        )
        try:
            self.save(started)  # before the send: a crash after it leaves a trace
        except IntegrityError:
            return 0  # another round or replica took it
        delivery.version += 1
        address = self.config.contacts.address(requested.recipient, requested.channel)
        outcome: Event
        try:
            if address is None:
                raise ChannelError(f"no {requested.channel} address in the contact directory")
            self._senders[requested.channel].send(
                Outgoing(requested=requested, invitation=delivery.invitation, address=address)
            )
        except ChannelError as error:
            now = self._clock()
            again = retry_at(attempt, now, self.config.delivery) if address else None
            log.warning(
                "delivery attempt failed", notification=requested.aggregate_id, error=str(error)
            )
            if again is None:
                outcome = n.NotificationFailed(
                    **self._next(delivery, now),
                    channel=requested.channel,
                    attempts=attempt,
                    error=str(error)[:10_000],
                )
            else:
                outcome = n.DeliveryAttemptFailed(
                    **self._next(delivery, now),
                    channel=requested.channel,
                    attempt=attempt,
                    error=str(error)[:10_000],
                    retry_at=again,
                )
        else:
            now = self._clock()
            outcome = n.NotificationSent(
                **self._next(delivery, now),
                channel=requested.channel,
                attempts=attempt,
                sent_at=now,
            )
        self.save(outcome)
        return 1

    def _finish_interrupted(self, delivery: Delivery) -> None:
        requested = delivery.requested
        failed = n.NotificationFailed(
            **self._next(delivery, self._clock()),
            channel=requested.channel,
            attempts=delivery.attempts,
            error=(
                f"attempt {delivery.attempts} was interrupted mid-send; its outcome is unknown, "
                "so it is not sent again (at most once)"
            ),
        )
        try:
            self.save(failed)
        except IntegrityError:
            log.info("interrupted attempt already settled", notification=requested.aggregate_id)
