"""What the notify service learns from the case, consent and meeting streams, exactly once.

`NotifyPolicy` is a process application: for each upstream event it records, in one atomic
write with the upstream position (tracking), the notifications the event asks for
(`domain.rules.tell`) and the reminders it sets (`ReminderScheduled`). A redelivered event is
refused by the tracking record; the notification's id is derived from the event besides, so
it can never be requested twice. Sending happens later, from the NOTIFY stream
(`Notifications.deliver`): a crash between deciding and sending loses nothing.

Who is concerned is read from the upstream streams as of the event: the case and the meeting
folded up to its version, the guardians from the consents given for the case.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from uuid import UUID

import structlog
from eventsourcing.application import ProcessingEvent
from eventsourcing.domain import DomainEventProtocol
from eventsourcing.utils import EnvType

from stafett_contracts import case as c
from stafett_contracts import consent as k
from stafett_contracts import meeting as m
from stafett_contracts import notify as n
from stafett_contracts.envelope import Event, topic_of
from stafett_notify.application import request_events, stamp
from stafett_notify.config import NotifyConfig
from stafett_notify.domain.facts import CaseFacts, MeetingFacts
from stafett_notify.domain.ids import derived_id
from stafett_notify.domain.rules import (
    Concerned,
    Reminder,
    reminders_after_evaluation,
    reminders_for,
    tell,
)
from stafett_runtime.contracts import CONTRACT_ENV, ContractProcessApplication
from stafett_runtime.processing import Upstream

UPSTREAMS = ("case", "consent", "meeting")

log = structlog.get_logger(__name__)


class NotifyPolicy(ContractProcessApplication):
    name = "notify"  # writes to the NOTIFY stream, beside Notifications

    def __init__(self, env: EnvType | None, config: NotifyConfig) -> None:
        super().__init__(env)
        self.config = config
        upstream_env = {**(env or {}), **CONTRACT_ENV}
        self._streams = {name: Upstream.named(name, upstream_env) for name in UPSTREAMS}
        # The guardians who consented, by case: read on from the consent stream as needed.
        self._guardians_of: dict[UUID, dict[str, None]] = {}
        self._consents_read = 0

    def close(self) -> None:
        for upstream in self._streams.values():
            upstream.close()
        super().close()

    def policy(
        self, domain_event: DomainEventProtocol[Any], processing_event: ProcessingEvent[Any]
    ) -> None:
        if not isinstance(domain_event, Event):
            return
        around, reminders = self._around(domain_event)
        at = domain_event.occurred_at
        events: list[Event] = []
        for told in tell(domain_event, around):
            events += request_events(told, domain_event, domain_event.event_id, self.config, at)
        for reminder in reminders:
            events.append(self._scheduled(domain_event, reminder))
        if events:
            processing_event.collect_events(*events)

    def _around(self, event: Event) -> tuple[Concerned, list[Reminder]]:
        lead: timedelta = self.config.timers.lead
        leaders = self.config.directory.leaders
        match event:
            case c.CaseEvent():
                case = CaseFacts()
                for earlier in self._history("case", event.aggregate_id, event.aggregate_version):
                    case.take_in(earlier)
                reminders = reminders_for(event, lead)
                if isinstance(event, c.MeasureEvaluated):
                    reminders = reminders_after_evaluation(event, case, lead)
                guardians = self._guardians(event.aggregate_id)
                return Concerned(case=case, guardians=guardians, leaders=leaders), reminders
            case m.MeetingEvent():
                meeting = MeetingFacts()
                for earlier in self._history(
                    "meeting", event.aggregate_id, event.aggregate_version
                ):
                    meeting.take_in(earlier)
                around = Concerned(case=CaseFacts(), meeting=meeting, leaders=leaders)
                return around, reminders_for(event, lead)
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
                    case=CaseFacts(), consent_case_id=case_id, consent_services=services
                )
                return around, []
        return Concerned(case=CaseFacts()), []

    def _history(self, stream: str, aggregate_id: UUID, up_to: int) -> list[Event]:
        events = self._streams[stream].events.get(aggregate_id, lte=up_to)
        return [e for e in events if isinstance(e, Event)]

    def _guardians(self, case_id: UUID) -> tuple[str, ...]:
        """The guardians who gave consent for the case (each is a party to the case)."""
        consents = self._streams["consent"]
        topic = topic_of(k.ConsentGiven)
        while True:
            try:
                page = consents.recorder.select_notifications(
                    self._consents_read + 1, 500, topics=[topic]
                )
            except Exception as error:  # no consent stream yet: no guardians known yet
                log.debug("consents not readable", reason=str(error))
                break
            for notification in page:
                event = consents.mapper.to_domain_event(notification)
                if isinstance(event, k.ConsentGiven) and event.given_by.kind == "guardian":
                    self._guardians_of.setdefault(event.case_id, {})[event.given_by.person] = None
                self._consents_read = notification.id
            if len(page) < 500:
                break
        return tuple(self._guardians_of.get(case_id, {}))

    def _scheduled(self, cause: Event, reminder: Reminder) -> n.ReminderScheduled:
        case_id = cause.case_id if isinstance(cause, m.MeetingEvent) else cause.aggregate_id
        reminder_id = derived_id(
            "reminder", case_id, reminder.kind, reminder.about, reminder.due_at
        )
        return n.ReminderScheduled(
            **stamp(reminder_id, 1, cause.occurred_at, cause.correlation_id, str(cause.event_id)),
            case_id=case_id,
            kind=reminder.kind,
            about=reminder.about,
            due_at=reminder.due_at,
            recipient=reminder.recipient,
        )
