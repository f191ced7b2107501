"""The notify service's eventsourcing application: notifications, timers and their read model.

Synchronous, on worker threads. It writes the NOTIFY stream and reads, never writes, the CASE
and MEETING streams. Everything it knows (pending notifications, reminders, follow-up breaks,
the cases' last activity) is folded from those streams into a `Watch` on start and kept up to
date by reading on from where it left off: no timer lives only in memory, so they survive a
restart of the service and of NATS.

Two rounds do the work, both called with the time from outside (a clock the tests drive):
`tick(now)` records the reminders and follow-up breaks that are due, each with its notification
requests (to a unit's leader as the municipality directory names them then); `deliver(now)`
sends what is requested. Both go the one command path (`stafett_runtime.commands`), on the
aggregates of the NOTIFY stream: a notification (`NOTIFICATION`, `domain.delivery`), a reminder
(`REMINDER`) and a follow-up break (`FOLLOW_UP_BREAK`, `domain.timers`). Every id is derived
from what it is about (`domain.ids`), so doing a round twice, or in two replicas, decides
nothing the second time, or collides in the store instead of repeating.

`tick` writes what one due item decides (a break's detection and its requests) in one atomic
append, so a crash leaves all of it or none. A delivery's `StartAttempt` is written before the
send and `RecordOutcome` after it, each guarded by the notification's version, so of two rounds
or replicas only one sends; an attempt that never got its outcome is ended by
`GiveUpInterrupted`, never sent again.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import structlog
from eventsourcing.application import AggregateNotFoundError
from eventsourcing.persistence import IntegrityError
from eventsourcing.utils import EnvType

from stafett_contracts import notify as n
from stafett_contracts.envelope import Event
from stafett_contracts.identity import Actor, Role
from stafett_notify.channels import ChannelError, Outgoing, Sender
from stafett_notify.config import NotifyConfig
from stafett_notify.domain.delivery import (
    Command,
    Delivery,
    DeliveryContext,
    GiveUpInterrupted,
    RecordOutcome,
    Request,
    StartAttempt,
    decide,
    evolve,
    next_step,
    requests_for,
)
from stafett_notify.domain.facts import NotificationView, Watch
from stafett_notify.domain.rules import BreakFound, ReminderDue, Told, due
from stafett_notify.domain.timers import (
    DetectBreak,
    ScheduleReminder,
    decide_break,
    decide_reminder,
    evolve_break,
    evolve_reminder,
)
from stafett_runtime.commands import AggregateType, Commands, Decision, Order
from stafett_runtime.contracts import CONTRACT_ENV, ContractApplication
from stafett_runtime.directory import DirectorySource
from stafett_runtime.domain import Context
from stafett_runtime.index import Index, Source
from stafett_runtime.processing import Upstream

SYSTEM = Actor(person="notify", role=Role.SYSTEM, service="notify")
# A notification, as its delivery goes: requested by the policy and the timers, then attempted,
# sent or failed on the one command path.
NOTIFICATION = AggregateType[Delivery, Command, DeliveryContext](
    name="notification", evolve=evolve, decide=decide, creates=(Request,)
)
# A reminder, scheduled by the policy; a follow-up break, detected by the timers.
REMINDER = AggregateType[n.ReminderScheduled, ScheduleReminder, Context](
    name="reminder", evolve=evolve_reminder, decide=decide_reminder, creates=(ScheduleReminder,)
)
FOLLOW_UP_BREAK = AggregateType[n.FollowUpBreakDetected, DetectBreak, Context](
    name="follow-up break", evolve=evolve_break, decide=decide_break, creates=(DetectBreak,)
)

log = structlog.get_logger(__name__)


def utc_now() -> datetime:
    return datetime.now(UTC)


def request_orders(
    told: Told, trigger: Event, key: object, config: NotifyConfig, at: datetime
) -> list[Order[Command, DeliveryContext]]:
    """The orders that request `told`'s notifications about `key` at `at`, one per channel the
    recipient has (`domain.delivery.requests_for`), each caused by `trigger` and in its
    correlation (DOMAIN.md rule 9)."""
    context = DeliveryContext(
        actor=SYSTEM,
        now=at,
        correlation_id=trigger.correlation_id,
        causation_id=str(trigger.event_id),
        rules=config.delivery,
    )
    channels = config.contacts.channels_for(told.recipient)
    return [
        Order(request.notification_id, request, context, NOTIFICATION)
        for request in requests_for(told, trigger, key, channels, config.link_base)
    ]


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
        self.commands = Commands[Delivery, Command, DeliveryContext](self, NOTIFICATION)
        self.breaks = Commands[n.FollowUpBreakDetected, DetectBreak, Context](self, FOLLOW_UP_BREAK)
        upstream_env = {**(env or {}), **CONTRACT_ENV}
        self._upstreams = [Upstream.named(name, upstream_env) for name in ("case", "meeting")]
        # The other services' streams may not be made yet: each is read once it is there.
        upstreams = [Source(upstream, optional=True) for upstream in self._upstreams]
        self._watch = Index(Watch(), Source(self), *upstreams)

    def close(self) -> None:
        for upstream in self._upstreams:
            upstream.close()
        super().close()

    # The read model.

    def catch_up(self) -> None:
        """Fold what the streams hold beyond where the watch left off, in order per stream."""
        self._watch.catch_up()

    def notifications_of(self, case_id: UUID) -> list[NotificationView]:
        with self._watch.caught_up() as watch:
            views = [v for v in watch.notifications.values() if v.case_id == case_id]
        return sorted(views, key=lambda v: v.requested_at)

    def notification(self, notification_id: UUID) -> NotificationView:
        with self._watch.caught_up() as watch:
            view = watch.notifications.get(notification_id)
        if view is None:
            raise AggregateNotFoundError(f"notification {notification_id}")
        return view

    # The timers.

    def tick(self, now: datetime | None = None) -> int:
        """Record the reminders and follow-up breaks due at `now`; how many were new."""
        now = now or self._clock()
        directory = self._directory.current()
        with self._watch.caught_up() as watch:
            found = due(watch, now, directory)
        recorded = sum(self._write_due(item, now) for item in found)
        self.catch_up()
        return recorded

    def _write_due(self, item: ReminderDue | BreakFound, now: datetime) -> bool:
        """Decide what a due item asks for and write it in one atomic append: False if nothing
        was new (another round or replica recorded it first)."""
        decisions = self._decide_due(item, now)
        if not any(decision.events for _, decision in decisions):
            return False
        try:
            self.save(*(event for _, decision in decisions for event in decision.events))
        except IntegrityError:
            log.info("already recorded elsewhere", item=repr(item))
            return False
        for commands, decision in decisions:
            commands.written(decision)
        return True

    def _decide_due(
        self, item: ReminderDue | BreakFound, now: datetime
    ) -> list[tuple[Commands[Any, Any, Any], Decision[Any]]]:
        if isinstance(item, ReminderDue):
            reminder = item.reminder
            told = Told(
                recipient=reminder.recipient,
                reason=f"reminder.{reminder.kind}",
                case_id=reminder.case_id,
            )
            return self._requests(told, reminder, reminder.aggregate_id, now)
        context = Context(actor=SYSTEM, now=now, correlation_id=f"follow-up-break-{item.case_id}")
        detect = DetectBreak(
            break_id=item.id,
            case_id=item.case_id,
            unit=item.unit,
            last_activity_at=item.last_activity_at,
            stage=item.stage,
            cause=item.cause,
        )
        detected = self.breaks.decide(item.id, detect, context)
        if not detected.events:
            return []  # detected already: its notifications were requested with it
        if item.recipient is None:
            log.warning("follow-up break with nobody to tell", case_id=item.case_id)
            return [(self.breaks, detected)]
        told = Told(
            recipient=item.recipient, reason=f"follow_up_break.{item.stage}", case_id=item.case_id
        )
        (cause,) = detected.events
        return [(self.breaks, detected), *self._requests(told, cause, item.id, now)]

    def _requests(
        self, told: Told, trigger: Event, key: object, now: datetime
    ) -> list[tuple[Commands[Any, Any, Any], Decision[Any]]]:
        return [
            (self.commands, self.commands.decide(o.aggregate_id, o.command, o.context))
            for o in request_orders(told, trigger, key, self.config, now)
        ]

    # Delivery.

    def deliver(self, now: datetime | None = None) -> int:
        """Send what is requested and due; how many attempts were made."""
        with self._watch.caught_up() as watch:
            pending = [v.id for v in watch.pending()]
        attempts = 0
        for notification_id in pending:
            delivery = self.commands.load(notification_id).state
            if delivery is None:
                continue
            step = next_step(delivery, now or self._clock(), self.config.delivery)
            if step == "send":
                attempts += self._attempt(delivery, now or self._clock())
            elif step == "interrupted":
                self._settle(delivery, GiveUpInterrupted(), self._clock())
        self.catch_up()
        return attempts

    def _attempt(self, delivery: Delivery, now: datetime) -> int:
        """Record the attempt, send it, record what the channel said: 1 if this round sent."""
        started = self._settle(delivery, StartAttempt(), now)
        if started is None:
            return 0  # another round or replica took it, or it is no longer due
        assert isinstance(started, n.DeliveryAttempted)
        requested = delivery.requested
        address = self.config.contacts.address(requested.recipient, requested.channel)
        outcome = RecordOutcome(attempt=started.attempt)
        try:
            if address is None:
                raise ChannelError(f"no {requested.channel} address in the contact directory")
            self._senders[requested.channel].send(
                Outgoing(requested=requested, invitation=delivery.invitation, address=address)
            )
        except ChannelError as error:
            log.warning(
                "delivery attempt failed", notification=requested.aggregate_id, error=str(error)
            )
            outcome = RecordOutcome(
                attempt=started.attempt, error=str(error), retryable=address is not None
            )
        self._settle(delivery, outcome, self._clock())
        return 1

    def _settle(self, delivery: Delivery, command: Command, at: datetime) -> Event | None:
        """Decide `command` on the notification and write it: the event written, if any."""
        requested = delivery.requested
        context = DeliveryContext(
            actor=SYSTEM,
            now=at,
            correlation_id=requested.correlation_id,
            causation_id=str(requested.event_id),
            rules=self.config.delivery,
        )
        try:
            decision = self.commands.handle(requested.aggregate_id, command, context)
        except IntegrityError:  # others kept writing to it: theirs is the next step
            log.info("delivery step taken elsewhere", notification=requested.aggregate_id)
            return None
        return decision.events[0] if decision.events else None
