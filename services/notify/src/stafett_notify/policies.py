"""What the notify service learns from the case, consent and meeting streams, exactly once.

`NotifyPolicy` runs on the one command path (`stafett_runtime.commands.Policy`): its
translation (`NotifyOrders`) turns each upstream event into orders, a `Request` for each
notification the event asks for (`domain.rules.tell`, one per recipient and channel) and a
`ScheduleReminder` for each reminder it sets, and their events are written in one atomic batch
with the upstream position (tracking). A redelivered event is refused by the tracking record;
the notifications' and reminders' ids are derived from the event besides, so one decided again
(its tracking lost, another replica) decides nothing new. Sending happens later, from the NOTIFY
stream (`Notifications.deliver`): a crash between deciding and sending loses nothing.

Who is concerned is read as of the event: the case (`stafett_contracts.casefile`, the one fold)
and the meeting folded up to its version; the guardians of the case's child from the population
register, never from who happened to consent; the unit leaders from the municipality directory.
The register is asked only for the events that tell the guardians; if it does not answer, the
policy stops on that event (and the service is not ready) rather than tell nobody. A consent
withdrawn is told to the leader of its case's unit, so the case is read as it stands then.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

import structlog
from eventsourcing.utils import EnvType

from stafett_contracts import case as c
from stafett_contracts import consent as k
from stafett_contracts import meeting as m
from stafett_contracts.casefile import CaseFile, fold
from stafett_contracts.envelope import Event
from stafett_notify.application import NOTIFICATION, REMINDER, SYSTEM, request_orders
from stafett_notify.config import NotifyConfig
from stafett_notify.domain.facts import MeetingFacts
from stafett_notify.domain.rules import (
    TELLS_GUARDIANS,
    Concerned,
    Reminder,
    lead_of,
    reminders_after_evaluation,
    reminders_for,
    tell,
)
from stafett_notify.domain.timers import schedule
from stafett_runtime.commands import Order, Policy, caused_by
from stafett_runtime.contracts import CONTRACT_ENV
from stafett_runtime.directory import DirectorySource
from stafett_runtime.processing import Upstream
from stafett_runtime.register import Register

UPSTREAMS = ("case", "consent", "meeting")

log = structlog.get_logger(__name__)


class NotifyOrders:
    """The translation of an upstream event into the orders of the NOTIFY stream: who is told
    (a request per recipient and channel) and which reminders it sets."""

    def __init__(
        self,
        config: NotifyConfig,
        register: Register,
        directory: DirectorySource,
        streams: dict[str, Upstream],
    ) -> None:
        self.config = config
        self._register = register
        self._directory = directory
        self._streams = streams

    def __call__(self, event: Event) -> list[Order[Any, Any]]:
        around, reminders = self._around(event)
        orders: list[Order[Any, Any]] = []
        for told in tell(event, around):
            orders += request_orders(told, event, event.event_id, self.config, event.occurred_at)
        case_id = event.case_id if isinstance(event, m.MeetingEvent) else event.aggregate_id
        context = caused_by(event, SYSTEM, self._directory.current())
        for reminder in reminders:
            scheduled = schedule(case_id, reminder, set_by=event.event_id)
            orders.append(Order(scheduled.reminder_id, scheduled, context, REMINDER))
        return orders

    def _around(self, event: Event) -> tuple[Concerned, list[Reminder]]:
        lead = lead_of(self._directory.current())
        match event:
            case c.CaseEvent():
                case = self._case(event)
                reminders = reminders_for(event, lead)
                if isinstance(event, c.MeasureEvaluated):
                    reminders = reminders_after_evaluation(event, case, lead)
                guardians = self._guardians(case) if isinstance(event, TELLS_GUARDIANS) else ()
                around = Concerned(
                    case=case, guardians=guardians, directory=self._directory.current()
                )
                return around, reminders
            case m.MeetingEvent():
                meeting = MeetingFacts()
                for earlier in self._history(
                    "meeting", event.aggregate_id, event.aggregate_version
                ):
                    meeting.take_in(earlier)
                return Concerned(meeting=meeting), reminders_for(event, lead)
            case k.ConsentWithdrawn():
                case_id: UUID | None = None
                services: tuple[str, ...] = ()
                for earlier in self._history(
                    "consent", event.aggregate_id, event.aggregate_version
                ):
                    if isinstance(earlier, k.ConsentGiven):
                        case_id, services = earlier.case_id, earlier.services
                    elif isinstance(earlier, k.ConsentScopeChanged):
                        services = earlier.services
                around = Concerned(
                    case=None if case_id is None else self._case_now(case_id),
                    directory=self._directory.current(),
                    consent_case_id=case_id,
                    consent_services=services,
                )
                return around, []
        return Concerned(), []

    def _history(self, stream: str, aggregate_id: UUID, up_to: int) -> list[Event]:
        events = self._streams[stream].events.get(aggregate_id, lte=up_to)
        return [e for e in events if isinstance(e, Event)]

    def _case(self, event: c.CaseEvent) -> CaseFile:
        """The case as its events stand with `event`."""
        history = self._history("case", event.aggregate_id, event.aggregate_version)
        case = fold(e for e in history if isinstance(e, c.CaseEvent))
        assert case is not None  # a case's stream begins with its ConcernRaised
        return case

    def _case_now(self, case_id: UUID) -> CaseFile | None:
        """The case as its events stand now (for a consent event, which names only the case);
        its unit, whose leader is told, never changes."""
        history = self._streams["case"].events.get(case_id)
        return fold(e for e in history if isinstance(e, c.CaseEvent))

    def _guardians(self, case: CaseFile) -> tuple[str, ...]:
        """The guardians of the case's child, as the population register says now."""
        child = self._register.child(case.child_id)
        if child is None:
            log.warning("the register does not know the case's child", case_id=case.id)
            return ()
        return child.guardians


class NotifyPolicy(Policy):
    name = "notify"  # writes to the NOTIFY stream, beside Notifications

    def __init__(
        self,
        env: EnvType | None,
        config: NotifyConfig,
        register: Register,
        directory: DirectorySource,
    ) -> None:
        upstream_env = {**(env or {}), **CONTRACT_ENV}
        self._streams = {name: Upstream.named(name, upstream_env) for name in UPSTREAMS}
        super().__init__(
            env, NOTIFICATION, NotifyOrders(config, register, directory, self._streams)
        )

    def close(self) -> None:
        for upstream in self._streams.values():
            upstream.close()
        super().close()
