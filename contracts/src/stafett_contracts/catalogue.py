"""Every event type, by topic: the one list that codecs, schemas and docs are made from."""

from __future__ import annotations

from stafett_contracts.case import CaseEvent
from stafett_contracts.consent import ConsentEvent
from stafett_contracts.envelope import Event, topic_of

CASE_EVENTS: tuple[type[Event], ...] = tuple(CaseEvent.__subclasses__())
CONSENT_EVENTS: tuple[type[Event], ...] = tuple(ConsentEvent.__subclasses__())
EVENTS: dict[str, type[Event]] = {topic_of(cls): cls for cls in (*CASE_EVENTS, *CONSENT_EVENTS)}
