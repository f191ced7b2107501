"""Every event type, by topic: the one list that codecs, schemas and docs are made from."""

from __future__ import annotations

from stafett_contracts.audit import AuditEvent
from stafett_contracts.case import CaseEvent
from stafett_contracts.consent import ConsentEvent
from stafett_contracts.envelope import Event, topic_of
from stafett_contracts.erasure import ChildEvent
from stafett_contracts.guides import GUIDE_EVENTS
from stafett_contracts.meeting import MeetingEvent
from stafett_contracts.notify import NotifyEvent
from stafett_contracts.processing import ProcessingRecord

CASE_EVENTS: tuple[type[Event], ...] = tuple(CaseEvent.__subclasses__())
# Events about a child rather than one case (its erasure), in the case service's stream too.
CHILD_EVENTS: tuple[type[Event], ...] = tuple(ChildEvent.__subclasses__())
CONSENT_EVENTS: tuple[type[Event], ...] = tuple(ConsentEvent.__subclasses__())
MEETING_EVENTS: tuple[type[Event], ...] = tuple(MeetingEvent.__subclasses__())
NOTIFY_EVENTS: tuple[type[Event], ...] = tuple(NotifyEvent.__subclasses__())
AUDIT_EVENTS: tuple[type[Event], ...] = tuple(AuditEvent.__subclasses__())
# What a service that follows another's stream parks and retries, in its own stream.
PROCESSING_EVENTS: tuple[type[Event], ...] = tuple(ProcessingRecord.__subclasses__())

# Each service's events, by the name of the service (its stream is the name in capitals).
BY_SERVICE: dict[str, tuple[type[Event], ...]] = {
    "case": CASE_EVENTS + CHILD_EVENTS + GUIDE_EVENTS + PROCESSING_EVENTS,
    "consent": CONSENT_EVENTS,
    "meeting": MEETING_EVENTS + PROCESSING_EVENTS,
    "notify": NOTIFY_EVENTS + PROCESSING_EVENTS,
    "audit": AUDIT_EVENTS,
}
EVENTS: dict[str, type[Event]] = {
    topic_of(cls): cls for events in BY_SERVICE.values() for cls in events
}
