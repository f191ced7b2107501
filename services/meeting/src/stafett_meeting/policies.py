"""What the meeting service learns from the case service: each case's roster, exactly once.

`RosterPolicy` reads the CASE stream through a `ProcessingLoop` and writes `CaseRosterNoted` to
the MEETING stream (same application name as `Meetings`), whenever a case event changes who
takes part in the case or under what: the case's start, its level, services joining and
leaving, the baton holder and coordinator, consents noted and lapsed, legal bases, closing and
reopening (domain/roster.py). Its position in the CASE stream is written in the same atomic
batch as the roster, so a redelivered case event notes nothing twice.

Each roster event is decided as of the case event's `occurred_at`, caused by it and in its
correlation, by the system actor of the meeting service.
"""

from __future__ import annotations

from typing import Any

import structlog
from eventsourcing.application import ProcessingEvent
from eventsourcing.domain import DomainEventProtocol
from eventsourcing.utils import EnvType

from stafett_contracts.case import CaseEvent
from stafett_contracts.identity import Actor, Role
from stafett_meeting.application import meeting_history
from stafett_meeting.domain.roster import fold_roster, note
from stafett_runtime.contracts import ContractProcessApplication
from stafett_runtime.domain import Context
from stafett_runtime.follower import Follower

POLICY_ACTOR = Actor(person="roster-policy", role=Role.SYSTEM, service="meeting")

log = structlog.get_logger(__name__)


class RosterPolicy(ContractProcessApplication):
    name = "meeting"  # writes to the MEETING stream, beside Meetings

    def policy(
        self, domain_event: DomainEventProtocol[Any], processing_event: ProcessingEvent[Any]
    ) -> None:
        if not isinstance(domain_event, CaseEvent):
            log.info("event not of a case", event_type=type(domain_event).__name__)
            return
        context = Context(
            actor=POLICY_ACTOR,
            now=domain_event.occurred_at,
            correlation_id=domain_event.correlation_id,
            causation_id=str(domain_event.event_id),
        )
        roster = fold_roster(meeting_history(self, domain_event.aggregate_id))
        processing_event.collect_events(*note(roster, domain_event, context))


class CaseFollower(Follower):
    """Runs the roster policy's loop, once the CASE stream exists."""

    def __init__(self, env: EnvType, retry_seconds: float = 2.0) -> None:
        super().__init__(RosterPolicy(env), "case", env, retry_seconds)
