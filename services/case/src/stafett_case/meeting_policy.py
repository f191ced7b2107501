"""What the case learns from the meeting service: decisions recorded in meetings, exactly once.

`MeetingPolicy` reads the MEETING stream through a `ProcessingLoop` and writes to the CASE
stream, as `Cases` does (same application name). A decision made in a meeting becomes the
case's own decision, without anyone entering it again:

| DecisionRecorded kind | case command |
|---|---|
| close | CloseCase |
| continue | DecideLevel |
| move_to_level N | Escalate to N when N is above the case's level, DeEscalate when below, DecideLevel when equal |
| system_measure | ProposeSystemMeasure, described by the decision's reason |

The command is decided by the person who recorded the decision (the event's actor), as of the
decision's `occurred_at`, caused by it and in its correlation, with the municipality directory as
it stands (who leads the case's unit), so the case's rules (who may decide, the staircase,
consent for level 1, a coordinator for level 3) hold as if that person had entered it. A decision the case refuses, or for a case it does not know, is logged and
skipped: one bad event must not stop the loop. Every other meeting event is not the case's.
"""  # noqa: E501 (a table reads best on one line per row)

from __future__ import annotations

from typing import Any

import structlog
from eventsourcing.application import ProcessingEvent
from eventsourcing.domain import DomainEventProtocol
from eventsourcing.utils import EnvType

from stafett_case.application import case_history
from stafett_case.domain import decide
from stafett_case.domain.commands import (
    CloseCase,
    Command,
    DecideLevel,
    DeEscalate,
    Escalate,
    ProposeSystemMeasure,
)
from stafett_contracts.casefile import CaseFile, fold
from stafett_contracts.envelope import topic_of
from stafett_contracts.meeting import DecisionKind, DecisionRecorded
from stafett_runtime.contracts import ContractProcessApplication
from stafett_runtime.directory import DirectorySource
from stafett_runtime.domain import Context, NotAllowed, RuleViolation
from stafett_runtime.follower import Follower

log = structlog.get_logger(__name__)


class MeetingPolicy(ContractProcessApplication):
    name = "case"  # writes to the CASE stream, beside Cases
    topics = (topic_of(DecisionRecorded),)  # the rest is the meeting's own

    def __init__(self, env: EnvType | None, directory: DirectorySource) -> None:
        super().__init__(env)
        self._directory = directory

    def policy(
        self, domain_event: DomainEventProtocol[Any], processing_event: ProcessingEvent[Any]
    ) -> None:
        if not isinstance(domain_event, DecisionRecorded):
            return
        event = domain_event
        history = case_history(self, event.case_id)
        state = fold(history)
        if state is None:
            log.warning("decision for no known case skipped", case_id=event.case_id)
            return
        context = Context(
            actor=event.actor,
            now=event.occurred_at,
            correlation_id=event.correlation_id,
            causation_id=str(event.event_id),
            directory=self._directory.current(),
        )
        try:
            new = decide(state, command_for(event, state), context)
        except (RuleViolation, NotAllowed) as refusal:
            log.warning(
                "case refused a meeting's decision",
                case_id=event.case_id,
                decision_id=event.decision_id,
                reason=str(refusal),
            )
            return
        processing_event.collect_events(*new)


def command_for(event: DecisionRecorded, state: CaseFile) -> Command:
    """The case command that carries out the meeting's decision on the case as it is now."""
    reason, participants = event.reason, event.participants
    match event.kind:
        case DecisionKind.CLOSE:
            return CloseCase(reason=reason, participants=participants)
        case DecisionKind.SYSTEM_MEASURE:
            return ProposeSystemMeasure(description=reason)
        case DecisionKind.MOVE_TO_LEVEL if event.to_level is not None:
            if event.to_level > state.level:
                return Escalate(to_level=event.to_level, reason=reason, participants=participants)
            if event.to_level < state.level:
                return DeEscalate(to_level=event.to_level, reason=reason, participants=participants)
    return DecideLevel(reason=reason, participants=participants)


class MeetingFollower(Follower):
    """Runs the meeting policy's loop, once the MEETING stream exists (the case is ready before)."""

    def __init__(
        self, env: EnvType, directory: DirectorySource, retry_seconds: float = 2.0
    ) -> None:
        policy = MeetingPolicy(env, directory)
        super().__init__(policy, "meeting", env, retry_seconds, required=False)
